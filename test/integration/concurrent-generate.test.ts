// `hostshim generate` run many times at once, as image builds do: eight
// processes (the same config four times, two more configs twice each),
// sharing one hostshim cache and one zig global cache, from empty
// caches, then again with zig warm and hostshim's cache empty, then again
// with both warm. Every run succeeds; equal configs give byte-identical
// shims; different configs give different ones; the caches end up holding
// one entry per config and no temp files.
//
// What used to fail: zig keeps one record per target and flags for a source
// it knows only as "shim.c", and without a build.zig it keeps it in its
// global cache, so every generate of any config raced on that one record
// ("failed to open ~/.cache/zig/o/HASH/shim.o: FileNotFound"). hostshim now
// gives each compile a private zig local cache (launcher/toolchain.ts,
// zigEnv); the last test checks that zig's global cache holds no record of a
// shim's source, which is what makes the race impossible rather than rare.
//
// The caches here are private temp dirs (HOSTSHIM_CACHE, ZIG_GLOBAL_CACHE_DIR),
// so the cold round really is cold and other tests' caches are untouched.
// Exec mode only: the race does not depend on the mode, and one mode needs
// one compiler-rt build (cold, ~10 s on two idle cores; the eight wait on zig's lock).

import { spawn } from 'node:child_process'
import { createHash } from 'node:crypto'
import { readFileSync, readdirSync } from 'node:fs'
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { parseElf } from '../../launcher/elf.js'
import { inspectFile } from '../../launcher/inspect.js'
import { bundledCli } from '../lib/cli.js'

// Cold on a busy machine the one compiler-rt build can take minutes (musl's,
// before shims had their own runtime, took 12 on two cores shared with 20
// other jobs); on an idle one, seconds.
t.setTimeout(60 * 60_000)

const cli = bundledCli()
const work = await mkdtemp(join(tmpdir(), 'hostshim-concurrent-'))
t.teardown(() => rm(work, { recursive: true, force: true }))
const hostshimCache = join(work, 'hostshim-cache')
const zigGlobal = join(work, 'zig-global')

interface Config {
  readonly id: string
  readonly args: readonly string[]
  readonly target: string
}
const A: Config = { id: 'A', args: ['-n', 'tool', '-t', '/usr/bin/tool', '--mode', 'exec'], target: '/usr/bin/tool' }
const B: Config = { id: 'B', args: ['-n', 'other', '-t', '/usr/libexec/other/other', '--mode', 'exec'], target: '/usr/libexec/other/other' }
const C: Config = { id: 'C', args: ['-n', 'tool', '-t', '/usr/bin/tool', '--mode', 'exec', '-L', '/opt/lib', '-e', 'K=v'], target: '/usr/bin/tool' }
/** Eight generates: A four times, B and C twice each, interleaved. */
const RUNS: readonly Config[] = [A, B, C, A, A, B, C, A]

interface Result {
  readonly config: Config
  readonly status: number | null
  readonly stdout: string
  readonly stderr: string
  readonly output: string
}

function generateOnce(config: Config, output: string): Promise<Result> {
  return new Promise((resolve) => {
    const env: NodeJS.ProcessEnv = { ...process.env, HOSTSHIM_CACHE: hostshimCache, ZIG_GLOBAL_CACHE_DIR: zigGlobal, NODE_OPTIONS: '' }
    delete env.ZIG_LOCAL_CACHE_DIR
    const child = spawn(process.execPath, [cli, 'generate', ...config.args, '--arch', 'x86_64', '--json', '-o', output], { env })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()))
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
    child.on('close', (status) => resolve({ config, status, stdout, stderr, output }))
  })
}

async function round(name: string): Promise<Result[]> {
  return Promise.all(RUNS.map((config, i) => generateOnce(config, join(work, name, `${config.id}-${i}`))))
}

const sha = (file: string) => createHash('sha256').update(readFileSync(file)).digest('hex')

function checkRound(t: Test, results: Result[], wantCached: boolean): Map<string, string> {
  const digests = new Map<string, string>()
  for (const [i, r] of results.entries()) {
    const label = `run ${i} (config ${r.config.id})`
    t.equal(r.status, 0, `${label}: exit 0${r.stderr ? `: ${r.stderr.trim()}` : ''}`)
    t.equal(r.stderr, '', `${label}: nothing on stderr`)
    if (r.status !== 0) continue
    const [built] = (JSON.parse(r.stdout) as { shims: { sha256: string; cached: boolean; path: string }[] }).shims
    const digest = sha(r.output)
    t.equal(built?.sha256, digest, `${label}: the file is what generate reports`)
    if (wantCached) t.equal(built?.cached, true, `${label}: from hostshim's cache`)
    const elf = parseElf(readFileSync(r.output))
    t.ok(elf.isStatic && elf.interpreter === null, `${label}: a static shim`)
    t.equal(inspectFile(readFileSync(r.output), r.output).shim?.target, r.config.target, `${label}: its mark names its target`)
    const seen = digests.get(r.config.id)
    if (seen === undefined) digests.set(r.config.id, digest)
    else t.equal(digest, seen, `${label}: byte-identical to the other runs of config ${r.config.id}`)
  }
  t.equal(new Set(digests.values()).size, 3, 'three configs, three different shims')
  return digests
}

let cold: Map<string, string> = new Map()

t.test('eight generates at once from empty caches all succeed', async (t) => {
  cold = checkRound(t, await round('cold'), false)
})

t.test('eight at once again, zig warm and hostshim\'s cache emptied: the same bytes', async (t) => {
  await rm(hostshimCache, { recursive: true, force: true })
  const warm = checkRound(t, await round('zig-warm'), false)
  t.same(Object.fromEntries(warm), Object.fromEntries(cold), 'each config gives the bytes it gave cold')
})

t.test('eight at once with both caches warm: all from hostshim\'s cache', async (t) => {
  const cached = checkRound(t, await round('warm'), true)
  t.same(Object.fromEntries(cached), Object.fromEntries(cold), 'the cached bytes are the compiled ones')
})

t.test('the caches hold one entry per config and no temp files', async (t) => {
  const entries = (await readdir(hostshimCache)).sort()
  t.equal(entries.length, 3, `hostshim's cache: ${entries.join(' ')}`)
  t.ok(entries.every((e) => /^[0-9a-f]{64}\.bin$/.test(e)), 'only finished entries, no .hostshim.tmp')
  for (const e of entries) t.ok([...cold.values()].includes(sha(join(hostshimCache, e))), `${e} holds one of the shims`)
})

t.test('zig\'s global cache keeps no record of a shim\'s source', async (t) => {
  // zig records a C source in h/*.txt as "SIZE INODE MTIME HASH PREFIX PATH".
  // A record naming shim.c here means compiles share zig's per-source state again.
  const manifests = readdirSync(join(zigGlobal, 'h')).filter((f) => f.endsWith('.txt'))
  t.ok(manifests.length > 0, `zig's global cache was used (compiler-rt): ${manifests.length} records`)
  const naming: string[] = []
  for (const m of manifests) {
    const text = await readFile(join(zigGlobal, 'h', m), 'utf8')
    if (/ shim\.c$/m.test(text)) naming.push(m)
  }
  t.same(naming, [], 'no record names shim.c')
})
