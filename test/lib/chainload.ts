// Helpers for the chainload tests (test/integration/chainload.test.ts):
// shims for any architecture, a probe that reports how its own process looks
// from inside (/proc/self/exe, cmdline, comm, argv, env), and foreign glibc
// run-times from Debian's libc6-<arch>-cross packages (architecture "all":
// apt-get download and dpkg -x, nothing installed), to run other
// architectures' programs under qemu-user.

import { spawnSync } from 'node:child_process'
import { cp, mkdir, mkdtemp, readdir, rename, rm, writeFile } from 'node:fs/promises'
import { existsSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Arch, ArchName } from '../../launcher/arch.js'
import { validateConfig } from '../../launcher/config.js'
import { generate } from '../../launcher/generate.js'
import { loadZig, zigEnv, type Zig } from '../../launcher/toolchain.js'
import { CC, SHIM_DIR_PREFIX, runHost } from './container.js'
import { TEST_CACHE_DIR, type ShimFields } from './shims.js'

/** Unpacked libc6-*-cross packages, kept across runs like the compile cache. */
export const CROSS_CACHE_DIR = join(tmpdir(), 'hostshim-test-cross')

let zig: Promise<Zig> | undefined
const shimDirs: string[] = []

function theZig(): Promise<Zig> {
  zig ??= loadZig()
  return zig
}

/** Like buildShim (test/lib/shims.ts), for any architecture. */
export async function buildShimFor(arch: ArchName, fields: ShimFields): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), SHIM_DIR_PREFIX))
  shimDirs.push(dir)
  const output = join(dir, fields.name)
  const config = validateConfig({ ...fields, arch, output })
  const [built] = await generate(config, { toolchain: await theZig(), cacheDir: TEST_CACHE_DIR })
  if (built?.path !== output) throw new Error(`generate wrote ${JSON.stringify(built?.path)}, expected ${JSON.stringify(output)}`)
  return output
}

/** Remove the temp dirs buildShimFor made. */
export async function removeShimsFor(): Promise<void> {
  for (const dir of shimDirs.splice(0)) await rm(dir, { recursive: true, force: true })
}

/**
 * selfprobe: how its own process looks from inside, one hex line each:
 *
 *     pid 1234
 *     exe HEX       readlink("/proc/self/exe")
 *     cmdline HEX   /proc/self/cmdline, NULs included (what ps shows)
 *     comm HEX      /proc/self/comm without its newline
 *     argv HEX      one per argument
 *     env HEX       one per variable
 *
 * `selfprobe again` re-executes /proc/self/exe as
 * ["reexec-child", "child", "new args"] instead, as programs that restart
 * themselves do; `selfprobe exit N ...` exits with N after its report.
 */
export const SELF_PROBE_C = String.raw`#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void hex(const char *tag, const char *s, size_t n)
{
	printf("%s ", tag);
	while (n--)
		printf("%02x", (unsigned char)*s++);
	putchar('\n');
}

static size_t slurp(const char *path, char *buf, size_t size)
{
	ssize_t n;
	size_t got = 0;
	int fd = open(path, O_RDONLY);

	if (fd < 0)
		return 0;
	while (got < size && (n = read(fd, buf + got, size - got)) > 0)
		got += (size_t)n;
	close(fd);
	return got;
}

/* envp, not environ: zig's glibc stubs get environ wrong on some architectures. */
int main(int argc, char **argv, char **envp)
{
	static char buf[1 << 16];
	ssize_t n;
	size_t m;
	char **e;
	int i;

	if (argc > 1 && !strcmp(argv[1], "again")) {
		char *args[] = { "reexec-child", "child", "new args", 0 };

		execv("/proc/self/exe", args);
		perror("selfprobe: execv /proc/self/exe");
		return 99;
	}
	printf("pid %ld\n", (long)getpid());
	n = readlink("/proc/self/exe", buf, sizeof(buf));
	hex("exe", buf, n < 0 ? 0 : (size_t)n);
	hex("cmdline", buf, slurp("/proc/self/cmdline", buf, sizeof(buf)));
	m = slurp("/proc/self/comm", buf, sizeof(buf));
	hex("comm", buf, m > 0 ? m - 1 : 0);
	for (i = 0; i < argc; i++)
		hex("argv", argv[i], strlen(argv[i]));
	for (e = envp; *e; e++)
		hex("env", *e, strlen(*e));
	return argc > 2 && !strcmp(argv[1], "exit") ? atoi(argv[2]) : 0;
}
`

export interface SelfReport {
  readonly pid: number
  readonly exe: Buffer
  readonly cmdline: Buffer
  readonly comm: Buffer
  readonly argv: Buffer[]
  readonly env: Buffer[]
}

export function parseSelfProbe(stdout: Buffer): SelfReport {
  const text = stdout.toString('latin1')
  const single = new Map<string, Buffer>()
  const argv: Buffer[] = []
  const env: Buffer[] = []
  let pid = NaN
  for (const line of text.split('\n').slice(0, -1)) {
    const m = /^(pid|exe|cmdline|comm|argv|env) (\d+|(?:[0-9a-f]{2})*)$/.exec(line)
    if (!m) throw new Error(`not a selfprobe line: ${JSON.stringify(line)} in ${JSON.stringify(text)}`)
    const [, key, value] = m as unknown as [string, string, string]
    if (key === 'pid') pid = Number(value)
    else if (key === 'argv') argv.push(Buffer.from(value, 'hex'))
    else if (key === 'env') env.push(Buffer.from(value, 'hex'))
    else single.set(key, Buffer.from(value, 'hex'))
  }
  const get = (key: string): Buffer => {
    const v = single.get(key)
    if (v === undefined) throw new Error(`selfprobe output has no ${key} line: ${JSON.stringify(text)}`)
    return v
  }
  if (!Number.isInteger(pid)) throw new Error(`selfprobe output has no pid line: ${JSON.stringify(text)}`)
  return { pid, exe: get('exe'), cmdline: get('cmdline'), comm: get('comm'), argv, env }
}

