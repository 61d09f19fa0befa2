// Stripping a linked shim down to what the kernel reads. Pure: bytes in,
// bytes out, never opens a file, and deterministic (the same input always
// gives the same output).
//
// execve() reads the ELF header, the program header table and the file
// extents of the segments; nothing else. zig (lld) with -s already leaves no
// symbol table, but still writes .comment, the section name table and the
// section header table after the last segment, plus .ARM.attributes or
// .gnu.attributes on some targets. All of that is at the end of the file,
// so dropping it is a truncation: keep the first `cut` bytes, where `cut` is
// the end of the furthest program header's file extent (max of p_offset +
// p_filesz over every program header, never less than the ELF header and the
// program header table), and zero e_shoff, e_shnum and e_shstrndx. Program
// headers and every byte a segment covers stay as they were, so the mark
// note (PT_NOTE) is still found by launcher/elf.ts.
//
// Truncation is only done when it removes exactly what it should. The input
// is returned unchanged (the same Buffer) when:
//
//   - it is not an ELF file, or its header, program header table or section
//     header table cannot be read in full (truncated or garbage input);
//   - it has no section header table (already stripped: stripping is
//     idempotent);
//   - e_phnum is PN_XNUM: the real program header count lives in section 0,
//     which stripping would remove;
//   - the section header table, or the data of a non-allocated section,
//     starts before `cut`: the layout is not "segments, then everything
//     else", and truncating would leave that data behind. Note that riscv64
//     shims are such a file: lld maps .riscv.attributes (non-allocated) with
//     a PT_RISCV_ATTRIBUTES program header placed after .comment, so
//     .comment lies before the end of the last segment;
//   - an allocated section's data ends after `cut` (it would be cut off);
//   - bytes follow the end of everything the section headers describe
//     (data appended to the file is not ours to drop).
//
// It never throws on bad input: stripping is an optimisation, leaving a file
// as it is is always safe, and judging whether a binary is any good is
// verifyShim's job (launcher/generate.ts), which throws ShimError with the
// reason. `stripPlan` says what `stripSections` does, and why not when it
// does nothing.

/** Part of the compile cache key (launcher/toolchain.ts): bump it when the output of stripSections changes. */
export const STRIP_VERSION = 'strip-v1'

export type StripPlan =
  | {
      readonly strip: true
      /** the stripped file's size: the end of the last segment's file extent */
      readonly size: number
      /** bytes removed */
      readonly removed: number
    }
  | {
      readonly strip: false
      /** why the file is left as it is */
      readonly reason: string
    }

type Width = 2 | 4 | 8
type Field = readonly [offset: number, width: Width]

interface Layout {
  readonly headerSize: number
  readonly phoff: Field
  readonly shoff: Field
  readonly phentsize: Field
  readonly phnum: Field
  readonly shentsize: Field
  readonly shnum: Field
  readonly shstrndx: Field
  readonly phdrSize: number
  readonly pOffset: Field
  readonly pFilesz: Field
  readonly shdrSize: number
  readonly shName: Field
  readonly shType: Field
  readonly shFlags: Field
  readonly shOffset: Field
  readonly shSize: Field
  readonly shLink: Field
}

// Elf32_Ehdr/Elf64_Ehdr, Elf_Phdr and Elf_Shdr: only the fields used here.
const LAYOUT_32: Layout = {
  headerSize: 52,
  phoff: [28, 4],
  shoff: [32, 4],
  phentsize: [42, 2],
  phnum: [44, 2],
  shentsize: [46, 2],
  shnum: [48, 2],
  shstrndx: [50, 2],
  phdrSize: 32,
  pOffset: [4, 4],
  pFilesz: [16, 4],
  shdrSize: 40,
  shName: [0, 4],
  shType: [4, 4],
  shFlags: [8, 4],
  shOffset: [16, 4],
  shSize: [20, 4],
  shLink: [24, 4],
}

const LAYOUT_64: Layout = {
  headerSize: 64,
  phoff: [32, 8],
  shoff: [40, 8],
  phentsize: [54, 2],
  phnum: [56, 2],
  shentsize: [58, 2],
  shnum: [60, 2],
  shstrndx: [62, 2],
  phdrSize: 56,
  pOffset: [8, 8],
  pFilesz: [32, 8],
  shdrSize: 64,
  shName: [0, 4],
  shType: [4, 4],
  shFlags: [8, 8],
  shOffset: [24, 8],
  shSize: [32, 8],
  shLink: [40, 4],
}

const EI_NIDENT = 16
const PN_XNUM = 0xffff
const SHN_XINDEX = 0xffff
const SHT_NOBITS = 8
const SHF_ALLOC = 2

/** Why a file is left alone; caught in stripPlan, never escapes this module. */
class Keep extends Error {}

function hex(value: number): string {
  return `0x${value.toString(16)}`
}

