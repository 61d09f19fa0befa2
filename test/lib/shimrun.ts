// Running a real shim against a host tree, and what the plan model says it
// must print: the bridge between test/lib/container.ts (bwrap) and
// launcher/plan.ts (the model).
//
// With `trace`, the run happens under `strace -ff -e trace=%file`; the shim's
// own file system calls (from its execve to the next one) come back, so a
// test can check that every path the shim touched lies inside the host root:
// it follows no link the kernel's way, magic links included.
//
// A chainload shim has no next execve: it maps the loader and jumps to it, and
// the loader's calls follow in the same process. There the shim's calls end
// where the loader's begin, at glibc's loader's first system call, brk(NULL),
// which a shim never makes; the file the shim mapped before it is the loader
// it entered (strace traces brk and mmap too in that mode).
//
// The shim opens the host root once and names host paths relative to it:
// strace -y shows the directory fd's path, and the calls come back with it
// joined to theirs, full paths as the model has them.

import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { FAILURES, STRERROR, formatDebug, toHostBytes, type Errno, type Plan } from '../../launcher/plan.js'
import type { ShimConfig, ShimMode } from '../../launcher/config.js'
import { CONTAINER_ENV, HOST_ROOT, runInContainer, type Bind, type RunResult } from './container.js'
import { DEBUG_ENV } from './shims.js'

export const STRACE = '/usr/bin/strace'

export interface ShimRunOptions {
  /** the container's root (a busybox root) */
  readonly root: string
  /** the host tree, bound at HOST_ROOT */
  readonly tree: string
  /** the compiled shim, bound read-only at `at` */
  readonly shim: string
  /** where the shim sits in the container (default /usr/bin/NAME of its config) */
  readonly at: string
  /** the command (default: [at]) */
  readonly argv?: readonly string[]
  /** the whole environment (default CONTAINER_ENV + the debug variable) */
  readonly env?: Readonly<Record<string, string>>
  readonly binds?: readonly Bind[]
  /** strace output prefix: turns tracing on */
  readonly trace?: string
  /** the shim's mode, for where its calls end in the trace (default exec) */
  readonly mode?: ShimMode
}

export interface FileCall {
  readonly call: string
  /** the first string argument: the path */
  readonly path: string
}

export interface ShimRun extends RunResult {
  /** the shim's file system calls, with `trace` */
  readonly calls?: readonly FileCall[]
  /** the path of the execve that replaced the shim, if one succeeded or was tried */
  readonly execPath?: string
  /**
   * chainload, with `trace`: the file the shim opened last before the loader
   * it jumped to made its first call: the loader it mapped. Unset when no
   * loader started (a failure, or an execve: see execPath).
   */
  readonly entered?: string
  /** with `trace`: strace's text of the shim's process (in chainload mode, the loader's too) */
  readonly trace?: string
}

export function debugEnv(): Record<string, string> {
  return { ...CONTAINER_ENV, [DEBUG_ENV]: '1' }
}

/** strace's quoted string back to bytes (its default escapes: \\ \" \n \t \r \v \f \NNN \xHH). */
function unquote(s: string): string {
  return s.replace(/\\(x[0-9a-f]{2}|[0-7]{1,3}|.)/g, (_, e: string) => {
    if (e.startsWith('x')) return String.fromCharCode(parseInt(e.slice(1), 16))
    if (/^[0-7]/.test(e)) return String.fromCharCode(parseInt(e, 8))
    return ({ n: '\n', t: '\t', r: '\r', v: '\v', f: '\f' } as Record<string, string>)[e] ?? e
  })
}

/** The system call a chainloaded glibc loader makes first (elf/dl-sysdep.c): brk(NULL). */
const LOADER_FIRST_CALL = 'brk'

/** `rel` as the kernel takes it relative to a directory fd whose path (strace -y) is `dir`. */
function joinAt(dir: string | undefined, rel: string): string {
  if (dir === undefined || rel.startsWith('/')) return rel
  // AT_EMPTY_PATH: the fd's own file (the shim's faccessat2 and execveat of what it opened).
  if (rel === '') return dir
  return rel === '.' ? dir : `${dir}/${rel}`
}

/**
 * The calls of one strace -ff -y file after the execve of `shimPath`, up to
 * and with the next execve. In chainload mode the loader's first call
 * (LOADER_FIRST_CALL), before any execve, ends them instead: the file the
 * shim mapped is then the loader it entered.
 */
