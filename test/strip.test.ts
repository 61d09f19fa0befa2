// launcher/strip.ts: dropping the section header table and non-allocated
// sections from a linked shim. First on crafted files (every ELF flavour, and
// each way a file is left as it is), then on real shims for every
// architecture in both modes, compared with zig's unstripped output.

import t, { type Test } from 'tap'
import fc from 'fast-check'
import { execFile, spawnSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { existsSync } from 'node:fs'
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ARCHES, ARCH_NAMES, type Arch, type ArchName } from '../launcher/arch.js'
import { shimConfigOf, validateConfig, type ShimMode } from '../launcher/config.js'
import { findNote, parseElf } from '../launcher/elf.js'
import { generate, verifyShim } from '../launcher/generate.js'
import { formatInspect, inspectFile } from '../launcher/inspect.js'
import { MARK_NOTE_NAME, MARK_NOTE_TYPE, parseMark } from '../launcher/mark.js'
import { STRIP_VERSION, stripPlan, stripSections } from '../launcher/strip.js'
import { cacheKey, compileSteps, loadZig, writeZigInputs, zigEnv, type Zig } from '../launcher/toolchain.js'
import { configForArch, effectiveMode } from '../shim/chainload.js'
import { renderShim } from '../shim/template.js'
import {
  craftElf,
  craftElfWithLayout,
  EM_386,
  EM_ARM,
  EM_S390,
  EM_X86_64,
  ET_DYN,
  PF_R,
  PF_X,
  PT_LOAD,
  type CraftOptions,
} from './lib/elfcraft.js'
import { COMPILE_TIMEOUT_MS, DEBUG_ENV, parseDebug, TEST_CACHE_DIR } from './lib/shims.js'
import { readelf } from './lib/readelf.js'
import { seedFastCheck } from './lib/seed.js'

seedFastCheck(t, 20261204)

t.setTimeout(COMPILE_TIMEOUT_MS * 4)


/** `readelf -lW` up to the section-to-segment mapping (which names sections): entry point and every program header. */
function readelfSegments(file: string): string {
  const out = readelf(file, '-lW')
  const mapping = out.indexOf('\n Section to Segment mapping:')
  return mapping < 0 ? out : out.slice(0, mapping)
}

function sectionHeaderCount(file: string): number {
  return Number(/Number of section headers:\s+(\d+)/.exec(readelf(file, '-h'))?.[1])
}

let scratch: string | undefined
async function scratchDir(): Promise<string> {
  scratch ??= await mkdtemp(join(tmpdir(), 'hostshim-strip-'))
  return scratch
}
t.teardown(async () => {
  if (scratch) await rm(scratch, { recursive: true, force: true })
})

/** Where the header fields stripSections clears sit, per class. */
function headerFields(elfClass: 32 | 64) {
  return elfClass === 64
    ? { shoff: [40, 8], shentsize: [58, 2], shnum: [60, 2], shstrndx: [62, 2] }
    : { shoff: [32, 4], shentsize: [46, 2], shnum: [48, 2], shstrndx: [50, 2] }
}

/** The input's first `length` bytes with e_shoff, e_shnum and e_shstrndx zeroed: what a stripped file must be. */
function expectedStrip(input: Buffer, length: number): Buffer {
  const out = Buffer.from(input.subarray(0, length))
  const f = headerFields(input[4] === 1 ? 32 : 64)
  for (const [offset, width] of [f.shoff, f.shnum, f.shstrndx] as [number, number][]) out.fill(0, offset, offset + width)
  return out
}

const MARK = { name: MARK_NOTE_NAME, type: MARK_NOTE_TYPE, desc: Buffer.from('{"hostshim":"0","target":"/t","config":"c"}\0\0\0\0') }

const FLAVOURS: { what: string; options: CraftOptions }[] = [
  { what: 'ELF64 little endian (x86_64)', options: { class: 64, byteOrder: 'little', machine: EM_X86_64 } },
  { what: 'ELF64 big endian (s390x)', options: { class: 64, byteOrder: 'big', machine: EM_S390 } },
  { what: 'ELF32 little endian (i686)', options: { class: 32, byteOrder: 'little', machine: EM_386 } },
  { what: 'ELF32 big endian (armeb)', options: { class: 32, byteOrder: 'big', machine: EM_ARM } },
]

