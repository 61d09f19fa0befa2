// The plan model: what a shim will exec, computed in TypeScript from a host
// tree. shim/README.md is the algorithm; this file follows it step by step,
// and so does the C in shim/template.ts. Tests compare the shim's debug output
// with formatDebug() byte for byte, so where the README leaves a detail open
// the choice made here is the one the C makes too (each is marked "Decided").
//
// Pure: every file-system question goes through a HostView (the node:fs one
// lives in launcher/hostview.ts). Paths inside this module are host byte
// strings: one char per byte (latin1), so lengths are byte lengths, order is
// byte order and names that are not UTF-8 survive. Plans hand out ordinary
// strings (see fromHostBytes).

import type { Arch } from './arch.js'
import { originRelative, type ShimConfig } from './config.js'

/** musl's strerror() texts (the shim is linked with musl), for every errno a plan can carry. */
export const STRERROR = {
  EPERM: 'Operation not permitted',
  ENOENT: 'No such file or directory',
  EIO: 'I/O error',
  ENXIO: 'No such device or address',
  E2BIG: 'Argument list too long',
  ENOEXEC: 'Exec format error',
  EBADF: 'Bad file descriptor',
  ENOMEM: 'Out of memory',
  EACCES: 'Permission denied',
  EFAULT: 'Bad address',
  EBUSY: 'Resource busy',
  ENODEV: 'No such device',
  ENOTDIR: 'Not a directory',
  EISDIR: 'Is a directory',
  EINVAL: 'Invalid argument',
  ENFILE: 'Too many open files in system',
  EMFILE: 'No file descriptors available',
  ETXTBSY: 'Text file busy',
  EFBIG: 'File too large',
  ENAMETOOLONG: 'Filename too long',
  ELOOP: 'Symbolic link loop',
  EOVERFLOW: 'Value too large for data type',
  ESTALE: 'Stale file handle',
} as const

export type Errno = keyof typeof STRERROR

export function isErrno(code: unknown): code is Errno {
  return typeof code === 'string' && Object.hasOwn(STRERROR, code)
}

/** The WHAT of `NAME: WHAT: PATH: reason`. The C template emits these same strings. */
export const FAILURES = {
  /** resolving TARGET under the root failed */
  targetMissing: 'cannot find target',
  /** the resolved target is not a regular, executable, acceptable ELF file */
  targetBad: 'cannot run target',
  /** resolving the loader (and its usr-merged twin) failed */
  loaderMissing: 'cannot find host loader',
  /** the resolved loader is not a regular, executable, acceptable ELF file */
  loaderBad: 'bad host loader',
  /** target or loader: an acceptable ELF header whose e_machine is another architecture's */
  wrongArch: 'wrong architecture',
  /** execve() itself failed (the model never predicts this one) */
  exec: 'cannot execute',
  /** a $ORIGIN target, and neither /proc/self/exe nor an absolute AT_EXECFN says where the shim is */
  originMissing: 'cannot find the shim\'s own directory for $ORIGIN (mount /proc)',
  /** set-user-ID or AT_SECURE: refused before anything else */
  secure: 'refusing to run privileged',
  /** requireHostRoot and host mode: the host's root is not mounted at HOST_ROOT */
  noHostRoot: 'host root not mounted',
} as const

export type FailureKey = keyof typeof FAILURES

/** The fixed limits of the shim; the C template uses the same numbers. */
export const LIMITS = {
  /** PATH_MAX less the NUL: longest root + path, symlink text + rest, pattern */
  pathBytes: 4095,
  /** symbolic links followed in one resolution; the next one is ELOOP */
  links: 40,
  /** bytes read (one read()) of each ld.so.conf file */
  confBytes: 65536,
  /** include nesting: /etc/ld.so.conf is depth 0, deeper than this is not read */
  includeDepth: 8,
  /** ld.so.conf files read in all (regular files that resolved), so a hostile tree cannot make it more */
  confFiles: 64,
  /** names one include pattern may match (the first ones in directory order) */
  includeMatches: 256,
  /** bytes of matched names (each + NUL) one include pattern may hold */
  includeNameBytes: 16384,
  /** library path entries kept */
  libraryPathEntries: 128,
  /** largest PT_INTERP p_filesz */
  interpBytes: 4096,
  /** largest e_phnum * e_phentsize */
  phdrBytes: 65536,
  /** bytes at the start of a loader searched for "--argv0" */
  argv0ScanBytes: 16 << 20,
  /** section headers read to find a loader's .rodata; more, and the whole file is searched */
  sectionHeaders: 128,
  /**
   * the run's work budget: 1 per resolution and per lstat, 1 + the pattern's
   * length per directory entry an include pattern is tried on. Three
   * worst-case resolutions (1 + 41 * 2048 each) fit, so only the library
   * path can run out
   */
  workUnits: 1 << 18,
  /** a line of stderr (message or debug) is cut to this many bytes before its newline */
  lineBytes: 12287,
} as const

export type Mode = 'container' | 'host'

/** The plan cache's file (shim/plancache.ts writes it, parsePlanCache() reads it). */
export const PLAN_FORMAT = {
  magic: 'hsplan\x01\x02',
  version: 2,
  headBytes: 112,
  witnessBytes: 56,
  /** a witness's flags: stat() rather than lstat() */
  witnessFollow: 1,
  /** a witness's flags: a path of the caller's own view (a $ORIGIN target's), not under the root */
  witnessCaller: 2,
  /** witnesses one plan may have; a computation that met more keeps no plan */
  maxWitnesses: 64,
  /** bytes of a plan file; a bigger plan is not kept */
  maxBytes: 65536,
  /** a witness changed less than this long before the computation began keeps the plan from being kept */
  racySeconds: 2,
  /** the directory under $XDG_RUNTIME_DIR, and the files' prefix in it */
  dir: 'hostshim',
  filePrefix: 'plan-',
} as const

/** Why the shim computed its plan: the debug line's "plan: computed (REASON)". */
export const PLAN_REASONS = {
  /** built with planCache: false */
  off: 'cache off',
  /** XDG_RUNTIME_DIR unset, relative or too long */
  noRuntimeDir: 'no XDG_RUNTIME_DIR',
  /** no $XDG_RUNTIME_DIR/hostshim, or no file for this key in it */
  missing: 'no cache file',
  /** the directory is not one only the caller's euid can write */
  dirNotPrivate: 'cache dir not private',
  /** the file is a link, not regular, or not only the caller's euid's */
  fileNotPrivate: 'cache file not private',
  /** the file could not be opened for another reason */
  unreadable: 'cache file unreadable',
  /** bad magic, version, length, checksum, key or contents */
  invalid: 'invalid cache file',
  /** "changed: FULLPATH": the first witness that no longer holds */
  changed: 'changed',
} as const

// ---------------------------------------------------------------------------
// The host view: the shim's system calls, asked of host paths.

