// Reading ELF files from memory. Pure: takes the bytes, returns data, never
// opens a file.
//
// Two callers need it: `inspect`, which shows what a file is and why the
// kernel would refuse it, and the plan model, which needs the first PT_INTERP
// exactly as Linux's fs/binfmt_elf.c reads it. So the reader throws only when
// the ELF header itself cannot be read, records the kernel's refusals as data
// (`kernelWouldReject`), and is forgiving about everything the kernel never
// looks at: a broken section header table, dynamic section, version table or
// note becomes a line in `warnings`, because stripped and hand-made binaries
// run fine without them.
//
// All four flavours (32/64-bit, little/big endian) go through one code path:
// an ElfReader knows the byte order, and struct layouts are per-class tables
// of [offset, width]. Every read is bounds-checked; a 64-bit value above
// Number.MAX_SAFE_INTEGER cannot be a real offset or size, so it is malformed.

import { archByMachine, type ArchName } from './arch.js'
import { ShimError, q } from './errors.js'

export type ElfClass = 32 | 64
export type ByteOrder = 'little' | 'big'

export interface ElfProgramHeader {
  /** p_type, e.g. 3 for PT_INTERP */
  readonly type: number
  /** `LOAD`, `INTERP`, `GNU_STACK`..., or `PT_0x...` when unknown */
  readonly typeName: string
  /** p_flags: 4 = read, 2 = write, 1 = execute */
  readonly flags: number
  readonly offset: number
  readonly vaddr: number
  readonly filesz: number
  readonly memsz: number
  readonly align: number
}

export interface ElfSection {
  /** from the section name string table (e_shstrndx); '' when unreadable */
  readonly name: string
  readonly type: number
  readonly flags: number
  readonly addr: number
  readonly offset: number
  readonly size: number
  readonly link: number
  readonly info: number
  readonly addralign: number
  readonly entsize: number
}

export interface ElfDynamic {
  /** DT_NEEDED, in file order */
  readonly needed: readonly string[]
  readonly soname: string | null
  readonly rpath: string | null
  readonly runpath: string | null
}

/** One Elf_Verneed entry: the versions this file needs from `file`. */
export interface ElfVersionNeed {
  readonly file: string
  readonly versions: readonly string[]
}

/** One Elf_Verdef entry: a version this file defines. */
export interface ElfVersionDefinition {
  readonly name: string
  /** vd_ndx, the index .gnu.version refers to */
  readonly index: number
  /** VER_FLG_BASE: the entry that names the file itself (its soname) */
  readonly base: boolean
  /** the versions this one inherits from (further Elf_Verdaux entries) */
  readonly parents: readonly string[]
}

export interface ElfNote {
  /** the owner, up to its NUL ("GNU", "hostshim") */
  readonly name: string
  readonly type: number
  /** a copy of the descriptor bytes */
  readonly desc: Uint8Array
  /** file offset of the note header; a note seen in a segment and a section is listed once */
  readonly offset: number
}

export interface ElfInfo {
  readonly class: ElfClass
  readonly byteOrder: ByteOrder
  /** EI_OSABI: 0 = System V, 3 = GNU/Linux... */
  readonly osabi: number
  readonly abiVersion: number
  /** e_type, e.g. 2 = ET_EXEC */
  readonly type: number
  /** `EXEC`, `DYN`, `REL`, `CORE`, `NONE`, or `ET_<n>` */
  readonly typeName: string
  readonly machine: number
  /** the hostshim architecture name when known (x86_64...), else `EM_<n>` */
  readonly machineName: string
  readonly arch: ArchName | null
  /** e_flags (ABI details such as ARM's float ABI) */
  readonly flags: number
  readonly entry: number
  readonly programHeaders: readonly ElfProgramHeader[]
  /**
   * The first PT_INTERP as the kernel would pass it to open_exec(): its bytes
   * up to the first NUL. Null when there is no PT_INTERP or its bytes cannot
   * be read. Set even when the kernel would refuse it: check
   * `interpreterError` before trusting it.
   */
  readonly interpreter: string | null
  /** why the kernel would refuse the first PT_INTERP, or null */
  readonly interpreterError: string | null
  /**
   * The first reason execve() would refuse this file, in the order
   * load_elf_binary() checks: e_type, the program header table, PT_INTERP.
   * The architecture is not judged here (it depends on the machine running
   * it); compare `arch` with the wanted one.
   */
  readonly kernelWouldReject: string | null
  /** has a PT_INTERP segment (valid or not) */
  readonly hasInterpreter: boolean
  /**
   * Runs without a loader: no PT_INTERP, and either no PT_DYNAMIC or a
   * static PIE. Static PIEs (and ld.so itself) carry PT_DYNAMIC only to
   * relocate themselves, so for "exec it directly or through a loader?" they
   * count as static.
   */
  readonly isStatic: boolean
  /**
   * ET_DYN with PT_DYNAMIC, no PT_INTERP and no DT_NEEDED: a program that
   * relocates itself (gcc -static-pie, ld.so). A shared library without
   * PT_INTERP usually has DT_NEEDED and so is neither static nor static-pie.
   */
  readonly staticPie: boolean
  /** null when the file has no dynamic section */
  readonly dynamic: ElfDynamic | null
  /** .gnu.version_r (DT_VERNEED), in file order */
  readonly versionsNeeded: readonly ElfVersionNeed[]
  /** every version name in versionsNeeded, unique, sorted by compareVersionNames */
  readonly versionsRequired: readonly string[]
  /** .gnu.version_d (DT_VERDEF), in file order, the base entry included */
  readonly versionDefinitions: readonly ElfVersionDefinition[]
  /** the non-base names of versionDefinitions, in file order */
  readonly versionsDefined: readonly string[]
  readonly notes: readonly ElfNote[]
  /** empty when the file has none (stripped) or they are unreadable */
  readonly sections: readonly ElfSection[]
  /** parts that could not be read; the rest of the info is still valid */
  readonly warnings: readonly string[]
}

