// Real containers for the integration tests, made with bubblewrap.
//
// A "container" here is a directory tree (usually a busybox root: one static
// busybox, no libc, no loader) that bwrap makes `/`, with a host tree (often
// the machine's real `/`) at /run/host, as Toolbx does.
//
// Mounts happen only inside bwrap: it unshares a mount namespace, mounts
// there, and the namespace and all its mounts vanish when the process exits.
// This module never mounts anything in the test process's own namespace, and
// must not: a bind of `/` below a scratch dir, followed by the `rm -rf` of
// that scratch dir in a cleanup, would walk into the bind and delete the
// machine. removeScratchDir refuses to remove a dir that has a mount below it,
// and assertNoStrayMounts makes the check a test assertion.

import { spawnSync } from 'node:child_process'
import { lstatSync, readFileSync } from 'node:fs'
import { chmod, copyFile, mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, resolve, sep } from 'node:path'
import type { Test } from 'tap'

export const BWRAP = '/usr/bin/bwrap'
/** Debian's busybox-static: no PT_INTERP, runs in a root without a libc. */
export const BUSYBOX = '/bin/busybox'
/** Where the container sees the host (hostshim's default hostRoot). */
export const HOST_ROOT = '/run/host'
/** The C compiler for host-side helpers; they are dynamic on purpose. */
export const CC = 'cc'

/** The busybox applets a test root offers, as /bin/NAME symlinks. */
export const APPLETS = ['sh', 'cat', 'echo', 'ls', 'env', 'true', 'false', 'kill', 'sleep', 'id', 'printf', 'time'] as const
/** Empty directories of a test root: mount points and places to put shims. */
export const ROOT_DIRS = ['run/host', 'proc', 'dev', 'tmp', 'usr/bin'] as const

/** The environment a container gets unless a test says otherwise. */
export const CONTAINER_ENV: Readonly<Record<string, string>> = { PATH: '/usr/bin:/bin', HOME: '/', LC_ALL: 'C' }

/** Every scratch dir starts with this in the OS temp dir (see assertNoStrayMounts). */
export const SCRATCH_PREFIX = 'hostshim-it-'
/** Every dir test/lib/shims.ts builds a shim in starts with this. */
export const SHIM_DIR_PREFIX = 'hostshim-shim-'

/** A run may not take longer than this; bwrap's child dies with it. */
export const RUN_TIMEOUT_MS = 60_000

export type Bind = readonly [src: string, dest: string, mode: 'ro' | 'rw']

export interface ContainerRun {
  /** the directory that becomes `/` (writable) */
  readonly root: string
  /** the directory that becomes HOST_ROOT (read-only); often the real `/` */
  readonly host: string
  /** extra binds, applied after root and host */
  readonly binds?: readonly Bind[]
  /** the command as seen inside the container */
  readonly argv: readonly string[]
  /** the whole environment of the command (default CONTAINER_ENV) */
  readonly env?: Readonly<Record<string, string>>
  readonly input?: string | Buffer
  /** a host command to run bwrap under, e.g. strace and its options */
  readonly wrapper?: readonly string[]
}

export interface RunResult {
  /** exit status; bwrap turns death by signal N into 128 + N */
  readonly status: number | null
  readonly signal: NodeJS.Signals | null
  readonly stdout: Buffer
  readonly stderr: Buffer
}

/** A fresh scratch dir in the OS temp dir. Remove it with removeScratchDir. */
export function makeScratchDir(label: string): Promise<string> {
  return mkdtemp(join(tmpdir(), `${SCRATCH_PREFIX}${label}-`))
}

/**
 * Make `dir` a root holding only static busybox and its applet links, plus
 * the empty ROOT_DIRS. No libc, no loader: a dynamic program cannot run here
 * except through a shim.
 */
export async function makeBusyboxRoot(dir: string): Promise<string> {
  for (const d of ROOT_DIRS) await mkdir(join(dir, d), { recursive: true })
  await mkdir(join(dir, 'bin'), { recursive: true })
  await copyFile(BUSYBOX, join(dir, 'bin/busybox'))
  await chmod(join(dir, 'bin/busybox'), 0o755)
  for (const applet of APPLETS) await symlink('busybox', join(dir, 'bin', applet))
  return dir
}