/**
 * A file laid out as lld lays out a shim: a PT_LOAD (here over the headers
 * and its own code), a PT_NOTE with the mark, then .shstrtab and the section
 * header table.
 */
function strippable(options: CraftOptions = {}) {
  return craftElfWithLayout({
    notes: [MARK, { name: 'GNU', type: 3, desc: Buffer.alloc(8, 0xab) }],
    segments: [{ type: PT_LOAD, flags: PF_R | PF_X, data: Buffer.alloc(48, 0xcc), align: 0x1000 }],
    ...options,
  })
}

// ---------------------------------------------------------------------------
// Crafted files

t.test('every flavour: truncated to the end of the last segment, section header fields zeroed', async (t) => {
  for (const { what, options } of FLAVOURS) {
    for (const type of [undefined, ET_DYN]) {
      t.test(`${what}${type === ET_DYN ? ', ET_DYN' : ''}`, async (t) => {
        const { bytes, layout } = strippable({ ...options, ...(type === undefined ? {} : { type }) })
        const before = Buffer.from(bytes)
        const end = Math.max(...layout.segments.map((s) => s.offset + s.filesz))
        t.ok(end <= layout.blobs.shstrtab!.offset, 'the crafted layout puts .shstrtab after every segment')

        const plan = stripPlan(bytes)
        t.same(plan, { strip: true, size: end, removed: bytes.length - end })
        const stripped = stripSections(bytes)
        t.equal(stripped.length, end, 'cut at max(p_offset + p_filesz)')
        t.ok(stripped.equals(expectedStrip(bytes, end)), 'the bytes before the cut are kept, but e_shoff, e_shnum, e_shstrndx')
        t.ok(bytes.equals(before), 'the input is not modified')
        t.not(stripped.buffer, bytes.buffer, 'the output does not share memory with the input')
        t.equal(stripSections(stripped), stripped, 'idempotent: a stripped file comes back as it is')
        t.match(stripPlan(stripped), { strip: false, reason: /no section header table/ })

        const original = parseElf(bytes)
        const info = parseElf(stripped)
        t.same(info.warnings, [], 'parseElf: no warnings')
        t.same(info.sections, [], 'parseElf: no sections')
        t.ok(original.sections.length > 0)
        t.same(info.programHeaders, original.programHeaders, 'program headers as they were')
        t.same(
          { class: info.class, byteOrder: info.byteOrder, machine: info.machine, type: info.type, entry: info.entry },
          { class: original.class, byteOrder: original.byteOrder, machine: original.machine, type: original.type, entry: original.entry },
        )
        const mark = findNote(info, MARK_NOTE_NAME, MARK_NOTE_TYPE)
        t.ok(mark, 'the mark is found through PT_NOTE')
        t.same(parseMark(mark?.desc ?? new Uint8Array()), parseMark(MARK.desc))
        t.same(info.notes.map((n) => n.name), ['hostshim', 'GNU'])

        const dir = await scratchDir()
        const name = `${what.replace(/\W+/g, '-')}-${type ?? 'exec'}`
        await writeFile(join(dir, `${name}.orig`), bytes)
        await writeFile(join(dir, `${name}.stripped`), stripped)
        t.equal(sectionHeaderCount(join(dir, `${name}.stripped`)), 0, 'readelf: 0 section headers')
        t.equal(readelfSegments(join(dir, `${name}.stripped`)), readelfSegments(join(dir, `${name}.orig`)), 'readelf -lW: the same')
        t.match(readelf(join(dir, `${name}.stripped`), '-nW'), /^\s+hostshim\s+0x[0-9a-f]+\s.*0x48530001/m, 'readelf -n: the mark')
      })
    }
  }
})

