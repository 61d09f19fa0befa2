// `hostshim cache`: where hostshim's caches are, how big, and clearing them.
//
// Three directories: hostshim's compile cache ($HOSTSHIM_CACHE), zig's global
// cache (zig's own rule: $ZIG_GLOBAL_CACHE_DIR, else $XDG_CACHE_HOME/zig,
// else ~/.cache/zig) and the shims' run-time plan cache
// ($XDG_RUNTIME_DIR/hostshim). Clearing removes exactly those directories,
// and refuses any that is not plainly a cache: not absolute, "/", the home
// directory or one of its ancestors, a symbolic link.

import { planCacheDir } from './plan.js'
import { lstat, readdir, rm } from 'node:fs/promises'
import { homedir } from 'node:os'
import { join, resolve } from 'node:path'
import { RefusedError, errnoOf, ioError, q } from './errors.js'
import { defaultCacheDir } from './toolchain.js'

export type CacheName = 'hostshim' | 'zig' | 'plan'

export interface CacheDir {
  readonly name: CacheName
  /** what it holds, for people */
  readonly what: string
  readonly path: string
  /** false when the directory does not exist */
  readonly exists: boolean
  /** bytes of the files below it (symbolic links count as themselves) */
  readonly bytes: number
  readonly files: number
}

export function zigCacheDir(env: NodeJS.ProcessEnv): string {
  if (env.ZIG_GLOBAL_CACHE_DIR) return env.ZIG_GLOBAL_CACHE_DIR
  return join(env.XDG_CACHE_HOME || join(env.HOME || homedir(), '.cache'), 'zig')
}

/** The caches this environment uses; the plan cache only where $XDG_RUNTIME_DIR is set. */
export function cacheDirs(env: NodeJS.ProcessEnv): { name: CacheName; what: string; path: string }[] {
  const dirs: { name: CacheName; what: string; path: string }[] = [
    { name: 'hostshim', what: 'compiled shims, by content', path: resolve(defaultCacheDir(env)) },
    { name: 'zig', what: "zig's cache: the C library of each target, objects", path: resolve(zigCacheDir(env)) },
  ]
  // Where the shims keep their plans: the shim's own rule (an absolute XDG_RUNTIME_DIR only).
  const plans = planCacheDir(env)
  if (plans !== null) dirs.push({ name: 'plan', what: "the shims' run-time plans", path: plans })
  return dirs
}

async function measure(path: string): Promise<{ exists: boolean; bytes: number; files: number }> {
  let top
  try {
    top = await lstat(path)
  } catch (error) {
    if (errnoOf(error) === 'ENOENT') return { exists: false, bytes: 0, files: 0 }
    throw ioError(`cannot look at ${q(path)}`, error)
  }
  if (!top.isDirectory()) return { exists: true, bytes: top.size, files: 1 }
  let bytes = 0
  let files = 0
  const pending = [path]
  while (pending.length > 0) {
    const dir = pending.pop() as string
    let entries
    try {
      entries = await readdir(dir, { withFileTypes: true })
    } catch (error) {
      // Gone meanwhile (zig runs elsewhere), or unreadable: count what can be counted.
      if (errnoOf(error) === 'ENOENT' || errnoOf(error) === 'EACCES') continue
      throw ioError(`cannot list ${q(dir)}`, error)
    }
    for (const entry of entries) {
      const full = join(dir, entry.name)
      if (entry.isDirectory()) pending.push(full)
      else {
        try {
          bytes += (await lstat(full)).size
          files++
        } catch {
          // removed meanwhile
        }
      }
    }
  }
  return { exists: true, bytes, files }
}

export async function listCaches(env: NodeJS.ProcessEnv): Promise<CacheDir[]> {
  const out: CacheDir[] = []
  for (const dir of cacheDirs(env)) out.push({ ...dir, ...(await measure(dir.path)) })
  return out
}

/** Why `path` must not be removed as a cache, or null. */
export function unsafeToClear(path: string, env: NodeJS.ProcessEnv): string | null {
  if (!path.startsWith('/')) return 'it is not an absolute path'
  const home = resolve(env.HOME || homedir())
  if (path === '/') return 'it is "/"'
  if (home === path || home.startsWith(`${path}/`)) return 'it is the home directory or holds it'
  return null
}

/** Remove each cache directory; returns them as they were. Refuses all before removing any. */
export async function clearCaches(env: NodeJS.ProcessEnv): Promise<CacheDir[]> {
  const dirs = await listCaches(env)
  for (const dir of dirs) {
    const why = unsafeToClear(dir.path, env)
    if (why !== null) throw new RefusedError(`will not remove the ${dir.name} cache ${q(dir.path)}: ${why}`)
    if (dir.exists && !(await lstat(dir.path)).isDirectory()) {
      throw new RefusedError(`will not remove the ${dir.name} cache ${q(dir.path)}: it is not a directory`)
    }
  }
  for (const dir of dirs) {
    if (!dir.exists) continue
    try {
      await rm(dir.path, { recursive: true, force: true })
    } catch (error) {
      throw ioError(`cannot remove ${q(dir.path)}`, error)
    }
  }
  return dirs
}

/** 1536 -> "1.5 KiB" */
export function humanBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB']
  let i = 0
  let v = n
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024
    i++
  }
  return i === 0 ? `${n} B` : `${v.toFixed(1)} ${units[i]}`
}

export function formatCaches(dirs: readonly CacheDir[], cleared: boolean): string {
  return dirs
    .map((d) => {
      const size = d.exists ? `${humanBytes(d.bytes)} in ${d.files} files` : 'absent'
      return `${d.name}: ${q(d.path)}: ${cleared && d.exists ? `removed (${size})` : size}; ${d.what}`
    })
    .join('\n')
    .concat('\n')
}
