// Hostile host trees against the real shim: symbolic link loops and chains,
// links that climb out of the host root or name container paths, magic links,
// over-long paths, every broken PT_INTERP, targets and loaders that are not
// runnable, and ld.so.conf files built to stall the shim.
//
// Each case runs the compiled shim, in each mode (exec and chainload), in a
// bwrap container with the tree at /run/host, under strace, and holds it to
// three things:
//   - its exit code and stderr are exactly what the plan model (launcher/plan.ts)
//     predicts, and the case's own expectation (status, failure, errno);
//   - every path the shim touched lies inside the host root (so it followed
//     no link the kernel's way, /proc/self/root included) and what it exec'd
//     (exec mode) or mapped and entered (chainload mode) is the model's
//     loader, inside the host root;
//   - it finishes: no crash, no hang (the slow cases have a time bound).
//
// The container has a complete glibc of its own (loader and libc), and a
// copy of each under /opt/container-only: a shim that escaped the host root
// would find a loader there and run, which the comparison would catch.

import { spawnSync } from 'node:child_process'
import { copyFileSync, mkdirSync } from 'node:fs'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import type { ShimConfig, ShimMode } from '../../launcher/config.js'
import { FAILURES, LIMITS, type Errno, type FailureKey, type Plan } from '../../launcher/plan.js'
import { HOST_ROOT, assertNoStrayMounts, makeBusyboxRoot, type Bind } from '../lib/container.js'
import { EM_AARCH64, PT_INTERP, craftElf } from '../lib/elfcraft.js'
import {
  DEB_DIR,
  LD,
  buildTree,
  copyRealFiles,
  fakeLoader,
  fakeLoaderOutcome,
  planTree,
  program,
  shimConfig,
  workingHost,
  type TreeSpec,
} from '../lib/hosttree.js'
import { COMPILE_TIMEOUT_MS, MODES, buildShim, parseDebug, suiteScratch, type ShimFields } from '../lib/shims.js'
import { expectedOutput, insideHostRoot, runShim } from '../lib/shimrun.js'

t.setTimeout(COMPILE_TIMEOUT_MS + MODES.length * 300_000)

const scratch = await suiteScratch(t, 'adversarial')

const real = copyRealFiles(join(scratch, 'real'))
const root = await makeBusyboxRoot(join(scratch, 'root'))
// The container's own glibc, where a shim that followed links the kernel's way would land.
for (const [from, to] of [
  [real.loader, `${DEB_DIR}/ld-linux-x86-64.so.2`],
  [real.loader, LD],
  [real.libc, `${DEB_DIR}/libc.so.6`],
  [real.loader, '/opt/container-only/ld.so'],
  [real.true, '/opt/container-only/true'],
] as const) {
  mkdirSync(join(root, to, '..'), { recursive: true })
  copyFileSync(from, join(root, to))
}

const FIELDS: ShimFields = { name: 'toolbox', target: '/usr/bin/toolbox' }
const shims = {} as Record<ShimMode, string>
for (const mode of MODES) shims[mode] = await buildShim(FIELDS, mode)
const config = shimConfig(FIELDS)
const AT = '/usr/bin/toolbox'

interface Expect {
  readonly status: number
  readonly what?: FailureKey
  readonly errno?: Errno
}

interface Case {
  readonly tree: TreeSpec
  /** what the case must do: exit status, and for a shim failure which one */
  readonly expect: Expect
  /**
   * the program the shim exec'd: ran (the default), a fake loader that cannot
   * run (fakeLoaderOutcome), or the errno the shim's execve got
   */
  readonly outcome?: 'ran' | 'fake loader' | Errno
  /** arguments after argv[0] */
  readonly args?: readonly string[]
  /** run this instead of the shim directly (argv[0] is still the shim) */
  readonly argv?: readonly string[]
  readonly binds?: readonly Bind[]
  /** a bound on the run's wall time, ms */
  readonly withinMs?: number
  readonly shim?: string
  readonly config?: ShimConfig
  /** the shim's path in the container */
  readonly at?: string
  /** more to do to the tree after it is built */
  readonly prepare?: (tree: string) => void
}

let cases = 0