/** A failed call: the errno name. */
export interface HostErr {
  readonly errno: Errno
}

export interface HostStat {
  readonly kind: 'file' | 'dir' | 'symlink' | 'other'
  readonly size: number
  readonly dev: bigint
  readonly ino: bigint
  /** st_mode, type bits included; the plan cache's witnesses compare it (0 when a view does not say) */
  readonly mode?: number
  /** st_mtim and st_ctim in nanoseconds, for the plan cache's witnesses */
  readonly mtimeNs?: bigint
  readonly ctimeNs?: bigint
}

export interface HostFile {
  /** pread(): up to length bytes at offset, fewer at end of file */
  read(offset: bigint, length: number): Buffer | HostErr
  close(): void
}

/**
 * The file system as the shim sees it below its root, addressed by host path
 * (absolute, a host byte string). In a container the view maps "/usr" to
 * HOST_ROOT/usr; on the host it maps paths to themselves.
 */
export interface HostView {
  lstat(path: string): HostStat | HostErr
  stat(path: string): HostStat | HostErr
  /** the link's text, a host byte string */
  readlink(path: string): string | HostErr
  /** access(path, X_OK) === 0 */
  executable(path: string): boolean
  open(path: string): HostFile | HostErr
  /** entry names in directory (getdents) order, without "." and ".." */
  readdir(path: string): string[] | HostErr
}

export function isHostErr(value: unknown): value is HostErr {
  return typeof value === 'object' && value !== null && !Buffer.isBuffer(value) && 'errno' in value
}

// ---------------------------------------------------------------------------
// Host bytes and JavaScript strings.

/**
 * Bytes as a string: valid UTF-8 decodes normally, every other byte becomes
 * the lone surrogate U+DC00 + byte (Python's surrogateescape), so
 * toHostBytes(fromHostBytes(b)) gives b back exactly.
 */
export function fromHostBytes(bytes: Uint8Array): string {
  let out = ''
  const cont = (i: number, lo = 0x80, hi = 0xbf): boolean => {
    const b = bytes[i]
    return b !== undefined && b >= lo && b <= hi
  }
  for (let i = 0; i < bytes.length; ) {
    const b = bytes[i] as number
    let n = 0
    if (b < 0x80) n = 1
    else if (b >= 0xc2 && b <= 0xdf) n = cont(i + 1) ? 2 : 0
    else if (b >= 0xe0 && b <= 0xef) {
      const lo = b === 0xe0 ? 0xa0 : 0x80
      const hi = b === 0xed ? 0x9f : 0xbf
      n = cont(i + 1, lo, hi) && cont(i + 2) ? 3 : 0
    } else if (b >= 0xf0 && b <= 0xf4) {
      const lo = b === 0xf0 ? 0x90 : 0x80
      const hi = b === 0xf4 ? 0x8f : 0xbf
      n = cont(i + 1, lo, hi) && cont(i + 2) && cont(i + 3) ? 4 : 0
    }
    if (n === 0) {
      out += String.fromCharCode(0xdc00 + b)
      i++
    } else {
      out += Buffer.from(bytes.subarray(i, i + n)).toString('utf8')
      i += n
    }
  }
  return out
}

/** The inverse of fromHostBytes: UTF-8, with U+DC80..U+DCFF standing for single bytes. */
export function toHostBytes(text: string): Buffer {
  const parts: Buffer[] = []
  let run = ''
  for (const ch of text) {
    const cp = ch.codePointAt(0) as number
    if (cp >= 0xdc80 && cp <= 0xdcff) {
      if (run) parts.push(Buffer.from(run, 'utf8'))
      run = ''
      parts.push(Buffer.of(cp - 0xdc00))
    } else {
      run += ch
    }
  }
  if (run) parts.push(Buffer.from(run, 'utf8'))
  return Buffer.concat(parts)
}

/** A JavaScript string as a host byte string. */
export function hostString(text: string): string {
  return toHostBytes(text).toString('latin1')
}

/** A host byte string as a JavaScript string. */
export function jsString(bytes: string): string {
  return fromHostBytes(Buffer.from(bytes, 'latin1'))
}

// ---------------------------------------------------------------------------
// 2. Resolving a host path inside the root.

export interface Resolved {
  /** the resolved host path, "/" for the root itself */
  readonly path: string
  /** root + path: what the shim opens and passes on */
  readonly full: string
  /**
   * lstat of the last component walked; stat of the directory reached when the
   * walk ended after a link or ".." (a link to "." or ".."), and of the root for "/"
   */
  readonly stat: HostStat
}

/** What is left of a run's work budget (LIMITS.workUnits); a spent budget is ELOOP. */
export class WorkBudget {
  constructor(public left: number = LIMITS.workUnits) {}

  /** Take `units`; false once the budget is spent (it stays spent). */
  spend(units: number): boolean {
    this.left -= units
    return this.left >= 0
  }
}

/**
 * openat2(RESOLVE_IN_ROOT) by hand: absolute link text starts again at the
 * root, ".." stops at it, 40 links at most. `root` is "" or HOST_ROOT and
 * only counts towards ENAMETOOLONG; the view is asked with host paths.
 * `budget` is the run's (a fresh one by default): the call costs 1, each lstat 1.
 */
export function resolveInRoot(view: HostView, root: string, hostPath: string, budget = new WorkBudget()): Resolved | HostErr {
  if (hostPath.length > LIMITS.pathBytes) return { errno: 'ENAMETOOLONG' }
  if (!budget.spend(1)) return { errno: 'ELOOP' }
  let todo = hostPath
  let p = 0
  let resolved = ''
  let last: HostStat | undefined
  // Decided (the shim's "stale"): after a link or "..", `last` does not describe `resolved`.
  let stale = true
  let links = 0
  for (;;) {
    while (todo[p] === '/') p++
    if (p >= todo.length) break
    let end = todo.indexOf('/', p)
    if (end < 0) end = todo.length
    const name = todo.slice(p, end)
    if (name === '.') {
      p = end
      continue
    }
    if (name === '..') {
      resolved = resolved.slice(0, Math.max(0, resolved.lastIndexOf('/')))
      stale = true
      p = end
      continue
    }
    const candidate = `${resolved}/${name}`
    if (root.length + candidate.length > LIMITS.pathBytes) return { errno: 'ENAMETOOLONG' }
    if (!budget.spend(1)) return { errno: 'ELOOP' }
    const st = view.lstat(candidate)
    if (isHostErr(st)) return st
    last = st
    if (st.kind === 'symlink') {
      if (++links > LIMITS.links) return { errno: 'ELOOP' }
      const text = view.readlink(candidate)
      if (isHostErr(text)) return text
      const rest = todo.slice(end)
      if (text.length + rest.length > LIMITS.pathBytes) return { errno: 'ENAMETOOLONG' }
      // The link's text goes in front of what is left to walk.
      todo = text + rest
      p = 0
      if (text.startsWith('/')) resolved = ''
      stale = true
      continue
    }
    // Decided: anything left after the name, even only "/", needs a directory.
    if (end < todo.length && st.kind !== 'dir') return { errno: 'ENOTDIR' }
    resolved = candidate
    stale = false
    p = end
  }
  if (resolved === '') {
    // The root itself is root + "/": it must fit in 4095 bytes too.
    if (root.length + 1 > LIMITS.pathBytes) return { errno: 'ENAMETOOLONG' }
    const st = view.stat('/')
    if (isHostErr(st)) return st
    return { path: '/', full: `${root}/`, stat: st }
  }
  // A path that ends in a link to "." or "..", or in "..": the directory it names, stat'ed again.
  if (stale) {
    const st = view.stat(resolved)
    if (isHostErr(st)) return st
    return { path: resolved, full: root + resolved, stat: st }
  }
  return { path: resolved, full: root + resolved, stat: last as HostStat }
}

