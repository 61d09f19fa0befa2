// `npm run bench`: what a launch through the shim costs, next to the floor.
//
// Not a test: it measures and prints, with the targets beside the numbers,
// and never fails because of a number. It fails only when it cannot measure
// (no bwrap, a variant that does not run the program, ...).
//
// Every in-container variant runs in the same bubblewrap container (a
// busybox-only root, the host's / at /run/host), under a tiny static timing
// driver built with zig: N x (posix_spawn + wait4), clock_gettime around
// each. Variants alternate in rounds (rotated order, a few warm-up launches
// per block) so that drift and noise from the rest of the machine hit all of
// them alike; medians are computed here. "faults" is the median of the
// launch's minor page faults (wait4's ru_minflt, all of its execs together).
//
//   (a) the host loader run directly with the shim's exact argv: the floor
//   (b) the shim, in container mode
//   (c) a #!/bin/sh script (busybox) doing the same exec
//   (d) the shim built with mode: 'chainload' (same config otherwise): it maps
//   the host loader into its own process instead of exec'ing it, so it should
//   cost about what (a) costs
//   exec-only: a static program that only execs (a): the least any exec-based
//   launcher can cost, so (b) minus this is the shim's own work
//   host rows, for reference: the plain loader call (ld.so.cache, no options)
//   and the program exec'd directly. Neither can run in the container: it has
//   no libc in its default directories, which is the point of the shim.
//
// Options: --rounds N (20), --per-round N (100), --warmup N (5),
// --no-arches (do not build every architecture's shim for its size).

