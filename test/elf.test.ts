import t, { type Test } from 'tap'
import fc from 'fast-check'
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import {
  compareVersionNames,
  findNote,
  glibcVersionsDefined,
  glibcVersionsRequired,
  isElf,
  parseElf,
  type ElfInfo,
} from '../launcher/elf.js'
import { ShimError } from '../launcher/errors.js'
import {
  craftElf,
  craftElfWithLayout,
  EM_386,
  EM_PPC,
  EM_S390,
  EM_X86_64,
  ET_CORE,
  ET_DYN,
  ET_EXEC,
  ET_REL,
  PT_DYNAMIC,
  PT_INTERP,
  PT_NOTE,
  PT_NULL,
  type CraftOptions,
  type PlacedSegment,
} from './lib/elfcraft.js'
import { readelf } from './lib/readelf.js'
import { seedFastCheck } from './lib/seed.js'

const FC_SEED = seedFastCheck(t, 0x5eed)

// ---------------------------------------------------------------------------
// readelf as the reference (test/lib/readelf.ts: required, never skipped).

function readelfInterpreter(out: string): string | null {
  return /\[Requesting program interpreter: (.*)\]/.exec(out)?.[1] ?? null
}

function readelfDynamic(out: string) {
  const one = (re: RegExp) => re.exec(out)?.[1] ?? null
  return {
    needed: [...out.matchAll(/\(NEEDED\)\s+Shared library: \[(.*)\]/g)].map((m) => m[1]),
    soname: one(/\(SONAME\)\s+Library soname: \[(.*)\]/),
    rpath: one(/\(RPATH\)\s+Library rpath: \[(.*)\]/),
    runpath: one(/\(RUNPATH\)\s+Library runpath: \[(.*)\]/),
  }
}

function readelfVersionNeeds(out: string): { file: string; versions: string[] }[] {
  const needs: { file: string; versions: string[] }[] = []
  for (const line of out.split('\n')) {
    const file = /^\s*(?:0x)?[0-9a-f]+: Version: \d+\s+File: (\S+)\s+Cnt:/.exec(line)
    const name = /^\s*0x[0-9a-f]+:\s+Name: (\S+)\s+Flags:/.exec(line)
    if (file) needs.push({ file: file[1] ?? '', versions: [] })
    else if (name) needs.at(-1)?.versions.push(name[1] ?? '')
  }
  return needs
}

function readelfVersionDefinitions(out: string) {
  const definitions: { name: string; index: number; base: boolean; parents: string[] }[] = []
  for (const line of out.split('\n')) {
    const definition = /^\s*(?:0x)?[0-9a-f]+: Rev: \d+\s+Flags: (.+?)\s+Index: (\d+)\s+Cnt: \d+\s+Name: (\S+)/.exec(line)
    const parent = /^\s*(?:0x)?[0-9a-f]+: Parent \d+: (\S+)/.exec(line)
    if (definition) {
      definitions.push({ name: definition[3] ?? '', index: Number(definition[2]), base: /BASE/.test(definition[1] ?? ''), parents: [] })
    } else if (parent) {
      definitions.at(-1)?.parents.push(parent[1] ?? '')
    }
  }
  return definitions
}

function readelfProgramHeaders(out: string) {
  const rows = [...out.matchAll(/^\s+(\S+)\s+0x([0-9a-f]+) 0x([0-9a-f]+) 0x[0-9a-f]+ 0x([0-9a-f]+) 0x([0-9a-f]+) /gm)]
  return rows.map((m) => ({
    typeName: m[1] ?? '',
    offset: parseInt(m[2] ?? '', 16),
    vaddr: parseInt(m[3] ?? '', 16),
    filesz: parseInt(m[4] ?? '', 16),
    memsz: parseInt(m[5] ?? '', 16),
  }))
}

function readelfSectionNames(out: string): string[] {
  return [...out.matchAll(/^\s+\[\s*\d+\] (\S*)\s+\S+/gm)].map((m) => m[1] ?? '')
}

function readelfNotes(out: string): string[] {
  return [...out.matchAll(/^\s{2}(\S+)\s+0x([0-9a-f]{8})\s/gm)].map((m) => `${m[1]}/${parseInt(m[2] ?? '', 16)}`).sort()
}

// ---------------------------------------------------------------------------
// Real binaries on this machine.

/** Compares everything readelf can tell us about `file` with parseElf's view. */
function compareWithReadelf(t: Test, file: string, info: ElfInfo, { notes = true } = {}): void {
  const header = readelf(file, '-h')
  t.equal(info.typeName, /Type:\s+(\S+)/.exec(header)?.[1], 'e_type')
  t.equal(info.entry, parseInt(/Entry point address:\s+0x([0-9a-f]+)/.exec(header)?.[1] ?? '', 16), 'e_entry')

  const segments = readelf(file, '-lW')
  t.equal(info.interpreter, readelfInterpreter(segments), 'interpreter is readelf\'s "Requesting program interpreter"')
  const theirs = readelfProgramHeaders(segments)
  t.equal(info.programHeaders.length, theirs.length, 'program header count')
  t.same(
    info.programHeaders.map(({ offset, vaddr, filesz, memsz }) => ({ offset, vaddr, filesz, memsz })),
    theirs.map(({ offset, vaddr, filesz, memsz }) => ({ offset, vaddr, filesz, memsz })),
    'program header offsets and sizes',
  )
  t.same(
    info.programHeaders.map((p) => p.typeName),
    theirs.map((p) => p.typeName),
    'program header types',
  )

  const dynamic = readelfDynamic(readelf(file, '-dW'))
  t.same(info.dynamic?.needed ?? [], dynamic.needed, 'DT_NEEDED as readelf -d lists them')
  t.equal(info.dynamic?.soname ?? null, dynamic.soname, 'DT_SONAME')
  t.equal(info.dynamic?.rpath ?? null, dynamic.rpath, 'DT_RPATH')
  t.equal(info.dynamic?.runpath ?? null, dynamic.runpath, 'DT_RUNPATH')

  const versions = readelf(file, '-VW')
  t.same(info.versionsNeeded, readelfVersionNeeds(versions), 'version needs as readelf -V lists them')
  t.same(info.versionDefinitions, readelfVersionDefinitions(versions), 'version definitions as readelf -V lists them')

  t.same(
    info.sections.map((s) => s.name),
    readelfSectionNames(readelf(file, '-SW')),
    'section names',
  )
  if (notes) {
    const noteText = readelf(file, '-nW')
    t.same(info.notes.map((n) => `${n.name}/${n.desc.length}`).sort(), readelfNotes(noteText), 'notes: owners and sizes')
    const buildId = /Build ID: ([0-9a-f]+)/.exec(noteText)?.[1]
    if (buildId) t.equal(Buffer.from(findNote(info, 'GNU', 3)?.desc ?? []).toString('hex'), buildId, 'NT_GNU_BUILD_ID')
  }
  t.same(info.warnings, [], 'no warnings')
}