t.test('gABI extended numbering (e_shnum 0, e_shstrndx SHN_XINDEX) is read from section 0', async (t) => {
  for (const { what, options } of FLAVOURS) {
    const is64 = options.class === 64
    const little = options.byteOrder === 'little'
    const { bytes, layout } = strippable({
      ...options,
      patch: (b, l) => {
        const f = headerFields(is64 ? 64 : 32)
        const count = little ? b.readUInt16LE(f.shnum[0]!) : b.readUInt16BE(f.shnum[0]!)
        const index = little ? b.readUInt16LE(f.shstrndx[0]!) : b.readUInt16BE(f.shstrndx[0]!)
        b.fill(0, f.shnum[0]!, f.shnum[0]! + 2)
        b.fill(0xff, f.shstrndx[0]!, f.shstrndx[0]! + 2)
        // Section 0: sh_size holds the count, sh_link the name table's index.
        const size = l.shoff + (is64 ? 32 : 20)
        const link = l.shoff + (is64 ? 40 : 24)
        if (is64) little ? b.writeBigUInt64LE(BigInt(count), size) : b.writeBigUInt64BE(BigInt(count), size)
        else little ? b.writeUInt32LE(count, size) : b.writeUInt32BE(count, size)
        little ? b.writeUInt32LE(index, link) : b.writeUInt32BE(index, link)
      },
    })
    t.same(parseElf(bytes).warnings, [], `${what}: parseElf reads the extended counts`)
    const end = Math.max(...layout.segments.map((s) => s.offset + s.filesz))
    const stripped = stripSections(bytes)
    t.ok(stripped.equals(expectedStrip(bytes, end)), `${what}: stripped, e_shstrndx SHN_XINDEX zeroed too`)
  }
})

