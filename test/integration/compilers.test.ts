// The shim built with a distribution's own C compiler instead of zig: musl-gcc
// (Debian's musl-tools), gcc with static glibc, clang-14 with static glibc.
// Each compiler's shim runs the core container cases (container.test.ts has
// them all, with zig's shims) in every mode the compiler can build; musl-gcc
// cannot link a static PIE, so chainload with it must fail with exit 4 and
// say why. Then the packager's one-line compile of `hostshim render` output,
// with no hostshim in the loop, whose result `hostshim inspect` must
// recognise as the config's shim.
//
// Needs: musl-tools, gcc, clang-14, bwrap, busybox-static, strace (.ci/setup).

import { spawnSync } from 'node:child_process'
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import t from 'tap'
import type { ShimMode } from '../../launcher/config.js'
import { parseElf } from '../../launcher/elf.js'
import type { InspectReport } from '../../launcher/inspect.js'
import { FAILURES, STRERROR } from '../../launcher/plan.js'
import { runCli } from '../lib/cli.js'
import {
  CONTAINER_ENV,
  HOST_ROOT,
  addHostUserDb,
  assertNoStrayMounts,
  buildHostProbe,
  makeBusyboxRoot,
  parseProbe,
  runHost,
  runInContainer,
  shellCommand,
} from '../lib/container.js'
import { COMPILE_TIMEOUT_MS, DEBUG_ENV, buildShim, parseDebug, suiteScratch } from '../lib/shims.js'

t.setTimeout(COMPILE_TIMEOUT_MS * 6)

interface Compiler {
  readonly cc: string
  readonly libc: 'musl' | 'glibc'
  /** the modes it builds; the others must fail with exit 4 */
  readonly modes: readonly ShimMode[]
}

const COMPILERS: readonly Compiler[] = [
  { cc: 'musl-gcc', libc: 'musl', modes: ['exec'] },
  { cc: 'gcc', libc: 'glibc', modes: ['exec', 'chainload'] },
  { cc: 'clang-14', libc: 'glibc', modes: ['exec', 'chainload'] },
]

const scratch = await suiteScratch(t, 'compilers')
const probe = await buildHostProbe(scratch)
const text = (b: Buffer) => b.toString('latin1')
const hex = (b: Buffer | string) => (typeof b === 'string' ? Buffer.from(b, 'utf8') : b).toString('hex')
const ODD_ARGS = ['', 'two words', '"double"', "'single'", 'new\nline', '--argv0', '-', 'café 😀']

let roots = 0
const freshRoot = () => makeBusyboxRoot(join(scratch, `root-${++roots}`))

async function inspect(path: string): Promise<InspectReport> {
  const r = await runCli(['inspect', '--json', path])
  if (r.code !== 0) throw new Error(r.stderr)
  return JSON.parse(r.stdout) as InspectReport
}

/** The C library a static binary carries: glibc's has its tunables' names (glibc.malloc...), musl has none. */
async function libcOf(path: string): Promise<string> {
  return (await readFile(path)).includes('glibc.malloc.') ? 'glibc' : 'musl'
}

