// The toolchain choice: zig or a C compiler (--cc, the config's cc), $CC read
// only when asked for, the probe's refusals (exit 4, naming the flag), and a
// cache key that names the compiler. Fake compilers are shell scripts.

import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { ARCHES } from '../launcher/arch.js'
import { shimConfigOf, validateConfig } from '../launcher/config.js'
import { ConfigError } from '../launcher/errors.js'
import { configHash } from '../launcher/mark.js'
import { CC_STATIC_FLAGS, cacheKey, findZig, loadToolchain, probeCompiler, type CCompiler } from '../launcher/toolchain.js'
import { renderShim } from '../shim/template.js'
import { runCli } from './lib/cli.js'
import { COMPILE_TIMEOUT_MS } from './lib/shims.js'

t.setTimeout(COMPILE_TIMEOUT_MS * 2)

const dir = await mkdtemp(join(tmpdir(), 'hostshim-toolchain-'))
t.teardown(() => rm(dir, { recursive: true, force: true }))

/** A fake compiler: answers --version, and runs `body` for a compile. */
async function fakeCc(name: string, body: string): Promise<string> {
  const path = join(dir, name)
  await writeFile(path, `#!/bin/sh\nfor a; do [ "$a" = --version ] && { echo "${name} 1.0"; exit 0; }; done\n${body}\n`)
  await chmod(path, 0o755)
  return path
}

t.test('zig unless a compiler is named; "zig" names it too', async (t) => {
  const env = { ...process.env, ZIG: findZig() }
  t.notOk((await loadToolchain(undefined, env)).kind === 'cc')
  t.notOk((await loadToolchain('zig', env)).kind === 'cc')
  const gcc = await loadToolchain('gcc', env)
  t.match(gcc, { kind: 'cc', command: ['gcc'], path: /\/gcc$/, version: /gcc/ })
  t.match(await loadToolchain('  gcc   -m64 ', env), { kind: 'cc', command: ['gcc', '-m64'] }, 'split at white space')
})

t.test('$CC: read only when asked for', async (t) => {
  const env = { ...process.env, ZIG: findZig(), CC: 'clang-14 -m64' }
  t.notOk((await loadToolchain(undefined, env)).kind === 'cc', 'CC set, no --cc: still zig')
  t.match(await loadToolchain('$CC', env), { kind: 'cc', command: ['clang-14', '-m64'] })
  await t.rejects(loadToolchain('$CC', { PATH: process.env.PATH }), new ConfigError('cc', 'is "$CC", but CC is not set in the environment'))
  // The CLI: CC names a compiler that does not exist, and generate (no --cc) works with zig.
  const out = join(dir, 'zig-shim')
  const r = await runCli(['generate', '--mode', 'exec', '-n', 'x', '-t', '/usr/bin/env', '-o', out], { env: { CC: '/nonexistent/cc' } })
  t.equal(r.code, 0, r.stderr)
})

t.test('a compiler that is not there, or cannot link statically: exit 4, the flag named', async (t) => {
  const missing = await runCli(['generate', '--cc', 'no-such-cc-here', '-n', 'x', '-t', '/usr/bin/env', '-o', join(dir, 'x')])
  t.equal(missing.code, 4)
  t.equal(missing.stderr, 'hostshim: cannot find the C compiler "no-such-cc-here" on PATH\n')

  const noStatic = await fakeCc('nostatic-cc', 'for a; do case "$a" in -static|-static-pie) echo "ld: cannot find -lc" >&2; exit 1;; esac; done\nexit 0')
  for (const mode of ['exec', 'chainload'] as const) {
    const flag = CC_STATIC_FLAGS[mode].at(-1) as string
    const r = await runCli(['generate', '--cc', noStatic, '--mode', mode, '-n', 'x', '-t', '/usr/bin/env', '-o', join(dir, `x-${mode}`)])
    t.equal(r.code, 4, mode)
    t.match(r.stderr, new RegExp(`^hostshim: ${noStatic} cannot link a static (program|PIE)[^\\n]*: ${flag} failed\\nld: cannot find -lc\\n$`), `${mode}: names ${flag}`)
  }
  // A "compiler" that links something dynamic: /bin/true copied over the output.
  const dynamic = await fakeCc('dynamic-cc', 'while [ $# -gt 0 ]; do [ "$1" = -o ] && cp /bin/true "$2"; shift; done')
  const r = await runCli(['generate', '--cc', dynamic, '--mode', 'exec', '-n', 'x', '-t', '/usr/bin/env', '-o', join(dir, 'x-dyn')])
  t.equal(r.code, 4)
  t.match(r.stderr, /cannot link a static program: with -static it made a program that needs a PT_INTERP \("\/lib64\/ld-linux-x86-64\.so\.2"\)/)
})