t.test('left as it is (the same Buffer), with the reason', async (t) => {
  const kept = (t: Test, bytes: Buffer, reason: RegExp, what: string) => {
    t.match(stripPlan(bytes), { strip: false, reason }, what)
    t.equal(stripSections(bytes), bytes, `${what}: unchanged`)
  }

  t.test('non-allocated section data before the end of the last segment', async (t) => {
    for (const { what, options } of FLAVOURS) {
      // As on riscv64: a segment maps a non-allocated section (there
      // .riscv.attributes, here .shstrtab), so the last segment ends after
      // it and the section header table.
      const extra = { type: 0x70000003, offset: 0, filesz: 0 }
      const probe = craftElfWithLayout({ ...options, notes: [MARK], segments: [extra] }).layout
      const shstrtab = probe.blobs.shstrtab!
      const { bytes, layout } = craftElfWithLayout({
        ...options,
        notes: [MARK],
        segments: [{ ...extra, offset: shstrtab.offset, filesz: shstrtab.size }],
      })
      t.equal(layout.shoff, probe.shoff, 'the same layout')
      t.ok(layout.shoff >= shstrtab.offset + shstrtab.size, 'the section header table starts after the last segment')
      kept(t, bytes, /non-allocated section \d+ \(\.shstrtab\) \(\d+ bytes at offset 0x[0-9a-f]+\) lies before the end of the last segment/, what)
    }
  })

  t.test('the section header table before the end of the last segment', async (t) => {
    for (const { what, options } of FLAVOURS) {
      // load: a PT_LOAD over the whole file, section headers included.
      kept(t, craftElf({ ...options, notes: [MARK], load: true }), /the section header table \(at offset 0x[0-9a-f]+\) starts before the end of the last segment/, what)
    }
  })

  t.test('an allocated section past the end of the last segment', async (t) => {
    for (const { what, options } of FLAVOURS) {
      const bytes = craftElf({
        ...options,
        notes: [MARK, { name: 'GNU', type: 3, desc: Buffer.alloc(8) }],
        // PT_NOTE covers only the first note; .note (SHF_ALLOC) covers both.
        editSegments: (segments) => {
          const note = segments.find((s) => s.type === 4)!
          note.filesz = note.memsz = 12 + 12 + MARK.desc.length
        },
      })
      kept(t, bytes, /allocated section \d+ \(\.note\) \(\d+ bytes at offset 0x[0-9a-f]+\) ends after the last segment/, what)
    }
  })

  t.test('already stripped, or never had section headers', async (t) => {
    for (const { what, options } of FLAVOURS) {
      kept(t, craftElf({ ...options, notes: [MARK], sections: false }), /^no section header table \(e_shoff is 0\)/, what)
    }
  })

  t.test('data appended after the section header table', async (t) => {
    for (const { what, options } of FLAVOURS) {
      const bytes = Buffer.concat([strippable(options).bytes, Buffer.from('PAYLOAD')])
      kept(t, bytes, /^7 bytes after offset 0x[0-9a-f]+ belong to no section/, what)
    }
  })

  t.test('e_phnum PN_XNUM: the count lives in section 0', async (t) => {
    kept(t, strippable({ header: { phnum: 0xffff } }).bytes, /PN_XNUM/, 'e_phnum 0xffff')
  })

  t.test('broken headers', async (t) => {
    kept(t, strippable({ header: { phnum: 0 } }).bytes, /^no program headers$/, 'e_phnum 0')
    kept(t, strippable({ header: { phentsize: 32 } }).bytes, /^e_phentsize is 32, not 56$/, 'ELF32 phentsize in ELF64')
    kept(t, strippable({ header: { shentsize: 40 } }).bytes, /^e_shentsize is 40, not 64$/, 'ELF32 shentsize in ELF64')
    kept(t, strippable({ header: { phoff: 1 << 20 } }).bytes, /program header table .* lies past the end of the file/, 'e_phoff past the end')
    kept(t, strippable({ header: { shoff: 1 << 20 } }).bytes, /section header table .* lies past the end of the file/, 'e_shoff past the end')
    kept(t, strippable({ header: { shnum: 0 } }).bytes, /section 0 sh_size|no entries/, 'e_shnum 0, section 0 sh_size 0')
    kept(
      t,
      strippable({ patch: (b) => b.writeBigUInt64LE(1n << 63n, 40) }).bytes,
      /^e_shoff is 0x8000000000000000, too large to be real$/,
      'a 64-bit e_shoff above 2^53',
    )
    kept(
      t,
      strippable({ editSegments: (segments, fileSize) => void (segments[0]!.filesz = fileSize * 2) }).bytes,
      /program header 0 .* runs past the end of the file/,
      'a segment past the end of the file',
    )
    kept(
      t,
      strippable({ patch: (b, l) => b.writeBigUInt64LE(BigInt(b.length), l.shoff + 64 + 24) }).bytes,
      /section 1 \(\.note\) .* runs past the end of the file/,
      'section data past the end of the file',
    )
  })

  t.test('not ELF, or unknown class or byte order', async (t) => {
    kept(t, Buffer.alloc(0), /^not an ELF file$/, 'empty')
    kept(t, Buffer.from('#!/bin/sh\necho hi\n'), /^not an ELF file$/, 'a script')
    kept(t, Buffer.from([0x7f, 0x45, 0x4c, 0x46]), /^not an ELF file$/, 'the magic alone')
    const good = strippable().bytes
    kept(t, Buffer.concat([good.subarray(0, 4), Buffer.from([3]), good.subarray(5)]), /^unknown ELF class 3$/, 'EI_CLASS 3')
    kept(t, Buffer.concat([good.subarray(0, 5), Buffer.from([0]), good.subarray(6)]), /^unknown ELF byte order 0$/, 'EI_DATA 0')
  })
})

t.test('a truncated file is left as it is, whatever the cut', async (t) => {
  for (const { what, options } of FLAVOURS) {
    const whole = strippable(options).bytes
    let checked = 0
    for (let length = 0; length < whole.length; length++) {
      const cut = Buffer.from(whole.subarray(0, length))
      const result = stripSections(cut)
      if (result !== cut) t.fail(`${what}: the first ${length} bytes were stripped`)
      checked++
    }
    t.equal(checked, whole.length, `${what}: every one of the ${whole.length} proper prefixes`)
  }
})

