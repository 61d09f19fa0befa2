// doctor on real trees: this machine's `/`, a busybox-only root, a fake
// old-glibc tree whose version definitions the test controls (crafted ELF
// libraries behind Debian's absolute symbolic links), and Debian 11
// (debootstrapped into the e2e suite's cache when it is not there yet).

import { spawnSync } from 'node:child_process'
import { chmod, copyFile, mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import t from 'tap'
import type { DoctorReport, TreeReport } from '../launcher/doctor.js'
import { compareVersionNames, glibcVersionsRequired, parseElf } from '../launcher/elf.js'
import { runCli } from './lib/cli.js'
import { BUSYBOX, CC } from './lib/container.js'
import { EM_386, EM_AARCH64, ET_DYN, craftElf } from './lib/elfcraft.js'
import { CACHE_DIR as E2E_CACHE_DIR, debianTree } from './e2e/lib/debian.js'

const BULLSEYE = join(E2E_CACHE_DIR, 'bullseye')
const scratch = await mkdtemp(join(tmpdir(), 'hostshim-doctor-'))
t.teardown(() => rm(scratch, { recursive: true, force: true }))

async function put(root: string, path: string, data: Uint8Array | string, mode = 0o644): Promise<void> {
  await mkdir(dirname(join(root, path)), { recursive: true })
  await writeFile(join(root, path), data)
  await chmod(join(root, path), mode)
}

async function link(root: string, path: string, to: string): Promise<void> {
  await mkdir(dirname(join(root, path)), { recursive: true })
  await symlink(to, join(root, path))
}

/** A program built here with the machine's compiler: it needs this machine's glibc (GLIBC_2.34 on glibc >= 2.34). */
const program = join(scratch, 'prog')
await writeFile(`${program}.c`, 'int main(void) { return 0; }\n')
const cc = spawnSync(CC, ['-O1', '-o', program, `${program}.c`], { encoding: 'utf8' })
if (cc.status !== 0) throw new Error(`cc failed: ${cc.stderr}`)
const required = glibcVersionsRequired(parseElf(await readFile(program)))

/** Only busybox: no loader, no libc. */
const busyboxRoot = join(scratch, 'busybox')
await mkdir(join(busyboxRoot, 'bin'), { recursive: true })
await copyFile(BUSYBOX, join(busyboxRoot, 'bin/busybox'))
await symlink('busybox', join(busyboxRoot, 'bin/sh'))

/**
 * A Debian-11-like tree with crafted libraries: libc.so.6 defines
 * GLIBC_2.2.5 ... GLIBC_2.30 and says "release version 2.31" (as 2.31 does).
 * Loader and libc are behind absolute links, which followed from the real `/`
 * would land in this machine's own /lib (glibc 2.36): only re-rooting finds
 * the tree's. ld.so.conf includes a directory with one more library, whose
 * 32-bit namesake in the loader's directory must be skipped.
 */
const OLD_GLIBC = ['GLIBC_2.2.5', 'GLIBC_2.3', 'GLIBC_2.3.4', 'GLIBC_2.4', 'GLIBC_2.14', 'GLIBC_2.17', 'GLIBC_2.28', 'GLIBC_2.30']
const oldRoot = join(scratch, 'old')
const M = 'lib/x86_64-linux-gnu'
await put(oldRoot, `${M}/ld-2.31.so`, craftElf({ type: ET_DYN, soname: 'ld-linux-x86-64.so.2', versionsDefined: ['GLIBC_2.2.5', 'GLIBC_2.3', 'GLIBC_2.4', 'GLIBC_PRIVATE'] }), 0o755)
await link(oldRoot, `${M}/ld-linux-x86-64.so.2`, 'ld-2.31.so')
await link(oldRoot, 'lib64/ld-linux-x86-64.so.2', `/${M}/ld-linux-x86-64.so.2`)
const banner = Buffer.from('GNU C Library (Debian GLIBC 2.31-13) stable release version 2.31.\n')
await put(oldRoot, `${M}/libc-2.31.so`, craftElf({ type: ET_DYN, soname: 'libc.so.6', versionsDefined: [...OLD_GLIBC, 'GLIBC_PRIVATE'], segments: [{ type: 0x6fff0000, data: banner }] }), 0o755)
await link(oldRoot, `${M}/libc.so.6`, `/${M}/libc-2.31.so`)
await put(oldRoot, 'etc/ld.so.conf', 'include /etc/ld.so.conf.d/*.conf\n')
await put(oldRoot, 'etc/ld.so.conf.d/old.conf', '# vendor libraries\n/opt/old/lib\n')
await put(oldRoot, 'opt/old/lib/libold.so.1', craftElf({ type: ET_DYN, soname: 'libold.so.1', versionsDefined: ['OLD_1.0'] }))
await put(oldRoot, `${M}/libold.so.1`, craftElf({ type: ET_DYN, class: 32, machine: EM_386, soname: 'libold.so.1', versionsDefined: ['OLD_1.0'] }))
await copyFile(BUSYBOX, join(oldRoot, 'busybox'))
await link(oldRoot, 'bin/sh', '/busybox')

/** Crafted programs: exactly the needs a test wants. */
async function crafted(name: string, options: Parameters<typeof craftElf>[0]): Promise<string> {
  const path = join(scratch, name)
  await put(scratch, name, craftElf({ type: ET_DYN, interpreter: '/lib64/ld-linux-x86-64.so.2', ...options }), 0o755)
  return path
}
const usesOld = await crafted('uses-old', {
  needed: ['libold.so.1', 'libc.so.6'],
  versionsNeeded: [
    { file: 'libold.so.1', versions: ['OLD_1.0'] },
    { file: 'libc.so.6', versions: ['GLIBC_2.2.5'] },
  ],
})
const needsFuture = await crafted('needs-future', { needed: ['libc.so.6'], versionsNeeded: [{ file: 'libc.so.6', versions: ['GLIBC_2.2.5', 'GLIBC_2.99'] }] })
const needsMissing = await crafted('needs-missing', { needed: ['libc.so.6', 'libhostshim-doctor-missing.so.1'] })
const forAarch64 = await crafted('for-aarch64', { machine: EM_AARCH64, interpreter: '/lib/ld-linux-aarch64.so.1', needed: ['libc.so.6'] })

async function doctor(binary: string, ...args: string[]): Promise<{ code: number; report: DoctorReport; stderr: string }> {
  const r = await runCli(['doctor', binary, ...args, '--json'])
  return { code: r.code, report: r.code <= 1 || r.code === 8 ? (JSON.parse(r.stdout) as DoctorReport) : ({} as DoctorReport), stderr: r.stderr }
}

function tree(report: DoctorReport, dir: string): TreeReport {
  const found = report.trees.find((t) => t.tree === dir)
  if (!found) throw new Error(`no report for ${dir}`)
  return found
}

t.test('a program built here, in this machine\'s /, a busybox root and an old-glibc tree', async (t) => {
  t.ok(required.length > 0, `the program needs ${required.join(' ')}`)
  const newest = required.at(-1) as string
  const r = await doctor(program, '--rootfs', '/', '--rootfs', busyboxRoot, '--rootfs', oldRoot)
  t.equal(r.code, 0, r.stderr)
  t.match(r.report.program, { file: program, arch: 'x86_64', static: false, interpreter: '/lib64/ld-linux-x86-64.so.2', needed: ['libc.so.6'], glibc: newest })
  t.match(r.report.host, { tree: '/', ok: true, facts: { arch: 'x86_64', missingLibraries: [], missingVersions: [] } })

  t.match(tree(r.report, '/'), { verdict: 'runs-directly', direct: { ok: true, loaderProblem: null } })

  const bb = tree(r.report, busyboxRoot)
  t.equal(bb.verdict, 'needs-shim')
  t.match(bb.direct, { arch: 'x86_64', loader: null, glibc: null, missingLibraries: [{ name: 'libc.so.6', neededBy: 'prog' }] })
  t.match(bb.direct.loaderProblem, /^has no loader "\/lib64\/ld-linux-x86-64.so.2" \(No such file or directory\)$/)

  const old = tree(r.report, oldRoot)
  t.equal(old.verdict, 'needs-shim')
  t.equal(old.direct.loader, `/${M}/ld-2.31.so`, 'the loader behind the absolute link, inside the tree')
  t.same(old.direct.libraries, [{ name: 'libc.so.6', path: `/${M}/libc-2.31.so` }], 'libc behind its absolute link, inside the tree')
  t.equal(old.direct.glibc, '2.31', 'the release, from libc\'s banner')
  t.equal(old.direct.glibcNewestVersion, 'GLIBC_2.30', 'its newest symbol version')
  const missing = required.filter((v) => compareVersionNames(v, 'GLIBC_2.30') > 0)
  t.same(old.direct.missingVersions, missing.map((version) => ({ library: 'libc.so.6', version, neededBy: 'prog' })))
  t.equal(old.reason, `it lacks ${missing.join(', ')} of libc.so.6; its glibc is 2.31; the shim runs it with the host's loader and libraries`)

  const text = await runCli(['doctor', program, '--rootfs', '/', '--rootfs', oldRoot])
  t.equal(text.code, 0)
  t.match(text.stdout, new RegExp(`^program: "${program}" \\(x86_64, loader "/lib64/ld-linux-x86-64.so.2", needs ${newest}\\)\\n`))
  t.match(text.stdout, /^host "\/" through the shim: ok: the host has its loader and libraries; its glibc is \d+\.\d+$/m)
  t.match(text.stdout, /^"\/": runs directly: /m)
  t.match(text.stdout, new RegExp(`^"${oldRoot}": needs the shim: it lacks ${missing.join(', ')} of libc.so.6; its glibc is 2.31;`, 'm'))
})

// The e2e suite's cached Debian 11 tree, debootstrapped here when missing
// (a fresh machine runs this before the e2e suite): never skipped.
t.test('Debian 11, a debootstrapped tree', { timeout: 25 * 60_000 }, async (t) => {
  const bullseye = await debianTree('bullseye', (line) => t.comment(line))
  t.equal(bullseye.root, BULLSEYE)
  const r = await doctor(program, '--rootfs', BULLSEYE)
  t.equal(r.code, 0, r.stderr)
  const deb = tree(r.report, BULLSEYE)
  t.match(deb, { verdict: 'needs-shim', direct: { glibc: '2.31', loaderProblem: null } })
  t.ok(deb.direct.missingVersions.some((m) => m.version === 'GLIBC_2.34' && m.library === 'libc.so.6'), 'lacks GLIBC_2.34')
})

t.test('a program in a build directory: its own libraries by RUNPATH $ORIGIN, through a link too', async (t) => {
  const build = join(scratch, 'build')
  await mkdir(join(build, 'lib'), { recursive: true })
  await writeFile(join(build, 'greet.c'), 'const char *greeting(void) { return "hi"; }\n')
  await writeFile(join(build, 'main.c'), 'const char *greeting(void);\nint main(void) { return greeting()[0] != 0x68; }\n')
  const cc = (args: string[]) => t.equal(spawnSync(CC, args, { cwd: build, encoding: 'utf8' }).status, 0, `cc ${args.join(' ')}`)
  cc(['-shared', '-fPIC', '-o', 'lib/libgreet.so', 'greet.c'])
  cc(['-o', 'prog', 'main.c', '-Llib', '-lgreet', '-Wl,-rpath,$ORIGIN/lib'])
  const here = join(build, 'prog')
  const r = await doctor(here, '--rootfs', busyboxRoot, '--rootfs', oldRoot)
  t.equal(r.code, 0, r.stderr)
  t.match(r.report.host, { ok: true, facts: { missingLibraries: [] } })
  t.ok(r.report.host.facts.libraries.some((l) => l.name === 'libgreet.so' && l.path === join(build, 'lib/libgreet.so')), 'found in the build directory')
  t.equal(tree(r.report, busyboxRoot).verdict, 'needs-shim')
  t.equal(tree(r.report, oldRoot).verdict, 'needs-shim')
  t.same(tree(r.report, oldRoot).direct.missingLibraries, [], 'the old tree lacks versions, not the program\'s own library')
  // Called through a symbolic link elsewhere: $ORIGIN is where the file really is.
  await symlink(here, join(scratch, 'prog-link'))
  const linked = await doctor(join(scratch, 'prog-link'), '--rootfs', busyboxRoot)
  t.equal(linked.code, 0, linked.stderr)
  t.same(linked.report.host.facts.missingLibraries, [])
  // Moved away from its library: doctor says what is missing.
  await copyFile(here, join(scratch, 'prog-moved'))
  const moved = await doctor(join(scratch, 'prog-moved'), '--rootfs', busyboxRoot)
  t.equal(moved.code, 8)
  t.match(moved.report.host.facts.missingLibraries, [{ name: 'libgreet.so' }])
})

t.test('"needs the shim" is a promise about the host', async (t) => {
  const r = await doctor(program, '--rootfs', busyboxRoot, '--rootfs', '/', '--host', oldRoot)
  t.equal(r.code, 8, 'some tree cannot run it: exit 8')
  t.match(r.report.host, { tree: oldRoot, ok: false })
  t.match(tree(r.report, busyboxRoot), { verdict: 'cannot-run', reason: /not through the shim either: the host lacks .*GLIBC_2\.3\d? of libc.so.6; its glibc is 2.31$/ })
  t.match(tree(r.report, '/'), { verdict: 'runs-directly' }, 'a tree with what it needs does not care about the host')
  const quiet = await runCli(['doctor', program, '--rootfs', busyboxRoot, '--host', oldRoot, '--quiet'])
  t.same([quiet.code, quiet.stdout, quiet.stderr], [8, '', ''])
})

t.test('libraries are found as ld.so finds them: ld.so.conf, and the wrong class skipped', async (t) => {
  const r = await doctor(usesOld, '--rootfs', oldRoot, '--rootfs', busyboxRoot)
  const old = tree(r.report, oldRoot)
  t.equal(old.verdict, 'runs-directly', old.reason)
  t.same(old.direct.libraries, [
    { name: 'libold.so.1', path: '/opt/old/lib/libold.so.1' },
    { name: 'libc.so.6', path: `/${M}/libc-2.31.so` },
  ])
  t.same(old.direct.libraryPath.slice(0, 2), [`/${M}`, '/opt/old/lib'], 'the loader\'s directory, then ld.so.conf\'s')
  // The host has no libold.so.1: elsewhere it cannot run, shim or not.
  t.equal(r.code, 8)
  t.match(tree(r.report, busyboxRoot), { verdict: 'cannot-run', reason: /the host has no libold.so.1/ })
})

t.test('versions and libraries the host lacks', async (t) => {
  const future = await doctor(needsFuture, '--rootfs', busyboxRoot)
  t.equal(future.code, 8)
  t.match(future.report.host.facts.missingVersions, [{ library: 'libc.so.6', version: 'GLIBC_2.99', neededBy: 'needs-future' }])
  t.match(tree(future.report, busyboxRoot).reason, /the host lacks GLIBC_2.99 of libc.so.6/)

  const lib = await doctor(needsMissing, '--rootfs', '/')
  t.equal(lib.code, 8)
  t.match(tree(lib.report, '/'), { verdict: 'cannot-run', reason: /^it has no libhostshim-doctor-missing.so.1; its glibc is [\d.]+; this tree is the host, so the shim has nothing better to offer$/ })
})

t.test('a program for another architecture', async (t) => {
  const r = await doctor(forAarch64, '--rootfs', busyboxRoot)
  t.equal(r.code, 8)
  t.match(r.report.host, { ok: false, reason: 'the program is for aarch64, the host runs x86_64 programs (it could run only under emulation)' })
  t.match(tree(r.report, busyboxRoot), { verdict: 'cannot-run', reason: /^its programs are x86_64, the program is aarch64; not through the shim either/ })
})

t.test('a static program runs anywhere of its architecture', async (t) => {
  const r = await doctor(BUSYBOX, '--rootfs', busyboxRoot, '--rootfs', oldRoot)
  t.equal(r.code, 0)
  t.match(r.report.trees, [{ verdict: 'runs-directly' }, { verdict: 'runs-directly' }])
})

t.test('bad input: exit codes, no stack traces', async (t) => {
  const cases: [string[], number, RegExp][] = [
    [['doctor', join(scratch, 'prog.c'), '--rootfs', '/'], 5, /is not an ELF program/],
    [['doctor', join(scratch, 'nothing'), '--rootfs', '/'], 6, /cannot read ".*nothing": No such file or directory/],
    [['doctor', program, '--rootfs', join(scratch, 'nothing')], 6, /cannot use --rootfs ".*nothing": No such file or directory/],
    [['doctor', program, '--rootfs', program], 6, /--rootfs ".*prog" is not a directory/],
    [['doctor', program], 2, /required option '--rootfs <dir>' not specified/],
  ]
  for (const [args, code, message] of cases) {
    const r = await runCli(args)
    t.equal(r.code, code, args.join(' '))
    t.match(r.stderr, message)
    t.notMatch(r.stderr, /\n\s+at /)
  }
})
