// The examples, run: examples/toolbox (its meson project, both ways to get the
// shim, a real rpmbuild of its spec and a Debian package, each staged tree's
// shim run in a busybox root), examples/containerfile (the image recipe's RUN step against
// a scratch directory, its shims run in a container), examples/entrypoint (a
// host program as the entry point of a busybox-only root, with bwrap).
//
// Scripts call `hostshim` as users do: a command on PATH that runs this
// checkout's CLI.

import { spawnSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { appendFile, cp, copyFile, mkdir, readFile, readdir, rm, stat, symlink } from 'node:fs/promises'
import { join, relative } from 'node:path'
import t from 'tap'
import { parseElf } from '../launcher/elf.js'
import type { InspectReport } from '../launcher/inspect.js'
import type { InstallResult } from '../launcher/install.js'
import { findZig } from '../launcher/toolchain.js'
import { REPO, hostshimCommandDir, runCli } from './lib/cli.js'
import { BWRAP, CONTAINER_ENV, HOST_ROOT, assertNoStrayMounts, machineIsHost, makeBusyboxRoot, makeScratchDir, removeScratchDir, runHost, runInContainer } from './lib/container.js'
import { COMPILE_TIMEOUT_MS, TEST_CACHE_DIR } from './lib/shims.js'
import { snapshot } from './lib/tree.js'

t.setTimeout(COMPILE_TIMEOUT_MS * 3)

const EXAMPLES = join(REPO, 'examples')
/** Stands in for the programs the examples install: a dynamic program of this machine. */
const PROGRAM = '/usr/bin/env'

const scratch = await makeScratchDir('examples')
const bin = await hostshimCommandDir()
t.teardown(async () => {
  await removeScratchDir(scratch)
  await rm(bin, { recursive: true, force: true })
})

/** The environment scripts run with: `hostshim` on PATH, the tests' compile cache. */
const scriptEnv = { ...process.env, PATH: `${bin}:/usr/bin:/bin`, HOSTSHIM_CACHE: TEST_CACHE_DIR }

function sh(script: string, args: readonly string[], env: NodeJS.ProcessEnv = {}) {
  const r = spawnSync('sh', [script, ...args], { env: { ...scriptEnv, ...env }, encoding: 'utf8', timeout: COMPILE_TIMEOUT_MS })
  return { code: r.status, stdout: r.stdout, stderr: r.stderr }
}

async function inspect(path: string): Promise<InspectReport> {
  const r = await runCli(['inspect', '--json', path])
  if (r.code !== 0) throw new Error(r.stderr)
  return JSON.parse(r.stdout) as InspectReport
}

async function sha256Of(path: string): Promise<string> {
  return createHash('sha256').update(await readFile(path)).digest('hex')
}

/**
 * `env -0` output, sorted, without what tap adds to every process it sees
 * spawned (NODE_OPTIONS, _TAPJS_*, some with newlines in them); bwrap itself
 * sets PWD.
 */
function envEntries(stdout: Buffer): string[] {
  return stdout.toString().split('\0').filter((e) => e && !e.startsWith('_TAPJS_') && !e.startsWith('NODE_OPTIONS=')).sort()
}
const containerEnv = [...Object.entries(CONTAINER_ENV).map(([k, v]) => `${k}=${v}`), 'PWD=/']

/** Every path below root (files and directories), relative, sorted. */
async function listTree(root: string): Promise<string[]> {
  const out: string[] = []
  for (const entry of await readdir(root, { recursive: true })) out.push(String(entry))
  return out.sort()
}

/** `cmd args` with the scripts' environment; throws with its output when it fails. */
function must(cmd: string, args: readonly string[], env: NodeJS.ProcessEnv = {}, cwd?: string): string {
  const r = spawnSync(cmd, args, { env: { ...scriptEnv, ...env }, cwd, encoding: 'utf8', timeout: COMPILE_TIMEOUT_MS })
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status ?? r.signal}):\n${r.stdout}\n${r.stderr}`)
  return r.stdout
}

/** The stand-in program's output, run directly on this machine. */
const STAND_IN_OUTPUT = `toolbox (stand-in) 1.0, glibc ${runHost('/usr/bin/getconf', ['GNU_LIBC_VERSION']).stdout.toString().trim().replace(/^glibc /, '')}\narg: from the container\n`

/**
 * Run a staged tree's /usr/bin/toolbox shim in a busybox root. The host seen
 * at /run/host is the staged tree (its /usr/libexec/toolbox/toolbox) plus
 * this machine's libraries, loader and /etc (ld.so.conf), bound read-only.
 */
async function runStagedShim(stage: string, label: string) {
  const host = join(scratch, `${label}-host`)
  await mkdir(join(host, 'usr/libexec/toolbox'), { recursive: true })
  for (const d of ['usr/lib', 'usr/lib64', 'etc']) await mkdir(join(host, d), { recursive: true })
  await symlink('usr/lib', join(host, 'lib'))
  await symlink('usr/lib64', join(host, 'lib64'))
  await copyFile(join(stage, 'usr/libexec/toolbox/toolbox'), join(host, 'usr/libexec/toolbox/toolbox'))
  const root = await makeBusyboxRoot(join(scratch, `${label}-root`))
  return runInContainer({
    root,
    host,
    binds: [
      ['/usr/lib', `${HOST_ROOT}/usr/lib`, 'ro'],
      ['/usr/lib64', `${HOST_ROOT}/usr/lib64`, 'ro'],
      ['/etc', `${HOST_ROOT}/etc`, 'ro'],
      [join(stage, 'usr/bin/toolbox'), '/usr/bin/toolbox', 'ro'],
    ],
    argv: ['/usr/bin/toolbox', 'from the container'],
  })
}

/** The paths of a staged install: the shim at bindir, the program in its libexec directory. */
const STAGED = ['usr', 'usr/bin', 'usr/bin/toolbox', 'usr/libexec', 'usr/libexec/toolbox', 'usr/libexec/toolbox/toolbox']

/** meson setup, compile, install into a fresh DESTDIR; returns the build and staging dirs. */
function mesonBuild(label: string, options: readonly string[], env: NodeJS.ProcessEnv = {}) {
  const build = join(scratch, `${label}-build`)
  const destdir = join(scratch, `${label}-destdir`)
  must('meson', ['setup', '--prefix=/usr', ...options, build, join(EXAMPLES, 'toolbox')], env)
  must('meson', ['compile', '-C', build], env)
  const install = () => must('meson', ['install', '-C', build], { ...env, DESTDIR: destdir })
  install()
  return { build, destdir, install }
}

t.test('toolbox: meson, the install script runs hostshim install (-Dshim=install-script)', async (t) => {
  const { build, destdir, install } = mesonBuild('meson-script', ['-Dshim=install-script'])
  t.same(await listTree(destdir), STAGED)
  const program = join(destdir, 'usr/libexec/toolbox/toolbox')
  t.same(await readFile(program), await readFile(join(build, 'src/toolbox')), 'the program meson built, moved to libexec')
  t.ok(parseElf(await readFile(program)).hasInterpreter, 'a dynamic program')
  const shim = join(destdir, 'usr/bin/toolbox')
  t.match((await inspect(shim)).shim, { name: 'toolbox', target: '/usr/libexec/toolbox/toolbox', hostRoot: '/run/host' })

  // The shim is the one examples/toolbox/hostshim.json describes.
  const fromConfig = join(scratch, 'toolbox-from-config')
  const gen = await runCli(['generate', '-c', join(EXAMPLES, 'toolbox/hostshim.json'), '-a', 'x86_64', '-o', fromConfig])
  t.equal(gen.code, 0, gen.stderr)
  t.equal(await sha256Of(shim), await sha256Of(fromConfig), 'byte-identical to the example config\'s shim')

  const run = await runStagedShim(destdir, 'meson-script')
  t.equal(run.status, 0, run.stderr.toString())
  t.equal(run.stdout.toString(), STAND_IN_OUTPUT, 'the shim runs the program, with the host\'s glibc, in a root without one')

  const before = await snapshot(destdir)
  install()
  t.same(await snapshot(destdir), before, 'a second meson install changes nothing')

  const usage = sh(join(EXAMPLES, 'toolbox/meson-install.sh'), ['/usr/bin'])
  t.equal(usage.code, 2)
  t.match(usage.stderr, /usage: .* BINDIR LIBEXECDIR/)
  assertNoStrayMounts(t, [scratch])
})

t.test('toolbox: meson compiles the shim with its own C compiler, no zig (-Dshim=compile)', async (t) => {
  // No zig anywhere: hostshim render needs none, and ZIG points nowhere.
  const noZig = { ZIG: '/nonexistent/zig', CC: 'gcc' }
  const { build, destdir, install } = mesonBuild('meson-compile', ['-Dshim=compile'], noZig)
  t.same(await listTree(destdir), STAGED)
  t.same(await readFile(join(destdir, 'usr/libexec/toolbox/toolbox')), await readFile(join(build, 'src/toolbox')), 'the program, installed to libexec')
  const shim = join(destdir, 'usr/bin/toolbox')
  const elf = parseElf(await readFile(shim))
  t.notOk(elf.hasInterpreter, 'the shim is static')
  t.equal(elf.typeName, 'DYN', 'a static PIE (chainload mode)')
  t.comment(`meson + gcc (static glibc) shim: ${(await stat(shim)).size} bytes`)
  const generated = join(scratch, 'toolbox-generated')
  const gen = await runCli(['generate', '-c', join(EXAMPLES, 'toolbox/hostshim.json'), '-o', generated])
  t.equal(gen.code, 0, gen.stderr)
  t.same((await inspect(shim)).shim, (await inspect(generated)).shim, 'its mark is that of the example config\'s shim')

  const run = await runStagedShim(destdir, 'meson-compile')
  t.equal(run.status, 0, run.stderr.toString())
  t.equal(run.stdout.toString(), STAND_IN_OUTPUT)

  const before = await snapshot(destdir)
  install()
  t.same(await snapshot(destdir), before, 'a second meson install changes nothing')
  assertNoStrayMounts(t, [scratch])
})

/** examples/toolbox as its source tarball, NAME-VERSION/ at the top, as a release would be. */
function sourceTarball(dest: string, top: string): void {
  must('tar', ['-czf', dest, `--transform=s,^\\.,${top},`, '-C', join(EXAMPLES, 'toolbox'), '.'])
}

t.test('toolbox: rpmbuild -bb of toolbox.spec, with the distribution\'s compiler and no zig', async (t) => {
  const topdir = join(scratch, 'rpmbuild')
  await mkdir(join(topdir, 'SOURCES'), { recursive: true })
  sourceTarball(join(topdir, 'SOURCES/toolbox-1.0.tar.gz'), 'toolbox-1.0')
  const spec = join(EXAMPLES, 'toolbox/toolbox.spec')
  t.match(await readFile(spec, 'utf8'), /^#\s+rpmbuild -bb --nodeps --define "_topdir \$PWD" toolbox\.spec$/m, 'the spec says how the test builds it')
  must('rpmbuild', ['-bb', '--nodeps', '--define', `_topdir ${topdir}`, spec], { ZIG: '/nonexistent/zig', HOME: scratch })
  const rpm = join(topdir, 'RPMS/x86_64/toolbox-1.0-1.x86_64.rpm')
  t.same(must('rpm', ['-qlp', rpm]).trim().split('\n'), ['/usr/bin/toolbox', '/usr/libexec/toolbox', '/usr/libexec/toolbox/toolbox'], 'rpm -qlp: the %files list')

  const unpacked = join(scratch, 'rpm-unpacked')
  await mkdir(unpacked)
  must('sh', ['-c', `rpm2cpio "$1" | cpio -idm --quiet`, 'sh', rpm], {}, unpacked)
  t.same(await listTree(unpacked), STAGED)
  const shim = join(unpacked, 'usr/bin/toolbox')
  t.notOk(parseElf(await readFile(shim)).hasInterpreter, 'the packaged shim is static')
  t.match((await inspect(shim)).shim, { name: 'toolbox', target: '/usr/libexec/toolbox/toolbox' }, 'the mark survived rpmbuild\'s strip passes')
  const run = await runStagedShim(unpacked, 'rpm')
  t.equal(run.status, 0, run.stderr.toString())
  t.equal(run.stdout.toString(), STAND_IN_OUTPUT, 'the packaged shim runs the packaged program')
  assertNoStrayMounts(t, [scratch])
})

t.test('toolbox: a Debian package of the meson-staged tree (deb/build-deb.sh)', async (t) => {
  const { destdir } = mesonBuild('deb', ['-Dshim=compile'], { ZIG: '/nonexistent/zig', CC: 'gcc' })
  const deb = join(scratch, 'toolbox_1.0-1.deb')
  must('sh', [join(EXAMPLES, 'toolbox/deb/build-deb.sh'), destdir, deb])
  const listing = must('dpkg-deb', ['--contents', deb]).trim().split('\n')
  t.same(listing.map((l) => l.split(/\s+/).slice(-1)[0]), ['./', './usr/', './usr/bin/', './usr/bin/toolbox', './usr/libexec/', './usr/libexec/toolbox/', './usr/libexec/toolbox/toolbox'])
  t.ok(listing.every((l) => l.includes(' root/root ')), 'owned by root, whoever built it')
  t.match(must('dpkg-deb', ['--field', deb, 'Package', 'Architecture']), /^Package: toolbox\nArchitecture: amd64\n$/)
  const unpacked = join(scratch, 'deb-unpacked')
  must('dpkg-deb', ['--extract', deb, unpacked])
  const run = await runStagedShim(unpacked, 'deb')
  t.equal(run.status, 0, run.stderr.toString())
  t.equal(run.stdout.toString(), STAND_IN_OUTPUT, 'the packaged shim runs the packaged program')
  assertNoStrayMounts(t, [scratch])
})

t.test('containerfile: the RUN step, then its shims in a container', async (t) => {
  const dir = join(EXAMPLES, 'containerfile')
  const containerfile = await readFile(join(dir, 'Containerfile'), 'utf8')
  const readme = await readFile(join(dir, 'README.md'), 'utf8')

  // Every COPY source is in the example directory or one of the two the README says to add.
  const sources = [...containerfile.matchAll(/^COPY (?!--from)(.+) \S+$/gm)].flatMap((m) => (m[1] as string).split(/\s+/))
  t.same(sources, ['hostshim', 'zig/', 'host-tools.list', 'install-host-tools.sh'])
  const added: Record<string, RegExp> = { hostshim: /^cp dist\/hostshim examples\/containerfile\/$/m, 'zig/': /^cp -r \S+ examples\/containerfile\/zig$/m }
  for (const s of sources) {
    if (added[s]) t.match(readme, added[s], `the README says how to add ${s}`)
    else t.ok(await stat(join(dir, s)), `${s} is in the example`)
  }
  const runs = [...containerfile.matchAll(/^RUN (.+)$/gm)].map((m) => m[1] as string)
  t.equal(runs.length, 1)
  const staging = /DESTDIR=(\S+)/.exec(runs[0] as string)?.[1] as string
  t.match(containerfile, new RegExp(`^COPY --from=shims ${staging}/ /$`, 'm'), 'the image takes what the RUN step staged')

  // The RUN step as written: /src is where the Containerfile copied this directory, DESTDIR a scratch dir.
  const out = join(scratch, 'staging')
  const run = (runs[0] as string).replaceAll('/src/', `${dir}/`).replace(`DESTDIR=${staging}`, `DESTDIR=${out}`)
  const r = spawnSync('sh', ['-c', run], { env: { ...scriptEnv, ZIG: findZig({}) }, encoding: 'utf8', timeout: COMPILE_TIMEOUT_MS })
  t.equal(r.status, 0, r.stderr)
  t.equal(r.stdout, '/usr/local/bin/host-getconf -> host /usr/bin/getconf\n/usr/local/bin/host-env -> host /usr/bin/env\n')
  t.same(await listTree(join(out, 'usr/local/bin')), ['host-env', 'host-getconf'])
  t.match((await inspect(join(out, 'usr/local/bin/host-getconf'))).shim, { name: 'host-getconf', target: '/usr/bin/getconf' })

  // The image, roughly: a busybox root with the staged tree copied in, the machine's / at /run/host.
  const root = await makeBusyboxRoot(join(scratch, 'image'))
  await cp(join(out, 'usr'), join(root, 'usr'), { recursive: true })
  const hostGlibc = runHost('/usr/bin/getconf', ['GNU_LIBC_VERSION'])
  const inContainer = runInContainer({ root, host: '/', argv: ['/usr/local/bin/host-getconf', 'GNU_LIBC_VERSION'] })
  t.equal(inContainer.status, 0, inContainer.stderr.toString())
  t.equal(inContainer.stdout.toString(), hostGlibc.stdout.toString(), `the host's getconf, from a root without libc: ${hostGlibc.stdout.toString().trim()}`)
  const env = runInContainer({ root, host: '/', argv: ['/usr/local/bin/host-env', '-0'] })
  t.equal(env.status, 0, env.stderr.toString())
  t.same(envEntries(env.stdout), containerEnv.sort(), 'the environment, unchanged')

  // Without the host's root (podman run without -v /:/run/host, or on the host itself), 127 naming the mount:
  // never the image's own program of the same path.
  const unmounted = join(scratch, 'image-unmounted')
  await cp(root, unmounted, { recursive: true })
  await rm(join(unmounted, 'run/host'), { recursive: true })
  const bare = runHost(BWRAP, ['--bind', unmounted, '/', '--proc', '/proc', '--dev', '/dev', '--', '/usr/local/bin/host-getconf', 'GNU_LIBC_VERSION'])
  t.equal(bare.status, 127)
  t.equal(bare.stdout.toString(), '', 'nothing ran')
  t.equal(bare.stderr.toString(), 'host-getconf: host root not mounted: /run/host: No such file or directory\n')
  if (machineIsHost(t)) {
    const onHost = runHost(join(out, 'usr/local/bin/host-getconf'), ['GNU_LIBC_VERSION'])
    t.equal(onHost.status, 127, 'on the host too: the shim is for images only')
    t.equal(onHost.stderr.toString(), 'host-getconf: host root not mounted: /run/host: No such file or directory\n')
  }
  t.match(readme.replace(/\s+/g, " "), /elsewhere it exits 127 and says which path it could not find: host-getconf: host root not mounted: \/run\/host: No such file or directory/)
  assertNoStrayMounts(t, [scratch])

  // A broken list is refused with its line number.
  const badList = join(scratch, 'bad.list')
  await cp(join(dir, 'host-tools.list'), badList)
  await appendFile(badList, 'host-two words /usr/bin/x\n')
  const bad = sh(join(dir, 'install-host-tools.sh'), [badList], { DESTDIR: join(scratch, 'bad-staging') })
  t.equal(bad.code, 2)
  t.match(bad.stderr, /bad\.list:7: expected NAME PATH/)
})