const ELF_MAGIC = [0x7f, 0x45, 0x4c, 0x46] as const
const EI_CLASS = 4
const EI_DATA = 5
const EI_OSABI = 7
const EI_ABIVERSION = 8
const EI_NIDENT = 16

const ET_NAMES: Readonly<Record<number, string>> = { 0: 'NONE', 1: 'REL', 2: 'EXEC', 3: 'DYN', 4: 'CORE' }
const ET_EXEC = 2
const ET_DYN = 3

const PT_LOAD = 1
const PT_DYNAMIC = 2
const PT_INTERP = 3
const PT_NOTE = 4
const PT_NAMES: Readonly<Record<number, string>> = {
  0: 'NULL',
  1: 'LOAD',
  2: 'DYNAMIC',
  3: 'INTERP',
  4: 'NOTE',
  5: 'SHLIB',
  6: 'PHDR',
  7: 'TLS',
  0x6474e550: 'GNU_EH_FRAME',
  0x6474e551: 'GNU_STACK',
  0x6474e552: 'GNU_RELRO',
  0x6474e553: 'GNU_PROPERTY',
}

const SHT_DYNAMIC = 6
const SHT_NOTE = 7
const SHT_NOBITS = 8
const SHT_GNU_VERDEF = 0x6ffffffd
const SHT_GNU_VERNEED = 0x6ffffffe
const SHN_XINDEX = 0xffff

const DT_NULL = 0
const DT_NEEDED = 1
const DT_STRTAB = 5
const DT_STRSZ = 10
const DT_SONAME = 14
const DT_RPATH = 15
const DT_RUNPATH = 29
const DT_VERDEF = 0x6ffffffc
const DT_VERDEFNUM = 0x6ffffffd
const DT_VERNEED = 0x6ffffffe
const DT_VERNEEDNUM = 0x6fffffff

const VER_FLG_BASE = 1

// The kernel's limits in load_elf_binary()/load_elf_phdrs(). (Older kernels
// also capped the program header table at one page, ELF_MIN_ALIGN; current
// ones only at 64 KiB.)
const KERNEL_PATH_MAX = 4096
const KERNEL_MAX_PHDR_TABLE = 65536

type Width = 2 | 4 | 8
type Field = readonly [offset: number, width: Width]

type HeaderField =
  | 'type'
  | 'machine'
  | 'entry'
  | 'phoff'
  | 'shoff'
  | 'flags'
  | 'phentsize'
  | 'phnum'
  | 'shentsize'
  | 'shnum'
  | 'shstrndx'
type SectionField = 'nameOffset' | 'type' | 'flags' | 'addr' | 'offset' | 'size' | 'link' | 'info' | 'addralign' | 'entsize'

/** Where each field of each structure sits, per class. */
interface ClassLayout {
  readonly headerSize: number
  readonly header: Readonly<Record<HeaderField, Field>>
  readonly phentsize: number
  readonly ph: Readonly<Record<'type' | 'flags' | 'offset' | 'vaddr' | 'filesz' | 'memsz' | 'align', Field>>
  readonly shentsize: number
  readonly sh: Readonly<Record<SectionField, Field>>
  readonly dynentsize: number
}

const LAYOUT_32: ClassLayout = {
  headerSize: 52,
  header: {
    type: [16, 2],
    machine: [18, 2],
    entry: [24, 4],
    phoff: [28, 4],
    shoff: [32, 4],
    flags: [36, 4],
    phentsize: [42, 2],
    phnum: [44, 2],
    shentsize: [46, 2],
    shnum: [48, 2],
    shstrndx: [50, 2],
  },
  phentsize: 32,
  // Elf32_Phdr keeps p_flags after p_memsz; Elf64_Phdr moved it up for alignment.
  ph: { type: [0, 4], offset: [4, 4], vaddr: [8, 4], filesz: [16, 4], memsz: [20, 4], flags: [24, 4], align: [28, 4] },
  shentsize: 40,
  sh: {
    nameOffset: [0, 4],
    type: [4, 4],
    flags: [8, 4],
    addr: [12, 4],
    offset: [16, 4],
    size: [20, 4],
    link: [24, 4],
    info: [28, 4],
    addralign: [32, 4],
    entsize: [36, 4],
  },
  dynentsize: 8,
}

const LAYOUT_64: ClassLayout = {
  headerSize: 64,
  header: {
    type: [16, 2],
    machine: [18, 2],
    entry: [24, 8],
    phoff: [32, 8],
    shoff: [40, 8],
    flags: [48, 4],
    phentsize: [54, 2],
    phnum: [56, 2],
    shentsize: [58, 2],
    shnum: [60, 2],
    shstrndx: [62, 2],
  },
  phentsize: 56,
  ph: { type: [0, 4], flags: [4, 4], offset: [8, 8], vaddr: [16, 8], filesz: [32, 8], memsz: [40, 8], align: [48, 8] },
  shentsize: 64,
  sh: {
    nameOffset: [0, 4],
    type: [4, 4],
    flags: [8, 8],
    addr: [16, 8],
    offset: [24, 8],
    size: [32, 8],
    link: [40, 4],
    info: [44, 4],
    addralign: [48, 8],
    entsize: [56, 8],
  },
  dynentsize: 16,
}