t.test('garbage in: never throws; either the input itself or a strict, faithful prefix', async (t) => {
  const faithful = (input: Buffer): boolean => {
    const out = stripSections(input)
    if (out === input) return true
    if (!(out.length < input.length && out.equals(expectedStrip(input, out.length)))) return false
    // parseElf throws on some of these inputs (a 64-bit value too large to
    // be real); where it reads the input, it reads the output the same way.
    let before: ReturnType<typeof parseElf>
    try {
      before = parseElf(input)
    } catch {
      return true
    }
    const after = parseElf(out)
    return after.sections.length === 0 && JSON.stringify(after.programHeaders) === JSON.stringify(before.programHeaders)
  }
  fc.assert(fc.property(fc.uint8Array({ maxLength: 512 }), (bytes) => faithful(Buffer.from(bytes))), { numRuns: 500 })
  // Mutations of a strippable file reach every check.
  const flavours = FLAVOURS.map((f) => strippable(f.options).bytes)
  fc.assert(
    fc.property(
      fc.nat({ max: flavours.length - 1 }),
      fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 6 }),
      (which, edits) => {
        const bytes = Buffer.from(flavours[which]!)
        for (const [at, value] of edits) bytes[at % bytes.length] = value
        return faithful(bytes)
      },
    ),
    { numRuns: 3000 },
  )
})

t.test('deterministic', async (t) => {
  for (const { options } of FLAVOURS) {
    const bytes = strippable(options).bytes
    t.ok(stripSections(bytes).equals(stripSections(Buffer.from(bytes))))
  }
})

t.test('the cache key names the strip pass', async (t) => {
  t.equal(STRIP_VERSION, 'strip-v1')
  const zig: Zig = { path: '/nonexistent/zig', version: '0.14.0' }
  const key = cacheKey(zig, ARCHES.x86_64, 'int main(void) { return 0; }')
  t.match(key, /^[0-9a-f]{64}$/)
  // The key before the strip pass existed: the same inputs without `strip`.
  const unstripped = createHash('sha256')
    .update(JSON.stringify({ zig: zig.version, args: compileSteps(ARCHES.x86_64, 'shim.c', 'shim') }))
    .update('\0')
    .update('int main(void) { return 0; }')
    .digest('hex')
  t.not(key, unstripped, 'old (unstripped) cache entries are not reused')
})

// ---------------------------------------------------------------------------
// Real shims: every architecture, both modes

/**
 * Architectures whose shims lld lays out so that truncation cannot remove
 * the non-allocated sections; stripSections leaves them as linked. riscv64:
 * PT_RISCV_ATTRIBUTES maps .riscv.attributes (non-allocated), which lld puts
 * after .comment, so .comment lies before the end of the last segment.
 */
const KEPT_AS_LINKED: Partial<Record<ArchName, RegExp>> = {
  riscv64: /non-allocated section \d+ \(\.comment\) .* lies before the end of the last segment/,
}

const TARGET = '/usr/libexec/toolbox/toolbox'

function run(file: string, args: readonly string[], cwd: string): Promise<void> {
  return new Promise((resolve, reject) => {
    // zig's environment as compileShim gives it: a local cache of its own.
    execFile(file, args, { cwd, env: zigEnv(cwd), maxBuffer: 16 << 20 }, (error, _stdout, stderr) => {
      if (error) reject(new Error(`${file} ${args.join(' ')}: ${error.message}\n${stderr}`))
      else resolve()
    })
  })
}

/** zig's own output for this config, before stripSections: the same source and flags compileShim uses. */
async function compileUnstripped(zig: Zig, arch: Arch, mode: ShimMode, dir: string): Promise<Buffer> {
  const shim = shimConfigOf(validateConfig({ name: 'toolbox', target: TARGET, arch: arch.name, mode }))
  await mkdir(dir, { recursive: true })
  await writeZigInputs(dir, renderShim(configForArch(shim, arch), arch), arch)
  for (const args of compileSteps(arch, 'shim.c', 'shim')) await run(zig.path, args, dir)
  return readFile(join(dir, 'shim'))
}

