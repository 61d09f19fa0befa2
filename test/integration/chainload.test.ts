// Chainload mode (issue #7) with real shims: the shim maps the host loader
// into its own process instead of exec'ing it, so /proc/self/exe stays the
// shim, /proc/PID/cmdline stays the caller's argv, and a program that
// re-executes itself through /proc/self/exe works. Everything else must be
// exactly what exec mode gives: the same plan, the same errors, the same
// argv, environment, exit status and output.
//
// Containers are busybox roots made by bwrap with the machine's `/` (Debian,
// glibc 2.36) at /run/host; host mode runs on the machine itself; other
// architectures run under qemu-user against Debian's libc6-<arch>-cross.
//
// Needs: bwrap, busybox-static, cc, qemu-user-static, apt-get (see .ci/setup).
//
// i686 runs under qemu-user on every machine, and natively too where the
// kernel runs i386 programs (asked with a tiny program, test/lib/native.ts;
// HOSTSHIM_TEST_EMULATE=i686 makes the answer no). Checked on Linux 6.18
// microVM kernels: one whose execve() of i386 programs fails with ENOEXEC
// (the qemu case only; before the probe this test failed there), and, with
// the native case, ones with IA32 emulation (where HOSTSHIM_TEST_EMULATE=i686
// leaves the qemu case only).

import { existsSync, readFileSync } from 'node:fs'
import { chmod, copyFile, mkdir, rm, symlink, writeFile } from 'node:fs/promises'
import { constants } from 'node:os'
import { dirname, join } from 'node:path'
import t, { type Test } from 'tap'
import { ARCHES, type Arch } from '../../launcher/arch.js'
import { parseElf } from '../../launcher/elf.js'
import { markOf } from '../../launcher/mark.js'
import { FAILURES, STRERROR } from '../../launcher/plan.js'
import { CHAINLOAD_ARCHES } from '../../shim/chainload.js'
import {
  CONTAINER_ENV,
  HOST_ROOT,
  machineIsHost,
  addHostUserDb,
  makeBusyboxRoot,
  runHost,
  runInContainer,
  shellCommand,
  waitStatusFromTime,
} from '../lib/container.js'
import {
  aarch64Feature,
  craftElf,
  EM_AARCH64,
  EM_ARM,
  EM_X86_64,
  ET_DYN,
  ET_EXEC,
  gnuPropertyNote,
  PF_R,
  PT_GNU_PROPERTY,
  PT_NULL,
  type CraftSegment,
} from '../lib/elfcraft.js'

import {
  buildForeignProgram,
  buildSelfProbe,
  buildShimFor,
  cmdlineOf,
  makeForeignHost,
  parseSelfProbe,
  qemuFor,
  removeShimsFor,
  SELF_PROBE_C,
} from '../lib/chainload.js'
import { describeNative, runsNatively } from '../lib/native.js'
import { COMPILE_TIMEOUT_MS, DEBUG_ENV, buildShim, parseDebug, suiteScratch, type ShimFields } from '../lib/shims.js'

// Cold, the foreign architectures each build zig's compiler-rt first.
t.setTimeout(COMPILE_TIMEOUT_MS * 12)

const scratch = await suiteScratch(t, 'chainload')
t.teardown(removeShimsFor)

const selfprobe = await buildSelfProbe(scratch)
const text = (b: Buffer) => b.toString('latin1')
const hex = (b: Buffer | string) => (typeof b === 'string' ? Buffer.from(b, 'utf8') : b).toString('hex')

/** The same config in both modes. */
async function shimPair(fields: ShimFields): Promise<{ chain: string; exec: string }> {
  return { chain: await buildShim({ ...fields, mode: 'chainload' }), exec: await buildShim({ ...fields, mode: 'exec' }) }
}

let roots = 0
/** A fresh busybox root, with readlink, and the given shims installed as /usr/bin/NAME. */
async function freshRoot(shims: Record<string, string> = {}): Promise<string> {
  const root = await makeBusyboxRoot(join(scratch, `root-${++roots}`))
  await symlink('busybox', join(root, 'bin/readlink'))
  for (const [dest, shim] of Object.entries(shims)) {
    await mkdir(dirname(join(root, dest)), { recursive: true })
    await copyFile(shim, join(root, dest))
    await chmod(join(root, dest), 0o755)
  }
  return root
}

