// Generator input, property by property (fast-check):
//   - any legal config value reaches the rendered C byte for byte: the C
//     literals of NAME, TARGET, HOST_ROOT, DEBUG_ENV, EXTRA_DIRS and SET_ENV,
//     decoded by a small C-literal reader here, are the value's UTF-8 bytes;
//   - user text lands only inside those literals: with literals and numbers
//     blanked, every config renders the same C;
//   - a sample of configs compiled and run in a container shows the bytes
//     again: the shim's whole debug output (the model's) and the program's
//     environment;
//   - any illegal value is a ConfigError naming its field, and the CLI says
//     so in one line, "hostshim: FIELD: ...", with exit code 3 and no stack;
//   - the same config gives the same C and the same binary, compiled twice
//     from empty caches.
// Every property holds for both modes' C (exec and chainload), and the
// compiled samples run in both modes.

import { spawnSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { mkdirSync, statSync, writeFileSync } from 'node:fs'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import fc from 'fast-check'
import t from 'tap'
import { ARCHES } from '../../launcher/arch.js'
import { MAX_PATH_BYTES, shimConfigOf, validateConfig, type RawConfig, type ShimConfig, type ShimMode } from '../../launcher/config.js'
import { ConfigError } from '../../launcher/errors.js'
import { generate } from '../../launcher/generate.js'
import { loadZig } from '../../launcher/toolchain.js'
import { renderShim } from '../../shim/template.js'
import { bundledCli } from '../lib/cli.js'
import { CONTAINER_ENV, makeBusyboxRoot, runInContainer } from '../lib/container.js'
import { DEB_DIR, buildTree, copyRealFiles, planTree, workingHost } from '../lib/hosttree.js'
import { COMPILE_TIMEOUT_MS, MODES, buildShim, suiteScratch } from '../lib/shims.js'
import { expectedOutput } from '../lib/shimrun.js'
import { seedFastCheck } from '../lib/seed.js'

const FC_SEED = seedFastCheck(t, 20251126)

t.setTimeout(COMPILE_TIMEOUT_MS * 3 * MODES.length)

const scratch = await suiteScratch(t, 'generator')

// ---------------------------------------------------------------------------
// Reading C literals back.

/** The bytes of the C string literal starting at text[at] (a '"'), and where it ends. */
export function readCString(text: string, at: number): { bytes: Buffer; end: number } {
  if (text[at] !== '"') throw new Error(`no string literal at ${at}: ${JSON.stringify(text.slice(at, at + 20))}`)
  const out: number[] = []
  let i = at + 1
  for (;;) {
    const ch = text[i]
    if (ch === undefined || ch === '\n') throw new Error(`unterminated literal at ${at}`)
    if (ch === '"') return { bytes: Buffer.from(out), end: i + 1 }
    if (ch !== '\\') {
      const code = ch.charCodeAt(0)
      if (code < 0x20 || code > 0x7e) throw new Error(`raw byte 0x${code.toString(16)} in a literal: not an emitter's output`)
      out.push(code)
      i++
      continue
    }
    const e = text.slice(i + 1)
    const octal = /^[0-7]{1,3}/.exec(e)
    if (octal) {
      out.push(parseInt(octal[0], 8))
      i += 1 + octal[0].length
    } else if (/^x[0-9a-fA-F]/.test(e)) {
      throw new Error('a \\x escape: the emitter must never write one (it is greedy)')
    } else {
      const simple: Record<string, number> = { '"': 0x22, '\\': 0x5c, '?': 0x3f, "'": 0x27, n: 10, t: 9, r: 13, a: 7, b: 8, f: 12, v: 11 }
      const code = simple[e[0] ?? '']
      if (code === undefined) throw new Error(`unknown escape \\${e[0]}`)
      out.push(code)
      i += 2
    }
  }
}

/** `static const char NAME[] = "...";` */
function scalar(c: string, name: string): Buffer {
  const decl = `static const char ${name}[] = `
  const at = c.indexOf(decl)
  if (at < 0) throw new Error(`no ${name} in the C`)
  const { bytes, end } = readCString(c, at + decl.length)
  if (c[end] !== ';') throw new Error(`${name}: more than one literal`)
  return bytes
}

/** `static const char NAME[] = "a\000b\000";`: the strings of a list, one after the other, each ending in NUL. */
function array(c: string, name: string): Buffer[] {
  const bytes = scalar(c, name)
  const items: Buffer[] = []
  for (let at = 0; at < bytes.length; ) {
    const end = bytes.indexOf(0, at)
    if (end < 0) throw new Error(`${name}: the last string has no NUL`)
    if (end === at) throw new Error(`${name}: an empty string would end the list`)
    items.push(bytes.subarray(at, end))
    at = end + 1
  }
  return items
}

/** The C with every literal emptied, every array of them collapsed and every number blanked. */
function skeleton(c: string): string {
  let out = ''
  for (let i = 0; i < c.length; ) {
    if (c.startsWith('/*', i)) {
      // A comment is the template's own text (no config value reaches one:
      // test/template.test.ts), and may hold a lone quote or apostrophe.
      const end = c.indexOf('*/', i + 2) + 2
      out += c.slice(i, end)
      i = end
    } else if (c[i] === '"') {
      out += '""'
      i = readCString(c, i).end
    } else if (c[i] === "'") {
      // A character literal of the template's own text: copied as it is.
      const end = c.indexOf("'", i + (c[i + 1] === '\\' ? 3 : 2))
      out += c.slice(i, end + 1)
      i = end + 1
    } else {
      out += c[i]
      i++
    }
  }
  return out.replace(/\{ (?:"", )*0 \}/g, '{ ... }').replace(/\d+/g, '#')
}

const utf8 = (s: string) => Buffer.from(s, 'utf8')
const x86 = ARCHES.x86_64

// ---------------------------------------------------------------------------
// Legal values.

const IDENT = /^[A-Za-z_][A-Za-z0-9_]{0,15}$/
const text = (maxLength: number) => fc.string({ unit: 'binary', maxLength }).filter((s) => !s.includes('\0'))
const component = fc.string({ unit: 'binary', minLength: 1, maxLength: 12 }).filter((s) => !/[\0/]/.test(s))
const absPath = (maxComponents: number) => fc.array(component, { minLength: 1, maxLength: maxComponents }).map((cs) => `/${cs.join('/')}`)
const legal = fc
  .record({
    name: fc.stringMatching(/^[A-Za-z0-9_+][A-Za-z0-9._+-]{0,20}$/),
    target: absPath(6),
    hostRoot: absPath(4),
    libDirs: fc.array(absPath(4).filter((p) => !/[:;$]/.test(p)), { maxLength: 4 }),
    debugEnv: fc.stringMatching(IDENT),
    env: fc.dictionary(fc.stringMatching(IDENT), text(40), { maxKeys: 4 }),
    argv0: fc.boolean(),
  })
  .filter((r) => r.target !== r.hostRoot && !r.target.startsWith(`${r.hostRoot}/`) && !(r.debugEnv in r.env))

/** The C of a config, in `mode`. */
const render = (raw: RawConfig, mode: ShimMode) => renderShim(shimConfigOf(validateConfig({ ...raw, mode })), x86)

for (const mode of MODES) {
  t.test(`${mode} mode: legal values reach the C literals byte for byte, and only there`, async (t) => {
    const base = skeleton(render({ name: 'x', target: '/x' }, mode))
    let runs = 0
    fc.assert(
      fc.property(legal, (raw) => {
        const c = render(raw, mode)
        runs++
        return (
          scalar(c, 'NAME').equals(utf8(raw.name)) &&
          scalar(c, 'TARGET').equals(utf8(raw.target)) &&
          scalar(c, 'HOST_ROOT').equals(utf8(raw.hostRoot)) &&
          scalar(c, 'DEBUG_ENV').equals(utf8(raw.debugEnv)) &&
          array(c, 'EXTRA_DIRS').every((b, i) => b.equals(utf8(raw.libDirs[i] as string))) &&
          array(c, 'EXTRA_DIRS').length === raw.libDirs.length &&
          JSON.stringify(array(c, 'SET_ENV').map((b) => b.toString('hex'))) ===
            JSON.stringify(Object.entries(raw.env).map(([k, v]) => utf8(`${k}=${v}`).toString('hex'))) &&
          skeleton(c) === base
        )
      }),
      { numRuns: 300 },
    )
    t.equal(runs >= 300, true, `${runs} configs`)
    // The decoder itself, on the emitter's hard cases.
    const hard = 'a"b\\c??/d\n\x01\x7f é 😀 \\101'
    const c = render({ name: 'x', target: `/${hard}` }, mode)
    t.same(scalar(c, 'TARGET'), utf8(`/${hard}`))
    t.notMatch(c, /\\x[0-9a-f]/, 'no \\x escape anywhere')
  })

  t.test(`${mode} mode: the longest legal paths round-trip too`, async (t) => {
    const long = `/${'é'.repeat((MAX_PATH_BYTES - 1) / 2)}`
    t.equal(utf8(long).length, MAX_PATH_BYTES)
    const c = render({ name: 'x', target: long, libDirs: [long.replace('/', '/l')].map((p) => p.slice(0, -1)) }, mode)
    t.same(scalar(c, 'TARGET'), utf8(long))
  })
}

// ---------------------------------------------------------------------------
// Illegal values.

type Breakage = { field: string; raw: (base: RawConfig) => RawConfig }
const BASE: RawConfig = { name: 'tool', target: '/usr/bin/tool', hostRoot: '/run/host', libDirs: ['/opt/lib'], env: { A: 'b' }, debugEnv: 'DBG' }
const breakages = fc.oneof(
  text(8).map((s): Breakage => ({ field: 'target', raw: (b) => ({ ...b, target: `/a${s}\0${s}` }) })),
  text(8).map((s): Breakage => ({ field: 'target', raw: (b) => ({ ...b, target: `rel${s}` }) })),
  fc.integer({ min: MAX_PATH_BYTES + 1, max: MAX_PATH_BYTES + 600 }).map((n): Breakage => ({ field: 'target', raw: (b) => ({ ...b, target: `/${'t'.repeat(n - 1)}` }) })),
  fc.constantFrom('\ud800', '\udfff', 'a\udc80b').map((s): Breakage => ({ field: 'target', raw: (b) => ({ ...b, target: `/x${s}` }) })),
  component.map((s): Breakage => ({ field: 'target', raw: (b) => ({ ...b, target: `/run/host/${s}` }) })),
  text(8).map((s): Breakage => ({ field: 'hostRoot', raw: (b) => ({ ...b, hostRoot: `h${s}` }) })),
  fc.constant<Breakage>({ field: 'hostRoot', raw: (b) => ({ ...b, hostRoot: '/' }) }),
  fc.constantFrom(':', ';', '$').map((ch): Breakage => ({ field: 'libDirs[1]', raw: (b) => ({ ...b, libDirs: ['/ok', `/bad${ch}dir`] }) })),
  text(8).map((s): Breakage => ({ field: 'libDirs[0]', raw: (b) => ({ ...b, libDirs: [`lib${s}`] }) })),
  fc.stringMatching(/^[0-9-][A-Za-z0-9-]{0,6}$/).map((k): Breakage => ({ field: `env.${k}`, raw: (b) => ({ ...b, env: { [k]: 'v' } }) })),
  text(8).map((s): Breakage => ({ field: 'env.A', raw: (b) => ({ ...b, env: { A: `${s}\0` } }) })),
  fc.constant<Breakage>({ field: 'env.DBG', raw: (b) => ({ ...b, env: { DBG: '1' } }) }),
  fc.stringMatching(/^[0-9][A-Za-z0-9]{0,6}$/).map((d): Breakage => ({ field: 'debugEnv', raw: (b) => ({ ...b, debugEnv: d }) })),
  fc.stringMatching(/^[.-][A-Za-z0-9]{0,6}$/).map((n): Breakage => ({ field: 'name', raw: (b) => ({ ...b, name: n }) })),
  fc.constant<Breakage>({ field: 'name', raw: (b) => ({ ...b, name: 'x'.repeat(65) }) }),
  fc.constant<Breakage>({ field: 'argv0', raw: (b) => ({ ...b, argv0: 'yes' }) }),
  fc.constant<Breakage>({ field: 'libDirs', raw: (b) => ({ ...b, libDirs: '/opt/lib' }) }),
  fc.constantFrom('Chainload', 'execve', '', 'exec ').map((m): Breakage => ({ field: 'mode', raw: (b) => ({ ...b, mode: m }) })),
)

t.test('illegal values: a ConfigError naming the field', async (t) => {
  let runs = 0
  fc.assert(
    fc.property(breakages, (breakage) => {
      runs++
      try {
        validateConfig(breakage.raw(BASE))
        return false
      } catch (error) {
        return error instanceof ConfigError && error.field === breakage.field && error.message.startsWith(`${breakage.field}: `)
      }
    }),
    { numRuns: 400 },
  )
  t.ok(runs >= 400, `${runs} broken configs`)
})

// ---------------------------------------------------------------------------
// The CLI: one line, exit 3, no stack.

t.test('the CLI refuses bad values in one line, exit 3', async (t) => {
  const cli = bundledCli()
  const flags: [string, string[], string][] = [
    ['a relative target', ['-n', 'tool', '-t', 'usr/bin/tool'], 'target'],
    ['a target under the host root', ['-n', 'tool', '-t', '/run/host/usr/bin/tool'], 'target'],
    ['a bad name', ['-n', '-bad', '-t', '/usr/bin/tool'], 'name'],
    ['a lib dir with ":"', ['-n', 'tool', '-t', '/usr/bin/tool', '-L', '/a:b'], 'libDirs[0]'],
    ['a bad debug variable', ['-n', 'tool', '-t', '/usr/bin/tool', '--debug-env', '1X'], 'debugEnv'],
    ['"/" as the host root', ['-n', 'tool', '-t', '/usr/bin/tool', '--host-root', '/'], 'hostRoot'],
    ['a 4096-byte target', ['-n', 'tool', '-t', `/${'t'.repeat(MAX_PATH_BYTES)}`], 'target'],
  ]
  const files: [string, string, string][] = [
    ['a NUL in the target', '{"name":"tool","target":"/usr/bin/a\\u0000b"}', 'target'],
    ['a lone surrogate in the target', '{"name":"tool","target":"/usr/bin/\\ud800"}', 'target'],
    ['a NUL in an env value', '{"name":"tool","target":"/usr/bin/tool","env":{"A":"x\\u0000"}}', 'env.A'],
    ['a lone surrogate in an env value', '{"name":"tool","target":"/usr/bin/tool","env":{"A":"\\udc00"}}', 'env.A'],
    ['a lone surrogate in a lib dir', '{"name":"tool","target":"/usr/bin/tool","libDirs":["/l\\udfff"]}', 'libDirs[0]'],
    ['env names the debug variable', '{"name":"tool","target":"/usr/bin/tool","env":{"HOSTSHIM_DEBUG":"1"}}', 'env.HOSTSHIM_DEBUG'],
    ['an unknown field', '{"name":"tool","target":"/usr/bin/tool","targte":"x"}', 'targte'],
    ['argv0 not a boolean', '{"name":"tool","target":"/usr/bin/tool","argv0":"no"}', 'argv0'],
  ]
  const out = join(scratch, 'cli-out')
  const check = (label: string, args: string[], field: string) => {
    const r = spawnSync(process.execPath, [cli, 'generate', ...args, '--out-dir', out], { encoding: 'utf8', env: { ...process.env, HOSTSHIM_CACHE: join(scratch, 'cli-cache') } })
    t.equal(r.status, 3, `${label}: exit 3`)
    t.equal(r.stdout, '', `${label}: nothing on stdout`)
    const lines = r.stderr.split('\n')
    t.equal(lines.length, 2, `${label}: one line on stderr`)
    t.ok(lines[0]?.startsWith(`hostshim: ${field}: `), `${label}: "hostshim: ${field}: ..." (${JSON.stringify(lines[0]?.slice(0, 120))})`)
    t.notMatch(r.stderr, /\n\s+at /, `${label}: no stack trace`)
  }
  for (const [label, args, field] of flags) check(label, args, field)
  files.forEach(([label, json, field], i) => {
    const file = join(scratch, `bad-${i}.json`)
    writeFileSync(file, json)
    check(label, ['-c', file], field)
  })
  t.throws(() => statSync(out), 'nothing was written')
})

// ---------------------------------------------------------------------------
// Determinism.

for (const mode of MODES) {
  t.test(`${mode} mode: the same config gives the same C and the same binary, from empty caches`, async (t) => {
    const zig = await loadZig()
    const raw: RawConfig = { name: 'same', target: '/usr/bin/sâme "x"', libDirs: ['/opt/é'], env: { K: 'v\nw' }, arch: 'x86_64', mode }
    const config = shimConfigOf(validateConfig(raw))
    t.equal(renderShim(config, x86), renderShim(shimConfigOf(validateConfig(raw)), x86), 'the same C')
    const digests: string[] = []
    for (const run of [1, 2]) {
      const cacheDir = await mkdtemp(join(tmpdir(), 'hostshim-generator-cache-'))
      try {
        const output = join(scratch, `same-${mode}-${run}`)
        const [built] = await generate(validateConfig({ ...raw, output }), { toolchain: zig, cacheDir })
        t.equal(built?.cached, false, `run ${run}: compiled, not from a cache`)
        t.equal(built?.mode, mode, `run ${run}: a ${mode}-mode shim`)
        digests.push(createHash('sha256').update(await readFile(output)).digest('hex'))
        t.equal(built?.sha256, digests[digests.length - 1], `run ${run}: the sha256 generate reports`)
      } finally {
        await rm(cacheDir, { recursive: true, force: true })
      }
    }
    t.equal(digests[0], digests[1], `byte-identical binaries: ${digests[0]}`)
  })
}

// ---------------------------------------------------------------------------
// Real compiles: the bytes in a running shim.

for (const mode of MODES) {
  t.test(`${mode} mode: a sample of random configs, compiled and run: the bytes arrive`, async (t) => {
    const real = copyRealFiles(join(scratch, mode, 'real'))
    const root = await makeBusyboxRoot(join(scratch, mode, 'root'))
    // Paths a container can hold: no "." or ".." components, the host root away from the root's own dirs.
    const runnable = fc
      .record({
        name: fc.stringMatching(/^[A-Za-z0-9_+][A-Za-z0-9._+-]{0,20}$/),
        hostRoot: absPath(3).map((p) => `/hr-${p.slice(1)}`),
        target: absPath(4),
        libDirs: fc.array(absPath(3).filter((p) => !/[:;$]/.test(p)), { minLength: 1, maxLength: 3 }),
        debugEnv: fc.stringMatching(IDENT),
        env: fc.dictionary(fc.stringMatching(IDENT), text(30), { minKeys: 1, maxKeys: 3 }),
      })
      .filter(
        (r) =>
          ![r.hostRoot, r.target, ...r.libDirs].some((p) => p.split('/').some((c) => c === '.' || c === '..')) &&
          !(r.debugEnv in r.env) &&
          !r.target.startsWith(DEB_DIR) &&
          !r.libDirs.some((d) => d === r.target || r.target.startsWith(`${d}/`) || d.startsWith(`${r.target}/`)) &&
          !r.target.startsWith('/lib64/'),
      )
    const samples = fc.sample(runnable, { numRuns: 3, seed: FC_SEED })
    let n = 0
    for (const raw of samples) {
      n++
      const config: ShimConfig = shimConfigOf(validateConfig({ ...raw, mode }))
      const tree = buildTree(join(scratch, mode, `sample-${n}`), { ...workingHost(real, raw.target) })
      // Real GNU env at the target, so the program prints its environment.
      spawnSync('cp', ['--remove-destination', '/usr/bin/env', join(tree, raw.target)])
      for (const d of raw.libDirs) mkdirSync(join(tree, d), { recursive: true })
      const shim = await buildShim(raw, mode)
      const at = `/usr/bin/${raw.name}`
      const run = (env: Record<string, string>) =>
        runInContainer({ root, host: tree, binds: [[tree, raw.hostRoot, 'ro'], [shim, at, 'ro']], argv: [at], env })
      const label = JSON.stringify(raw).slice(0, 300)

      const r = run({ ...CONTAINER_ENV, [raw.debugEnv]: '' })
      t.equal(r.status, 0, `${label}: runs`)
      const plan = planTree(config, tree, [at], 'container')
      t.equal(r.stderr.toString('latin1'), expectedOutput(config, plan, true).stderr.toString('latin1'), `sample ${n}: the debug output is the model's, byte for byte`)
      const hex = r.stdout.toString('hex')
      for (const [k, v] of Object.entries(raw.env)) t.ok(hex.includes(utf8(`${k}=${v}\n`).toString('hex')), `sample ${n}: ${k} arrives byte for byte`)
      t.equal(run({ ...CONTAINER_ENV }).stderr.length, 0, `sample ${n}: without ${raw.debugEnv}, no debug output`)
    }
    t.equal(n, 3)
  })
}
