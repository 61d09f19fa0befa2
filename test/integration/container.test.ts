// Real shims in real containers: a busybox root with no libc and no loader,
// the machine's own `/` (Debian, glibc 2.36) at /run/host, made by bwrap.
// Every run here execs the compiled shim; nothing is modelled. Each case runs
// in both modes, exec and chainload: what the caller sees is the same (only
// the strace of execve calls tells them apart).
//
// Needs: bwrap, busybox-static, strace, cc, and root (see .ci/setup).

import { existsSync } from 'node:fs'
import { chmod, copyFile, mkdir, readFile, rm, symlink, writeFile } from 'node:fs/promises'
import { constants } from 'node:os'
import { dirname, join } from 'node:path'
import t from 'tap'
import { MAX_PATH_BYTES, validateConfig, type RawConfig } from '../../launcher/config.js'
import { ConfigError } from '../../launcher/errors.js'
import { ARCHES } from '../../launcher/arch.js'
import { nodeHostView } from '../../launcher/hostview.js'
import { FAILURES, STRERROR, formatDebug, planShim } from '../../launcher/plan.js'
import {
  BWRAP,
  CONTAINER_ENV,
  HOST_ROOT,
  machineIsHost,
  addHostUserDb,
  assertNoStrayMounts,
  buildHostProbe,
  makeBusyboxRoot,
  parseProbe,
  runHost,
  runInContainer,
  shellCommand,
  waitStatusFromTime,
} from '../lib/container.js'
import { COMPILE_TIMEOUT_MS, DEBUG_ENV, MODES, buildShim, parseDebug, suiteScratch } from '../lib/shims.js'

t.setTimeout(COMPILE_TIMEOUT_MS * 3)

const scratch = await suiteScratch(t, 'container')

/** The host probe (test/lib/container.ts): dynamic, so only a shim can start it in a busybox root. */
const probe = await buildHostProbe(scratch)

/**
 * A host tree with no loader and no libc: for failures only.
 *   bin/probe     the probe (0755): its loader is missing here
 *   bin/notexec   the probe, mode 0644
 *   bin/adir/     a directory
 *   bin/script    a 0755 shell script: not ELF
 */
const hostTree = join(scratch, 'hosttree')
await mkdir(join(hostTree, 'bin/adir'), { recursive: true })
await copyFile(probe, join(hostTree, 'bin/probe'))
await copyFile(probe, join(hostTree, 'bin/notexec'))
await chmod(join(hostTree, 'bin/notexec'), 0o644)
await writeFile(join(hostTree, 'bin/script'), '#!/bin/sh\necho hi\n', { mode: 0o755 })

let roots = 0
/** A fresh busybox root for one test. */
function freshRoot(): Promise<string> {
  return makeBusyboxRoot(join(scratch, `root-${++roots}`))
}

/** Copy a shim into a root as `dest` (e.g. /usr/bin/probe). */
async function install(root: string, shim: string, dest: string): Promise<void> {
  await mkdir(dirname(join(root, dest)), { recursive: true })
  await copyFile(shim, join(root, dest))
  await chmod(join(root, dest), 0o755)
}

let scripts = 0
/** Run a script (bytes) with busybox sh in the root, from a file: any byte but NUL survives. */
async function runScript(root: string, script: Buffer | string, env: Record<string, string> = { ...CONTAINER_ENV }) {
  const file = `/tmp/script-${++scripts}.sh`
  await writeFile(join(root, file), script)
  return runInContainer({ root, host: '/', argv: ['/bin/sh', file], env })
}

const text = (b: Buffer) => b.toString('latin1')
const hex = (b: Buffer | string) => (typeof b === 'string' ? Buffer.from(b, 'utf8') : b).toString('hex')
const lines = (b: Buffer) => text(b).split('\n').slice(0, -1)

// Words that a shell, a C string or a loader option parser could get wrong.
const ODD_ARGS: (string | Buffer)[] = [
  '',
  ' ',
  'two words',
  '"double"',
  "'single'",
  'back\\slash',
  'new\nline',
  'trailing newline\n',
  '\t',
  '*',
  '$HOME `id` $(id)',
  '--',
  '--argv0',
  '--library-path',
  '--inhibit-cache',
  '-',
  'café 日本 😀',
  Buffer.from([0xff, 0xfe, 0x80, 0x81, 0x82, 0x88, 0x8a, 0xc3, 0x28, 0x01, 0x7f]),
]

