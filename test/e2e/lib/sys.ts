// Small system helpers for the end-to-end tests: run a program and capture
// everything, read the mount table, remove a directory only when nothing is
// mounted below it.

import { spawn } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { rm } from 'node:fs/promises'
import { resolve } from 'node:path'

export interface RunResult {
  readonly code: number | null
  readonly signal: NodeJS.Signals | null
  readonly stdout: string
  readonly stderr: string
  /** the program could not be started at all (spawn error code) */
  readonly spawnError?: string
  readonly ms: number
}

export interface RunOptions {
  readonly cwd?: string
  readonly env?: NodeJS.ProcessEnv
  readonly input?: string
  /** kill the process group after this many ms (default 5 minutes) */
  readonly timeoutMs?: number
}

/** Run a program, never throwing: the caller decides what counts as failure. */
export function run(file: string, args: readonly string[], options: RunOptions = {}): Promise<RunResult> {
  const started = Date.now()
  return new Promise((done) => {
    const child = spawn(file, args, {
      cwd: options.cwd,
      env: options.env ?? process.env,
      stdio: ['pipe', 'pipe', 'pipe'],
      detached: true,
    })
    const out: Buffer[] = []
    const err: Buffer[] = []
    let spawnError: string | undefined
    child.stdout.on('data', (b: Buffer) => out.push(b))
    child.stderr.on('data', (b: Buffer) => err.push(b))
    child.stdin.on('error', () => {})
    child.stdin.end(options.input ?? '')
    const timer = setTimeout(() => {
      try {
        if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL')
      } catch {
        // already gone
      }
    }, options.timeoutMs ?? 5 * 60_000)
    child.on('error', (e: NodeJS.ErrnoException) => {
      spawnError = e.code ?? e.message
    })
    child.on('close', (code, signal) => {
      clearTimeout(timer)
      done({
        code,
        signal,
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8'),
        ...(spawnError === undefined ? {} : { spawnError }),
        ms: Date.now() - started,
      })
    })
  })
}

/** Like run, but throws with the whole output when the exit status is not 0. */
export async function mustRun(file: string, args: readonly string[], options: RunOptions = {}): Promise<RunResult> {
  const r = await run(file, args, options)
  if (r.code !== 0) {
    throw new Error(
      `${file} ${args.join(' ')} failed (${r.spawnError ?? (r.signal ? `signal ${r.signal}` : `exit ${r.code}`)})\n` +
        `stdout:\n${r.stdout.slice(-4000)}\nstderr:\n${r.stderr.slice(-4000)}`,
    )
  }
  return r
}

/** Unescape a path field of /proc/self/mountinfo (\040 for space and so on). */
function unescapeMountPath(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, oct: string) => String.fromCharCode(parseInt(oct, 8)))
}

/** Mount points of this process's mount namespace (the machine's, for root outside bwrap). */
export function mountPoints(): string[] {
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .filter((line) => line.length > 0)
    .map((line) => unescapeMountPath(line.split(' ')[4] ?? ''))
}

/** Mount points at or below dir. */
export function mountsUnder(dir: string): string[] {
  const d = resolve(dir)
  return mountPoints().filter((m) => m === d || m.startsWith(`${d}/`))
}

/**
 * rm -rf, but only when nothing is mounted at or below dir: removing through
 * a live bind mount would delete the mounted tree's files (the host's own, for
 * a bind of /).
 */
export async function removeTree(dir: string): Promise<void> {
  const live = mountsUnder(dir)
  if (live.length > 0) {
    throw new Error(`refusing to remove ${dir}: mounted below it: ${live.join(', ')}`)
  }
  await rm(dir, { recursive: true, force: true })
}

/** dpkg's view of a package: true when installed. */
export async function dpkgInstalled(pkg: string): Promise<boolean> {
  const r = await run('dpkg-query', ['-W', '-f=${Status}', pkg])
  return r.code === 0 && r.stdout.includes('install ok installed')
}

/** A path for messages and tables: the last line of a program's stderr, trimmed. */
export function lastLine(s: string): string {
  const lines = s.trim().split('\n')
  return (lines[lines.length - 1] ?? '').trim()
}