/**
 * Give a root the host's user and group database. glibc's NSS reads the
 * container's /etc, not the host's (a known limit of hostshim): without these
 * a host `id` prints numbers where the host prints names.
 */
export async function addHostUserDb(root: string): Promise<void> {
  await mkdir(join(root, 'etc'), { recursive: true })
  for (const f of ['passwd', 'group']) await copyFile(join('/etc', f), join(root, 'etc', f))
}

/** The bwrap command line for a run, without the wrapper. */
export function bwrapArgs(run: ContainerRun): string[] {
  const args = [
    BWRAP,
    '--bind', run.root, '/',
    '--ro-bind', run.host, HOST_ROOT,
    '--proc', '/proc',
    '--dev', '/dev',
    '--chdir', '/',
    '--die-with-parent',
  ]
  for (const [src, dest, mode] of run.binds ?? []) args.push(mode === 'ro' ? '--ro-bind' : '--bind', src, dest)
  return [...args, '--', ...run.argv]
}

/** Run `argv` in a container made by bwrap; waits for it. */
export function runInContainer(run: ContainerRun): RunResult {
  if (resolve(run.root) === '/') throw new Error('runInContainer: the root must be a scratch tree, not "/"')
  const [file, ...args] = [...(run.wrapper ?? []), ...bwrapArgs(run)] as [string, ...string[]]
  return runHost(file, args, { env: run.env ?? CONTAINER_ENV, input: run.input })
}

/**
 * Host mode runs shims on this machine itself: a HOST_ROOT here would make
 * them think they are in a container. False, with a failure that says so,
 * when this machine has one (a stray directory; Toolbx's symlink).
 */
export function machineIsHost(t: Test): boolean {
  try {
    lstatSync(HOST_ROOT)
  } catch {
    return true
  }
  t.fail(`${HOST_ROOT} exists on this machine: host mode cannot be tested here`)
  return false
}

/** Run a program on the host, outside any container. */
export function runHost(
  file: string,
  args: readonly string[],
  options: { env?: Readonly<Record<string, string>>; input?: string | Buffer; argv0?: string } = {},
): RunResult {
  const r = spawnSync(file, args, {
    env: { ...(options.env ?? CONTAINER_ENV) },
    input: options.input ?? '',
    timeout: RUN_TIMEOUT_MS,
    killSignal: 'SIGKILL',
    maxBuffer: 64 << 20,
    ...(options.argv0 === undefined ? {} : { argv0: options.argv0 }),
  })
  if (r.error) throw r.error
  return { status: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr }
}

/** How a command ended, as busybox `time` (in the container) reports it. */
export type WaitStatus = { readonly exit: number } | { readonly signal: number }

/**
 * bwrap reports death by signal N as exit 128 + N, indistinguishable from a
 * real exit 128 + N. busybox `time` waits for its child itself and says which
 * it was; run `time CMD` in the container and read its stderr with this.
 */
export function waitStatusFromTime(stderr: Buffer): WaitStatus {
  const text = stderr.toString('latin1')
  const signal = /^Command terminated by signal (\d+)$/m.exec(text)
  if (signal) return { signal: Number(signal[1]) }
  const exit = /^Command exited with non-zero status (\d+)$/m.exec(text)
  if (exit) return { exit: Number(exit[1]) }
  if (/^real\s/m.test(text)) return { exit: 0 }
  throw new Error(`no report from busybox time in ${JSON.stringify(text)}`)
}

/** The mount points in /proc/self/mountinfo, octal escapes decoded. */
export function mountPoints(): string[] {
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((line) => (line.split(' ')[4] ?? '').replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8))))
}

/** Mount points at or below `dir`, in this process's namespace. */
export function mountsUnder(dir: string): string[] {
  const base = resolve(dir)
  return mountPoints().filter((m) => m === base || m.startsWith(base + sep))
}

/** Mount points in the test temp dirs (scratch and shim dirs), or at or below `dirs`. */
export function strayMounts(dirs: readonly string[] = []): string[] {
  const prefixes = [SCRATCH_PREFIX, SHIM_DIR_PREFIX].map((p) => join(tmpdir(), p))
  const bases = dirs.map((d) => resolve(d))
  return mountPoints().filter(
    (m) => prefixes.some((p) => m.startsWith(p)) || bases.some((b) => m === b || m.startsWith(b + sep)),
  )
}