const COMMON_PROGRAMS = [
  '/usr/bin/id',
  '/bin/ls',
  '/usr/bin/env',
  '/usr/bin/find',
  '/usr/bin/tar',
  '/usr/bin/perl',
  '/usr/bin/git',
  '/usr/bin/python3',
  '/usr/bin/gpg',
  '/usr/bin/ssh',
].filter((file) => existsSync(file))
const LOADER = '/lib64/ld-linux-x86-64.so.2'
const LIBC = '/lib/x86_64-linux-gnu/libc.so.6'
const BUSYBOX = '/bin/busybox'
const ON_X86_64 = process.arch === 'x64'

t.test('real dynamic programs agree with readelf', { skip: !ON_X86_64 }, async (t) => {
  t.ok(COMMON_PROGRAMS.length >= 5, 'enough programs to look at')
  for (const file of COMMON_PROGRAMS) {
    t.test(file, async (t) => {
      const bytes = readFileSync(file)
      t.ok(isElf(bytes))
      const info = parseElf(bytes, file)
      t.equal(info.class, 64)
      t.equal(info.byteOrder, 'little')
      t.equal(info.machine, 62)
      t.equal(info.machineName, 'x86_64')
      t.equal(info.arch, 'x86_64')
      t.equal(info.interpreter, '/lib64/ld-linux-x86-64.so.2')
      t.equal(info.interpreterError, null)
      t.equal(info.kernelWouldReject, null)
      t.equal(info.isStatic, false)
      t.equal(info.staticPie, false)
      t.ok(info.dynamic?.needed.includes('libc.so.6'), 'needs libc.so.6')
      t.ok(glibcVersionsRequired(info).includes('GLIBC_2.2.5'), 'needs the x86_64 baseline GLIBC_2.2.5')
      compareWithReadelf(t, file, info)
    })
  }
})

t.test('/usr/bin/id in detail', { skip: !existsSync('/usr/bin/id') || !ON_X86_64 }, async (t) => {
  const info = parseElf(readFileSync('/usr/bin/id'))
  // NT_GNU_ABI_TAG: OS 0 (Linux) and the oldest kernel, 3.2.0 on Debian 12.
  const abiTag = findNote(info, 'GNU', 1)
  t.ok(abiTag)
  const words = abiTag ? Array.from({ length: 4 }, (_, i) => new DataView(abiTag.desc.buffer).getUint32(i * 4, true)) : []
  t.same(words, [0, 3, 2, 0])
  t.equal(findNote(info, 'GNU', 3)?.desc.length, 20, 'a 160-bit build ID')
  t.equal(findNote(info, 'GNU', 0x1234), undefined)
  t.ok(info.sections.some((s) => s.name === '.gnu.version_r'))
})

t.test('the loader: ET_DYN, no PT_INTERP, defines the GLIBC versions', { skip: !existsSync(LOADER) || !ON_X86_64 }, async (t) => {
  const info = parseElf(readFileSync(LOADER))
  t.equal(info.typeName, 'DYN')
  t.equal(info.type, ET_DYN)
  t.equal(info.interpreter, null)
  t.equal(info.hasInterpreter, false)
  t.equal(info.interpreterError, null)
  t.equal(info.kernelWouldReject, null)
  t.equal(info.staticPie, true, 'relocates itself')
  t.equal(info.isStatic, true, 'runs without a loader')
  t.same(info.dynamic?.needed, [])
  t.equal(info.dynamic?.soname, 'ld-linux-x86-64.so.2')
  t.ok(info.versionsDefined.includes('GLIBC_2.2.5'))
  t.ok(info.versionsDefined.includes('GLIBC_PRIVATE'))
  t.equal(info.versionDefinitions[0]?.base, true)
  t.equal(info.versionDefinitions[0]?.name, 'ld-linux-x86-64.so.2')
  t.same(info.versionsNeeded, [])
  compareWithReadelf(t, LOADER, info)
})

t.test('libc.so.6 defines GLIBC_2.34 and GLIBC_2.36', { skip: !existsSync(LIBC) || !ON_X86_64 }, async (t) => {
  const info = parseElf(readFileSync(LIBC))
  t.equal(info.dynamic?.soname, 'libc.so.6')
  const defined = glibcVersionsDefined(info)
  t.ok(defined.includes('GLIBC_2.34'))
  t.ok(defined.includes('GLIBC_2.36'))
  t.equal(defined[0], 'GLIBC_2.2.5', 'oldest first')
  t.same(defined, [...defined].sort(compareVersionNames), 'sorted')
  t.ok(defined.indexOf('GLIBC_2.9') < defined.indexOf('GLIBC_2.10'), 'numeric, not textual, order')
  t.notOk(defined.includes('GLIBC_PRIVATE'), 'unnumbered names are left out')
  t.ok(info.versionsDefined.includes('GLIBC_PRIVATE'), '...but stay in versionsDefined')
  // GLIBC_2.3 inherits from GLIBC_2.2.6, which inherits from GLIBC_2.2.5.
  t.same(info.versionDefinitions.find((d) => d.name === 'GLIBC_2.3')?.parents, ['GLIBC_2.2.6'])
  compareWithReadelf(t, LIBC, info)
})

