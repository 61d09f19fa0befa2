// The few ways hostshim fails on purpose. Each carries its exit code; the CLI
// has one catch that prints `hostshim: message` and exits with it. Anything
// else that reaches that catch is a bug and says so.

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