/** Assert that no mount lives below the temp dirs the tests use. Call before removing them. */
export function assertNoStrayMounts(t: Test, dirs: readonly string[] = []): void {
  t.same(strayMounts(dirs), [], 'no mount below the test temp dirs in the test process namespace')
}

/** rm -rf a scratch dir, unless something is mounted below it: then refuse, loudly. */
export async function removeScratchDir(dir: string): Promise<void> {
  const base = resolve(dir)
  if (!base.startsWith(join(tmpdir(), SCRATCH_PREFIX))) throw new Error(`refusing to remove ${JSON.stringify(base)}: not a scratch dir`)
  const mounts = mountsUnder(base)
  if (mounts.length > 0) throw new Error(`refusing to remove ${JSON.stringify(base)}: mounts below it: ${mounts.join(', ')}`)
  await rm(base, { recursive: true, force: true })
}

/**
 * The host-side probe: prints its pid, then each argv and environment entry
 * as hex, one per line, so any byte comes back exactly:
 *
 *     pid 1234
 *     argv 2f7573722f62696e2f70726f6265
 *     env 504154483d2f62696e
 *
 * It is linked dynamically against the host's glibc on purpose: it needs the
 * host's loader, so in a busybox root only a shim can start it.
 */
export const PROBE_C = `#include <stdio.h>
#include <unistd.h>

extern char **environ;

static void hex(const char *tag, const char *s)
{
	fputs(tag, stdout);
	putchar(' ');
	for (; *s; s++)
		printf("%02x", (unsigned char)*s);
	putchar('\\n');
}

int main(int argc, char **argv)
{
	char **e;
	int i;

	printf("pid %ld\\n", (long)getpid());
	for (i = 0; i < argc; i++)
		hex("argv", argv[i]);
	for (e = environ; *e; e++)
		hex("env", *e);
	return 0;
}
`

/** Compile the probe with the machine's cc into `dir`; returns its path. */
export async function buildHostProbe(dir: string): Promise<string> {
  const source = join(dir, 'probe.c')
  const binary = join(dir, 'probe')
  await writeFile(source, PROBE_C)
  const r = runHost(CC, ['-O1', '-Wall', '-Werror', '-o', binary, source], { env: { PATH: process.env.PATH ?? '/usr/bin:/bin' } })
  if (r.status !== 0) throw new Error(`${CC} failed to build the probe: ${r.stderr.toString()}`)
  return binary
}

export interface ProbeReport {
  readonly pid: number
  readonly argv: Buffer[]
  readonly env: Buffer[]
}

export function parseProbe(stdout: Buffer): ProbeReport {
  const lines = stdout.toString('latin1').split('\n')
  if (lines.pop() !== '') throw new Error(`probe output does not end with a newline: ${JSON.stringify(stdout.toString())}`)
  const [first, ...rest] = lines
  const pid = /^pid (\d+)$/.exec(first ?? '')
  if (!pid) throw new Error(`probe output does not start with its pid: ${JSON.stringify(stdout.toString())}`)
  const report = { pid: Number(pid[1]), argv: [] as Buffer[], env: [] as Buffer[] }
  for (const line of rest) {
    const m = /^(argv|env) ((?:[0-9a-f]{2})*)$/.exec(line)
    if (!m) throw new Error(`not a probe line: ${JSON.stringify(line)}`)
    report[m[1] as 'argv' | 'env'].push(Buffer.from(m[2] as string, 'hex'))
  }
  return report
}

/** One word for sh, any bytes but NUL: single quotes, with `'` as `'\''`. */
export function shellQuote(arg: string | Buffer): Buffer {
  const bytes = typeof arg === 'string' ? Buffer.from(arg, 'utf8') : arg
  if (bytes.includes(0)) throw new Error('shellQuote: a NUL byte cannot be an argument')
  const parts: Buffer[] = [Buffer.from("'")]
  for (const b of bytes) parts.push(b === 0x27 ? Buffer.from("'\\''") : Buffer.of(b))
  parts.push(Buffer.from("'"))
  return Buffer.concat(parts)
}

/** A shell command line from words (each quoted), as bytes. */
export function shellCommand(words: readonly (string | Buffer)[]): Buffer {
  return Buffer.concat(words.flatMap((w, i) => (i === 0 ? [shellQuote(w)] : [Buffer.from(' '), shellQuote(w)])))
}