t.test('busybox-static: no interpreter, no dynamic section', { skip: !existsSync(BUSYBOX) || !ON_X86_64 }, async (t) => {
  const info = parseElf(readFileSync(BUSYBOX))
  t.equal(info.interpreter, null)
  t.equal(info.hasInterpreter, false)
  t.equal(info.dynamic, null)
  t.equal(info.isStatic, true)
  t.equal(info.staticPie, false)
  t.equal(info.kernelWouldReject, null)
  t.same(info.versionsNeeded, [])
  t.notOk(info.programHeaders.some((p) => p.type === PT_DYNAMIC || p.type === PT_INTERP))
  // Its NT_GNU_PROPERTY_TYPE_0 lives in a PT_NOTE with p_align 8.
  t.ok(info.programHeaders.some((p) => p.type === PT_NOTE && p.align === 8))
  t.ok(findNote(info, 'GNU', 5), 'NT_GNU_PROPERTY_TYPE_0')
  compareWithReadelf(t, BUSYBOX, info)
  t.match(readelf(BUSYBOX, '-dW'), /There is no dynamic section/)
})

t.test("node's own binary needs GLIBCXX and GLIBC versions", { skip: !ON_X86_64 }, async (t) => {
  const info = parseElf(readFileSync(process.execPath), process.execPath)
  t.ok(info.dynamic?.needed.includes('libc.so.6'))
  t.ok(
    info.versionsRequired.some((name) => name.startsWith('GLIBCXX_')),
    'libstdc++ versions',
  )
  const glibc = glibcVersionsRequired(info)
  t.ok(glibc.length > 0)
  t.ok(glibc.every((name) => /^GLIBC_\d+(\.\d+)+$/.test(name)))
  t.same(glibc, [...new Set(glibc)], 'unique')
  t.equal(info.warnings.length, 0)
  const versions = readelfVersionNeeds(readelf(process.execPath, '-VW'))
  t.same(info.versionsNeeded, versions)
  const required = [...new Set(versions.flatMap((v) => v.versions))].filter((v) => /^GLIBC_[0-9.]+$/.test(v))
  t.same(glibc, [...required].sort(compareVersionNames))
  t.same(info.dynamic?.needed, readelfDynamic(readelf(process.execPath, '-dW')).needed)
  t.equal(info.interpreter, readelfInterpreter(readelf(process.execPath, '-lW')))
})

// ---------------------------------------------------------------------------
// Crafted files: every class and byte order through the same checks.

const VARIANTS = [
  { label: 'ELF64 little-endian (x86_64)', class: 64, byteOrder: 'little', machine: EM_X86_64, arch: 'x86_64' },
  { label: 'ELF64 big-endian (s390x)', class: 64, byteOrder: 'big', machine: EM_S390, arch: 's390x' },
  { label: 'ELF32 little-endian (i686)', class: 32, byteOrder: 'little', machine: EM_386, arch: 'i686' },
  { label: 'ELF32 big-endian (powerpc)', class: 32, byteOrder: 'big', machine: EM_PPC, arch: null },
] as const

type Variant = (typeof VARIANTS)[number]

const PHDR_SIZE = { 32: 32, 64: 56 } as const
const HEADER_SIZE = { 32: 52, 64: 64 } as const

const latin1 = (text: string) => Uint8Array.from(text, (c) => c.charCodeAt(0))

/** Edits the first PT_INTERP after layout. */
function editInterp(edit: (segment: PlacedSegment, fileSize: number) => void): CraftOptions['editSegments'] {
  return (segments, fileSize) => {
    const interp = segments.find((s) => s.type === PT_INTERP)
    if (interp) edit(interp, fileSize)
  }
}

interface InterpCase {
  readonly name: string
  readonly options: CraftOptions
  readonly interpreter: string | null
  readonly error: RegExp | null
}

const INTERP_CASES: readonly InterpCase[] = [
  { name: 'a plain path', options: { interpreter: '/lib/ld.so.1' }, interpreter: '/lib/ld.so.1', error: null },
  {
    name: 'no NUL at the end',
    options: { interpreter: latin1('/lib/ld.so.1') },
    interpreter: '/lib/ld.so.1',
    error: /^PT_INTERP does not end with a NUL byte$/,
  },
  {
    name: 'an embedded NUL truncates the path',
    options: { interpreter: latin1('/lib/ld.so.1\0junk\0') },
    interpreter: '/lib/ld.so.1',
    error: null,
  },
  {
    name: 'p_filesz 0',
    options: { interpreter: '/lib/ld.so.1', editSegments: editInterp((s) => (s.filesz = 0)) },
    interpreter: null,
    error: /p_filesz is 0; the kernel accepts 2 to 4096 bytes/,
  },
  {
    name: 'p_filesz 1',
    options: { interpreter: '/lib/ld.so.1', editSegments: editInterp((s) => (s.filesz = 1)) },
    interpreter: '/',
    error: /p_filesz is 1;/,
  },
  { name: 'p_filesz 2, the smallest accepted', options: { interpreter: '/' }, interpreter: '/', error: null },
  {
    name: 'p_filesz 5000 (over PATH_MAX), bytes present',
    options: {
      interpreter: '/lib/ld.so.1',
      segments: [{ type: PT_NULL, data: new Uint8Array(6000) }],
      editSegments: editInterp((s) => (s.filesz = 5000)),
    },
    interpreter: '/lib/ld.so.1',
    error: /p_filesz is 5000;/,
  },
  { name: 'p_filesz 4096 exactly', options: { interpreter: `/${'x'.repeat(4094)}` }, interpreter: `/${'x'.repeat(4094)}`, error: null },
  {
    name: 'p_filesz 4097',
    options: { interpreter: `/${'x'.repeat(4095)}` },
    interpreter: `/${'x'.repeat(4095)}`,
    error: /p_filesz is 4097;/,
  },
  {
    name: 'p_offset past the end of the file',
    options: { interpreter: '/lib/ld.so.1', editSegments: editInterp((s, size) => (s.offset = size + 16)) },
    interpreter: null,
    error: /^PT_INTERP \(13 bytes at offset 0x[0-9a-f]+\) lies past the end of the file/,
  },
  {
    name: 'bytes cut off by the end of the file',
    options: { interpreter: '/lib/ld.so.1', editSegments: editInterp((s, size) => (s.offset = size - 4)) },
    interpreter: null,
    error: /lies past the end of the file/,
  },
  {
    name: 'two PT_INTERPs: the first wins',
    options: { interpreters: ['/first/ld.so', '/second/ld.so'] },
    interpreter: '/first/ld.so',
    error: null,
  },
  {
    name: 'a bad first PT_INTERP is not rescued by a good second one',
    options: { interpreters: [latin1('/first'), '/second/ld.so'] },
    interpreter: '/first',
    error: /does not end with a NUL/,
  },
  { name: 'an empty path', options: { interpreter: latin1('\0\0') }, interpreter: '', error: /empty path/ },
]

