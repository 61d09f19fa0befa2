// The single executable, dist/hostshim (npm run build: esbuild bundle, then
// Node's SEA through @yao-pkg/pkg), run the way it is shipped: copied alone
// into an empty directory, no node_modules anywhere above it, no Node
// options, only zig given from outside.
//
// Built here when missing or older than any of its sources (~15 s).

import { spawnSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { existsSync, readdirSync, statSync } from 'node:fs'
import { copyFile, mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import t from 'tap'
import type { InspectReport } from '../../launcher/inspect.js'
import { findZig } from '../../launcher/toolchain.js'
import { REPO, runCli } from '../lib/cli.js'
import { COMPILE_TIMEOUT_MS, MODES } from '../lib/shims.js'

const BUILD_TIMEOUT_MS = 300_000
t.setTimeout(BUILD_TIMEOUT_MS + COMPILE_TIMEOUT_MS * 2 * MODES.length)

const EXECUTABLE = join(REPO, 'dist/hostshim')
/** What the executable is made of: any of them newer than it makes it stale. */
const SOURCES = ['launcher', 'shim', 'build/bundle.mjs', 'build/sea.mjs', 'examples/toolbox/hostshim.json', 'package.json', 'package-lock.json']

function newestMtime(path: string): number {
  const st = statSync(path)
  if (!st.isDirectory()) return st.mtimeMs
  return Math.max(st.mtimeMs, ...readdirSync(path).map((name) => newestMtime(join(path, name))))
}

function stale(): string | null {
  if (!existsSync(EXECUTABLE)) return 'missing'
  const built = statSync(EXECUTABLE).mtimeMs
  const newer = SOURCES.filter((s) => existsSync(join(REPO, s)) && newestMtime(join(REPO, s)) > built)
  return newer.length > 0 ? `older than ${newer.join(', ')}` : null
}

const why = stale()
if (why !== null) {
  t.comment(`dist/hostshim is ${why}: npm run build`)
  const started = Date.now()
  const build = spawnSync('npm', ['run', 'build'], { cwd: REPO, encoding: 'utf8', timeout: BUILD_TIMEOUT_MS, env: { ...process.env, NODE_OPTIONS: '' } })
  if (build.status !== 0) throw new Error(`npm run build failed (${build.status ?? build.signal}):\n${build.stdout}\n${build.stderr}`)
  t.comment(`built in ${((Date.now() - started) / 1000).toFixed(1)} s`)
}

const dir = await mkdtemp(join(tmpdir(), 'hostshim-single-'))
t.teardown(() => rm(dir, { recursive: true, force: true }))
const exe = join(dir, 'hostshim')
await copyFile(EXECUTABLE, exe)
const zig = findZig({})
const cacheDir = join(dir, 'cache')

/** Run the copy with a bare environment: no NODE_OPTIONS (tap sets some), no node_modules. */
function run(args: readonly string[], env: Record<string, string> = {}) {
  const r = spawnSync(exe, args, {
    cwd: dir,
    encoding: 'utf8',
    timeout: COMPILE_TIMEOUT_MS,
    // HOME keeps zig's own cache (its compiler-rt build) warm; hostshim's cache is fresh.
    env: { PATH: '/usr/bin:/bin', HOME: process.env.HOME ?? '/root', ZIG: zig, HOSTSHIM_CACHE: cacheDir, ...env },
  })
  return { code: r.status, stdout: r.stdout, stderr: r.stderr }
}

t.test('the copy stands alone', async (t) => {
  for (let d = dir; ; d = dirname(d)) {
    t.notOk(existsSync(join(d, 'node_modules')), `no node_modules in ${d}`)
    if (dirname(d) === d) break
  }
  const version = JSON.parse(await readFile(join(REPO, 'package.json'), 'utf8')).version as string
  t.same(run(['--version']), { code: 0, stdout: `${version}\n`, stderr: '' })
  const help = run(['--help'])
  t.equal(help.code, 0)
  t.match(help.stdout, /Exit codes:\n {2}0 {2}success/)
})

// Chainload mode is the default: no options at all. Exec: --mode exec, in a directory of its own.
for (const mode of MODES) {
  const modeFlags = mode === 'chainload' ? [] : ['--mode', mode]
  const outDir = mode === 'chainload' ? 'out' : `out-${mode}`
  t.test(`${mode} mode: generate ${mode === 'chainload' ? 'with no options' : `--mode ${mode}`} builds the built-in example; inspect reads its mark`, async (t) => {
    const gen = run(['generate', ...modeFlags, ...(mode === 'chainload' ? [] : ['--out-dir', outDir])])
    t.equal(gen.code, 0, gen.stderr)
    const shim = join(dir, outDir, 'toolbox-x86_64')
    t.match(gen.stdout, new RegExp(`^x86_64 \\d+ [0-9a-f]{64} ${shim}\\n$`))
    t.match(gen.stderr, /^(hostshim: compiling the x86_64 shim [^\n]*\n)*$/, 'stderr holds only the progress line of an uncached compile')
    t.ok(existsSync(join(cacheDir)), 'compiled with zig into the fresh cache')

    const inspected = run(['inspect', '--json', shim])
    t.equal(inspected.code, 0, inspected.stderr)
    const report = JSON.parse(inspected.stdout) as InspectReport
    t.match(report, { machine: 'x86_64', static: true, shim: { name: 'toolbox', target: '/usr/libexec/toolbox/toolbox', hostRoot: '/run/host' } })
    t.equal(report.type, 'DYN', 'a static PIE, in either mode')
    t.equal(report.shimMode, mode, `its mark says ${mode} mode`)

    // The same bytes as this checkout builds from examples/toolbox/hostshim.json.
    const fromSource = join(dir, `from-source-${mode}`)
    const r = await runCli(['generate', '-c', join(REPO, 'examples/toolbox/hostshim.json'), '-a', 'x86_64', '-o', fromSource, ...modeFlags])
    t.equal(r.code, 0, r.stderr)
    const sha = async (p: string) => createHash('sha256').update(await readFile(p)).digest('hex')
    t.equal(await sha(shim), await sha(fromSource), 'byte-identical to the source build')
  })
}

t.test('the other commands, and failures without stack traces', async (t) => {
  const doctor = run(['doctor', '/usr/bin/env', '--rootfs', '/'])
  t.equal(doctor.code, 0, doctor.stderr)
  t.match(doctor.stdout, /^"\/": runs directly/m)
  const usage = run(['frobnicate'])
  t.equal(usage.code, 2)
  t.match(usage.stderr, /unknown command 'frobnicate'/)
  const noZig = run(['generate', '-n', 'x', '-t', '/usr/bin/x'], { ZIG: '' })
  t.equal(noZig.code, 4, 'zig is not inside the executable: without $ZIG or PATH, exit 4')
  t.match(noZig.stderr, /^hostshim: cannot find zig: set ZIG=/)
  t.notMatch(noZig.stderr, /\n\s+at /)
})