// ---------------------------------------------------------------------------
// 3. and 5. The ELF checks binfmt_elf makes before it runs a file.

const ET_EXEC = 2
const ET_DYN = 3
const PT_INTERP = 3
const SHT_PROGBITS = 1
const ELF_MAGIC = '\x7fELF'
const OFF_MAX = 2n ** 63n - 1n

export type ElfVerdict = { ok: true; interp: string | null } | { ok: false; wrongArch: boolean }

function readExact(file: HostFile, offset: bigint, length: number): Buffer | undefined {
  if (offset > OFF_MAX) return undefined
  const got = file.read(offset, length)
  return isHostErr(got) || got.length !== length ? undefined : got
}

/** Header, program headers, first PT_INTERP; any failure is ENOEXEC. */
export function readElf(file: HostFile, arch: Arch): ElfVerdict {
  const wide = arch.elfClass === 2
  const bad: ElfVerdict = { ok: false, wrongArch: false }
  const eh = readExact(file, 0n, wide ? 64 : 52)
  if (!eh || eh.toString('latin1', 0, 4) !== ELF_MAGIC) return bad
  if (eh[4] !== arch.elfClass || eh[5] !== arch.byteOrder) {
    // A well-formed identity of another kind of machine (32-bit, big-endian...) is a wrong architecture too.
    return { ok: false, wrongArch: (eh[4] === 1 || eh[4] === 2) && (eh[5] === 1 || eh[5] === 2) }
  }
  const little = arch.byteOrder === 1
  const u16 = (b: Buffer, at: number) => (little ? b.readUInt16LE(at) : b.readUInt16BE(at))
  const u32 = (b: Buffer, at: number) => (little ? b.readUInt32LE(at) : b.readUInt32BE(at))
  const word = (b: Buffer, at: number): bigint =>
    wide ? (little ? b.readBigUInt64LE(at) : b.readBigUInt64BE(at)) : BigInt(u32(b, at))
  const type = u16(eh, 16)
  if (type !== ET_EXEC && type !== ET_DYN) return bad
  // Decided: after magic, class, byte order and type, a foreign e_machine gets its own message.
  if (u16(eh, 18) !== arch.machine) return { ok: false, wrongArch: true }
  const phoff = word(eh, wide ? 32 : 28)
  const phentsize = u16(eh, wide ? 54 : 42)
  const phnum = u16(eh, wide ? 56 : 44)
  const size = phnum * phentsize
  if (phentsize !== (wide ? 56 : 32) || phnum < 1 || size > LIMITS.phdrBytes) return bad
  const ph = readExact(file, phoff, size)
  if (!ph) return bad
  for (let i = 0; i < phnum; i++) {
    const at = i * phentsize
    if (u32(ph, at) !== PT_INTERP) continue
    const offset = word(ph, at + (wide ? 8 : 4))
    const filesz = word(ph, at + (wide ? 32 : 16))
    if (filesz < 2n || filesz > BigInt(LIMITS.interpBytes)) return bad
    const text = readExact(file, offset, Number(filesz))
    if (!text || text[text.length - 1] !== 0) return bad
    return { ok: true, interp: text.toString('latin1', 0, text.indexOf(0)) }
  }
  return { ok: true, interp: null }
}

type ProgramVerdict = { ok: true; interp: string | null; file: HostFile } | { ok: false; errno: Errno; wrongArch: boolean }

/** A resolved file to be run: regular, executable (the loader would not check), acceptable ELF. */
function openProgram(view: HostView, arch: Arch, r: Resolved): ProgramVerdict {
  if (r.stat.kind === 'dir') return { ok: false, errno: 'EISDIR', wrongArch: false }
  if (r.stat.kind !== 'file' || !view.executable(r.path)) return { ok: false, errno: 'EACCES', wrongArch: false }
  const file = view.open(r.path)
  if (isHostErr(file)) return { ok: false, errno: file.errno, wrongArch: false }
  const elf = readElf(file, arch)
  if (!elf.ok) {
    file.close()
    return { ok: false, errno: 'ENOEXEC', wrongArch: elf.wrongArch }
  }
  return { ok: true, interp: elf.interp, file }
}

/**
 * Where the loader's .rodata is (its option strings live there), from its
 * section headers; undefined when they do not say. The shim's find_rodata().
 */
function findRodata(file: HostFile, arch: Arch): { offset: bigint; length: number } | undefined {
  const wide = arch.elfClass === 2
  const little = arch.byteOrder === 1
  const eh = readExact(file, 0n, wide ? 64 : 52)
  if (!eh) return undefined
  const u16 = (b: Buffer, at: number) => (little ? b.readUInt16LE(at) : b.readUInt16BE(at))
  const u32 = (b: Buffer, at: number) => (little ? b.readUInt32LE(at) : b.readUInt32BE(at))
  const word = (b: Buffer, at: number): bigint =>
    wide ? (little ? b.readBigUInt64LE(at) : b.readBigUInt64BE(at)) : BigInt(u32(b, at))
  const shoff = word(eh, wide ? 40 : 32)
  const shentsize = u16(eh, wide ? 58 : 46)
  const shnum = u16(eh, wide ? 60 : 48)
  const shstrndx = u16(eh, wide ? 62 : 50)
  if (shoff === 0n || shentsize !== (wide ? 64 : 40) || shnum < 1 || shnum > LIMITS.sectionHeaders || shstrndx >= shnum) return undefined
  const sh = readExact(file, shoff, shnum * shentsize)
  if (!sh) return undefined
  // Section header fields: sh_name, sh_type, then (64-bit) offset at 24 and size at 32, (32-bit) 16 and 20.
  const offsetOf = (i: number) => word(sh, i * shentsize + (wide ? 24 : 16))
  const sizeOf = (i: number) => word(sh, i * shentsize + (wide ? 32 : 20))
  const namesOffset = offsetOf(shstrndx)
  if (namesOffset > OFF_MAX) return undefined
  const want = Number(sizeOf(shstrndx) < 4095n ? sizeOf(shstrndx) : 4095n)
  const names = file.read(namesOffset, want)
  if (isHostErr(names)) return undefined
  for (let i = 0; i < shnum; i++) {
    const name = u32(sh, i * shentsize)
    if (u32(sh, i * shentsize + 4) !== SHT_PROGBITS || name >= names.length) continue
    const end = names.indexOf(0, name)
    if (names.toString('latin1', name, end < 0 ? names.length : end) !== '.rodata') continue
    const size = sizeOf(i)
    return { offset: offsetOf(i), length: size > BigInt(LIMITS.argv0ScanBytes) ? LIMITS.argv0ScanBytes : Number(size) }
  }
  return undefined
}