interface TableCase {
  readonly name: string
  readonly options: (v: Variant) => CraftOptions
  readonly reject: RegExp
  readonly check?: (t: Test, info: ElfInfo, v: Variant) => void
}

const nullSegments = (count: number) => Array.from({ length: count }, () => ({ type: PT_NULL }))
/** how many program headers fit in the kernel's 64 KiB */
const maxPhnum = (v: Variant) => Math.floor(65536 / PHDR_SIZE[v.class])

const TABLE_CASES: readonly TableCase[] = [
  {
    name: 'e_phentsize one byte short',
    options: (v) => ({ interpreter: '/lib/ld.so.1', header: { phentsize: PHDR_SIZE[v.class] - 1 } }),
    reject: /^e_phentsize is (31|55), not (32|56) \(the size of an ELF(32|64) program header\)$/,
    check: (t, info) => {
      t.same(info.programHeaders, [], 'entries too small to read')
      t.equal(info.hasInterpreter, false)
      t.match(info.warnings.join('\n'), /smaller than an ELF\d\d program header/)
    },
  },
  {
    name: 'e_phentsize larger than the struct',
    options: (v) => ({ interpreter: '/lib/ld.so.1', header: { phentsize: PHDR_SIZE[v.class] + 8 } }),
    reject: /^e_phentsize is (40|64), not/,
    check: (t, info) => {
      t.equal(info.programHeaders.length, 1, 'still shown')
      t.equal(info.interpreter, '/lib/ld.so.1')
      t.equal(info.interpreterError, null)
    },
  },
  {
    name: 'e_phnum 0',
    options: () => ({ interpreter: '/lib/ld.so.1', header: { phnum: 0 } }),
    reject: /^e_phnum is 0: no program headers$/,
    check: (t, info) => {
      t.same(info.programHeaders, [])
      t.equal(info.interpreter, null)
    },
  },
  {
    name: 'a table over 64 KiB',
    options: (v) => ({ interpreter: '/lib/ld.so.1', segments: nullSegments(maxPhnum(v)) }),
    reject: /^program header table is (65568|65576) bytes \(e_phnum (2049|1171)\), over the kernel's limit of 65536$/,
    check: (t, info, v) => {
      t.equal(info.programHeaders.length, maxPhnum(v) + 1, 'all entries read')
      t.equal(info.interpreter, '/lib/ld.so.1')
      t.equal(info.interpreterError, null, 'the interpreter itself is fine')
    },
  },
  {
    name: 'e_phnum 65535 with no table behind it',
    options: () => ({ interpreter: '/lib/ld.so.1', header: { phnum: 65535 } }),
    reject: /over the kernel's limit of 65536/,
    check: (t, info) => t.match(info.warnings, [/^program headers: (the table is cut off by the end of the file|stopped) after \d+ of 65535 entries/]),
  },
  {
    name: 'e_phoff past the end of the file',
    options: () => ({ interpreter: '/lib/ld.so.1', header: { phoff: 1 << 20 } }),
    reject: /^program header table \(\d+ bytes at offset 0x100000\) lies past the end of the file/,
    check: (t, info) => t.same(info.programHeaders, []),
  },
  {
    name: 'ET_REL',
    options: () => ({ type: ET_REL }),
    reject: /^e_type is REL, not EXEC or DYN/,
  },
  {
    name: 'ET_CORE',
    options: () => ({ type: ET_CORE, interpreter: latin1('no NUL') }),
    reject: /^e_type is CORE/,
    check: (t, info) => t.match(info.interpreterError, /NUL/, 'the interpreter problem is still reported on its own'),
  },
  {
    name: 'an unknown e_type',
    options: () => ({ type: 0xfe00 }),
    reject: /^e_type is ET_65024,/,
  },
]

/** A file with something in every part the reader looks at. */
function richOptions(v: Variant): CraftOptions {
  return {
    class: v.class,
    byteOrder: v.byteOrder,
    machine: v.machine,
    interpreter: '/lib/ld-test.so.1',
    needed: ['libc.so.6', 'libm.so.6'],
    rpath: '/opt/old',
    runpath: '$ORIGIN/../lib',
    versionsNeeded: [
      { file: 'libc.so.6', versions: ['GLIBC_2.34', 'GLIBC_2.2.5', 'GLIBC_PRIVATE', 'GLIBC_2.17'] },
      { file: 'libm.so.6', versions: ['GLIBC_2.29', 'GLIBC_2.2.5'] },
    ],
    notes: [
      { name: 'GNU', type: 1, desc: Uint8Array.of(0, 0, 0, 0, 3, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0) },
      { name: 'hostshim', type: 0x6873, desc: latin1('v1 built-by-test') },
    ],
  }
}

