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
// "syscalls" counts the system calls of one launch, from the execve of its
// first program to its exit, under strace -f outside the container: the
// floor's own are in every row, so a row's excess over (a) is what it adds.
// "pages resident" says where (d)'s extra faults are: the program prints its
// own /proc/self/smaps, in which the chainload shim is still mapped.
//
//   (a) the host loader run directly with the shim's exact argv: the floor
//   (b) the shim, in container mode, three ways: "hit" finds its kept plan
//   (shim/README.md, section 10) and only checks it; "miss" finds none
//   (the driver removes the file before each launch, untimed), computes the
//   plan and writes it; "no cache" has no XDG_RUNTIME_DIR, so it computes
//   and writes nothing (every launch before the plan cache)
//   (c) a #!/bin/sh script (busybox) doing the same exec
//   (d) the shim built with mode: 'chainload' (same config otherwise): it maps
//   the host loader into its own process instead of exec'ing it, so it should
//   cost about what (a) costs; hit, miss and no cache as for (b)
//   (d) plan built in: the chainload shim with its plan written into it
//   (renderBakedShim(), for the bench only): no plan file, no witness
//   checked, the least this design can cost, what a hit should come close to
//   exec-only: a static program that only execs (a): the least any exec-based
//   launcher can cost, so (b) minus this is the shim's own work
//   host rows, for reference: the plain loader call (ld.so.cache, no options)
//   and the program exec'd directly. Neither can run in the container: it has
//   no libc in its default directories, which is the point of the shim.
//
// Options: --rounds N (20), --per-round N (100), --warmup N (5),
// --no-arches (do not build every architecture's shim for its size).