function hex(value: number | bigint): string {
  return `0x${value.toString(16)}`
}

const utf8 = new TextDecoder('utf-8')
const strictUtf8 = new TextDecoder('utf-8', { fatal: true })

/** Bounds-checked reads of one file's bytes in its byte order. */
class ElfReader {
  private readonly view: DataView
  readonly size: number

  constructor(
    readonly bytes: Uint8Array,
    private readonly littleEndian: boolean,
  ) {
    // A Node Buffer is often a window into a larger pooled ArrayBuffer.
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
    this.size = bytes.byteLength
  }

  /** Whether [offset, offset + length) lies inside the file. */
  contains(offset: number, length: number): boolean {
    const sane = Number.isSafeInteger(offset) && Number.isSafeInteger(length) && offset >= 0 && length >= 0
    return sane && offset + length <= this.size
  }

  uint(offset: number, width: Width, what: string): number {
    const value = this.uintIfSafe(offset, width, what)
    if (value === null) {
      const raw = this.view.getBigUint64(offset, this.littleEndian)
      throw new ShimError(`${what} is ${hex(raw)}, too large to be an offset, size or address in a real file`)
    }
    return value
  }

  /** Like uint, but a 64-bit value above Number.MAX_SAFE_INTEGER gives null. */
  uintIfSafe(offset: number, width: Width, what: string): number | null {
    if (!this.contains(offset, width)) {
      throw new ShimError(`${what} at offset ${hex(offset)} lies past the end of the file (${this.size} bytes)`)
    }
    switch (width) {
      case 2:
        return this.view.getUint16(offset, this.littleEndian)
      case 4:
        return this.view.getUint32(offset, this.littleEndian)
      case 8: {
        const value = this.view.getBigUint64(offset, this.littleEndian)
        return value > BigInt(Number.MAX_SAFE_INTEGER) ? null : Number(value)
      }
    }
  }

  field(base: number, [offset, width]: Field, what: string): number {
    return this.uint(base + offset, width, what)
  }
}

/** The bytes before the first NUL (all of them when there is none). */
function untilNul(bytes: Uint8Array): Uint8Array {
  const nul = bytes.indexOf(0)
  return nul < 0 ? bytes : bytes.subarray(0, nul)
}

/** A string table: a region of NUL-terminated strings addressed by offset. */
class StringTable {
  private constructor(
    private readonly region: Uint8Array,
    private readonly what: string,
  ) {}

  /** The table at [offset, offset + size), or null when that is not all in the file. */
  static at(reader: ElfReader, offset: number, size: number, what: string): StringTable | null {
    return reader.contains(offset, size) ? new StringTable(reader.bytes.subarray(offset, offset + size), what) : null
  }

  get(index: number): string {
    const size = this.region.length
    if (index >= size) throw new ShimError(`${this.what}: string ${index} lies past its end (${size} bytes)`)
    const region = this.region.subarray(index)
    const nul = region.indexOf(0)
    if (nul < 0) throw new ShimError(`${this.what}: string ${index} is not NUL-terminated`)
    return utf8.decode(region.subarray(0, nul))
  }
}

/** Cheap check for the ELF magic; says nothing about the rest of the header. */
export function isElf(bytes: Uint8Array): boolean {
  return bytes.length >= ELF_MAGIC.length && ELF_MAGIC.every((byte, i) => bytes[i] === byte)
}

/**
 * Reads an ELF file's identity, program headers, interpreter, dynamic
 * section, symbol versions, notes and section headers. Throws ShimError only
 * when the ELF header itself is unreadable (not ELF, truncated, unknown class
 * or byte order, a value too large to be real); `fileName`, when given,
 * prefixes the message.
 */
export function parseElf(bytes: Uint8Array, fileName?: string): ElfInfo {
  try {
    return readElf(bytes)
  } catch (err) {
    if (fileName !== undefined && err instanceof ShimError) {
      throw new ShimError(`${q(fileName)}: ${err.message}`, { cause: err })
    }
    throw err
  }
}

interface Header {
  readonly layout: ClassLayout
  readonly elfClass: ElfClass
  readonly type: number
  readonly machine: number
  readonly phoff: number
  readonly phentsize: number
  readonly phnum: number
}