for (const v of VARIANTS) {
  const base: CraftOptions = { class: v.class, byteOrder: v.byteOrder, machine: v.machine }

  t.test(v.label, async (t) => {
    t.test('identity', async (t) => {
      const info = parseElf(craftElf({ ...base, load: true, entry: 0x401234, osabi: 3 }))
      t.equal(info.class, v.class)
      t.equal(info.byteOrder, v.byteOrder)
      t.equal(info.machine, v.machine)
      t.equal(info.arch, v.arch)
      t.equal(info.machineName, v.arch ?? `EM_${v.machine}`)
      t.equal(info.osabi, 3)
      t.equal(info.entry, 0x401234)
      t.equal(info.type, ET_EXEC)
      t.equal(info.typeName, 'EXEC')
      t.equal(info.kernelWouldReject, null)
      t.equal(info.isStatic, true, 'no PT_INTERP, no PT_DYNAMIC')
      t.equal(info.staticPie, false)
      t.same(info.warnings, [])
    })

    t.test('PT_INTERP, the kernel way', async (t) => {
      for (const c of INTERP_CASES) {
        const info = parseElf(craftElf({ ...base, ...c.options }))
        t.equal(info.interpreter, c.interpreter, `${c.name}: interpreter`)
        t.equal(info.hasInterpreter, true, `${c.name}: has PT_INTERP`)
        t.equal(info.isStatic, false, `${c.name}: not static`)
        if (c.error) {
          t.match(info.interpreterError, c.error, `${c.name}: error`)
          t.equal(info.kernelWouldReject, info.interpreterError, `${c.name}: the kernel refuses it`)
        } else {
          t.equal(info.interpreterError, null, `${c.name}: no error`)
          t.equal(info.kernelWouldReject, null, `${c.name}: the kernel takes it`)
        }
      }
    })

    t.test('the program header table, the kernel way', async (t) => {
      for (const c of TABLE_CASES) {
        const info = parseElf(craftElf({ ...base, ...c.options(v) }))
        t.match(info.kernelWouldReject, c.reject, c.name)
        c.check?.(t, info, v)
      }
      const atLimit = parseElf(craftElf({ ...base, interpreter: '/lib/ld.so.1', segments: nullSegments(maxPhnum(v) - 1) }))
      t.equal(atLimit.programHeaders.length, maxPhnum(v))
      t.equal(atLimit.kernelWouldReject, null, 'a table of exactly the limit is fine')
    })

    t.test('unreadable ELF headers throw ShimError', async (t) => {
      const good = craftElf({ ...base, interpreter: '/lib/ld.so.1' })
      const cases: [string, Uint8Array, RegExp][] = [
        ['empty', new Uint8Array(), /^not an ELF file \(starts with nothing: it is empty\)$/],
        ['three bytes of magic', good.subarray(0, 3), /^not an ELF file \(starts with 7f 45 4c\)$/],
        ['bad magic', craftElf({ ...base, patch: (b) => (b[1] = 0x46) }), /^not an ELF file \(starts with 7f 46 4c 46\)$/],
        ['shorter than e_ident', good.subarray(0, 10), /^truncated ELF file: 10 bytes, shorter than e_ident$/],
        ['bad EI_CLASS', craftElf({ ...base, patch: (b) => (b[4] = 3) }), /^unknown ELF class 3/],
        ['bad EI_DATA', craftElf({ ...base, patch: (b) => (b[5] = 0) }), /^unknown ELF byte order 0/],
        [
          'truncated header',
          good.subarray(0, HEADER_SIZE[v.class] - 1),
          new RegExp(`^truncated ELF file: ${HEADER_SIZE[v.class] - 1} bytes, a ${v.class}-bit ELF header needs ${HEADER_SIZE[v.class]}$`),
        ],
      ]
      for (const [name, bytes, message] of cases) {
        t.throws(() => parseElf(bytes), ShimError, name)
        t.throws(() => parseElf(bytes), { message }, name)
        t.throws(() => parseElf(bytes, '/opt/x y'), { message: /^"\/opt\/x y": / }, `${name}: names the file`)
      }
      t.equal(isElf(good), true)
      t.equal(isElf(good.subarray(0, 3)), false)
      t.equal(isElf(craftElf({ ...base, patch: (b) => (b[0] = 0x7e) })), false)
    })

    t.test('a truncated file never throws once the header is there', async (t) => {
      const bytes = craftElf(richOptions(v))
      const thrown: number[] = []
      const unnoticed: number[] = []
      for (let length = 0; length < bytes.length; length++) {
        try {
          const info = parseElf(bytes.subarray(0, length))
          if (info.kernelWouldReject === null && info.warnings.length === 0) unnoticed.push(length)
        } catch (err) {
          if (!(err instanceof ShimError)) throw err
          thrown.push(length)
        }
      }
      t.same(thrown, Array.from({ length: HEADER_SIZE[v.class] }, (_, i) => i), 'only lengths shorter than the header throw')
      // The section header table is last: cutting into it loses sections, noticed as a warning.
      t.same(unnoticed, [], 'every cut is reported, as a refusal or a warning')
      t.equal(parseElf(bytes).kernelWouldReject, null, 'the whole file is fine')
      t.same(parseElf(bytes).warnings, [])
    })

    t.test('dynamic section and version needs', async (t) => {
      const info = parseElf(craftElf(richOptions(v)))
      t.same(info.dynamic, { needed: ['libc.so.6', 'libm.so.6'], soname: null, rpath: '/opt/old', runpath: '$ORIGIN/../lib' })
      t.same(info.versionsNeeded, [
        { file: 'libc.so.6', versions: ['GLIBC_2.34', 'GLIBC_2.2.5', 'GLIBC_PRIVATE', 'GLIBC_2.17'] },
        { file: 'libm.so.6', versions: ['GLIBC_2.29', 'GLIBC_2.2.5'] },
      ])
      t.same(info.versionsRequired, ['GLIBC_2.2.5', 'GLIBC_2.17', 'GLIBC_2.29', 'GLIBC_2.34', 'GLIBC_PRIVATE'])
      t.same(glibcVersionsRequired(info), ['GLIBC_2.2.5', 'GLIBC_2.17', 'GLIBC_2.29', 'GLIBC_2.34'])
      t.equal(info.isStatic, false)
      t.equal(info.staticPie, false)
      t.same(info.warnings, [])
    })

    t.test('version definitions of a library', async (t) => {
      const info = parseElf(
        craftElf({ ...base, type: ET_DYN, soname: 'libdemo.so.1', needed: ['libc.so.6'], versionsDefined: ['DEMO_1.0', 'DEMO_1.1'] }),
      )
      t.same(info.versionDefinitions, [
        { name: 'libdemo.so.1', index: 1, base: true, parents: [] },
        { name: 'DEMO_1.0', index: 2, base: false, parents: [] },
        { name: 'DEMO_1.1', index: 3, base: false, parents: [] },
      ])
      t.same(info.versionsDefined, ['DEMO_1.0', 'DEMO_1.1'])
      t.equal(info.dynamic?.soname, 'libdemo.so.1')
      t.equal(info.isStatic, false, 'a shared library is not a static program')
      t.equal(info.staticPie, false)
    })

    t.test('static, static-pie and dynamic', async (t) => {
      const staticExec = parseElf(craftElf({ ...base, load: true }))
      t.same([staticExec.isStatic, staticExec.staticPie], [true, false], 'ET_EXEC without PT_INTERP and PT_DYNAMIC')
      const staticPie = parseElf(craftElf({ ...base, type: ET_DYN, dynamic: true }))
      t.same([staticPie.isStatic, staticPie.staticPie], [true, true], 'ET_DYN with PT_DYNAMIC and nothing needed')
      t.same(staticPie.dynamic, { needed: [], soname: null, rpath: null, runpath: null })
      const pie = parseElf(craftElf({ ...base, type: ET_DYN, interpreter: '/lib/ld.so.1', needed: ['libc.so.6'] }))
      t.same([pie.isStatic, pie.staticPie], [false, false], 'a PIE with an interpreter')
    })

    t.test('section headers: names, and failures that stay local', async (t) => {
      const { bytes, layout } = craftElfWithLayout(richOptions(v))
      const info = parseElf(bytes)
      t.same(
        info.sections.map((s) => s.name),
        ['', '.interp', '.dynstr', '.gnu.version_r', '.dynamic', '.note', '.shstrtab'],
      )
      t.equal(info.sections[1]?.offset, layout.blobs.interp0?.offset)

      const none = parseElf(craftElf({ ...richOptions(v), sections: false }))
      t.same(none.sections, [])
      t.same(none.warnings, [], 'no section headers is normal')
      t.same(none.dynamic, info.dynamic)
      t.same(none.notes, info.notes)

      const damaged: [string, CraftOptions['header'], RegExp][] = [
        ['e_shoff past the end', { shoff: 1 << 20 }, /^section headers: the table \(7 entries at offset 0x100000\) lies past the end/],
        ['a wrong e_shentsize', { shentsize: 12 }, /^section headers: e_shentsize is 12, not (40|64); not read$/],
      ]
      for (const [name, header, warning] of damaged) {
        const broken = parseElf(craftElf({ ...richOptions(v), header }))
        t.same(broken.sections, [], name)
        t.match(broken.warnings, [warning], name)
        t.equal(broken.interpreter, '/lib/ld-test.so.1', `${name}: the rest is still read`)
        t.same(broken.dynamic, info.dynamic, `${name}: dynamic still read`)
        t.same(broken.versionsNeeded, info.versionsNeeded, `${name}: versions still read`)
      }

      const noNameTable = parseElf(craftElf({ ...richOptions(v), header: { shstrndx: 0 } }))
      t.ok(noNameTable.sections.every((s) => s.name === ''), 'e_shstrndx SHN_UNDEF: no names')
      t.same(noNameTable.warnings, [], '...which is allowed')

      const unnamed = parseElf(craftElf({ ...richOptions(v), header: { shstrndx: 99 } }))
      t.ok(unnamed.sections.length === 7 && unnamed.sections.every((s) => s.name === ''), 'a bad e_shstrndx leaves names empty')
      t.match(unnamed.warnings, [/e_shstrndx 99 is not a readable string table/])

      // A name offset past the end of .shstrtab: that one name is empty.
      const shentsize = v.class === 64 ? 64 : 40
      const badName = parseElf(
        craftElf({
          ...richOptions(v),
          patch: (b, l) => {
            const at = l.shoff + shentsize // section 1's sh_name
            if (v.byteOrder === 'little') b.writeUInt32LE(5000, at)
            else b.writeUInt32BE(5000, at)
          },
        }),
      )
      t.equal(badName.sections[1]?.name, '')
      t.equal(badName.sections[2]?.name, '.dynstr')
      t.match(badName.warnings, [/string 5000 lies past its end/])
    })

    t.test('dynamic strings and versions found through section headers', async (t) => {
      const expected = parseElf(craftElf(richOptions(v)))
      // Without a PT_LOAD, addresses can only be mapped through sections.
      const noLoad = parseElf(craftElf({ ...richOptions(v), load: false }))
      t.same(noLoad.dynamic, expected.dynamic)
      t.same(noLoad.versionsNeeded, expected.versionsNeeded)
      t.same(noLoad.warnings, [])
      // Without PT_DYNAMIC, the dynamic section is found as SHT_DYNAMIC.
      const noSegment = parseElf(
        craftElf({ ...richOptions(v), editSegments: (segments) => segments.forEach((s) => s.type === PT_DYNAMIC && (s.type = PT_NULL)) }),
      )
      t.same(noSegment.dynamic, expected.dynamic)
      t.same(noSegment.versionsNeeded, expected.versionsNeeded)
      // A PT_DYNAMIC pointing past the end of the file: the same, with a warning.
      const pastEnd = parseElf(
        craftElf({ ...richOptions(v), editSegments: (segments, size) => segments.forEach((s) => s.type === PT_DYNAMIC && (s.offset = size)) }),
      )
      t.same(pastEnd.dynamic, expected.dynamic)
      t.match(pastEnd.warnings, [/PT_DYNAMIC lies past the end of the file; read SHT_DYNAMIC instead/])
      // Neither PT_LOAD nor section headers: the strings cannot be found.
      const lost = parseElf(craftElf({ ...richOptions(v), load: false, sections: false }))
      t.equal(lost.dynamic, null)
      t.same(lost.versionsNeeded, [])
      t.match(lost.warnings, [/^dynamic section: DT_NEEDED present but DT_STRTAB cannot be found/])
      t.equal(lost.interpreter, '/lib/ld-test.so.1')
    })

    t.test('notes', async (t) => {
      const { bytes } = craftElfWithLayout(richOptions(v))
      const info = parseElf(bytes)
      t.equal(info.notes.length, 2, 'listed once though both PT_NOTE and .note hold them')
      const note = findNote(info, 'hostshim')
      t.equal(note?.type, 0x6873)
      t.same(note?.desc, latin1('v1 built-by-test'))
      t.equal(findNote(info, 'hostshim', 0x6873), note)
      t.equal(findNote(info, 'hostshim', 1), undefined)
      t.equal(findNote(info, 'GNU')?.desc.length, 16)
      t.equal(findNote(info, 'nobody'), undefined)
      t.equal(note?.desc.constructor, Uint8Array, 'a plain Uint8Array, not a Buffer view')
      bytes.fill(0)
      t.same(note?.desc, latin1('v1 built-by-test'), 'a copy: later changes to the input do not show')

      const aligned8 = parseElf(
        craftElf({
          ...base,
          noteAlign: 8,
          notes: [
            { name: 'abcd', type: 7, desc: Uint8Array.of(1, 2, 3, 4) },
            { name: 'hostshim', type: 8, desc: Uint8Array.of(9) },
          ],
        }),
      )
      t.same(
        aligned8.notes.map((n) => [n.name, n.type, [...n.desc]]),
        [
          ['abcd', 7, [1, 2, 3, 4]],
          ['hostshim', 8, [9]],
        ],
        'a region aligned to 8 pads to 8',
      )

      const damaged = parseElf(
        craftElf({
          ...richOptions(v),
          patch: (b, l) => {
            const at = (l.blobs.notes?.offset ?? 0) + 4 // the first note's n_descsz
            if (v.byteOrder === 'little') b.writeUInt32LE(0xffff, at)
            else b.writeUInt32BE(0xffff, at)
          },
        }),
      )
      t.same(damaged.notes, [])
      t.match(damaged.warnings, [/^PT_NOTE at offset 0x[0-9a-f]+: note at offset/, /^note section "\.note": note at offset/])
      t.same(damaged.dynamic, info.dynamic, 'the rest is still read')
    })

    t.test('agrees with readelf', async (t) => {
      const dir = t.testdir()
      const files: Record<string, CraftOptions> = {
        rich: richOptions(v),
        library: { ...base, type: ET_DYN, soname: 'libdemo.so.1', needed: ['libc.so.6'], versionsDefined: ['DEMO_1.0', 'DEMO_1.1'] },
        embeddedNul: { ...base, interpreter: latin1('/lib/ld.so.1\0junk\0') },
        twoInterps: { ...base, interpreters: ['/first/ld.so', '/second/ld.so'] },
        aligned8: { ...base, noteAlign: 8, notes: [{ name: 'abcd', type: 7, desc: Uint8Array.of(1, 2, 3, 4) }, { name: 'hostshim', type: 8 }] },
      }
      for (const [name, options] of Object.entries(files)) {
        const file = join(dir, name)
        writeFileSync(file, craftElf(options))
        t.test(name, async (t) => compareWithReadelf(t, file, parseElf(readFileSync(file))))
      }
    })

    t.test('random damage throws nothing but ShimError', async (t) => {
      const bytes = craftElf(richOptions(v))
      let survived = 0
      fc.assert(
        fc.property(
          fc.array(fc.tuple(fc.nat({ max: bytes.length - 1 }), fc.nat({ max: 255 })), { minLength: 1, maxLength: 8 }),
          (edits) => {
            const copy = Buffer.from(bytes)
            for (const [at, value] of edits) copy[at] = value
            try {
              parseElf(copy)
              survived++
            } catch (err) {
              if (!(err instanceof ShimError)) throw err
            }
          },
        ),
        { numRuns: 400, seed: FC_SEED + v.machine },
      )
      t.ok(survived > 0, 'most damage is reported, not thrown')
    })
  })
}

