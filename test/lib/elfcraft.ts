// Builds small ELF files in memory for tests: either class, either byte
// order, any machine, with PT_INTERP segments, a dynamic section (DT_NEEDED,
// DT_SONAME, DT_RPATH, DT_RUNPATH), symbol version tables, notes and section
// headers. Knobs break it the ways the kernel and the reader must notice:
// header field overrides, a hook to edit program headers after layout, a
// byte-level patch hook, and truncation.
//
// Deliberately independent of launcher/elf.ts (its own constants, its own
// layout code), so a test that reads a crafted file back checks two
// implementations against each other; readelf checks both.

export const ET_REL = 1
export const ET_EXEC = 2
export const ET_DYN = 3
export const ET_CORE = 4

export const PT_NULL = 0
export const PT_LOAD = 1
export const PT_DYNAMIC = 2
export const PT_INTERP = 3
export const PT_NOTE = 4
export const PT_PHDR = 6
export const PT_GNU_STACK = 0x6474e551
export const PT_GNU_PROPERTY = 0x6474e553
export const NT_GNU_PROPERTY_TYPE_0 = 5
export const GNU_PROPERTY_AARCH64_FEATURE_1_AND = 0xc0000000
export const GNU_PROPERTY_AARCH64_FEATURE_1_BTI = 1

/**
 * The bytes of a PT_GNU_PROPERTY segment: one NT_GNU_PROPERTY_TYPE_0 note
 * named "GNU" holding `properties` in the order given (type, its data padded
 * to `align`: 8 in a 64-bit file, 4 in a 32-bit one), little-endian.
 * `name` and `descsz` override the note's for malformed ones.
 */
export function gnuPropertyNote(
  properties: readonly { type: number; data: Uint8Array }[],
  align: 4 | 8 = 8,
  override: { name?: string; descsz?: number } = {},
): Buffer {
  const pad = (b: Uint8Array) => Buffer.concat([b, Buffer.alloc((align - (b.length % align)) % align)])
  const desc = Buffer.concat(
    properties.map((p) => {
      const head = Buffer.alloc(8)
      head.writeUInt32LE(p.type >>> 0, 0)
      head.writeUInt32LE(p.data.length, 4)
      return Buffer.concat([head, pad(p.data)])
    }),
  )
  const name = Buffer.from(`${override.name ?? 'GNU'}\0`, 'latin1')
  const head = Buffer.alloc(12)
  head.writeUInt32LE(name.length, 0)
  head.writeUInt32LE(override.descsz ?? desc.length, 4)
  head.writeUInt32LE(NT_GNU_PROPERTY_TYPE_0, 8)
  // "GNU\0" is 4 bytes: 12 + 4, the properties start 8-aligned either way.
  return Buffer.concat([head, name, Buffer.alloc((4 - (name.length % 4)) % 4), desc])
}

/** The AArch64 feature word as a property: BTI and/or PAC bits. */
export function aarch64Feature(bits: number): { type: number; data: Uint8Array } {
  const data = Buffer.alloc(4)
  data.writeUInt32LE(bits >>> 0, 0)
  return { type: GNU_PROPERTY_AARCH64_FEATURE_1_AND, data }
}

export const PF_X = 1
export const PF_W = 2
export const PF_R = 4

export const EM_386 = 3
export const EM_ARM = 40
export const EM_PPC = 20
export const EM_PPC64 = 21
export const EM_S390 = 22
export const EM_X86_64 = 62
export const EM_AARCH64 = 183
export const EM_RISCV = 243

const SHT_PROGBITS = 1
const SHT_STRTAB = 3
const SHT_DYNAMIC = 6
const SHT_NOTE = 7
const SHT_GNU_VERDEF = 0x6ffffffd
const SHT_GNU_VERNEED = 0x6ffffffe
const SHF_ALLOC = 2

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

/** A program header; offset and filesz default to where `data` lands. */
export interface CraftSegment {
  type: number
  flags?: number
  offset?: number
  vaddr?: number
  filesz?: number
  memsz?: number
  align?: number
  /** bytes to place in the file for this segment */
  data?: Uint8Array
}

