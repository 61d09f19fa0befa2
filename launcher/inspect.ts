// inspect: what an ELF file needs to run, and, for a shim, what it runs.
// Pure: bytes in, a report out; the CLI reads the file and prints.

import { findNote, glibcVersionsRequired, parseElf } from './elf.js'
import { posix } from 'node:path'
import { originRelative, type ShimMode } from './config.js'
import { MARK_NOTE_NAME, MARK_NOTE_TYPE, parseMark, type ShimMark } from './mark.js'

export interface InspectReport {
  readonly file: string
  readonly class: string
  readonly byteOrder: string
  readonly machine: string
  readonly type: string
  readonly interpreter: string | null
  readonly interpreterError: string | null
  readonly needed: readonly string[]
  readonly rpath: string | null
  readonly runpath: string | null
  readonly static: boolean
  readonly glibcVersions: readonly string[]
  readonly versionsRequired: readonly string[]
  /** set for a hostshim shim */
  readonly shim: ShimMark | null
  /**
   * How a shim starts the host loader, from its ELF type: hostshim builds
   * chainload shims as static PIEs (DYN), exec shims as plain static
   * executables (EXEC). null for a file that is not a shim.
   */
  readonly shimMode: ShimMode | null
  /**
   * For a shim whose target is `$ORIGIN/REL`: where that is for this file,
   * REL joined to the directory of the file's resolved path (the shim
   * resolves REL's links and ".." as it walks); null otherwise.
   */
  readonly targetHere: string | null
  readonly warnings: readonly string[]
}

/** `realPath`: the file's resolved path (realpath), for a `$ORIGIN` target; `file` when not given. */
export function inspectFile(bytes: Uint8Array, file: string, realPath: string = file): InspectReport {
  const elf = parseElf(bytes, file)
  const note = findNote(elf, MARK_NOTE_NAME, MARK_NOTE_TYPE)
  const shim = note ? parseMark(note.desc) : null
  return {
    file,
    class: `ELF${elf.class}`,
    byteOrder: `${elf.byteOrder} endian`,
    machine: elf.machineName,
    type: elf.typeName,
    interpreter: elf.interpreter,
    interpreterError: elf.interpreterError,
    needed: elf.dynamic?.needed ?? [],
    rpath: elf.dynamic?.rpath ?? null,
    runpath: elf.dynamic?.runpath ?? null,
    static: elf.isStatic,
    glibcVersions: glibcVersionsRequired(elf),
    versionsRequired: elf.versionsRequired,
    shim,
    // Older marks have no mode: then only chainload shims were static PIEs.
    shimMode: shim ? (shim.mode ?? (elf.typeName === 'DYN' ? 'chainload' : 'exec')) : null,
    targetHere: shim ? originTarget(shim.target, realPath) : null,
    warnings: elf.warnings,
  }
}

function originTarget(target: string, realPath: string): string | null {
  const rel = originRelative(target)
  return rel === null ? null : posix.join(posix.dirname(realPath), rel)
}

export function formatInspect(r: InspectReport): string {
  const rows: [string, string][] = [
    ['file', r.file],
    ['class', `${r.class}, ${r.byteOrder}`],
    ['machine', r.machine],
    ['type', r.type],
    ['linking', r.static ? 'static' : 'dynamic'],
    ['interpreter', r.interpreter === null ? '-' : JSON.stringify(r.interpreter) + (r.interpreterError ? ` (the kernel would refuse it: ${r.interpreterError})` : '')],
    ['needed', r.needed.length ? r.needed.join(' ') : '-'],
    ['rpath', r.rpath ?? '-'],
    ['runpath', r.runpath ?? '-'],
    ['glibc', r.glibcVersions.length ? `${r.glibcVersions.join(' ')} (newest: ${r.glibcVersions.at(-1)})` : '-'],
  ]
  const other = r.versionsRequired.filter((v) => !v.startsWith('GLIBC_'))
  if (other.length) rows.push(['other versions', other.join(' ')])
  if (r.shim) {
    rows.push(['hostshim shim', `${r.shim.name} (hostshim ${r.shim.hostshim}, ${r.shim.arch})`])
    rows.push(['target', JSON.stringify(r.shim.target) + (r.targetHere === null ? '' : ` (next to the shim, in the caller's view: here ${JSON.stringify(r.targetHere)})`)])
    rows.push(['host root', JSON.stringify(r.shim.hostRoot)])
    if (r.shimMode) rows.push(['mode', r.shimMode === 'chainload' ? 'chainload (maps the host loader in-process)' : 'exec (execs the host loader)'])
    rows.push(['config hash', r.shim.config])
  }
  for (const w of r.warnings) rows.push(['warning', w])
  const width = Math.max(...rows.map(([k]) => k.length))
  return rows.map(([k, v]) => `${`${k}:`.padEnd(width + 2)}${v}\n`).join('')
}
