// The shim's configuration: its fields, their defaults, and the rules a value
// must pass before it may reach the C emitter. Pure: takes data, returns data.
//
// A config comes from a JSON file, from flags, or both (flags win). Every
// refusal is a ConfigError that names the field and says why.

import { ARCH_NAMES, isArchName, nativeArch, type ArchName } from './arch.js'
import { ConfigError } from './errors.js'

/** What is baked into a shim. Two equal ShimConfigs give byte-identical shims. */
export interface ShimConfig {
  /** program name, used in the shim's messages and output file names */
  readonly name: string
  /**
   * absolute path of the real binary on the host, or `$ORIGIN/REL`: REL
   * relative to the directory of the shim's own resolved executable, in the
   * caller's view (a build directory); see originRelative()
   */
  readonly target: string
  /** where a container sees the host's root */
  readonly hostRoot: string
  /** host library directories searched after the standard ones */
  readonly libDirs: readonly string[]
  /** pass --argv0 to host loaders that support it (glibc >= 2.33) */
  readonly argv0: boolean
  /** the environment variable that turns on the shim's debug output */
  readonly debugEnv: string
  /** variables the shim sets before exec, in order */
  readonly env: readonly (readonly [string, string])[]
  /**
   * How the shim starts the host loader: 'exec' (execve it) or 'chainload'
   * (map it into the shim's own process and jump to it, so /proc/self/exe
   * stays the shim). Absent means 'exec'; validateConfig() always sets it,
   * to 'chainload' (DEFAULTS.mode) when the config does not say.
   */
  readonly mode?: ShimMode
  /**
   * Refuse host mode: without a directory at hostRoot (other than "/") the
   * shim exits 127, naming hostRoot, instead of running the target as it is.
   * For shims that live only in images. Absent means false.
   */
  readonly requireHostRoot?: boolean
  /**
   * Keep the computed plan in $XDG_RUNTIME_DIR/hostshim/ and reuse it while
   * its witnesses hold (shim/README.md, section 10). Absent means on;
   * shimConfigOf() carries it only when false.
   */
  readonly planCache?: boolean
}

export type ShimMode = 'exec' | 'chainload'
export const SHIM_MODES = ['exec', 'chainload'] as const satisfies readonly ShimMode[]

/** A config plus the things that are not baked in: what to build, and where. */
export interface BuildConfig extends ShimConfig {
  readonly arch: readonly ArchName[]
  /**
   * The toolchain: "zig" (absent: the default), "$CC" (the compiler the CC
   * variable names), or a C compiler command (launcher/toolchain.ts).
   */
  readonly cc?: string
  readonly output?: string
  readonly outDir?: string
}

/** The fields a config file (or the flags) may carry, all optional. */
export interface RawConfig {
  name?: unknown
  target?: unknown
  hostRoot?: unknown
  libDirs?: unknown
  arch?: unknown
  argv0?: unknown
  debugEnv?: unknown
  env?: unknown
  mode?: unknown
  requireHostRoot?: unknown
  planCache?: unknown
  cc?: unknown
  output?: unknown
  outDir?: unknown
}

export const CONFIG_FIELDS = [
  'name',
  'target',
  'hostRoot',
  'libDirs',
  'arch',
  'argv0',
  'debugEnv',
  'env',
  'mode',
  'requireHostRoot',
  'planCache',
  'cc',
  'output',
  'outDir',
] as const satisfies readonly (keyof RawConfig)[]

export const DEFAULTS = {
  hostRoot: '/run/host',
  debugEnv: 'HOSTSHIM_DEBUG',
  argv0: true,
  /** where the architecture has it (shim/chainload.ts); elsewhere the shim execs */
  mode: 'chainload',
  planCache: true,
} as const satisfies { mode: ShimMode } & Record<string, unknown>

/** PATH_MAX less the NUL: the longest path the shim can hold. */
export const MAX_PATH_BYTES = 4095
const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*$/
const PROGRAM_NAME = /^[A-Za-z0-9_+][A-Za-z0-9._+-]{0,63}$/

function byteLength(s: string): number {
  return Buffer.byteLength(s, 'utf8')
}

/** A string the C emitter can carry: no NUL, well-formed Unicode. */
export function checkText(field: string, value: unknown): string {
  if (typeof value !== 'string') throw new ConfigError(field, `must be a string, got ${describe(value)}`)
  if (value.includes('\0')) throw new ConfigError(field, 'must not contain a NUL byte')
  if (!value.isWellFormed()) throw new ConfigError(field, 'is not well-formed Unicode (lone surrogate)')
  return value
}

