// The shim is not there: after its one execve (exec mode; none in chainload
// mode), the caller sees the program as if it had run it directly. Exit
// codes 0-255, death by signal, the PID, open file descriptors, the signal
// mask and ignored signals, argc == 0, and argument sizes up to the kernel's
// limits (and past them: E2BIG, cleanly).
//
// "Without the shim" is busybox's own sh, cat and ls in the same container;
// "with" is the host's dash, cat and ls through their shims, in both modes.
// xspawn (a static helper, test/lib/xspawn.ts) starts programs where a shell
// cannot: argc 0, a blocked signal mask, exact argument sizes, and it tells
// exit 143 from SIGTERM.

import { copyFile } from 'node:fs/promises'
import { join } from 'node:path'
import t from 'tap'
import { FAILURES, STRERROR, formatDebug } from '../../launcher/plan.js'
import {
  CONTAINER_ENV,
  addHostUserDb,
  assertNoStrayMounts,
  buildHostProbe,
  makeBusyboxRoot,
  parseProbe,
  runHost,
  runInContainer,
  type Bind,
} from '../lib/container.js'
import { planTree, shimConfig } from '../lib/hosttree.js'
import type { ShimMode } from '../../launcher/config.js'
import { COMPILE_TIMEOUT_MS, DEBUG_ENV, MODES, buildShim, suiteScratch, type ShimFields } from '../lib/shims.js'
import { buildXspawn, parseEnding } from '../lib/xspawn.js'

t.setTimeout(COMPILE_TIMEOUT_MS * 2 * MODES.length)

const scratch = await suiteScratch(t, 'transparency')

const root = await makeBusyboxRoot(join(scratch, 'root'))
await addHostUserDb(root)
const xspawn = await buildXspawn(scratch)
await copyFile(xspawn, join(root, 'usr/bin/xspawn'))
const probe = await buildHostProbe(scratch)

const SHIMS: Record<string, ShimFields> = {
  hsh: { name: 'hsh', target: '/bin/sh' },
  hcat: { name: 'hcat', target: '/bin/cat' },
  hls: { name: 'hls', target: '/bin/ls' },
  htrue: { name: 'htrue', target: '/bin/true' },
  probe: { name: 'probe', target: probe },
}
/** Each mode's shims, at /usr/bin/NAME. */
const binds = {} as Record<ShimMode, Bind[]>
for (const mode of MODES) {
  binds[mode] = []
  for (const [name, fields] of Object.entries(SHIMS)) binds[mode].push([await buildShim(fields, mode), `/usr/bin/${name}`, 'ro'])
}

const text = (b: Buffer) => b.toString('latin1')
/** Run `argv` in the container, the shims of `mode` at /usr/bin. */
function inContainer(mode: ShimMode, argv: readonly string[], env: Record<string, string> = { ...CONTAINER_ENV }) {
  return runInContainer({ root, host: '/', binds: binds[mode], argv, env })
}

/** `ls -l /proc/self/fd` output as fd -> target, without the listing's own directory fd. */
function fdTable(listing: string): Record<string, string> {
  const table: Record<string, string> = {}
  for (const line of listing.split('\n')) {
    const m = / (\d+) -> (.*)$/.exec(line)
    if (m && !/^\/proc\/\d+\/fd$/.test(m[2] as string)) table[m[1] as string] = m[2] as string
  }
  return table
}