function readElf(bytes: Uint8Array): ElfInfo {
  if (!isElf(bytes)) {
    const shown = Array.from(bytes.subarray(0, 4), (b) => b.toString(16).padStart(2, '0')).join(' ')
    throw new ShimError(`not an ELF file (starts with ${shown ? shown : 'nothing: it is empty'})`)
  }
  if (bytes.length < EI_NIDENT) throw new ShimError(`truncated ELF file: ${bytes.length} bytes, shorter than e_ident`)
  const classByte = bytes[EI_CLASS]
  const dataByte = bytes[EI_DATA]
  if (classByte !== 1 && classByte !== 2) throw new ShimError(`unknown ELF class ${classByte} (EI_CLASS must be 1 or 2)`)
  if (dataByte !== 1 && dataByte !== 2) throw new ShimError(`unknown ELF byte order ${dataByte} (EI_DATA must be 1 or 2)`)
  const elfClass: ElfClass = classByte === 1 ? 32 : 64
  const layout = elfClass === 32 ? LAYOUT_32 : LAYOUT_64
  if (bytes.length < layout.headerSize) {
    throw new ShimError(`truncated ELF file: ${bytes.length} bytes, a ${elfClass}-bit ELF header needs ${layout.headerSize}`)
  }
  const reader = new ElfReader(bytes, dataByte === 1)
  const h = layout.header
  const header: Header = {
    layout,
    elfClass,
    type: reader.field(0, h.type, 'e_type'),
    machine: reader.field(0, h.machine, 'e_machine'),
    phoff: reader.field(0, h.phoff, 'e_phoff'),
    phentsize: reader.field(0, h.phentsize, 'e_phentsize'),
    phnum: reader.field(0, h.phnum, 'e_phnum'),
  }
  const entry = reader.field(0, h.entry, 'e_entry')
  const flags = reader.field(0, h.flags, 'e_flags')
  const warnings: string[] = []
  const arch = archByMachine(header.machine, classByte, dataByte)

  const tableProblem = programHeaderTableProblem(reader, header)
  const programHeaders = readProgramHeaders(reader, header, tableProblem !== null, warnings)
  const firstInterp = programHeaders.find((p) => p.type === PT_INTERP)
  const interp = firstInterp ? readInterpreter(reader, firstInterp, warnings) : { interpreter: null, error: null }
  const typeProblem =
    header.type === ET_EXEC || header.type === ET_DYN
      ? null
      : `e_type is ${typeNameOf(header.type)}, not EXEC or DYN: the kernel does not execute it`

  const sections = guarded('section headers', warnings, () => readSectionHeaders(reader, header, warnings)) ?? []
  const parts: ElfParts = { reader, layout, segments: programHeaders, sections, warnings }
  const dynamic = guarded('dynamic section', warnings, () => readDynamic(parts))
  const versionsNeeded = guarded(VERSION_NEEDS.part, warnings, () => readVersionNeeds(parts, dynamic)) ?? []
  const versionDefinitions = guarded(VERSION_DEFINITIONS.part, warnings, () => readVersionDefinitions(parts, dynamic)) ?? []
  const notes = readNotes(parts)

  const hasInterpreter = firstInterp !== undefined
  const hasDynamic = programHeaders.some((p) => p.type === PT_DYNAMIC)
  const staticPie = !hasInterpreter && hasDynamic && header.type === ET_DYN && (dynamic?.info.needed.length ?? 0) === 0

  return {
    class: elfClass,
    byteOrder: dataByte === 1 ? 'little' : 'big',
    osabi: bytes[EI_OSABI] ?? 0,
    abiVersion: bytes[EI_ABIVERSION] ?? 0,
    type: header.type,
    typeName: typeNameOf(header.type),
    machine: header.machine,
    machineName: arch ? arch.name : `EM_${header.machine}`,
    arch: arch ? arch.name : null,
    flags,
    entry,
    programHeaders,
    interpreter: interp.interpreter,
    interpreterError: interp.error,
    kernelWouldReject: typeProblem ?? tableProblem ?? interp.error,
    hasInterpreter,
    isStatic: !hasInterpreter && (!hasDynamic || staticPie),
    staticPie,
    dynamic: dynamic ? dynamic.info : null,
    versionsNeeded,
    versionsRequired: [...new Set(versionsNeeded.flatMap((n) => n.versions))].sort(compareVersionNames),
    versionDefinitions,
    versionsDefined: versionDefinitions.filter((d) => !d.base).map((d) => d.name),
    notes,
    sections,
    warnings,
  }
}

function typeNameOf(type: number): string {
  return ET_NAMES[type] ?? `ET_${type}`
}

/** Runs one optional part of the parse; its ShimError becomes a warning. */
function guarded<T>(part: string, warnings: string[], read: () => T): T | null {
  try {
    return read()
  } catch (err) {
    if (!(err instanceof ShimError)) throw err
    warnings.push(`${part}: ${err.message}`)
    return null
  }
}

// load_elf_phdrs(): the entry size must be the kernel's own struct size, the
// table must hold at least one entry and at most 64 KiB, and elf_read() must
// be able to read all of it (a short read is -EIO rather than -ENOEXEC, but
// the exec fails all the same).
function programHeaderTableProblem(reader: ElfReader, header: Header): string | null {
  const expected = header.layout.phentsize
  if (header.phentsize !== expected) {
    return `e_phentsize is ${header.phentsize}, not ${expected} (the size of an ELF${header.elfClass} program header)`
  }
  if (header.phnum === 0) return 'e_phnum is 0: no program headers'
  const tableSize = header.phnum * expected
  if (tableSize > KERNEL_MAX_PHDR_TABLE) {
    return `program header table is ${tableSize} bytes (e_phnum ${header.phnum}), over the kernel's limit of ${KERNEL_MAX_PHDR_TABLE}`
  }
  if (!reader.contains(header.phoff, tableSize)) {
    return `program header table (${tableSize} bytes at offset ${hex(header.phoff)}) lies past the end of the file (${reader.size} bytes)`
  }
  return null
}

// Reads the program headers. When the kernel would refuse the table anyway,
// reads as many as make sense (so `inspect` can still show them) and stops at
// the first that is cut off or absurd: past a bogus e_phnum lies other data.
// An entry larger than the struct is stepped over by e_phentsize; a smaller
// one cannot be read at all. In a table the kernel accepts, an absurd value is
// a malformed file and throws.
function readProgramHeaders(reader: ElfReader, header: Header, bestEffort: boolean, warnings: string[]): ElfProgramHeader[] {
  const { layout, phentsize, phnum, phoff } = header
  if (phnum === 0) return []
  if (phentsize < layout.phentsize) {
    warnings.push(`program headers: e_phentsize ${phentsize} is smaller than an ELF${header.elfClass} program header; not read`)
    return []
  }
  const headers: ElfProgramHeader[] = []
  for (let i = 0; i < phnum; i++) {
    const base = phoff + i * phentsize
    if (!reader.contains(base, layout.phentsize)) {
      warnings.push(`program headers: the table is cut off by the end of the file after ${i} of ${phnum} entries`)
      break
    }
    try {
      headers.push(readProgramHeader(reader, layout, base, i))
    } catch (err) {
      if (!(bestEffort && err instanceof ShimError)) throw err
      warnings.push(`program headers: stopped after ${i} of ${phnum} entries: ${err.message}`)
      break
    }
  }
  return headers
}