import { spawnSync } from 'node:child_process'
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { constants, cpus, loadavg, release, tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { ARCH_NAMES } from '../launcher/arch.js'
import { SHIM_MODES, validateConfig } from '../launcher/config.js'
import { generate } from '../launcher/generate.js'
import { loadZig } from '../launcher/toolchain.js'

const PROJECT = fileURLToPath(new URL('..', import.meta.url))
const NAME = 'hello'
const HOST_ROOT = '/run/host'
const SHIM_IN_ROOT = '/usr/bin/hello'
const CHAINLOAD_IN_ROOT = '/usr/bin/hello-chainload'
const SCRIPT_IN_ROOT = '/usr/bin/hello.sh'
const DRIVER_IN_ROOT = '/bin/spawnbench'
const TRAMPOLINE_IN_ROOT = '/bin/exec-only'
/** The environment of every measured launch: small, and without HOSTSHIM_DEBUG. */
const ENV = { PATH: '/usr/bin:/bin' }

const TARGETS = {
  shimBytes: 16 * 1024,
  containerRatio: 1.2,
  chainloadRatio: 1.05,
  cachedGenerateMs: 1000,
}

const PROGRAM_C = `#include <stdio.h>
int main(int argc, char **argv)
{
	if (argc > 1)
		puts(argv[1]);
	return 0;
}
`

// spawnbench WARMUP N PROGRAM [ARGS...]: N launches, one line each: "NS MINFLT"
// (wall time in ns, minor page faults of the child and everything it exec'd),
// all on the CPU the driver started on.
const DRIVER_C = `#define _GNU_SOURCE
#include <sched.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>

extern char **environ;

static long long now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1000000000LL + t.tv_nsec;
}

int main(int argc, char **argv)
{
	long warm, n, i;
	long long *ns;
	long *flt;

	if (argc < 4) {
		fputs("usage: spawnbench WARMUP N PROGRAM [ARGS...]\\n", stderr);
		return 2;
	}
	/*
	 * One CPU for the driver and every launch (children inherit it): a
	 * launch that migrates mid-way, or variants that run on different CPUs
	 * of a VM, made the medians of one run disagree by a fifth.
	 */
	{
		cpu_set_t one;
		int cpu = sched_getcpu();

		CPU_ZERO(&one);
		CPU_SET(cpu < 0 ? 0 : cpu, &one);
		if (sched_setaffinity(0, sizeof(one), &one) < 0)
			perror("spawnbench: sched_setaffinity");
	}
	warm = atol(argv[1]);
	n = atol(argv[2]);
	ns = calloc((size_t)n + 1, sizeof(*ns));
	flt = calloc((size_t)n + 1, sizeof(*flt));
	if (!ns || !flt)
		return 1;
	for (i = -warm; i < n; i++) {
		struct rusage ru;
		long long t0, t1;
		pid_t pid;
		int err, status;

		t0 = now();
		err = posix_spawn(&pid, argv[3], 0, 0, argv + 3, environ);
		if (err) {
			fprintf(stderr, "spawnbench: %s: %s\\n", argv[3], strerror(err));
			return 1;
		}
		if (wait4(pid, &status, 0, &ru) != pid) {
			perror("spawnbench: wait4");
			return 1;
		}
		t1 = now();
		if (!WIFEXITED(status) || WEXITSTATUS(status)) {
			fprintf(stderr, "spawnbench: %s: status 0x%x\\n", argv[3], (unsigned)status);
			return 1;
		}
		if (i >= 0) {
			ns[i] = t1 - t0;
			flt[i] = ru.ru_minflt;
		}
	}
	for (i = 0; i < n; i++)
		printf("%lld %ld\\n", ns[i], flt[i]);
	return 0;
}
`

// exec-only: the least any exec-based launcher can cost, one static execve.
const TRAMPOLINE_C = `#include <unistd.h>
int main(int argc, char **argv)
{
	if (argc < 2)
		return 127;
	execv(argv[1], argv + 1);
	return 127;
}
`

interface Run {
  readonly stdout: string
  readonly stderr: string
  readonly status: number | null
}

function run(file: string, args: readonly string[], env: NodeJS.ProcessEnv = ENV): Run {
  const r = spawnSync(file, args, { encoding: 'utf8', env, maxBuffer: 64 << 20 })
  if (r.error) throw new Error(`cannot run ${file}: ${r.error.message}`)
  return { stdout: r.stdout, stderr: r.stderr, status: r.status }
}

function must(file: string, args: readonly string[], env: NodeJS.ProcessEnv = ENV): Run {
  const r = run(file, args, env)
  if (r.status !== 0) throw new Error(`${[file, ...args].join(' ')}: exit status ${r.status}\n${r.stderr}`)
  return r
}

function shQuote(s: string): string {
  return /^[A-Za-z0-9_./:=+-]+$/.test(s) ? s : `'${s.replaceAll("'", `'\\''`)}'`
}

/** Quantile by linear interpolation between closest ranks; `sorted` ascending. */
function quantile(sorted: readonly number[], q: number): number {
  const pos = (sorted.length - 1) * q
  const lo = Math.floor(pos)
  const hi = Math.ceil(pos)
  return (sorted[lo] as number) + ((sorted[hi] as number) - (sorted[lo] as number)) * (pos - lo)
}

/** The shim's debug output, un-escaped: bytes outside 0x20..0x7e and `\` come as \xHH. */
function parseDebug(stderr: string): { mode: string; loader: string; libraryPath: string; exec: string; argv: string[] } {
  const fields = new Map<string, string>()
  const argv: string[] = []
  for (const line of stderr.split('\n')) {
    const m = /^([^:]+): ([^:]+): (.*)$/.exec(line)
    if (!m || m[1] !== NAME) continue
    const value = (m[3] as string).replace(/\\x([0-9a-f]{2})/g, (_, h: string) => String.fromCharCode(parseInt(h, 16)))
    const arg = /^argv\[(\d+)\]$/.exec(m[2] as string)
    if (arg) argv[Number(arg[1])] = value
    else fields.set(m[2] as string, value)
  }
  const get = (k: string): string => {
    const v = fields.get(k)
    if (v === undefined) throw new Error(`the shim's debug output has no "${k}" line:\n${stderr}`)
    return v
  }
  return { mode: get('mode'), loader: get('loader'), libraryPath: get('library-path'), exec: fields.get('chainload') ?? get('exec'), argv }
}

interface Variant {
  readonly id: string
  readonly label: string
  /** in the container, or on the host (reference rows) */
  readonly where: 'container' | 'host'
  readonly argv: readonly string[]
}

