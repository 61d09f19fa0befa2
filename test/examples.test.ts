// The examples, run: examples/toolbox (meson install script, RPM spec
// snippet), examples/containerfile (the image recipe's RUN step against a
// scratch directory, its shims run in a container), examples/entrypoint (a
// host program as the entry point of a busybox-only root, with bwrap).
//
// Scripts call `hostshim` as users do: a command on PATH that runs this
// checkout's CLI.

import { spawnSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { appendFile, cp, copyFile, mkdir, readFile, readdir, rm, stat } from 'node:fs/promises'
import { join, relative } from 'node:path'
import t from 'tap'
import type { InspectReport } from '../launcher/inspect.js'
import type { InstallResult } from '../launcher/install.js'
import { findZig } from '../launcher/toolchain.js'
import { REPO, hostshimCommandDir, runCli } from './lib/cli.js'
import { BWRAP, CONTAINER_ENV, assertNoStrayMounts, machineIsHost, makeBusyboxRoot, makeScratchDir, removeScratchDir, runHost, runInContainer } from './lib/container.js'
import { COMPILE_TIMEOUT_MS, TEST_CACHE_DIR } from './lib/shims.js'

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

t.test('toolbox: meson-install.sh, as meson runs it', async (t) => {
  const destdir = join(scratch, 'meson-destdir')
  await mkdir(join(destdir, 'usr/bin'), { recursive: true })
  await copyFile(PROGRAM, join(destdir, 'usr/bin/toolbox'))
  const script = join(EXAMPLES, 'toolbox/meson-install.sh')
  const mesonEnv = { MESON_INSTALL_PREFIX: '/usr', MESON_INSTALL_DESTDIR_PREFIX: `${destdir}/usr`, DESTDIR: destdir }

  const first = sh(script, ['/usr/bin', '/usr/libexec'], mesonEnv)
  t.equal(first.code, 0, first.stderr)
  t.match(first.stdout, /^installed: "\/usr\/bin\/toolbox" is now a shim \(x86_64, \d+ bytes, mode 0755\); the program moved to "\/usr\/libexec\/toolbox\/toolbox"/)
  t.same(await readFile(join(destdir, 'usr/libexec/toolbox/toolbox')), await readFile(PROGRAM))
  const shim = join(destdir, 'usr/bin/toolbox')
  t.match((await inspect(shim)).shim, { name: 'toolbox', target: '/usr/libexec/toolbox/toolbox', hostRoot: '/run/host' })

  // The shim is the one examples/toolbox/hostshim.json describes.
  const fromConfig = join(scratch, 'toolbox-from-config')
  const gen = await runCli(['generate', '-c', join(EXAMPLES, 'toolbox/hostshim.json'), '-a', 'x86_64', '-o', fromConfig])
  t.equal(gen.code, 0, gen.stderr)
  t.equal(await sha256Of(shim), await sha256Of(fromConfig), 'byte-identical to the example config\'s shim')

  const again = sh(script, ['/usr/bin', '/usr/libexec'], mesonEnv)
  t.equal(again.code, 0, again.stderr)
  t.match(again.stdout, /^unchanged: /, 'meson install twice: nothing changes')
  const usage = sh(script, ['/usr/bin'], mesonEnv)
  t.equal(usage.code, 2)
  t.match(usage.stderr, /usage: .* BINDIR LIBEXECDIR/)
})

t.test('toolbox: the RPM spec snippet\'s %install, and its %files', async (t) => {
  const spec = await readFile(join(EXAMPLES, 'toolbox/toolbox.spec.snippet'), 'utf8')
  const buildroot = join(scratch, 'buildroot')
  const macros: Record<string, string> = { _bindir: '/usr/bin', _libexecdir: '/usr/libexec', buildroot }
  const expand = (line: string) => line.replace(/%\{(\w+)\}/g, (_, name: string) => {
    const value = macros[name]
    if (value === undefined) throw new Error(`the snippet uses %{${name}}, which the test does not know`)
    return value
  })
  const section = (name: string) => {
    const m = new RegExp(`^%${name}\\n((?:.+\\n)*)`, 'm').exec(spec)
    if (!m) throw new Error(`no %${name} section`)
    return (m[1] as string).trim().split('\n')
  }
  const install = section('install')
  t.same(install[0], '%meson_install')
  // %meson_install: meson has put the program into the build root.
  await mkdir(join(buildroot, 'usr/bin'), { recursive: true })
  await copyFile(PROGRAM, join(buildroot, 'usr/bin/toolbox'))
  for (const line of install.slice(1)) {
    t.match(line, /^hostshim install /)
    const r = spawnSync('sh', ['-c', expand(line)], { env: scriptEnv, encoding: 'utf8', timeout: COMPILE_TIMEOUT_MS })
    t.equal(r.status, 0, r.stderr)
  }
  const files = section('files').map(expand)
  const listed = files.map((f) => f.replace(/^%dir\s+/, '').replace(/^\//, '')).sort()
  t.same(await listTree(buildroot).then((all) => all.filter((p) => !['usr', 'usr/bin', 'usr/libexec'].includes(p))), listed, '%files names exactly what was installed (rpm would refuse unpackaged files)')
  for (const f of files.filter((f) => f.startsWith('%dir'))) t.ok((await stat(join(buildroot, f.replace(/^%dir\s+/, '')))).isDirectory(), `${f} is a directory`)
  t.match((await inspect(join(buildroot, 'usr/bin/toolbox'))).shim, { target: '/usr/libexec/toolbox/toolbox' })
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
  t.match(debug.stderr.toString(), /^entrypoint: mode: container\nentrypoint: loader: \/run\/host\/\S+\n/)

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