/** An absolute, normalised-enough path of at most 4095 bytes. */
export function checkPath(field: string, value: unknown): string {
  const path = checkText(field, value)
  if (!path.startsWith('/')) throw new ConfigError(field, `must be an absolute path, got ${JSON.stringify(path)}`)
  if (byteLength(path) > MAX_PATH_BYTES) {
    throw new ConfigError(field, `is ${byteLength(path)} bytes long; the limit is ${MAX_PATH_BYTES}`)
  }
  return path.length > 1 ? path.replace(/\/+$/, '') || '/' : path
}

export function checkIdentifier(field: string, value: unknown): string {
  const s = checkText(field, value)
  if (!IDENTIFIER.test(s)) throw new ConfigError(field, `${JSON.stringify(s)} is not a name of the form [A-Za-z_][A-Za-z0-9_]*`)
  return s
}

function describe(value: unknown): string {
  if (value === null) return 'null'
  if (Array.isArray(value)) return 'an array'
  return typeof value === 'object' ? 'an object' : `${typeof value} ${JSON.stringify(value)}`
}

function checkName(value: unknown): string {
  const name = checkText('name', value)
  if (!PROGRAM_NAME.test(name)) {
    throw new ConfigError('name', `${JSON.stringify(name)} is not a program name (letters, digits, . _ + -, at most 64, not starting with . or -)`)
  }
  return name
}

/** The prefix of a target relative to the shim (the loader's own spelling for "this executable's directory"). */
export const ORIGIN_PREFIX = '$ORIGIN/'

/** The part after `$ORIGIN/` of a target relative to the shim, or null for an absolute target. */
export function originRelative(target: string): string | null {
  return target.startsWith(ORIGIN_PREFIX) ? target.slice(ORIGIN_PREFIX.length) : null
}

function checkOriginTarget(target: string): string {
  const rel = (originRelative(target) as string).replace(/\/+$/, '')
  if (rel === '') throw new ConfigError('target', `${JSON.stringify(target)} names no file after ${JSON.stringify(ORIGIN_PREFIX)}`)
  if (rel.startsWith('/')) throw new ConfigError('target', `${JSON.stringify(target)}: what follows ${JSON.stringify(ORIGIN_PREFIX)} must be a relative path`)
  const out = ORIGIN_PREFIX + rel
  if (byteLength(out) > MAX_PATH_BYTES) throw new ConfigError('target', `is ${byteLength(out)} bytes long; the limit is ${MAX_PATH_BYTES}`)
  return out
}

function checkTarget(value: unknown, hostRoot: string): string {
  const text = checkText('target', value)
  const origin = text.indexOf('$ORIGIN')
  const braced = text.indexOf('${ORIGIN}')
  if (braced >= 0 || (origin >= 0 && !text.startsWith(ORIGIN_PREFIX)) || (origin >= 0 && text.indexOf('$ORIGIN', 1) >= 0)) {
    throw new ConfigError('target', `${JSON.stringify(text)}: "$ORIGIN" may only begin the target, as ${JSON.stringify(ORIGIN_PREFIX + 'REL')} (REL relative to the shim's directory)`)
  }
  if (origin === 0) return checkOriginTarget(text)
  const target = checkPath('target', value)
  if (target === '/') throw new ConfigError('target', 'must name a file, not "/"')
  if (target === hostRoot || target.startsWith(`${hostRoot}/`)) {
    throw new ConfigError(
      'target',
      `is a path on the host, seen from the host: drop the ${JSON.stringify(hostRoot)} prefix (the shim adds it in containers)`,
    )
  }
  return target
}

function checkLibDirs(value: unknown): string[] {
  if (value === undefined) return []
  if (!Array.isArray(value)) throw new ConfigError('libDirs', `must be an array of absolute paths, got ${describe(value)}`)
  return value.map((dir, i) => {
    const path = checkPath(`libDirs[${i}]`, dir)
    if (/[:;$]/.test(path)) {
      throw new ConfigError(`libDirs[${i}]`, 'must not contain ":", ";" or "$" (the loader splits --library-path at the first two and expands the third)')
    }
    return path
  })
}