for (const mode of MODES) {
  t.test(`${mode} mode`, async (t) => {
    t.test('exit codes 0-255: the same with and without the shim', async (t) => {
      const loop = (sh: string) => `for i in $(seq 0 255); do /usr/bin/xspawn -w -- ${sh} -c "exit $i"; done`
      const native = runHost('/bin/sh', ['-c', loop('/bin/sh').replaceAll('/usr/bin/xspawn', xspawn)])
      const busybox = inContainer(mode, ['/bin/sh', '-c', loop('/bin/sh')])
      const shimmed = inContainer(mode, ['/bin/sh', '-c', loop('/usr/bin/hsh')])
      const want = Array.from({ length: 256 }, (_, i) => `exit ${i}`).join('\n')
      t.equal(text(native.stdout).trimEnd(), want, 'the host\'s sh, natively')
      t.equal(text(busybox.stdout).trimEnd(), want, 'busybox sh in the container')
      t.equal(text(shimmed.stdout).trimEnd(), want, 'the host\'s sh through the shim: 256 exits, none a signal')
      t.equal(text(shimmed.stderr), '', 'nothing on stderr')
    })

    t.test('death by SIGTERM, SIGKILL, SIGQUIT: the same signal, not 128 + N', async (t) => {
      for (const [name, number] of [['TERM', 15], ['KILL', 9], ['QUIT', 3], ['HUP', 1], ['INT', 2]] as const) {
        const script = `kill -${name} $$`
        t.same(parseEnding(runHost(xspawn, ['-w', '--', '/bin/sh', '-c', script]).stdout), { signal: number }, `natively: signal ${number}`)
        // busybox sh does not die of a SIGQUIT it sends itself (ash ignores it): no column for it there.
        if (name !== 'QUIT') t.same(parseEnding(inContainer(mode, ['/usr/bin/xspawn', '-w', '--', '/bin/sh', '-c', script]).stdout), { signal: number }, `busybox sh: signal ${number}`)
        t.same(parseEnding(inContainer(mode, ['/usr/bin/xspawn', '-w', '--', '/usr/bin/hsh', '-c', script]).stdout), { signal: number }, `through the shim: signal ${number}`)
        t.same(parseEnding(inContainer(mode, ['/usr/bin/xspawn', '-w', '--', '/usr/bin/hsh', '-c', `exit ${128 + number}`]).stdout), { exit: 128 + number }, `and exit ${128 + number} is an exit`)
      }
    })

    t.test('the PID is the caller\'s', async (t) => {
      const r = inContainer(mode, ['/bin/sh', '-c', 'echo $$; exec /usr/bin/hcat /proc/self/stat'])
      const [pid, stat] = text(r.stdout).split('\n')
      t.match(pid, /^\d+$/)
      t.equal(stat?.split(' ')[0], pid, '/proc/self/stat of the host cat starts with the shell\'s PID')
    })

    t.test('open file descriptors: the program sees exactly the caller\'s', async (t) => {
      const r = inContainer(mode, ['/bin/sh', '-c', 'exec 3</etc/passwd 7</etc/group 9>/tmp/fd9; /usr/bin/hls -l /proc/self/fd; echo ---; ls -l /proc/self/fd'])
      t.equal(r.status, 0)
      // busybox ls cannot read the link of its own, already closed, directory fd: its only complaint.
      t.same(text(r.stderr).split('\n').filter((l) => l && !/^ls: \/proc\/self\/fd\/\d+: cannot read link/.test(l)), [], 'no other message')
      const [host, busybox] = text(r.stdout).split('---\n') as [string, string]
      const shimmed = fdTable(host)
      // Whatever else the test runner let the container inherit is there in both listings.
      t.same(shimmed, fdTable(busybox), 'the host ls through the shim lists exactly what busybox ls lists: the shim leaked none')
      t.ok(['0', '1', '2', '3', '7', '9'].every((fd) => fd in shimmed), 'fds 0-2, 3, 7 and 9 among them')
      t.same(Object.values(shimmed).filter((target) => target.startsWith('/run/host')), [], 'none open on the host tree (target, loader, ld.so.conf)')
      t.equal(shimmed['3'], '/etc/passwd')
      t.equal(shimmed['7'], '/etc/group')
      t.equal(shimmed['9'], '/tmp/fd9')
    })

    t.test('the signal mask and ignored signals are inherited', async (t) => {
      // Block SIGUSR1 (10) and SIGUSR2 (12), ignore SIGQUIT (3) and SIGPIPE (13), then exec.
      const spawn = ['/usr/bin/xspawn', '-b', '10', '-b', '12', '-i', '3', '-i', '13', '--']
      const field = (status: string, name: string) => new RegExp(`^${name}:\\s*([0-9a-f]+)$`, 'm').exec(status)?.[1]
      const shimmed = text(inContainer(mode, [...spawn, '/usr/bin/hcat', '/proc/self/status']).stdout)
      const busybox = text(inContainer(mode, [...spawn, '/bin/cat', '/proc/self/status']).stdout)
      t.equal(field(shimmed, 'SigBlk'), '0000000000000a00', 'SigBlk: SIGUSR1 and SIGUSR2')
      t.equal(field(shimmed, 'SigIgn'), '0000000000001004', 'SigIgn: SIGQUIT and SIGPIPE')
      t.equal(field(shimmed, 'SigBlk'), field(busybox, 'SigBlk'), 'SigBlk as busybox cat sees it')
      t.equal(field(shimmed, 'SigIgn'), field(busybox, 'SigIgn'), 'SigIgn as busybox cat sees it')
    })

    t.test('argc == 0', async (t) => {
      const config = shimConfig({ ...(SHIMS.probe as ShimFields), mode })
      const r = inContainer(mode, ['/usr/bin/xspawn', '-0', '--', '/usr/bin/probe'], { ...CONTAINER_ENV, [DEBUG_ENV]: '1' })
      t.equal(r.status, 0, 'the program runs')
      // Since Linux 5.18 the kernel gives a program started with argv = { NULL } one empty argv[0].
      const asZero = formatDebug(config, planTree(config, '/', [], 'container'))
      const asEmpty = formatDebug(config, planTree(config, '/', [''], 'container'))
      const debug = text(r.stderr)
      t.ok(debug === asZero || debug === asEmpty, 'the debug output is the model\'s for argc 0, or for argv { "" }')
      const argv = parseProbe(r.stdout).argv.map(text)
      if (debug === asEmpty) {
        t.comment('this kernel passes argv { "" } for argv { NULL }: the shim passes --argv0 ""')
        t.same(argv, [''], 'the program\'s argv is { "" }')
      } else {
        t.comment('this kernel passes argc 0: the shim passes no --argv0, the loader gives the target path')
        t.same(argv, [`/run/host${probe}`])
      }
    })

    t.test('a 131071-byte argument passes; 131072 is the caller\'s E2BIG', async (t) => {
      const ok = inContainer(mode, ['/usr/bin/xspawn', '-A', '131071', '--', '/usr/bin/probe', 'x'])
      t.equal(ok.status, 0)
      const argv = parseProbe(ok.stdout).argv
      t.same(argv.map((a) => a.length), ['/usr/bin/probe'.length, 1, 131071], 'MAX_ARG_STRLEN - 1 bytes arrive whole')
      t.ok(argv[2]?.equals(Buffer.alloc(131071, 'a')), 'byte for byte')
      const big = inContainer(mode, ['/usr/bin/xspawn', '-A', '131072', '--', '/usr/bin/probe'])
      t.equal(big.status, 200, 'the caller\'s execve fails')
      t.equal(text(big.stderr), 'xspawn: execve: Argument list too long\n', 'with E2BIG; the shim never ran')
      t.equal(big.stdout.length, 0)
    })

    // Chainload mode has no execve of its own: only the caller's can fail.
    t.test(`E2BIG for the whole argument list: the caller's${mode === 'exec' ? ', or the shim\'s own' : ' only'}, never a crash`, async (t) => {
      const config = shimConfig(SHIMS.htrue as ShimFields)
      const plan = planTree(config, '/', ['/usr/bin/htrue'], 'container')
      if (!plan.ok) throw new Error(plan.message)
      const shimE2big = `htrue: ${FAILURES.exec}: ${plan.exec}: ${STRERROR.E2BIG}\n`
      type Outcome = 'ran' | 'shim E2BIG' | 'caller E2BIG'
      const seen = new Map<number, Outcome>()
      const outcome = (total: number): Outcome => {
        const r = inContainer(mode, ['/usr/bin/xspawn', '-P', String(total), '--', '/usr/bin/htrue'])
        let o: Outcome
        if (r.status === 0 && text(r.stderr) === '') o = 'ran'
        else if (r.status === 126 && text(r.stderr) === shimE2big) o = 'shim E2BIG'
        else if (r.status === 200 && text(r.stderr) === 'xspawn: execve: Argument list too long\n') o = 'caller E2BIG'
        else throw new Error(`${total} bytes of arguments: exit ${r.status}, stderr ${JSON.stringify(text(r.stderr))}`)
        seen.set(total, o)
        return o
      }
      // The largest list the caller can pass: the shim's execve adds the loader, its options and the
      // library path, so just below that limit only the shim's own execve fails. A chainload shim
      // passes the same arguments on its own stack, with no limit but the stack's: the program runs.
      let lo = 0
      let hi = 64 << 20
      t.equal(outcome(lo), 'ran')
      t.equal(outcome(hi), 'caller E2BIG')
      while (hi - lo > 1) {
        const mid = Math.floor((lo + hi) / 2)
        if (outcome(mid) === 'caller E2BIG') hi = mid
        else lo = mid
      }
      t.comment(`the caller's limit: ${lo} bytes of arguments`)
      if (mode === 'exec') t.equal(outcome(lo), 'shim E2BIG', `at ${lo} bytes the caller's execve works and the shim's fails: 126 "${shimE2big.trimEnd()}"`)
      else t.equal(outcome(lo), 'ran', `at ${lo} bytes the caller's execve works, and so does the program: no second execve`)
      t.equal(outcome(lo - 2048), 'ran', `${lo - 2048} bytes run`)
      // Monotone: ran, then the shim's E2BIG, then the caller's.
      const order: Outcome[] = ['ran', 'shim E2BIG', 'caller E2BIG']
      const sorted = [...seen].sort(([a], [b]) => a - b).map(([, o]) => order.indexOf(o))
      t.same(sorted, [...sorted].sort((a, b) => a - b), `${seen.size} probes, outcomes in order of size`)
    })

    // The kernel starts a program whose argument and environment pointers and
    // strings fill up to a quarter of the stack's rlimit, and 128 KiB however
    // small the limit: a second copy of the pointers may not fit beside them.
    t.test('small and large stack limits x argument and environment sizes up to the kernel\'s: never a crash', async (t) => {
      const config = shimConfig(SHIMS.htrue as ShimFields)
      const plan = planTree(config, '/', ['/usr/bin/htrue'], 'container')
      if (!plan.ok) throw new Error(plan.message)
      const shimE2big = `htrue: ${FAILURES.exec}: ${plan.exec}: ${STRERROR.E2BIG}\n`
      const tally = new Map<string, number>()
      for (const stack of [128 << 10, 256 << 10, 320 << 10, 1 << 20, 8 << 20]) {
        // The kernel's limit for pointers and strings together (fs/exec.c bprm_stack_limits).
        const limit = Math.max(Math.min(6 << 20, stack / 4), 128 << 10)
        for (const share of [0.5, 0.85, 0.97]) {
          // One-byte arguments: 2 bytes of string and a pointer each; or 200-byte variables.
          for (const [what, flags] of [
            ['one-byte arguments', ['-N', String(Math.floor((share * limit) / 10))]],
            ['200-byte variables', ['-E', `${Math.floor((share * limit) / 212)}:200`]],
            ['both', ['-N', String(Math.floor((share * limit) / 20)), '-E', `${Math.floor((share * limit) / 424)}:200`]],
          ] as const) {
            const r = inContainer(mode, ['/usr/bin/xspawn', '-w', '-S', String(stack), ...flags, '--', '/usr/bin/htrue'])
            const ending = parseEnding(r.stdout)
            const err = text(r.stderr)
            // The floor: where the arguments leave a few KiB of the stack, the loader exec'd with the
            // shim's argv dies by itself too (the kernel started it; nothing can run there).
            // The shim does no worse than that.
            const floor = () => parseEnding(inContainer(mode, ['/usr/bin/xspawn', '-w', '-S', String(stack), ...flags, '--', ...(plan.argv as string[])]).stdout)
            const how =
              'exit' in ending && ending.exit === 0 && err === ''
                ? 'ran'
                : 'exit' in ending && ending.exit === 126 && err === shimE2big
                  ? 'shim E2BIG'
                  : 'exit' in ending && ending.exit === 200 && err === 'xspawn: execve: Argument list too long\n'
                    ? 'caller E2BIG'
                    : 'signal' in ending && err === '' && JSON.stringify(floor()) === JSON.stringify(ending)
                      ? 'loader died as when run directly'
                      : `${JSON.stringify(ending)} ${JSON.stringify(err.slice(0, 300))}`
            tally.set(how, (tally.get(how) ?? 0) + 1)
            t.ok(['ran', 'shim E2BIG', 'caller E2BIG', 'loader died as when run directly'].includes(how), `stack ${stack >> 10} KiB, ${what} filling ${share} of ${limit >> 10} KiB: ${how}`)
          }
        }
      }
      t.comment([...tally].map(([k, n]) => `${n} ${k}`).join(', '))
      t.ok((tally.get('ran') ?? 0) >= 20, 'most of them run')
    })
  })
}

t.test('no mount leaked into the test process', async (t) => {
  assertNoStrayMounts(t, [scratch])
})