for (const { cc, libc, modes } of COMPILERS) {
  t.test(cc, async (t) => {
    for (const mode of modes) {
      t.test(`${mode} mode`, async (t) => {
        t.test('generate --cc: a static shim with the mark, the size printed', async (t) => {
          const out = join(scratch, `${cc}-${mode}-id`)
          const r = await runCli(['generate', '--cc', cc, '--mode', mode, '-n', 'id', '-t', '/usr/bin/id', '-o', out])
          t.equal(r.code, 0, r.stderr)
          const [arch, bytes] = r.stdout.split(' ')
          t.equal(arch, 'x86_64')
          t.comment(`${cc}, ${mode} mode: ${bytes} bytes (${libc})`)
          const elf = parseElf(await readFile(out))
          t.equal(elf.hasInterpreter, false, 'no PT_INTERP')
          t.same(elf.dynamic?.needed ?? [], [], 'no shared library')
          t.equal(elf.typeName, mode === 'chainload' ? 'DYN' : 'EXEC', mode === 'chainload' ? 'a static PIE' : 'a static fixed-address program')
          t.equal(await libcOf(out), libc, `linked with ${libc}`)
          t.match((await inspect(out)).shim, { name: 'id', target: '/usr/bin/id', arch: 'x86_64' })

          const again = await runCli(['generate', '--cc', cc, '--mode', mode, '-n', 'id', '-t', '/usr/bin/id', '-o', out, '--json'])
          t.equal(again.code, 0, again.stderr)
          t.match(JSON.parse(again.stdout), { shims: [{ cached: true, sha256: r.stdout.split(' ')[2] }] }, 'the second build comes from the cache')
        })

        t.test('a dynamic host program runs in a libc-free root only through the shim', async (t) => {
          const root = await freshRoot()
          await addHostUserDb(root)
          const native = runHost('/usr/bin/id', [])
          const direct = runInContainer({ root, host: '/', argv: ['/bin/sh', '-c', `${HOST_ROOT}/usr/bin/id`] })
          t.equal(direct.status, 127, 'not without the shim')
          const shim = await buildShim({ name: 'id', target: '/usr/bin/id' }, mode, cc)
          const r = runInContainer({ root, host: '/', binds: [[shim, '/usr/bin/id', 'ro']], argv: ['/usr/bin/id'] })
          t.equal(r.status, 0, text(r.stderr))
          t.equal(text(r.stderr), '')
          t.equal(text(r.stdout), text(native.stdout), 'same output as the native id')
        })

        t.test('exit codes, argv byte for byte, the environment untouched', async (t) => {
          const root = await freshRoot()
          const hsh = await buildShim({ name: 'hsh', target: '/bin/sh' }, mode, cc)
          for (const code of [0, 1, 42, 255]) {
            const r = runInContainer({ root, host: '/', binds: [[hsh, '/usr/bin/hsh', 'ro']], argv: ['/usr/bin/hsh', '-c', `exit ${code}`] })
            t.equal(r.status, code, `exit ${code}`)
          }
          const p = await buildShim({ name: 'probe', target: probe }, mode, cc)
          const env = { ...CONTAINER_ENV, ODD: 'a b\tc', MULTI: 'one\ntwo' }
          // A script file: the words reach sh byte for byte.
          await writeFile(join(root, 'tmp/run.sh'), Buffer.concat([Buffer.from('exec '), shellCommand(['/usr/bin/probe', ...ODD_ARGS]), Buffer.from('\n')]))
          const r = runInContainer({ root, host: '/', binds: [[p, '/usr/bin/probe', 'ro']], argv: ['/bin/sh', '/tmp/run.sh'], env })
          t.equal(r.status, 0, text(r.stderr))
          const report = parseProbe(r.stdout)
          t.same(report.argv.map(hex), ['/usr/bin/probe', ...ODD_ARGS].map(hex))
          // sh adds PWD and SHLVL; the test runner adds its own variables to every process it starts.
          const seen = report.env.map(text).filter((e) => Object.keys(env).includes(e.slice(0, e.indexOf('='))))
          t.same(seen.sort(), Object.entries(env).map(([k, v]) => `${k}=${v}`).sort(), 'the caller\'s variables, values intact')
          t.same(report.env.map(text).filter((e) => e.startsWith('LD_')), [], 'no LD_ variable added')
        })

        t.test('a missing target: 127 and the one line', async (t) => {
          const root = await freshRoot()
          const shim = await buildShim({ name: 'missing-tool', target: '/bin/missing' }, mode, cc)
          const emptyHost = join(scratch, `empty-host-${roots}`)
          await mkdir(emptyHost)
          const r = runInContainer({ root, host: emptyHost, binds: [[shim, '/usr/bin/missing-tool', 'ro']], argv: ['/usr/bin/missing-tool'] })
          t.equal(r.status, 127)
          t.equal(text(r.stderr), `missing-tool: ${FAILURES.targetMissing}: ${HOST_ROOT}/bin/missing: ${STRERROR.ENOENT}\n`)
        })

        t.test(`${mode === 'exec' ? 'one exec, of the loader' : 'no exec'} after the shim's own (strace)`, async (t) => {
          const root = await freshRoot()
          const shim = await buildShim({ name: 'probe', target: probe }, mode, cc)
          const trace = join(scratch, `strace-${cc}-${mode}.out`)
          const r = runInContainer({
            root,
            host: '/',
            binds: [[shim, '/usr/bin/probe', 'ro']],
            argv: ['/usr/bin/probe', 'x'],
            env: { ...CONTAINER_ENV, [DEBUG_ENV]: '1' },
            wrapper: ['/usr/bin/strace', '-f', '-qq', '-y', '-e', 'trace=execve,execveat,fork,vfork,clone,clone3', '-o', trace],
          })
          t.equal(r.status, 0, text(r.stderr))
          const debug = parseDebug(r.stderr, 'probe')
          t.equal(debug.mode, 'container')
          t.match(text(debug.exec), /^\/run\/host\/.*\/ld-linux-x86-64\.so\.2$/)
          const pid = parseProbe(r.stdout).pid
          const calls = (await readFile(trace, 'latin1'))
            .split('\n')
            // execveat(fd<path>, "", ...): the shim execs the loader it opened; -y names it.
            .map((line) => /^(\d+) +(\w+)\("((?:[^"\\]|\\.)*)"?/.exec(line) ?? /^(\d+) +(execveat)\(\d+<([^>]*)>, ""/.exec(line))
            .filter((m): m is RegExpExecArray => m !== null && Number(m[1]) === pid)
            .map((m) => `${m[2]} ${m[3]}`)
          const start = calls.indexOf('execve /usr/bin/probe')
          t.ok(start >= 0, 'strace saw the shim start')
          const after = calls.slice(start + 1)
          if (mode === 'chainload') t.same(after, [], 'no execve: the loader runs in the shim\'s process')
          else {
            t.equal(after.length, 1, 'one exec')
            t.match(after[0], /^execveat \/.*\/ld-linux-x86-64\.so\.2$/, 'of the host loader')
          }
        })
        assertNoStrayMounts(t, [scratch])
      })
    }
    if (!modes.includes('chainload')) {
      t.test('chainload mode: refused, naming -static-pie (exit 4)', async (t) => {
        const r = await runCli(['generate', '--cc', cc, '--mode', 'chainload', '-n', 'id', '-t', '/usr/bin/id', '-o', join(scratch, `${cc}-chainload`)])
        t.equal(r.code, 4)
        t.match(r.stderr, new RegExp(`^hostshim: ${cc} cannot link a static PIE .*with -static-pie it made a program that needs a PT_INTERP`))
        t.equal(r.stdout, '')
      })
    }
  })
}