/** Build the tree, plan it, run the real shim of `mode` under strace, compare. Returns the plan. */
async function check(t: Test, mode: ShimMode, c: Case): Promise<Plan> {
  const n = ++cases
  const tree = buildTree(join(scratch, `tree-${n}`), c.tree)
  c.prepare?.(tree)
  // The debug output names the way the loader starts: the shim's mode.
  const cfg = { ...(c.config ?? config), mode }
  const at = c.at ?? AT
  const shim = c.shim ?? shims[mode]
  const plan = planTree(cfg, tree, [at, ...(c.args ?? [])])
  const outcome = c.outcome === 'fake loader' ? fakeLoaderOutcome(mode) : (c.outcome ?? 'ran')

  // The model says what the case says.
  const modelStatus = plan.ok ? (outcome === 'ran' ? 0 : expectedOutput(cfg, plan, true, outcome).status) : plan.exitCode
  t.equal(modelStatus, c.expect.status, `the model: exit ${c.expect.status}${plan.ok ? '' : ` (${plan.message})`}`)
  if (c.expect.what !== undefined) t.equal(plan.ok ? 'ran' : plan.what, c.expect.what, `the model: ${c.expect.what}`)
  if (c.expect.errno !== undefined) t.equal(plan.ok ? 'ran' : plan.errno, c.expect.errno, `the model: ${c.expect.errno}`)

  const run = runShim({
    root,
    tree,
    shim,
    at,
    mode,
    trace: join(scratch, `trace-${n}`),
    ...(c.argv === undefined ? { argv: [at, ...(c.args ?? [])] } : { argv: c.argv }),
    ...(c.binds === undefined ? {} : { binds: c.binds }),
  })
  if (c.withinMs !== undefined) {
    // Timed again without strace, which slows every system call down.
    const started = Date.now()
    const again = runShim({ root, tree, shim, at, argv: c.argv ?? [at, ...(c.args ?? [])], ...(c.binds === undefined ? {} : { binds: c.binds }) })
    const elapsed = Date.now() - started
    t.ok(elapsed < c.withinMs, `finished in ${elapsed} ms (bound ${c.withinMs} ms)`)
    t.equal(again.stderr.toString('latin1'), run.stderr.toString('latin1'), 'the same output untraced')
  }

  // The shim: the model's bytes and status.
  const want = expectedOutput(cfg, plan, true, outcome)
  t.equal(run.stderr.toString('latin1'), want.stderr.toString('latin1'), 'stderr is the model\'s, byte for byte')
  t.equal(run.status, want.status ?? 0, `exit ${want.status ?? 0}`)
  t.equal(run.signal, null, 'no signal')
  t.equal(run.stdout.length, 0, 'nothing on stdout')
  if (!plan.ok) t.equal(run.stderr.toString('latin1').split('\n').length, 2, 'one line')

  // Nothing outside the host root, and the exec'd loader is inside it.
  t.ok((run.calls ?? []).length > 0, 'strace saw the shim\'s calls')
  const outside = (run.calls ?? []).filter((call) => !insideHostRoot(call.path, cfg.hostRoot))
  t.same(outside, [], 'every path the shim touched is inside the host root')
  if (plan.ok) {
    if (mode === 'chainload' && plan.loader !== null) {
      t.equal(run.execPath, undefined, 'no execve: the loader is mapped into the shim\'s process')
      if (outcome === 'ran') t.equal(run.entered, plan.exec, 'the loader it mapped and entered is the model\'s')
      else t.equal(run.entered, undefined, 'refused before the jump: no loader started')
    } else {
      t.equal(run.execPath, plan.exec, 'it exec\'d what the model says')
    }
    t.ok(plan.exec.startsWith(`${cfg.hostRoot}/`), `the model's exec lies inside the host root: ${plan.exec}`)
    // The debug lines (the exec failure line, if any, aside) name the same loader, inside the host root.
    const lines = run.stderr.toString('latin1').split('\n').filter((l) => l && !l.startsWith(`${cfg.name}: ${FAILURES.exec}: `))
    const debug = parseDebug(Buffer.from(`${lines.join('\n')}\n`, 'latin1'), cfg.name)
    t.equal(debug.loader?.toString('latin1') ?? null, plan.loader, 'the debug output names the model\'s loader')
    if (debug.loader) t.ok(debug.loader.toString('latin1').startsWith(`${cfg.hostRoot}/`), 'inside the host root')
  } else {
    t.equal(run.execPath, undefined, 'no exec after a failure')
    t.equal(run.entered, undefined, 'no loader entered after a failure')
  }
  return plan
}