/** /proc/PID/cmdline for an argv: each argument and a NUL. */
export function cmdlineOf(argv: readonly (string | Buffer)[]): Buffer {
  return Buffer.concat(argv.flatMap((a) => [typeof a === 'string' ? Buffer.from(a, 'utf8') : a, Buffer.of(0)]))
}

/** Compile selfprobe with the machine's cc (dynamic, host glibc) into `dir`. */
export async function buildSelfProbe(dir: string, extraFlags: readonly string[] = [], name = 'selfprobe'): Promise<string> {
  const source = join(dir, `${name}.c`)
  const binary = join(dir, name)
  await writeFile(source, SELF_PROBE_C)
  const r = runHost(CC, ['-O1', '-Wall', '-Werror', ...extraFlags, '-o', binary, source], { env: { PATH: process.env.PATH ?? '/usr/bin:/bin' } })
  if (r.status !== 0) throw new Error(`${CC} failed to build selfprobe: ${r.stderr.toString()}`)
  return binary
}

/** zig's glibc target for an architecture: the shim's musl triple with gnu, at bookworm's glibc. */
export function glibcTarget(arch: Arch): string {
  return `${arch.zigTarget.replace('-musl', '-gnu')}.2.36`
}

/** Compile C for `arch` against glibc with zig: a dynamic program whose PT_INTERP is that arch's loader. */
export async function buildForeignProgram(arch: Arch, source: string, output: string): Promise<string> {
  const file = `${output}.c`
  await writeFile(file, source)
  const z = await theZig()
  // A compile, not a program under test: on a fresh machine zig first builds
  // the target's glibc stubs and start files, which takes minutes on a busy
  // one (runHost's limit is for programs that must end in seconds).
  const work = await mkdtemp(join(tmpdir(), 'hostshim-foreign-'))
  const r = spawnSync(z.path, ['cc', '-target', glibcTarget(arch), ...arch.zigFlags, '-O1', '-o', output, file], {
    env: zigEnv(work, { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/root' }),
    encoding: 'utf8',
    timeout: 30 * 60_000,
  })
  await rm(work, { recursive: true, force: true })
  if (r.status !== 0) throw new Error(`zig failed to build ${output} for ${arch.name}: ${r.error ?? r.stderr}`)
  return output
}

/** Debian's cross run-time package for an architecture. */
export function crossPackage(arch: Arch): string {
  return `libc6-${arch.debian}-cross`
}

function apt(args: readonly string[], cwd: string): { status: number | null; stderr: string } {
  const r = spawnSync('apt-get', args, { cwd, encoding: 'utf8', timeout: 300_000 })
  return { status: r.status, stderr: r.stderr ?? String(r.error) }
}

/**
 * The glibc run-time of `arch` from Debian's libc6-<arch>-cross: the
 * directory holding its lib/ (and lib64/ where it has one), laid out as a
 * host's root would be. Downloaded once, unpacked into CROSS_CACHE_DIR.
 */
export async function crossRuntime(arch: Arch): Promise<string> {
  const pkg = crossPackage(arch)
  const unpacked = join(CROSS_CACHE_DIR, pkg)
  if (!existsSync(unpacked)) {
    await mkdir(CROSS_CACHE_DIR, { recursive: true })
    const work = await mkdtemp(join(CROSS_CACHE_DIR, `.${pkg}-`))
    try {
      let r = apt(['download', pkg], work)
      if (r.status !== 0) {
        // A machine whose package lists are stale or missing.
        apt(['update', '-qq'], work)
        r = apt(['download', pkg], work)
      }
      if (r.status !== 0) throw new Error(`apt-get download ${pkg} failed:\n${r.stderr}`)
      const deb = (await readdir(work)).find((f) => f.endsWith('.deb'))
      if (!deb) throw new Error(`apt-get download left no ${pkg} .deb in ${work}`)
      const x = spawnSync('dpkg', ['-x', join(work, deb), join(work, 'x')], { encoding: 'utf8' })
      if (x.status !== 0) throw new Error(`dpkg -x ${deb} failed: ${x.stderr}`)
      await rename(join(work, 'x'), unpacked)
    } finally {
      await rm(work, { recursive: true, force: true })
    }
  }
  // usr/<triplet>/ holds lib/ (and lib64/); the triplet is the cross one (i686-linux-gnu, not i386-linux-gnu).
  const dirs = (await readdir(join(unpacked, 'usr'))).filter((d) => d !== 'share')
  if (dirs.length !== 1) throw new Error(`${pkg}: expected one usr/<triplet>/ directory, found ${JSON.stringify(dirs)}`)
  return join(unpacked, 'usr', dirs[0] as string)
}

/** A host tree for `arch`: its glibc run-time at /lib (and /lib64), nothing else. */
export async function makeForeignHost(arch: Arch, dir: string): Promise<string> {
  const runtime = await crossRuntime(arch)
  await mkdir(dir, { recursive: true })
  for (const entry of await readdir(runtime)) {
    await cp(join(runtime, entry), join(dir, entry), { recursive: true, verbatimSymlinks: true })
  }
  return dir
}

/** The static qemu-user binary for `arch`, or null when it is not installed. */
export function qemuFor(arch: Arch): string | null {
  const path = `/usr/bin/qemu-${arch.qemu}-static`
  return existsSync(path) ? path : null
}
