// Reading a config: the JSON file, the flags on top, and the built-in Toolbx
// example when neither names a program. The I/O half of config.ts.

import { readFileSync } from 'node:fs'
import { dirname, isAbsolute, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { validateConfig, type BuildConfig, type RawConfig } from './config.js'
import { ConfigError, IoError, ioError, q } from './errors.js'

/** Flags that map onto config fields (commander's camelCase names). */
export interface ConfigFlags {
  config?: string
  name?: string
  target?: string
  hostRoot?: string
  libDir?: string[]
  arch?: string
  argv0?: boolean
  debugEnv?: string
  env?: string[]
  mode?: string
  requireHostRoot?: boolean
  planCache?: boolean
  cc?: string
  output?: string
  outDir?: string
}

/** The directory hostshim is installed in (the one with its package.json). */
export function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url))
  for (;;) {
    try {
      const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { name?: string }
      if (pkg.name === 'hostshim') return dir
    } catch {
      // keep climbing
    }
    const up = dirname(dir)
    if (up === dir) throw new IoError('cannot find hostshim\'s own directory (package.json) to load the built-in example')
    dir = up
  }
}

export const EXAMPLE_CONFIG = join('examples', 'toolbox', 'hostshim.json')

/**
 * The built-in example's JSON text, put here by build/bundle.mjs (esbuild
 * `define`, read from EXAMPLE_CONFIG at build time), so the bundles and the
 * single executable need no examples/ directory next to them. Undefined when
 * running from source: then the file is read.
 */
declare const HOSTSHIM_BUILTIN_EXAMPLE: string | undefined

/** The built-in Toolbx example: embedded in a build, else read from the package. */
export function builtinExample(): RawConfig {
  if (typeof HOSTSHIM_BUILTIN_EXAMPLE === 'string') return parseConfigText(HOSTSHIM_BUILTIN_EXAMPLE, `(built-in) ${EXAMPLE_CONFIG}`)
  return readConfigFile(join(packageRoot(), EXAMPLE_CONFIG))
}

export function readConfigFile(path: string): RawConfig {
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch (error) {
    throw ioError(`cannot read config file ${q(path)}`, error)
  }
  const raw = parseConfigText(text, path)
  // Output paths in a file are relative to the file, not to where hostshim runs.
  for (const key of ['output', 'outDir'] as const) {
    const v = raw[key]
    if (typeof v === 'string' && !isAbsolute(v)) raw[key] = resolve(dirname(path), v)
  }
  return raw
}

function parseConfigText(text: string, path: string): RawConfig {
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch (error) {
    throw new ConfigError('config', `${q(path)} is not valid JSON: ${(error as Error).message}`)
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new ConfigError('config', `${q(path)} must hold a JSON object`)
  }
  return value as RawConfig
}

function parseEnvFlag(entries: readonly string[]): Record<string, string> {
  const env: Record<string, string> = {}
  for (const entry of entries) {
    const eq = entry.indexOf('=')
    if (eq <= 0) throw new ConfigError('env', `${q(entry)} is not NAME=VALUE`)
    env[entry.slice(0, eq)] = entry.slice(eq + 1)
  }
  return env
}

/**
 * The config from --config and the flags; flags win field by field. With
 * neither a config file nor --name/--target, the built-in Toolbx example.
 */
export function loadConfig(flags: ConfigFlags, cwd = process.cwd()): BuildConfig {
  return validateConfig(loadRawConfig(flags, cwd))
}

/** loadConfig before validation: for commands that fill in fields themselves (install). */
export function loadRawConfig(flags: ConfigFlags, cwd = process.cwd()): RawConfig {
  let raw: RawConfig = {}
  if (flags.config !== undefined) raw = readConfigFile(resolve(cwd, flags.config))
  else if (flags.name === undefined && flags.target === undefined) {
    raw = builtinExample()
    // The example says what to build; where it goes is the caller's cwd.
    delete raw.output
    delete raw.outDir
  }
  const fromFlags: RawConfig = {
    name: flags.name,
    target: flags.target,
    hostRoot: flags.hostRoot,
    libDirs: flags.libDir,
    arch: flags.arch,
    argv0: flags.argv0,
    debugEnv: flags.debugEnv,
    env: flags.env ? { ...(raw.env as Record<string, string> | undefined), ...parseEnvFlag(flags.env) } : undefined,
    mode: flags.mode,
    requireHostRoot: flags.requireHostRoot,
    planCache: flags.planCache,
    cc: flags.cc,
    output: flags.output,
    outDir: flags.outDir,
  }
  for (const [key, value] of Object.entries(fromFlags)) {
    if (value !== undefined) (raw as Record<string, unknown>)[key] = value
  }
  return raw
}