t.test('entrypoint: a host program as the entry point of a busybox-only root', async (t) => {
  const root = await makeBusyboxRoot(join(scratch, 'entrypoint-root'))
  const gen = await runCli(['generate', '-c', join(EXAMPLES, 'entrypoint/hostshim.json'), '-o', join(root, 'entrypoint')])
  t.equal(gen.code, 0, gen.stderr)
  t.match((await inspect(join(root, 'entrypoint'))).shim, { name: 'entrypoint', target: '/usr/bin/env' })
  t.same((await listTree(root)).filter((p) => !p.startsWith('bin/') && !['run', 'run/host', 'proc', 'dev', 'tmp', 'usr', 'usr/bin', 'bin'].includes(p)), ['entrypoint'], 'the root holds busybox and the shim, nothing else')

  // The README's command, word for word.
  const bwrap = (host: string, ...args: string[]) =>
    runHost(BWRAP, ['--bind', root, '/', '--ro-bind', host, '/run/host', '--proc', '/proc', '--dev', '/dev', '--', '/entrypoint', ...args])
  const hello = bwrap('/', 'sh', '-c', 'echo "$ENTRYPOINT_VIA runs sh from the container: $0 $1"', 'zero', 'one')
  t.equal(hello.status, 0, hello.stderr.toString())
  t.equal(hello.stdout.toString(), 'hostshim runs sh from the container: zero one\n')

  const env = bwrap('/', '-0')
  t.equal(env.status, 0, env.stderr.toString())
  t.same(envEntries(env.stdout), [...containerEnv, 'ENTRYPOINT_VIA=hostshim'].sort(), 'the caller\'s environment plus the config\'s variable')

  t.equal(bwrap('/', 'sh', '-c', 'exit 42').status, 42, 'the exit status is the program\'s')
  const debug = runHost(BWRAP, ['--bind', root, '/', '--ro-bind', '/', '/run/host', '--proc', '/proc', '--dev', '/dev', '--', '/entrypoint', 'true'], { env: { ...CONTAINER_ENV, HOSTSHIM_DEBUG: '1' } })
  t.match(debug.stderr.toString(), /^entrypoint: mode: container\nentrypoint: plan: computed \(no XDG_RUNTIME_DIR\)\nentrypoint: loader: \/run\/host\/\S+\n/)

  // Without the host's root the shim says what is missing, and exits 127.
  const empty = join(scratch, 'empty-host')
  await mkdir(empty)
  const missing = bwrap(empty)
  t.equal(missing.status, 127)
  t.equal(missing.stderr.toString(), 'entrypoint: cannot find target: /run/host/usr/bin/env: No such file or directory\n')
  // No /run/host at all: the config's requireHostRoot keeps it from running anything of the root's own.
  const noMount = runHost(BWRAP, ['--bind', root, '/', '--proc', '/proc', '--dev', '/dev', '--tmpfs', '/run', '--', '/entrypoint', 'true'])
  t.equal(noMount.status, 127)
  t.equal(noMount.stderr.toString(), 'entrypoint: host root not mounted: /run/host: No such file or directory\n')
  assertNoStrayMounts(t, [scratch])
  t.ok(relative(scratch, root).startsWith('entrypoint-root'))
})
