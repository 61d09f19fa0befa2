// examples/builddir, the Meson workflow for real: meson setup + meson compile
// on this machine build a program with its own shared library (RUNPATH
// $ORIGIN/../../lib) and, beside it, a shim whose target is
// "$ORIGIN/real/greet". The build directory's shim then runs the program
// (a) on this machine, (c) in busybox roots (no libc, no loader) with the
// machine at /run/host and the build directory at its own path, (d) through a
// symbolic link from another directory, (e) by a relative path from another
// working directory; in both shim modes. `meson install` then installs it the
// ordinary way: a shim with an absolute target in bindir.
// (b), a container with an older glibc, is test/e2e/builddir.test.ts.
//
// Needs: meson, ninja-build, cc, bwrap, busybox-static (see .ci/setup).

import { spawnSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdir, rm, symlink } from 'node:fs/promises'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import type { InspectReport } from '../../launcher/inspect.js'
import type { PlanJson } from '../../launcher/plan.js'
import { PROGRAM_PATH, SHIM_PATH, LIBRARY_PATH, buildExample, greeting, meson } from '../lib/builddir.js'
import { hostshimCommandDir, runCli } from '../lib/cli.js'
import { CONTAINER_ENV, assertNoStrayMounts, machineIsHost, makeBusyboxRoot, runHost, runInContainer, type Bind, type RunResult } from '../lib/container.js'
import { COMPILE_TIMEOUT_MS, DEBUG_ENV, MODES, parseDebug, suiteScratch } from '../lib/shims.js'

t.setTimeout(COMPILE_TIMEOUT_MS * 4)

const scratch = await suiteScratch(t, 'builddir')
const bin = await hostshimCommandDir()
t.teardown(() => rm(bin, { recursive: true, force: true }))
const text = (b: Buffer) => b.toString('latin1')
/** This machine's glibc release: what the program reports when the shim runs it with the host's. */
const HOST_GLIBC = /glibc (\d+\.\d+)/.exec(spawnSync('getconf', ['GNU_LIBC_VERSION'], { encoding: 'utf8' }).stdout)?.[1] as string

async function inspect(path: string): Promise<InspectReport> {
  const r = await runCli(['inspect', '--json', path])
  if (r.code !== 0) throw new Error(r.stderr)
  return JSON.parse(r.stdout) as InspectReport
}

function greets(t: Test, r: RunResult, who: string, status: number, what: string): void {
  t.equal(text(r.stderr), '', `${what}: nothing on stderr`)
  t.equal(r.status, status, `${what}: the program's exit status`)
  const m = greeting(who).exec(text(r.stdout))
  t.ok(m, `${what}: the program ran with libgreet from the build directory: ${JSON.stringify(text(r.stdout))}`)
  t.equal(m?.[1], HOST_GLIBC, `${what}: on the host's glibc`)
}

const elsewhere = join(scratch, 'elsewhere')
const homeBin = join(scratch, 'home-bin')
await mkdir(elsewhere, { recursive: true })
await mkdir(homeBin, { recursive: true })