interface SectionSpec {
  name: string
  type: number
  /** the blob it covers */
  blob: string
  /** the name of the section sh_link points at */
  link?: string
  info?: number
  entsize?: number
  align: number
}

/** A program header after layout: every field known. */
export type PlacedSegment = Required<Omit<CraftSegment, 'data'>>

export interface CraftNote {
  name: string
  type: number
  desc?: Uint8Array
}

export interface CraftHeaderOverrides {
  type?: number
  phoff?: number
  phentsize?: number
  phnum?: number
  shoff?: number
  shentsize?: number
  shnum?: number
  shstrndx?: number
}

export interface CraftOptions {
  class?: 32 | 64
  byteOrder?: 'little' | 'big'
  machine?: number
  /** e_type, ET_EXEC by default */
  type?: number
  osabi?: number
  entry?: number
  /** shorthand for `interpreters: [interpreter]` */
  interpreter?: string | Uint8Array
  /** PT_INTERP segments in order; a string gets a NUL appended, bytes are taken as they are */
  interpreters?: readonly (string | Uint8Array)[]
  needed?: readonly string[]
  soname?: string
  rpath?: string
  runpath?: string
  versionsNeeded?: readonly { file: string; versions: readonly string[] }[]
  /** version names defined; a base entry named `soname` (or "crafted.so") comes first */
  versionsDefined?: readonly string[]
  /** force a dynamic section even with nothing in it (static PIE) */
  dynamic?: boolean
  notes?: readonly CraftNote[]
  /** padding of note names and descriptors: 4 (the usual), or 8 as in NT_GNU_PROPERTY_TYPE_0 segments */
  noteAlign?: 4 | 8
  /** extra program headers, after the generated ones */
  segments?: readonly CraftSegment[]
  /** a PT_LOAD over the whole file; default: when there is a dynamic section */
  load?: boolean
  /** write section headers (default true) */
  sections?: boolean
  /** header fields written over the computed ones */
  header?: CraftHeaderOverrides
  /** edit the program headers after layout, before they are written */
  editSegments?: (segments: PlacedSegment[], fileSize: number) => void
  /** edit the finished bytes (before truncation) */
  patch?: (bytes: Buffer, layout: CraftLayout) => void
  /** keep only this many bytes */
  truncate?: number
}

export interface CraftLayout {
  readonly headerSize: number
  readonly phoff: number
  readonly phentsize: number
  readonly segments: readonly PlacedSegment[]
  readonly shoff: number
  /** file offset of each generated blob: "interp0", "dynstr", "dynamic", "notes", "verneed", "verdef", "shstrtab" */
  readonly blobs: Readonly<Record<string, { offset: number; size: number }>>
  readonly fileSize: number
}

const encoder = new TextEncoder()

function interpBytes(value: string | Uint8Array): Uint8Array {
  return typeof value === 'string' ? encoder.encode(`${value}\0`) : value
}

/** Fixed-width fields in one byte order, appended to a growing list. */
class FieldWriter {
  private readonly parts: number[] = []

  constructor(
    private readonly little: boolean,
    private readonly is64: boolean,
  ) {}

  u8(value: number): this {
    this.parts.push(value & 0xff)
    return this
  }

  private uint(value: number | bigint, bytes: number): this {
    let v = BigInt(value)
    const out: number[] = []
    for (let i = 0; i < bytes; i++) {
      out.push(Number(v & 0xffn))
      v >>= 8n
    }
    this.parts.push(...(this.little ? out : out.reverse()))
    return this
  }

  u16(value: number): this {
    return this.uint(value, 2)
  }

  u32(value: number): this {
    return this.uint(value, 4)
  }

  u64(value: number | bigint): this {
    return this.uint(value, 8)
  }

  /** an address, offset or size: 4 or 8 bytes by class */
  word(value: number | bigint): this {
    return this.uint(value, this.is64 ? 8 : 4)
  }

  bytes(value: Uint8Array): this {
    this.parts.push(...value)
    return this
  }

  pad(alignment: number): this {
    while (this.parts.length % alignment !== 0) this.parts.push(0)
    return this
  }

