// Privilege: a shim never runs privileged, and hostshim never makes one.
//
// The shim refuses to run with AT_SECURE (set-user-ID, set-group-ID, file
// capabilities): 126 and one line, before it looks at anything. That is
// tested on this machine, not in bwrap: bwrap sets PR_SET_NO_NEW_PRIVS, under
// which the kernel ignores set-user-ID bits and there is no AT_SECURE to see.
//
// generate writes shims mode 0755 exactly, whatever the umask; install gives
// the shim the program's permission bits without set-user-ID, set-group-ID or
// sticky, and refuses to replace a set-user-ID or set-group-ID program.
//
// All of it for shims of both modes, exec and chainload.

import { spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, rmSync } from 'node:fs'
import { chmod, chown, copyFile, mkdir, mkdtemp, readFile, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { ARCHES } from '../../launcher/arch.js'
import { validateConfig, type ShimMode } from '../../launcher/config.js'
import { parseElf } from '../../launcher/elf.js'
import { generate } from '../../launcher/generate.js'
import { markOf } from '../../launcher/mark.js'
import { nodeHostView } from '../../launcher/hostview.js'
import type { InstallResult } from '../../launcher/install.js'
import { planShim, toHostBytes } from '../../launcher/plan.js'
import { loadZig } from '../../launcher/toolchain.js'
import { REPO, runCli } from '../lib/cli.js'
import { CONTAINER_ENV } from '../lib/container.js'
import { shimConfig } from '../lib/hosttree.js'
import { COMPILE_TIMEOUT_MS, MODES, TEST_CACHE_DIR, buildShim, suiteScratch, type ShimFields } from '../lib/shims.js'

t.setTimeout(COMPILE_TIMEOUT_MS * 2 * MODES.length)

const scratch = await suiteScratch(t, 'privilege')
// The unprivileged user must reach the copies, on a file system that honours set-user-ID.
const nosuid = (dir: string) => /(^|,)nosuid(,|$)/.test(spawnSync('findmnt', ['-no', 'OPTIONS', '-T', dir], { encoding: 'utf8' }).stdout)
const suidDir = [scratch, join(REPO, 'out', 'privilege-test')].find((dir) => {
  mkdirSync(dir, { recursive: true })
  return !nosuid(dir)
})
t.teardown(() => rmSync(join(REPO, 'out', 'privilege-test'), { recursive: true, force: true }))
if (suidDir === undefined) throw new Error(`${scratch} and ${REPO}out are on nosuid file systems: set-user-ID cannot be tested here`)
// Only the directory itself: its parents (/tmp, the checkout) are left as they are.
await chmod(suidDir, 0o755)

const NOBODY = ['--reuid=65534', '--regid=65534', '--clear-groups']
const FIELDS: ShimFields = { name: 'tool', target: '/bin/true' }
const shims = {} as Record<ShimMode, string>
for (const mode of MODES) shims[mode] = await buildShim(FIELDS, mode)

/** A copy of the `shimMode` shim owned by root with `mode`, run as nobody through setpriv. */
async function runAsNobody(shimMode: ShimMode, mode: number, caps?: string) {
  const shim = shims[shimMode]
  const copy = join(suidDir as string, `tool-${shimMode}-${mode.toString(8)}${caps ? '-caps' : ''}`)
  await copyFile(shim, copy)
  await chown(copy, 0, 0)
  await chmod(copy, mode)
  if (caps) {
    const r = spawnSync('setcap', [caps, copy], { encoding: 'utf8' })
    if (r.status !== 0) throw new Error(`setcap: ${r.stderr}`)
  }
  return spawnSync('setpriv', [...NOBODY, '--', copy], { env: { ...CONTAINER_ENV } })
}

const refusal = (() => {
  const plan = planShim(shimConfig(FIELDS), ARCHES.x86_64, nodeHostView('/'), { mode: 'host', argv: ['tool'], secure: true })
  if (plan.ok) throw new Error('the model runs a privileged shim')
  return { message: toHostBytes(`${plan.message}\n`).toString('latin1'), exitCode: plan.exitCode }
})()

for (const shimMode of MODES) {
  t.test(`${shimMode} mode`, async (t) => {
    t.test('the shim refuses to run privileged', async (t) => {
      t.equal(refusal.message, 'tool: refusing to run privileged: /bin/true: Operation not permitted\n')
      for (const [label, mode] of [['set-user-ID root', 0o4755], ['set-group-ID root', 0o2755], ['both', 0o6755]] as const) {
        const r = await runAsNobody(shimMode, mode)
        t.equal(r.status, refusal.exitCode, `${label}: exit 126`)
        t.equal(r.stderr.toString('latin1'), refusal.message, `${label}: one line, the model's`)
        t.equal(r.stdout.length, 0)
      }
      if (existsSync('/usr/sbin/setcap') || existsSync('/sbin/setcap')) {
        const r = await runAsNobody(shimMode, 0o755, 'cap_net_raw+ep')
        t.equal(r.status, 126, 'file capabilities: exit 126')
        t.equal(r.stderr.toString('latin1'), refusal.message)
      } else {
        t.comment('setcap is not installed: file capabilities not tried')
      }
      // The control: the same copy without the bits runs /bin/true as nobody (host mode).
      const plain = await runAsNobody(shimMode, 0o755)
      t.equal(plain.status, 0, 'mode 0755: it runs')
      t.equal(plain.stderr.length, 0)
    })

    t.test('generate writes mode 0755 exactly, whatever the umask', async (t) => {
      const zig = await loadZig()
      const saved = process.umask()
      try {
        for (const umask of [0o000, 0o022, 0o077, 0o777]) {
          process.umask(umask)
          // A fresh cache: the first run compiles, the second is answered from the cache.
          const cacheDir = await mkdtemp(join(tmpdir(), 'hostshim-privilege-cache-'))
          for (const run of ['compiled', 'cached']) {
            const output = join(scratch, `gen-${shimMode}-${umask.toString(8)}-${run}`)
            const [built] = await generate(validateConfig({ ...FIELDS, mode: shimMode, arch: 'x86_64', output }), { toolchain: zig, cacheDir })
            t.equal(built?.cached, run === 'cached', `umask ${umask.toString(8).padStart(3, '0')}: ${run}`)
            t.equal((await stat(output)).mode & 0o7777, 0o755, `umask ${umask.toString(8).padStart(3, '0')}, ${run}: mode 0755`)
          }
          await chmod(cacheDir, 0o755)
          spawnSync('rm', ['-rf', cacheDir])
        }
      } finally {
        process.umask(saved)
      }
    })

    t.test('install never gives the shim set-user-ID, set-group-ID or sticky bits', async (t) => {
      const saved = process.umask(0)
      let trees = 0
      const destdir = async (mode: number) => {
        const dir = join(scratch, `destdir-${++trees}`)
        await mkdir(join(dir, 'usr/bin'), { recursive: true })
        await copyFile('/usr/bin/env', join(dir, 'usr/bin/prog'))
        await chmod(join(dir, 'usr/bin/prog'), mode)
        return dir
      }
      const install = (dir: string) =>
        runCli(['install', '--name', 'prog', '--binary', '/usr/bin/prog', '--destdir', dir, '--mode', shimMode, '--json'], { env: { HOSTSHIM_CACHE: TEST_CACHE_DIR } })
      try {
        for (const mode of [0o755, 0o750, 0o700, 0o711, 0o1755, 0o775]) {
          const dir = await destdir(mode)
          const r = await install(dir)
          t.equal(r.code, 0, `mode ${mode.toString(8)}: installed${r.code === 0 ? '' : `: ${r.stderr}`}`)
          const shimBits = (await stat(join(dir, 'usr/bin/prog'))).mode & 0o7777
          t.equal(shimBits, mode & 0o777, `program mode ${mode.toString(8).padStart(4, '0')}: the shim's is ${shimBits.toString(8).padStart(4, '0')}, no special bits`)
          t.equal((JSON.parse(r.stdout) as InstallResult).mode, `0${(mode & 0o777).toString(8)}`)
          const installed = await readFile(join(dir, 'usr/bin/prog'))
          t.equal(parseElf(installed).typeName, 'DYN', 'a static PIE, as every zig-built shim')
          t.equal(markOf(installed)?.mode, shimMode, `the shim is built in ${shimMode} mode (its mark)`)
        }
        for (const mode of [0o4755, 0o2755, 0o6755]) {
          const dir = await destdir(mode)
          const before = await readFile(join(dir, 'usr/bin/prog'))
          const r = await install(dir)
          t.equal(r.code, 7, `a ${mode.toString(8)} program: refused (exit 7)`)
          t.match(r.stderr, /^hostshim: refusing to install over .*set-(user|group)-ID/)
          t.same(await readFile(join(dir, 'usr/bin/prog')), before, 'the program is untouched')
          t.equal((await stat(join(dir, 'usr/bin/prog'))).mode & 0o7777, mode, 'with its mode')
          t.notOk(existsSync(join(dir, 'usr/libexec')), 'and nothing else was made')
        }
      } finally {
        process.umask(saved)
      }
    })
  })
}