/** The one line a failing shim writes. */
function failure(name: string, what: keyof typeof FAILURES, path: string, errno: keyof typeof STRERROR): string {
  return `${name}: ${FAILURES[what]}: ${path}: ${STRERROR[errno]}\n`
}

/** The environment a caller hands over: odd values included. */
const CALLER_ENV = { ...CONTAINER_ENV, ODD: 'a b\tc', MULTI: 'one\ntwo', UNI: 'café 日本', EMPTY: '', FOOD: 'not FOO', FO: 'not FOO either' }

/** `env` output back to entries; a value may hold a newline (MULTI). */
const envEntries = (b: Buffer) => text(b).replace(/\n$/, '').split(/\n(?=[A-Za-z_][A-Za-z0-9_]*=)/)

// Config strings that would break a careless C emitter. None contains ":"
// (libDirs refuse it); "/" splits a value into directories where it is a path.
const HOSTILE = {
  QUOTE: 'say "hi"',
  APOSTROPHE: "it's",
  BACKSLASH: 'back\\slash\\',
  TRIGRAPH: 'tri??/graph ??= ??(',
  COMMENT: 'end*/ of /*comment',
  INCLUDE: 'line\n#include <x>',
  ESCAPES: '\\x41\\101\\0 %s%n',
  CONTROL: 'bell\x07 tab\t cr\r del\x7f',
  LATIN: 'café',
  CJK: '日本',
  EMOJI: '😀',
}

/** An absolute path under `base` of exactly `total` UTF-8 bytes, 2-byte characters included. */
function pathOfBytes(base: string, total: number): string {
  const bytes = (s: string) => Buffer.byteLength(s)
  const component = (n: number) => 'é'.repeat(Math.floor(n / 4)) + 'x'.repeat(n - 2 * Math.floor(n / 4))
  let path = base
  while (bytes(path) < total) {
    const room = total - bytes(path) - 1
    const n = room <= 200 ? room : room - 200 >= 2 ? 200 : 150
    path += `/${component(n)}`
  }
  return path
}