for (const mode of MODES) {
  t.test(`${mode} mode`, async (t) => {
    const builddir = join(scratch, `build-${mode}`)
    buildExample(builddir, mode, bin)
    const shim = join(builddir, SHIM_PATH)
    const program = join(builddir, PROGRAM_PATH)

    const real = await inspect(program)
    t.equal(real.static, false, 'the program is dynamic')
    t.ok(real.needed.includes('libgreet.so') && existsSync(join(builddir, LIBRARY_PATH)), 'and needs its own library, built beside it')
    t.match(real.runpath ?? '', /\$ORIGIN/, `meson gave it a RUNPATH relative to itself: ${real.runpath}`)
    const shimReport = await inspect(shim)
    t.equal(shimReport.shim?.target, '$ORIGIN/real/greet', 'the shim beside it: a $ORIGIN target')
    t.equal(shimReport.targetHere, program)
    t.equal(shimReport.shimMode, mode)

    const box = await makeBusyboxRoot(join(scratch, `root-${mode}`))
    const binds: Bind[] = [[builddir, builddir, 'ro'], [elsewhere, elsewhere, 'ro'], [homeBin, homeBin, 'ro']]
    for (const [, dest] of binds) await mkdir(join(box, dest), { recursive: true })
    const inBox = (argv: readonly string[], env: Record<string, string> = CONTAINER_ENV) => runInContainer({ root: box, host: '/', binds, argv, env })

    t.test('(a) on the host', async (t) => {
      if (!machineIsHost(t)) return
      greets(t, runHost(shim, ['you'], { argv0: shim }), 'you', 0, 'from the build directory')
      greets(t, runHost(shim, ['you', 'again'], { argv0: shim }), 'you', 3, 'exit status')
      const debug = parseDebug(runHost(shim, ['you'], { argv0: shim, env: { ...CONTAINER_ENV, [DEBUG_ENV]: '1' } }).stderr, 'greet')
      t.equal(debug.mode, 'host')
      t.equal(text(debug.exec), program, 'host mode: the program exec\'d directly')
      const plan = await runCli(['plan', '-n', 'greet', '-t', '$ORIGIN/real/greet', '--mode', mode, '--origin', join(builddir, 'src'), '--root', '/', '--host-mode', '--arg0', shim, '--', 'you'])
      t.equal(plan.code, 0, plan.stderr)
      const json = JSON.parse(plan.stdout) as PlanJson & { exec: string; argv: string[] }
      t.equal(json.exec, program, '`hostshim plan --origin` says the same')
      t.same(json.argv, debug.argv.map(text))
    })

    t.test('(c) in a busybox root: only through the shim', async (t) => {
      const direct = inBox([program, 'you'])
      t.not(direct.status, 0, 'the program itself cannot start: no loader, no libc')
      t.equal(text(direct.stdout), '')
      greets(t, inBox([shim, 'box']), 'box', 0, 'the build directory\'s shim')
      const debug = parseDebug(inBox([shim, 'box'], { ...CONTAINER_ENV, [DEBUG_ENV]: '1' }).stderr, 'greet')
      t.equal(debug.mode, 'container')
      t.match(text(debug.loader ?? Buffer.alloc(0)), /^\/run\/host\//, 'the host\'s loader')
      t.equal(text(debug.argv[debug.argv.length - 2] as Buffer), program, 'the program at its own path, not under /run/host')
      const plan = await runCli(['plan', '-n', 'greet', '-t', '$ORIGIN/real/greet', '--mode', mode, '--origin', join(builddir, 'src'), '--root', '/', '--arg0', shim, '--', 'box'])
      t.equal(plan.code, 0, plan.stderr)
      const json = JSON.parse(plan.stdout) as PlanJson & { loader: string; argv: string[] }
      t.equal(json.loader, text(debug.loader as Buffer), '`hostshim plan --origin`: the same loader')
      t.same(json.argv, debug.argv.map(text), '`hostshim plan --origin`: the same argv')
    })

    t.test('(d) through a symbolic link to the shim in another directory', async (t) => {
      const link = join(homeBin, `greet-${mode}`)
      await symlink(shim, link)
      greets(t, inBox([link, 'link']), 'link', 0, 'in a busybox root')
      if (machineIsHost(t)) greets(t, runHost(link, ['link'], { argv0: link }), 'link', 0, 'on the host')
    })

    t.test('(e) through a relative path from another working directory', async (t) => {
      const call = `../build-${mode}/${SHIM_PATH}`
      greets(t, inBox(['/bin/sh', '-c', `cd ${elsewhere} && exec ${call} rel`]), 'rel', 0, 'in a busybox root')
      if (machineIsHost(t)) {
        const r = spawnSync('/bin/sh', ['-c', `exec ${call} rel`], { cwd: elsewhere, env: CONTAINER_ENV })
        greets(t, { status: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr }, 'rel', 0, 'on the host')
      }
    })

    t.test('meson install: the ordinary way, a shim with an absolute target', async (t) => {
      const dest = join(scratch, `dest-${mode}`)
      const r = meson(['install', '-C', builddir, '--destdir', dest, '--quiet'], bin)
      t.equal(r.code, 0, `${r.stdout}\n${r.stderr}`)
      const installed = await inspect(join(dest, 'usr/bin/greet'))
      t.equal(installed.shim?.target, '/usr/libexec/greet/greet', 'the installed shim names the installed program')
      t.equal(installed.targetHere, null)
      const moved = await inspect(join(dest, 'usr/libexec/greet/greet'))
      t.equal(moved.shim, null, 'the program itself moved to libexec')
      t.equal(moved.runpath, null, 'meson dropped the build directory RUNPATH on install')
      const lib = spawnSync('find', [dest, '-name', 'libgreet.so'], { encoding: 'utf8' }).stdout.trim()
      t.match(lib, new RegExp(`^${dest}/usr/lib[^ ]*/libgreet\\.so$`), 'the library installed to libdir')
    })
  })
}

t.test('no mounts left behind', async (t) => assertNoStrayMounts(t))