function readProgramHeader(reader: ElfReader, layout: ClassLayout, base: number, index: number): ElfProgramHeader {
  const read = (field: Field, name: string) => reader.field(base, field, `program header ${index} ${name}`)
  const type = read(layout.ph.type, 'p_type')
  return {
    type,
    typeName: PT_NAMES[type] ?? `PT_${hex(type)}`,
    flags: read(layout.ph.flags, 'p_flags'),
    offset: read(layout.ph.offset, 'p_offset'),
    vaddr: read(layout.ph.vaddr, 'p_vaddr'),
    filesz: read(layout.ph.filesz, 'p_filesz'),
    memsz: read(layout.ph.memsz, 'p_memsz'),
    align: read(layout.ph.align, 'p_align'),
  }
}

// load_elf_binary() takes the FIRST PT_INTERP and stops looking: 2 <= p_filesz
// <= PATH_MAX, the bytes must all be read, and the last one must be NUL. The
// path it then opens ends at the first NUL, so an embedded NUL truncates it
// silently instead of being refused.
function readInterpreter(
  reader: ElfReader,
  segment: ElfProgramHeader,
  warnings: string[],
): { interpreter: string | null; error: string | null } {
  const { offset, filesz } = segment
  const readable = filesz > 0 && reader.contains(offset, filesz)
  const bytes = readable ? reader.bytes.subarray(offset, offset + filesz) : null
  let interpreter: string | null = null
  if (bytes) {
    const path = untilNul(bytes)
    try {
      interpreter = strictUtf8.decode(path)
    } catch {
      interpreter = utf8.decode(path)
      warnings.push(`PT_INTERP is not valid UTF-8; shown with U+FFFD in place of the bad bytes: ${q(interpreter)}`)
    }
  }
  let error: string | null = null
  if (filesz < 2 || filesz > KERNEL_PATH_MAX) {
    error = `PT_INTERP p_filesz is ${filesz}; the kernel accepts 2 to ${KERNEL_PATH_MAX} bytes`
  } else if (!bytes) {
    error = `PT_INTERP (${filesz} bytes at offset ${hex(offset)}) lies past the end of the file (${reader.size} bytes)`
  } else if (bytes[filesz - 1] !== 0) {
    error = 'PT_INTERP does not end with a NUL byte'
  } else if (interpreter === '') {
    // Accepted by the header checks, but open_exec("") fails with ENOENT.
    error = 'PT_INTERP is an empty path'
  }
  return { interpreter, error }
}

function readSectionHeaders(reader: ElfReader, header: Header, warnings: string[]): ElfSection[] {
  const { layout } = header
  const shoff = reader.field(0, layout.header.shoff, 'e_shoff')
  const shentsize = reader.field(0, layout.header.shentsize, 'e_shentsize')
  let shnum = reader.field(0, layout.header.shnum, 'e_shnum')
  let shstrndx = reader.field(0, layout.header.shstrndx, 'e_shstrndx')
  if (shoff === 0) return []
  if (shentsize !== layout.shentsize) {
    throw new ShimError(`e_shentsize is ${shentsize}, not ${layout.shentsize}; not read`)
  }
  const sh = layout.sh
  // Extended numbering (gABI): with 0xff00 or more sections, e_shnum is 0 and
  // e_shstrndx is SHN_XINDEX; the real values sit in section 0.
  if (shnum === 0) shnum = reader.field(shoff, sh.size, 'section 0 sh_size')
  if (shstrndx === SHN_XINDEX) shstrndx = reader.field(shoff, sh.link, 'section 0 sh_link')
  if (!reader.contains(shoff, shnum * shentsize)) {
    throw new ShimError(`the table (${shnum} entries at offset ${hex(shoff)}) lies past the end of the file (${reader.size} bytes)`)
  }
  const raw = Array.from({ length: shnum }, (_, i) => {
    const base = shoff + i * shentsize
    const read = (field: Field, name: string) => reader.field(base, field, `section ${i} ${name}`)
    return {
      nameOffset: read(sh.nameOffset, 'sh_name'),
      type: read(sh.type, 'sh_type'),
      flags: read(sh.flags, 'sh_flags'),
      addr: read(sh.addr, 'sh_addr'),
      offset: read(sh.offset, 'sh_offset'),
      size: read(sh.size, 'sh_size'),
      link: read(sh.link, 'sh_link'),
      info: read(sh.info, 'sh_info'),
      addralign: read(sh.addralign, 'sh_addralign'),
      entsize: read(sh.entsize, 'sh_entsize'),
    }
  })
  // Names are a nicety: a bad e_shstrndx or name offset leaves names empty.
  const names = shstrndx === 0 ? null : sectionStrings(reader, raw[shstrndx], 'section name table')
  if (shstrndx !== 0 && !names) {
    warnings.push(`section headers: e_shstrndx ${shstrndx} is not a readable string table; section names left empty`)
  }
  let nameProblem: string | null = null
  const sections = raw.map(({ nameOffset, ...rest }) => {
    let name = ''
    if (names) {
      try {
        name = names.get(nameOffset)
      } catch (err) {
        if (!(err instanceof ShimError)) throw err
        nameProblem ??= err.message
      }
    }
    return { name, ...rest }
  })
  if (nameProblem) warnings.push(`section headers: ${nameProblem}; that name left empty`)
  return sections
}

