// examples/builddir in a container whose glibc is older than the host's:
// the program, built on this machine (bookworm, glibc 2.36) by meson, needs
// GLIBC_2.34; a Debian bullseye tree (2.31, debootstrapped and cached by
// lib/debian.ts) is the container's `/`, this machine is at /run/host and
// the build directory at its own path, as Toolbx shares $HOME. Run directly,
// the program dies with "GLIBC_2.3x not found"; through the build
// directory's shim ($ORIGIN target) it runs on the host's glibc, with its own
// library from the build directory. Both shim modes.
//
// Needs: meson, ninja-build, cc, bwrap, debootstrap and a Debian mirror.

import { spawnSync } from 'node:child_process'
import { mkdir, rm, symlink } from 'node:fs/promises'
import { join } from 'node:path'
import t from 'tap'
import { PROGRAM_PATH, SHIM_PATH, buildExample, greeting } from '../lib/builddir.js'
import { hostshimCommandDir } from '../lib/cli.js'
import { HOST_ROOT, assertNoStrayMounts, makeScratchDir, removeScratchDir } from '../lib/container.js'
import { COMPILE_TIMEOUT_MS, DEBUG_ENV, MODES, parseDebug } from '../lib/shims.js'
import { debianTree, glibcVersion } from './lib/debian.js'

t.setTimeout(COMPILE_TIMEOUT_MS * 4 + 20 * 60_000)

const scratch = await makeScratchDir('builddir-e2e')
const bin = await hostshimCommandDir()
t.teardown(async () => {
  await removeScratchDir(scratch)
  await rm(bin, { recursive: true, force: true })
})

const bullseye = await debianTree('bullseye', (s) => t.comment(s))
const containerGlibc = await glibcVersion(bullseye.root)
const hostGlibc = await glibcVersion('/')
t.comment(`container: bullseye, glibc ${containerGlibc}; host: glibc ${hostGlibc}`)

const ENV = { PATH: '/usr/bin:/bin', HOME: '/root', LC_ALL: 'C' }
const text = (b: Buffer) => b.toString('latin1')

/**
 * `argv` in the bullseye tree (read-only, never written), this machine at
 * /run/host, `dirs` at their own paths. Mount points the tree lacks are made
 * on tmpfs first (/run, /tmp): all inside bwrap's private mount namespace.
 */
function inBullseye(argv: readonly string[], dirs: readonly string[], env: Record<string, string> = ENV) {
  const args = ['--ro-bind', bullseye.root, '/', '--tmpfs', '/run', '--tmpfs', '/tmp', '--ro-bind', '/', HOST_ROOT, '--proc', '/proc', '--dev', '/dev', '--die-with-parent']
  for (const dir of dirs) args.push('--ro-bind', dir, dir)
  const r = spawnSync('/usr/bin/bwrap', [...args, '--', ...argv], { env, timeout: 60_000 })
  return { status: r.status, stdout: text(r.stdout), stderr: text(r.stderr) }
}

const elsewhere = join(scratch, 'elsewhere')
await mkdir(elsewhere, { recursive: true })

t.test('the container\'s glibc is older than the host\'s', async (t) => {
  t.ok(Number(containerGlibc.split('.')[1]) < Number(hostGlibc.split('.')[1]), `${containerGlibc} < ${hostGlibc}`)
})

for (const mode of MODES) {
  t.test(`${mode} mode`, async (t) => {
    const builddir = join(scratch, `build-${mode}`)
    buildExample(builddir, mode, bin)
    const shim = join(builddir, SHIM_PATH)
    const program = join(builddir, PROGRAM_PATH)
    const dirs = [builddir, elsewhere]

    const direct = inBullseye([program, 'you'], dirs)
    t.not(direct.status, 0, 'run directly, the program cannot start')
    t.match(direct.stderr, /version `GLIBC_2\.3\d' not found/, `for want of a newer glibc: ${direct.stderr.trim()}`)
    t.equal(direct.stdout, '')

    const r = inBullseye([shim, 'you'], dirs)
    t.equal(r.stderr, '', 'through the shim: nothing on stderr')
    t.equal(r.status, 0)
    t.equal(greeting('you').exec(r.stdout)?.[1], hostGlibc, `through the shim: the host's glibc and the build directory's library: ${JSON.stringify(r.stdout)}`)
    t.equal(inBullseye([shim, 'you', 'x'], dirs).status, 3, 'the program\'s exit status')

    const debug = parseDebug(Buffer.from(inBullseye([shim], dirs, { ...ENV, [DEBUG_ENV]: '1' }).stderr, 'latin1'), 'greet')
    t.equal(debug.mode, 'container')
    t.match(text(debug.loader as Buffer), new RegExp(`^${HOST_ROOT}/`), 'the host\'s loader')
    t.equal(text(debug.argv.at(-1) as Buffer), program, 'the program at its own path')

    const link = join(elsewhere, `greet-${mode}`)
    await symlink(shim, link)
    t.match(inBullseye([link, 'link'], dirs).stdout, greeting('link'), 'through a symbolic link from another directory')
    const rel = inBullseye(['/bin/sh', '-c', `cd ${elsewhere} && exec ../build-${mode}/${SHIM_PATH} rel`], dirs)
    t.match(rel.stdout, greeting('rel'), 'through a relative path from another working directory')
  })
}

t.test('no mounts left behind', async (t) => assertNoStrayMounts(t))