t.test('real shims: no section headers, the same program headers, the mark, smaller', async (t) => {
  const zig = await loadZig()
  const dir = await scratchDir()
  const sizes: string[] = []
  for (const mode of ['exec', 'chainload'] as const) {
    for (const name of ARCH_NAMES) {
      await t.test(`${name}, ${mode} mode`, async (t) => {
        const arch = ARCHES[name]
        const out = join(dir, `${mode}-${name}`)
        const config = validateConfig({ name: 'toolbox', target: TARGET, arch: name, mode, output: join(out, 'toolbox') })
        const [built] = await generate(config, { toolchain: zig, cacheDir: TEST_CACHE_DIR })
        t.equal(built?.mode, mode)
        const shim = await readFile(join(out, 'toolbox'))
        const linked = await compileUnstripped(zig, arch, mode, join(out, 'zig'))
        const plan = stripPlan(linked)

        t.ok(shim.equals(stripSections(linked)), 'the shim is stripSections of zig\'s output, byte for byte')
        t.doesNotThrow(() => verifyShim(shim, arch), 'verifyShim accepts it')
        const info = parseElf(shim)
        t.same(info.warnings, [], 'parseElf: no warnings')
        t.same(info.programHeaders, parseElf(linked).programHeaders, 'parseElf: the same program headers')
        const report = inspectFile(shim, 'toolbox')
        t.same(report.warnings, [])
        t.equal(report.shim?.target, TARGET, 'inspect: the mark, with the target')
        t.equal(report.shim?.arch, name)
        t.match(formatInspect(report), new RegExp(`^target:\\s+"${TARGET}"$`, 'm'))
        t.match(formatInspect(report), /^hostshim shim:\s+toolbox /m)
        t.equal(readelfSegments(join(out, 'toolbox')), readelfSegments(join(out, 'zig', 'shim')), 'readelf -lW: the same program headers')

        const kept = KEPT_AS_LINKED[name]
        if (kept) {
          t.match(plan, { strip: false, reason: kept }, 'left as linked, for a known reason')
          t.ok(shim.equals(linked))
          t.ok(info.sections.length > 0)
          sizes.push(`${name} ${mode}: ${linked.length} bytes, kept as linked`)
          return
        }
        t.equal(plan.strip, true)
        t.same(info.sections, [], 'parseElf: no sections')
        t.equal(sectionHeaderCount(join(out, 'toolbox')), 0, 'readelf -h: 0 section headers')
        t.ok(shim.length < linked.length, `smaller: ${linked.length} -> ${shim.length} bytes`)
        t.equal(shim.length, Math.max(...info.programHeaders.map((p) => p.offset + p.filesz)), 'ends where the last segment ends')
        t.equal(built?.bytes, shim.length)
        sizes.push(`${name} ${mode}: ${linked.length} -> ${shim.length} bytes (-${linked.length - shim.length})`)
      })
    }
  }
  for (const line of sizes) t.comment(line)
})

t.test('a stripped x86_64 shim runs: host mode, then id', { skip: process.arch !== 'x64' || process.platform !== 'linux' }, async (t) => {
  const zig = await loadZig()
  const dir = await scratchDir()
  const native = spawnSync('/usr/bin/id', [], { env: { PATH: '/usr/bin:/bin', LC_ALL: 'C' } })
  for (const mode of ['exec', 'chainload'] as const) {
    t.test(`${mode} mode`, async (t) => {
      const output = join(dir, `run-${mode}`, 'toolbox')
      // A host root that never exists: host mode on any machine.
      const hostRoot = '/nonexistent/hostshim-strip-test'
      t.notOk(existsSync(hostRoot))
      const config = validateConfig({ name: 'toolbox', target: '/usr/bin/id', arch: 'x86_64', mode, hostRoot, output })
      await generate(config, { toolchain: zig, cacheDir: TEST_CACHE_DIR })
      const shim = await readFile(output)
      t.same(parseElf(shim).sections, [], 'stripped')
      t.equal(inspectFile(shim, output).shim?.target, '/usr/bin/id')
      const r = spawnSync(output, [], { env: { PATH: '/usr/bin:/bin', LC_ALL: 'C', [DEBUG_ENV]: '1' }, timeout: 30_000 })
      t.equal(r.status, 0, `exit 0 (stderr: ${r.stderr.toString()})`)
      const debug = parseDebug(r.stderr, 'toolbox')
      t.equal(debug.mode, 'host', 'mode: host')
      t.equal(debug.exec.toString(), '/usr/bin/id')
      t.match(r.stdout.toString(), /^uid=\d+/, 'id ran')
      t.equal(r.stdout.toString(), native.stdout.toString(), 'the same output as id itself')
    })
  }
})