/** What the optional parts of the parse (dynamic, versions, notes) read from. */
interface ElfParts {
  readonly reader: ElfReader
  readonly layout: ClassLayout
  readonly segments: readonly ElfProgramHeader[]
  readonly sections: readonly ElfSection[]
  readonly warnings: string[]
}

/** A virtual address's file offset: through PT_LOAD first, then section headers. */
function fileOffsetOf({ segments, sections }: ElfParts, address: number, length: number): number | null {
  for (const p of segments) {
    if (p.type === PT_LOAD && address >= p.vaddr && address + length <= p.vaddr + p.filesz) {
      return p.offset + (address - p.vaddr)
    }
  }
  for (const s of sections) {
    if (s.addr !== 0 && s.type !== SHT_NOBITS && address >= s.addr && address + length <= s.addr + s.size) {
      return s.offset + (address - s.addr)
    }
  }
  return null
}

interface DynamicTable {
  readonly info: ElfDynamic
  /** the tags this reader uses, first occurrence (DT_NEEDED is in info) */
  readonly values: ReadonlyMap<number, number>
  /** DT_STRTAB as a string table, when it could be found */
  readonly strings: StringTable | null
}

// The loader finds the dynamic section through PT_DYNAMIC, so that comes
// first; SHT_DYNAMIC is the fall-back for files whose program headers do not
// say. Strings come from DT_STRTAB (an address, mapped through PT_LOAD), or
// the section the dynamic section links to.
function readDynamic(parts: ElfParts): DynamicTable | null {
  const { reader, layout, segments, sections, warnings } = parts
  const segment = segments.find((p) => p.type === PT_DYNAMIC)
  const section = sections.find((s) => s.type === SHT_DYNAMIC)
  let region: { offset: number; size: number } | null = null
  if (segment && reader.contains(segment.offset, segment.filesz)) {
    region = { offset: segment.offset, size: segment.filesz }
  } else if (section && reader.contains(section.offset, section.size)) {
    if (segment) warnings.push('dynamic section: PT_DYNAMIC lies past the end of the file; read SHT_DYNAMIC instead')
    region = { offset: section.offset, size: section.size }
  } else if (segment || section) {
    throw new ShimError('it lies past the end of the file')
  } else {
    return null
  }

  const values = new Map<number, number>()
  const neededOffsets: number[] = []
  const wordWidth: Width = layout.dynentsize === 16 ? 8 : 4
  for (let at = region.offset; at + layout.dynentsize <= region.offset + region.size; at += layout.dynentsize) {
    // d_tag is signed and may be anything; every tag this reader wants is
    // small, so one too large for a number is simply some other tag.
    const tag = reader.uintIfSafe(at, wordWidth, 'd_tag') ?? -1
    if (tag === DT_NULL) break
    if (tag === DT_NEEDED) neededOffsets.push(reader.uint(at + wordWidth, wordWidth, 'DT_NEEDED'))
    else if (WANTED_TAGS.has(tag) && !values.has(tag)) {
      values.set(tag, reader.uint(at + wordWidth, wordWidth, `d_val of tag ${hex(tag)}`))
    }
  }

  const strings = dynamicStrings(parts, values, section)
  const stringAt = (offset: number, tagName: string): string => {
    if (!strings) throw new ShimError(`${tagName} present but DT_STRTAB cannot be found in the file`)
    return strings.get(offset)
  }
  const optionalString = (tag: number, tagName: string): string | null => {
    const offset = values.get(tag)
    return offset === undefined ? null : stringAt(offset, tagName)
  }
  return {
    info: {
      needed: neededOffsets.map((offset) => stringAt(offset, 'DT_NEEDED')),
      soname: optionalString(DT_SONAME, 'DT_SONAME'),
      rpath: optionalString(DT_RPATH, 'DT_RPATH'),
      runpath: optionalString(DT_RUNPATH, 'DT_RUNPATH'),
    },
    values,
    strings,
  }
}

const WANTED_TAGS: ReadonlySet<number> = new Set([
  DT_STRTAB,
  DT_STRSZ,
  DT_SONAME,
  DT_RPATH,
  DT_RUNPATH,
  DT_VERDEF,
  DT_VERDEFNUM,
  DT_VERNEED,
  DT_VERNEEDNUM,
])

function dynamicStrings(
  parts: ElfParts,
  values: ReadonlyMap<number, number>,
  dynamicSection: ElfSection | undefined,
): StringTable | null {
  const address = values.get(DT_STRTAB)
  const size = values.get(DT_STRSZ)
  if (address !== undefined && size !== undefined) {
    const offset = fileOffsetOf(parts, address, size)
    const table = offset === null ? null : StringTable.at(parts.reader, offset, size, 'DT_STRTAB')
    if (table) return table
  }
  return dynamicSection ? sectionStrings(parts.reader, parts.sections[dynamicSection.link]) : null
}

/** A section's contents as a string table, when it has any in the file. */
function sectionStrings(
  reader: ElfReader,
  section: (Pick<ElfSection, 'type' | 'offset' | 'size'> & { readonly name?: string }) | undefined,
  what = `string table ${q(section?.name ?? '')}`,
): StringTable | null {
  if (!section || section.type === SHT_NOBITS) return null
  return StringTable.at(reader, section.offset, section.size, what)
}