/** Bounds-checked reads in one byte order. */
class Reader {
  private readonly view: DataView

  constructor(
    readonly bytes: Uint8Array,
    private readonly little: boolean,
  ) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  }

  get size(): number {
    return this.bytes.length
  }

  contains(offset: number, length: number): boolean {
    return offset >= 0 && length >= 0 && offset + length <= this.bytes.length
  }

  /** An unsigned field; a 64-bit value too large to be a real offset or size leaves the file alone. */
  uint(base: number, [offset, width]: Field, what: string): number {
    const at = base + offset
    if (!this.contains(at, width)) throw new Keep(`${what} at offset ${hex(at)} lies past the end of the file (${this.size} bytes)`)
    switch (width) {
      case 2:
        return this.view.getUint16(at, this.little)
      case 4:
        return this.view.getUint32(at, this.little)
      case 8: {
        const value = this.view.getBigUint64(at, this.little)
        if (value > BigInt(Number.MAX_SAFE_INTEGER)) throw new Keep(`${what} is 0x${value.toString(16)}, too large to be real`)
        return Number(value)
      }
    }
  }

  /** A flags field: only its low 32 bits matter here, so any 64-bit value is fine. */
  low32(base: number, [offset, width]: Field, what: string): number {
    const at = base + offset
    if (!this.contains(at, width)) throw new Keep(`${what} at offset ${hex(at)} lies past the end of the file (${this.size} bytes)`)
    if (width === 8) return Number(this.view.getBigUint64(at, this.little) & 0xffffffffn)
    return width === 4 ? this.view.getUint32(at, this.little) : this.view.getUint16(at, this.little)
  }
}

interface Section {
  readonly index: number
  readonly nameOffset: number
  readonly type: number
  readonly flags: number
  readonly offset: number
  readonly size: number
  readonly link: number
}

/** The cut and the fields to clear; throws Keep with the reason to leave the file alone. */
function plan(bytes: Uint8Array): { cut: number; clear: readonly Field[] } {
  if (bytes.length < EI_NIDENT || bytes[0] !== 0x7f || bytes[1] !== 0x45 || bytes[2] !== 0x4c || bytes[3] !== 0x46) {
    throw new Keep('not an ELF file')
  }
  const elfClass = bytes[4]
  const byteOrder = bytes[5]
  if (elfClass !== 1 && elfClass !== 2) throw new Keep(`unknown ELF class ${elfClass}`)
  if (byteOrder !== 1 && byteOrder !== 2) throw new Keep(`unknown ELF byte order ${byteOrder}`)
  const layout = elfClass === 1 ? LAYOUT_32 : LAYOUT_64
  if (bytes.length < layout.headerSize) throw new Keep(`truncated ELF header: ${bytes.length} bytes`)
  const reader = new Reader(bytes, byteOrder === 1)

  const shoff = reader.uint(0, layout.shoff, 'e_shoff')
  if (shoff === 0) throw new Keep('no section header table (e_shoff is 0): nothing to strip')

  // The program header table and the segments: everything before `cut` stays.
  const phoff = reader.uint(0, layout.phoff, 'e_phoff')
  const phentsize = reader.uint(0, layout.phentsize, 'e_phentsize')
  const phnum = reader.uint(0, layout.phnum, 'e_phnum')
  if (phnum === PN_XNUM) throw new Keep('e_phnum is PN_XNUM: the program header count is in section 0, which stripping removes')
  if (phnum === 0) throw new Keep('no program headers')
  if (phentsize !== layout.phdrSize) throw new Keep(`e_phentsize is ${phentsize}, not ${layout.phdrSize}`)
  if (!reader.contains(phoff, phnum * phentsize)) {
    throw new Keep(`the program header table (${phnum} entries at offset ${hex(phoff)}) lies past the end of the file (${reader.size} bytes)`)
  }
  let cut = Math.max(layout.headerSize, phoff + phnum * phentsize)
  for (let i = 0; i < phnum; i++) {
    const base = phoff + i * phentsize
    const offset = reader.uint(base, layout.pOffset, `program header ${i} p_offset`)
    const filesz = reader.uint(base, layout.pFilesz, `program header ${i} p_filesz`)
    if (!reader.contains(offset, filesz)) {
      throw new Keep(`program header ${i} (${filesz} bytes at offset ${hex(offset)}) runs past the end of the file (${reader.size} bytes)`)
    }
    cut = Math.max(cut, offset + filesz)
  }

  // The section header table, with gABI extended numbering: e_shnum 0 means
  // the count is section 0's sh_size, e_shstrndx SHN_XINDEX its sh_link.
  const shentsize = reader.uint(0, layout.shentsize, 'e_shentsize')
  if (shentsize !== layout.shdrSize) throw new Keep(`e_shentsize is ${shentsize}, not ${layout.shdrSize}`)
  let shnum = reader.uint(0, layout.shnum, 'e_shnum')
  if (shnum === 0) shnum = reader.uint(shoff, layout.shSize, 'section 0 sh_size (the extended section count)')
  if (shnum === 0) throw new Keep('e_shoff is set but the section header table has no entries')
  const tableSize = shnum * shentsize
  if (!reader.contains(shoff, tableSize)) {
    throw new Keep(`the section header table (${shnum} entries at offset ${hex(shoff)}) lies past the end of the file (${reader.size} bytes)`)
  }
  if (shoff < cut) {
    throw new Keep(`the section header table (at offset ${hex(shoff)}) starts before the end of the last segment (${hex(cut)})`)
  }
  const sections: Section[] = Array.from({ length: shnum }, (_, index) => {
    const base = shoff + index * shentsize
    const what = (field: string) => `section ${index} ${field}`
    return {
      index,
      nameOffset: reader.uint(base, layout.shName, what('sh_name')),
      type: reader.uint(base, layout.shType, what('sh_type')),
      flags: reader.low32(base, layout.shFlags, what('sh_flags')),
      offset: reader.uint(base, layout.shOffset, what('sh_offset')),
      size: reader.uint(base, layout.shSize, what('sh_size')),
      link: reader.uint(base, layout.shLink, what('sh_link')),
    }
  })
  const label = sectionLabeller(reader, layout, sections)

  // Section 0 is SHT_NULL (or holds the extended counts): it has no data.
  let described = shoff + tableSize
  for (const s of sections.slice(1)) {
    if (s.type === SHT_NOBITS || s.size === 0) continue
    const end = s.offset + s.size
    const where = `${label(s)} (${s.size} bytes at offset ${hex(s.offset)})`
    if (!reader.contains(s.offset, s.size)) throw new Keep(`${where} runs past the end of the file (${reader.size} bytes)`)
    if ((s.flags & SHF_ALLOC) !== 0) {
      if (end > cut) throw new Keep(`allocated ${where} ends after the last segment (${hex(cut)}): truncating would cut it off`)
    } else {
      if (s.offset < cut) throw new Keep(`non-allocated ${where} lies before the end of the last segment (${hex(cut)}): truncating cannot remove it`)
      described = Math.max(described, end)
    }
  }
  if (reader.size > described) {
    throw new Keep(`${reader.size - described} bytes after offset ${hex(described)} belong to no section: data appended to the file is kept`)
  }
  return { cut, clear: [layout.shoff, layout.shnum, layout.shstrndx] }
}

