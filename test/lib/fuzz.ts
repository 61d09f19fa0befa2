// libFuzzer harnesses for the shim's C, built from the C that renderShim()
// generates (never a copy): test/fuzz/*.c include the rendered source as
// "shim.c", so the shim's static functions are what is fuzzed. This module
// renders, compiles with clang-14 (-fsanitize=fuzzer,address,undefined),
// writes seed corpora (crafted ELF files, this machine's real binaries,
// encoded host trees and ld.so.conf files), runs a harness for a bounded time
// and reads libFuzzer's statistics and findings back.
//
// Used by test/fuzz.test.ts (a bounded run in `npm test`) and test/fuzz/run.ts
// (`npm run fuzz`, as long as you like).

import { spawn, spawnSync } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { mkdir, readdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { ARCHES, type Arch, type ArchName } from '../../launcher/arch.js'
import { shimConfigOf, validateConfig, type ShimConfig } from '../../launcher/config.js'
import { constants } from 'node:os'
import { PLAN_FORMAT, isHostErr, planShim, readElf, resolveInRoot, type HostErr, type HostFile, type HostStat, type HostView } from '../../launcher/plan.js'
import { renderShim } from '../../shim/template.js'
import {
  EM_386,
  EM_AARCH64,
  EM_X86_64,
  ET_DYN,
  ET_EXEC,
  ET_REL,
  PF_R,
  PF_W,
  PF_X,
  PT_GNU_PROPERTY,
  PT_GNU_STACK,
  PT_INTERP,
  aarch64Feature,
  gnuPropertyNote,
  PT_LOAD,
  PT_NULL,
  craftElf,
  type CraftOptions,
  type CraftSegment,
} from './elfcraft.js'

export const CLANG = process.env.HOSTSHIM_CLANG ?? 'clang-14'
export const FUZZ_DIR = fileURLToPath(new URL('../fuzz/', import.meta.url))

/** Flags for a harness: libFuzzer, ASan, UBSan (every report fatal), the shim's own warnings. */
export const FUZZ_CFLAGS = [
  '-std=gnu11',
  '-g',
  '-O1',
  '-fsanitize=fuzzer,address,undefined',
  '-fno-sanitize-recover=all',
  '-Wall',
  '-Wextra',
  '-Werror',
] as const

export type HarnessName = 'read_elf' | 'resolve' | 'ldconf' | 'map_loader' | 'plan_parse'

export interface Harness {
  /** e.g. "read_elf-i686": the harness and the architecture its shim was rendered for */
  readonly id: string
  readonly name: HarnessName
  readonly arch: ArchName
  /** libFuzzer -max_len */
  readonly maxLen: number
  /** render the shim in chainload mode (FUZZ_CONFIG with mode "chainload"); the arch must be this machine's */
  readonly chainload?: boolean
}

export const HARNESSES: readonly Harness[] = [
  { id: 'read_elf-x86_64', name: 'read_elf', arch: 'x86_64', maxLen: 8192 },
  // The same C with Elf32 types: the class is a compile-time switch of the shim.
  { id: 'read_elf-i686', name: 'read_elf', arch: 'i686', maxLen: 8192 },
  { id: 'resolve', name: 'resolve', arch: 'x86_64', maxLen: 4096 },
  { id: 'ldconf', name: 'ldconf', arch: 'x86_64', maxLen: 8192 },
  // The plan cache's file (shim/plancache.ts plan_parse()).
  { id: 'plan_parse', name: 'plan_parse', arch: 'x86_64', maxLen: 8192 },
  // Chainload's map_loader(): its jump is x86_64 assembly, which this machine assembles.
  // 64 KiB: room for the real loader's first pages (its whole 200 KiB would make every input slow).
  { id: 'map_loader', name: 'map_loader', arch: 'x86_64', maxLen: 65536, chainload: true },
]

/** The config the fuzzed shims are rendered from. Only argv0 (true) matters to the harnesses. */
// Exec mode: the harnesses call the functions both modes share, and the
// chainload block's jump is assembly for the shim's architecture, which the
// i686 harness, built for this machine, could not assemble. The map_loader
// harness (x86_64 only) gets it with mode "chainload": harnessConfig().
export const FUZZ_CONFIG: ShimConfig = shimConfigOf(validateConfig({ name: 'fuzz', target: '/usr/bin/fuzz-target', mode: 'exec' }))

/** The config a harness's shim is rendered from. */
export function harnessConfig(harness: Harness): ShimConfig {
  return harness.chainload ? { ...FUZZ_CONFIG, mode: 'chainload' } : FUZZ_CONFIG
}

/** clang-14 and its libFuzzer runtime are installed. */
export function haveClang(): boolean {
  const r = spawnSync(CLANG, ['--version'], { encoding: 'utf8' })
  return r.status === 0
}

/**
 * Render the shim for the harness's architecture into `dir` as shim.c and
 * compile the harness against it; returns the binary's path. `mutate` edits
 * the C first: a test that the harness notices a bug put back in.
 */
export async function buildHarness(harness: Harness, dir: string, mutate?: (c: string) => string): Promise<string> {
  const work = join(dir, mutate ? `${harness.id}-mutant` : harness.id)
  await mkdir(work, { recursive: true })
  const source = renderShim(harnessConfig(harness), ARCHES[harness.arch])
  const mutated = mutate ? mutate(source) : source
  if (mutate && mutated === source) throw new Error(`the mutation of ${harness.id} changed nothing`)
  await writeFile(join(work, 'shim.c'), mutated)
  const binary = join(work, `fuzz-${harness.id}`)
  const args = [...FUZZ_CFLAGS, '-I', work, '-I', FUZZ_DIR, join(FUZZ_DIR, `${harness.name}.c`), '-o', binary]
  const r = spawnSync(CLANG, args, { encoding: 'utf8', maxBuffer: 16 << 20 })
  if (r.error) throw r.error
  if (r.status !== 0) throw new Error(`${CLANG} ${args.join(' ')} failed:\n${r.stderr}`)
  return binary
}

// ---------------------------------------------------------------------------
// Seeds.

/** Names the resolve harness gives entries (test/fuzz/resolve.c NAMES, same order). */
export const RESOLVE_NAMES = ['a', 'b', 'c', 'lib', 'lib64', 'usr', 'bin', 'etc', 'ld.so', 'x y', 'c:d', '.hid', 'proc', 'self', 'root', 'l'] as const
type ResolveName = (typeof RESOLVE_NAMES)[number]

export interface ResolveEntry {
  readonly kind: 'dir' | 'file' | 'link' | 'fifo'
  /** index into the directories made so far; 0 is the root */
  readonly parent: number
  readonly name: ResolveName
  /** a link's text */
  readonly text?: string
}

export interface ResolveSeed {
  /** pad the root string with "/" to 4095 - padBelowMax bytes */
  readonly padBelowMax?: number
  readonly entries: readonly ResolveEntry[]
  readonly paths: readonly string[]
}

/** A string field of the resolve harness: length, repeat, bytes. `repeat` copies in all (1..32). */
function resolveString(text: string, repeat = 1): Buffer {
  const bytes = Buffer.from(text, 'latin1')
  if (bytes.length > 255 || repeat < 1 || repeat > 32) throw new Error(`resolve seed string too long: ${JSON.stringify(text)}`)
  return Buffer.concat([Buffer.of(bytes.length, repeat - 1), bytes])
}

/** The bytes test/fuzz/resolve.c reads as `seed`. */
export function encodeResolveSeed(seed: ResolveSeed): Buffer {
  const kinds = { dir: 0, file: 1, link: 2, fifo: 3 } as const
  const parts: Buffer[] = [
    Buffer.of(seed.padBelowMax === undefined ? 0 : 0x80 | seed.padBelowMax, seed.entries.length),
  ]
  for (const e of seed.entries) {
    parts.push(Buffer.of(kinds[e.kind], e.parent, RESOLVE_NAMES.indexOf(e.name)))
    if (e.kind === 'link') parts.push(resolveString(e.text ?? ''))
  }
  for (const path of seed.paths) parts.push(resolveString(path))
  return Buffer.concat(parts)
}

const dir = (name: ResolveName, parent = 0): ResolveEntry => ({ kind: 'dir', parent, name })
const file = (name: ResolveName, parent = 0): ResolveEntry => ({ kind: 'file', parent, name })
const link = (name: ResolveName, text: string, parent = 0): ResolveEntry => ({ kind: 'link', parent, name, text })

/** Host trees in the small: the distributions' layouts, loops, climbs, magic-link texts. */
export const RESOLVE_SEEDS: readonly ResolveSeed[] = [
  // Debian: /lib64/ld.so an absolute link into /lib/a (dirs: 1 lib, 2 lib/a, 3 lib64).
  {
    entries: [dir('lib'), dir('a', 1), file('ld.so', 2), dir('lib64'), link('ld.so', '/lib/a/ld.so', 3)],
    paths: ['/lib64/ld.so', '/lib64/../lib/a/ld.so', 'lib64/ld.so/', '/lib64/./ld.so'],
  },
  // Fedora: /lib64 -> usr/lib64 (dirs: 1 usr, 2 usr/lib64).
  { entries: [dir('usr'), dir('lib64', 1), file('ld.so', 2), link('lib64', 'usr/lib64')], paths: ['/lib64/ld.so', '/lib64/..', '/lib64/../..'] },
  // Arch: /lib64 -> usr/lib, /usr/lib64 -> lib.
  {
    entries: [dir('usr'), dir('lib', 1), file('ld.so', 2), link('lib64', 'usr/lib'), link('lib64', 'lib', 1)],
    paths: ['/lib64/ld.so', '/usr/lib64/ld.so', '/usr/lib64/../lib64/ld.so'],
  },
  // Loops: self, a <-> b, through a directory.
  { entries: [link('l', 'l'), link('a', 'b'), link('b', '/a'), dir('c'), link('l', '../c/l', 4)], paths: ['/l', '/a', '/c/l', '/c/l/x'] },
  // Climbing: ".." past the root, absolute texts with "..".
  { entries: [dir('usr'), file('bin', 1), link('a', '../../../../usr'), link('b', '/../../usr/../usr/bin')], paths: ['/a/bin', '/b', '/b/', '/../../a'] },
  // Magic-link texts are only text: /proc/self/root under the root is whatever the tree has there.
  {
    entries: [dir('proc'), dir('self', 1), link('root', '/', 2), file('ld.so'), link('l', '/proc/self/root/ld.so')],
    paths: ['/l', '/proc/self/root/proc/self/root/l', '/proc/self/root/../../..'],
  },
  // Files in the middle, fifos, odd names.
  { entries: [file('a'), { kind: 'fifo', parent: 0, name: 'b' }, dir('x y'), dir('c:d'), dir('.hid')], paths: ['/a/b', '/b/', '/x y/../c:d', '/.hid/.'] },
  // Paths that end in a link to "." or "..", directly or through a chain: the directory, re-stat'ed.
  {
    entries: [dir('usr'), dir('lib', 1), link('self', '.', 2), link('l', '..', 2), link('c', 'self', 2), link('a', '/usr/lib/c')],
    paths: ['/usr/lib/self', '/usr/lib/l', '/a', '/usr/lib/c/l/lib/self'],
  },
  // Empty link text (0x01 reads back empty): relative, like ".", even right after an absolute link.
  {
    entries: [dir('usr'), dir('lib', 1), link('b', '\x01', 2), link('a', '/usr/lib'), file('ld.so', 2)],
    paths: ['/a/b', '/a/b/ld.so', '/a/b/..', '/usr/lib/b/b/b'],
  },
  // The root at PATH_MAX: every name is too long, the root itself just fits (or not).
  { padBelowMax: 0, entries: [dir('a')], paths: ['/', '', '/a', '/a/..'] },
  { padBelowMax: 1, entries: [dir('a')], paths: ['/', '/..', 'a'] },
  { padBelowMax: 3, entries: [dir('a')], paths: ['/a', '/a/..', '/a/b'] },
]

/** ld.so.conf files as test/fuzz/ldconf.c reads them: parts separated by 0xff. */
export function encodeLdconfSeed(parts: readonly string[]): Buffer {
  return Buffer.concat(parts.flatMap((p, i) => (i === 0 ? [Buffer.from(p, 'latin1')] : [Buffer.of(0xff), Buffer.from(p, 'latin1')])))
}

export const LDCONF_SEEDS: readonly (readonly string[])[] = [
  // Debian
  ['include /etc/ld.so.conf.d/*.conf\n\n', '# libc default configuration\n/usr/local/lib\n', '/opt/a\n/usr/lib\n/lib64\n'],
  // Fedora: relative include
  ['include ld.so.conf.d/*.conf\n', '/usr/lib64\n', '/opt/b/\n'],
  // Arch
  ['# Dynamic linker/loader configuration.\ninclude /etc/ld.so.conf.d/*.conf\n'],
  // Nesting, loops, hwcap, odd directories, several patterns on a line
  ['include x.conf /opt/y.conf\nhwcap 0 nosegneg\n/opt/c:d\n/opt/$ORIGIN\n/loop\n/e/../opt/a\n', '', '', '.c\n', 'include /etc/x.conf\n/opt/up\n', 'include ../etc/ld.so.conf\n/opt/abs\n'],
  ['include /e/ld.so.conf.d/[a-b].conf /etc/ld.so.conf.d/?.conf /etc/ld.so.conf.d/.*\n', 'include ../ld.so.conf\n', '\tinclude\t*.conf\n', '/usr/lib\n'],
  // match(): pattern and name, after six (empty) files
  ['', '', '', '', '', '', '*a*a*a*a*a*a*a*a*b', 'a'.repeat(60)],
  ['', '', '', '', '', '', '[!]a-]*\\', ']x\\'],
]

/** Crafted ELF files for the read_elf harness of `arch`, each breaking one kernel rule or none. */
export function elfSeeds(arch: Arch): Buffer[] {
  const wide = arch.elfClass === 2
  const base: CraftOptions = { class: wide ? 64 : 32, byteOrder: arch.byteOrder === 1 ? 'little' : 'big', machine: arch.machine, load: true }
  const ld = arch.loaders[0] ?? '/lib/ld.so'
  const craft = (more: CraftOptions) => craftElf({ ...base, ...more })
  const loader = (tail: string) => Buffer.concat([craft({ type: ET_DYN }), Buffer.from(tail, 'latin1')])
  const seeds = [
    craft({}),
    craft({ interpreter: ld }),
    craft({ interpreter: `/run/host${ld}` }),
    craft({ type: ET_DYN, interpreter: ld }),
    craft({ interpreters: [ld, '/other/ld.so'] }),
    craft({ interpreter: Buffer.from(ld, 'latin1') }), // no NUL
    craft({ interpreter: Buffer.from(`${ld}\0junk\0`, 'latin1') }), // embedded NUL
    craft({ interpreter: new Uint8Array(0) }),
    craft({ interpreter: Uint8Array.of(0) }),
    craft({ interpreter: Buffer.alloc(4097, 0x61) }),
    craft({ interpreter: ld, editSegments: (s, size) => s.forEach((p) => p.type === PT_INTERP && (p.offset = size - 4)) }),
    craft({ interpreter: ld, truncate: wide ? 100 : 60 }),
    craft({ type: ET_REL }),
    craftElf({ ...base, machine: wide ? EM_AARCH64 : EM_X86_64, interpreter: ld }),
    craft({ header: { phnum: 0 } }),
    craft({ header: { phentsize: 1 } }),
    craft({ header: { phoff: 0xffffff } }),
    craft({ segments: [{ type: PT_LOAD, offset: 0, filesz: 0x1000 }] }),
    loader('\0--inhibit-cache\0--argv0\0'),
    loader('\0--argv0'), // the very last bytes
    loader('\0--argv'),
    Buffer.from('#!/bin/sh\n'),
    Buffer.alloc(0),
  ]
  if (!wide) seeds.push(craftElf({ ...base, machine: EM_386, class: 64 }))
  return seeds
}

/** The first bytes of real programs of this machine (x86_64 only): headers, PT_INTERP, notes. */
export function realBinarySeeds(maxLen: number): Buffer[] {
  const out: Buffer[] = []
  for (const path of ['/bin/ls', '/bin/busybox', '/lib64/ld-linux-x86-64.so.2', '/usr/bin/env', '/usr/lib/x86_64-linux-gnu/libc.so.6']) {
    if (existsSync(path)) out.push(readFileSync(path).subarray(0, maxLen))
  }
  return out
}

/**
 * The real loader's first `maxLen` bytes with its PT_LOADs cut to what the
 * cut file holds (a segment wholly past it moved to the file's first page,
 * at the same offset in the page, each bss as long as it was): its layout (four PT_LOADs, the bss of the
 * RW one) in a file map_loader() accepts. Elf64 little-endian only.
 */
export function fitLoaderSeed(whole: Buffer, maxLen: number): Buffer | null {
  const bytes = Buffer.from(whole.subarray(0, maxLen))
  if (bytes.length < 64 || bytes.readUInt32BE(0) !== 0x7f454c46 || bytes[4] !== 2 || bytes[5] !== 1) return null
  const phoff = Number(bytes.readBigUInt64LE(32))
  const phnum = bytes.readUInt16LE(56)
  if (phoff + phnum * 56 > bytes.length) return null
  const size = BigInt(bytes.length)
  for (let i = 0; i < phnum; i++) {
    const at = phoff + i * 56
    if (bytes.readUInt32LE(at) !== PT_LOAD) continue
    let offset = bytes.readBigUInt64LE(at + 8)
    const filesz = bytes.readBigUInt64LE(at + 32)
    if (offset + filesz <= size) continue
    if (offset >= size) offset %= 0x1000n
    const fits = size - offset < filesz ? size - offset : filesz
    const memsz = bytes.readBigUInt64LE(at + 40)
    bytes.writeBigUInt64LE(offset, at + 8)
    bytes.writeBigUInt64LE(fits, at + 32)
    // The bss stays as long as it was (a read-only segment has none).
    bytes.writeBigUInt64LE(memsz > filesz ? memsz - (filesz - fits) : fits, at + 40)
  }
  return bytes
}

/** Loader files for the map_loader harness: accepted ones of several layouts, and one of each refusal. */
export function loaderSeeds(maxLen: number): Buffer[] {
  const craft = (more: CraftOptions) => craftElf({ type: ET_DYN, load: true, ...more })
  const page = 0x1000
  // The whole file at 0, and a writable segment with a bss over the rest of its page and two pages more.
  const rw = (more: Partial<CraftSegment> = {}): CraftSegment => ({
    type: PT_LOAD,
    flags: PF_R | PF_W,
    offset: 0x40,
    vaddr: 0x10040,
    filesz: 0x80,
    memsz: 0x80 + 3 * page,
    ...more,
  })
  const prop = (properties: Parameters<typeof gnuPropertyNote>[0], override?: Parameters<typeof gnuPropertyNote>[2]): CraftSegment => ({
    type: PT_GNU_PROPERTY,
    flags: PF_R,
    align: 8,
    data: gnuPropertyNote(properties, 8, override),
  })
  const nulls = (n: number): CraftSegment[] => Array.from({ length: n }, () => ({ type: PT_NULL, flags: 0 }))
  const seeds = [
    craft({}),
    craft({ segments: [rw()] }),
    craft({ segments: [rw({ flags: PF_W })] }), // write-only
    craft({ segments: [rw({ filesz: 0, vaddr: 0x20123, offset: 0x123 })] }), // all bss, at an odd address
    craft({ segments: [rw({ vaddr: 0x10000, offset: 0, memsz: 0x100 })] }), // bss inside the file's last page
    craft({ segments: [rw({ vaddr: 0x800040 })], editSegments: (s) => s.reverse() }), // out of order, a hole
    craft({ segments: [rw({ vaddr: 0x40 })] }), // overlapping the first
    craft({ segments: [{ type: PT_LOAD, flags: PF_R | PF_X, offset: 0, vaddr: 0, filesz: 0x40, memsz: 0x40 }] }),
    craft({ segments: [{ type: PT_GNU_STACK, flags: PF_R | PF_W }] }),
    craft({ segments: [rw(), ...nulls(62)] }), // LD_PHDRS headers
    // PT_GNU_PROPERTY (the aarch64 shim's BTI): asking, not asking, other properties first, the last header counts.
    craft({ segments: [prop([aarch64Feature(1)])] }),
    craft({ segments: [prop([aarch64Feature(2)])] }),
    craft({ segments: [prop([{ type: 0xc0000000 - 1, data: Buffer.alloc(12) }, aarch64Feature(3)])] }),
    craft({ segments: [prop([aarch64Feature(1)]), prop([])] }),
    craft({ segments: [prop([aarch64Feature(1)], { descsz: 0 })] }),
    // Refused (ENOEXEC).
    craft({ segments: [rw({ flags: PF_R })] }), // a bss in a read-only segment
    craft({ segments: [rw({ vaddr: 0x10041 })] }), // file and memory pages at different offsets
    craft({ segments: [rw({ filesz: 0x100, memsz: 0x80 })] }), // p_filesz > p_memsz
    craft({ segments: [rw({ filesz: 0x100000, memsz: 0x100000 })] }), // past the file's end
    craft({ segments: [rw({ offset: 0x100040 })] }), // starting past it
    craft({ interpreter: '/lib64/ld-linux-x86-64.so.2' }), // a loader with a loader
    craft({ type: ET_EXEC }),
    // Property notes binfmt_elf refuses.
    craft({ segments: [prop([aarch64Feature(1), aarch64Feature(1)])] }), // not sorted
    craft({ segments: [prop([{ type: 0xc0000000, data: Buffer.alloc(8, 1) }])] }), // the feature word not 4 bytes
    craft({ segments: [prop([aarch64Feature(1)], { name: 'GNX' })] }),
    craft({ segments: [prop([aarch64Feature(1)], { descsz: 0x1000 })] }),
    craft({ segments: [{ type: PT_GNU_PROPERTY, flags: PF_R, data: Buffer.alloc(2000) }] }), // over 1 KiB
    craft({ segments: [{ type: PT_GNU_PROPERTY, flags: PF_R, data: Buffer.alloc(8) }] }), // shorter than a header and name
    craft({ load: false, segments: [rw({ offset: 0, vaddr: 0x10000, filesz: 0x40, memsz: 0x40 })] }), // no PT_LOAD holds the headers
    craft({ load: false }), // no PT_LOAD at all
    // Too big to reserve (ENOMEM), or to fill once reserved.
    craft({ segments: [rw({ memsz: 2 ** 52 })] }),
    craft({ segments: [rw({ memsz: 2 ** 44 })] }),
    // chainload() refuses these before map_loader(): the harness stops there too.
    craft({ segments: [rw(), ...nulls(63)] }),
    craft({ header: { phentsize: 32 } }),
    craft({ truncate: 100 }),
  ]
  const ld = '/lib64/ld-linux-x86-64.so.2'
  if (existsSync(ld)) {
    const whole = readFileSync(ld)
    // Cut to maxLen, its segments past the end: refused now (once: SIGBUS zeroing the bss).
    seeds.push(whole.subarray(0, maxLen))
    const fit = fitLoaderSeed(whole, maxLen)
    if (fit) seeds.push(fit)
  }
  return seeds
}

/** Write the harness's seed corpus into `dir`. */
export async function writeSeeds(harness: Harness, dir: string): Promise<number> {
  await mkdir(dir, { recursive: true })
  let seeds: Buffer[]
  if (harness.name === 'read_elf') {
    seeds = elfSeeds(ARCHES[harness.arch])
    if (harness.arch === 'x86_64') seeds.push(...realBinarySeeds(harness.maxLen))
  } else if (harness.name === 'map_loader') {
    seeds = loaderSeeds(harness.maxLen)
  } else if (harness.name === 'plan_parse') {
    seeds = planSeeds()
  } else if (harness.name === 'resolve') {
    seeds = RESOLVE_SEEDS.map(encodeResolveSeed)
  } else {
    seeds = LDCONF_SEEDS.map(encodeLdconfSeed)
  }
  await Promise.all(seeds.map((bytes, i) => writeFile(join(dir, `seed-${String(i).padStart(3, '0')}`), bytes)))
  return seeds.length
}

// ---------------------------------------------------------------------------
// Running.

export interface FuzzRun {
  readonly harness: Harness
  /** libFuzzer's exit status: 0 unless it found something */
  readonly status: number | null
  readonly signal: NodeJS.Signals | null
  readonly executions: number
  readonly execsPerSecond: number
  readonly newUnits: number
  readonly seconds: number
  /** files libFuzzer wrote for a finding (crash-*, timeout-*, oom-*, leak-*) */
  readonly artifacts: string[]
  /** the lines that say what was found, for a failure message */
  readonly finding: string
  readonly stderr: string
}

export interface FuzzOptions {
  /** -max_total_time */
  readonly seconds: number
  /** where new inputs go (grows across runs if kept) */
  readonly corpus: string
  /** read-only extra corpus directories (the seeds) */
  readonly seeds: readonly string[]
  /** where findings go */
  readonly artifacts: string
  /** scratch space for the harnesses' trees (tmpfs is faster) */
  readonly scratch: string
  /** libFuzzer -seed, for a repeatable run */
  readonly seed?: number
  /** per-input limit; an input slower than this is a finding (the shim must stay bounded) */
  readonly timeoutSeconds?: number
}

function stat(stderr: string, name: string): number {
  const m = new RegExp(`^stat::${name}:\\s+(\\d+)`, 'm').exec(stderr)
  return m ? Number(m[1]) : 0
}

/** Run a harness binary for a bounded time; resolves when libFuzzer exits. */
export async function runFuzzer(harness: Harness, binary: string, opts: FuzzOptions): Promise<FuzzRun> {
  for (const d of [opts.corpus, opts.artifacts, opts.scratch]) await mkdir(d, { recursive: true })
  const args = [
    `-max_total_time=${opts.seconds}`,
    `-timeout=${opts.timeoutSeconds ?? 10}`,
    '-rss_limit_mb=3072',
    `-max_len=${harness.maxLen}`,
    '-print_final_stats=1',
    `-artifact_prefix=${opts.artifacts}/${harness.id}-`,
    `-dict=${join(FUZZ_DIR, `${harness.name}.dict`)}`,
    ...(opts.seed === undefined ? [] : [`-seed=${opts.seed}`]),
    opts.corpus,
    ...opts.seeds,
  ]
  const started = Date.now()
  const { status, signal, stderr } = await new Promise<{ status: number | null; signal: NodeJS.Signals | null; stderr: string }>(
    (resolve, reject) => {
      const child = spawn(binary, args, {
        env: { ...process.env, HOSTSHIM_FUZZ_DIR: opts.scratch, ASAN_OPTIONS: 'detect_leaks=1', UBSAN_OPTIONS: 'print_stacktrace=1' },
        stdio: ['ignore', 'ignore', 'pipe'],
      })
      const chunks: Buffer[] = []
      child.stderr.on('data', (c: Buffer) => chunks.push(c))
      child.on('error', reject)
      child.on('close', (code, sig) => resolve({ status: code, signal: sig, stderr: Buffer.concat(chunks).toString('latin1') }))
    },
  )
  const artifacts = (await readdir(opts.artifacts)).filter((f) => f.startsWith(`${harness.id}-`)).map((f) => join(opts.artifacts, f))
  const finding = stderr
    .split('\n')
    .filter((l) => /check failed|ERROR: |SUMMARY: |runtime error|Test unit written|==ABORTING|deadly signal|timeout after/.test(l))
    .join('\n')
  return {
    harness,
    status,
    signal,
    executions: stat(stderr, 'number_of_executed_units'),
    execsPerSecond: stat(stderr, 'average_exec_per_sec'),
    newUnits: stat(stderr, 'new_units_added'),
    seconds: (Date.now() - started) / 1000,
    artifacts,
    finding,
    stderr,
  }
}

/** One line about a run, for logs. */
export function describeRun(run: FuzzRun): string {
  return `${run.harness.id}: ${run.executions} inputs in ${run.seconds.toFixed(1)} s (${run.execsPerSecond}/s), ${run.newUnits} new corpus units${
    run.status === 0 ? '' : `, FOUND: exit ${run.status ?? run.signal}`
  }`
}

// ---------------------------------------------------------------------------
// Replay: the C's verdicts on a corpus, next to the TypeScript model's.

/** read_elf.c's key for an input in its log: size and 64-bit FNV-1a hash. */
export function inputKey(bytes: Uint8Array): string {
  let hash = 0xcbf29ce484222325n
  for (const b of bytes) hash = ((hash ^ BigInt(b)) * 0x100000001b3n) & 0xffffffffffffffffn
  return `${bytes.length} ${hash.toString(16).padStart(16, '0')}`
}

/**
 * What read_elf.c logs for the inputs in `files` with HOSTSHIM_FUZZ_LOG set,
 * by inputKey. libFuzzer runs some inputs twice and one of its own first;
 * an input that got two different verdicts is an error.
 */
export function replayReadElf(binary: string, files: readonly string[], log: string): Map<string, string> {
  // A few hundred files per run: argv stays far below ARG_MAX.
  for (let i = 0; i < files.length; i += 500) {
    const r = spawnSync(binary, files.slice(i, i + 500), {
      env: { ...process.env, HOSTSHIM_FUZZ_LOG: log },
      stdio: ['ignore', 'ignore', 'pipe'],
      maxBuffer: 256 << 20,
    })
    if (r.status !== 0) throw new Error(`replay failed (${r.status ?? r.signal}): ${r.stderr.toString('latin1').slice(-4000)}`)
  }
  const verdicts = new Map<string, string>()
  for (const line of readFileSync(log, 'latin1').split('\n').filter(Boolean)) {
    const m = /^(\d+ [0-9a-f]{16}) (.*)$/.exec(line)
    if (!m) throw new Error(`not a replay line: ${JSON.stringify(line)}`)
    const [, key, verdict] = m as unknown as [string, string, string]
    const seen = verdicts.get(key)
    if (seen !== undefined && seen !== verdict) throw new Error(`${key}: two verdicts, ${seen} and ${verdict}`)
    verdicts.set(key, verdict)
  }
  return verdicts
}

/** A file held in memory, for the model's ELF reader. */
export function memoryFile(bytes: Buffer): HostFile {
  return {
    read(offset, length) {
      if (offset >= BigInt(bytes.length)) return Buffer.alloc(0)
      const at = Number(offset)
      return bytes.subarray(at, Math.min(bytes.length, at + length))
    },
    close() {},
  }
}

/**
 * A host tree in memory: "/t" a program whose PT_INTERP is "/ld", "/ld" the
 * given bytes (mode 0755). Enough for planShim to reach the loader checks.
 */
function loaderView(arch: Arch, loader: Buffer): HostView {
  const program = craftElf({
    class: arch.elfClass === 2 ? 64 : 32,
    byteOrder: arch.byteOrder === 1 ? 'little' : 'big',
    machine: arch.machine,
    interpreter: '/ld',
  })
  const files = new Map<string, Buffer>([
    ['/t', program],
    ['/ld', loader],
  ])
  const st = (kind: HostStat['kind'], size: number, ino: bigint): HostStat => ({ kind, size, dev: 1n, ino })
  const noent: HostErr = { errno: 'ENOENT' }
  const lookup = (path: string): HostStat | HostErr => {
    if (path === '/' || path === '') return st('dir', 0, 1n)
    const f = files.get(path)
    return f ? st('file', f.length, path === '/t' ? 2n : 3n) : noent
  }
  return {
    lstat: lookup,
    stat: lookup,
    readlink: () => ({ errno: 'EINVAL' }),
    executable: (path) => files.has(path),
    open: (path) => {
      const f = files.get(path)
      return f ? memoryFile(f) : noent
    },
    readdir: (path) => (path === '/' ? ['t', 'ld'] : noent),
  }
}

/** The model's line for one input, in read_elf.c's log format. */
export function modelReadElfVerdict(arch: Arch, bytes: Buffer): string {
  const v = readElf(memoryFile(bytes), arch)
  if (!v.ok) return v.wrongArch ? 'wrong-arch' : 'bad'
  const head = v.interp === null ? 'static' : `interp ${Buffer.from(v.interp, 'latin1').toString('hex')}`
  // --argv0 is looked for only in a loader that passed the checks: ask the plan.
  const plan = planShim({ ...FUZZ_CONFIG, target: '/t' }, arch, loaderView(arch, bytes), { mode: 'container', argv: ['x'] })
  const argv0 = plan.ok && plan.argv.includes('--argv0')
  return argv0 ? `${head} argv0` : head
}

// ---------------------------------------------------------------------------
// Replay of the resolve harness: the C's results next to resolveInRoot()'s.

/** test/fuzz/resolve.c's reading of an input: the tree it makes and the paths it resolves. */
export function decodeResolveInput(bytes: Buffer): { entries: Map<string, { kind: 'dir' | 'file' | 'symlink' | 'other'; text?: string }>; paths: string[] } {
  let at = 0
  const byte = () => (at < bytes.length ? (bytes[at++] as number) : -1)
  const string = (): string | null => {
    const len = byte()
    const rep = byte()
    if (len < 0 || rep < 0 || bytes.length - at < len) return null
    const part = Buffer.from(bytes.subarray(at, at + len)).map((b) => (b === 0 ? 0x2f : b))
    at += len
    return Buffer.from(part).toString('latin1').repeat((rep % 32) + 1)
  }
  const entries = new Map<string, { kind: 'dir' | 'file' | 'symlink' | 'other'; text?: string }>()
  const dirs = ['']
  byte()
  const count = byte()
  const paths: string[] = []
  let stop = false
  for (let i = 0; i < (count < 0 ? 0 : count % 16); i++) {
    const kind = byte()
    const parent = byte()
    const name = byte()
    if (name < 0) break
    const path = `${dirs[parent % dirs.length]}/${RESOLVE_NAMES[name % 16]}`
    const free = !entries.has(path)
    switch (kind % 4) {
      case 0:
        if (free) {
          entries.set(path, { kind: 'dir' })
          dirs.push(path)
        }
        break
      case 1:
        if (free) entries.set(path, { kind: 'file' })
        break
      case 2: {
        const text = string()
        // resolve.c: "goto walk", and the paths are read from where this string stopped.
        if (text === null) stop = true
        else if (free && text !== '') entries.set(path, { kind: 'symlink', text })
        break
      }
      default:
        if (free) entries.set(path, { kind: 'other' })
    }
    if (stop) break
  }
  for (let i = 0; i < 4; i++) {
    const text = string()
    if (text === null) break
    paths.push(text)
  }
  return { entries, paths }
}

/** The tree of a resolve input as a HostView (lstat, stat, readlink: all resolveInRoot asks). */
function resolveInputView(entries: ReturnType<typeof decodeResolveInput>['entries']): HostView {
  const st = (kind: HostStat['kind']): HostStat => ({ kind, size: 0, dev: 1n, ino: 1n })
  const lookup = (path: string): HostStat | HostErr => {
    if (path === '/' || path === '') return st('dir')
    if (path.split('/').some((c) => c.length > 255)) return { errno: 'ENAMETOOLONG' }
    const e = entries.get(path)
    return e ? st(e.kind) : { errno: 'ENOENT' }
  }
  return {
    lstat: lookup,
    stat: lookup,
    readlink: (path) => {
      const e = entries.get(path)
      if (!e || e.kind !== 'symlink') return { errno: 'EINVAL' }
      // resolve.c's readlinkat(): the one byte 0x01 reads back as an empty text.
      return e.text === '\x01' ? '' : (e.text as string)
    },
    executable: () => false,
    open: () => ({ errno: 'ENOENT' }),
    readdir: () => ({ errno: 'ENOENT' }),
  }
}

/** The model's line for one path of an input, in resolve.c's log format (after the key and index). */
export function modelResolveLine(bytes: Buffer, index: number, rootLength: number): string {
  const { entries, paths } = decodeResolveInput(bytes)
  const path = paths[index]
  if (path === undefined) return 'no such path'
  const r = resolveInRoot(resolveInputView(entries), 'r'.repeat(rootLength), path)
  if (isHostErr(r)) return `${rootLength} err ${constants.errno[r.errno]}`
  return `${rootLength} ok ${Buffer.from(r.path, 'latin1').toString('hex')} ${r.stat.kind}`
}

/** What resolve.c logs for `files` (HOSTSHIM_FUZZ_LOG): by inputKey, then by path index, "ROOTLEN ok|err ...". */
export function replayResolve(binary: string, files: readonly string[], log: string, scratch: string): Map<string, Map<number, string>> {
  for (let i = 0; i < files.length; i += 500) {
    const r = spawnSync(binary, files.slice(i, i + 500), {
      env: { ...process.env, HOSTSHIM_FUZZ_LOG: log, HOSTSHIM_FUZZ_DIR: scratch },
      stdio: ['ignore', 'ignore', 'pipe'],
      maxBuffer: 256 << 20,
    })
    if (r.status !== 0) throw new Error(`replay failed (${r.status ?? r.signal}): ${r.stderr.toString('latin1').slice(-4000)}`)
  }
  const results = new Map<string, Map<number, string>>()
  for (const line of readFileSync(log, 'latin1').split('\n').filter(Boolean)) {
    const m = /^(\d+ [0-9a-f]{16}) (\d+) (.*)$/.exec(line)
    if (!m) throw new Error(`not a replay line: ${JSON.stringify(line)}`)
    const [, key, index, result] = m as unknown as [string, string, string, string]
    const paths = results.get(key) ?? new Map<number, string>()
    const seen = paths.get(Number(index))
    if (seen !== undefined && seen !== result) throw new Error(`${key} path ${index}: two results, ${seen} and ${result}`)
    paths.set(Number(index), result)
    results.set(key, paths)
  }
  return results
}

/**
 * Plan files for the plan_parse harness, laid out as shim/plancache.ts
 * writes them (the harness fixes id, size and checksum): a direct plan, one
 * through a loader with witnesses, and a few broken ones.
 */
export function planSeeds(): Buffer[] {
  const file = (opts: { direct: boolean; target: string; loader?: string; lp?: string; origin?: string; witnesses?: string[]; caller?: number; extra?: number }): Buffer => {
    const wit = opts.witnesses ?? []
    const strings = [opts.target, opts.loader ?? '', opts.lp ?? '', opts.origin ?? '', ...wit].map((s) => Buffer.from(`${s}\0`, 'latin1'))
    const body = PLAN_FORMAT.headBytes + wit.length * PLAN_FORMAT.witnessBytes + strings.reduce((a, b) => a + b.length, 0) + (opts.extra ?? 0)
    const size = ((body + 7) & ~7) + 8
    const b = Buffer.alloc(size)
    b.write(PLAN_FORMAT.magic, 0, 'latin1')
    b.writeUInt32LE(PLAN_FORMAT.version, 8)
    b.writeUInt32LE(size, 12)
    b.writeUInt32LE(opts.direct ? 1 : 0, 72)
    b.writeUInt32LE(wit.length, 80)
    b.writeUInt32LE(Buffer.byteLength(opts.target, 'latin1'), 84)
    b.writeUInt32LE(Buffer.byteLength(opts.loader ?? '', 'latin1'), 88)
    b.writeUInt32LE(Buffer.byteLength(opts.lp ?? '', 'latin1'), 92)
    b.writeUInt32LE(Buffer.byteLength(opts.origin ?? '', 'latin1'), 104)
    wit.forEach((w, i) => {
      const at = PLAN_FORMAT.headBytes + i * PLAN_FORMAT.witnessBytes
      b.writeUInt32LE(0o40755, at + 40)
      // The first `caller` witnesses are a $ORIGIN target's, in the caller's view.
      if (i < (opts.caller ?? 0)) b.writeUInt32LE(PLAN_FORMAT.witnessCaller, at + 48)
      b.writeUInt32LE(Buffer.byteLength(w, 'latin1'), at + 52)
    })
    let at = PLAN_FORMAT.headBytes + wit.length * PLAN_FORMAT.witnessBytes
    for (const s of strings) at += s.copy(b, at)
    return b
  }
  return [
    file({ direct: true, target: '/run/host/usr/bin/busybox', witnesses: ['/run/host/usr', '/run/host/etc/ld.so.cache'] }),
    file({
      direct: false,
      target: '/run/host/usr/bin/toolbox',
      loader: '/run/host/usr/lib64/ld-linux-x86-64.so.2',
      lp: '/run/host/usr/lib64:/run/host/usr/lib',
      witnesses: ['/run/host/usr', '/run/host/usr/bin', '/run/host/usr/bin/toolbox', '/run/host/lib64', '/run/host/etc', '/run/host/etc/ld.so.cache'],
    }),
    file({
      direct: false,
      target: '/home/u/build/prog',
      loader: '/run/host/usr/lib64/ld-linux-x86-64.so.2',
      lp: '/run/host/usr/lib64',
      // The harness's key asks for as many 'o's as the head says.
      origin: 'oooooooooooooooooo',
      witnesses: ['/home', '/home/u', '/home/u/build', '/home/u/build/prog', '/run/host/usr', '/run/host/etc/ld.so.cache'],
      caller: 4,
    }),
    file({ direct: false, target: 'relative', loader: '/ld', lp: '' }),
    file({ direct: true, target: '/t', loader: '/not-for-direct' }),
    file({ direct: false, target: '/t', loader: '/ld', lp: '/lib', extra: 9 }),
    file({ direct: true, target: '/t' }).subarray(0, 60),
  ]
}