/**
 * glibc 2.33 added --argv0; older loaders refuse an option they do not know.
 * Searched in the loader's .rodata when its section headers name one, else in
 * the file from its start; argv0ScanBytes at most either way, so that a huge
 * sparse "loader" cannot stall the shim.
 */
function knowsArgv0(file: HostFile, fileSize: number, arch: Arch): boolean {
  const where = findRodata(file, arch) ?? { offset: 0n, length: fileSize }
  const size = Math.min(where.length, LIMITS.argv0ScanBytes)
  if (size <= 0 || where.offset > OFF_MAX) return false
  const chunks: Buffer[] = []
  let have = 0
  while (have < size) {
    const got = file.read(where.offset + BigInt(have), size - have)
    if (isHostErr(got) || got.length === 0) break
    chunks.push(got)
    have += got.length
  }
  return Buffer.concat(chunks).includes('--argv0', 0, 'latin1')
}

// ---------------------------------------------------------------------------
// 6. The library path.

const STAR = 0x2a
const QUESTION = 0x3f
const OPEN = 0x5b
const CLOSE = 0x5d
const BACKSLASH = 0x5c

/**
 * glob(3)'s match of one file name, in bytes: * ? [set] [!set] [^set],
 * ranges, a leading "]" is a member, an unclosed "[" is literal, \ quotes the
 * next byte outside sets, a lone \ at the end matches nothing. Decided (as
 * glob without GLOB_PERIOD): a name starting with "." matches only a pattern
 * starting with "." or "\.". Decided: on a mismatch only the last "*" takes
 * one more byte (every other element takes exactly one), so the work is at
 * most name x pattern; the shim's match() is the same loop.
 */
export function matchName(pattern: string, name: string): boolean {
  if (name[0] === '.' && pattern[0] !== '.' && (pattern[0] !== '\\' || pattern[1] !== '.')) return false
  let p = 0
  let s = 0
  let star = -1
  let retry = 0
  for (;;) {
    if (pattern.charCodeAt(p) === STAR) {
      star = ++p
      retry = s
      continue
    }
    const next = p < pattern.length && s < name.length ? matchOne(pattern, p, name.charCodeAt(s)) : -1
    if (next >= 0) {
      p = next
      s++
    } else if (p >= pattern.length && s >= name.length) {
      return true
    } else if (star >= 0 && retry < name.length) {
      p = star
      s = ++retry
    } else {
      return false
    }
  }
}

/** One element of a pattern (not "*") at `pi` against the byte `c`: the index past it, or -1. */
function matchOne(p: string, pi: number, c: number): number {
  const pc = p.charCodeAt(pi)
  if (pc === QUESTION) return pi + 1
  if (pc === OPEN) {
    let q = pi + 1
    const neg = p[q] === '!' || p[q] === '^'
    let hit = false
    if (neg) q++
    do {
      if (q >= p.length) break
      // A range the pattern's end cuts off: glibc's fnmatch() never matches.
      if (p[q + 1] === '-' && q + 2 >= p.length) return -1
      const lo = p.charCodeAt(q)
      let hi = lo
      if (p[q + 1] === '-' && p[q + 2] !== ']') {
        hi = p.charCodeAt(q + 2)
        q += 2
      }
      if (lo <= c && c <= hi) hit = true
      q++
    } while (p.charCodeAt(q) !== CLOSE)
    if (p.charCodeAt(q) === CLOSE) return hit !== neg ? q + 1 : -1
  }
  if (pc === BACKSLASH) pi++
  return p.charCodeAt(pi) === c ? pi + 1 : -1
}

const SPACE = /^[ \t\n\v\f\r]+|[ \t\n\v\f\r]+$/g

/** The library path as the shim builds it: full paths, first kept, 128 at most. */
class LibraryPath {
  readonly entries: string[] = []
  private confFiles = 0

  constructor(
    private readonly view: HostView,
    private readonly root: string,
    private readonly budget: WorkBudget,
  ) {}

  add(hostPath: string): void {
    if (this.entries.length >= LIMITS.libraryPathEntries) return
    const r = resolveInRoot(this.view, this.root, hostPath, this.budget)
    // The loader splits --library-path at ":" and ";" and expands "$ORIGIN" and friends.
    if (isHostErr(r) || r.stat.kind !== 'dir' || /[:;$]/.test(r.full)) return
    if (!this.entries.includes(r.full)) this.entries.push(r.full)
  }

  /** One ld.so.conf file, named by the path it was asked for (includes are relative to that). */
  readConf(path: string, depth: number): void {
    if (depth > LIMITS.includeDepth || this.confFiles >= LIMITS.confFiles) return
    const r = resolveInRoot(this.view, this.root, path, this.budget)
    if (isHostErr(r) || r.stat.kind !== 'file') return
    this.confFiles++
    const file = this.view.open(r.path)
    if (isHostErr(file)) return
    const data = file.read(0n, LIMITS.confBytes)
    file.close()
    if (isHostErr(data)) return
    // Decided: the text ends at its first NUL byte, like the C string it is read into.
    const nul = data.indexOf(0)
    const text = data.toString('latin1', 0, nul < 0 ? data.length : nul)
    for (const raw of text.split('\n')) {
      const hash = raw.indexOf('#')
      const line = (hash < 0 ? raw : raw.slice(0, hash)).replace(SPACE, '')
      if (line.startsWith('include') && (line[7] === ' ' || line[7] === '\t')) {
        for (const pattern of line.slice(8).split(/[ \t]/)) if (pattern) this.include(pattern, path, depth)
      } else if (line.startsWith('/')) {
        // "hwcap ..." and every other line not starting with "/" end up here unread.
        this.add(line.replace(/(?<=.)\/+$/, ''))
      }
    }
  }