interface VersionTable {
  readonly offset: number
  readonly count: number
  readonly strings: StringTable
}

interface VersionTableKind {
  /** how warnings name it */
  readonly part: string
  readonly addressTag: number
  readonly countTag: number
  readonly tagName: string
  readonly sectionType: number
}

const VERSION_NEEDS: VersionTableKind = {
  part: 'version needs (.gnu.version_r)',
  addressTag: DT_VERNEED,
  countTag: DT_VERNEEDNUM,
  tagName: 'DT_VERNEED',
  sectionType: SHT_GNU_VERNEED,
}

const VERSION_DEFINITIONS: VersionTableKind = {
  part: 'version definitions (.gnu.version_d)',
  addressTag: DT_VERDEF,
  countTag: DT_VERDEFNUM,
  tagName: 'DT_VERDEF',
  sectionType: SHT_GNU_VERDEF,
}

// The loader finds version tables through DT_VERNEED/DT_VERDEF (addresses)
// and their *NUM counts; the section headers say the same with sh_info as the
// count and sh_link naming the string table. Prefer what the loader uses.
function locateVersionTable(parts: ElfParts, dynamic: DynamicTable | null, kind: VersionTableKind): VersionTable | null {
  const address = dynamic?.values.get(kind.addressTag)
  const count = dynamic?.values.get(kind.countTag)
  if (address !== undefined && count !== undefined && dynamic?.strings) {
    const offset = fileOffsetOf(parts, address, 1)
    if (offset !== null) return { offset, count, strings: dynamic.strings }
  }
  const section = parts.sections.find((s) => s.type === kind.sectionType)
  const strings = section ? sectionStrings(parts.reader, parts.sections[section.link]) : null
  if (section && strings) return { offset: section.offset, count: section.info, strings }
  if (address !== undefined) {
    throw new ShimError(`${kind.tagName} ${hex(address)} cannot be found in the file (or its count or string table is missing)`)
  }
  if (section) throw new ShimError(`section ${q(section.name)} has no readable string table (sh_link ${section.link})`)
  return null
}

// Elf_Verneed and Elf_Vernaux have the same layout in both classes:
//   Verneed: vn_version u16, vn_cnt u16, vn_file u32, vn_aux u32, vn_next u32
//   Vernaux: vna_hash u32, vna_flags u16, vna_other u16, vna_name u32, vna_next u32
// Offsets chain relative to the current entry. The loop count is bounded by
// the file size too, so a cyclic chain with a huge count cannot spin.
function readVersionNeeds(parts: ElfParts, dynamic: DynamicTable | null): ElfVersionNeed[] {
  const table = locateVersionTable(parts, dynamic, VERSION_NEEDS)
  if (!table) return []
  const { reader } = parts
  const { strings } = table
  const needs: ElfVersionNeed[] = []
  const maxEntries = Math.min(table.count, Math.floor(reader.size / 16))
  let at = table.offset
  for (let i = 0; i < maxEntries; i++) {
    const version = reader.uint(at, 2, 'vn_version')
    if (version !== 1) throw new ShimError(`entry ${i} has vn_version ${version}, expected 1`)
    const auxCount = reader.uint(at + 2, 2, 'vn_cnt')
    const file = strings.get(reader.uint(at + 4, 4, 'vn_file'))
    const versions: string[] = []
    let aux = at + reader.uint(at + 8, 4, 'vn_aux')
    for (let j = 0; j < auxCount; j++) {
      versions.push(strings.get(reader.uint(aux + 8, 4, 'vna_name')))
      const next = reader.uint(aux + 12, 4, 'vna_next')
      if (next === 0) break
      aux += next
    }
    needs.push({ file, versions })
    const next = reader.uint(at + 12, 4, 'vn_next')
    if (next === 0) break
    at += next
  }
  return needs
}

//   Verdef:  vd_version u16, vd_flags u16, vd_ndx u16, vd_cnt u16, vd_hash u32, vd_aux u32, vd_next u32
//   Verdaux: vda_name u32, vda_next u32
// The first Verdaux names the version; any further ones name its parents.
function readVersionDefinitions(parts: ElfParts, dynamic: DynamicTable | null): ElfVersionDefinition[] {
  const table = locateVersionTable(parts, dynamic, VERSION_DEFINITIONS)
  if (!table) return []
  const { reader } = parts
  const { strings } = table
  const definitions: ElfVersionDefinition[] = []
  const maxEntries = Math.min(table.count, Math.floor(reader.size / 20))
  let at = table.offset
  for (let i = 0; i < maxEntries; i++) {
    const version = reader.uint(at, 2, 'vd_version')
    if (version !== 1) throw new ShimError(`entry ${i} has vd_version ${version}, expected 1`)
    const flags = reader.uint(at + 2, 2, 'vd_flags')
    const index = reader.uint(at + 4, 2, 'vd_ndx')
    const auxCount = reader.uint(at + 6, 2, 'vd_cnt')
    const names: string[] = []
    let aux = at + reader.uint(at + 12, 4, 'vd_aux')
    for (let j = 0; j < auxCount; j++) {
      names.push(strings.get(reader.uint(aux, 4, 'vda_name')))
      const next = reader.uint(aux + 4, 4, 'vda_next')
      if (next === 0) break
      aux += next
    }
    const [name, ...parents] = names
    if (name === undefined) throw new ShimError(`entry ${i} (index ${index}) has no name`)
    definitions.push({ name, index, base: (flags & VER_FLG_BASE) !== 0, parents })
    const next = reader.uint(at + 16, 4, 'vd_next')
    if (next === 0) break
    at += next
  }
  return definitions
}

