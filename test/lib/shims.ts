// Real shims for integration tests: a config in, a compiled x86_64 shim on
// disk out, through the same path the CLI takes (validateConfig, generate).
// Plus the reader for the shim's debug output (shim/README.md, section 9).
//
// Compiles go through hostshim's content-addressed cache, so a second run of
// the tests does not start zig at all. The first compile of a fresh machine
// takes ~10 s (zig builds compiler-rt); tests that build shims should allow minutes.

import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { SHIM_MODES, validateConfig, type RawConfig, type ShimMode } from '../../launcher/config.js'
import { generate } from '../../launcher/generate.js'
import { loadToolchain, type Toolchain } from '../../launcher/toolchain.js'
import type { Test } from 'tap'
import { SHIM_DIR_PREFIX, makeScratchDir, removeScratchDir } from './container.js'

/** The shim's compile cache for tests: shared across runs so they stay fast. */
export const TEST_CACHE_DIR = process.env.HOSTSHIM_CACHE ?? join(tmpdir(), 'hostshim-test-cache')

/** The default debug variable (launcher/config.ts DEFAULTS.debugEnv). */
export const DEBUG_ENV = 'HOSTSHIM_DEBUG'

/** Ample time for one test that compiles: zig's first run for a target builds compiler-rt. */
export const COMPILE_TIMEOUT_MS = 180_000

/** A config as a test writes it: what is baked in. Architecture and output are the helper's. */
export type ShimFields = Omit<RawConfig, 'arch' | 'output' | 'outDir'> & { name: string; target: string }

/**
 * The shim's two ways of starting the host loader (shim/README.md, sections
 * 7 and 7a). Suites that run real shims run each case once per mode, in a
 * subtest named for it ("exec mode", "chainload mode").
 */
export const MODES: readonly ShimMode[] = SHIM_MODES

const toolchains = new Map<string, Promise<Toolchain>>()
const shimDirs: string[] = []

/**
 * Validate `fields`, generate the x86_64 shim into a fresh temp dir and
 * return its path (`<dir>/<name>`, mode 0755). `mode`, when given, is the
 * config's `mode` field (it overrides one in `fields`); the shim must come
 * out in the mode asked for. Throws what validateConfig or generate throw
 * (ConfigError, ToolchainError, ShimError). `cc` is the toolchain (--cc):
 * zig when absent.
 */
export async function buildShim(fields: ShimFields, mode?: ShimMode, cc = 'zig'): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), SHIM_DIR_PREFIX))
  shimDirs.push(dir)
  const output = join(dir, fields.name)
  const config = validateConfig({ ...fields, ...(mode === undefined ? {} : { mode }), arch: 'x86_64', output })
  let toolchain = toolchains.get(cc)
  if (toolchain === undefined) toolchains.set(cc, (toolchain = loadToolchain(cc)))
  const [built] = await generate(config, { toolchain: await toolchain, cacheDir: TEST_CACHE_DIR })
  if (built?.path !== output) throw new Error(`generate wrote ${JSON.stringify(built?.path)}, expected ${JSON.stringify(output)}`)
  const want = config.mode ?? 'exec'
  if (built.mode !== want) throw new Error(`generate built a ${built.mode}-mode shim, not ${want}${built.note ? `: ${built.note}` : ''}`)
  return output
}

/** Remove the temp dirs buildShim made. Shims are never mount points: plain rm. */
export async function removeBuiltShims(): Promise<void> {
  for (const dir of shimDirs.splice(0)) await rm(dir, { recursive: true, force: true })
}

/**
 * A suite's scratch dir (makeScratchDir), removed when the suite ends,
 * together with the shims buildShim made for it.
 */
export async function suiteScratch(t: Test, label: string): Promise<string> {
  const dir = await makeScratchDir(label)
  t.teardown(async () => {
    await removeScratchDir(dir)
    await removeBuiltShims()
  })
  return dir
}

/**
 * One debug value back to its bytes: the shim writes bytes outside
 * 0x20..0x7e, and `\`, as `\xHH`; everything else is itself.
 */
export function decodeDebugValue(text: string): Buffer {
  const bytes: number[] = []
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i)
    if (code === 0x5c) {
      const hex = /^x([0-9a-f]{2})/.exec(text.slice(i + 1))
      if (!hex) throw new Error(`bad escape in debug value ${JSON.stringify(text)} at ${i}`)
      bytes.push(parseInt(hex[1] as string, 16))
      i += 3
    } else if (code >= 0x20 && code <= 0x7e) {
      bytes.push(code)
    } else {
      throw new Error(`unescaped byte 0x${code.toString(16)} in debug value ${JSON.stringify(text)}`)
    }
  }
  return Buffer.from(bytes)
}

export interface DebugReport {
  readonly mode: string
  /** "cached", or "computed (REASON)" */
  readonly plan: string
  /** null for "-" */
  readonly loader: Buffer | null
  /** null for "-" */
  readonly libraryPath: Buffer | null
  /** the path exec'd, or the loader a chainload shim maps in */
  readonly exec: Buffer
  /** which of the two: the key of that line */
  readonly start: 'exec' | 'chainload'
  readonly argv: Buffer[]
}

/**
 * Parse the debug lines a shim named `name` wrote to stderr. Every stderr line
 * must be one of them (a stray line is an error), in the documented order.
 */
export function parseDebug(stderr: Buffer, name: string): DebugReport {
  const text = stderr.toString('latin1')
  if (!text.endsWith('\n')) throw new Error(`debug output does not end with a newline: ${JSON.stringify(text)}`)
  const lines = text.slice(0, -1).split('\n')
  const prefix = `${name}: `
  const fields: [string, string][] = lines.map((line) => {
    if (!line.startsWith(prefix)) throw new Error(`not a debug line of ${name}: ${JSON.stringify(line)}`)
    const rest = line.slice(prefix.length)
    const colon = rest.indexOf(': ')
    if (colon < 0) throw new Error(`debug line without a key: ${JSON.stringify(line)}`)
    return [rest.slice(0, colon), rest.slice(colon + 2)]
  })
  const keys = fields.map(([k]) => k)
  const start = keys[4] === 'chainload' ? 'chainload' : 'exec'
  const expected = ['mode', 'plan', 'loader', 'library-path', start, ...keys.slice(5).map((_, i) => `argv[${i}]`)]
  if (keys.join('\n') !== expected.join('\n')) {
    throw new Error(`debug keys ${JSON.stringify(keys)} are not ${JSON.stringify(expected)}`)
  }
  const value = (i: number) => (fields[i] as [string, string])[1]
  const orNull = (s: string) => (s === '-' ? null : decodeDebugValue(s))
  return {
    mode: value(0),
    plan: value(1),
    loader: orNull(value(2)),
    libraryPath: orNull(value(3)),
    exec: decodeDebugValue(value(4)),
    start,
    argv: fields.slice(5).map(([, v]) => decodeDebugValue(v)),
  }
}