// ---------------------------------------------------------------------------
// Details that do not depend on class or byte order.

t.test('64-bit values too large for a number are malformed', async (t) => {
  const hugeEntry = craftElf({ patch: (b) => b.writeBigUInt64LE(1n << 63n, 24) })
  t.throws(() => parseElf(hugeEntry), { message: /^e_entry is 0x8000000000000000, too large/ })
  t.throws(() => parseElf(hugeEntry), ShimError)

  const hugePhoff = craftElf({ patch: (b) => b.writeBigUInt64LE(1n << 60n, 32) })
  t.throws(() => parseElf(hugePhoff), { message: /^e_phoff is 0x1000000000000000/ })

  const hugeVaddr = craftElf({ interpreter: '/lib/ld.so.1', patch: (b, l) => b.writeBigUInt64LE(1n << 62n, l.phoff + 16) })
  t.throws(() => parseElf(hugeVaddr), { message: /^program header 0 p_vaddr is 0x4000000000000000/ })

  // Section headers are optional: a huge sh_offset costs them, nothing else.
  const hugeSection = parseElf(
    craftElf({ interpreter: '/lib/ld.so.1', needed: ['libc.so.6'], patch: (b, l) => b.writeBigUInt64LE(1n << 60n, l.shoff + 64 + 24) }),
  )
  t.same(hugeSection.sections, [])
  t.match(hugeSection.warnings, [/^section headers: section 1 sh_offset is 0x1000000000000000, too large/])
  t.same(hugeSection.dynamic?.needed, ['libc.so.6'])

  // A d_tag too large for a number is just an unknown tag.
  const hugeTag = parseElf(
    craftElf({
      needed: ['libc.so.6', 'libm.so.6'],
      patch: (b, l) => b.writeBigUInt64LE(0xffff_ffff_ffff_0001n, l.blobs.dynamic?.offset ?? 0),
    }),
  )
  t.same(hugeTag.dynamic?.needed, ['libm.so.6'])
  t.same(hugeTag.warnings, [])
})