const chain = (from: string, count: number, to: string): Record<string, TreeEntry> => {
  // from -> /c/l1 -> /c/l2 -> ... -> /c/l{count-1} -> to: `count` links in all.
  const spec: Record<string, TreeEntry> = { [from]: { link: count > 1 ? '/c/l1' : to } }
  for (let i = 1; i < count; i++) spec[`/c/l${i}`] = { link: i + 1 < count ? `/c/l${i + 1}` : to }
  return spec
}
type TreeEntry = TreeSpec[string]

const working = workingHost(real)
const LOADER = `${DEB_DIR}/ld-linux-x86-64.so.2`
const { [LD]: _ld, ...workingWithoutLd } = working

for (const mode of MODES) {
  t.test(`${mode} mode`, async (t) => {
    t.test('symbolic link loops: 126 ELOOP, never a hang', async (t) => {
      await check(t, mode, { tree: { ...working, [AT]: { link: 'toolbox' } }, expect: { status: 126, what: 'targetMissing', errno: 'ELOOP' } })
      await check(t, mode, {
        tree: { ...working, [AT]: { link: '/usr/bin/a' }, '/usr/bin/a': { link: 'b' }, '/usr/bin/b': { link: '/usr/bin/a' } },
        expect: { status: 126, what: 'targetMissing', errno: 'ELOOP' },
      })
      await check(t, mode, { tree: { ...workingWithoutLd, [LD]: { link: LD } }, expect: { status: 126, what: 'loaderMissing', errno: 'ELOOP' } })
      // A loop through a directory on the way: /lib64 -> /lib64.
      await check(t, mode, { tree: { ...workingWithoutLd, '/lib64': { link: '/lib64' } }, expect: { status: 126, what: 'loaderMissing', errno: 'ELOOP' } })
    })

    t.test('40 links to the loader run; 41 are ELOOP', async (t) => {
      const forty = await check(t, mode, { tree: { ...workingWithoutLd, ...chain(LD, 40, LOADER) }, expect: { status: 0 } })
      t.equal(forty.ok && forty.loader, `${HOST_ROOT}${LOADER}`)
      await check(t, mode, { tree: { ...workingWithoutLd, ...chain(LD, 41, LOADER) }, expect: { status: 126, what: 'loaderMissing', errno: 'ELOOP' } })
    })

    t.test('links that climb out of the root stay in it', async (t) => {
      const up = '../'.repeat(12)
      await check(t, mode, { tree: { ...workingWithoutLd, [LD]: { link: `${up}usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2` } }, expect: { status: 0 } })
      await check(t, mode, { tree: { ...workingWithoutLd, [LD]: { link: `/../../..${DEB_DIR}/./ld-linux-x86-64.so.2` } }, expect: { status: 0 } })
      await check(t, mode, { tree: { ...working, [AT]: { link: `../../../../../..${'/..'.repeat(20)}/usr/bin/real` }, '/usr/bin/real': { hardlink: real.true } }, expect: { status: 0 } })
    })

    t.test('links to paths that exist only in the container are not found', async (t) => {
      // The container has /opt/container-only/ld.so (a working loader): re-rooted, the link names nothing.
      await check(t, mode, { tree: { ...workingWithoutLd, [LD]: { link: '/opt/container-only/ld.so' } }, expect: { status: 127, what: 'loaderMissing', errno: 'ENOENT' } })
      await check(t, mode, { tree: { ...working, [AT]: { link: '/opt/container-only/true' } }, expect: { status: 127, what: 'targetMissing', errno: 'ENOENT' } })
    })

    t.test('magic links: /proc/self/root is link text, re-rooted, never followed', async (t) => {
      // No /proc in the host tree: "/proc/self/root/lib64/..." under /run/host is nothing.
      // Followed the kernel's way it would be the container's own, working /lib64/ld-linux-x86-64.so.2.
      await check(t, mode, {
        tree: { ...workingWithoutLd, [LD]: { link: `/proc/self/root${LD}` } },
        expect: { status: 127, what: 'loaderMissing', errno: 'ENOENT' },
      })
      // A real procfs at /run/host/proc: the shim reads /proc/self ("PID") and /proc/PID/root ("/")
      // as text, and "/" is the host root again. The model's tree says the same with plain links.
      const procfs: TreeSpec = { '/proc/self': { link: '1' }, '/proc/1/root': { link: '/' } }
      const bindProc: Bind[] = [['/proc', `${HOST_ROOT}/proc`, 'ro']]
      await check(t, mode, {
        tree: { ...workingWithoutLd, ...procfs, [LD]: { link: `/proc/self/root${LD}` } },
        binds: bindProc,
        expect: { status: 126, what: 'loaderMissing', errno: 'ELOOP' },
      })
      const ran = await check(t, mode, {
        tree: { ...workingWithoutLd, ...procfs, [LD]: { link: `/proc/self/root${LOADER}` } },
        binds: bindProc,
        expect: { status: 0 },
      })
      t.equal(ran.ok && ran.loader, `${HOST_ROOT}${LOADER}`, 'the host\'s loader, reached through /proc/self/root as text')
    })

    t.test('over-long paths: ENAMETOOLONG, the message cut at PATH_MAX - 1', async (t) => {
      // PT_INTERP of 4095 bytes (the kernel's limit with its NUL) through 15 real directories of
      // 255-byte names: /run/host + the 16th name is more than PATH_MAX - 1.
      const name = 'n'.repeat(255)
      const longInterp = `${`/${name}`.repeat(15)}/${'x'.repeat(4095 - 15 * 256 - 1)}`
      t.equal(longInterp.length, 4095)
      const deep = (tree: string) => {
        // Deeper than PATH_MAX from the test's cwd: one relative mkdir and cd at a time.
        const r = spawnSync('/bin/sh', ['-c', `cd "$1" && for i in $(seq 15); do mkdir ${name} && cd ${name} || exit 1; done`, 'sh', tree])
        if (r.status !== 0) throw new Error(`deep mkdir failed: ${r.stderr.toString()}`)
      }
      const p = await check(t, mode, { tree: { [AT]: { file: program(longInterp) } }, prepare: deep, expect: { status: 126, what: 'loaderMissing', errno: 'ENAMETOOLONG' } })
      t.equal(!p.ok && p.path.length, LIMITS.pathBytes, 'the path in the message is cut to 4095 bytes')
      // Without the directories the first name is simply not there.
      await check(t, mode, { tree: { [AT]: { file: program(longInterp) } }, expect: { status: 127, what: 'loaderMissing', errno: 'ENOENT' } })
      // 4096 bytes and its NUL: more than binfmt_elf takes.
      await check(t, mode, { tree: { [AT]: { file: program(`/${'a'.repeat(4095)}`) } }, expect: { status: 126, what: 'targetBad', errno: 'ENOEXEC' } })
      // A link text that fits, plus what is left of the path, that does not.
      const text = `${'./'.repeat(2028)}usr/lib/x86_64-linux-gnu`
      t.equal(text.length, 4080, 'a link text the kernel accepts; with "/ld-linux-x86-64.so.2" after it, 4101 bytes')
      await check(t, mode, { tree: { ...workingWithoutLd, '/lib64': { link: text } }, expect: { status: 126, what: 'loaderMissing', errno: 'ENAMETOOLONG' } })
      // The same text where nothing is left: it resolves.
      await check(t, mode, { tree: { ...workingWithoutLd, [LD]: { link: `${'./'.repeat(1990)}..${LOADER}` } }, expect: { status: 0 } })
    })

    t.test('PT_INTERP, as binfmt_elf takes it', async (t) => {
      const fake = { [LD]: { file: fakeLoader() } }
      const bad = { status: 126, what: 'targetBad', errno: 'ENOEXEC' } as const
      await check(t, mode, { tree: { ...fake, [AT]: { file: program(Buffer.from(LD)) } }, expect: bad })
      await check(t, mode, { tree: { ...fake, [AT]: { file: program(new Uint8Array(0)) } }, expect: bad })
      await check(t, mode, { tree: { ...fake, [AT]: { file: program(Uint8Array.of(0)) } }, expect: bad })
      await check(t, mode, { tree: { ...fake, [AT]: { file: program(Buffer.alloc(4097, 0x61)) } }, expect: bad })
      const pastEnd = program(LD, { editSegments: (s, size) => s.forEach((ph) => ph.type === PT_INTERP && (ph.offset = size - 4)) })
      await check(t, mode, { tree: { ...fake, [AT]: { file: pastEnd } }, expect: bad })
      // An embedded NUL ends the string; the loader is run, and cannot run (it is a fake).
      const cut = await check(t, mode, {
        tree: { ...fake, [AT]: { file: program(Buffer.from(`${LD}\0/junk\0`)) } },
        expect: { status: 126 },
        outcome: 'fake loader',
      })
      t.equal(cut.ok && cut.loader, `${HOST_ROOT}${LD}`)
      // Two PT_INTERPs: the first counts.
      const two = await check(t, mode, {
        tree: { ...fake, [AT]: { file: program(undefined, { interpreters: [LD, '/opt/container-only/ld.so'] }) } },
        expect: { status: 126 },
        outcome: 'fake loader',
      })
      t.equal(two.ok && two.loader, `${HOST_ROOT}${LD}`)
      // Another machine's program, or loader.
      await check(t, mode, { tree: { ...fake, [AT]: { file: craftElf({ machine: EM_AARCH64, interpreter: LD }) } }, expect: { status: 126, what: 'wrongArch', errno: 'ENOEXEC' } })
      await check(t, mode, {
        tree: { [LD]: { file: craftElf({ machine: EM_AARCH64, type: 3 }) }, [AT]: { file: program(LD) } },
        expect: { status: 126, what: 'wrongArch', errno: 'ENOEXEC' },
      })
    })

    t.test('targets that cannot run', async (t) => {
      const fake = { [LD]: { file: fakeLoader() } }
      await check(t, mode, { tree: { ...fake, [AT]: { dir: true } }, expect: { status: 126, what: 'targetBad', errno: 'EISDIR' } })
      await check(t, mode, { tree: { ...fake, [AT]: { file: program(LD), mode: 0o644 } }, expect: { status: 126, what: 'targetBad', errno: 'EACCES' } })
      await check(t, mode, { tree: { ...fake, [AT]: { file: program(LD, { truncate: 40 }) } }, expect: { status: 126, what: 'targetBad', errno: 'ENOEXEC' } })
      await check(t, mode, { tree: { ...fake, [AT]: { file: program(LD, { truncate: 100 }) } }, expect: { status: 126, what: 'targetBad', errno: 'ENOEXEC' } })
      await check(t, mode, { tree: { ...fake, [AT]: { file: '#!/bin/sh\nexit 0\n' } }, expect: { status: 126, what: 'targetBad', errno: 'ENOEXEC' } })
      await check(t, mode, { tree: { ...fake, [AT]: { file: '' } }, expect: { status: 126, what: 'targetBad', errno: 'ENOEXEC' } })
      await check(t, mode, { tree: { ...fake, [AT]: { fifo: true } }, expect: { status: 126, what: 'targetBad', errno: 'EACCES' } })
      await check(t, mode, { tree: { ...fake, '/usr/bin': { file: 'x' } }, expect: { status: 127, what: 'targetMissing', errno: 'ENOTDIR' } })
      // Loaders that cannot run: a directory, no exec bit, not ELF.
      await check(t, mode, { tree: { [LD]: { dir: true }, [AT]: { file: program(LD) } }, expect: { status: 126, what: 'loaderBad', errno: 'EISDIR' } })
      await check(t, mode, { tree: { [LD]: { file: fakeLoader(), mode: 0o644 }, [AT]: { file: program(LD) } }, expect: { status: 126, what: 'loaderBad', errno: 'EACCES' } })
      await check(t, mode, { tree: { [LD]: { file: 'ld' }, [AT]: { file: program(LD) } }, expect: { status: 126, what: 'loaderBad', errno: 'ENOEXEC' } })
    })

    t.test('a 64 GiB sparse loader: the --argv0 scan stops at 16 MiB', async (t) => {
      await check(t, mode, {
        tree: { [LD]: { sparse: 64 * 2 ** 30, head: fakeLoader(false) }, [AT]: { file: program(LD) } },
        expect: { status: 126 },
        outcome: 'fake loader',
        withinMs: 5000,
      })
    })

    t.test('ld.so.conf built to stall the shim: bounded by the work budget', async (t) => {
      // 63 files of 16384 lines, each line a 40-link chain to nothing: two minutes before the budget.
      const lines = '/l0\n'.repeat(16384)
      const amplify: Record<string, TreeEntry> = { ...working, '/etc/ld.so.conf': { file: 'include /etc/c/*\n', mode: 0o644 } }
      for (let i = 0; i < 63; i++) amplify[`/etc/c/f${String(i).padStart(2, '0')}`] = { file: lines, mode: 0o644 }
      for (let i = 0; i < 40; i++) amplify[`/l${i}`] = { link: `/l${i + 1}` }
      amplify['/l40'] = { link: '/nothing' }
      await check(t, mode, { tree: amplify, expect: { status: 0 }, withinMs: 5000 })

      // A pattern with many "*" against a long name: exponential in a backtracking matcher.
      await check(t, mode, {
        tree: { ...working, '/etc/ld.so.conf': { file: `include /etc/${'*a'.repeat(12)}*b\n`, mode: 0o644 }, [`/etc/${'a'.repeat(200)}`]: { file: '', mode: 0o644 } },
        expect: { status: 0 },
        withinMs: 5000,
      })

      // It includes itself: depth and file count stop it.
      await check(t, mode, { tree: { ...working, '/etc/ld.so.conf': { file: 'include ld.so.conf ld.so.conf\n/usr/lib\n', mode: 0o644 } }, expect: { status: 0 }, withinMs: 5000 })
    })

    t.test('eight nested includes run with a 256 KiB stack', async (t) => {
      const nested: Record<string, TreeEntry> = { ...working }
      for (let i = 0; i <= 9; i++) nested[i === 0 ? '/etc/ld.so.conf' : `/etc/c${i}.conf`] = { file: `include /etc/c${i + 1}.conf\n/usr/lib\n`, mode: 0o644 }
      await check(t, mode, { tree: nested, argv: ['/bin/sh', '-c', `ulimit -s 256 && exec ${AT}`], expect: { status: 0 } })
    })

    t.test('a 4095-byte host root: the root itself does not fit, and says so', async (t) => {
      // 16 components of 254 bytes, each after a "/", and "/" + 14 more: 4095 bytes.
      const comps = [...Array.from({ length: 16 }, (_, i) => `${String(i).padStart(2, '0')}${'h'.repeat(252)}`), 'x'.repeat(14)]
      const hostRoot = `/${comps.join('/')}`
      t.equal(hostRoot.length, 4095)
      // Real directories in the container's root (bwrap cannot mount at a path this long): made and
      // removed by relative steps, as no single system call could name them from here.
      // A child node: chdir() to a relative name is one system call (shells build the whole path).
      const make = spawnSync(process.execPath, [
        '-e',
        'const fs = require("fs"); process.chdir(process.argv[1]); for (const c of process.argv.slice(2)) { fs.mkdirSync(c); process.chdir(c) }',
        root,
        ...comps,
      ])
      if (make.status !== 0) throw new Error(`cannot make the host root: ${make.stderr.toString()}`)
      try {
        const fields: ShimFields = { name: 'toolbox', target: '/..', hostRoot }
        const p = await check(t, mode, {
          tree: { '/usr': { dir: true } },
          shim: await buildShim(fields, mode),
          config: shimConfig(fields),
          expect: { status: 126, what: 'targetMissing', errno: 'ENAMETOOLONG' },
        })
        t.equal(!p.ok && p.path, hostRoot, 'the message names the host root, all of it there is room for')
      } finally {
        // rm walks down by file descriptor: no path it uses is too long.
        spawnSync('rm', ['-rf', '--', comps[0] as string], { cwd: root })
      }
    })
  })
}

t.test('no mount leaked into the test process', async (t) => {
  assertNoStrayMounts(t, [scratch])
})