t.test('the probe keeps only the size flags the compiler takes', async (t) => {
  const picky = await fakeCc('picky-cc', 'for a; do [ "$a" = -fno-inline-functions ] && { echo "unknown flag $a" >&2; exit 1; }; done\nexec gcc "$@"')
  const cc = (await loadToolchain(picky)) as CCompiler
  const profile = await probeCompiler(cc, 'exec')
  t.equal(profile.arch, 'x86_64')
  t.same(profile.flags.slice(0, 1), ['-static'])
  t.notOk(profile.flags.includes('-fno-inline-functions'), 'the refused flag is left out')
  t.ok(profile.flags.includes('-Os') && profile.flags.includes('-Wl,--gc-sections'), 'the others are kept')
})

t.test('a compiler for another architecture cannot build this one\'s shim', async (t) => {
  const r = await runCli(['generate', '--cc', 'gcc', '--mode', 'exec', '-a', 'aarch64', '-n', 'x', '-t', '/usr/bin/env', '-o', join(dir, 'x-arm')])
  t.equal(r.code, 4)
  t.match(r.stderr, /^hostshim: gcc builds x86_64 programs, not aarch64: give a C compiler for aarch64/)
})

t.test('the cache key names the compiler: path, command, version', async (t) => {
  const gcc: CCompiler = { kind: 'cc', command: ['gcc'], path: '/usr/bin/gcc', version: 'gcc 12.2.0' }
  const key = (cc: CCompiler) => cacheKey(cc, ARCHES.x86_64, 'int main(void) { return 0; }', 'exec')
  const keys = [
    key(gcc),
    key({ ...gcc, version: 'gcc 13.1.0' }),
    key({ ...gcc, path: '/opt/gcc/bin/gcc' }),
    key({ ...gcc, command: ['gcc', '-m64'] }),
    cacheKey(gcc, ARCHES.x86_64, 'int main(void) { return 0; }', 'chainload'),
    cacheKey({ path: '/usr/bin/gcc', version: 'gcc 12.2.0' }, ARCHES.x86_64, 'int main(void) { return 0; }', 'exec'),
  ]
  t.equal(new Set(keys).size, keys.length, 'each change gives another key')
  t.equal(key(gcc), key({ ...gcc }), 'the same compiler, the same key')
})

t.test('the config field cc', async (t) => {
  t.equal(validateConfig({ name: 'x', target: '/x', cc: ' musl-gcc ' }).cc, 'musl-gcc')
  t.equal(validateConfig({ name: 'x', target: '/x' }).cc, undefined)
  t.throws(() => validateConfig({ name: 'x', target: '/x', cc: '  ' }), new ConfigError('cc', 'must name a C compiler command, "$CC" or "zig", got an empty string'))
  t.throws(() => validateConfig({ name: 'x', target: '/x', cc: 3 }), ConfigError)
  // The toolchain is not baked in: the same shim config, hash and C with any cc.
  const plain = validateConfig({ name: 'x', target: '/x' })
  for (const cc of ['zig', 'gcc', '$CC']) {
    const withCc = validateConfig({ name: 'x', target: '/x', cc })
    t.same(shimConfigOf(withCc), shimConfigOf(plain), `cc ${cc}: the shim's config`)
    t.equal(configHash(shimConfigOf(withCc)), configHash(shimConfigOf(plain)), `cc ${cc}: the config hash`)
    t.equal(renderShim(withCc, ARCHES.x86_64), renderShim(plain, ARCHES.x86_64), `cc ${cc}: the C`)
  }
  const config = join(dir, 'cc.json')
  await writeFile(config, JSON.stringify({ name: 'x', target: '/usr/bin/env', mode: 'exec', cc: 'no-such-cc-here' }))
  const r = await runCli(['generate', '-c', config, '-o', join(dir, 'x-cfg')])
  t.equal(r.code, 4, 'the config\'s compiler is used')
  t.match(r.stderr, /"no-such-cc-here"/)
})