  done(): Uint8Array {
    return Uint8Array.from(this.parts)
  }
}

class StringTableBuilder {
  private text = '\0'
  private readonly offsets = new Map<string, number>()

  add(value: string): number {
    const known = this.offsets.get(value)
    if (known !== undefined) return known
    const offset = encoder.encode(this.text).length
    this.text += `${value}\0`
    this.offsets.set(value, offset)
    return offset
  }

  bytes(): Uint8Array {
    return encoder.encode(this.text)
  }
}

/** The SysV ELF hash, as vna_hash and vd_hash carry it. */
export function elfHash(name: string): number {
  let h = 0
  for (const byte of encoder.encode(name)) {
    h = ((h << 4) + byte) >>> 0
    const g = h & 0xf0000000
    if (g !== 0) h ^= g >>> 24
    h = (h & ~g) >>> 0
  }
  return h
}

export function craftElf(options: CraftOptions = {}): Buffer {
  return craftElfWithLayout(options).bytes
}

export function craftElfWithLayout(options: CraftOptions = {}): { bytes: Buffer; layout: CraftLayout } {
  const is64 = (options.class ?? 64) === 64
  const little = (options.byteOrder ?? 'little') === 'little'
  const type = options.type ?? ET_EXEC
  const writer = () => new FieldWriter(little, is64)
  const headerSize = is64 ? 64 : 52
  const phentsize = is64 ? 56 : 32
  const shentsize = is64 ? 64 : 40
  const dynentsize = is64 ? 16 : 8
  const base = type === ET_DYN ? 0 : 0x400000

  const interpreters = options.interpreters ?? (options.interpreter !== undefined ? [options.interpreter] : [])
  const hasDynamic =
    options.dynamic === true ||
    (options.needed?.length ?? 0) > 0 ||
    options.soname !== undefined ||
    options.rpath !== undefined ||
    options.runpath !== undefined ||
    options.versionsNeeded !== undefined ||
    options.versionsDefined !== undefined
  const withLoad = options.load ?? hasDynamic
  const withSections = options.sections ?? true
  const noteAlign = options.noteAlign ?? 4

  // Program headers first (their count fixes where the data starts), data
  // blobs after them, section headers last.
  type Pending = CraftSegment & { blob?: string }
  const pending: Pending[] = [
    ...interpreters.map((value, i): Pending => ({ type: PT_INTERP, flags: PF_R, align: 1, blob: `interp${i}` })),
    ...(withLoad ? [{ type: PT_LOAD, flags: PF_R | PF_X, offset: 0, vaddr: base, align: 0x1000, blob: '*file' }] : []),
    ...(hasDynamic ? [{ type: PT_DYNAMIC, flags: PF_R | PF_W, align: is64 ? 8 : 4, blob: 'dynamic' }] : []),
    ...(options.notes?.length ? [{ type: PT_NOTE, flags: PF_R, align: noteAlign, blob: 'notes' }] : []),
    ...(options.segments ?? []).map((s): Pending => ({ ...s })),
  ]
  pending.forEach((segment, i) => {
    if (segment.data && segment.blob === undefined) segment.blob = `segment${i}`
  })
  const phoff = headerSize
  const chunks: { offset: number; bytes: Uint8Array }[] = []
  const blobs: Record<string, { offset: number; size: number }> = {}
  let cursor = phoff + pending.length * phentsize
  const place = (name: string, bytes: Uint8Array, alignment = 1): number => {
    cursor = Math.ceil(cursor / alignment) * alignment
    chunks.push({ offset: cursor, bytes })
    blobs[name] = { offset: cursor, size: bytes.length }
    cursor += bytes.length
    return blobs[name].offset
  }
  const address = (name: string): number => base + (blobs[name]?.offset ?? 0)

  interpreters.forEach((value, i) => place(`interp${i}`, interpBytes(value)))

  const dynamicEntries: [number, number][] = []
  let verneedCount = 0
  let verdefCount = 0
  if (hasDynamic) {
    const strings = new StringTableBuilder()
    for (const name of options.needed ?? []) dynamicEntries.push([DT_NEEDED, strings.add(name)])
    if (options.soname !== undefined) dynamicEntries.push([DT_SONAME, strings.add(options.soname)])
    if (options.rpath !== undefined) dynamicEntries.push([DT_RPATH, strings.add(options.rpath)])
    if (options.runpath !== undefined) dynamicEntries.push([DT_RUNPATH, strings.add(options.runpath)])

    // Elf_Verneed (16 bytes) each followed by its Elf_Vernaux (16 bytes).
    let versionIndex = 2
    const needs = options.versionsNeeded ?? []
    const verneed = writer()
    needs.forEach((need, i) => {
      verneed.u16(1).u16(need.versions.length).u32(strings.add(need.file)).u32(16)
      verneed.u32(i === needs.length - 1 ? 0 : 16 + 16 * need.versions.length)
      need.versions.forEach((version, j) => {
        verneed.u32(elfHash(version)).u16(0).u16(versionIndex++).u32(strings.add(version))
        verneed.u32(j === need.versions.length - 1 ? 0 : 16)
      })
    })
    verneedCount = needs.length

    // Elf_Verdef (20 bytes) each followed by one Elf_Verdaux (8 bytes).
    const baseName = options.soname ?? 'crafted.so'
    const definitions = options.versionsDefined
      ? [{ name: baseName, base: true }, ...options.versionsDefined.map((name) => ({ name, base: false }))]
      : []
    const verdef = writer()
    definitions.forEach((definition, i) => {
      verdef.u16(1).u16(definition.base ? 1 : 0).u16(i + 1).u16(1).u32(elfHash(definition.name)).u32(20)
      verdef.u32(i === definitions.length - 1 ? 0 : 28)
      verdef.u32(strings.add(definition.name)).u32(0)
    })
    verdefCount = definitions.length

    const dynstr = strings.bytes()
    place('dynstr', dynstr)
    if (verneedCount > 0) place('verneed', verneed.done(), 4)
    if (verdefCount > 0) place('verdef', verdef.done(), 4)
    dynamicEntries.push([DT_STRTAB, address('dynstr')], [DT_STRSZ, dynstr.length])
    if (verneedCount > 0) dynamicEntries.push([DT_VERNEED, address('verneed')], [DT_VERNEEDNUM, verneedCount])
    if (verdefCount > 0) dynamicEntries.push([DT_VERDEF, address('verdef')], [DT_VERDEFNUM, verdefCount])
    dynamicEntries.push([DT_NULL, 0])
    const dynamic = writer()
    for (const [tag, value] of dynamicEntries) dynamic.word(tag).word(value)
    place('dynamic', dynamic.done(), is64 ? 8 : 4)
  }

  if (options.notes?.length) {
    const notes = writer()
    for (const note of options.notes) {
      const name = encoder.encode(`${note.name}\0`)
      const desc = note.desc ?? new Uint8Array()
      notes.u32(name.length).u32(desc.length).u32(note.type).bytes(name).pad(noteAlign).bytes(desc).pad(noteAlign)
    }
    place('notes', notes.done(), noteAlign)
  }

  for (const segment of pending) {
    if (segment.data && segment.blob?.startsWith('segment')) place(segment.blob, segment.data, 8)
  }

  // Section headers: enough for readelf to name things, and for the reader's
  // section fall-backs to have something to fall back to. All are SHF_ALLOC
  // (mapped by the PT_LOAD) except .shstrtab, which comes last.
  const allocated: SectionSpec[] = [
    { name: '.interp', type: SHT_PROGBITS, blob: 'interp0', align: 1 },
    { name: '.dynstr', type: SHT_STRTAB, blob: 'dynstr', align: 1 },
    { name: '.gnu.version_r', type: SHT_GNU_VERNEED, blob: 'verneed', link: '.dynstr', info: verneedCount, align: 4 },
    { name: '.gnu.version_d', type: SHT_GNU_VERDEF, blob: 'verdef', link: '.dynstr', info: verdefCount, align: 4 },
    { name: '.dynamic', type: SHT_DYNAMIC, blob: 'dynamic', link: '.dynstr', entsize: dynentsize, align: 8 },
    { name: '.note', type: SHT_NOTE, blob: 'notes', align: noteAlign },
  ].filter((spec) => blobs[spec.blob] !== undefined)
  let shoff = 0
  let shstrndx = 0
  if (withSections) {
    const names = new StringTableBuilder()
    const nameOffsets = allocated.map((spec) => names.add(spec.name))
    const shstrtabName = names.add('.shstrtab')
    place('shstrtab', names.bytes())
    shstrndx = allocated.length + 1
    const table = writer()
    const sectionHeader = (name: number, spec: SectionSpec | null, addr: number, link: number) => {
      const blob = spec ? (blobs[spec.blob] ?? { offset: 0, size: 0 }) : { offset: 0, size: 0 }
      table.u32(name).u32(spec?.type ?? 0).word(spec && addr !== 0 ? SHF_ALLOC : 0).word(addr)
      table.word(blob.offset).word(blob.size).u32(link).u32(spec?.info ?? 0).word(spec?.align ?? 0).word(spec?.entsize ?? 0)
    }
    sectionHeader(0, null, 0, 0)
    allocated.forEach((spec, i) => {
      const link = spec.link ? allocated.findIndex((other) => other.name === spec.link) + 1 : 0
      sectionHeader(nameOffsets[i] ?? 0, spec, base + (blobs[spec.blob]?.offset ?? 0), link)
    })
    sectionHeader(shstrtabName, { name: '.shstrtab', type: SHT_STRTAB, blob: 'shstrtab', align: 1 }, 0, 0)
    shoff = place('shdrs', table.done(), 8)
  }
  const fileSize = cursor

  const placed: PlacedSegment[] = pending.map((segment) => {
    const blob = segment.blob === '*file' ? { offset: 0, size: fileSize } : segment.blob ? blobs[segment.blob] : undefined
    const offset = segment.offset ?? blob?.offset ?? 0
    const filesz = segment.filesz ?? blob?.size ?? 0
    return {
      type: segment.type,
      flags: segment.flags ?? PF_R,
      offset,
      vaddr: segment.vaddr ?? base + offset,
      filesz,
      memsz: segment.memsz ?? filesz,
      align: segment.align ?? 1,
    }
  })
  options.editSegments?.(placed, fileSize)

  const out = Buffer.alloc(fileSize)
  const h = options.header ?? {}
  const ehdr = writer()
    .bytes(Uint8Array.of(0x7f, 0x45, 0x4c, 0x46, is64 ? 2 : 1, little ? 1 : 2, 1, options.osabi ?? 0))
    .pad(16)
    .u16(h.type ?? type)
    .u16(options.machine ?? EM_X86_64)
    .u32(1)
    .word(options.entry ?? base + 0x1000)
    .word(h.phoff ?? phoff)
    .word(h.shoff ?? shoff)
    .u32(0)
    .u16(headerSize)
    .u16(h.phentsize ?? phentsize)
    .u16(h.phnum ?? placed.length)
    .u16(h.shentsize ?? (withSections ? shentsize : 0))
    .u16(h.shnum ?? (withSections ? allocated.length + 2 : 0))
    .u16(h.shstrndx ?? shstrndx)
    .done()
  out.set(ehdr, 0)
  const phdrs = writer()
  for (const p of placed) {
    if (is64) phdrs.u32(p.type).u32(p.flags).u64(p.offset).u64(p.vaddr).u64(p.vaddr).u64(p.filesz).u64(p.memsz).u64(p.align)
    else phdrs.u32(p.type).u32(p.offset).u32(p.vaddr).u32(p.vaddr).u32(p.filesz).u32(p.memsz).u32(p.flags).u32(p.align)
  }
  out.set(phdrs.done(), phoff)
  for (const chunk of chunks) out.set(chunk.bytes, chunk.offset)

  const layout: CraftLayout = { headerSize, phoff, phentsize, segments: placed, shoff, blobs, fileSize }
  options.patch?.(out, layout)
  const bytes = options.truncate === undefined ? out : out.subarray(0, options.truncate)
  return { bytes, layout }
}