interface Row {
  readonly id: string
  readonly label: string
  readonly where: 'container' | 'host'
  readonly argv: readonly string[]
  readonly launches: number
  readonly medianUs: number
  readonly p90Us: number
  readonly minUs: number
  readonly ratioToFloor: number
  /** median minor page faults per launch (the child and everything it exec'd) */
  readonly faults: number
}

function firstLine(s: string): string {
  return s.split('\n', 1)[0] ?? ''
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      rounds: { type: 'string', default: '20' },
      'per-round': { type: 'string', default: '100' },
      warmup: { type: 'string', default: '5' },
      'no-arches': { type: 'boolean', default: false },
    },
  })
  const rounds = Number(values.rounds)
  const perRound = Number(values['per-round'])
  const warmup = Number(values.warmup)
  for (const [k, v] of [['rounds', rounds], ['per-round', perRound], ['warmup', warmup]] as const) {
    if (!Number.isInteger(v) || v < 0 || (k !== 'warmup' && v < 1)) throw new Error(`--${k}: not a count: ${String(v)}`)
  }
  if (process.arch !== 'x64') throw new Error(`the bench runs on x86_64 hosts only (this is ${process.arch})`)

  const date = new Date().toISOString()
  const command =
    process.env.npm_lifecycle_event === 'bench'
      ? `npm run bench${process.argv.length > 2 ? ` -- ${process.argv.slice(2).map(shQuote).join(' ')}` : ''}`
      : ['node', 'build/run-ts.mjs', 'test/bench.ts', ...process.argv.slice(2)].map(shQuote).join(' ')

  // Everything lives here; realpath so that the shim's TARGET has no symlink in it.
  // Removing it at the end is safe although the container bind-mounts parts of
  // it: bwrap's mounts live in the sandbox's private mount namespace and are
  // gone when bwrap exits; nothing is ever mounted below it in ours.
  const tmp = realpathSync(mkdtempSync(join(tmpdir(), 'hostshim-bench-')))
  const cleanup = () => rmSync(tmp, { recursive: true, force: true })
  // Interrupted: the running bwrap gets the terminal's SIGINT too; once the
  // synchronous spawn returns, remove the temp dir and exit as a shell would.
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(signal, () => {
      cleanup()
      process.exit(128 + constants.signals[signal])
    })
  }
  try {
    await bench(tmp, { rounds, perRound, warmup, arches: !values['no-arches'], date, command })
  } finally {
    cleanup()
  }
}