let scripts = 0
/** Run a script (bytes) with busybox sh in the root: any byte but NUL survives. */
async function runScript(root: string, script: Buffer | string, env: Record<string, string> = { ...CONTAINER_ENV }, host = '/') {
  const file = `/tmp/script-${++scripts}.sh`
  await writeFile(join(root, file), script)
  return runInContainer({ root, host, argv: ['/bin/sh', file], env })
}

// Words that a shell, a C string or a loader option parser could get wrong.
const ODD_ARGS: (string | Buffer)[] = [
  '',
  'two words',
  'new\nline',
  '--argv0',
  '--library-path',
  '-',
  'café 日本 😀',
  Buffer.from([0xff, 0xfe, 0x80, 0x01, 0x7f]),
]
/** The ones a spawn can pass (node encodes arguments as UTF-8). */
const ODD_STRINGS = ODD_ARGS.filter((a): a is string => typeof a === 'string')

t.test('the chainload shim is a static PIE', async (t) => {
  const { chain, exec } = await shimPair({ name: 'selfprobe', target: selfprobe })
  const elf = parseElf(readFileSync(chain))
  t.equal(elf.typeName, 'DYN', 'position independent: the kernel places it away from any non-PIE program')
  t.notOk(elf.hasInterpreter, 'no PT_INTERP: static')
  t.same(elf.dynamic?.needed ?? [], [], 'no shared libraries')
  t.equal(parseElf(readFileSync(exec)).typeName, 'DYN', 'an exec shim is a static PIE too, for its layout')
  t.equal(markOf(readFileSync(exec))?.mode, 'exec', 'its mark tells the modes apart')
  t.comment(`x86_64 shim sizes: chainload ${readFileSync(chain).length} bytes, exec ${readFileSync(exec).length} bytes`)
})

t.test('a shell through a chainload shim: /proc/$$/exe is the shim', async (t) => {
  for (const shell of ['/usr/bin/bash', '/usr/bin/dash']) {
    if (!existsSync(shell)) continue
    const name = shell.slice(shell.lastIndexOf('/') + 1)
    const { chain, exec } = await shimPair({ name, target: shell })
    // "; true": a shell would exec a last simple command in place of itself.
    const argv = [shell, '-c', 'readlink /proc/$$/exe; true']
    const chained = runInContainer({ root: await freshRoot({ [shell]: chain }), host: '/', argv })
    t.equal(chained.status, 0, `${name}, chainload`)
    t.equal(text(chained.stderr), '')
    t.equal(text(chained.stdout), `${shell}\n`, `${name}, chainload: the shim`)

    const root = await freshRoot({ [shell]: exec })
    const plan = parseDebug(runInContainer({ root, host: '/', argv: [shell, '-c', ':'], env: { ...CONTAINER_ENV, [DEBUG_ENV]: '1' } }).stderr, name)
    const execd = runInContainer({ root, host: '/', argv })
    t.equal(execd.status, 0, `${name}, exec`)
    t.equal(text(execd.stdout), `${text(plan.loader ?? Buffer.alloc(0))}\n`, `${name}, exec mode (the control): the host loader`)
  }
})

t.test('a program that re-executes /proc/self/exe: works chained, breaks exec\'d', async (t) => {
  const { chain, exec } = await shimPair({ name: 'selfprobe', target: selfprobe })

  const chained = runInContainer({ root: await freshRoot({ '/usr/bin/selfprobe': chain }), host: '/', argv: ['/usr/bin/selfprobe', 'again'] })
  t.equal(chained.status, 0, 'chainload: the re-executed program ran')
  t.equal(text(chained.stderr), '')
  const report = parseSelfProbe(chained.stdout)
  t.same(report.argv.map(text), ['reexec-child', 'child', 'new args'], 'with the new arguments, argv[0] included')
  t.equal(text(report.exe), '/usr/bin/selfprobe', 'and is still itself')

  // Under exec mode /proc/self/exe is the loader: it takes "child" for the program to load.
  const execd = runInContainer({ root: await freshRoot({ '/usr/bin/selfprobe': exec }), host: '/', argv: ['/usr/bin/selfprobe', 'again'] })
  t.equal(execd.status, 127, 'exec mode (the control): the loader fails')
  t.equal(execd.stdout.length, 0)
  t.match(text(execd.stderr), /child: cannot open shared object file/)
})