for (const mode of MODES) {
  t.test(`${mode} mode`, async (t) => {
    t.test('a dynamic host program runs in a libc-free root only through its shim', async (t) => {
      const root = await freshRoot()
      await addHostUserDb(root)
      const native = runHost('/usr/bin/id', [])
      t.equal(native.status, 0, 'id runs natively')
      t.not(native.stdout.length, 0)

      const direct = runInContainer({ root, host: '/', argv: ['/bin/sh', '-c', `${HOST_ROOT}/usr/bin/id`] })
      t.equal(direct.status, 127, 'without the shim: busybox sh cannot start it (no loader in the root)')
      t.match(text(direct.stderr), `${HOST_ROOT}/usr/bin/id: not found`)
      t.equal(direct.stdout.length, 0)

      const shim = await buildShim({ name: 'id', target: '/usr/bin/id' }, mode)
      const shimmed = runInContainer({ root, host: '/', binds: [[shim, '/usr/bin/id', 'ro']], argv: ['/usr/bin/id'] })
      t.equal(shimmed.status, 0)
      t.equal(text(shimmed.stderr), '')
      t.equal(text(shimmed.stdout), text(native.stdout), 'same output as the native id')
    })

    t.test('exit codes come back unchanged', async (t) => {
      const root = await freshRoot()
      await install(root, await buildShim({ name: 'hsh', target: '/bin/sh' }, mode), '/usr/bin/hsh')
      for (const code of [0, 1, 42, 126, 127, 255]) {
        t.equal(runHost('/bin/sh', ['-c', `exit ${code}`]).status, code, `native: ${code}`)
        const r = runInContainer({ root, host: '/', argv: ['/usr/bin/hsh', '-c', `exit ${code}`] })
        t.equal(r.status, code, `through the shim: ${code}`)
        t.equal(text(r.stderr), '')
      }
    })

    t.test('death by signal comes back as the same signal', async (t) => {
      const root = await freshRoot()
      await install(root, await buildShim({ name: 'hsh', target: '/bin/sh' }, mode), '/usr/bin/hsh')
      // bwrap reports a signal as 128 + N: busybox `time` in the container tells the two apart.
      const timed = (...argv: string[]) => waitStatusFromTime(runInContainer({ root, host: '/', argv: ['/bin/time', ...argv] }).stderr)
      t.same(timed('/usr/bin/hsh', '-c', 'exit 143'), { exit: 143 }, 'the meter: an exit 143 is an exit')
      for (const name of ['TERM', 'KILL', 'HUP'] as const) {
        const number = constants.signals[`SIG${name}`]
        const script = `kill -${name} $$`
        t.equal(runHost('/bin/sh', ['-c', script]).signal, `SIG${name}`, `native: SIG${name}`)
        t.same(timed('/bin/sh', '-c', script), { signal: number }, `busybox sh in the container: signal ${number}`)
        t.same(timed('/usr/bin/hsh', '-c', script), { signal: number }, `through the shim: signal ${number}`)
      }
    })

    t.test('argv arrives byte for byte', async (t) => {
      const root = await freshRoot()
      await install(root, await buildShim({ name: 'probe', target: probe }, mode), '/usr/bin/probe')
      const r = await runScript(root, Buffer.concat([Buffer.from('exec '), shellCommand(['/usr/bin/probe', ...ODD_ARGS]), Buffer.from('\n')]))
      t.equal(r.status, 0)
      t.equal(text(r.stderr), '')
      t.same(parseProbe(r.stdout).argv.map(hex), ['/usr/bin/probe', ...ODD_ARGS].map(hex))
    })

    t.test('argv[0] is what the caller used', async (t) => {
      const root = await freshRoot()
      await install(root, await buildShim({ name: 'probe', target: probe }, mode), '/usr/bin/probe')
      await symlink('probe', join(root, 'usr/bin/alias'))
      const argv0 = async (command: string) => {
        const r = await runScript(root, `${command}\n`)
        t.equal(r.status, 0, command)
        return text(parseProbe(r.stdout).argv[0] ?? Buffer.alloc(0))
      }
      t.equal(await argv0('exec /usr/bin/probe'), '/usr/bin/probe')
      t.equal(await argv0('exec probe'), 'probe', 'found on PATH')
      t.equal(await argv0('exec alias'), 'alias', 'through a symlink to the shim')
      t.equal(await argv0("exec -a 'a custom name' /usr/bin/probe"), 'a custom name')
      t.equal(await argv0("exec -a '' /usr/bin/probe"), '', 'empty')
      t.equal(await argv0("exec -a --help /usr/bin/probe"), '--help', 'one that looks like a loader option')

      // The control: without --argv0 the loader hands the program its own path.
      await install(root, await buildShim({ name: 'probe', target: probe, argv0: false }, mode), '/usr/bin/probe')
      t.equal(await argv0('exec /usr/bin/probe'), `${HOST_ROOT}${probe}`, 'argv0: false gives the loader\'s default')
    })

    t.test('a missing target: 127 and one line naming the full path', async (t) => {
      const root = await freshRoot()
      await install(root, await buildShim({ name: 'missing-tool', target: '/bin/missing' }, mode), '/usr/bin/missing-tool')
      const r = runInContainer({ root, host: hostTree, argv: ['/usr/bin/missing-tool', 'arg'] })
      t.equal(r.status, 127)
      t.equal(r.stdout.length, 0)
      t.equal(text(r.stderr), failure('missing-tool', 'targetMissing', `${HOST_ROOT}/bin/missing`, 'ENOENT'))

      // A missing directory on the way: ENOTDIR is "not found" too.
      await install(root, await buildShim({ name: 'under-file', target: '/bin/script/x' }, mode), '/usr/bin/under-file')
      const u = runInContainer({ root, host: hostTree, argv: ['/usr/bin/under-file'] })
      t.equal(u.status, 127)
      t.equal(text(u.stderr), failure('under-file', 'targetMissing', `${HOST_ROOT}/bin/script/x`, 'ENOTDIR'))
    })

    t.test('a target without the exec bit: 126', async (t) => {
      const root = await freshRoot()
      await install(root, await buildShim({ name: 'notexec', target: '/bin/notexec' }, mode), '/usr/bin/notexec')
      const r = runInContainer({ root, host: hostTree, argv: ['/usr/bin/notexec'] })
      t.equal(r.status, 126)
      t.equal(r.stdout.length, 0)
      t.equal(text(r.stderr), failure('notexec', 'targetBad', `${HOST_ROOT}/bin/notexec`, 'EACCES'))
    })

    t.test('a directory target: 126', async (t) => {
      const root = await freshRoot()
      await install(root, await buildShim({ name: 'adir', target: '/bin/adir' }, mode), '/usr/bin/adir')
      const r = runInContainer({ root, host: hostTree, argv: ['/usr/bin/adir'] })
      t.equal(r.status, 126)
      t.equal(text(r.stderr), failure('adir', 'targetBad', `${HOST_ROOT}/bin/adir`, 'EISDIR'))
    })

    t.test('a target that is not ELF: 126', async (t) => {
      const root = await freshRoot()
      await install(root, await buildShim({ name: 'script', target: '/bin/script' }, mode), '/usr/bin/script')
      const r = runInContainer({ root, host: hostTree, argv: ['/usr/bin/script'] })
      t.equal(r.status, 126)
      t.equal(text(r.stderr), failure('script', 'targetBad', `${HOST_ROOT}/bin/script`, 'ENOEXEC'))
    })

    t.test('a host without the target\'s loader: 127 naming it, no fallback to the container\'s', async (t) => {
      const root = await freshRoot()
      // The container has a loader of its own where PT_INTERP points; the shim must not use it.
      await mkdir(join(root, 'lib64'), { recursive: true })
      await copyFile('/lib64/ld-linux-x86-64.so.2', join(root, 'lib64/ld-linux-x86-64.so.2'))
      await install(root, await buildShim({ name: 'probe', target: '/bin/probe' }, mode), '/usr/bin/probe')
      const r = runInContainer({ root, host: hostTree, argv: ['/usr/bin/probe'] })
      t.equal(r.status, 127)
      t.equal(r.stdout.length, 0, 'the probe did not run')
      t.equal(text(r.stderr), failure('probe', 'loaderMissing', `${HOST_ROOT}/lib64/ld-linux-x86-64.so.2`, 'ENOENT'))
    })

    t.test('host mode: the target is exec\'d directly', async (t) => {
      if (!machineIsHost(t)) return
      const shim = await buildShim({ name: 'id', target: '/usr/bin/id' }, mode)
      const native = runHost('/usr/bin/id', [])
      const r = runHost(shim, [], { env: { ...CONTAINER_ENV, [DEBUG_ENV]: '1' } })
      t.equal(r.status, 0)
      t.equal(text(r.stdout), text(native.stdout), 'same output as the native id')
      const debug = parseDebug(r.stderr, 'id')
      t.equal(debug.mode, 'host')
      t.equal(debug.loader, null, 'loader: -')
      t.equal(debug.libraryPath, null, 'library-path: -')
      t.equal(text(debug.exec), '/usr/bin/id')
      t.equal(debug.start, 'exec', 'host mode execs the target itself, whatever the shim\'s mode')
      t.same(debug.argv.map(text), [shim])

      const quiet = runHost(shim, ['-u'], { argv0: 'my-id' })
      t.equal(quiet.status, 0)
      t.equal(text(quiet.stderr), '', 'no debug output without the variable')
      t.equal(text(quiet.stdout), text(runHost('/usr/bin/id', ['-u']).stdout))

      const p = runHost(await buildShim({ name: 'probe', target: probe }, mode), ['x'], { argv0: 'from the caller' })
      t.same(parseProbe(p.stdout).argv.map(text), ['from the caller', 'x'], 'argv, argv[0] included, as the caller passed it')
    })

    t.test('requireHostRoot: without the host root, 127 naming it, and the target never runs', async (t) => {
      if (!machineIsHost(t)) return
      const shim = await buildShim({ name: 'probe', target: probe, requireHostRoot: true }, mode)
      const bare = runHost(shim, ['x'], { env: { ...CONTAINER_ENV, [DEBUG_ENV]: '1' } })
      t.equal(bare.status, 127, 'on this machine (no /run/host)')
      t.equal(bare.stdout.length, 0, 'the probe did not run')
      t.equal(text(bare.stderr), failure('probe', 'noHostRoot', HOST_ROOT, 'ENOENT'))

      // A container root with no /run/host at all (podman without -v /:/run/host), and one with a file there.
      const root = await freshRoot()
      await install(root, shim, '/usr/bin/probe')
      await rm(join(root, 'run/host'), { recursive: true })
      const unmounted = runHost(BWRAP, ['--bind', root, '/', '--proc', '/proc', '--dev', '/dev', '--chdir', '/', '--die-with-parent', '--', '/usr/bin/probe'])
      t.equal(unmounted.status, 127)
      t.equal(unmounted.stdout.length, 0)
      t.equal(text(unmounted.stderr), failure('probe', 'noHostRoot', HOST_ROOT, 'ENOENT'))
      await writeFile(join(root, 'run/host'), '')
      const file = runHost(BWRAP, ['--bind', root, '/', '--proc', '/proc', '--dev', '/dev', '--chdir', '/', '--die-with-parent', '--', '/usr/bin/probe'])
      t.equal(file.status, 127)
      t.equal(text(file.stderr), failure('probe', 'noHostRoot', HOST_ROOT, 'ENOTDIR'))

      // The model says the same, byte for byte.
      const config = validateConfig({ name: 'probe', target: probe, requireHostRoot: true, mode })
      t.equal(formatDebug(config, planShim(config, ARCHES.x86_64, nodeHostView('/'), { mode: 'host', argv: ['probe'] })), text(bare.stderr))

      // With the host mounted it runs as any shim does.
      const mounted = await freshRoot()
      await install(mounted, shim, '/usr/bin/probe')
      const r = runInContainer({ root: mounted, host: '/', argv: ['/usr/bin/probe', 'x'] })
      t.equal(r.status, 0, text(r.stderr))
      t.same(parseProbe(r.stdout).argv.map(text), ['/usr/bin/probe', 'x'])
    })

    t.test('the environment is passed on untouched', async (t) => {
      const root = await freshRoot()
      const shim = await buildShim({ name: 'henv', target: '/usr/bin/env' }, mode)
      await install(root, shim, '/usr/bin/henv')
      const baseline = runInContainer({ root, host: '/', argv: ['/bin/env'], env: CALLER_ENV })
      t.equal(baseline.status, 0)
      t.match(text(baseline.stdout), 'MULTI=one\ntwo\n', 'the baseline is busybox env with the caller\'s environment')
      const r = runInContainer({ root, host: '/', argv: ['/usr/bin/henv'], env: CALLER_ENV })
      t.equal(r.status, 0)
      t.equal(text(r.stderr), '')
      t.equal(hex(r.stdout), hex(baseline.stdout), 'the host env through the shim prints what busybox env prints')
      t.notMatch(text(r.stdout), /^LD_/m, 'no LD_LIBRARY_PATH or other LD_ variable')

      const host = runHost(shim, [], { env: CALLER_ENV })
      t.equal(hex(host.stdout), hex(runHost('/usr/bin/env', [], { env: CALLER_ENV }).stdout), 'host mode too')
    })

    t.test('configured env: adds a variable or replaces one of that name', async (t) => {
      const root = await freshRoot()
      await install(root, await buildShim({ name: 'henv', target: '/usr/bin/env', env: { FOO: 'bar' } }, mode), '/usr/bin/henv')
      for (const [label, env] of [
        ['added', CALLER_ENV],
        ['replaced', { ...CALLER_ENV, FOO: 'old' }],
      ] as const) {
        const baseline = runInContainer({ root, host: '/', argv: ['/bin/env'], env }).stdout
        const r = runInContainer({ root, host: '/', argv: ['/usr/bin/henv'], env })
        t.equal(r.status, 0)
        const got = envEntries(r.stdout)
        t.same(got.filter((e) => e.startsWith('FOO=')), ['FOO=bar'], `${label}: one FOO, the configured one`)
        t.same(
          got.filter((e) => !e.startsWith('FOO=')),
          envEntries(baseline).filter((e) => !e.startsWith('FOO=')),
          `${label}: every other variable as the caller had it, in order (FOOD and FO too)`,
        )
      }
    })

    t.test('no fork: the caller\'s PID is the program\'s', async (t) => {
      const root = await freshRoot()
      await install(root, await buildShim({ name: 'probe', target: probe }, mode), '/usr/bin/probe')
      const r = await runScript(root, 'echo "pid $$"\nexec /usr/bin/probe\n')
      t.equal(r.status, 0)
      const [first, ...rest] = lines(r.stdout)
      const report = parseProbe(Buffer.from(`${rest.join('\n')}\n`, 'latin1'))
      t.equal(`pid ${report.pid}`, first, 'the probe has the PID of the shell that exec\'d the shim')
    })

    // exec mode: the loader is exec'd. chainload mode: it is mapped into the shim's process, no execve.
    t.test(`${mode === 'exec' ? 'exactly one execve' : 'no execve'} after the shim's own (strace)`, async (t) => {
      const root = await freshRoot()
      await install(root, await buildShim({ name: 'probe', target: probe }, mode), '/usr/bin/probe')
      const trace = join(scratch, `strace-${mode}.out`)
      const r = runInContainer({
        root,
        host: '/',
        argv: ['/usr/bin/probe', 'x'],
        env: { ...CONTAINER_ENV, [DEBUG_ENV]: '1' },
        wrapper: ['/usr/bin/strace', '-f', '-qq', '-y', '-e', 'trace=execve,execveat,fork,vfork,clone,clone3', '-o', trace],
      })
      t.equal(r.status, 0)
      const debug = parseDebug(r.stderr, 'probe')
      const pid = parseProbe(r.stdout).pid
      // "PID syscall(args..." starts a call; "<... syscall resumed>" lines continue one.
      const calls = (await readFile(trace, 'latin1'))
        .split('\n')
        // execveat(fd<path>, "", ...): the shim execs the file it opened; -y names it.
        .map((line) => /^(\d+) +(\w+)\("((?:[^"\\]|\\.)*)"?/.exec(line) ?? /^(\d+) +(execveat)\(\d+<([^>]*)>, ""/.exec(line) ?? /^(\d+) +(\w+)\(/.exec(line))
        .filter((m): m is RegExpExecArray => m !== null)
        .map((m) => ({ pid: Number(m[1]), call: m[2] as string, path: m[3] }))
      const start = calls.findIndex((c) => c.call === 'execve' && c.path === '/usr/bin/probe')
      t.ok(start >= 0, 'strace saw bwrap exec the shim')
      t.equal(calls[start]?.pid, pid, 'in the process that became the probe')
      const after = calls.slice(start + 1).filter((c) => c.pid === pid)
      // The container's /run/host is this machine's "/": strace, outside, may name the fd by its path here.
      const names = [text(debug.exec), text(debug.exec).slice(HOST_ROOT.length)]
      if (mode === 'exec') {
        t.same(after.map((c) => [c.pid, c.call]), [[pid, 'execveat']], 'then one execveat, of the loader the shim opened, and no fork')
        t.ok(names.includes(after[0]?.path ?? ''), `the loader: ${after[0]?.path}`)
      }
      else t.same(after, [], 'then no execve (the loader runs in the shim\'s process) and no fork')
      t.match(text(debug.exec), /^\/run\/host\/.*\/ld-linux-x86-64\.so\.2$/)
      t.equal(debug.start, mode, `the debug output says ${mode}, the way the loader was started`)
    })

    t.test('hostile config strings reach the running shim byte for byte', async (t) => {
      const values = Object.values(HOSTILE)
      const target = join(scratch, 'hostile', ...values, 'probe')
      await mkdir(dirname(target), { recursive: true })
      await copyFile(probe, target)
      const libDirs = values.map((v) => join(scratch, 'hostile-libs', v))
      for (const d of libDirs) await mkdir(d, { recursive: true })
      const env = Object.fromEntries(Object.entries(HOSTILE).map(([k, v]) => [`HOSTILE_${k}`, v]))

      const shim = await buildShim({ name: 'hostile', target, libDirs, env }, mode)
      const root = await freshRoot()
      await install(root, shim, '/usr/bin/hostile')
      const r = runInContainer({ root, host: '/', argv: ['/usr/bin/hostile', 'arg'], env: { ...CONTAINER_ENV, [DEBUG_ENV]: '1' } })
      t.equal(r.status, 0, 'the probe ran from its hostile path')

      const debug = parseDebug(r.stderr, 'hostile')
      t.equal(debug.mode, 'container')
      const loader = debug.loader ?? Buffer.alloc(0)
      const lp = debug.libraryPath ?? Buffer.alloc(0)
      t.same(
        debug.argv.map(hex),
        [loader, '--argv0', '/usr/bin/hostile', '--inhibit-cache', '--library-path', lp, `${HOST_ROOT}${target}`, 'arg'].map(hex),
        'the target path, byte for byte',
      )
      t.same(
        text(lp).split(':').slice(-libDirs.length).map((d) => hex(Buffer.from(d, 'latin1'))),
        libDirs.map((d) => hex(`${HOST_ROOT}${d}`)),
        'the configured libDirs, last in the library path, byte for byte',
      )
      const seen = parseProbe(r.stdout).env.map(hex)
      for (const [k, v] of Object.entries(env)) t.ok(seen.includes(hex(`${k}=${v}`)), `${k} in the program's environment`)

      const h = runHost(shim, ['arg'], { env: { ...CONTAINER_ENV, [DEBUG_ENV]: '1' } })
      t.equal(h.status, 0, 'host mode runs it too')
      t.equal(hex(parseDebug(h.stderr, 'hostile').exec), hex(target), 'host mode: exec of the target itself')
    })

    t.test(`a ${MAX_PATH_BYTES}-byte target path`, async (t) => {
      const target = pathOfBytes(join(scratch, 'long'), MAX_PATH_BYTES)
      t.equal(Buffer.byteLength(target), MAX_PATH_BYTES)
      t.ok(target.length < MAX_PATH_BYTES, 'fewer characters than bytes: the limit counts bytes')
      await mkdir(dirname(target), { recursive: true })
      await copyFile(probe, target)
      const shim = await buildShim({ name: 'long', target }, mode)

      const h = runHost(shim, ['arg'], { env: { ...CONTAINER_ENV, [DEBUG_ENV]: '1' } })
      t.equal(h.status, 0, 'host mode: it runs')
      t.equal(hex(parseDebug(h.stderr, 'long').exec), hex(target))

      // In a container, /run/host + the path is longer than PATH_MAX: refused, not truncated.
      const root = await freshRoot()
      await install(root, shim, '/usr/bin/long')
      const c = runInContainer({ root, host: '/', argv: ['/usr/bin/long'] })
      t.equal(c.status, 126)
      t.equal(c.stdout.length, 0)
      t.equal(lines(c.stderr).length, 1, 'one line')
      t.match(text(c.stderr), new RegExp(`^long: ${FAILURES.targetMissing}: /run/host/.*: ${STRERROR.ENAMETOOLONG}\\n$`))
    })
  })
}

