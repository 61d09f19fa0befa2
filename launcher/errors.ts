// The few ways hostshim fails on purpose. Each carries its exit code; the CLI
// has one catch that prints `hostshim: message` and exits with it. Anything
// else that reaches that catch is a bug and says so.

import { STRERROR, isErrno } from './plan.js'

export abstract class HostshimError extends Error {
  abstract readonly exitCode: number
  override readonly name: string = this.constructor.name
}

/** Bad command line: unknown option, missing argument, conflicting flags. */
export class UsageError extends HostshimError {
  readonly exitCode = 2
}

/** A config value (file or flag) that hostshim refuses; names the field. */
export class ConfigError extends HostshimError {
  readonly exitCode = 3
  constructor(
    readonly field: string,
    readonly reason: string,
  ) {
    super(`${field}: ${reason}`)
  }
}

/** zig is missing, or it failed; carries the command and its stderr. */
export class ToolchainError extends HostshimError {
  readonly exitCode = 4
  constructor(
    message: string,
    readonly command: readonly string[] = [],
    readonly stderr = '',
  ) {
    super(stderr ? `${message}\n${stderr.trimEnd()}` : message)
  }
}

/** A built shim (or a file to inspect) is not what it must be. */
export class ShimError extends HostshimError {
  readonly exitCode = 5
}

/** A file could not be read or written. */
export class IoError extends HostshimError {
  readonly exitCode = 6
  constructor(
    message: string,
    /** the system's error code (ENOENT...), for --json; the message has its text */
    readonly errno?: string,
  ) {
    super(message)
  }
}

/** The system's error code of a failed call (ENOENT...), if it has one. */
export function errnoOf(error: unknown): string | undefined {
  const code = (error as NodeJS.ErrnoException | null)?.code
  return typeof code === 'string' && /^E[A-Z0-9]+$/.test(code) ? code : undefined
}

/**
 * Why a call failed, in words: "No such file or directory", not ENOENT (the
 * words are the ones Node took from the system, capitalised as the shim's).
 */
export function reason(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error)
  const code = errnoOf(error)
  // The shim's words (musl's) where it has them, so both speak alike.
  if (code !== undefined && isErrno(code)) return STRERROR[code]
  const m = code === undefined ? null : new RegExp(`^${code}: ([^,]+)`).exec(message)
  const text = m?.[1]?.trim()
  if (text) return text.charAt(0).toUpperCase() + text.slice(1)
  return message || (code ?? 'unknown error')
}

/** "WHAT: reason" as an IoError that keeps the code. */
export function ioError(what: string, error: unknown): IoError {
  return new IoError(`${what}: ${reason(error)}`, errnoOf(error))
}

/**
 * install/uninstall found the files in a state it will not change: a
 * set-user-ID program, a symbolic link, a different file already at the
 * libexec path, a shim for another target. Nothing was changed.
 */
export class RefusedError extends HostshimError {
  readonly exitCode = 7
}

export const EXIT_CODES = {
  ok: 0,
  internal: 1,
  usage: 2,
  config: 3,
  toolchain: 4,
  shim: 5,
  io: 6,
  refused: 7,
  /** doctor: some tree cannot run the program, even through the shim */
  cannotRun: 8,
} as const

/** `"path"` for messages: quoted, escapes visible, never ambiguous. */
export function q(path: string): string {
  return JSON.stringify(path)
}