t.test('/proc/PID/cmdline and comm are the caller\'s', async (t) => {
  const { chain, exec } = await shimPair({ name: 'selfprobe', target: selfprobe })
  const argv = ['/usr/bin/selfprobe', ...ODD_ARGS]
  const script = Buffer.concat([Buffer.from('exec '), shellCommand(argv), Buffer.from('\n')])

  const chained = await runScript(await freshRoot({ '/usr/bin/selfprobe': chain }), script)
  t.equal(chained.status, 0)
  t.equal(text(chained.stderr), '')
  const report = parseSelfProbe(chained.stdout)
  t.equal(hex(report.cmdline), hex(cmdlineOf(argv)), 'cmdline: exactly the argv the caller passed')
  t.equal(text(report.comm), 'selfprobe', 'comm: the shim\'s name')

  const execd = parseSelfProbe((await runScript(await freshRoot({ '/usr/bin/selfprobe': exec }), script)).stdout)
  t.not(hex(execd.cmdline), hex(cmdlineOf(argv)), 'exec mode (the control): the loader\'s command line')
  t.match(text(execd.comm), /^ld-linux/, 'exec mode (the control): comm is the loader\'s')
})

t.test('argv, environment and pid are what exec mode gives', async (t) => {
  const fields = { name: 'selfprobe', target: selfprobe, env: { HOSTSHIM_TEST_SET: 'set by the shim', LC_ALL: 'C.UTF-8' } }
  const { chain, exec } = await shimPair(fields)
  // "echo $$; exec": the program must have the shell's pid: no fork on the way.
  const script = Buffer.concat([Buffer.from('echo $$; exec '), shellCommand(['/usr/bin/selfprobe', ...ODD_ARGS]), Buffer.from('\n')])
  const reports = []
  for (const shim of [chain, exec]) {
    const r = await runScript(await freshRoot({ '/usr/bin/selfprobe': shim }), script)
    t.equal(r.status, 0)
    t.equal(text(r.stderr), '')
    const [pidLine, ...rest] = text(r.stdout).split('\n')
    const report = parseSelfProbe(Buffer.from(rest.join('\n'), 'latin1'))
    t.equal(report.pid, Number(pidLine), `${shim === chain ? 'chainload' : 'exec'}: the shell's pid, no fork`)
    reports.push(report)
  }
  const [chained, execd] = reports as [ReturnType<typeof parseSelfProbe>, ReturnType<typeof parseSelfProbe>]
  t.same(chained.argv.map(hex), ['/usr/bin/selfprobe', ...ODD_ARGS].map(hex), 'argv byte for byte, argv[0] the caller\'s')
  t.same(chained.argv.map(hex), execd.argv.map(hex), 'the same argv as exec mode')
  t.same(chained.env.map(hex), execd.env.map(hex), 'the same environment as exec mode')

  // What the program sees started by hand through the loader, from the same shell: the caller's environment.
  const root = await freshRoot({ '/usr/bin/selfprobe': chain })
  const plan = parseDebug(runInContainer({ root, host: '/', argv: ['/usr/bin/selfprobe'], env: { ...CONTAINER_ENV, [DEBUG_ENV]: '1' } }).stderr, 'selfprobe')
  const floorScript = Buffer.concat([Buffer.from('exec '), shellCommand([...plan.argv, ...ODD_ARGS]), Buffer.from('\n')])
  const floor = parseSelfProbe((await runScript(root, floorScript)).stdout)
  // Configured variables replace the caller's of the same name and come last, in order.
  const configured = Object.entries(fields.env).map(([k, v]) => `${k}=${v}`)
  const expected = [...floor.env.map(text).filter((e) => !configured.some((c) => e.startsWith(c.slice(0, c.indexOf('=') + 1)))), ...configured]
  t.same(chained.env.map(text), expected, 'the caller\'s environment, configured variables set, nothing else added')
})