function alignUp(value: number, alignment: number): number {
  return Math.ceil(value / alignment) * alignment
}

// Notes come from PT_NOTE segments (what a stripped file keeps) and SHT_NOTE
// sections (which also hold notes no segment maps, such as annobin's). Most
// notes are in both; each is listed once, by file offset.
function readNotes({ reader, segments, sections, warnings }: ElfParts): ElfNote[] {
  const regions = [
    ...segments
      .filter((p) => p.type === PT_NOTE)
      .map((p) => ({ what: `PT_NOTE at offset ${hex(p.offset)}`, offset: p.offset, size: p.filesz, align: p.align })),
    ...sections
      .filter((s) => s.type === SHT_NOTE)
      .map((s) => ({ what: `note section ${q(s.name)}`, offset: s.offset, size: s.size, align: s.addralign })),
  ]
  const notes: ElfNote[] = []
  const seen = new Set<number>()
  for (const region of regions) guarded(region.what, warnings, () => readNoteRegion(reader, region, seen, notes))
  return notes
}

// Elf_Nhdr is three u32 in both classes: n_namesz (with its NUL), n_descsz,
// n_type. Linux pads name and descriptor to 4 bytes even in ELF64; only
// regions aligned to 8 (NT_GNU_PROPERTY_TYPE_0) pad to 8. readelf decides by
// the region's alignment the same way.
function readNoteRegion(
  reader: ElfReader,
  region: { readonly offset: number; readonly size: number; readonly align: number },
  seen: Set<number>,
  notes: ElfNote[],
): void {
  const { offset, size } = region
  if (!reader.contains(offset, size)) {
    throw new ShimError(`${size} bytes at offset ${hex(offset)} lie past the end of the file (${reader.size} bytes)`)
  }
  const alignment = region.align === 8 ? 8 : 4
  const end = offset + size
  for (let at = offset; at + 12 <= end; ) {
    const nameSize = reader.uint(at, 4, 'n_namesz')
    const descSize = reader.uint(at + 4, 4, 'n_descsz')
    const type = reader.uint(at + 8, 4, 'n_type')
    const descOffset = alignUp(12 + nameSize, alignment)
    if (at + descOffset + descSize > end) {
      throw new ShimError(`note at offset ${hex(at)} (n_namesz ${nameSize}, n_descsz ${descSize}) runs past the end of its region`)
    }
    if (!seen.has(at)) {
      seen.add(at)
      const name = utf8.decode(untilNul(reader.bytes.subarray(at + 12, at + 12 + nameSize)))
      // A copy, so a note does not keep the whole file alive (and a Buffer's
      // slice() would not copy).
      const desc = new Uint8Array(reader.bytes.subarray(at + descOffset, at + descOffset + descSize))
      notes.push({ name, type, desc, offset: at })
    }
    at += alignUp(descOffset + descSize, alignment)
  }
}

/** The first note with this owner name (and type, when given). */
export function findNote(info: Pick<ElfInfo, 'notes'>, name: string, type?: number): ElfNote | undefined {
  return info.notes.find((note) => note.name === name && (type === undefined || note.type === type))
}

const NUMBERED_VERSION = /^(.*)_(\d+(?:\.\d+)*)$/
const GLIBC_VERSION = /^GLIBC_\d+(?:\.\d+)*$/

function versionKey(name: string): { prefix: string; numbers: number[] | null } {
  const match = NUMBERED_VERSION.exec(name)
  if (!match) return { prefix: name, numbers: null }
  return { prefix: match[1] ?? '', numbers: (match[2] ?? '').split('.').map(Number) }
}

/**
 * Orders version names the way people read them: by the part before the
 * last `_`, then numerically (GLIBC_2.2.5 < GLIBC_2.3 < GLIBC_2.34). A name
 * without a number (GLIBC_PRIVATE) sorts as its own prefix. A total order:
 * only equal strings compare equal.
 */
export function compareVersionNames(a: string, b: string): number {
  const ka = versionKey(a)
  const kb = versionKey(b)
  if (ka.prefix !== kb.prefix) return ka.prefix < kb.prefix ? -1 : 1
  if (ka.numbers && kb.numbers) {
    for (let i = 0; i < Math.max(ka.numbers.length, kb.numbers.length); i++) {
      const x = ka.numbers[i] ?? -1
      const y = kb.numbers[i] ?? -1
      if (x !== y) return x - y
    }
  } else if (ka.numbers || kb.numbers) {
    return ka.numbers ? 1 : -1
  }
  return a < b ? -1 : a > b ? 1 : 0
}

/**
 * The numbered GLIBC_x.y[.z] versions the file needs, oldest first, so the
 * last one is the glibc release it needs at least. Unnumbered names that also
 * constrain the libc (GLIBC_PRIVATE, GLIBC_ABI_DT_RELR) are left out; they
 * stay in `versionsRequired`.
 */
export function glibcVersionsRequired(info: Pick<ElfInfo, 'versionsRequired'>): string[] {
  return info.versionsRequired.filter((name) => GLIBC_VERSION.test(name)).sort(compareVersionNames)
}

/** The numbered GLIBC_x.y[.z] versions the file (a libc.so.6) defines, oldest first. */
export function glibcVersionsDefined(info: Pick<ElfInfo, 'versionsDefined'>): string[] {
  return [...new Set(info.versionsDefined.filter((name) => GLIBC_VERSION.test(name)))].sort(compareVersionNames)
}