t.test('a Buffer that is a window into a larger ArrayBuffer', async (t) => {
  const bytes = craftElf({ class: 32, byteOrder: 'big', machine: EM_PPC, interpreter: '/lib/ld.so.1', needed: ['libc.so.6'] })
  const pool = Buffer.alloc(bytes.length + 13, 0xaa)
  bytes.copy(pool, 13)
  const window = pool.subarray(13)
  t.not(window.byteOffset, 0)
  t.same(parseElf(window), parseElf(bytes))
})

t.test('section header extended numbering (e_shnum 0, SHN_XINDEX)', async (t) => {
  const plain = parseElf(craftElf({ interpreter: '/lib/ld.so.1', needed: ['libc.so.6'] }))
  const extended = parseElf(
    craftElf({
      interpreter: '/lib/ld.so.1',
      needed: ['libc.so.6'],
      header: { shnum: 0, shstrndx: 0xffff },
      patch: (b, l) => {
        b.writeBigUInt64LE(BigInt(plain.sections.length), l.shoff + 32) // section 0 sh_size
        b.writeUInt32LE(plain.sections.length - 1, l.shoff + 40) // section 0 sh_link
      },
    }),
  )
  t.same(
    extended.sections.slice(1).map((s) => s.name),
    plain.sections.slice(1).map((s) => s.name),
  )
  t.same(extended.warnings, [])
})

