// install and uninstall on real trees in temp dirs, with real shims: the
// moves, the refusals, idempotency and undo, checked by snapshots of the
// whole tree (paths, modes, owners, sha256).

import { spawnSync } from 'node:child_process'
import { chmod, chown, copyFile, lstat, mkdir, mkdtemp, readFile, readdir, rm, stat, symlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import type { InspectReport } from '../launcher/inspect.js'
import type { InstallResult } from '../launcher/install.js'
import { hostshimCommandDir, runCli } from './lib/cli.js'
import { BWRAP } from './lib/container.js'
import { COMPILE_TIMEOUT_MS, TEST_CACHE_DIR } from './lib/shims.js'
import { snapshot } from './lib/tree.js'

t.setTimeout(COMPILE_TIMEOUT_MS * 3)

/** A real dynamic program of this machine. */
const PROGRAM = '/usr/bin/env'
const original = await readFile(PROGRAM)
const scratch = await mkdtemp(join(tmpdir(), 'hostshim-install-'))
t.teardown(() => rm(scratch, { recursive: true, force: true }))

let trees = 0
/**
 * A DESTDIR holding usr/bin/myprog (a copy of PROGRAM, mode 0750, owner
 * 1234:2345) and an empty usr/libexec.
 */
async function freshDestdir(mode = 0o750): Promise<string> {
  const dir = join(scratch, `destdir-${++trees}`)
  await mkdir(join(dir, 'usr/bin'), { recursive: true })
  await mkdir(join(dir, 'usr/libexec'), { recursive: true })
  // The stage's usr/libexec is older than any install run (uninstall keeps it: install did not make it).
  await new Promise((resolve) => setTimeout(resolve, 600))
  await copyFile(PROGRAM, join(dir, 'usr/bin/myprog'))
  await chown(join(dir, 'usr/bin/myprog'), 1234, 2345)
  await chmod(join(dir, 'usr/bin/myprog'), mode)
  return dir
}

const base = (destdir: string, ...more: string[]) => ['--name', 'myprog', '--binary', '/usr/bin/myprog', '--destdir', destdir, ...more]
const install = (destdir: string, ...more: string[]) => runCli(['install', ...base(destdir, ...more), '--json'])
const uninstall = (destdir: string, ...more: string[]) => runCli(['uninstall', ...base(destdir, ...more), '--json'])
const parsed = (stdout: string) => JSON.parse(stdout) as InstallResult

t.test('install moves the program to libexec and puts a verified shim in its place', async (t) => {
  const destdir = await freshDestdir()
  const before = await snapshot(destdir)
  const programIno = (await stat(join(destdir, 'usr/bin/myprog'))).ino
  const r = await install(destdir)
  t.equal(r.code, 0, r.stderr)
  const result = parsed(r.stdout)
  t.match(result, { action: 'installed', binary: '/usr/bin/myprog', target: '/usr/libexec/myprog/myprog', destdir, arch: 'x86_64', mode: '0750' })

  const moved = join(destdir, 'usr/libexec/myprog/myprog')
  t.same(await readFile(moved), original, 'the program at libexec is the original, byte for byte')
  const movedSt = await stat(moved)
  t.equal(movedSt.mode & 0o7777, 0o750, 'with its mode')
  t.same([movedSt.uid, movedSt.gid], [1234, 2345], 'and its owner')
  t.equal(movedSt.ino, programIno, 'moved, not copied: the same inode')

  const shimPath = join(destdir, 'usr/bin/myprog')
  const shimSt = await stat(shimPath)
  t.equal(shimSt.mode & 0o7777, 0o750, 'the shim has the program\'s mode, no set-user-ID or set-group-ID bit')
  t.same([shimSt.uid, shimSt.gid], [1234, 2345], 'and its owner')
  t.equal(shimSt.size, result.bytes)

  // inspect knows an installed shim: its mark names the host path, without DESTDIR.
  const inspected = await runCli(['inspect', '--json', shimPath])
  t.equal(inspected.code, 0, inspected.stderr)
  const report = JSON.parse(inspected.stdout) as InspectReport
  t.match(report, { static: true, interpreter: null, shim: { name: 'myprog', arch: 'x86_64', target: '/usr/libexec/myprog/myprog', hostRoot: '/run/host', config: result.config } })
  const text = await runCli(['inspect', shimPath])
  t.match(text.stdout, /^target: +"\/usr\/libexec\/myprog\/myprog"$/m)

  const after = await snapshot(destdir)
  t.same(
    after.map((e) => e.path),
    [...before.map((e) => e.path), 'usr/libexec/myprog', 'usr/libexec/myprog/myprog'].sort((a, b) => (a === '.' ? -1 : b === '.' ? 1 : a < b ? -1 : 1)),
    'exactly two new paths: the libexec directory and the program in it',
  )
  t.equal(after.find((e) => e.path === 'usr/libexec/myprog')?.mode, '0755')
  t.notOk(after.some((e) => e.path.endsWith('.tmp')), 'no temporary file left')

  t.test('a second install changes nothing', async (t) => {
    const once = await snapshot(destdir, { identity: true })
    const again = await install(destdir)
    t.equal(again.code, 0, again.stderr)
    t.match(parsed(again.stdout), { action: 'unchanged', sha256: result.sha256 })
    t.same(await snapshot(destdir, { identity: true }), once, 'same paths, modes, owners, bytes, inodes and mtimes')
    // Not even zig is needed to see that.
    const noZig = await runCli(['install', ...base(destdir)], { env: { ZIG: '/bin/false' } })
    t.equal(noZig.code, 0, noZig.stderr)
    t.match(noZig.stdout, /^unchanged: "\/usr\/bin\/myprog" is already the shim for "\/usr\/libexec\/myprog\/myprog"/)
    t.same(await snapshot(destdir, { identity: true }), once)
  })

  t.test('another config replaces the shim only', async (t) => {
    const movedBefore = await stat(moved)
    const changed = await install(destdir, '--env', 'MYPROG_SHIMMED=1')
    t.equal(changed.code, 0, changed.stderr)
    const r2 = parsed(changed.stdout)
    t.match(r2, { action: 'updated', mode: '0750' })
    t.not(r2.config, result.config, 'a new config hash')
    t.not(r2.sha256, result.sha256, 'new bytes')
    const movedAfter = await stat(moved)
    t.same([movedAfter.ino, movedAfter.mtimeMs], [movedBefore.ino, movedBefore.mtimeMs], 'the program is not touched')
    const st = await stat(shimPath)
    t.same([st.mode & 0o7777, st.uid, st.gid], [0o750, 1234, 2345], 'the new shim keeps mode and owner')
    const settled = await install(destdir, '--env', 'MYPROG_SHIMMED=1')
    t.match(parsed(settled.stdout), { action: 'unchanged' }, 'and is then idempotent with the new config')
  })

  t.test('uninstall puts the original back, exactly', async (t) => {
    const r3 = await uninstall(destdir)
    t.equal(r3.code, 0, r3.stderr)
    t.match(parsed(r3.stdout), { action: 'uninstalled', mode: '0750', arch: 'x86_64' })
    t.same(await readFile(shimPath), original, 'the original bytes')
    const st = await stat(shimPath)
    t.same([st.mode & 0o7777, st.uid, st.gid, st.ino], [0o750, 1234, 2345, programIno], 'mode, owner, even the inode')
    t.same(await snapshot(destdir), before, 'the tree is as before install (the libexec directory is gone)')
    const r4 = await uninstall(destdir)
    t.equal(r4.code, 0, 'uninstalling again is fine')
    t.match(parsed(r4.stdout), { action: 'absent' })
    t.same(await snapshot(destdir), before)
  })
})

t.test('a build that fails leaves the tree untouched', async (t) => {
  const destdir = await freshDestdir()
  const before = await snapshot(destdir, { identity: true })
  const r = await install(destdir, '--env', `UNIQUE=${process.pid}-${Date.now()}`)
  t.equal(r.code, 0, 'a control run works')
  await uninstall(destdir)
  const clean = await snapshot(destdir, { identity: true })
  t.same(clean, before)

  const noZig = await runCli(['install', ...base(destdir)], { env: { ZIG: '/bin/false' } })
  t.equal(noZig.code, 4, 'zig missing: exit 4')
  t.match(noZig.stderr, /^hostshim: cannot run zig at "\/bin\/false"/)
  t.notMatch(noZig.stderr, /\n\s+at /, 'no stack trace')
  t.same(await snapshot(destdir, { identity: true }), before, 'ZIG=/bin/false: nothing moved')

  // A zig that knows its version but cannot compile: the failure comes later, still before any change.
  const fakeZig = join(scratch, 'fake-zig')
  await writeFile(fakeZig, '#!/bin/sh\n[ "$1" = version ] && { echo 0.0.0-fake; exit 0; }\necho "fake zig: no compiler here" >&2\nexit 1\n', { mode: 0o755 })
  const broken = await runCli(['install', ...base(destdir)], { env: { ZIG: fakeZig } })
  t.equal(broken.code, 4)
  t.match(broken.stderr, /zig failed to compile the shim for x86_64\nfake zig: no compiler here/)
  t.same(await snapshot(destdir, { identity: true }), before, 'compile failed: nothing moved')
})

t.test('a failure after the move undoes it', async (t) => {
  // In a private mount namespace (bwrap), the program's path is a bind mount
  // of itself: the program can be copied away (a hard link across mounts is
  // EXDEV, so this also takes the copy path), but renaming the shim over a
  // mount point fails with EBUSY, after the move. The mount is gone with bwrap.
  const destdir = await freshDestdir()
  const before = await snapshot(destdir, { identity: true })
  const prog = join(destdir, 'usr/bin/myprog')
  const bin = await hostshimCommandDir()
  t.teardown(() => rm(bin, { recursive: true, force: true }))
  const r = spawnSync(
    BWRAP,
    ['--dev-bind', '/', '/', '--bind', prog, prog, '--die-with-parent', '--', join(bin, 'hostshim'), 'install', ...base(destdir)],
    { env: { ...process.env, HOSTSHIM_CACHE: TEST_CACHE_DIR }, encoding: 'utf8', timeout: COMPILE_TIMEOUT_MS },
  )
  t.equal(r.status, 6, r.stderr)
  t.match(r.stderr, /^hostshim: cannot put the shim at "[^"]+\/usr\/bin\/myprog": Resource busy\n$/)
  t.same(await snapshot(destdir, { identity: true }), before, 'the copy at libexec, its directory and the staged shim are gone')
})

t.test('refusals change nothing', async (t) => {
  const cases: [string, (destdir: string) => Promise<void>, RegExp, string[]?][] = [
    ['set-user-ID', async (d) => chmod(join(d, 'usr/bin/myprog'), 0o4755), /refusing to install over "[^"]+": it is set-user-ID \(mode 04755\)/],
    ['set-group-ID', async (d) => chmod(join(d, 'usr/bin/myprog'), 0o2755), /it is set-group-ID \(mode 02755\)/],
    [
      'a symbolic link',
      async (d) => {
        await rm(join(d, 'usr/bin/myprog'))
        await symlink('../lib/myprog', join(d, 'usr/bin/myprog'))
      },
      /is a symbolic link/,
    ],
    [
      'a different file at the libexec path',
      async (d) => {
        await mkdir(join(d, 'usr/libexec/myprog'))
        await writeFile(join(d, 'usr/libexec/myprog/myprog'), 'another program\n')
      },
      /exists and differs from .*refusing to overwrite it/,
    ],
    ['not executable', async (d) => chmod(join(d, 'usr/bin/myprog'), 0o644), /is not executable \(mode 0644\)/],
    [
      'a file in the way of the libexec directory',
      async (d) => {
        await rm(join(d, 'usr/libexec'), { recursive: true })
        await writeFile(join(d, 'usr/libexec'), 'in the way\n')
      },
      /a file is in the way of the libexec path "[^"]+\/usr\/libexec\/myprog\/myprog"/,
    ],
    ['a libexec path inside the host root', async () => undefined, /target: is a path on the host, seen from the host/, ['--libexec', '/run/host/usr/libexec']],
  ]
  for (const [what, setup, message, extra] of cases) {
    const destdir = await freshDestdir()
    await setup(destdir)
    const before = await snapshot(destdir, { identity: true })
    const r = await install(destdir, ...(extra ?? []))
    t.equal(r.code, extra ? 3 : 7, `${what}: exit code`)
    t.match(r.stderr, message, `${what}: message`)
    t.same(JSON.parse(r.stdout), { schemaVersion: 1, error: { exitCode: r.code, message: r.stderr.replace(/^hostshim: /, '').trimEnd() } }, `${what}: on stdout only the error, as JSON`)
    t.same(await snapshot(destdir, { identity: true }), before, `${what}: tree untouched`)
  }

  const notElf = await freshDestdir()
  await writeFile(join(notElf, 'usr/bin/myprog'), '#!/bin/sh\necho hi\n')
  const before = await snapshot(notElf, { identity: true })
  const r = await install(notElf)
  t.equal(r.code, 5, 'a script: exit 5')
  t.match(r.stderr, /is not an ELF program/)
  t.same(await snapshot(notElf, { identity: true }), before)

  const wrongArch = await freshDestdir()
  const w = await install(wrongArch, '--arch', 'aarch64')
  t.equal(w.code, 2, 'an --arch that is not the program\'s: exit 2')
  t.match(w.stderr, /is an x86_64 program, but --arch \(or the config's arch\) says "aarch64"/)
})

t.test('an identical copy already at the libexec path is fine', async (t) => {
  const destdir = await freshDestdir()
  await mkdir(join(destdir, 'usr/libexec/myprog'))
  await copyFile(PROGRAM, join(destdir, 'usr/libexec/myprog/myprog'))
  const r = await install(destdir)
  t.equal(r.code, 0, r.stderr)
  t.match(parsed(r.stdout), { action: 'installed' })
})

t.test('shims of other targets, and files that are no shim, are left alone', async (t) => {
  const destdir = await freshDestdir()
  t.equal((await install(destdir, '--libexec', '/opt/myprog')).code, 0)
  const before = await snapshot(destdir, { identity: true })
  const other = await install(destdir)
  t.equal(other.code, 7)
  t.match(other.stderr, /is already a hostshim shim, for "\/opt\/myprog\/myprog", not "\/usr\/libexec\/myprog\/myprog"/)
  const wrong = await uninstall(destdir)
  t.equal(wrong.code, 7)
  t.match(wrong.stderr, /is a shim for "\/opt\/myprog\/myprog", not "\/usr\/libexec\/myprog\/myprog": give the --libexec it was installed with/)
  t.same(await snapshot(destdir, { identity: true }), before)
  const right = await uninstall(destdir, '--libexec', '/opt/myprog')
  t.equal(right.code, 0, right.stderr)
  t.same(await readFile(join(destdir, 'usr/bin/myprog')), original)
  t.ok(await lstat(join(destdir, 'opt')), 'a directory not named after the program stays')

  // A program at --binary and something at the libexec path: not ours to judge.
  await mkdir(join(destdir, 'usr/libexec/myprog'))
  await writeFile(join(destdir, 'usr/libexec/myprog/myprog'), 'something\n')
  const notShim = await uninstall(destdir)
  t.equal(notShim.code, 7)
  t.match(notShim.stderr, /is not a hostshim shim; leaving it and .* as they are/)
})

t.test('usage: --name is required, --libexec and target must agree, quiet and text output', async (t) => {
  const destdir = await freshDestdir()
  const noName = await runCli(['install', '--binary', '/usr/bin/myprog', '--destdir', destdir])
  t.equal(noName.code, 2)
  t.match(noName.stderr, /install needs --name NAME/)
  const clash = await runCli(['install', ...base(destdir, '--libexec', '/opt/a', '--target', '/opt/b/myprog')])
  t.equal(clash.code, 2)
  t.match(clash.stderr, /give --libexec DIR \(the program goes to DIR\/NAME\) or --target PATH, not both/)
  // A config file's target is the default; --libexec overrides it.
  const config = join(scratch, 'myprog.json')
  await writeFile(config, JSON.stringify({ name: 'myprog', target: '/opt/from-config/myprog' }))
  const fromConfig = await runCli(['install', '-c', config, '--binary', '/usr/bin/myprog', '--destdir', destdir, '--json'])
  t.match(parsed(fromConfig.stdout), { action: 'installed', target: '/opt/from-config/myprog' })
  t.equal((await runCli(['uninstall', '-c', config, '--binary', '/usr/bin/myprog', '--destdir', destdir])).code, 0)
  const overridden = await runCli(['install', '-c', config, '--libexec', '/opt/flag', '--binary', '/usr/bin/myprog', '--destdir', destdir, '--json'])
  t.match(parsed(overridden.stdout), { action: 'installed', target: '/opt/flag/myprog' })
  t.equal((await runCli(['uninstall', '-c', config, '--libexec', '/opt/flag', '--binary', '/usr/bin/myprog', '--destdir', destdir])).code, 0)
  const relative = await runCli(['install', '--name', 'myprog', '--binary', 'usr/bin/myprog', '--destdir', destdir])
  t.equal(relative.code, 2)
  t.match(relative.stderr, /--binary .* must be an absolute path/)
  const quiet = await runCli(['install', ...base(destdir), '--quiet'])
  t.same([quiet.code, quiet.stdout, quiet.stderr], [0, '', ''])
  const text = await runCli(['uninstall', ...base(destdir)])
  t.match(text.stdout, /^uninstalled: "\/usr\/libexec\/myprog\/myprog" moved back to "\/usr\/bin\/myprog" \(under ".*"\)\n$/)
  const help = await runCli(['install', '--help'])
  t.equal(help.code, 0)
  t.match(help.stdout, /Examples:\n {2}hostshim install --name toolbox --binary \/usr\/bin\/toolbox/)
})

t.test('without --destdir, on this machine: the installed shim runs the program', async (t) => {
  const dir = join(scratch, 'live')
  await mkdir(join(dir, 'bin'), { recursive: true })
  await copyFile(PROGRAM, join(dir, 'bin/myprog'))
  await chmod(join(dir, 'bin/myprog'), 0o755)
  const r = await runCli(['install', '--name', 'myprog', '--binary', 'bin/myprog', '--libexec', join(dir, 'libexec'), '--json'], { cwd: dir })
  t.equal(r.code, 0, r.stderr)
  t.match(parsed(r.stdout), { action: 'installed', binary: join(dir, 'bin/myprog'), target: join(dir, 'libexec/myprog'), destdir: null })
  // No /run/host here: host mode, the shim execs its target directly.
  const run = spawnSync(join(dir, 'bin/myprog'), ['--version'], { encoding: 'utf8' })
  const real = spawnSync(PROGRAM, ['--version'], { encoding: 'utf8' })
  t.equal(run.status, 0, run.stderr)
  t.equal(run.stdout, real.stdout, 'the program ran, through the shim')
  t.match(run.stdout, /coreutils/)
})

t.test('a stage without usr/libexec: uninstall removes the one install made; a stage without the program: say to install it first', async (t) => {
  const destdir = join(scratch, `bare-${++trees}`)
  await mkdir(join(destdir, 'usr/bin'), { recursive: true })
  const missing = await runCli(['install', ...base(destdir)])
  t.equal(missing.code, 6)
  t.equal(missing.stderr, `hostshim: cannot install over "${join(destdir, 'usr/bin/myprog')}": there is no such file; the program must be installed there first, e.g. by \`DESTDIR=${destdir} meson install\`\n`)
  await copyFile(PROGRAM, join(destdir, 'usr/bin/myprog'))
  const r = await install(destdir)
  t.equal(r.code, 0, r.stderr)
  t.ok((await stat(join(destdir, 'usr/libexec/myprog'))).isDirectory())
  const u = await uninstall(destdir)
  t.equal(u.code, 0, u.stderr)
  t.same((await readdir(join(destdir, 'usr'))).sort(), ['bin'], 'usr/libexec, made by install, is gone with it')
})