t.test('the plan and its debug output are exec mode\'s', async (t) => {
  const { chain, exec } = await shimPair({ name: 'selfprobe', target: selfprobe })
  const env = { ...CONTAINER_ENV, [DEBUG_ENV]: '1' }
  const chained = runInContainer({ root: await freshRoot({ '/usr/bin/selfprobe': chain }), host: '/', argv: ['/usr/bin/selfprobe', 'a b'], env })
  const execd = runInContainer({ root: await freshRoot({ '/usr/bin/selfprobe': exec }), host: '/', argv: ['/usr/bin/selfprobe', 'a b'], env })
  t.equal(chained.status, 0)
  // Byte for byte but the line that names how the loader starts: "chainload: LOADER" against "exec: LOADER".
  const startLine = (s: string) => s.replace(/^selfprobe: (chainload|exec): /m, 'selfprobe: START: ')
  t.equal(startLine(text(chained.stderr)), startLine(text(execd.stderr)), 'byte for byte, but for how the loader starts')
  t.match(text(chained.stderr), /^selfprobe: chainload: /m, 'the chainload shim says it chainloads')
  const plan = parseDebug(chained.stderr, 'selfprobe')
  t.equal(plan.mode, 'container')
  t.same(plan.argv.map(text).slice(1, 4), ['--argv0', '/usr/bin/selfprobe', '--inhibit-cache'], 'the loader\'s argv as in exec mode')
})

t.test('a non-PIE program at fixed addresses: the shim is out of its way', async (t) => {
  // 0x1000000 is where zig links a static non-PIE executable: a non-PIE
  // shim would sit there, under the program, with the library path in its bss.
  const fixed = await buildSelfProbe(scratch, ['-no-pie', '-Wl,-Ttext-segment=0x1000000'], 'fixed-probe')
  t.equal(parseElf(readFileSync(fixed)).typeName, 'EXEC', 'the program is not position independent')
  const shim = await buildShim({ name: 'fixed-probe', target: fixed, mode: 'chainload' })
  const r = runInContainer({ root: await freshRoot({ '/usr/bin/fixed-probe': shim }), host: '/', argv: ['/usr/bin/fixed-probe', 'exit', '5'] })
  t.equal(r.status, 5)
  t.equal(text(r.stderr), '')
  t.equal(text(parseSelfProbe(r.stdout).exe), '/usr/bin/fixed-probe')
})

t.test('exit codes and signals come back unchanged', async (t) => {
  const root = await freshRoot({ '/usr/bin/hsh': await buildShim({ name: 'hsh', target: '/bin/sh', mode: 'chainload' }) })
  for (const code of [0, 1, 42, 126, 127, 255]) {
    const r = runInContainer({ root, host: '/', argv: ['/usr/bin/hsh', '-c', `exit ${code}`] })
    t.equal(r.status, code, `exit ${code}`)
    t.equal(text(r.stderr), '')
  }
  const timed = (...argv: string[]) => waitStatusFromTime(runInContainer({ root, host: '/', argv: ['/bin/time', ...argv] }).stderr)
  for (const name of ['TERM', 'KILL'] as const) {
    t.same(timed('/usr/bin/hsh', '-c', `kill -${name} $$`), { signal: constants.signals[`SIG${name}`] }, `SIG${name}`)
  }
})

