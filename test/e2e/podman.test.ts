// A real container engine (issue #3, part 4): podman runs an image imported
// from the Debian bullseye tree with Toolbx's layout, the host's `/` at
// /run/host (rslave) and the shim bind-mounted read-only at
// /usr/bin/toolbox. The shim's target is Debian's real Toolbx binary,
// unpacked into a directory on the host.
//
// Also the plain case, in the same container: the host's coreutils `ls`
// bind-mounted directly fails on bullseye's glibc 2.31; through a shim it
// runs and prints what it prints on the host.
//
// Every shim run happens in both modes, exec and chainload.

import { existsSync } from 'node:fs'
import { mkdir, mkdtemp, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import t from 'tap'
import { debianTree, type Tree } from './lib/debian.js'
import { Podman, RUN_FLAGS } from './lib/podman.js'
import { runIn, runOnMachine } from './lib/sandbox.js'
import type { ShimMode } from '../../launcher/config.js'
import { MODES, makeShim, type Shim } from './lib/shim.js'
import { differences, mountsInTestDirs, otherMountChanges, OUT_DIR, snapshot } from './lib/state.js'
import { mustRun, mountsUnder, removeTree } from './lib/sys.js'
import { unpackToolbox, type Toolbox } from './lib/toolbox.js'

const MINUTE = 60_000
t.setTimeout(30 * MINUTE)

const before = await snapshot()
const work = await mkdtemp('/tmp/hostshim-e2e-podman-')
const podman = new Podman(join(work, 'podman'))
const IMAGE = `localhost/hostshim-e2e-bullseye:${process.pid}`
let imported = false
/** Rows for out/podman.md: what ran, directly or through the shim, and what came out. */
const rows: [string, string, string][] = []
const firstLine = (s: string) => s.trim().split('\n')[0] ?? ''

async function removeImagesAndContainers(): Promise<void> {
  await podman.run(['rm', '--all', '--force'])
  await podman.run(['rmi', '--all', '--force'])
}

t.teardown(async () => {
  if (imported) await removeImagesAndContainers()
  await removeTree(work)
})

let bullseye: Tree
let toolbox: Toolbox
const toolboxShims = {} as Record<ShimMode, Shim>
const lsShims = {} as Record<ShimMode, Shim>

t.test('setup: the bullseye image, the Toolbx binary, the shims', { timeout: 20 * MINUTE }, async (t) => {
  bullseye = await debianTree('bullseye', (s) => t.comment(s))
  toolbox = await unpackToolbox(join(work, 'podman-toolbox'))
  for (const mode of MODES) {
    const shimDir = join(work, `shims-${mode}`)
    await mkdir(shimDir)
    toolboxShims[mode] = await makeShim('toolbox', toolbox.binary, shimDir, mode)
    lsShims[mode] = await makeShim('ls', '/usr/bin/ls', shimDir, mode)
  }
  t.comment(`target ${toolbox.binary} (${toolbox.deb}, PT_INTERP ${toolbox.interp})`)

  const tarball = join(work, 'bullseye.tar')
  const t0 = Date.now()
  await mustRun('tar', ['-C', bullseye.root, '--exclude=./.hostshim-e2e-complete', '-cf', tarball, '.'])
  const r = await podman.run(['import', '--quiet', tarball, IMAGE])
  imported = true
  t.equal(r.code, 0, `podman import ${IMAGE}`, { stderr: r.stderr })
  t.comment(`tar + podman import: ${((Date.now() - t0) / 1000).toFixed(1)} s`)
})

const runArgs = (binds: readonly string[], argv: readonly string[]) => [
  'run', '--rm', ...RUN_FLAGS,
  '-v', '/:/run/host:rslave',
  ...binds.flatMap((b) => ['-v', b]),
  IMAGE, ...argv,
]

t.test('toolbox --version in the container, through the shim', { timeout: 5 * MINUTE }, async (t) => {
  // The native output: on a Toolbx host (a /run/host -> ../ symlink, made in bwrap only).
  const native = await runIn({ root: '/', hostRoot: null, runHostSymlink: true, payloads: [toolbox.dir] }, [toolbox.binary, '--version'])
  t.equal(native.code, 0, 'natively, on a host with the /run/host symlink')
  t.match(native.stdout, /^toolbox version \d/, `native: ${native.stdout.trim()}`)

  for (const mode of MODES) {
    await t.test(`${mode} mode`, async (t) => {
      const shim = toolboxShims[mode]
      const viaShim = await podman.run(runArgs([`${shim.path}:/usr/bin/toolbox:ro`], ['/usr/bin/toolbox', '--version']))
      t.equal(viaShim.code, 0, 'through the shim at /usr/bin/toolbox: exit 0', { stderr: viaShim.stderr })
      t.equal(viaShim.stdout, native.stdout, `through the shim: ${viaShim.stdout.trim()}`)
      rows.push(['toolbox --version (Debian\'s Toolbx binary)', `through the ${mode}-mode shim at /usr/bin/toolbox`, viaShim.code === 0 ? `works: \`${firstLine(viaShim.stdout)}\`` : `FAILS: ${firstLine(viaShim.stderr)}`])

      const debug = await podman.run(runArgs([`${shim.path}:/usr/bin/toolbox:ro`], ['env', 'HOSTSHIM_DEBUG=1', '/usr/bin/toolbox', '--version']))
      t.match(debug.stderr, /^toolbox: mode: container$/m, 'the shim is in container mode')
      t.match(debug.stderr, /^toolbox: loader: \/run\/host\/\S*ld-linux-x86-64\.so\.2$/m, 'and runs the host loader under /run/host')
      t.comment(debug.stderr.trim())
    })
  }

  // Toolbx's own binary works here too: its PT_INTERP and RUNPATH point at /run/host.
  const direct = await podman.run(runArgs([`${toolbox.binary}:/usr/bin/toolbox:ro`], ['/usr/bin/toolbox', '--version']))
  t.comment(`the Toolbx binary bound directly: exit ${direct.code}, ${JSON.stringify((direct.stdout || direct.stderr).trim())} (works without a shim: not counted as proof)`)
  rows.unshift(['toolbox --version (Debian\'s Toolbx binary)', 'bound directly at /usr/bin/toolbox', direct.code === 0 ? `works (PT_INTERP and RUNPATH under /run/host): \`${firstLine(direct.stdout)}\`` : `fails: ${firstLine(direct.stderr)}`])
})

t.test("the host's ls in the container: direct fails, the shim works", { timeout: 5 * MINUTE }, async (t) => {
  const native = await runOnMachine(['/usr/bin/ls', '--version'])
  t.equal(native.code, 0, 'natively')
  const direct = await podman.run(runArgs(['/usr/bin/ls:/usr/local/bin/host-ls:ro'], ['/usr/local/bin/host-ls', '--version']))
  t.not(direct.code, 0, `direct: fails (exit ${direct.code})`)
  t.match(direct.stderr, /version `GLIBC_2\.3[3-9]' not found/, `direct: ${direct.stderr.trim().split('\n')[0]}`)
  const version = /version `([^']+)' not found/.exec(direct.stderr)?.[1]
  rows.push(["the host's ls --version", 'bound directly', direct.code === 0 ? 'works' : `fails: \`version ${version ?? '?'} not found\``])
  for (const mode of MODES) {
    await t.test(`${mode} mode`, async (t) => {
      const viaShim = await podman.run(runArgs([`${lsShims[mode].path}:/usr/local/bin/host-ls:ro`], ['/usr/local/bin/host-ls', '--version']))
      t.equal(viaShim.code, 0, 'through the shim: exit 0', { stderr: viaShim.stderr })
      t.equal(viaShim.stdout, native.stdout, 'through the shim: the same output as on the host')
      rows.push(["the host's ls --version", `through the ${mode}-mode shim`, viaShim.code === 0 ? `**works**: \`${firstLine(viaShim.stdout)}\`` : `FAILS: ${firstLine(viaShim.stderr)}`])
    })
  }
})

t.test('out/podman.md', async (t) => {
  const text = [
    '<!-- generated by `npm run test:e2e` (test/e2e/podman.test.ts) -->',
    '',
    `podman run ${RUN_FLAGS.join(' ')} -v /:/run/host:rslave, image imported from the debootstrap bullseye tree (glibc 2.31), host: this machine (bookworm, glibc 2.36)`,
    '',
    '| program | how | result |',
    '|---|---|---|',
    ...rows.map((r) => `| ${r.join(' | ')} |`),
    '',
  ].join('\n')
  await mkdir(OUT_DIR, { recursive: true })
  await writeFile(join(OUT_DIR, 'podman.md'), text)
  process.stderr.write(`\n${text}\n`)
  t.equal(rows.length, 2 + 2 * MODES.length, 'a row for each program bound directly, and one for each through each mode\'s shim')
})

t.test('cleanup: no images, no containers, nothing left', async (t) => {
  await removeImagesAndContainers()
  const ps = await podman.run(['ps', '--all', '--quiet'])
  const images = await podman.run(['images', '--all', '--quiet'])
  t.equal(ps.stdout.trim(), '', 'no containers left')
  t.equal(images.stdout.trim(), '', 'no images left')
  imported = false
  t.same(mountsUnder(work), [], `nothing mounted below ${work}`)
  t.same(mountsInTestDirs(), [], 'no mount below /tmp or the tree cache')
  await removeTree(work)
  t.notOk(existsSync(work), `${work} removed (podman's private storage with it)`)
  const after = await snapshot()
  t.same(differences(before, after), [], 'mounts in the test places, /run/host, podman-toolbox and the watched paths as before')
  for (const c of otherMountChanges(before, after)) t.comment(`not ours, but seen on this machine during the run: ${c}`)
})