/** `section 9 (.comment)`, or `section 9` when the name cannot be read. */
function sectionLabeller(reader: Reader, layout: Layout, sections: readonly Section[]): (s: Section) => string {
  // Names are only for the reason text: an unreadable one is left out.
  let index = reader.uint(0, layout.shstrndx, 'e_shstrndx')
  if (index === SHN_XINDEX) index = sections[0]?.link ?? 0
  const table = index === 0 ? undefined : sections[index]
  const names =
    table && table.type !== SHT_NOBITS && reader.contains(table.offset, table.size)
      ? reader.bytes.subarray(table.offset, table.offset + table.size)
      : null
  return (s) => {
    if (!names || s.nameOffset >= names.length) return `section ${s.index}`
    const rest = names.subarray(s.nameOffset)
    const nul = rest.indexOf(0)
    if (nul <= 0) return `section ${s.index}`
    return `section ${s.index} (${Buffer.from(rest.subarray(0, Math.min(nul, 64))).toString('latin1')})`
  }
}

/** The plan, or the reason to keep the file; anything but Keep is a bug and propagates. */
function planOrReason(binary: Uint8Array): ReturnType<typeof plan> | string {
  try {
    return plan(binary)
  } catch (err) {
    if (err instanceof Keep) return err.message
    throw err
  }
}

/** What stripSections does with this file: the stripped size, or why it leaves the file alone. */
export function stripPlan(binary: Uint8Array): StripPlan {
  const planned = planOrReason(binary)
  if (typeof planned === 'string') return { strip: false, reason: planned }
  return { strip: true, size: planned.cut, removed: binary.length - planned.cut }
}

/**
 * Drop the section header table and the non-allocated sections: truncate the
 * file to the end of the last segment's file extent and set e_shoff, e_shnum
 * and e_shstrndx to 0. Returns a new Buffer (the input is not modified), or
 * the input itself when `stripPlan` says no. Never throws on bad input.
 */
export function stripSections(binary: Buffer): Buffer {
  const planned = planOrReason(binary)
  if (typeof planned === 'string') return binary
  const out = Buffer.from(binary.subarray(0, planned.cut))
  // Zero is zero in either byte order.
  for (const [offset, width] of planned.clear) out.fill(0, offset, offset + width)
  return out
}
