// The glibc matrix on real Debian trees (issue #3).
//
// Containers: a busybox root (no libc), Debian bullseye (glibc 2.31), and
// this machine (bookworm, 2.36). Hosts, seen at /run/host: this machine's
// `/` and Debian trixie (2.41). Targets: coreutils' ls and id, node, and
// Debian's real Toolbx binary. Each cell runs the host's program directly
// (the container's kernel view and loader), and through a shim made by
// hostshim's generate, once in each mode (exec and chainload). The native
// run on the host is the reference.
//
// A cell is proof, for a mode, when the direct run fails for the reason the
// loader model (lib/ldso.ts) predicts, and that mode's shim run then gives
// the native output.
// Cells whose direct run works are reported as such, not counted.
//
// Two host-mode rows sit where container and host are the same system: the
// machine itself, and the trixie tree as `/`. Neither has a /run/host, so
// Toolbx's binary (PT_INTERP under /run/host) cannot start there, and the
// shim runs it through the host's loader.
//
// The table goes to out/matrix.md and stderr.

import { existsSync, realpathSync } from 'node:fs'
import { mkdir, mkdtemp, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import t from 'tap'
import { debianTree, glibcVersion, type Tree } from './lib/debian.js'
import { predictDirect, resolveInView, type Prediction, type View } from './lib/ldso.js'
import { markdownTable, outcome, sameOutput, type CellResult, type Outcome } from './lib/matrix.js'
import { bwrapArgs, makeBusyboxRoot, runIn, runOnMachine, SHIM_DIR, viewOf, type Sandbox } from './lib/sandbox.js'
import { MODES, makeShim, type Shim } from './lib/shim.js'
import { differences, mountsInTestDirs, otherMountChanges, OUT_DIR, snapshot } from './lib/state.js'
import { removeTree, type RunResult } from './lib/sys.js'
import { unpackToolbox, type Toolbox } from './lib/toolbox.js'

const MINUTE = 60_000
t.setTimeout(30 * MINUTE)

const before = await snapshot()
const started = Date.now()
const timings: [string, number][] = []
const work = await mkdtemp('/tmp/hostshim-e2e-matrix-')
t.teardown(() => removeTree(work))

let bullseye: Tree
let trixie: Tree
let toolbox: Toolbox
const glibc: Record<string, string | null> = {}

t.test('Debian trees (debootstrap, cached)', { timeout: 20 * MINUTE }, async (t) => {
  const log = (s: string) => t.comment(s)
  ;[bullseye, trixie] = await Promise.all([debianTree('bullseye', log), debianTree('trixie', log)])
  for (const tree of [bullseye, trixie]) {
    timings.push([`${tree.suite} tree (${tree.built ? 'debootstrap' : 'cached'})`, tree.ms])
    t.comment(`${tree.suite}: ${tree.root} ${tree.built ? `built in ${(tree.ms / 1000).toFixed(0)} s` : 'from the cache'}`)
  }
  glibc.bullseye = await glibcVersion(bullseye.root)
  glibc.trixie = await glibcVersion(trixie.root)
  glibc.bookworm = await glibcVersion('/')
  glibc.busybox = null
  t.equal(glibc.bullseye, '2.31', 'bullseye has glibc 2.31')
  t.equal(glibc.bookworm, '2.36', 'this machine (bookworm) has glibc 2.36')
  t.equal(glibc.trixie, '2.41', 'trixie has glibc 2.41')
})

t.test("Debian's Toolbx binary (apt-get download, dpkg -x)", { timeout: 5 * MINUTE }, async (t) => {
  const t0 = Date.now()
  toolbox = await unpackToolbox(join(work, 'podman-toolbox'))
  timings.push(['podman-toolbox download', Date.now() - t0])
  t.comment(`${toolbox.deb}: PT_INTERP ${toolbox.interp}`)
  t.match(toolbox.interp, /^\/run\/host\//, 'its PT_INTERP is under /run/host (built for Toolbx)')
})

interface Target {
  readonly name: string
  readonly label: string
  /** the program's path on each host; null: not there */
  readonly path: Record<'bookworm' | 'trixie', string | null>
  /** what to run, each an argv tail; all must match the native runs */
  readonly invocations: readonly (readonly string[])[]
}

interface System {
  readonly key: 'busybox' | 'bullseye' | 'bookworm' | 'trixie'
  readonly label: string
  /** machine directory of its `/` */
  readonly root: string
}

let targets: Target[]
/** By `MODE/NAME`. */
const shims = new Map<string, Shim>()
const NODE = realpathSync(process.execPath)

t.test('shims, made by hostshim generate', { timeout: 10 * MINUTE }, async (t) => {
  const inTrixie = (p: string) => {
    const r = resolveInView({ root: trixie.root, hostRoot: null }, p)
    return 'error' in r ? null : p
  }
  targets = [
    { name: 'ls', label: 'ls', path: { bookworm: '/usr/bin/ls', trixie: '/usr/bin/ls' }, invocations: [['--version'], ['-dn', '--time-style=+', '/dev/null', '/dev/zero']] },
    { name: 'id', label: 'id', path: { bookworm: '/usr/bin/id', trixie: '/usr/bin/id' }, invocations: [[], ['--version']] },
    {
      name: 'node',
      label: `node (${process.version})`,
      path: { bookworm: NODE, trixie: inTrixie(NODE) },
      invocations: [['-p', '[process.version, process.arch, require("os").type(), require("zlib").gzipSync("hostshim").length].join(" ")']],
    },
    {
      name: 'toolbox',
      label: `toolbox (Debian's, ${/_([^_+]+)/.exec(toolbox.deb)?.[1] ?? '?'})`,
      path: { bookworm: toolbox.binary, trixie: toolbox.binary },
      invocations: [['--version']],
    },
  ]
  const t0 = Date.now()
  for (const shimMode of MODES) {
    const dir = join(work, `shims-${shimMode}`)
    await mkdir(dir)
    for (const target of targets) {
      const path = target.path.bookworm as string
      const shim = await makeShim(target.name, path, dir, shimMode)
      shims.set(`${shimMode}/${target.name}`, shim)
      t.comment(`${target.name} -> ${path}, ${shimMode} mode: ${shim.bytes} bytes${shim.cached ? ' (from the compile cache)' : ''}`)
      t.ok(shim.bytes > 0 && shim.bytes < 256 * 1024, `${target.name}, ${shimMode} mode: a small static shim`)
    }
  }
  timings.push(['shims (generate)', Date.now() - t0])
  if (targets.find((x) => x.name === 'node')?.path.trixie === null) {
    t.comment(`node: ${NODE} is not in the trixie tree (minbase has no node): n/a on the trixie host`)
  }
})

// --- the matrix --------------------------------------------------------------

const BUSYBOX: System = { key: 'busybox', label: 'busybox (no libc)', root: '' }
const results: CellResult[] = []

/** Each (container, host): the sandbox, and how the target path reads inside it. */
interface Pairing {
  readonly container: System
  readonly host: System & { key: 'bookworm' | 'trixie' }
  /** run on the machine itself, no sandbox */
  readonly machine: boolean
  /** no /run/host: the shim must choose host mode */
  readonly hostMode: boolean
}

async function runAll(target: Target, argv0: string, run: (argv: string[], env?: Record<string, string>) => Promise<RunResult>): Promise<Outcome> {
  const runs: RunResult[] = []
  for (const tail of target.invocations) runs.push(await run([argv0, ...tail]))
  return outcome(runs)
}

const natives = new Map<string, Outcome>()
let busyboxRoot = ''

/** The target run natively on its host: this machine, or bwrap with the trixie tree as `/`. */
async function native(host: Pairing['host'], target: Target, path: string): Promise<Outcome> {
  const key = `${host.key}/${target.name}`
  const cached = natives.get(key)
  if (cached) return cached
  // Toolbx hosts have /run/host -> ../ (Toolbx's tmpfiles rule); give it one, in the sandbox only.
  const needsSymlink = target.name === 'toolbox'
  const box: Sandbox = { root: host.root, hostRoot: null, runHostSymlink: true, payloads: [toolbox.dir] }
  const result =
    host.key === 'bookworm' && !needsSymlink
      ? await runAll(target, path, (argv) => runOnMachine(argv))
      : await runAll(target, path, (argv) => runIn(box, argv))
  natives.set(key, result)
  return result
}

/** The cells every run must prove: the direct run fails, the shim run works. */
const MUST_PROVE = [
  'busybox/bookworm/ls', 'busybox/bookworm/id', 'busybox/bookworm/node',
  'busybox/trixie/ls', 'busybox/trixie/id',
  'bullseye/bookworm/ls', 'bullseye/bookworm/id',
  'bullseye/trixie/ls', 'bullseye/trixie/id',
  'bookworm/trixie/ls', 'bookworm/trixie/id',
  'bookworm/bookworm/toolbox', 'trixie/trixie/toolbox',
]

function directFailsAsPredicted(p: Prediction, o: Outcome): string | null {
  if (!p.fails) return null
  const r = o.runs.find((x) => x.code !== 0)
  if (!r) return 'it worked'
  switch (p.kind) {
    case 'version': {
      const m = /version `([^']+)' not found/.exec(r.stderr)
      return m && p.versions?.includes(m[1] as string) ? null : `expected a missing ${p.versions?.join(' or ')}, got ${JSON.stringify(r.stderr.trim())}`
    }
    case 'lib':
      return /cannot open shared object file/.test(r.stderr) ? null : `expected a missing library, got ${JSON.stringify(r.stderr.trim())}`
    default:
      return r.spawnError === 'ENOENT' || /No such file or directory/.test(r.stderr) ? null : `expected ENOENT, got ${JSON.stringify(r.stderr.trim())}`
  }
}

t.test('the matrix', { timeout: 10 * MINUTE }, async (t) => {
  const t0 = Date.now()
  busyboxRoot = await makeBusyboxRoot(join(work, 'busybox-root'))
  const busybox: System = { ...BUSYBOX, root: busyboxRoot }
  const bullseyeSys: System = { key: 'bullseye', label: `bullseye (glibc ${glibc.bullseye})`, root: bullseye.root }
  const bookworm = { key: 'bookworm', label: `bookworm (glibc ${glibc.bookworm}, this machine)`, root: '/' } as const
  const trixieSys = { key: 'trixie', label: `trixie (glibc ${glibc.trixie})`, root: trixie.root } as const
  const pairings: Pairing[] = []
  for (const container of [busybox, bullseyeSys, bookworm]) {
    for (const host of [bookworm, trixieSys]) {
      pairings.push({ container, host, machine: container.key === 'bookworm' && host.key === 'bookworm', hostMode: container.key === host.key })
    }
  }
  pairings.push({ container: trixieSys, host: trixieSys, machine: false, hostMode: true })

  for (const pairing of pairings) {
    const { container, host } = pairing
    const containerLabel = pairing.hostMode ? `${container.label.replace(/\)$/, '')}, as its own host: no /run/host)` : container.label
    const hostLabel = pairing.hostMode ? '— (host mode)' : host.key === 'bookworm' ? `bookworm (glibc ${glibc.bookworm}, this machine's /)` : host.label
    for (const target of targets) {
      const key = `${container.key}/${host.key}/${target.name}`
      const path = target.path[host.key]
      if (path === null) {
        for (const shimMode of MODES) {
          results.push({ container: containerLabel, host: hostLabel, target: target.label, shimMode, na: `no ${target.name} in the ${host.key} tree`, proof: false, shimMatchesNative: false, directMatchesNative: false })
        }
        t.comment(`${key}: n/a (${target.name} is not on the ${host.key} host)`)
        continue
      }
      await t.test(key, async (t) => {
        const reference = await native(host, target, path)
        t.ok(reference.ok, `native run on ${host.key} works`, { runs: reference.runs })
        t.comment(`native: ${reference.runs.map((r) => JSON.stringify(r.stdout.split('\n')[0])).join(', ')}`)

        // The container, with the shim of a mode at SHIM_DIR/NAME; null: the machine itself.
        const boxWith = (shim: Shim | null): Sandbox | null =>
          pairing.machine
            ? null
            : {
                root: container.root,
                hostRoot: pairing.hostMode ? null : host.root,
                ...(shim === null ? {} : { shims: [[shim.path, target.name]] }),
                payloads: [toolbox.dir],
              }
        const box = boxWith(null)
        let view: View
        let direct: Outcome
        if (box === null) {
          // The machine itself, outside any namespace: no /run/host here.
          view = { root: '/', hostRoot: null }
          direct = await runAll(target, path, (argv) => runOnMachine(argv))
        } else {
          view = viewOf(box)
          const directPath = pairing.hostMode ? path : `/run/host${path}`
          direct = await runAll(target, directPath, (argv) => runIn(box, argv))
          t.comment(`bwrap ${bwrapArgs(box, [directPath]).join(' ')}`)
        }
        const prediction = await predictDirect(view, pairing.machine || pairing.hostMode ? path : `/run/host${path}`)
        const directMatchesNative = sameOutput(direct, reference)
        t.comment(`predicted direct: ${prediction.fails ? `fails (${prediction.kind}: ${prediction.reason})` : 'works'}`)
        if (prediction.fails) {
          t.notOk(direct.ok, `direct: fails, as predicted (${prediction.reason})`)
          const why = directFailsAsPredicted(prediction, direct)
          t.equal(why, null, 'direct: fails for the predicted reason', { stderr: direct.runs.map((r) => r.stderr) })
        } else {
          t.ok(direct.ok && directMatchesNative, 'direct: works, as predicted (not counted as proof)', { stderr: direct.runs.map((r) => r.stderr) })
        }

        for (const shimMode of MODES) {
          await t.test(`${shimMode} mode`, async (t) => {
            const shim = shims.get(`${shimMode}/${target.name}`) as Shim
            const shimBox = boxWith(shim)
            let viaShim: Outcome
            let debug: RunResult
            if (shimBox === null) {
              viaShim = await runAll(target, shim.path, (argv) => runOnMachine(argv))
              debug = await runOnMachine([shim.path, ...(target.invocations[0] ?? [])], { HOSTSHIM_DEBUG: '1' })
            } else {
              viaShim = await runAll(target, `${SHIM_DIR}/${target.name}`, (argv) => runIn(shimBox, argv))
              debug = await runIn(shimBox, [`${SHIM_DIR}/${target.name}`, ...(target.invocations[0] ?? [])], { HOSTSHIM_DEBUG: '1' })
            }
            const mode = new RegExp(`^${target.name}: mode: (\\S+)$`, 'm').exec(debug.stderr)?.[1]
            const loader = new RegExp(`^${target.name}: loader: (.*)$`, 'm').exec(debug.stderr)?.[1]

            const shimMatchesNative = sameOutput(viaShim, reference)
            const proof = !direct.ok && prediction.fails && shimMatchesNative
            results.push({ container: containerLabel, host: hostLabel, target: target.label, shimMode, prediction, direct, shim: viaShim, ...(mode === undefined ? {} : { mode }), proof, shimMatchesNative, directMatchesNative })

            t.comment(`shim: ${mode} mode, loader ${loader}`)
            t.equal(mode, pairing.hostMode ? 'host' : 'container', `the shim runs in ${pairing.hostMode ? 'host' : 'container'} mode`)
            t.ok(shimMatchesNative, 'through the shim: the same exit status, stdout and stderr as natively on the host', {
              shim: viaShim.runs.map(({ code, stdout, stderr }) => ({ code, stdout, stderr })),
              native: reference.runs.map(({ code, stdout, stderr }) => ({ code, stdout, stderr })),
            })
            if (MUST_PROVE.includes(key)) t.ok(proof, 'proof: the direct run fails and the shim run works')
          })
        }
      })
    }
  }
  timings.push(['matrix runs', Date.now() - t0])
  for (const shimMode of MODES) {
    const proven = results.filter((c) => c.shimMode === shimMode && c.proof).length
    t.equal(proven >= MUST_PROVE.length, true, `${shimMode} mode: ${proven} proof cells (at least ${MUST_PROVE.length})`)
  }
})

// Not a cell of the matrix: bullseye as the host, for its glibc 2.31 loader,
// which has no --argv0. The shim must notice and leave the option out.
for (const shimMode of MODES) {
  t.test(`${shimMode} mode: an old host loader: bullseye's glibc 2.31, without --argv0`, async (t) => {
    const shim = shims.get(`${shimMode}/ls`) as Shim
    const box: Sandbox = { root: busyboxRoot, hostRoot: bullseye.root, shims: [[shim.path, 'ls']] }
    const native = await runIn({ root: bullseye.root, hostRoot: null }, ['/usr/bin/ls', '--version'])
    const viaShim = await runIn(box, [`${SHIM_DIR}/ls`, '--version'])
    const debug = await runIn(box, [`${SHIM_DIR}/ls`, '--version'], { HOSTSHIM_DEBUG: '1' })
    t.equal(native.code, 0, `natively on bullseye: ${native.stdout.split('\n')[0]}`)
    t.equal(viaShim.code, 0, 'through the shim in the busybox container: exit 0', { stderr: viaShim.stderr })
    t.equal(viaShim.stdout, native.stdout, "the same output as bullseye's own ls")
    t.match(debug.stderr, /^ls: loader: \/run\/host\/\S*ld-2\.31\.so$/m, "bullseye's loader, found through its absolute /lib64 link")
    t.notMatch(debug.stderr, /--argv0/, 'no --argv0 for a 2.31 loader')
  })
}

t.test('out/matrix.md', async (t) => {
  const total = Date.now() - started
  const proofs = results.filter((c) => c.proof).length
  const works = results.filter((c) => !c.na && c.direct?.ok).length
  const na = results.filter((c) => c.na).length
  const text = [
    '<!-- generated by `npm run test:e2e` (test/e2e/matrix.test.ts) -->',
    '',
    markdownTable(results),
    `${results.length} cells (${results.length / MODES.length} in each shim mode: ${MODES.join(', ')}): ${proofs} where the direct run fails and`,
    `the shim gives the native output (**bold**), ${works} where the direct run works too (not counted as proof), ${na} n/a`,
    '(node is not in the trixie minbase tree).',
    '',
    '- *Direct*: the host\'s program exec\'d in the container as /run/host/PATH (host-mode rows: as PATH), so the',
    '  kernel and the container\'s own loader and libraries handle it. Every direct result, works or fails, is',
    '  first predicted from the ELF files (test/e2e/lib/ldso.ts) and then checked, failure reason included.',
    '- *Through the shim*: `hostshim generate` made a static shim for the same host path, bound into the',
    '  container; it must give the same exit status, stdout and stderr as the native run. *Shim*: its mode, `exec`',
    '  (it execs the host loader) or `chainload` (it maps the host loader into its own process and jumps to it).',
    '- *Native*: the program run on its own host: this machine, or bwrap with the trixie tree as `/`; Toolbx\'s',
    '  binary with the `/run/host -> ../` symlink a Toolbx host has (made inside bwrap only).',
    '- Containers are bubblewrap sandboxes: the root read-only, the host read-only at /run/host. Host-mode rows',
    '  have no /run/host at all: Toolbx\'s binary (PT_INTERP under /run/host) cannot start, the shim runs it',
    '  through the host\'s own loader.',
    '- Toolbx\'s binary works directly in every container: Debian builds it with its PT_INTERP and RUNPATH under',
    '  /run/host. Only the host without the symlink needs the shim.',
    '',
    `Timings: ${timings.map(([k, ms]) => `${k} ${(ms / 1000).toFixed(1)} s`).join('; ')}; total ${(total / 1000).toFixed(1)} s.`,
    '',
  ].join('\n')
  await mkdir(OUT_DIR, { recursive: true })
  await writeFile(join(OUT_DIR, 'matrix.md'), text)
  process.stderr.write(`\n${text}\n`)
  t.ok(existsSync(join(OUT_DIR, 'matrix.md')), 'written')
})

t.test('leaves the machine as it was', async (t) => {
  t.same(mountsInTestDirs(), [], 'no mount below /tmp or the tree cache')
  await removeTree(work)
  t.notOk(existsSync(work), `${work} removed`)
  const after = await snapshot()
  t.same(differences(before, after), [], 'mounts in the test places, /run/host, podman-toolbox and the watched paths as before')
  for (const c of otherMountChanges(before, after)) t.comment(`not ours, but seen on this machine during the run: ${c}`)
})