t.test('stdin and stdout pass through; output equals the native program\'s', async (t) => {
  const root = await freshRoot({
    '/usr/bin/cat': await buildShim({ name: 'cat', target: '/usr/bin/cat', mode: 'chainload' }),
    '/usr/bin/sha256sum': await buildShim({ name: 'sha256sum', target: '/usr/bin/sha256sum', mode: 'chainload' }),
    '/usr/bin/id': await buildShim({ name: 'id', target: '/usr/bin/id', mode: 'chainload' }),
  })
  await addHostUserDb(root)
  const input = Buffer.alloc(1 << 20)
  for (let i = 0; i < input.length; i++) input[i] = (i * 7919 + (i >> 8)) & 0xff
  const cat = runInContainer({ root, host: '/', argv: ['/usr/bin/cat'], input })
  t.equal(cat.status, 0)
  t.ok(cat.stdout.equals(input), '1 MiB through cat, byte for byte')

  for (const [argv, stdin] of [
    [['/usr/bin/sha256sum'], input],
    [['/usr/bin/id'], ''],
    [['/usr/bin/id', '-Gn'], ''],
  ] as const) {
    const native = runHost(argv[0], argv.slice(1), { input: stdin })
    const chained = runInContainer({ root, host: '/', argv, input: stdin })
    t.equal(chained.status, native.status, `${argv.join(' ')}: status`)
    t.equal(text(chained.stdout), text(native.stdout), `${argv.join(' ')}: the native output`)
    t.equal(text(chained.stderr), '')
  }
})

/** The one line a failing shim writes. */
function failure(name: string, what: keyof typeof FAILURES, path: string, errno: keyof typeof STRERROR): string {
  return `${name}: ${FAILURES[what]}: ${path}: ${STRERROR[errno]}\n`
}

t.test('failures before the jump: exec mode\'s messages and exit codes', async (t) => {
  // A host tree whose loader is missing, then one whose loader is a script.
  const host = join(scratch, 'failhost')
  await mkdir(join(host, 'bin'), { recursive: true })
  await copyFile(selfprobe, join(host, 'bin/selfprobe'))
  const { chain, exec } = await shimPair({ name: 'selfprobe', target: '/bin/selfprobe' })
  const run = async (shim: string) => runInContainer({ root: await freshRoot({ '/usr/bin/selfprobe': shim }), host, argv: ['/usr/bin/selfprobe'] })

  const missing = await run(chain)
  t.equal(missing.status, 127)
  t.equal(text(missing.stderr), failure('selfprobe', 'loaderMissing', `${HOST_ROOT}/lib64/ld-linux-x86-64.so.2`, 'ENOENT'))
  t.same(await run(exec), missing, 'exec mode fails the same way')

  await mkdir(join(host, 'lib64'))
  await writeFile(join(host, 'lib64/ld-linux-x86-64.so.2'), '#!/bin/sh\necho not a loader\n', { mode: 0o755 })
  const script = await run(chain)
  t.equal(script.status, 126)
  t.equal(text(script.stderr), failure('selfprobe', 'loaderBad', `${HOST_ROOT}/lib64/ld-linux-x86-64.so.2`, 'ENOEXEC'))
  t.same(await run(exec), script, 'exec mode fails the same way')

  // Chainload's own refusal: a loader at fixed addresses (ET_EXEC) could land on the program.
  await writeFile(join(host, 'lib64/ld-linux-x86-64.so.2'), craftElf({ machine: EM_X86_64, type: ET_EXEC, load: true }), { mode: 0o755 })
  const fixed = await run(chain)
  t.equal(fixed.status, 126)
  t.equal(fixed.stdout.length, 0)
  t.equal(text(fixed.stderr), failure('selfprobe', 'exec', `${HOST_ROOT}/lib64/ld-linux-x86-64.so.2`, 'ENOEXEC'), 'as a failed execve would say')
})

