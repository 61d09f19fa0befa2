// generate: config in, verified shims on disk out.
//
// Everything is built and verified before anything is written, so a failure
// on the third architecture leaves no file of the first two behind; each file
// is then written next to its destination and renamed into place.

import { createHash } from 'node:crypto'
import { dirname, resolve } from 'node:path'
import { ARCHES, type Arch, type ArchName } from './arch.js'
import { shimConfigOf, type BuildConfig, type ShimMode } from './config.js'
import { markOf, shimMark, type ShimMark } from './mark.js'
import { parseElf } from './elf.js'
import { ShimError, UsageError, ioError, q } from './errors.js'
import { compileShim, makeDirs, writeAtomic, type Toolchain } from './toolchain.js'
import { renderShim } from '../shim/template.js'
import { chainloadFallbackNote, configForArch, effectiveMode } from '../shim/chainload.js'

export const DEFAULT_OUT_DIR = 'out'

export interface BuiltShim {
  readonly arch: ArchName
  readonly path: string
  readonly bytes: number
  readonly sha256: string
  readonly cached: boolean
  /** how this shim starts the host loader (a chainload config falls back to exec where chainload is not implemented) */
  readonly mode: ShimMode
  /** set when the shim's mode is not the config's: why, for the user */
  readonly note?: string
}

/**
 * Check a compiled shim with hostshim's own ELF reader: static (no PT_INTERP,
 * no DT_NEEDED), an executable of the wanted machine, class and byte order.
 */
export function verifyShim(binary: Uint8Array, arch: Arch): void {
  const elf = parseElf(binary)
  const problems: string[] = []
  if (elf.machine !== arch.machine) problems.push(`machine is ${elf.machineName}, not ${arch.name}`)
  if (elf.class !== (arch.elfClass === 2 ? 64 : 32)) problems.push(`ELF class is ${elf.class}-bit`)
  if (elf.byteOrder !== (arch.byteOrder === 1 ? 'little' : 'big')) problems.push(`byte order is ${elf.byteOrder} endian`)
  if (elf.typeName !== 'EXEC' && elf.typeName !== 'DYN') problems.push(`type is ${elf.typeName}, not an executable`)
  if (elf.hasInterpreter) problems.push(`it has a PT_INTERP (${q(elf.interpreter ?? '')}): not static`)
  if (elf.dynamic && elf.dynamic.needed.length > 0) problems.push(`it needs shared libraries: ${elf.dynamic.needed.join(', ')}`)
  if (elf.kernelWouldReject) problems.push(`the kernel would refuse it: ${elf.kernelWouldReject}`)
  if (problems.length > 0) throw new ShimError(`the ${arch.name} shim failed verification: ${problems.join('; ')}`)
}

/**
 * The mark a shim built from `config` for `arch` carries: the config as the
 * shim is rendered from it for that architecture (shim/chainload.ts drops a
 * mode the architecture lacks), so the comparison is with what was built.
 */
export function expectedMark(config: BuildConfig, arch: Arch): ShimMark {
  return shimMark(configForArch(shimConfigOf(config), arch), arch)
}

/** The shim's own mark must say what was asked: a last check before it replaces anything. */
export function verifyMark(binary: Uint8Array, config: BuildConfig, arch: Arch): void {
  const want = expectedMark(config, arch)
  const got = markOf(binary)
  if (got === null) throw new ShimError(`the ${arch.name} shim carries no hostshim mark`)
  for (const key of Object.keys(want) as (keyof ShimMark)[]) {
    if (got[key] !== want[key]) throw new ShimError(`the ${arch.name} shim's mark says ${key} ${JSON.stringify(got[key])}, expected ${JSON.stringify(want[key])}`)
  }
}

/** Where each architecture's shim goes. */
export function outputPaths(config: BuildConfig, cwd = process.cwd()): Map<ArchName, string> {
  if (config.output !== undefined && config.arch.length > 1) {
    throw new UsageError(`--output names one file, but ${config.arch.length} architectures were asked for; use --out-dir`)
  }
  const paths = new Map<ArchName, string>()
  for (const arch of config.arch) {
    paths.set(
      arch,
      config.output !== undefined
        ? resolve(cwd, config.output)
        : resolve(cwd, config.outDir ?? DEFAULT_OUT_DIR, `${config.name}-${arch}`),
    )
  }
  return paths
}

export interface GenerateOptions {
  /** zig or a C compiler (launcher/toolchain.ts loadToolchain) */
  readonly toolchain: Toolchain
  readonly cacheDir: string
  readonly cwd?: string
  /** called before the compiler runs for real (not from the cache) */
  readonly onCompile?: (arch: Arch) => void
}

/** Render, compile (or take from the cache) and verify one shim; nothing is written. */
export async function buildVerifiedShim(
  config: BuildConfig,
  arch: Arch,
  options: Omit<GenerateOptions, 'cwd'>,
): Promise<{ binary: Buffer; cached: boolean; mode: ShimMode; note: string | null }> {
  const shim = shimConfigOf(config)
  const mode = effectiveMode(shim, arch)
  const source = renderShim(configForArch(shim, arch), arch)
  const { binary, cached } = await compileShim(options.toolchain, arch, source, options.cacheDir, options.onCompile, mode)
  verifyShim(binary, arch)
  verifyMark(binary, config, arch)
  return { binary, cached, mode, note: chainloadFallbackNote(shim, arch) }
}

export async function generate(config: BuildConfig, options: GenerateOptions): Promise<BuiltShim[]> {
  const paths = outputPaths(config, options.cwd)
  const built: ({ arch: Arch } & Awaited<ReturnType<typeof buildVerifiedShim>>)[] = []
  for (const name of config.arch) {
    const arch = ARCHES[name]
    built.push({ arch, ...(await buildVerifiedShim(config, arch, options)) })
  }
  const results: BuiltShim[] = []
  for (const { arch, binary, cached, mode, note } of built) {
    const path = paths.get(arch.name) as string
    try {
      await makeDirs(dirname(path))
    } catch (error) {
      throw ioError(`cannot make the directory of ${q(path)}`, error)
    }
    try {
      await writeAtomic(path, binary, 0o755)
    } catch (error) {
      throw ioError(`cannot write ${q(path)}`, error)
    }
    results.push({
      arch: arch.name,
      path,
      bytes: binary.length,
      sha256: createHash('sha256').update(binary).digest('hex'),
      cached,
      mode,
      ...(note === null ? {} : { note }),
    })
  }
  return results
}

/** The C source for each architecture, for `render`. */
export function renderAll(config: BuildConfig): Map<ArchName, string> {
  const shim = shimConfigOf(config)
  return new Map(config.arch.map((name) => [name, renderShim(configForArch(shim, ARCHES[name]), ARCHES[name])]))
}

