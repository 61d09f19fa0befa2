// Targets relative to the shim ($ORIGIN/REL) with real shims: a program built
// in a "build directory" with a shared library of its own beside it (RUNPATH
// $ORIGIN/lib, as Meson gives it), and its shim in the same directory. Run on
// this machine (host mode) and from busybox roots made by bwrap with the
// machine's `/` at /run/host and the build directory bind-mounted at the same
// path (container mode), in both shim modes; the shim's debug output is the
// plan model's to the byte (`hostshim plan --origin`'s computation).
//
// Also: a symbolic link to the shim from another directory, a relative
// invocation from another working directory, no /proc (AT_EXECFN), "..", a
// missing target, the plan cache (one plan per build directory, a rebuilt
// target invalidates it), and aarch64 under qemu-user.
//
// Needs: bwrap, busybox-static, cc, qemu-user-static, apt-get (see .ci/setup).

import { spawnSync } from 'node:child_process'
import { readFileSync, readdirSync, statSync } from 'node:fs'
import { chmod, copyFile, cp, mkdir, readFile, rename, rm, symlink, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { ARCHES, type Arch } from '../../launcher/arch.js'
import { shimConfigOf, validateConfig, type ShimMode } from '../../launcher/config.js'
import { nodeHostView, nodeRuntimeFiles } from '../../launcher/hostview.js'
import {
  FAILURES,
  PLAN_FORMAT,
  STRERROR,
  formatDebug,
  parsePlanCache,
  planCacheFileName,
  planShim,
  toHostBytes,
  type HostView,
  type Mode,
} from '../../launcher/plan.js'
import { loadZig } from '../../launcher/toolchain.js'
import {
  CC,
  CONTAINER_ENV,
  HOST_ROOT,
  assertNoStrayMounts,
  machineIsHost,
  makeBusyboxRoot,
  runHost,
  runInContainer,
  type Bind,
  type RunResult,
} from '../lib/container.js'
import { buildShimFor, glibcTarget, makeForeignHost, qemuFor, removeShimsFor } from '../lib/chainload.js'
import { configForArch } from '../../shim/chainload.js'
import { planCacheId } from '../../shim/template.js'
import { COMPILE_TIMEOUT_MS, DEBUG_ENV, MODES, buildShim, suiteScratch, type ShimFields } from '../lib/shims.js'

t.setTimeout(COMPILE_TIMEOUT_MS * 6)

const scratch = await suiteScratch(t, 'origin')
t.teardown(removeShimsFor)
const text = (b: Buffer) => b.toString('latin1')

const LIB_C = `const char *greeting(void) { return "hello from libgreet"; }
`
/** Prints the library's greeting and its argv; exits with argv[1] when that is a number. */
const PROG_C = `#include <stdio.h>
#include <stdlib.h>
const char *greeting(void);
int main(int argc, char **argv)
{
	int i;

	printf("%s\\n", greeting());
	for (i = 0; i < argc; i++)
		printf("argv %s\\n", argv[i]);
	return argc > 1 ? atoi(argv[1]) : 0;
}
`

/** The output PROG_C prints for `argv`. */
const expected = (argv: readonly string[]) => `hello from libgreet\n${argv.map((a) => `argv ${a}\n`).join('')}`

/**
 * A build directory as Meson lays one out, compiled with `cc`:
 *   build/lib/libgreet.so      the program's own library
 *   build/prog                 RUNPATH $ORIGIN/lib, needs libgreet.so and the host's glibc
 *   build/libexec/helper       the same program, RUNPATH $ORIGIN/../lib
 */
async function makeBuildDir(dir: string, cc: readonly string[] = [CC]): Promise<string> {
  await mkdir(join(dir, 'lib'), { recursive: true })
  await mkdir(join(dir, 'libexec'), { recursive: true })
  await writeFile(join(dir, 'greet.c'), LIB_C)
  await writeFile(join(dir, 'prog.c'), PROG_C)
  const [file, ...pre] = cc as [string, ...string[]]
  const compile = (args: string[]) => {
    const r = spawnSync(file, [...pre, ...args], { cwd: dir, encoding: 'utf8', env: { ...process.env } })
    if (r.status !== 0) throw new Error(`${cc.join(' ')} ${args.join(' ')} failed: ${r.stderr}`)
  }
  // A soname, as Meson gives one: without it zig's linker records DT_NEEDED "lib/libgreet.so", a path.
  compile(['-shared', '-fPIC', '-Wl,-soname,libgreet.so', '-o', 'lib/libgreet.so', 'greet.c'])
  compile(['-o', 'prog', 'prog.c', '-Llib', '-lgreet', '-Wl,-rpath,$ORIGIN/lib'])
  compile(['-o', 'libexec/helper', 'prog.c', '-Llib', '-lgreet', '-Wl,-rpath,$ORIGIN/../lib'])
  return dir
}

const build = await makeBuildDir(join(scratch, 'build'))
const other = join(scratch, 'elsewhere')
await mkdir(join(other, 'deeper'), { recursive: true })

const FIELDS = {
  prog: { name: 'prog', target: '$ORIGIN/prog' },
  helper: { name: 'helper', target: '$ORIGIN/../libexec/helper' },
} as const satisfies Record<string, ShimFields>

/** The shims, copied into the build directory: /proc/self/exe is where the copy is. */
const shims = {} as Record<ShimMode, { prog: string; helper: string }>
for (const mode of MODES) {
  await mkdir(join(build, mode, 'bin'), { recursive: true })
  const prog = join(build, `prog-shim-${mode}`)
  await copyFile(await buildShim(FIELDS.prog, mode), prog)
  const helper = join(build, mode, 'bin/helper')
  await copyFile(await buildShim(FIELDS.helper, mode), helper)
  await chmod(prog, 0o755)
  await chmod(helper, 0o755)
  shims[mode] = { prog, helper }
}
// ../libexec/helper from <mode>/bin: the helper next to each mode's bin/.
for (const mode of MODES) await symlink('../libexec', join(build, mode, 'libexec'))

/** The model's debug output for a shim of `fields` in `shimMode` whose file is in `origin`. */
function modelDebug(fields: ShimFields, shimMode: ShimMode, mode: Mode, origin: string | null, argv: readonly string[]): Buffer {
  const config = shimConfigOf(validateConfig({ ...fields, mode: shimMode, arch: 'x86_64' }))
  const plan = planShim(config, ARCHES.x86_64, nodeHostView('/'), { mode, argv, origin, callerView: nodeHostView('/') })
  return toHostBytes(formatDebug(config, plan))
}

/** A busybox root with the build directory (and `other`) at their own paths. */
let roots = 0
async function container(extra: readonly Bind[] = []): Promise<{
  run: (argv: readonly string[], opts?: { env?: Record<string, string>; proc?: boolean }) => RunResult
  /** The container's file system as its processes see it: the busybox root, the binds at their paths. */
  view: HostView
}> {
  const root = await makeBusyboxRoot(join(scratch, `root-${++roots}`))
  const binds: Bind[] = [[build, build, 'ro'], [other, other, 'ro'], ...extra]
  for (const [, dest] of binds) await mkdir(join(root, dest), { recursive: true })
  const inRoot = nodeHostView(root)
  const machine = nodeHostView('/')
  // Every bind here has its source at its own path on this machine.
  const pick = (path: string) => (binds.some(([, dest]) => path === dest || path.startsWith(`${dest}/`)) ? machine : inRoot)
  return {
    view: {
      lstat: (path) => pick(path).lstat(path),
      stat: (path) => pick(path).stat(path),
      readlink: (path) => pick(path).readlink(path),
      executable: (path) => pick(path).executable(path),
      open: (path) => pick(path).open(path),
      readdir: (path) => pick(path).readdir(path),
    },
    run: (argv, opts = {}) => {
      if (opts.proc === false) {
        // bwrap without --proc: the same container, and no /proc at all.
        const args = ['--bind', root, '/', '--ro-bind', '/', HOST_ROOT, '--dev', '/dev', '--die-with-parent']
        for (const [src, dest, m] of binds) args.push(m === 'ro' ? '--ro-bind' : '--bind', src, dest)
        const r = spawnSync('/usr/bin/bwrap', [...args, '--', ...argv], { env: opts.env ?? CONTAINER_ENV, timeout: 60_000 })
        return { status: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr }
      }
      return runInContainer({ root, host: '/', binds, argv, env: opts.env ?? CONTAINER_ENV })
    },
  }
}

/** `sh -c SCRIPT` on this machine, from `cwd`. */
function hostShell(script: string, cwd: string, env: Record<string, string> = CONTAINER_ENV): RunResult {
  const r = spawnSync('/bin/sh', ['-c', script], { cwd, env, timeout: 60_000 })
  return { status: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr }
}

function runs(t: Test, r: RunResult, argv: readonly string[], status: number, what: string): void {
  t.equal(text(r.stderr), '', `${what}: nothing on stderr`)
  t.equal(r.status, status, `${what}: the program's exit status`)
  t.equal(text(r.stdout), expected(argv), `${what}: the program ran, with its own library`)
}

const box = await container()

t.test('the program cannot start in a libc-free root by itself', async (t) => {
  const r = box.run([join(build, 'prog')])
  t.not(r.status, 0)
  t.equal(text(r.stdout), '')
})

for (const mode of MODES) {
  t.test(`${mode} mode`, async (t) => {
    const { prog, helper } = shims[mode]

    t.test('on the host: runs the program next to it, its own library from the build directory', async (t) => {
      if (!machineIsHost(t)) return
      runs(t, runHost(prog, ['7', 'a b'], { argv0: prog }), [prog, '7', 'a b'], 7, 'absolute')
      const debug = runHost(prog, ['0'], { argv0: prog, env: { ...CONTAINER_ENV, [DEBUG_ENV]: '1' } })
      t.equal(debug.status, 0)
      t.equal(text(debug.stderr), text(modelDebug(FIELDS.prog, mode, 'host', build, [prog, '0'])), 'debug output: the model\'s bytes (host mode, exec\'d directly)')
      t.match(text(debug.stderr), `prog: exec: ${build}/prog\n`)
    })

    t.test('in a busybox root: the host\'s loader and glibc, the build directory\'s library', async (t) => {
      runs(t, box.run([prog, '5', 'x']), [prog, '5', 'x'], 5, 'absolute')
      const debug = box.run([prog, '0'], { env: { ...CONTAINER_ENV, [DEBUG_ENV]: '1' } })
      t.equal(debug.status, 0)
      t.equal(text(debug.stderr), text(modelDebug(FIELDS.prog, mode, 'container', build, [prog, '0'])), 'debug output: the model\'s bytes')
      t.match(text(debug.stderr), `prog: loader: ${HOST_ROOT}/`, 'the host loader, under the host root')
      t.match(text(debug.stderr), `--library-path\nprog: argv[5]: ${HOST_ROOT}/`, 'the host\'s library path')
      t.match(text(debug.stderr), `\nprog: argv[6]: ${build}/prog\n`, 'the target: the caller\'s path, not under the host root')
    })

    t.test('through a symbolic link from another directory: /proc/self/exe is the shim itself', async (t) => {
      const link = join(other, `prog-${mode}`)
      await symlink(prog, link)
      t.teardown(() => rm(link))
      runs(t, box.run([link, '3']), [link, '3'], 3, 'in a container')
      if (machineIsHost(t)) runs(t, runHost(link, ['4'], { argv0: link }), [link, '4'], 4, 'on the host')
      // A relative link, called relatively from a third directory.
      const rel = join(other, 'deeper', `rel-${mode}`)
      await symlink(`../../build/prog-shim-${mode}`, rel)
      t.teardown(() => rm(rel))
      runs(t, box.run(['/bin/sh', '-c', `cd ${other} && exec ./deeper/rel-${mode} 2`]), [`./deeper/rel-${mode}`, '2'], 2, 'relative link, relative call')
    })

    t.test('through a relative path from another working directory', async (t) => {
      const call = `../build/prog-shim-${mode}`
      runs(t, box.run(['/bin/sh', '-c', `cd ${other} && exec ${call} 6`]), [call, '6'], 6, 'in a container')
      if (machineIsHost(t)) runs(t, hostShell(`exec ${call} 8`, other), [call, '8'], 8, 'on the host')
    })

    t.test('"$ORIGIN/../libexec/helper": ".." and a link in the relative part', async (t) => {
      runs(t, box.run([helper, '9']), [helper, '9'], 9, 'in a container')
      const debug = box.run([helper], { env: { ...CONTAINER_ENV, [DEBUG_ENV]: '1' } })
      t.equal(text(debug.stderr), text(modelDebug(FIELDS.helper, mode, 'container', join(build, mode, 'bin'), [helper])), 'debug output: the model\'s bytes')
      t.match(text(debug.stderr), `: ${build}/libexec/helper\n`, 'passed on resolved: no "..", no link')
      if (machineIsHost(t)) runs(t, runHost(helper, [], { argv0: helper }), [helper], 0, 'on the host')
    })

    t.test('no /proc: an absolute call still finds the build directory, a relative one cannot', async (t) => {
      runs(t, box.run([prog, '1'], { proc: false }), [prog, '1'], 1, 'absolute (AT_EXECFN)')
      const link = join(other, `noproc-${mode}`)
      await symlink(prog, link)
      t.teardown(() => rm(link))
      runs(t, box.run([link, '2'], { proc: false }), [link, '2'], 2, 'an absolute symbolic link: AT_EXECFN resolved')
      const r = box.run(['/bin/sh', '-c', `cd ${build} && exec ./prog-shim-${mode} 1`], { proc: false })
      t.equal(r.status, 127)
      t.equal(text(r.stdout), '')
      t.equal(text(r.stderr), `prog: ${FAILURES.originMissing}: /proc/self/exe: ${STRERROR.ENOENT}\n`, 'says that /proc is needed')
      t.match(text(r.stderr), /mount \/proc/)
    })

    t.test('a missing target: the caller\'s path in the message, 127', async (t) => {
      const lone = join(other, `lone-${mode}`)
      await copyFile(prog, lone)
      t.teardown(() => rm(lone))
      const r = box.run([lone])
      t.equal(r.status, 127)
      t.equal(text(r.stderr), `prog: ${FAILURES.targetMissing}: ${other}/prog: ${STRERROR.ENOENT}\n`)
      t.equal(text(r.stderr), text(modelDebug(FIELDS.prog, mode, 'container', other, [lone])), 'the model\'s failure line')
    })
  })
}

/**
 * The plan cache (shim/README.md, sections 3a and 10): the path a $ORIGIN
 * target asks for is part of the key, and the target's witnesses are its
 * lstats in the caller's view (WIT_CALLER), not under the host root. Two
 * copies of one build directory with the same shim, and a rebuilt target.
 */
t.test('the plan cache: one plan per build directory, a rebuilt target invalidates it', async (t) => {
  const a = await makeBuildDir(join(scratch, 'cache-a'))
  const b = join(scratch, 'cache-b')
  await cp(a, b, { recursive: true, verbatimSymlinks: true })
  const prog = { a: join(a, 'prog'), b: join(b, 'prog') }
  const original = await readFile(prog.a)
  // The rebuilt program: another output, linked as Meson links it.
  await writeFile(join(a, 'rebuilt.c'), '#include <stdio.h>\nconst char *greeting(void);\nint main(void) { printf("rebuilt: %s\\n", greeting()); return 0; }\n')
  const rebuild = (out: string) => {
    const r = spawnSync(CC, ['-o', out, 'rebuilt.c', '-Llib', '-lgreet', '-Wl,-rpath,$ORIGIN/lib'], { cwd: a, encoding: 'utf8' })
    if (r.status !== 0) throw new Error(`cc rebuilt.c: ${r.stderr}`)
  }
  // A plan is kept only when every witness is older than racySeconds (shim/README.md, section 10).
  const settle = () => new Promise((done) => setTimeout(done, (PLAN_FORMAT.racySeconds + 0.2) * 1000))
  const rootStat = statSync('/', { bigint: true })
  const euid = process.geteuid?.() ?? 0

  for (const mode of MODES) {
    t.test(`${mode} mode`, async (t) => {
      const rt = join(scratch, `cache-rt-${mode}`)
      await mkdir(rt, { mode: 0o700 })
      const shim = { a: join(a, `prog-shim-${mode}`), b: join(b, `prog-shim-${mode}`) }
      const built = await buildShim(FIELDS.prog, mode)
      for (const file of Object.values(shim)) {
        await copyFile(built, file)
        await chmod(file, 0o755)
      }
      const cbox = await container([[a, a, 'rw'], [b, b, 'rw'], [rt, rt, 'rw']])
      const config = shimConfigOf(validateConfig({ ...FIELDS.prog, mode, arch: 'x86_64' }))
      const id = planCacheId(configForArch(config, ARCHES.x86_64), ARCHES.x86_64)
      const env = { ...CONTAINER_ENV, [DEBUG_ENV]: '1', XDG_RUNTIME_DIR: rt }
      /** The model's debug output for the shim in `dir`, over the state the shim is about to see. */
      const model = (dir: string, argv: readonly string[], where: Mode = 'container') =>
        text(
          toHostBytes(
            formatDebug(
              config,
              planShim(config, ARCHES.x86_64, nodeHostView('/'), {
                mode: where,
                argv,
                env: [`XDG_RUNTIME_DIR=${rt}`],
                origin: dir,
                // The target's witnesses are the caller's: the container's own /tmp, not this machine's.
                callerView: where === 'container' ? cbox.view : nodeHostView('/'),
                cache: { id, euid, rootDev: rootStat.dev, rootIno: rootStat.ino, ...nodeRuntimeFiles() },
              }),
            ),
          ),
        )
      /** One launch of the shim in build directory `which`: its plan line, checked against the model. */
      const launch = (t: Test, which: 'a' | 'b', plan: string, what: string) => {
        const dir = which === 'a' ? a : b
        const argv = [shim[which], '0']
        const predicted = model(dir, argv)
        const r = cbox.run(argv, { env })
        t.equal(r.status, 0, `${what}: exit status`)
        t.match(text(r.stderr), `\nprog: plan: ${plan}\n`, `${what}: plan: ${plan}`)
        t.equal(text(r.stderr), predicted, `${what}: the model's bytes`)
        return text(r.stdout)
      }
      const plans = () => readdirSync(join(rt, PLAN_FORMAT.dir)).filter((f) => f.startsWith(PLAN_FORMAT.filePrefix)).sort()
      const fileOf = (which: 'a' | 'b', container = true) =>
        planCacheFileName(id, container, euid, rootStat.dev, rootStat.ino, `${which === 'a' ? a : b}/prog`)

      // The program in both directories as first built (the mode before may have rebuilt it).
      await writeFile(prog.a, original)
      await settle()

      t.test('kept on the first launch, used on the second', async (t) => {
        t.equal(launch(t, 'a', 'computed (no cache file)', 'first'), expected([shim.a, '0']), 'the program ran')
        t.equal(launch(t, 'a', 'cached', 'second'), expected([shim.a, '0']), 'the kept plan ran it')
        t.same(plans(), [fileOf('a')], 'one plan file, named after the key with the path asked for')
        const kept = parsePlanCache(readFileSync(join(rt, PLAN_FORMAT.dir, fileOf('a'))), ARCHES.x86_64)
        t.equal(kept?.origin, prog.a, 'the file holds the path asked for')
        t.equal(kept?.target, prog.a, 'and the target, the caller\'s path')
        const own = kept?.witnesses.filter((w) => w.caller).map((w) => w.path) ?? []
        t.ok(own.includes(prog.a), 'the target is a witness of the caller\'s view')
        t.ok(own.includes(a), 'so is its directory')
        t.notOk(own.some((p) => p.startsWith(`${HOST_ROOT}/`)), 'no host path among them')
        t.ok(kept?.witnesses.some((w) => !w.caller && w.path === `${HOST_ROOT}/etc/ld.so.cache`), 'the host\'s witnesses are under the host root')
      })

      t.test('a copy of the build directory: its own plan, never the other\'s', async (t) => {
        t.equal(launch(t, 'b', 'computed (no cache file)', 'the copy, first'), expected([shim.b, '0']), 'the copy\'s program ran')
        t.equal(launch(t, 'b', 'cached', 'the copy, second'), expected([shim.b, '0']))
        t.equal(launch(t, 'a', 'cached', 'the first directory again'), expected([shim.a, '0']))
        t.not(fileOf('a'), fileOf('b'))
        t.same(plans(), [fileOf('a'), fileOf('b')].sort(), 'two plan files')
        const kept = parsePlanCache(readFileSync(join(rt, PLAN_FORMAT.dir, fileOf('b'))), ARCHES.x86_64)
        t.equal(kept?.target, prog.b)
        t.notOk(kept?.witnesses.some((w) => w.path.startsWith(`${a}/`)), 'nothing of the first directory in it')
      })

      t.test('the target rebuilt (a new file renamed over it): computed again, the new program runs', async (t) => {
        rebuild(`${prog.a}.new`)
        await rename(`${prog.a}.new`, prog.a)
        t.equal(launch(t, 'a', `computed (changed: ${prog.a})`, 'rebuilt'), 'rebuilt: hello from libgreet\n', 'the rebuilt program ran')
        t.equal(launch(t, 'b', 'cached', 'the copy'), expected([shim.b, '0']), 'the copy keeps its plan and its program')
        await settle()
        t.equal(launch(t, 'a', `computed (changed: ${prog.a})`, 'rebuilt, once settled'), 'rebuilt: hello from libgreet\n')
        t.equal(launch(t, 'a', 'cached', 'rebuilt, kept'), 'rebuilt: hello from libgreet\n')
      })

      t.test('the target rewritten in place (same inode): computed again', async (t) => {
        const ino = statSync(prog.a).ino
        await writeFile(prog.a, original)
        t.equal(statSync(prog.a).ino, ino, 'the same inode')
        t.equal(launch(t, 'a', `computed (changed: ${prog.a})`, 'rewritten'), expected([shim.a, '0']), 'the program as it is now ran')
      })

      t.test('host mode: a plan of its own', async (t) => {
        if (!machineIsHost(t)) return
        await settle()
        for (const plan of ['computed (no cache file)', 'cached']) {
          const predicted = model(a, [shim.a, '0'], 'host')
          const r = runHost(shim.a, ['0'], { argv0: shim.a, env })
          t.equal(r.status, 0)
          t.match(text(r.stderr), `\nprog: plan: ${plan}\n`, `host: plan: ${plan}`)
          t.equal(text(r.stderr), predicted, 'the model\'s bytes')
          t.equal(text(r.stdout), expected([shim.a, '0']))
        }
        t.ok(plans().includes(fileOf('a', false)), 'host mode\'s own file')
      })
    })
  }
})

/**
 * aarch64 under qemu-user: a glibc program and its shared library built with
 * zig next to the chainload shim, in a busybox root with the aarch64 glibc of
 * Debian's cross package at /run/host. qemu-user answers readlink of
 * /proc/self/exe with the emulated program, as the kernel would. Chainload
 * only: an exec-mode shim's execve of the foreign loader needs a binfmt_misc
 * registration (test/integration/arches.test.ts makes one; qemu called
 * explicitly, as here, runs only the first program).
 */
t.test('aarch64 under qemu: the build directory next to the shim', async (t) => {
  const arch: Arch = ARCHES.aarch64
  const qemu = qemuFor(arch)
  if (qemu === null) {
    t.fail(`qemu-${arch.qemu}-static is not installed (qemu-user-static)`)
    return
  }
  const host = await makeForeignHost(arch, join(scratch, 'host-aarch64'))
  const zig = await loadZig()
  const dir = await makeBuildDir(join(scratch, 'build-aarch64'), [zig.path, 'cc', '-target', glibcTarget(arch), ...arch.zigFlags, '-O1'])
  const root = await makeBusyboxRoot(join(scratch, 'root-aarch64'))
  await copyFile(qemu, join(root, 'qemu'))
  await mkdir(join(root, dir), { recursive: true })
  for (const mode of ['chainload'] as const) {
    const shim = join(dir, `prog-shim-${mode}`)
    await copyFile(await buildShimFor(arch.name, { ...FIELDS.prog, mode }), shim)
    await chmod(shim, 0o755)
    const run = (argv: readonly string[], env = CONTAINER_ENV) => runInContainer({ root, host, binds: [[dir, dir, 'ro']], argv: ['/qemu', ...argv], env })
    const r = run([shim, '4', 'z'])
    t.equal(text(r.stderr), '', `${mode}: nothing on stderr`)
    t.equal(r.status, 4, `${mode}: the program's exit status`)
    t.equal(text(r.stdout), expected([shim, '4', 'z']), `${mode}: the aarch64 program ran with its own library`)
    const debug = run([shim], { ...CONTAINER_ENV, [DEBUG_ENV]: '1' })
    const config = shimConfigOf(validateConfig({ ...FIELDS.prog, mode, arch: 'aarch64' }))
    const plan = planShim(config, arch, nodeHostView(host), { mode: 'container', argv: [shim], origin: dir, callerView: nodeHostView('/') })
    t.equal(text(debug.stderr), text(toHostBytes(formatDebug(config, plan))), `${mode}: debug output: the model's bytes`)
  }
  t.ok(readFileSync(join(dir, 'prog')).includes('ld-linux-aarch64'), 'the program is an aarch64 glibc one')
})

t.test('no mounts left behind', async (t) => assertNoStrayMounts(t))