// The packager's compile: `hostshim render`, then the compiler alone, in one
// line. Both C libraries, -Wall -Wextra -Werror clean. chainload needs a
// static PIE (-static-pie), exec only -static.
for (const { cc, modes } of COMPILERS) {
  for (const mode of modes) {
    t.test(`standalone: ${cc} -static${mode === 'chainload' ? '-pie' : ''} -Os of hostshim render's C (${mode})`, async (t) => {
      const source = join(scratch, `render-${cc}-${mode}.c`)
      const out = join(scratch, `standalone-${cc}-${mode}`)
      const config = ['-n', 'toolbox', '-t', '/usr/libexec/toolbox/toolbox', '--mode', mode, '-e', 'TOOLBOX_VIA=shim']
      const rendered = await runCli(['render', ...config, '-o', source])
      t.equal(rendered.code, 0, rendered.stderr)
      const link = mode === 'chainload' ? '-static-pie' : '-static'
      const r = spawnSync(cc, [link, '-Os', '-Wall', '-Wextra', '-Werror', '-o', out, source], { encoding: 'utf8' })
      t.equal(r.status, 0, r.stderr)
      t.equal(r.stderr, '', 'no warning')
      const report = await inspect(out)
      const generated = join(scratch, `generated-${cc}-${mode}`)
      const gen = await runCli(['generate', ...config, '-o', generated])
      t.equal(gen.code, 0, gen.stderr)
      t.same(report.shim, (await inspect(generated)).shim, 'the mark generate puts in the same config\'s shim: name, target, config hash')
      const root = await freshRoot()
      const run = runInContainer({ root, host: '/', binds: [[out, '/usr/bin/toolbox', 'ro']], argv: ['/usr/bin/toolbox'], env: { ...CONTAINER_ENV, [DEBUG_ENV]: '1' } })
      t.equal(run.status, 127, 'no Toolbx here: the shim reports it')
      t.match(text(run.stderr), `toolbox: ${FAILURES.targetMissing}: ${HOST_ROOT}/usr/libexec/toolbox/toolbox: ${STRERROR.ENOENT}`)
    })
  }
}