t.test('host mode, a Toolbx-built program (PT_INTERP under /run/host)', async (t) => {
  if (!machineIsHost(t)) return
  // Built the way Toolbx builds: it cannot start on a host without /run/host.
  const toolbx = await buildSelfProbe(scratch, [`-Wl,--dynamic-linker=${HOST_ROOT}/lib64/ld-linux-x86-64.so.2`], 'toolbx-probe')
  t.equal(parseElf(readFileSync(toolbx)).interpreter, `${HOST_ROOT}/lib64/ld-linux-x86-64.so.2`)

  const shim = await buildShim({ name: 'toolbx-probe', target: toolbx, mode: 'chainload' })
  const debug = parseDebug(runHost(shim, [], { env: { ...CONTAINER_ENV, [DEBUG_ENV]: '1' } }).stderr, 'toolbx-probe')
  t.equal(debug.mode, 'host')
  t.ok(debug.loader, 'through the host loader')

  const argv = ['my name', ...ODD_STRINGS]
  const r = runHost(shim, argv.slice(1), { argv0: 'my name' })
  t.equal(r.status, 0)
  t.equal(text(r.stderr), '')
  const report = parseSelfProbe(r.stdout)
  t.equal(text(report.exe), shim, '/proc/self/exe is the shim')
  t.equal(hex(report.cmdline), hex(cmdlineOf(argv)), 'cmdline is the caller\'s')
  t.same(report.argv.map(hex), argv.map(hex), 'argv verbatim, argv[0] the caller\'s')
  const native = parseSelfProbe(runHost(selfprobe, argv.slice(1), { argv0: 'my name' }).stdout)
  t.same(report.env.map(hex), native.env.map(hex), 'environment unchanged: what the program gets run natively')

  const again = runHost(shim, ['again'])
  t.equal(again.status, 0, 're-executing /proc/self/exe works')
  t.same(parseSelfProbe(again.stdout).argv.map(text), ['reexec-child', 'child', 'new args'])
  t.equal(runHost(shim, ['exit', '77']).status, 77, 'exit status')
})

/**
 * Other architectures: a glibc program for the architecture, its glibc from
 * Debian's cross package as the host tree, the chainload shim in a busybox
 * root, run under qemu-user, or natively where the kernel runs the
 * architecture itself (i686 on an x86_64 kernel with IA32 emulation: asked,
 * test/lib/native.ts). The floor to compare with: the same loader run
 * directly with the shim's exact argv.
 */
async function foreignCase(t: Test, arch: Arch, native: boolean): Promise<void> {
  const qemu = native ? null : qemuFor(arch)
  if (!native && qemu === null) {
    t.fail(`qemu-${arch.qemu}-static is not installed (qemu-user-static)`)
    return
  }
  t.comment(describeNative(arch))
  const host = await makeForeignHost(arch, join(scratch, `host-${arch.name}`))
  await mkdir(join(host, 'bin'), { recursive: true })
  await buildForeignProgram(arch, SELF_PROBE_C, join(host, 'bin/selfprobe'))
  const shim = await buildShimFor(arch.name, { name: 'selfprobe', target: '/bin/selfprobe', mode: 'chainload' })
  const elf = parseElf(readFileSync(shim))
  t.equal(elf.typeName, 'DYN', `${arch.name}: a static PIE`)
  t.comment(`${arch.name} chainload shim: ${readFileSync(shim).length} bytes`)
  const root = await freshRoot({ '/usr/bin/selfprobe': shim })
  const prefix = qemu === null ? [] : ['/qemu']
  if (qemu !== null) await copyFile(qemu, join(root, 'qemu'))

  const argv = ['/usr/bin/selfprobe', 'exit', '3', ...ODD_STRINGS]
  const r = runInContainer({ root, host, argv: [...prefix, ...argv] })
  t.equal(r.status, 3, `${arch.name}: the program's exit status`)
  t.equal(text(r.stderr), '')
  const report = parseSelfProbe(r.stdout)
  t.same(report.argv.map(hex), argv.map(hex), `${arch.name}: argv verbatim`)
  if (native) {
    t.equal(text(report.exe), '/usr/bin/selfprobe', `${arch.name}: /proc/self/exe is the shim`)
    t.equal(hex(report.cmdline), hex(cmdlineOf(argv)), `${arch.name}: cmdline is the caller's`)
  }

  const plan = parseDebug(runInContainer({ root, host, argv: [...prefix, ...argv], env: { ...CONTAINER_ENV, [DEBUG_ENV]: '1' } }).stderr, 'selfprobe')
  t.equal(plan.mode, 'container')
  const direct = runInContainer({ root, host, argv: [...prefix, ...plan.argv.map((b) => b.toString('utf8'))] })
  t.equal(direct.status, 3, `${arch.name}: the loader run directly (the floor)`)
  const floor = parseSelfProbe(direct.stdout)
  t.same(report.argv.map(hex), floor.argv.map(hex), `${arch.name}: the same argv as the loader run directly`)
  t.same(report.env.map(hex), floor.env.map(hex), `${arch.name}: the same environment as the loader run directly`)
}

