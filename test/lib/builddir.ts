// examples/builddir, built for real: `meson setup` and `meson compile` on this
// machine, with `hostshim` on PATH as a contributor has it. Shared by
// test/builddir.test.ts (host, busybox roots) and test/e2e/builddir.test.ts
// (an older glibc: Debian 11).

import { spawnSync } from 'node:child_process'
import { join } from 'node:path'
import type { ShimMode } from '../../launcher/config.js'
import { REPO } from './cli.js'
import { COMPILE_TIMEOUT_MS, TEST_CACHE_DIR } from './shims.js'

export const EXAMPLE = join(REPO, 'examples/builddir')
export const MESON = '/usr/bin/meson'

/** What a contributor runs, what the shim runs, and the program's own library, in a build directory. */
export const SHIM_PATH = 'src/greet'
export const PROGRAM_PATH = 'src/real/greet'
export const LIBRARY_PATH = 'lib/libgreet.so'

export interface Step {
  readonly code: number | null
  readonly stdout: string
  readonly stderr: string
}

/** `meson ARGS` with `hostshim` (the command in `bin`) first on PATH. */
export function meson(args: readonly string[], bin: string, env: NodeJS.ProcessEnv = {}): Step {
  const r = spawnSync(MESON, args, {
    encoding: 'utf8',
    timeout: COMPILE_TIMEOUT_MS,
    env: { ...process.env, PATH: `${bin}:/usr/bin:/bin`, HOSTSHIM_CACHE: TEST_CACHE_DIR, ...env },
  })
  return { code: r.status, stdout: r.stdout ?? '', stderr: r.stderr ?? String(r.error) }
}

/** setup + compile of the example into `builddir`; throws with meson's output when either fails. */
export function buildExample(builddir: string, mode: ShimMode, bin: string): void {
  for (const args of [
    ['setup', '--prefix=/usr', `-Dshim_mode=${mode}`, builddir, EXAMPLE],
    ['compile', '-C', builddir],
  ]) {
    const r = meson(args, bin)
    if (r.code !== 0) throw new Error(`meson ${args.join(' ')} failed (${r.code}):\n${r.stdout}\n${r.stderr}`)
  }
}

/** What the example prints for `who` (glibc's version aside). */
export function greeting(who = 'world'): RegExp {
  return new RegExp(`^hello ${who} from libgreet, on glibc (\\d+\\.\\d+)\\n$`)
}
