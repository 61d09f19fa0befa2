// The mark every shim carries: an ELF note owned by "hostshim" whose
// descriptor is a small JSON object. `inspect` shows it, `install` uses it to
// recognise its own shims, and the config hash tells two configs apart.

import { createHash } from 'node:crypto'
import { effectiveMode } from '../shim/chainload.js'
import type { Arch } from './arch.js'
import { shimConfigOf, type ShimConfig, type ShimMode } from './config.js'
import { findNote, isElf, parseElf } from './elf.js'
import { VERSION } from './version.js'

export const MARK_NOTE_NAME = 'hostshim'
/** n_type of the mark note: "HS" + 1 */
export const MARK_NOTE_TYPE = 0x48530001

export interface ShimMark {
  readonly hostshim: string
  readonly name: string
  readonly arch: string
  readonly target: string
  readonly hostRoot: string
  /** sha256 of the canonical JSON of the baked-in config */
  readonly config: string
  /**
   * how it starts the host loader. Absent from older marks: their chainload
   * shims alone were static PIEs, and inspect tells them apart by that.
   */
  readonly mode?: ShimMode
}

export function configHash(config: ShimConfig): string {
  return createHash('sha256').update(JSON.stringify(shimConfigOf(config))).digest('hex')
}

export function shimMark(config: ShimConfig, arch: Arch): ShimMark {
  return {
    hostshim: VERSION,
    name: config.name,
    arch: arch.name,
    target: config.target,
    hostRoot: config.hostRoot,
    config: configHash(config),
    mode: effectiveMode(config, arch),
  }
}

/** Read a mark back from a note's descriptor; null when it is not one. */
export function parseMark(desc: Uint8Array): ShimMark | null {
  const text = Buffer.from(desc).toString('utf8').replace(/\0+$/, '')
  try {
    const value = JSON.parse(text) as Partial<ShimMark>
    if (typeof value.hostshim !== 'string' || typeof value.target !== 'string' || typeof value.config !== 'string') return null
    // A mode this version does not know is left out, not taken for one.
    if (value.mode !== undefined && value.mode !== 'exec' && value.mode !== 'chainload') {
      const { mode: _unknown, ...rest } = value
      return rest as ShimMark
    }
    return value as ShimMark
  } catch {
    return null
  }
}

/** The mark of a hostshim shim, or null for any other file. */
export function markOf(bytes: Uint8Array): ShimMark | null {
  if (!isElf(bytes)) return null
  try {
    const note = findNote(parseElf(bytes), MARK_NOTE_NAME, MARK_NOTE_TYPE)
    return note ? parseMark(note.desc) : null
  } catch {
    return null
  }
}