  private include(pattern: string, from: string, depth: number): void {
    let path: string
    if (pattern.startsWith('/')) {
      if (pattern.length > LIMITS.pathBytes) return
      path = pattern
    } else {
      const head = from.slice(0, from.lastIndexOf('/') + 1)
      if (head.length + pattern.length > LIMITS.pathBytes) return
      path = head + pattern
    }
    const dirLen = path.lastIndexOf('/') + 1
    const base = path.slice(dirLen)
    if (!/[*?[]/.test(base)) {
      this.readConf(path, depth + 1)
      return
    }
    // Wildcards only in the last component: the directory part is a plain path.
    const dir = this.resolveDir(dirLen > 1 ? path.slice(0, dirLen - 1) : '/')
    if (dir === undefined) return
    const names = this.view.readdir(dir)
    if (isHostErr(names)) return
    const matches: string[] = []
    let used = 0
    // Matching costs up to the pattern's length per byte of name: each entry tried is charged that.
    const cost = base.length + 1
    for (const name of names) {
      const size = name.length + 1
      if (name === '.' || name === '..') continue
      if (!this.budget.spend(cost)) break
      if (matches.length === LIMITS.includeMatches || size > LIMITS.includeNameBytes - used || !matchName(base, name)) continue
      matches.push(name)
      used += size
    }
    matches.sort()
    for (const name of matches) {
      if (dirLen + name.length > LIMITS.pathBytes) continue
      this.readConf(path.slice(0, dirLen) + name, depth + 1)
    }
  }

  private resolveDir(path: string): string | undefined {
    const r = resolveInRoot(this.view, this.root, path, this.budget)
    return isHostErr(r) || r.stat.kind !== 'dir' ? undefined : r.path
  }
}

// ---------------------------------------------------------------------------
// The plan.

export interface PlanRun {
  readonly ok: true
  readonly mode: Mode
  /** the debug line's "plan:" value: "cached" or "computed (REASON)" */
  readonly plan: string
  /** the loader's full path, null when the target is exec'd directly */
  readonly loader: string | null
  /** the --library-path value, null when the target is exec'd directly */
  readonly libraryPath: string | null
  /** the path given to execve() */
  readonly exec: string
  readonly argv: readonly string[]
  /** the environment given to execve(), null when the caller's was not given */
  readonly env: readonly string[] | null
}

export interface PlanFailure {
  readonly ok: false
  readonly mode: Mode
  readonly exitCode: 126 | 127
  readonly errno: Errno
  readonly what: FailureKey
  /** the path the message names */
  readonly path: string
  /** the shim's stderr line, without the newline */
  readonly message: string
}

export type Plan = PlanRun | PlanFailure

export interface PlanOptions {
  readonly mode: Mode
  /** the shim's argv, argv[0] included; empty for argc == 0 */
  readonly argv: readonly string[]
  /** the caller's environment, "NAME=value" entries in order */
  readonly env?: readonly string[]
  /** set-user-ID or AT_SECURE */
  readonly secure?: boolean
  /**
   * What the shim finds of its plan cache. Absent: an empty cache directory
   * (or none, without XDG_RUNTIME_DIR in env), so the plan is computed.
   */
  readonly cache?: PlanCacheInput
  /**
   * For a `$ORIGIN/REL` target: the directory of the shim's resolved
   * executable (its /proc/self/exe without the last component), as the caller
   * sees it; null when the shim cannot tell (no /proc, no absolute AT_EXECFN).
   */
  readonly origin?: string | null
  /**
   * For a `$ORIGIN/REL` target: the file system as the caller sees it, where
   * the target is resolved (never under the host root). In a container, the
   * build directory is at the same path as on the host.
   */
  readonly callerView?: HostView
}

export function exitCodeOf(errno: Errno): 126 | 127 {
  return errno === 'ENOENT' || errno === 'ENOTDIR' ? 127 : 126
}

/** Cut a stderr line the way the shim's line buffer does. */
function cutLine(bytes: string): string {
  return bytes.length > LIMITS.lineBytes ? bytes.slice(0, LIMITS.lineBytes) : bytes
}

class Bail {
  constructor(
    readonly what: FailureKey,
    readonly path: string,
    readonly errno: Errno,
  ) {}
}

/** root + path as messages name what was asked for: cut at 4095 bytes. */
function inRoot(root: string, path: string): string {
  return (root + path).slice(0, LIMITS.pathBytes)
}

/** The caller's environment with the configured variables: every old one dropped, the new ones last. */
export function execEnvironment(config: ShimConfig, env: readonly string[]): string[] {
  const names = config.env.map(([name]) => `${name}=`)
  return [...env.filter((entry) => !names.some((prefix) => entry.startsWith(prefix))), ...config.env.map(([k, v]) => `${k}=${v}`)]
}

/** getenv(DEBUG_ENV) !== NULL: present, whatever its value. */
export function debugEnabled(config: ShimConfig, env: readonly string[]): boolean {
  return env.some((entry) => entry.startsWith(`${config.debugEnv}=`))
}

/** What the shim built from `config` for `arch` does when run with `opts`, over the host `view`. */
export function planShim(config: ShimConfig, arch: Arch, view: HostView, opts: PlanOptions): Plan {
  const { mode } = opts
  const root = mode === 'container' ? hostString(config.hostRoot) : ''
  try {
    if (opts.secure) throw new Bail('secure', hostString(config.target), 'EPERM')
    const asked = originAsked(config, opts)
    const verdict = planCacheVerdict(config, arch, view, opts, asked)
    const run = verdict.cached ? cachedRun(verdict.cached, opts.argv.map(hostString)) : planRun(config, arch, view, root, opts, asked)
    return {
      ok: true,
      mode,
      plan: verdict.cached ? 'cached' : `computed (${verdict.reason})`,
      loader: run.loader === null ? null : jsString(run.loader),
      libraryPath: run.libraryPath === null ? null : jsString(run.libraryPath),
      exec: jsString(run.exec),
      argv: run.argv.map(jsString),
      env: opts.env === undefined ? null : execEnvironment(config, opts.env),
    }
  } catch (error) {
    if (!(error instanceof Bail)) throw error
    const line = cutLine(`${hostString(config.name)}: ${FAILURES[error.what]}: ${escapeDebug(jsString(error.path))}: ${STRERROR[error.errno]}`)
    return {
      ok: false,
      mode,
      exitCode: exitCodeOf(error.errno),
      errno: error.errno,
      what: error.what,
      path: jsString(error.path),
      message: jsString(line),
    }
  }
}

interface RawRun {
  loader: string | null
  libraryPath: string | null
  exec: string
  argv: string[]
}

/**
 * 3a. For a `$ORIGIN/REL` target, the path asked for: the shim's directory
 * and REL, found before anything else (a host path otherwise: null).
 */
function originAsked(config: ShimConfig, opts: PlanOptions): string | null {
  const rel = originRelative(hostString(config.target))
  if (rel === null) return null
  if (opts.origin === undefined || opts.callerView === undefined) {
    throw new Error(`planShim: the target ${JSON.stringify(config.target)} needs opts.origin and opts.callerView`)
  }
  if (opts.origin === null) throw new Bail('originMissing', '/proc/self/exe', 'ENOENT')
  const asked = `${hostString(opts.origin).replace(/\/+$/, '')}/${rel}`
  if (asked.length > LIMITS.pathBytes) throw new Bail('targetMissing', inRoot('', asked), 'ENAMETOOLONG')
  return asked
}

function planRun(config: ShimConfig, arch: Arch, view: HostView, root: string, opts: PlanOptions, asked: string | null): RawRun {
  const target = hostString(config.target)
  const hostRoot = hostString(config.hostRoot)
  const argv = opts.argv.map(hostString)
  if (opts.secure) throw new Bail('secure', target, 'EPERM')

  // 1. A shim for images only refuses host mode, naming the mount it lacks:
  // stat's errno, ENOTDIR for a file, ENOENT for a directory that is "/" itself.
  if (opts.mode === 'host' && config.requireHostRoot === true) {
    const st = view.stat(hostRoot)
    throw new Bail('noHostRoot', hostRoot, isHostErr(st) ? st.errno : st.kind === 'dir' ? 'ENOENT' : 'ENOTDIR')
  }

  // 3. The target.
  // One work budget for the whole run, as the shim's global one.
  const budget = new WorkBudget()
  let t: Resolved | HostErr
  let program: ProgramVerdict
  if (asked === null) {
    t = resolveInRoot(view, root, target, budget)
    if (isHostErr(t)) throw new Bail('targetMissing', inRoot(root, target), t.errno)
    program = openProgram(view, arch, t)
  } else {
    // 3a. Next to the shim, in the caller's own view: not under the host root, whatever the mode.
    const callerView = opts.callerView as HostView
    t = resolveInRoot(callerView, '', asked, budget)
    if (isHostErr(t)) throw new Bail('targetMissing', inRoot('', asked), t.errno)
    program = openProgram(callerView, arch, t)
  }
  if (!program.ok) throw new Bail(program.wrongArch ? 'wrongArch' : 'targetBad', t.full, program.errno)
  program.file.close()

  // 4. Which way to run it.
  let hostLoader: string | null = null
  if (program.interp !== null) {
    if (program.interp.startsWith(`${hostRoot}/`)) hostLoader = program.interp.slice(hostRoot.length)
    else if (opts.mode === 'container') hostLoader = program.interp
  }
  if (hostLoader === null) return { loader: null, libraryPath: null, exec: t.full, argv }

  // 5. The loader, or its usr-merged twin for old Toolbx containers that mount only /usr.
  let l = resolveInRoot(view, root, hostLoader, budget)
  if (isHostErr(l)) {
    const first = l.errno
    const twinnable = (first === 'ENOENT' || first === 'ENOTDIR') && hostLoader.startsWith('/lib')
    if (!twinnable) throw new Bail('loaderMissing', inRoot(root, hostLoader), first)
    l = resolveInRoot(view, root, `/usr${hostLoader}`, budget)
    if (isHostErr(l)) throw new Bail('loaderMissing', inRoot(root, hostLoader), first)
  }
  const loader = openProgram(view, arch, l)
  if (!loader.ok) throw new Bail(loader.wrongArch ? 'wrongArch' : 'loaderBad', l.full, loader.errno)
  const argv0 = config.argv0 && argv.length > 0 && knowsArgv0(loader.file, l.stat.size, arch)
  loader.file.close()

  // 6. The library path: the loader's own directory first, that is where its libc is.
  const lp = new LibraryPath(view, root, budget)
  lp.add(l.path.slice(0, l.path.lastIndexOf('/')) || '/')
  lp.readConf('/etc/ld.so.conf', 0)
  for (const dir of arch.libDirs) lp.add(hostString(dir))
  for (const dir of config.libDirs) lp.add(hostString(dir))
  const libraryPath = lp.entries.join(':')

  // 7. One execve of the loader.
  const args = [l.full]
  if (argv0) args.push('--argv0', argv[0] as string)
  args.push('--inhibit-cache', '--library-path', libraryPath, t.full, ...argv.slice(1))
  return { loader: l.full, libraryPath, exec: l.full, argv: args }
}

// ---------------------------------------------------------------------------
// 9. Debug output, and the CLI's JSON.

/** Debug's escaping: bytes outside 0x20..0x7e, and "\", as \xHH. */
export function escapeDebug(text: string): string {
  let out = ''
  for (const b of toHostBytes(text)) {
    out += b >= 0x20 && b <= 0x7e && b !== BACKSLASH ? String.fromCharCode(b) : `\\x${b.toString(16).padStart(2, '0')}`
  }
  return out
}

/**
 * Exactly what the shim writes on stderr when DEBUG_ENV is set: the debug
 * lines before a successful exec, or the one error line of a failure (the
 * debug lines come only after every check passed). Compare with
 * toHostBytes() of this string.
 */
export function formatDebug(config: ShimConfig, plan: Plan): string {
  const line = (bytes: string): string => `${jsString(cutLine(bytes))}\n`
  if (!plan.ok) return line(hostString(plan.message))
  const name = hostString(config.name)
  const entry = (key: string, value: string) => line(`${name}: ${key}: ${escapeDebug(value)}`)
  return [
    entry('mode', plan.mode),
    entry('plan', plan.plan),
    entry('loader', plan.loader ?? '-'),
    entry('library-path', plan.loader === null ? '-' : (plan.libraryPath ?? '')),
    // What starts it: a chainload shim maps the loader in, no execve; the target alone is exec'd.
    entry(config.mode === 'chainload' && plan.loader !== null ? 'chainload' : 'exec', plan.exec),
    ...plan.argv.map((arg, i) => entry(`argv[${i}]`, arg)),
  ].join('')
}

export type PlanJson =
  | { mode: Mode; plan: string; loader: string | null; libraryPath: string | null; exec: string; argv: string[]; env?: string[] }
  | { mode: Mode; exitCode: 126 | 127; errno: Errno; message: string }

/** The plan as `hostshim plan` prints it (JSON.stringify the result). */
export function planToJson(plan: Plan): PlanJson {
  if (!plan.ok) return { mode: plan.mode, exitCode: plan.exitCode, errno: plan.errno, message: plan.message }
  return {
    mode: plan.mode,
    plan: plan.plan,
    loader: plan.loader,
    libraryPath: plan.libraryPath,
    exec: plan.exec,
    argv: [...plan.argv],
    ...(plan.env === null ? {} : { env: [...plan.env] }),
  }
}

// ---------------------------------------------------------------------------
// 10. The plan cache: the shim's plan_load(), in TypeScript.

/** Linux's numbers for the errnos a witness can carry (the same on every architecture hostshim builds for). */
export const ERRNO_NUMBERS: Readonly<Record<Errno, number>> = {
  EPERM: 1,
  ENOENT: 2,
  EIO: 5,
  ENXIO: 6,
  E2BIG: 7,
  ENOEXEC: 8,
  EBADF: 9,
  ENOMEM: 12,
  EACCES: 13,
  EFAULT: 14,
  EBUSY: 16,
  ENODEV: 19,
  ENOTDIR: 20,
  EISDIR: 21,
  EINVAL: 22,
  ENFILE: 23,
  EMFILE: 24,
  ETXTBSY: 26,
  EFBIG: 27,
  ENAMETOOLONG: 36,
  ELOOP: 40,
  EOVERFLOW: 75,
  ESTALE: 116,
}

/** What one lstat() (stat() when follow) of a full path gave when the plan was kept. */
export interface PlanWitness {
  readonly path: string
  readonly follow: boolean
  /** a path of the caller's own view (a $ORIGIN target's), not root + host path */
  readonly caller: boolean
  /** 0, or the errno the call failed with */
  readonly err: number
  readonly dev: bigint
  readonly ino: bigint
  readonly size: bigint
  readonly mtimeNs: bigint
  readonly ctimeNs: bigint
  readonly mode: number
}

/** A plan file's contents (host byte strings). */
export interface PlanCacheFile {
  readonly id: string
  readonly container: boolean
  readonly euid: number
  readonly rootDev: bigint
  readonly rootIno: bigint
  readonly direct: boolean
  readonly argv0: boolean
  readonly loaderSize: bigint
  readonly target: string
  readonly loader: string
  readonly libraryPath: string
  /** a $ORIGIN target's path asked for (part of the key), "" for any other */
  readonly origin: string
  readonly witnesses: readonly PlanWitness[]
}

/** FNV-1a, 64 bits, as the shim's fnv(). */
export function fnv1a64(bytes: Uint8Array, h = 0xcbf29ce484222325n): bigint {
  for (const b of bytes) h = ((h ^ BigInt(b)) * 0x100000001b3n) & 0xffffffffffffffffn
  return h
}

function u64le(v: bigint): Buffer {
  const b = Buffer.alloc(8)
  b.writeBigUInt64LE(BigInt.asUintN(64, v))
  return b
}

/** The directory a shim keeps its plans in: $XDG_RUNTIME_DIR/hostshim, or null when XDG_RUNTIME_DIR is not usable. */
export function planCacheDir(env: Readonly<Record<string, string | undefined>> | readonly string[]): string | null {
  const xdg = Array.isArray(env)
    ? (env as readonly string[]).find((e) => e.startsWith('XDG_RUNTIME_DIR='))?.slice('XDG_RUNTIME_DIR='.length)
    : (env as Readonly<Record<string, string | undefined>>).XDG_RUNTIME_DIR
  // The shim's bound: the whole file name must fit in PATH_MAX with room to spare.
  if (xdg === undefined || !xdg.startsWith('/') || toHostBytes(xdg).length > LIMITS.pathBytes + 1 - 64) return null
  return `${xdg}/${PLAN_FORMAT.dir}`
}

/**
 * The file name (in planCacheDir) of the plan for this shim build and key;
 * `origin`: a $ORIGIN target's path asked for (a host byte string), "" for
 * any other target.
 */
export function planCacheFileName(id: string, container: boolean, euid: number, rootDev: bigint, rootIno: bigint, origin = ''): string {
  let h = fnv1a64(Buffer.from(id, 'latin1'))
  for (const v of [container ? 1n : 0n, BigInt(euid), rootDev, rootIno]) h = fnv1a64(u64le(v), h)
  h = fnv1a64(Buffer.from(origin, 'latin1'), h)
  return `${PLAN_FORMAT.filePrefix}${h.toString(16).padStart(16, '0')}`
}

/** Parse a plan file for `arch` (its byte order); null when the shim would find it invalid (the key aside). */
export function parsePlanCache(bytes: Buffer, arch: Arch): PlanCacheFile | null {
  const n = bytes.length
  const { headBytes, witnessBytes } = PLAN_FORMAT
  if (n < headBytes + 8 || n > PLAN_FORMAT.maxBytes || n % 8) return null
  const le = arch.byteOrder === 1
  const u32 = (at: number) => (le ? bytes.readUInt32LE(at) : bytes.readUInt32BE(at))
  const u64 = (at: number) => (le ? bytes.readBigUInt64LE(at) : bytes.readBigUInt64BE(at))
  const end = n - 8
  if (bytes.toString('latin1', 0, 8) !== PLAN_FORMAT.magic || u32(8) !== PLAN_FORMAT.version || u32(12) !== n) return null
  if (fnv1a64(bytes.subarray(0, end)) !== u64(end)) return null
  const nWit = u32(80)
  const direct = u32(72)
  const argv0 = u32(76)
  const lens = [u32(84), u32(88), u32(92), u32(104)] as const
  if (nWit > PLAN_FORMAT.maxWitnesses || direct > 1 || argv0 > 1 || lens[0] > LIMITS.pathBytes || lens[1] > LIMITS.pathBytes) return null
  if (direct && (lens[1] || lens[2] || argv0)) return null
  let at = headBytes + nWit * witnessBytes
  if (at > end) return null
  const take = (len: number): string | null => {
    if (len > end - at || end - at - len < 1 || bytes[at + len] !== 0) return null
    const s = bytes.toString('latin1', at, at + len)
    if (s.includes('\0')) return null
    at += len + 1
    return s
  }
  const target = take(lens[0])
  const loader = target === null ? null : take(lens[1])
  const libraryPath = loader === null ? null : take(lens[2])
  const origin = libraryPath === null ? null : take(lens[3])
  if (target === null || loader === null || libraryPath === null || origin === null || !target.startsWith('/') || (!direct && !loader.startsWith('/'))) return null
  const witnesses: PlanWitness[] = []
  for (let i = 0; i < nWit; i++) {
    const w = headBytes + i * witnessBytes
    const pathLen = u32(w + 52)
    const flags = u32(w + 48)
    if (pathLen > LIMITS.pathBytes || flags > (PLAN_FORMAT.witnessFollow | PLAN_FORMAT.witnessCaller)) return null
    const path = take(pathLen)
    if (path === null) return null
    witnesses.push({
      path,
      follow: (flags & PLAN_FORMAT.witnessFollow) !== 0,
      caller: (flags & PLAN_FORMAT.witnessCaller) !== 0,
      err: u32(w + 44),
      dev: u64(w),
      ino: u64(w + 8),
      size: u64(w + 16),
      mtimeNs: u64(w + 24),
      ctimeNs: u64(w + 32),
      mode: u32(w + 40),
    })
  }
  if (((at + 7) & ~7) !== end || bytes.subarray(at, end).some((b) => b !== 0)) return null
  return {
    id: bytes.toString('latin1', 16, 48),
    container: u32(48) === 1,
    euid: u32(52),
    rootDev: u64(56),
    rootIno: u64(64),
    direct: direct === 1,
    argv0: argv0 === 1,
    loaderSize: u64(96),
    target,
    loader,
    libraryPath,
    origin,
    witnesses,
  }
}

/** A file of the runtime directory as the shim's lstat()/open()+fstat() see it. */
export interface RuntimeEntry {
  readonly kind: 'file' | 'dir' | 'symlink' | 'other'
  readonly uid: number
  /** st_mode's permission bits */
  readonly perm: number
}

/** The shim's view of its cache: the caller's runtime directory and its own identity. */
export interface PlanCacheInput {
  /** the shim build's plan id (shim/template.ts planCacheId) */
  readonly id: string
  readonly euid: number
  /** device and inode of the root: HOST_ROOT in a container, "/" on the host */
  readonly rootDev: bigint
  readonly rootIno: bigint
  /** lstat() of a path of the caller's (the runtime directory, the file) */
  lstat(path: string): RuntimeEntry | HostErr
  /** the file's bytes (at most maxBytes + 1) */
  read(path: string): Buffer | HostErr
}

type CacheVerdict = { cached: PlanCacheFile; reason?: undefined } | { cached?: undefined; reason: string }

/**
 * Whether the shim uses its kept plan, and why not: plan_load(). `asked`: a
 * $ORIGIN target's path asked for (originAsked()), part of the key.
 */
export function planCacheVerdict(config: ShimConfig, arch: Arch, view: HostView, opts: PlanOptions, asked: string | null = null): CacheVerdict {
  if (config.planCache === false) return { reason: PLAN_REASONS.off }
  const dir = planCacheDir(opts.env ?? [])
  if (dir === null) return { reason: PLAN_REASONS.noRuntimeDir }
  const input = opts.cache
  if (input === undefined) return { reason: PLAN_REASONS.missing }
  const private_ = (e: RuntimeEntry) => e.uid === input.euid && (e.perm & 0o22) === 0
  const d = input.lstat(dir)
  if (isHostErr(d)) return { reason: PLAN_REASONS.missing }
  if (d.kind !== 'dir' || !private_(d)) return { reason: PLAN_REASONS.dirNotPrivate }
  const container = opts.mode === 'container'
  const origin = asked ?? ''
  const file = `${dir}/${planCacheFileName(input.id, container, input.euid, input.rootDev, input.rootIno, origin)}`
  const f = input.lstat(file)
  if (isHostErr(f)) return { reason: f.errno === 'ENOENT' ? PLAN_REASONS.missing : PLAN_REASONS.unreadable }
  if (f.kind === 'symlink') return { reason: PLAN_REASONS.fileNotPrivate }
  if (f.kind !== 'file' || !private_(f)) return { reason: PLAN_REASONS.fileNotPrivate }
  const bytes = input.read(file)
  if (isHostErr(bytes)) return { reason: PLAN_REASONS.unreadable }
  const plan = parsePlanCache(bytes, arch)
  if (
    plan === null ||
    plan.id !== input.id ||
    plan.container !== container ||
    plan.euid !== input.euid ||
    plan.rootDev !== input.rootDev ||
    plan.rootIno !== input.rootIno ||
    plan.origin !== origin
  ) {
    return { reason: PLAN_REASONS.invalid }
  }
  const root = container ? hostString(config.hostRoot) : ''
  // A $ORIGIN target's witnesses are the caller's own paths: its view, no root.
  const holds = (w: PlanWitness) => (w.caller ? opts.callerView !== undefined && witnessHolds(opts.callerView, '', w) : witnessHolds(view, root, w))
  // The file to run is checked last, once: the shim opens it and checks the open file against its last lstat witness.
  const run = plan.direct ? plan.target : plan.loader
  let runWitness: PlanWitness | null = null
  // Directories on the way to the file to run are checked after the others: the shim's open of that
  // file (no link on its path) shows them all still directories, or it checks them one by one.
  const onWay = (w: PlanWitness) =>
    !w.follow && w.err === 0 && w.mode === S_IFDIR && w.path.length < run.length && run.startsWith(`${w.path}/`)
  for (const w of plan.witnesses) {
    if (!w.follow && w.path === run) runWitness = w
    else if (!onWay(w) && !holds(w)) return { reason: `${PLAN_REASONS.changed}: ${jsString(w.path)}` }
  }
  for (const w of plan.witnesses) {
    if (onWay(w) && !(!w.follow && w.path === run) && !holds(w)) return { reason: `${PLAN_REASONS.changed}: ${jsString(w.path)}` }
  }
  // Opened, it must be a regular file with the facts its witness recorded (never an error's).
  const isRegular = (w: PlanWitness) => w.err === 0 && (w.mode & 0o170000) === 0o100000
  if (runWitness === null || !isRegular(runWitness) || !holds(runWitness)) return { reason: `${PLAN_REASONS.changed}: ${jsString(run)}` }
  return { cached: plan }
}

/** One witness against the view: the same call gives the same facts, or fails the same way. */
function witnessHolds(view: HostView, root: string, w: PlanWitness): boolean {
  // The shim names full paths; the view takes host paths below the root.
  if (!w.path.startsWith(`${root}/`)) return false
  const hostPath = w.path.slice(root.length).replace(/(?<=.)\/$/, '')
  const st = w.follow ? view.stat(hostPath) : view.lstat(hostPath)
  if (isHostErr(st)) return w.err === ERRNO_NUMBERS[st.errno]
  // A directory is its type only: what the walk finds in it has witnesses of its own.
  if (st.kind === 'dir') return w.err === 0 && w.mode === S_IFDIR && w.dev === 0n && w.ino === 0n && w.size === 0n && w.mtimeNs === 0n && w.ctimeNs === 0n
  return (
    w.err === 0 &&
    w.dev === st.dev &&
    w.ino === st.ino &&
    w.mode === (st.mode ?? 0) &&
    w.size === BigInt(st.size) &&
    w.mtimeNs === (st.mtimeNs ?? 0n) &&
    w.ctimeNs === (st.ctimeNs ?? 0n)
  )
}

/** st_mode's file type of a directory: all a directory witness records. */
const S_IFDIR = 0o040000

/** The run a kept plan makes (section 7's argv, from the file's strings). */
function cachedRun(plan: PlanCacheFile, argv: readonly string[]): RawRun {
  if (plan.direct) return { loader: null, libraryPath: null, exec: plan.target, argv: [...argv] }
  const args = [plan.loader]
  if (plan.argv0 && argv.length > 0) args.push('--argv0', argv[0] as string)
  args.push('--inhibit-cache', '--library-path', plan.libraryPath, plan.target, ...argv.slice(1))
  return { loader: plan.loader, libraryPath: plan.libraryPath, exec: plan.loader, argv: args }
}