for (const name of CHAINLOAD_ARCHES.filter((a) => a !== 'x86_64')) {
  const arch = ARCHES[name]
  // Under qemu on every machine, so that path is tested where the kernel
  // could run the architecture too; natively as well where it can.
  t.test(`${name}: chainload against a foreign glibc, under qemu`, (t) => foreignCase(t, arch, false))
  if (runsNatively(arch)) t.test(`${name}: chainload against a foreign glibc, natively`, (t) => foreignCase(t, arch, true))
}

/**
 * armhf: the loader is entered with every register but the one holding its
 * entry at 0, as the kernel's start_thread() leaves them. glibc's armhf
 * _start reads r4 as it was at entry ("ldr r4, [sl, r4]"), and died of
 * SIGSEGV when the shim left an address there. The crafted loader stores
 * r0-r12 and lr and writes them to stdout: ARM code,
 *
 *     push {r0-r12, lr}; write(1, sp, 56); exit_group(0)
 */
t.test('armhf: the loader starts with the registers the kernel gives it', async (t) => {
  const arch = ARCHES.armhf
  const qemu = qemuFor(arch)
  if (qemu === null) {
    t.fail(`qemu-${arch.qemu}-static is not installed (qemu-user-static)`)
    return
  }
  const code = Buffer.alloc(9 * 4)
  const words = [0xe92d5fff, 0xe3a00001, 0xe1a0100d, 0xe3a02038, 0xe3a07004, 0xef000000, 0xe3a00000, 0xe3a070f8, 0xef000000]
  words.forEach((w, i) => code.writeUInt32LE(w, i * 4))
  const loader = craftElf({
    class: 32,
    machine: EM_ARM,
    type: ET_DYN,
    load: true,
    sections: false,
    segments: [{ type: PT_NULL, data: code }],
    patch: (bytes, layout) => bytes.writeUInt32LE(layout.blobs.segment1?.offset ?? 0, 24),
  })
  const host = await makeForeignHost(arch, join(scratch, 'host-armhf-registers'))
  await mkdir(join(host, 'bin'), { recursive: true })
  await buildForeignProgram(arch, SELF_PROBE_C, join(host, 'bin/selfprobe'))
  await rm(join(host, arch.loaders[0] as string))
  await writeFile(join(host, arch.loaders[0] as string), loader, { mode: 0o755 })
  const shim = await buildShimFor(arch.name, { name: 'selfprobe', target: '/bin/selfprobe', mode: 'chainload' })
  const root = await freshRoot({ '/usr/bin/selfprobe': shim })
  await copyFile(qemu, join(root, 'qemu'))

  const r = runInContainer({ root, host, argv: ['/qemu', '/usr/bin/selfprobe', 'a', 'b'] })
  t.equal(text(r.stderr), '')
  t.equal(r.status, 0, 'the crafted loader ran and exited')
  t.equal(r.stdout.length, 56, 'it wrote r0-r12 and lr')
  if (r.stdout.length !== 56) return
  const regs = Array.from({ length: 14 }, (_, i) => r.stdout.readUInt32LE(i * 4))
  const names = [...Array.from({ length: 13 }, (_, i) => `r${i}`), 'lr']
  const nonzero = names.filter((name, i) => name !== 'r12' && regs[i] !== 0).map((name) => `${name}=0x${regs[names.indexOf(name)]?.toString(16)}`)
  t.same(nonzero, [], 'r0-r11 and lr are 0 at entry')
  t.not(regs[12], 0, 'r12 holds the entry (the register bx took)')
})