import { spawnSync } from 'node:child_process'
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { constants, cpus, loadavg, release, tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { ARCHES, ARCH_NAMES } from '../launcher/arch.js'
import { SHIM_MODES, shimConfigOf, validateConfig } from '../launcher/config.js'
import { generate, verifyShim } from '../launcher/generate.js'
import { compileShim, loadZig } from '../launcher/toolchain.js'
import { renderBakedShim } from '../shim/template.js'

const PROJECT = fileURLToPath(new URL('..', import.meta.url))
const NAME = 'hello'
const HOST_ROOT = '/run/host'
const SHIM_IN_ROOT = '/usr/bin/hello'
const CHAINLOAD_IN_ROOT = '/usr/bin/hello-chainload'
const BAKED_IN_ROOT = '/usr/bin/hello-baked'
const SCRIPT_IN_ROOT = '/usr/bin/hello.sh'
const DRIVER_IN_ROOT = '/bin/spawnbench'
const TRAMPOLINE_IN_ROOT = '/bin/exec-only'
/** The environment of every measured launch: small, and without HOSTSHIM_DEBUG. */
const ENV = { PATH: '/usr/bin:/bin' }

const TARGETS = {
  shimBytes: 16 * 1024,
  /** (d) on a plan cache hit, x (a) */
  chainloadRatio: 1.05,
  /** (d) on a hit: minor faults above (a)'s */
  hitExtraFaults: 3,
  /** (b) on a hit, x the static exec-only row: no exec launcher beats one execve */
  execHitRatio: 1.05,
  /** a miss that writes the plan, x the same shim without a cache */
  missRatio: 1.1,
  cachedGenerateMs: 1000,
}

/** Launches of each row whose resident pages are counted (their median). */
const SMAPS_LAUNCHES = 9
/** The rows whose resident pages are compared, (a) first, with their column heads. */
const RESIDENT_ROWS = [
  { id: 'a', head: '(a)' },
  { id: 'd-hit', head: 'hit' },
  { id: 'd-baked', head: 'built in' },
] as const

// With --smaps it prints its own /proc/self/smaps instead: which pages the
// launch left resident, and in which mapping (the bench's fault breakdown).
const PROGRAM_C = `#include <stdio.h>
#include <string.h>
int main(int argc, char **argv)
{
	if (argc > 1 && !strcmp(argv[1], "--smaps")) {
		char buf[4096];
		size_t n;
		FILE *f = fopen("/proc/self/smaps", "r");

		if (!f)
			return 1;
		while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
			fwrite(buf, 1, n, stdout);
		return 0;
	}
	if (argc > 1)
		puts(argv[1]);
	return 0;
}
`

// spawnbench [-u FILE] WARMUP N PROGRAM [ARGS...]: N launches, one line each:
// "NS MINFLT" (wall time in ns, minor page faults of the child and everything
// it exec'd), all on the CPU the driver started on. -u: FILE is removed
// before each launch, outside the timed part (a plan cache miss every time).
// PROGRAM's exit status must be 0, and with -u FILE must be there again
// after it (the launch wrote it).
const DRIVER_C = `#define _GNU_SOURCE
#include <sched.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

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
	const char *unlink_me = 0;

	if (argc > 2 && !strcmp(argv[1], "-u")) {
		unlink_me = argv[2];
		argv += 2;
		argc -= 2;
	}
	if (argc < 4) {
		fputs("usage: spawnbench [-u FILE] WARMUP N PROGRAM [ARGS...]\\n", stderr);
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

		if (unlink_me && unlink(unlink_me) < 0) {
			perror(unlink_me);
			return 1;
		}
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
  /** the launch's environment: ENV unless a plan cache is wanted (XDG_RUNTIME_DIR) */
  readonly env?: NodeJS.ProcessEnv
  /** a plan cache miss on every launch: this file (as the container sees it) is removed before each */
  readonly unlink?: string
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
  /** system calls of one launch, execve to exit (strace -f) */
  readonly syscalls: number
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
  const chainConfig = { ...config, mode: 'chainload' as const }

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

  // The chainload shim with the plan it computed written into it: the limit of this design.
  log('compiling the chainload shim with its plan built in (zig)...')
  const chainArch = ARCHES.x86_64
  const bakedSource = renderBakedShim(shimConfigOf(chainConfig), chainArch, {
    target: targetInRoot,
    loader: planD.loader,
    libraryPath: planD.libraryPath,
    argv0,
  })
  const baked = await compileShim(zig, chainArch, bakedSource, cacheDir, undefined, 'chainload')
  verifyShim(baked.binary, chainArch)
  writeFileSync(join(root, BAKED_IN_ROOT), baked.binary, { mode: 0o755 })

  // The plan caches: one runtime directory per shim and way, private (0700) as the shim wants it.
  const runtimeDir = (name: string): { env: NodeJS.ProcessEnv; inRoot: string } => {
    mkdirSync(join(root, name), { mode: 0o700 })
    chmodSync(join(root, name), 0o700)
    return { env: { ...ENV, XDG_RUNTIME_DIR: `/${name}` }, inRoot: `/${name}` }
  }
  /** Launch until the shim has kept its plan (it keeps none while a witness is under 2 s old); the file's path in the container. */
  const keptPlan = (shim: string, dir: { env: NodeJS.ProcessEnv; inRoot: string }): string => {
    const onHost = join(root, dir.inRoot, 'hostshim')
    for (let tries = 0; tries < 50; tries++) {
      must('bwrap', [...bwrap, shim], dir.env)
      const files = (() => {
        try {
          return readdirSync(onHost).filter((f) => f.startsWith('plan-'))
        } catch {
          return []
        }
      })()
      if (files.length === 1) {
        const debug = inContainer([shim], { ...dir.env, HOSTSHIM_DEBUG: '1' })
        if (!debug.stderr.includes(`${NAME}: plan: cached\n`)) throw new Error(`${shim} kept a plan but does not use it:\n${debug.stderr}`)
        return `${dir.inRoot}/hostshim/${files[0] as string}`
      }
      if (files.length > 1) throw new Error(`${shim}: more than one plan file in ${onHost}: ${files.join(', ')}`)
      spawnSync('sleep', ['0.2'])
    }
    throw new Error(`${shim} kept no plan in ${onHost} (XDG_RUNTIME_DIR=${dir.inRoot})`)
  }
  const hitB = runtimeDir('xdg-b-hit')
  const missB = runtimeDir('xdg-b-miss')
  const hitD = runtimeDir('xdg-d-hit')
  const missD = runtimeDir('xdg-d-miss')
  keptPlan(SHIM_IN_ROOT, hitB)
  const missBFile = keptPlan(SHIM_IN_ROOT, missB)
  keptPlan(CHAINLOAD_IN_ROOT, hitD)
  const missDFile = keptPlan(CHAINLOAD_IN_ROOT, missD)

  const variants: Variant[] = [
    { id: 'a', label: '(a) host loader, shim\'s argv', where: 'container', argv: plan.argv },
    { id: 'b-hit', label: '(b) shim, plan kept (hit)', where: 'container', argv: [SHIM_IN_ROOT], env: hitB.env },
    { id: 'b-miss', label: '(b) shim, miss + write', where: 'container', argv: [SHIM_IN_ROOT], env: missB.env, unlink: missBFile },
    { id: 'b', label: '(b) shim, no cache', where: 'container', argv: [SHIM_IN_ROOT] },
    { id: 'c', label: '(c) sh script', where: 'container', argv: [SCRIPT_IN_ROOT] },
    { id: 'd-hit', label: '(d) chainload, hit', where: 'container', argv: [CHAINLOAD_IN_ROOT], env: hitD.env },
    { id: 'd-miss', label: '(d) chainload, miss + write', where: 'container', argv: [CHAINLOAD_IN_ROOT], env: missD.env, unlink: missDFile },
    { id: 'd', label: '(d) chainload, no cache', where: 'container', argv: [CHAINLOAD_IN_ROOT] },
    { id: 'd-baked', label: '(d) chainload, plan built in', where: 'container', argv: [BAKED_IN_ROOT] },
    { id: 'exec-only', label: 'static exec-only, then (a)', where: 'container', argv: [TRAMPOLINE_IN_ROOT, ...plan.argv] },
    { id: 'host-loader', label: 'host: loader, no options', where: 'host', argv: [hostLoader, target] },
    { id: 'host-direct', label: 'host: program exec\'d', where: 'host', argv: [target] },
  ]

  // Each variant must really run the program, with its arguments; a miss must find no plan and keep one.
  for (const v of variants) {
    if (v.unlink) rmSync(join(root, v.unlink))
    const r = v.where === 'container' ? inContainer([...v.argv, 'ping'], v.env) : run(v.argv[0] as string, [...v.argv.slice(1), 'ping'])
    if (r.status !== 0 || r.stdout !== 'ping\n') {
      throw new Error(`${v.label} does not run the program (status ${r.status}, stdout ${JSON.stringify(r.stdout)}):\n${r.stderr}`)
    }
    if (v.unlink) readFileSync(join(root, v.unlink))
  }

  // System calls of one launch of each: strace -f of the container (or of the host row), from the
  // execve of the variant's first program to its exit. A miss starts without its file.
  log('counting system calls (strace)...')
  const syscalls = new Map<string, number>()
  for (const v of variants) {
    if (v.unlink) rmSync(join(root, v.unlink))
    const trace = join(tmp, 'strace.log')
    const argv = v.where === 'container' ? ['bwrap', ...bwrap, ...v.argv] : v.argv
    must('strace', ['-f', '-qq', '-o', trace, ...argv], v.env ?? ENV)
    syscalls.set(v.id, countSyscalls(readFileSync(trace, 'latin1'), v.argv[0] as string))
  }

  // Where (d)'s extra faults are: the pages each mapping has resident once the
  // program runs, for (a) and the chainload rows (the shim stays mapped).
  const resident = new Map<string, Map<string, number>>()
  for (const { id } of RESIDENT_ROWS) {
    const v = variants.find((x) => x.id === id) as Variant
    const launches: Map<string, number>[] = []
    for (let k = 0; k < SMAPS_LAUNCHES; k++) {
      const r = inContainer([...v.argv, '--smaps'], v.env)
      if (r.status !== 0) throw new Error(`${v.label} --smaps: status ${r.status}:\n${r.stderr}`)
      launches.push(residentPages(r.stdout))
    }
    // Per mapping, the median over the launches: where the stack starts in its page varies.
    const names = new Set(launches.flatMap((m) => [...m.keys()]))
    resident.set(id, new Map([...names].map((n) => [n, quantile(launches.map((m) => m.get(n) ?? 0).sort((x, y) => x - y), 0.5)])))
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
      const args = [...(v.unlink ? ['-u', v.unlink] : []), String(opts.warmup), String(opts.perRound), ...v.argv]
      const out = v.where === 'container' ? inContainer([DRIVER_IN_ROOT, ...args], v.env) : run(driverOnHost, args)
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
    syscalls: syscalls.get(v.id) as number,
  }))

  const load = { before: round(loadBefore, 2), after: round(loadavg()[0] as number, 2) }
  const glibc = firstLine(run(hostLoader, ['--version']).stdout)
  const cpu = cpus()[0]?.model ?? 'unknown'
  const bwrapVersion = firstLine(run('bwrap', ['--version']).stdout)
  const rowOf = (id: string): Row => {
    const row = rows.find((r) => r.id === id)
    if (!row) throw new Error(`no row ${id}`)
    return row
  }
  // The targets (issue "launch cost near the limit"), each a comparison within this run.
  const a = rowOf('a')
  const [bHit, bMiss, bOff, dHit, dMiss, dOff] = [rowOf('b-hit'), rowOf('b-miss'), rowOf('b'), rowOf('d-hit'), rowOf('d-miss'), rowOf('d')]
  const [dBaked, execOnly] = [rowOf('d-baked'), rowOf('exec-only')]
  const ratio = (x: Row, y: Row) => round(x.medianUs / y.medianUs, 3)
  const targets = [
    { what: '(d) chainload, hit / (a)', value: ratio(dHit, a), limit: TARGETS.chainloadRatio },
    { what: '(d) chainload, hit: faults - (a)\'s', value: dHit.faults - a.faults, limit: TARGETS.hitExtraFaults },
    { what: '(d) chainload, hit / plan built in', value: ratio(dHit, dBaked), limit: null },
    { what: '(b) shim, hit / static exec-only', value: ratio(bHit, execOnly), limit: TARGETS.execHitRatio },
    { what: '(b) shim, miss + write / no cache', value: ratio(bMiss, bOff), limit: TARGETS.missRatio },
    { what: '(d) chainload, miss + write / no cache', value: ratio(dMiss, dOff), limit: TARGETS.missRatio },
  ]

  // The report.
  const out: string[] = []
  const pad = (s: string, n: number) => s.padEnd(n)
  const num = (x: number, n: number, d = 1) => x.toFixed(d).padStart(n)
  out.push(`hostshim bench, ${opts.date}`)
  out.push(`command: ${opts.command}`)
  out.push(`machine: ${cpu} x ${cpus().length}, Linux ${release()}, ${glibc}, node ${process.version}, zig ${zig.version}, ${bwrapVersion}`)
  out.push(`container: bwrap ${bwrap.map(shQuote).join(' ')} ${DRIVER_IN_ROOT} ${opts.warmup} ${opts.perRound} ARGV...`)
  out.push(`  (ROOT = busybox, ${DRIVER_IN_ROOT}, ${TRAMPOLINE_IN_ROOT}, ${SHIM_IN_ROOT}, ${CHAINLOAD_IN_ROOT}, ${BAKED_IN_ROOT}, ${SCRIPT_IN_ROOT}, private XDG_RUNTIME_DIRs; host rows run ${DRIVER_IN_ROOT} outside the container)`)
  out.push(`program: ${target} (gcc -O2, dynamic, libc only), ${targetInRoot} in the container`)
  out.push(`library path (${LP.split(':').length} entries): ${LP}`)
  out.push(`launches: ${opts.rounds} rounds x ${opts.perRound}, variants rotated each round, ${opts.warmup} warm-up launches per block`)
  out.push(`load average (1 min): ${load.before} before, ${load.after} after the launches (on ${cpus().length} CPUs; a busy machine widens p90)`)
  out.push('')
  out.push(
    `${pad('variant', 32)} ${'median µs'.padStart(10)} ${'p90 µs'.padStart(9)} ${'min µs'.padStart(9)} ${'x (a)'.padStart(7)} ${'faults'.padStart(7)} ${'syscalls'.padStart(9)}`,
  )
  for (const r of rows) {
    out.push(
      `${pad(r.label, 32)} ${num(r.medianUs, 10)} ${num(r.p90Us, 9)} ${num(r.minUs, 9)} ${num(r.ratioToFloor, 7, 3)} ${num(r.faults, 7, 0)} ${num(r.syscalls, 9, 0)}`,
    )
  }
  out.push('')
  out.push('targets (medians of this run):')
  for (const t of targets) {
    const value = Number.isInteger(t.value) ? String(t.value) : t.value.toFixed(3)
    const over = t.limit !== null && t.value > t.limit
    out.push(`  ${pad(t.what, 40)} ${value.padStart(7)}${t.limit === null ? '' : `   target <= ${t.limit}${over ? ' (OVER)' : ''}`}`)
  }
  out.push('')
  out.push(`pages resident once the program runs, where they differ from (a) (/proc/self/smaps, median of ${SMAPS_LAUNCHES} launches;`)
  out.push('  a private or anonymous page is one fault, a file\'s read-only pages come several per fault (fault-around),')
  out.push('  so host files\' read-only pages are left out: their count follows the page cache):')
  const widths = RESIDENT_ROWS.map((r) => Math.max(5, r.head.length))
  out.push(`  ${[pad('mapping', 48), ...RESIDENT_ROWS.map((r, k) => r.head.padStart(widths[k] as number))].join(' ')}`)
  for (const line of residentDiff(resident, widths)) out.push(`  ${line}`)
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
    residentPages: Object.fromEntries([...resident].map(([id, m]) => [id, Object.fromEntries(m)])),
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
      launches: targets,
      cachedGenerateMs: { target: `well under ${TARGETS.cachedGenerateMs}`, value: round(cachedGenerateMs, 2) },
    },
  }
  const jsonPath = join(PROJECT, 'out', 'bench.json')
  mkdirSync(join(PROJECT, 'out'), { recursive: true })
  writeFileSync(jsonPath, `${JSON.stringify(json, null, 2)}\n`)
  process.stdout.write(`\nwritten: ${jsonPath}\n`)
}

/**
 * Resident pages by mapping, from smaps text: "PATH PERMS" for a file,
 * "[stack] rw-p" and the like, and an anonymous mapping named after the
 * mapping before it ("+ PATH rw-p": a program's or the shim's bss). Both
 * chainload shims are "(shim)", so that their rows line up.
 */
function residentPages(smaps: string): Map<string, number> {
  const pages = new Map<string, number>()
  let name = ''
  let previous = ''
  for (const line of smaps.split('\n')) {
    const head = /^[0-9a-f]+-[0-9a-f]+ (\S+) \S+ \S+ \S+\s*(.*)$/.exec(line)
    if (head) {
      const [, perms, file] = head as unknown as [string, string, string]
      const path = file === CHAINLOAD_IN_ROOT || file === BAKED_IN_ROOT ? '(shim)' : file
      name = path ? `${path} ${perms}` : `+ ${previous} ${perms}`
      if (path) previous = path
      continue
    }
    const rss = /^Rss:\s+(\d+) kB/.exec(line)
    if (rss && name) pages.set(name, (pages.get(name) ?? 0) + Number(rss[1]) / 4)
  }
  if (pages.size === 0) throw new Error(`no mappings in the program's smaps:\n${smaps.slice(0, 400)}`)
  return pages
}

/**
 * One line per mapping whose resident pages differ between the rows of
 * `resident` (in its order: (a), then the chainload rows), a host file's
 * read-only ones aside; each row's column as wide as `widths` says.
 */
function residentDiff(resident: Map<string, Map<string, number>>, widths: readonly number[]): string[] {
  const maps = [...resident.values()]
  const names = [...new Set(maps.flatMap((m) => [...m.keys()]))]
  const lines: string[] = []
  for (const name of names) {
    const counts = maps.map((m) => m.get(name) ?? 0)
    if (counts.every((c) => c === counts[0])) continue
    // A host library's read-only pages: how many fault-around maps depends on the page cache, not the launch.
    if (!name.startsWith('(shim)') && / r-.p$/.test(name)) continue
    lines.push([name.padEnd(48), ...maps.map((m, k) => String(m.get(name) ?? '-').padStart(widths[k] as number))].join(' '))
  }
  return lines
}

/**
 * The system calls of one launch in an strace -f log: those of the process
 * that execve'd `program` (successfully), from that execve to its exit,
 * each once (a call that strace shows "unfinished" and "resumed" is one).
 */
function countSyscalls(log: string, program: string): number {
  const lines = log.split('\n')
  const start = lines.findIndex((l) => l.includes(` execve(${JSON.stringify(program)},`) && !/ = -1 /.test(l))
  if (start < 0) throw new Error(`strace saw no execve of ${program}`)
  const pid = (lines[start] as string).split(' ', 1)[0]
  let n = 0
  for (const line of lines.slice(start)) {
    if (!line.startsWith(`${pid} `) || line.includes(' resumed>') || / (\+\+\+|---) /.test(line)) continue
    n++
  }
  return n
}

function round(x: number, digits: number): number {
  const f = 10 ** digits
  return Math.round(x * f) / f
}

main().catch((error: unknown) => {
  process.stderr.write(`bench: ${error instanceof Error ? error.message : String(error)}\n`)
  process.exitCode = 1
})
