// doctor judges a container's tree as the container sees it: with the host's
// root mounted at /run/host. Debian's own Toolbx binary (podman-toolbox,
// unpacked, never installed) has PT_INTERP and RUNPATH under /run/host, so
// in a container it runs directly, and on a host without /run/host it needs
// the shim. The verdicts are checked against real runs.

import { spawnSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import type { DoctorReport } from '../launcher/doctor.js'
import { parseElf } from '../launcher/elf.js'
import { runCli } from './lib/cli.js'
import { BWRAP, addHostUserDb, assertNoStrayMounts, machineIsHost, makeBusyboxRoot, runHost } from './lib/container.js'
import { unpackDeb } from './lib/debs.js'

const scratch = await mkdtemp(join(tmpdir(), 'hostshim-doctor-toolbox-'))
t.teardown(() => rm(scratch, { recursive: true, force: true }))

const toolbox = join(unpackDeb('podman-toolbox', join(scratch, 'pkg')), 'usr/bin/toolbox')
const elf = parseElf(readFileSync(toolbox))

t.test('the package is what the test is about: PT_INTERP and RUNPATH under /run/host', async (t) => {
  t.match(elf.interpreter, /^\/run\/host\//)
  t.match(elf.dynamic?.runpath, /^\/run\/host\//)
})

t.test('a libc-free container tree with the host at /run/host runs it directly; the host itself needs the shim', async (t) => {
  const root = await makeBusyboxRoot(join(scratch, 'root'))
  await addHostUserDb(root) // toolbox looks up its user
  const r = await runCli(['doctor', '--json', toolbox, '--rootfs', root, '--rootfs', '/'])
  t.equal(r.code, 0, r.stderr)
  const report = JSON.parse(r.stdout) as DoctorReport
  const [container, host] = report.trees
  t.equal(container?.verdict, 'runs-directly', container?.reason ?? '')
  t.match(container?.reason, /the host's loader and libraries, mounted at \/run\/host where its PT_INTERP and RUNPATH name them, satisfy the program/)
  t.equal(container?.direct.loader?.startsWith('/run/host/'), true, 'the loader is the host\'s, under the mount')
  t.match(container?.direct.libraries.find((l) => l.name === 'libc.so.6')?.path, /^\/run\/host\//, 'libc from RUNPATH, the host\'s')
  t.equal(host?.verdict, 'needs-shim', host?.reason ?? '')
  t.match(host?.reason, /has no loader "\/run\/host\//)

  // What really happens: in the container it starts; on the host (no /run/host) it cannot.
  const ran = runHost(BWRAP, ['--bind', root, '/', '--ro-bind', '/', '/run/host', '--ro-bind', toolbox, '/usr/bin/toolbox', '--ro-bind', '/sys', '/sys', '--proc', '/proc', '--dev', '/dev', '--', '/usr/bin/toolbox', '--version'])
  t.equal(ran.status, 0, ran.stderr.toString())
  t.match(ran.stdout.toString(), /^toolbox version /)
  if (machineIsHost(t)) {
    const r = spawnSync(toolbox, ['--version'])
    t.equal((r.error as NodeJS.ErrnoException | undefined)?.code, 'ENOENT', 'on the host it does not start: its loader path does not exist here')
  }
  assertNoStrayMounts(t, [scratch])
})
