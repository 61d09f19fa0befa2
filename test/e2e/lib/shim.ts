// Shims for the end-to-end tests, made the way `hostshim generate` makes them
// (validateConfig, then generate), through hostshim's content-addressed
// compile cache kept next to the Debian trees, so a warm run starts no zig.

import { join } from 'node:path'
import { validateConfig, type ShimMode } from '../../../launcher/config.js'
import { generate } from '../../../launcher/generate.js'
import { loadZig, type Zig } from '../../../launcher/toolchain.js'
import { CACHE_DIR } from './debian.js'

/** Both ways a shim starts the host loader; every shim case runs in each. */
export { MODES } from '../../lib/shims.js'

export const SHIM_CACHE_DIR = join(CACHE_DIR, 'shim-cache')

let zig: Promise<Zig> | undefined

export interface Shim {
  readonly name: string
  readonly target: string
  readonly mode: ShimMode
  readonly path: string
  readonly bytes: number
  readonly cached: boolean
}

/** Generate the x86_64 shim of `mode` for `target` at `outDir/name`. */
export async function makeShim(name: string, target: string, outDir: string, mode: ShimMode): Promise<Shim> {
  const output = join(outDir, name)
  const config = validateConfig({ name, target, arch: 'x86_64', output, mode })
  zig ??= loadZig()
  const [built] = await generate(config, { toolchain: await zig, cacheDir: SHIM_CACHE_DIR })
  if (!built || built.path !== output) throw new Error(`generate wrote ${JSON.stringify(built?.path)}, not ${output}`)
  if (built.mode !== mode) throw new Error(`generate built a ${built.mode}-mode shim, not ${mode}${built.note ? `: ${built.note}` : ''}`)
  return { name, target, mode, path: output, bytes: built.bytes, cached: built.cached }
}