t.test('validateConfig refuses what the shim cannot carry, naming the field', async (t) => {
  const base = { name: 'x', target: '/usr/bin/x' }
  const cases: [string, RawConfig, string][] = [
    ['NUL in target', { ...base, target: '/usr/bin/a\0b' }, 'target'],
    ['NUL in a libDir', { ...base, libDirs: ['/lib\0'] }, 'libDirs[0]'],
    ['NUL in an env value', { ...base, env: { FOO: 'a\0b' } }, 'env.FOO'],
    ['lone surrogate in target', { ...base, target: '/usr/bin/\ud800' }, 'target'],
    ['lone surrogate in an env value', { ...base, env: { FOO: 'x\udc00' } }, 'env.FOO'],
    ['env name with a dash', { ...base, env: { 'BAD-NAME': 'v' } }, 'env.BAD-NAME'],
    ['env name starting with a digit', { ...base, env: { '1X': 'v' } }, 'env.1X'],
    ['env name with =', { ...base, env: { 'A=B': 'v' } }, 'env.A=B'],
    ['non-ASCII env name', { ...base, env: { 'É': 'v' } }, 'env.É'],
    [`${MAX_PATH_BYTES + 1}-byte target`, { ...base, target: `/${'a'.repeat(MAX_PATH_BYTES)}` }, 'target'],
    [`${MAX_PATH_BYTES + 1}-byte target in 2-byte characters`, { ...base, target: `/x${'é'.repeat((MAX_PATH_BYTES - 1) / 2)}` }, 'target'],
    [`${MAX_PATH_BYTES + 1}-byte libDir`, { ...base, libDirs: [`/${'l'.repeat(MAX_PATH_BYTES)}`] }, 'libDirs[0]'],
  ]
  for (const [label, raw, field] of cases) {
    try {
      validateConfig(raw)
      t.fail(`${label}: accepted`)
    } catch (error) {
      t.ok(error instanceof ConfigError, `${label}: a ConfigError`)
      t.equal((error as ConfigError).field, field, `${label}: names ${field}`)
    }
  }
  t.equal(Buffer.byteLength(`/x${'é'.repeat((MAX_PATH_BYTES - 1) / 2)}`), MAX_PATH_BYTES + 1)
  t.doesNotThrow(() => validateConfig({ ...base, target: `/${'a'.repeat(MAX_PATH_BYTES - 1)}` }), `${MAX_PATH_BYTES} bytes pass`)
})

t.test('no mount leaked into the test process', async (t) => {
  t.notOk(existsSync(join(scratch, 'root-1', 'run/host/usr')), 'the host is not visible under a root from outside')
  assertNoStrayMounts(t, [scratch])
})