export function shimCalls(trace: string, shimPath: string, mode: ShimMode = 'exec'): { calls: FileCall[]; execPath?: string; entered?: string } | undefined {
  const parsed = trace.split('\n').flatMap((line): FileCall[] => {
    // strace -y names AT_FDCWD's directory too for some calls (openat2): AT_FDCWD</>.
    const m = /^(\w+)\((?:AT_FDCWD(?:<(?:[^>\\]|\\.)*>)?, |-?\d+(?:<((?:[^>\\]|\\.)*)>)?, )?"((?:[^"\\]|\\.)*)"/.exec(line)
    if (m) {
      const dir = m[2] === undefined ? undefined : unquote(m[2])
      return [{ call: m[1] as string, path: joinAt(dir, unquote(m[3] as string)) }]
    }
    // mmap(addr, length, prot, flags, fd<path>, offset): a file mapped.
    const mapped = /^mmap\((?:[^,]*, ){4}\d+<((?:[^>\\]|\\.)*)>, /.exec(line)
    if (mapped) return [{ call: 'mmap', path: unquote(mapped[1] as string) }]
    return line.startsWith(`${LOADER_FIRST_CALL}(`) ? [{ call: LOADER_FIRST_CALL, path: '' }] : []
  })
  const start = parsed.findIndex((c) => c.call === 'execve' && c.path === shimPath)
  if (start < 0) return undefined
  const rest = parsed.slice(start + 1)
  // The shim execs the file it checked: execveat(fd, "", AT_EMPTY_PATH), the fd's path.
  const isExec = (c: FileCall) => c.call === 'execve' || c.call === 'execveat'
  const next = rest.findIndex((c) => isExec(c) || (mode === 'chainload' && c.call === LOADER_FIRST_CALL))
  if (next < 0) return { calls: rest }
  const end = rest[next] as FileCall
  if (isExec(end)) return { calls: rest.slice(0, next + 1), execPath: end.path }
  const calls = rest.slice(0, next).filter((c) => c.call !== 'mmap')
  const mapped = rest.slice(0, next).find((c) => c.call === 'mmap')
  return mapped === undefined ? { calls } : { calls, entered: mapped.path }
}

/** Run the shim in a container with the tree at HOST_ROOT. */
export function runShim(opts: ShimRunOptions): ShimRun {
  const run = runInContainer({
    root: opts.root,
    host: opts.tree,
    binds: [[opts.shim, opts.at, 'ro'], ...(opts.binds ?? [])],
    argv: opts.argv ?? [opts.at],
    env: opts.env ?? debugEnv(),
    ...(opts.trace === undefined
      ? {}
      : {
          wrapper: [
            STRACE,
            '-ff',
            '-qq',
            '-y',
            '-s',
            '8192',
            '-e',
            opts.mode === 'chainload' ? `trace=%file,${LOADER_FIRST_CALL},mmap` : 'trace=%file',
            '-o',
            opts.trace,
          ],
        }),
  })
  if (opts.trace === undefined) return run
  const dir = join(opts.trace, '..')
  const base = opts.trace.slice(dir.length + 1)
  for (const f of readdirSync(dir).filter((f) => f.startsWith(`${base}.`))) {
    const trace = readFileSync(join(dir, f), 'latin1')
    const found = shimCalls(trace, opts.at, opts.mode)
    if (found) return { ...run, ...found, trace }
  }
  throw new Error(`strace saw no execve of ${opts.at} (files ${opts.trace}.*)`)
}

/** A path the shim may touch: "/" and the host root (section 1), everything else below the host root. */
export function insideHostRoot(path: string, hostRoot: string = HOST_ROOT): boolean {
  return path === '/' || path === hostRoot || path.startsWith(`${hostRoot}/`)
}

/**
 * What a shim run must print on stderr and exit with, by the plan: a failure
 * is its one line and 126/127; a run is the debug lines (when `debug`), then
 * whatever `outcome` says the exec'd program did: `ran` (nothing more from
 * the shim) or an errno of the shim's own execve (its "cannot execute" line,
 * 126 or 127).
 */
export function expectedOutput(
  config: ShimConfig,
  plan: Plan,
  debug: boolean,
  outcome: 'ran' | Errno = 'ran',
): { stderr: Buffer; status: number | undefined } {
  if (!plan.ok) return { stderr: toHostBytes(`${plan.message}\n`), status: plan.exitCode }
  const lines = debug ? toHostBytes(formatDebug(config, plan)) : Buffer.alloc(0)
  if (outcome === 'ran') return { stderr: lines, status: undefined }
  const failure = toHostBytes(`${config.name}: ${FAILURES.exec}: ${plan.exec}: ${STRERROR[outcome]}\n`)
  return { stderr: Buffer.concat([lines, failure]), status: outcome === 'ENOENT' || outcome === 'ENOTDIR' ? 127 : 126 }
}