t.test('broken version tables become warnings', async (t) => {
  const options: CraftOptions = {
    interpreter: '/lib/ld.so.1',
    needed: ['libc.so.6'],
    versionsNeeded: [{ file: 'libc.so.6', versions: ['GLIBC_2.34'] }],
    versionsDefined: ['X_1'],
  }
  const badVersion = parseElf(
    craftElf({
      ...options,
      patch: (b, l) => {
        b.writeUInt16LE(2, l.blobs.verneed?.offset ?? 0)
        b.writeUInt16LE(7, l.blobs.verdef?.offset ?? 0)
      },
    }),
  )
  t.same(badVersion.versionsNeeded, [])
  t.same(badVersion.versionDefinitions, [])
  t.match(badVersion.warnings, [
    /^version needs \(\.gnu\.version_r\): entry 0 has vn_version 2, expected 1$/,
    /^version definitions \(\.gnu\.version_d\): entry 0 has vd_version 7, expected 1$/,
  ])
  t.same(badVersion.dynamic?.needed, ['libc.so.6'])

  const badName = parseElf(
    craftElf({ ...options, patch: (b, l) => b.writeUInt32LE(0xfffff, (l.blobs.verneed?.offset ?? 0) + 16 + 8) }),
  )
  t.match(badName.warnings, [/^version needs \(\.gnu\.version_r\): DT_STRTAB: string 1048575 lies past its end/])

  const nameless = parseElf(craftElf({ ...options, patch: (b, l) => b.writeUInt16LE(0, (l.blobs.verdef?.offset ?? 0) + 6) }))
  t.match(nameless.warnings, [/^version definitions \(\.gnu\.version_d\): entry 0 \(index 1\) has no name$/])

  // DT_VERNEED pointing nowhere, with no section headers to fall back on.
  const lost = parseElf(
    craftElf({
      ...options,
      sections: false,
      patch: (b, l) => {
        const dynamic = l.blobs.dynamic?.offset ?? 0
        for (let at = dynamic; at < dynamic + (l.blobs.dynamic?.size ?? 0); at += 16) {
          if (b.readBigUInt64LE(at) === 0x6ffffffen) b.writeBigUInt64LE(0x7fff0000n, at + 8)
        }
      },
    }),
  )
  t.match(lost.warnings, [/^version needs \(\.gnu\.version_r\): DT_VERNEED 0x7fff0000 cannot be found in the file/])
  t.same(lost.versionsDefined, ['X_1'], 'the other table is unaffected')
})

t.test('an interpreter that is not UTF-8 is shown, and said so', async (t) => {
  const info = parseElf(craftElf({ interpreter: Uint8Array.of(0x2f, 0xff, 0x6c, 0) }))
  t.equal(info.interpreter, '/\ufffdl')
  t.equal(info.interpreterError, null, 'the kernel does not care')
  t.match(info.warnings, [/PT_INTERP is not valid UTF-8/])
})

t.test('compareVersionNames orders versions as numbers', async (t) => {
  const names = ['GLIBC_2.34', 'GLIBC_2.2.5', 'GLIBC_PRIVATE', 'GLIBC_2.10', 'GLIBC_2.3', 'GLIBCXX_3.4.21', 'GCC_3.0', 'GLIBCXX_3.4.9', 'GLIBC_2.2']
  t.same(names.sort(compareVersionNames), [
    'GCC_3.0',
    'GLIBC_2.2',
    'GLIBC_2.2.5',
    'GLIBC_2.3',
    'GLIBC_2.10',
    'GLIBC_2.34',
    'GLIBCXX_3.4.9',
    'GLIBCXX_3.4.21',
    'GLIBC_PRIVATE',
  ])
  t.equal(compareVersionNames('GLIBC_2.3', 'GLIBC_2.3'), 0)
  t.ok(compareVersionNames('GLIBC_2.02', 'GLIBC_2.2') < 0, 'only equal strings are equal')
  t.ok(compareVersionNames('GLIBC_2.2', 'GLIBC_2.02') > 0)
  t.ok(compareVersionNames('X', 'X_1') < 0, 'an unnumbered name before the numbered ones of its prefix')
  t.ok(compareVersionNames('X_1', 'X') > 0)
  t.same(glibcVersionsRequired({ versionsRequired: ['GLIBC_ABI_DT_RELR', 'GLIBC_2.36', 'GLIBC_2.4'] }), ['GLIBC_2.4', 'GLIBC_2.36'])
  t.same(glibcVersionsDefined({ versionsDefined: ['GLIBC_2.4', 'GLIBC_2.4', 'GLIBC_2.2.5'] }), ['GLIBC_2.2.5', 'GLIBC_2.4'])
})