export function parseArchList(field: string, value: unknown): ArchName[] {
  const fallback = nativeArch() ?? 'x86_64'
  if (value === undefined) return [fallback]
  const items: unknown[] = typeof value === 'string' ? value.split(',').map((s) => s.trim()) : Array.isArray(value) ? value : [value]
  const out: ArchName[] = []
  for (const item of items) {
    if (typeof item !== 'string') throw new ConfigError(field, `must be an architecture name, got ${describe(item)}`)
    if (item === 'all') {
      for (const a of ARCH_NAMES) if (!out.includes(a)) out.push(a)
      continue
    }
    if (!isArchName(item)) {
      throw new ConfigError(field, `unknown architecture ${JSON.stringify(item)}; known: ${ARCH_NAMES.join(', ')}, all`)
    }
    if (!out.includes(item)) out.push(item)
  }
  if (out.length === 0) throw new ConfigError(field, 'names no architecture')
  return out
}

function checkEnv(value: unknown, debugEnv: string): [string, string][] {
  if (value === undefined) return []
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new ConfigError('env', `must be an object of NAME: value, got ${describe(value)}`)
  }
  return Object.entries(value as Record<string, unknown>).map(([key, val]) => {
    const name = checkIdentifier(`env.${key}`, key)
    if (name === debugEnv) throw new ConfigError(`env.${key}`, 'is the debug variable; setting it would turn debug output on for every run')
    return [name, checkText(`env.${key}`, val)]
  })
}

function checkMode(value: unknown): ShimMode {
  if (value === 'exec' || value === 'chainload') return value
  throw new ConfigError('mode', `must be ${SHIM_MODES.map((m) => JSON.stringify(m)).join(' or ')}, got ${describe(value)}`)
}

function checkCompiler(value: unknown): string {
  const cc = checkText('cc', value).trim()
  if (cc === '') throw new ConfigError('cc', 'must name a C compiler command, "$CC" or "zig", got an empty string')
  return cc
}

function checkBool(field: string, value: unknown, fallback: boolean): boolean {
  if (value === undefined) return fallback
  if (typeof value !== 'boolean') throw new ConfigError(field, `must be true or false, got ${describe(value)}`)
  return value
}

/** Validate a raw config (parsed JSON merged with flags) into a BuildConfig. */
export function validateConfig(raw: RawConfig): BuildConfig {
  for (const key of Object.keys(raw)) {
    if (!(CONFIG_FIELDS as readonly string[]).includes(key)) {
      throw new ConfigError(key, `is not a config field; known fields: ${CONFIG_FIELDS.join(', ')}`)
    }
  }
  if (raw.name === undefined) throw new ConfigError('name', 'is required')
  if (raw.target === undefined) throw new ConfigError('target', 'is required (the absolute path of the real binary on the host)')
  const hostRoot = raw.hostRoot === undefined ? DEFAULTS.hostRoot : checkPath('hostRoot', raw.hostRoot)
  if (hostRoot === '/') throw new ConfigError('hostRoot', 'must not be "/": the shim could never tell a container from the host')
  const debugEnv = raw.debugEnv === undefined ? DEFAULTS.debugEnv : checkIdentifier('debugEnv', raw.debugEnv)
  const config: BuildConfig = {
    name: checkName(raw.name),
    target: checkTarget(raw.target, hostRoot),
    hostRoot,
    libDirs: checkLibDirs(raw.libDirs),
    argv0: checkBool('argv0', raw.argv0, DEFAULTS.argv0),
    debugEnv,
    env: checkEnv(raw.env, debugEnv),
    arch: parseArchList('arch', raw.arch),
    mode: raw.mode === undefined ? DEFAULTS.mode : checkMode(raw.mode),
    ...(checkBool('requireHostRoot', raw.requireHostRoot, false) ? { requireHostRoot: true } : {}),
    planCache: checkBool('planCache', raw.planCache, DEFAULTS.planCache),
    ...(raw.cc === undefined ? {} : { cc: checkCompiler(raw.cc) }),
    ...(raw.output === undefined ? {} : { output: checkText('output', raw.output) }),
    ...(raw.outDir === undefined ? {} : { outDir: checkText('outDir', raw.outDir) }),
  }
  return config
}

/**
 * The part of a config that is baked into the shim, in a fixed key order.
 * `mode` appears only when it is 'chainload', `requireHostRoot` only when
 * true and `planCache` only when false, so that other configs (and their
 * config hashes) stay what they were before the fields existed.
 */
export function shimConfigOf(config: ShimConfig): ShimConfig {
  const { name, target, hostRoot, libDirs, argv0, debugEnv, env, mode, requireHostRoot, planCache } = config
  return {
    name,
    target,
    hostRoot,
    libDirs,
    argv0,
    debugEnv,
    env,
    ...(mode === 'chainload' ? { mode } : {}),
    ...(requireHostRoot === true ? { requireHostRoot } : {}),
    ...(planCache === false ? { planCache } : {}),
  }
}