/**
 * aarch64: a loader whose GNU property note asks for BTI gets its executable
 * segments mapped with PROT_BTI (guarded pages), as binfmt_elf maps a program
 * or an interpreter, where the CPU has BTI (qemu's default "max" has it,
 * cortex-a57 not). The crafted loaders exit with 42 at once; their first
 * instruction is a "bti c" or a nop, and a branch into a guarded page that
 * does not land on a BTI instruction is SIGILL. So: with the note, a nop
 * entry dies of SIGILL and a "bti c" one runs; without it, or on a CPU
 * without BTI (where qemu would refuse PROT_BTI with EINVAL), both run. A
 * note binfmt_elf refuses (properties out of order) is ENOEXEC, 126.
 */
t.test('aarch64: PROT_BTI where the loader\'s GNU property note asks for it', async (t) => {
  const arch = ARCHES.aarch64
  const qemu = qemuFor(arch)
  if (qemu === null) {
    t.fail(`qemu-${arch.qemu}-static is not installed (qemu-user-static)`)
    return
  }
  const NOP = 0xd503201f
  const BTI_C = 0xd503245f
  const crafted = (first: number, property?: Buffer) => {
    const code = Buffer.alloc(16)
    ;[first, 0xd2800540 /* mov x0, #42 */, 0xd2800bc8 /* mov x8, #94 (exit_group) */, 0xd4000001 /* svc #0 */].forEach((w, i) =>
      code.writeUInt32LE(w, i * 4),
    )
    const segments: CraftSegment[] = [{ type: PT_NULL, data: code }]
    if (property) segments.push({ type: PT_GNU_PROPERTY, flags: PF_R, align: 8, data: property })
    return craftElf({
      class: 64,
      machine: EM_AARCH64,
      type: ET_DYN,
      load: true,
      sections: false,
      segments,
      patch: (bytes, layout) => bytes.writeBigUInt64LE(BigInt(layout.blobs.segment1?.offset ?? 0), 24),
    })
  }
  const BTI = gnuPropertyNote([aarch64Feature(1)])
  const host = await makeForeignHost(arch, join(scratch, 'host-aarch64-bti'))
  await mkdir(join(host, 'bin'), { recursive: true })
  await buildForeignProgram(arch, SELF_PROBE_C, join(host, 'bin/selfprobe'))
  const shim = await buildShimFor(arch.name, { name: 'selfprobe', target: '/bin/selfprobe', mode: 'chainload' })
  const root = await freshRoot({ '/usr/bin/selfprobe': shim })
  await copyFile(qemu, join(root, 'qemu'))
  const loaderPath = join(host, arch.loaders[0] as string)

  const cases: { what: string; loader: Buffer; cpu?: string; status: number; stderr?: RegExp }[] = [
    { what: 'BTI asked, a nop at the entry: SIGILL (the page is guarded)', loader: crafted(NOP, BTI), status: 128 + constants.signals.SIGILL },
    { what: 'BTI asked, "bti c" at the entry: it runs (br x16 lands there)', loader: crafted(BTI_C, BTI), status: 42 },
    { what: 'BTI asked, a CPU without BTI: not guarded', loader: crafted(NOP, BTI), cpu: 'cortex-a57', status: 42 },
    { what: 'no note: not guarded', loader: crafted(NOP), status: 42 },
    { what: 'a note with PAC only: not guarded', loader: crafted(NOP, gnuPropertyNote([aarch64Feature(2)])), status: 42 },
    {
      what: 'a note binfmt_elf refuses: ENOEXEC',
      loader: crafted(BTI_C, gnuPropertyNote([aarch64Feature(1), aarch64Feature(1)])),
      status: 126,
      stderr: /^selfprobe: cannot execute: .*ld-linux-aarch64\.so\.1: Exec format error\n$/,
    },
  ]
  for (const c of cases) {
    await rm(loaderPath, { force: true })
    await writeFile(loaderPath, c.loader, { mode: 0o755 })
    const r = runInContainer({ root, host, argv: ['/qemu', ...(c.cpu ? ['-cpu', c.cpu] : []), '/usr/bin/selfprobe'] })
    t.equal(r.status, c.status, `${c.what}${r.stderr.length ? `: ${text(r.stderr)}` : ''}`)
    if (c.stderr) t.match(text(r.stderr), c.stderr, `${c.what}: the message`)
  }
})