async function bench(
  tmp: string,
  opts: { rounds: number; perRound: number; warmup: number; arches: boolean; date: string; command: string },
): Promise<void> {
  const log = (s: string) => process.stderr.write(`bench: ${s}\n`)
  const zig = await loadZig()

  // The program: dynamic, libc only. The host sees it at tmp/..., the container at /run/host/tmp/...
  const target = join(tmp, 'hello')
  writeFileSync(`${target}.c`, PROGRAM_C)
  must('gcc', ['-O2', '-o', target, `${target}.c`], process.env)
  const targetInRoot = HOST_ROOT + target

  // The container's root: busybox, the driver, the shim, the script.
  const root = join(tmp, 'root')
  for (const d of ['bin', 'usr/bin', 'run/host', 'proc', 'dev', 'tmp']) mkdirSync(join(root, d), { recursive: true })
  copyFileSync('/bin/busybox', join(root, 'bin/busybox'))
  chmodSync(join(root, 'bin/busybox'), 0o755)
  symlinkSync('busybox', join(root, 'bin/sh'))
  writeFileSync(join(tmp, 'spawnbench.c'), DRIVER_C)
  writeFileSync(join(tmp, 'exec-only.c'), TRAMPOLINE_C)
  for (const [src, dest] of [['spawnbench.c', DRIVER_IN_ROOT], ['exec-only.c', TRAMPOLINE_IN_ROOT]] as const) {
    must(zig.path, ['cc', '-target', 'x86_64-linux-musl', '-static', '-O2', '-s', '-o', join(root, dest), join(tmp, src)], process.env)
  }
  const driverOnHost = join(root, DRIVER_IN_ROOT)

  // generate: first (compiles), then the same config again (must be cached).
  const cacheDir = join(tmp, 'cache')
  const config = validateConfig({ name: NAME, target, arch: ['x86_64'], mode: 'exec', outDir: join(tmp, 'out') })
  log('generating the shim (zig)...')
  let t0 = performance.now()
  const [first] = await generate(config, { toolchain: zig, cacheDir })
  const firstGenerateMs = performance.now() - t0
  if (!first) throw new Error('generate built nothing')
  const cachedMs: number[] = []
  let allCached = true
  for (let i = 0; i < 5; i++) {
    t0 = performance.now()
    const again = await generate(config, { toolchain: zig, cacheDir })
    cachedMs.push(performance.now() - t0)
    allCached &&= again.every((b) => b.cached)
  }
  const cachedGenerateMs = quantile([...cachedMs].sort((x, y) => x - y), 0.5)
  copyFileSync(first.path, join(root, SHIM_IN_ROOT))
  chmodSync(join(root, SHIM_IN_ROOT), 0o755)

  // The chainload shim: the same config in chainload mode, its own outDir.
  log('generating the chainload shim (zig)...')
  const [chained] = await generate({ ...config, mode: 'chainload', outDir: join(tmp, 'out-chainload') }, { toolchain: zig, cacheDir })
  if (!chained) throw new Error('generate built no chainload shim')
  if (chained.mode !== 'chainload') {
    throw new Error(`the chainload shim was built in ${chained.mode} mode${chained.note ? `: ${chained.note}` : ''}`)
  }
  if (chained.sha256 === first.sha256) throw new Error('the chainload shim is byte-identical to the exec shim')
  copyFileSync(chained.path, join(root, CHAINLOAD_IN_ROOT))
  chmodSync(join(root, CHAINLOAD_IN_ROOT), 0o755)

  // Every architecture's shim, for its size (each may fail, and that is
  // reported). A fixed config and a cache that outlives the run, so that only
  // a changed template costs zig time on the next run.
  // Both modes: "ARCH" is the exec shim, "ARCH chainload" the chainload one.
  const sizes: Record<string, number | string> = {}
  if (opts.arches) {
    const sizeConfig = validateConfig({ name: 'toolbox', target: '/usr/libexec/toolbox/toolbox', arch: ['x86_64'], outDir: join(tmp, 'sizes') })
    const sizeCache = join(PROJECT, 'node_modules', '.cache', 'hostshim-bench')
    for (const arch of ARCH_NAMES) {
      for (const mode of SHIM_MODES) {
        const key = mode === 'exec' ? arch : `${arch} chainload`
        log(`generating the ${arch} ${mode} shim for its size...`)
        try {
          const [b] = await generate({ ...sizeConfig, arch: [arch], mode }, { toolchain: zig, cacheDir: sizeCache })
          sizes[key] = b ? b.bytes : 'nothing built'
        } catch (error) {
          // The first line says what failed, the first "error:" line of zig's output why.
          const text = error instanceof Error ? error.message : String(error)
          const why = text.split('\n').find((l) => /error:/.test(l))
          sizes[key] = `failed: ${firstLine(text)}${why ? `: ${why.trim()}` : ''}`
        }
      }
    }
  }

  const bwrap = ['--bind', root, '/', '--ro-bind', '/', HOST_ROOT, '--proc', '/proc', '--dev', '/dev', '--']
  const inContainer = (argv: readonly string[], env: NodeJS.ProcessEnv = ENV): Run => run('bwrap', [...bwrap, ...argv], env)

  // What the shim execs, from its own debug output.
  const dbg = inContainer([SHIM_IN_ROOT], { ...ENV, HOSTSHIM_DEBUG: '1' })
  if (dbg.status !== 0) throw new Error(`the shim failed in the container (status ${dbg.status}):\n${dbg.stderr}`)
  const plan = parseDebug(dbg.stderr)
  if (plan.mode !== 'container') throw new Error(`the shim is in ${plan.mode} mode in the container:\n${dbg.stderr}`)
  if (plan.exec !== plan.loader || plan.argv[0] !== plan.loader) throw new Error(`the shim does not exec the host loader:\n${dbg.stderr}`)
  const LP = plan.libraryPath
  const i = plan.argv.indexOf('--library-path')
  if (i < 0 || plan.argv[i - 1] !== '--inhibit-cache' || plan.argv[i + 1] !== LP || plan.argv.at(-1) !== targetInRoot) {
    throw new Error(`unexpected loader arguments from the shim:\n${dbg.stderr}`)
  }
  const argv0 = plan.argv.includes('--argv0')
  const hostLoader = plan.loader.slice(HOST_ROOT.length)

  // The chainload shim must plan the same launch (only --argv0's value, its
  // own argv[0], differs); it then maps that loader instead of exec'ing it.
  const dbgD = inContainer([CHAINLOAD_IN_ROOT], { ...ENV, HOSTSHIM_DEBUG: '1' })
  if (dbgD.status !== 0) throw new Error(`the chainload shim failed in the container (status ${dbgD.status}):\n${dbgD.stderr}`)
  const planD = parseDebug(dbgD.stderr)
  const sameAsExec = (a: string, k: number) => a === plan.argv[k] || (argv0 && plan.argv[k - 1] === '--argv0' && a === CHAINLOAD_IN_ROOT)
  if (
    planD.mode !== plan.mode ||
    planD.loader !== plan.loader ||
    planD.libraryPath !== LP ||
    planD.exec !== plan.exec ||
    planD.argv.length !== plan.argv.length ||
    !planD.argv.every(sameAsExec)
  ) {
    throw new Error(`the chainload shim plans another launch than the exec shim:\n${dbgD.stderr}\nexec shim:\n${dbg.stderr}`)
  }

  // The script execs the loader the shim found, already resolved: the usual
  // /run/host/lib64/ld-linux-x86-64.so.2 is, on Debian, an absolute symlink
  // that the kernel would follow into the container's own /lib.
  writeFileSync(
    join(root, SCRIPT_IN_ROOT),
    `#!/bin/sh\nLP=${shQuote(LP)}\nexec ${shQuote(plan.loader)}${argv0 ? ' --argv0 "$0"' : ''} --inhibit-cache --library-path "$LP" ${shQuote(targetInRoot)} "$@"\n`,
    { mode: 0o755 },
  )

  const variants: Variant[] = [
    { id: 'a', label: '(a) host loader, shim\'s argv', where: 'container', argv: plan.argv },
    { id: 'b', label: '(b) shim', where: 'container', argv: [SHIM_IN_ROOT] },
    { id: 'c', label: '(c) sh script', where: 'container', argv: [SCRIPT_IN_ROOT] },
    { id: 'd', label: '(d) shim, chainload', where: 'container', argv: [CHAINLOAD_IN_ROOT] },
    { id: 'exec-only', label: 'static exec-only, then (a)', where: 'container', argv: [TRAMPOLINE_IN_ROOT, ...plan.argv] },
    { id: 'host-loader', label: 'host: loader, no options', where: 'host', argv: [hostLoader, target] },
    { id: 'host-direct', label: 'host: program exec\'d', where: 'host', argv: [target] },
  ]

  // Each variant must really run the program, with its arguments.
  for (const v of variants) {
    const r = v.where === 'container' ? inContainer([...v.argv, 'ping']) : run(v.argv[0] as string, [...v.argv.slice(1), 'ping'])
    if (r.status !== 0 || r.stdout !== 'ping\n') {
      throw new Error(`${v.label} does not run the program (status ${r.status}, stdout ${JSON.stringify(r.stdout)}):\n${r.stderr}`)
    }
  }

  log(`measuring: ${opts.rounds} rounds x ${variants.length} variants x ${opts.perRound} launches (+${opts.warmup} warm-up each)...`)
  const loadBefore = loadavg()[0] as number
  const samples = new Map<string, number[]>(variants.map((v) => [v.id, []]))
  const faults = new Map<string, number[]>(variants.map((v) => [v.id, []]))
  for (let r = 0; r < opts.rounds; r++) {
    for (let k = 0; k < variants.length; k++) {
      const v = variants[(r + k) % variants.length] as Variant
      // Let a pending SIGINT/SIGTERM handler run between blocks.
      await new Promise((resolve) => setImmediate(resolve))
      const args = [String(opts.warmup), String(opts.perRound), ...v.argv]
      const out = v.where === 'container' ? inContainer([DRIVER_IN_ROOT, ...args]) : run(driverOnHost, args)
      if (out.status !== 0) throw new Error(`${v.label}: the driver failed (status ${out.status}):\n${out.stderr}`)
      const lines = out.stdout.trim().split('\n').map((l) => l.split(' ').map(Number))
      if (lines.length !== opts.perRound || lines.some((l) => l.length !== 2 || !((l[0] as number) > 0) || !((l[1] as number) >= 0))) {
        throw new Error(`${v.label}: bad driver output`)
      }
      ;(samples.get(v.id) as number[]).push(...lines.map((l) => l[0] as number))
      ;(faults.get(v.id) as number[]).push(...lines.map((l) => l[1] as number))
    }
  }

  const stats = variants.map((v) => {
    const sorted = (samples.get(v.id) as number[]).sort((x, y) => x - y)
    const flt = quantile((faults.get(v.id) as number[]).sort((x, y) => x - y), 0.5)
    return { v, n: sorted.length, median: quantile(sorted, 0.5) / 1000, p90: quantile(sorted, 0.9) / 1000, min: (sorted[0] as number) / 1000, flt }
  })
  const floor = stats[0]?.median as number
  const rows: Row[] = stats.map(({ v, n, median, p90, min, flt }) => ({
    id: v.id,
    label: v.label,
    where: v.where,
    argv: v.argv,
    launches: n,
    medianUs: round(median, 1),
    p90Us: round(p90, 1),
    minUs: round(min, 1),
    ratioToFloor: round(median / floor, 3),
    faults: flt,
  }))

  const load = { before: round(loadBefore, 2), after: round(loadavg()[0] as number, 2) }
  const glibc = firstLine(run(hostLoader, ['--version']).stdout)
  const cpu = cpus()[0]?.model ?? 'unknown'
  const bwrapVersion = firstLine(run('bwrap', ['--version']).stdout)
  const ratioOf = (id: string): number => {
    const row = rows.find((r) => r.id === id)
    if (!row) throw new Error(`no row ${id}`)
    return row.ratioToFloor
  }
  const ratioB = ratioOf('b')
  const ratioD = ratioOf('d')
  /** The rows that have a target, as a ratio to (a). */
  const ratioTargets: Record<string, number> = { b: TARGETS.containerRatio, d: TARGETS.chainloadRatio }

  // The report.
  const out: string[] = []
  const pad = (s: string, n: number) => s.padEnd(n)
  const num = (x: number, n: number, d = 1) => x.toFixed(d).padStart(n)
  out.push(`hostshim bench, ${opts.date}`)
  out.push(`command: ${opts.command}`)
  out.push(`machine: ${cpu} x ${cpus().length}, Linux ${release()}, ${glibc}, node ${process.version}, zig ${zig.version}, ${bwrapVersion}`)
  out.push(`container: bwrap ${bwrap.map(shQuote).join(' ')} ${DRIVER_IN_ROOT} ${opts.warmup} ${opts.perRound} ARGV...`)
  out.push(`  (ROOT = busybox, ${DRIVER_IN_ROOT}, ${TRAMPOLINE_IN_ROOT}, ${SHIM_IN_ROOT}, ${CHAINLOAD_IN_ROOT}, ${SCRIPT_IN_ROOT}; host rows run ${DRIVER_IN_ROOT} outside the container)`)
  out.push(`program: ${target} (gcc -O2, dynamic, libc only), ${targetInRoot} in the container`)
  out.push(`library path (${LP.split(':').length} entries): ${LP}`)
  out.push(`launches: ${opts.rounds} rounds x ${opts.perRound}, variants rotated each round, ${opts.warmup} warm-up launches per block`)
  out.push(`load average (1 min): ${load.before} before, ${load.after} after the launches (on ${cpus().length} CPUs; a busy machine widens p90)`)
  out.push('')
  out.push(`${pad('variant', 32)} ${'median µs'.padStart(10)} ${'p90 µs'.padStart(9)} ${'min µs'.padStart(9)} ${'x (a)'.padStart(7)} ${'faults'.padStart(7)}`)
  for (const r of rows) {
    const target = ratioTargets[r.id]
    const note = target === undefined ? '' : `   target <= ${target.toFixed(2)}x${r.ratioToFloor > target ? ' (OVER)' : ''}`
    out.push(`${pad(r.label, 32)} ${num(r.medianUs, 10)} ${num(r.p90Us, 9)} ${num(r.minUs, 9)} ${num(r.ratioToFloor, 7, 3)} ${num(r.faults, 7, 0)}${note}`)
  }
  out.push('')
  for (const r of rows) out.push(`  ${r.id}: ${r.where === 'container' ? '[container] ' : '[host] '}${r.argv.map(shQuote).join(' ')}`)
  out.push('')
  const kib = (b: number) => `${b} bytes (${(b / 1024).toFixed(1)} KiB)`
  const sizeTarget = (b: number) => `   target <= ${TARGETS.shimBytes} bytes (16 KiB)${b > TARGETS.shimBytes ? ' (OVER)' : ''}`
  out.push(`shim size, x86_64: ${kib(first.bytes)}${sizeTarget(first.bytes)}`)
  out.push(`chainload shim size, x86_64: ${kib(chained.bytes)}${sizeTarget(chained.bytes)}`)
  if (opts.arches) out.push('shim sizes by architecture (name toolbox, target /usr/libexec/toolbox/toolbox):')
  for (const [arch, size] of Object.entries(sizes)) {
    out.push(`  ${pad(arch, 18)} ${typeof size === 'number' ? `${kib(size)}${size > TARGETS.shimBytes ? ' (OVER)' : ''}` : size}`)
  }
  out.push(
    `generate: first ${firstGenerateMs.toFixed(0)} ms (zig), cached ${cachedGenerateMs.toFixed(1)} ms (median of ${cachedMs.length}${allCached ? '' : '; NOT ALL FROM THE CACHE'})   target: well under ${TARGETS.cachedGenerateMs} ms`,
  )
  process.stdout.write(`${out.join('\n')}\n`)

  const json = {
    date: opts.date,
    command: opts.command,
    machine: { cpu, cpus: cpus().length, kernel: release(), glibc, node: process.version, zig: zig.version, bwrap: bwrapVersion, loadAverage: load },
    method: {
      container: ['bwrap', ...bwrap],
      driver: 'static musl spawnbench, pinned to one CPU: posix_spawn + wait4, CLOCK_MONOTONIC around each launch; faults = ru_minflt',
      rounds: opts.rounds,
      perRound: opts.perRound,
      warmupPerBlock: opts.warmup,
      program: 'gcc -O2, dynamic, libc only; main returns 0',
    },
    libraryPath: LP,
    launches: rows,
    shim: {
      bytes: first.bytes,
      sha256: first.sha256,
      chainloadBytes: chained.bytes,
      chainloadSha256: chained.sha256,
      byArch: { config: { name: 'toolbox', target: '/usr/libexec/toolbox/toolbox' }, bytes: sizes },
    },
    generate: { firstMs: round(firstGenerateMs, 1), cachedMs: round(cachedGenerateMs, 2), cachedRuns: cachedMs.map((x) => round(x, 2)), allCached },
    targets: {
      shimBytes: { target: TARGETS.shimBytes, value: first.bytes },
      containerRatio: { target: TARGETS.containerRatio, value: ratioB },
      chainloadRatio: { target: TARGETS.chainloadRatio, value: ratioD },
      cachedGenerateMs: { target: `well under ${TARGETS.cachedGenerateMs}`, value: round(cachedGenerateMs, 2) },
    },
  }
  const jsonPath = join(PROJECT, 'out', 'bench.json')
  mkdirSync(join(PROJECT, 'out'), { recursive: true })
  writeFileSync(jsonPath, `${JSON.stringify(json, null, 2)}\n`)
  process.stdout.write(`\nwritten: ${jsonPath}\n`)
}

function round(x: number, digits: number): number {
  const f = 10 ** digits
  return Math.round(x * f) / f
}

main().catch((error: unknown) => {
  process.stderr.write(`bench: ${error instanceof Error ? error.message : String(error)}\n`)
  process.exitCode = 1
})
