// doctor: will this program run in that tree as it is, only through the
// shim, or not at all? `objdump -T prog | grep GLIBC_2.34`, made into an
// answer.
//
// Pure: the trees are HostViews (launcher/hostview.ts gives one of a real
// directory), so every path is resolved the way the shim resolves it: inside
// the tree, absolute symbolic links re-rooted at it (plan.ts resolveInRoot).
//
// A tree runs the program *directly* when its PT_INTERP loader is there and
// every DT_NEEDED library, found in the tree's library directories (the
// transitive closure, as ld.so loads them), defines every version that the
// program and those libraries require (.gnu.version_r against
// .gnu.version_d). Through the shim the tree's own libraries do not matter:
// the shim runs the program with the *host's* loader and libraries. So the
// promise "needs the shim" is only made when the host tree satisfies the
// program, checked with the shim's own plan (plan.ts planShim: the same
// loader, twin and library path the shim will use).

import { ARCHES, archByMachine, type Arch, type ArchName } from './arch.js'
import type { ShimConfig } from './config.js'
import { compareVersionNames, glibcVersionsDefined, glibcVersionsRequired, isElf, parseElf, type ElfInfo } from './elf.js'
import { ShimError, q } from './errors.js'
import {
  FAILURES,
  STRERROR,
  hostString,
  isHostErr,
  jsString,
  planShim,
  readElf,
  resolveInRoot,
  type HostErr,
  type HostFile,
  type HostStat,
  type HostView,
} from './plan.js'

export type Verdict = 'runs-directly' | 'needs-shim' | 'cannot-run'

/** The program, as doctor reads it. */
export interface ProgramFacts {
  readonly file: string
  readonly arch: ArchName
  readonly static: boolean
  readonly interpreter: string | null
  readonly needed: readonly string[]
  /** the newest GLIBC_x.y the program itself requires, or null */
  readonly glibc: string | null
}

export interface MissingLibrary {
  readonly name: string
  /** the object whose DT_NEEDED names it (the program's file name, or a library's) */
  readonly neededBy: string
}

export interface MissingVersion {
  /** the library that should define it (a verneed file name: libc.so.6) */
  readonly library: string
  readonly version: string
  readonly neededBy: string
}

/** What one tree has for the program, one way of running it. */
export interface TreeFacts {
  /** the tree's own architecture (of its /bin/sh), when it can tell */
  readonly arch: ArchName | null
  /** the loader's resolved host path in the tree, null when missing */
  readonly loader: string | null
  /** why the loader is not usable, null when it is (or the program is static) */
  readonly loaderProblem: string | null
  /** the library directories searched, host paths, in order */
  readonly libraryPath: readonly string[]
  /** libraries found: DT_NEEDED name and resolved host path */
  readonly libraries: readonly { readonly name: string; readonly path: string }[]
  readonly missingLibraries: readonly MissingLibrary[]
  readonly missingVersions: readonly MissingVersion[]
  /**
   * The tree's glibc release ("2.31"): from libc.so.6's banner ("... release
   * version 2.31."), else from its newest GLIBC_ version; null without a libc.so.6.
   */
  readonly glibc: string | null
  /** libc.so.6's newest GLIBC_x.y definition; a release without new symbols has none of its own (2.31 ends at GLIBC_2.30) */
  readonly glibcNewestVersion: string | null
  /** the program runs this way */
  readonly ok: boolean
}

export interface TreeReport {
  readonly tree: string
  readonly verdict: Verdict
  /** one sentence: why this verdict */
  readonly reason: string
  /** the tree, run directly */
  readonly direct: TreeFacts
}

export interface DoctorReport {
  readonly program: ProgramFacts
  /** the host tree, through the shim */
  readonly host: { readonly tree: string; readonly ok: boolean; readonly reason: string; readonly facts: TreeFacts }
  readonly trees: readonly TreeReport[]
}

/** A tree to look at: its name for the report, and the view of it. */
export interface Tree {
  readonly name: string
  readonly view: HostView
  /** device and inode of its top directory: the same tree under two names is one tree */
  readonly id?: string
}

// ---------------------------------------------------------------------------
// The program.

export function programFacts(bytes: Uint8Array, file: string): { facts: ProgramFacts; elf: ElfInfo; arch: Arch } {
  if (!isElf(bytes)) throw new ShimError(`${q(file)} is not an ELF program`)
  const elf = parseElf(bytes, file)
  if (elf.typeName !== 'EXEC' && elf.typeName !== 'DYN') throw new ShimError(`${q(file)} is not an executable (ELF type ${elf.typeName})`)
  if (elf.arch === null) throw new ShimError(`${q(file)} is for machine ${elf.machineName}, which hostshim has no shim for`)
  const arch = ARCHES[elf.arch]
  return {
    elf,
    arch,
    facts: {
      file,
      arch: arch.name,
      static: elf.isStatic,
      interpreter: elf.interpreter,
      needed: elf.dynamic?.needed ?? [],
      glibc: glibcVersionsRequired(elf).at(-1) ?? null,
    },
  }
}

// ---------------------------------------------------------------------------
// Reading files of a tree.

function readAll(view: HostView, path: string, size: number): Buffer | null {
  const file = view.open(path)
  if (isHostErr(file)) return null
  try {
    const got = file.read(0n, size)
    return isHostErr(got) ? null : got
  } finally {
    file.close()
  }
}

function parseQuietly(bytes: Buffer | null): ElfInfo | null {
  if (bytes === null || !isElf(bytes)) return null
  try {
    return parseElf(bytes)
  } catch {
    return null
  }
}

function sameArch(elf: ElfInfo, arch: Arch): boolean {
  return elf.machine === arch.machine && elf.class === (arch.elfClass === 2 ? 64 : 32) && elf.byteOrder === (arch.byteOrder === 1 ? 'little' : 'big')
}

/** The architecture of the tree's own programs: its shell, else busybox or env. */
export function treeArch(view: HostView): ArchName | null {
  for (const path of ['/bin/sh', '/usr/bin/sh', '/bin/busybox', '/usr/bin/env']) {
    const r = resolveInRoot(view, '', path)
    if (isHostErr(r) || r.stat.kind !== 'file') continue
    const head = readAll(view, r.path, 64)
    if (head === null || head.length < 20 || !isElf(head)) continue
    const little = head[5] === 1
    const machine = little ? head.readUInt16LE(18) : head.readUInt16BE(18)
    const found = archByMachine(machine, head[4] ?? 0, head[5] ?? 0)
    if (found) return found.name
  }
  return null
}

/** x86_64 machines run i686 programs, aarch64 ones (usually) armhf ones. */
const ALSO_RUNS: Partial<Record<ArchName, readonly ArchName[]>> = { x86_64: ['i686'], aarch64: ['armhf'] }

function runsNatively(machine: ArchName, program: ArchName): boolean {
  return machine === program || (ALSO_RUNS[machine] ?? []).includes(program)
}

// ---------------------------------------------------------------------------
// The shim's plan over a tree, for its loader and library path.

/** The program is shown to the plan model at this path of the tree; nothing is written. */
const PROGRAM_PATH = '/.hostshim-doctor-program'
/** A container's view of the tree: plan paths come back under this prefix. */
const PLAN_ROOT = '/run/host'

/** The tree, with the program at PROGRAM_PATH. */
function withProgram(view: HostView, bytes: Buffer): HostView {
  const stat: HostStat = { kind: 'file', size: bytes.length, dev: 0n, ino: 0n }
  const file: HostFile = {
    read: (offset, length) => bytes.subarray(Number(offset), Number(offset) + length),
    close: () => undefined,
  }
  return {
    lstat: (path) => (path === PROGRAM_PATH ? stat : view.lstat(path)),
    stat: (path) => (path === PROGRAM_PATH ? stat : view.stat(path)),
    readlink: (path) => (path === PROGRAM_PATH ? { errno: 'EINVAL' } : view.readlink(path)),
    executable: (path) => path === PROGRAM_PATH || view.executable(path),
    open: (path) => (path === PROGRAM_PATH ? file : view.open(path)),
    readdir: (path) => view.readdir(path),
  }
}

type ShimPlan = { ok: true; loader: string | null; libraryPath: string[] } | { ok: false; problem: string }

/** What the shim would use in this tree: its loader (twin included) and library path, as host paths. */
function shimPlan(view: HostView, arch: Arch, bytes: Buffer): ShimPlan {
  const config: ShimConfig = { name: 'doctor', target: PROGRAM_PATH, hostRoot: PLAN_ROOT, libDirs: [], argv0: false, debugEnv: 'HOSTSHIM_DOCTOR', env: [] }
  const plan = planShim(config, arch, withProgram(view, bytes), { mode: 'container', argv: ['doctor'] })
  const strip = (full: string) => (full.startsWith(`${PLAN_ROOT}/`) ? full.slice(PLAN_ROOT.length) : full)
  if (!plan.ok) {
    const path = q(strip(plan.path))
    const why = STRERROR[plan.errno]
    const problem =
      plan.what === 'loaderMissing' ? `has no loader ${path} (${why})`
      : plan.what === 'loaderBad' ? `has a loader ${path} the shim cannot run (${why})`
      : plan.what === 'wrongArch' ? `has a loader ${path} for another architecture`
      : `fails the shim's checks: ${FAILURES[plan.what]}: ${path}: ${why}`
    return { ok: false, problem }
  }
  return {
    ok: true,
    loader: plan.loader === null ? null : strip(plan.loader),
    libraryPath: plan.libraryPath ? plan.libraryPath.split(':').filter(Boolean).map(strip) : [],
  }
}

/** The standard directories that exist in the tree, for trees without a usable loader. */
function standardDirs(view: HostView, arch: Arch): string[] {
  const out: string[] = []
  for (const dir of arch.libDirs) {
    const r = resolveInRoot(view, '', hostString(dir))
    if (!isHostErr(r) && r.stat.kind === 'dir' && !out.includes(jsString(r.path))) out.push(jsString(r.path))
  }
  return out
}

// ---------------------------------------------------------------------------
// Loading, as ld.so would: the closure of DT_NEEDED over the library path.

interface Loaded {
  readonly name: string
  readonly path: string
  readonly elf: ElfInfo
  readonly bytes: Buffer
}

/** The first file called `name` in `dirs` that is an ELF object of this architecture (ld.so skips others). */
function findLibrary(view: HostView, arch: Arch, dirs: readonly string[], name: string): Loaded | null {
  const candidates = name.includes('/') ? (name.startsWith('/') ? [name] : []) : dirs.map((dir) => `${dir === '/' ? '' : dir}/${name}`)
  for (const candidate of candidates) {
    const r = resolveInRoot(view, '', hostString(candidate))
    if (isHostErr(r) || r.stat.kind !== 'file') continue
    const bytes = readAll(view, r.path, r.stat.size)
    const elf = parseQuietly(bytes)
    if (bytes !== null && elf !== null && sameArch(elf, arch)) return { name, path: jsString(r.path), elf, bytes }
  }
  return null
}

/** A directory libraries are looked for in, in the file system it is seen in. */
export interface OwnDir {
  readonly view: HostView
  readonly dir: string
}

/**
 * Where the program's file is: the directory of its resolved file, in the
 * caller's file system (this machine's). A RUNPATH entry with "$ORIGIN" is
 * that directory (a build directory, shared at the same path by the host and
 * its containers), not a directory of the tree.
 */
export interface ProgramPlace {
  /** the directory of the program's resolved file */
  readonly dir: string
  /** the caller's file system: this machine's */
  readonly view: HostView
}

const ORIGIN_TOKEN = /\$(ORIGIN\b|\{ORIGIN\})/g

/**
 * An object's DT_RUNPATH (else DT_RPATH) directories: absolute ones in the
 * tree; those with $ORIGIN where the object is (`origin`, skipped when
 * unknown); entries with other tokens skipped.
 */
function ownDirs(elf: ElfInfo, origin: ProgramPlace | undefined, tree: HostView): { dirs: OwnDir[]; runpath: boolean } {
  const text = elf.dynamic?.runpath ?? elf.dynamic?.rpath ?? null
  const dirs: OwnDir[] = []
  for (const entry of (text ?? '').split(':')) {
    if (entry.search(ORIGIN_TOKEN) >= 0) {
      if (origin !== undefined) dirs.push({ view: origin.view, dir: entry.replace(ORIGIN_TOKEN, origin.dir) })
    } else if (entry.startsWith('/') && !entry.includes('$')) {
      dirs.push({ view: tree, dir: entry })
    }
  }
  return { dirs, runpath: elf.dynamic?.runpath != null }
}

/**
 * Where ld.so looks for an object's DT_NEEDED: DT_RPATH (when there is no
 * DT_RUNPATH), then --library-path (`explicit`: the shim's), then
 * DT_RUNPATH, then the tree's own directories.
 */
function searchDirs(elf: ElfInfo, origin: ProgramPlace | undefined, view: HostView, dirs: readonly string[], explicit: boolean): readonly OwnDir[] {
  const path = dirs.map((dir) => ({ view, dir }))
  const own = ownDirs(elf, origin, view)
  if (own.dirs.length === 0) return path
  if (!own.runpath) return [...own.dirs, ...path]
  return explicit ? [...path, ...own.dirs] : [...own.dirs, ...path]
}

/** The first of `dirs` that holds the library, and where it was found; a name with "/" is that file of the tree. */
function findOwnLibrary(view: HostView, arch: Arch, dirs: readonly OwnDir[], name: string): { lib: Loaded; at: ProgramPlace } | null {
  if (name.includes('/')) {
    const lib = findLibrary(view, arch, [], name)
    return lib === null ? null : { lib, at: { view, dir: lib.path.slice(0, lib.path.lastIndexOf('/')) || '/' } }
  }
  for (const d of dirs) {
    const lib = findLibrary(d.view, arch, [d.dir], name)
    if (lib !== null) return { lib, at: { view: d.view, dir: lib.path.slice(0, lib.path.lastIndexOf('/')) || '/' } }
  }
  return null
}

interface Closure {
  readonly libraries: Loaded[]
  readonly missingLibraries: MissingLibrary[]
  readonly missingVersions: MissingVersion[]
}

/** `place`: where the program is, for its $ORIGIN; a library's $ORIGIN is where it was found. */
function loadClosure(
  view: HostView,
  arch: Arch,
  program: { name: string; elf: ElfInfo },
  loader: Loaded | null,
  dirs: readonly string[],
  explicit = false,
  place?: ProgramPlace,
): Closure {
  // ld.so matches DT_NEEDED (and verneed file names) against the sonames of what it has loaded.
  const bySoname = new Map<string, Loaded>()
  const libraries: Loaded[] = []
  const missingLibraries: MissingLibrary[] = []
  const remember = (lib: Loaded) => {
    bySoname.set(lib.name, lib)
    const soname = lib.elf.dynamic?.soname
    if (soname) bySoname.set(soname, lib)
  }
  if (loader) remember(loader)
  type Object = { name: string; elf: ElfInfo; at?: ProgramPlace | undefined }
  const queue: Object[] = [{ ...program, at: place }]
  const objects: Object[] = [program]
  const missing = new Set<string>()
  while (queue.length > 0) {
    const object = queue.shift() as Object
    for (const name of object.elf.dynamic?.needed ?? []) {
      if (bySoname.has(name) || missing.has(name)) continue
      const found = findOwnLibrary(view, arch, searchDirs(object.elf, object.at, view, dirs, explicit), name)
      if (found === null) {
        missing.add(name)
        missingLibraries.push({ name, neededBy: object.name })
        continue
      }
      const { lib, at } = found
      remember(lib)
      libraries.push(lib)
      const entry = { name: lib.name, elf: lib.elf, at }
      queue.push(entry)
      objects.push(entry)
    }
  }
  const missingVersions: MissingVersion[] = []
  for (const object of objects) {
    for (const need of object.elf.versionsNeeded) {
      const provider = bySoname.get(need.file)
      if (provider === undefined) continue // a missing library, reported as such
      const defined = new Set(provider.elf.versionsDefined)
      for (const version of need.versions) {
        if (!defined.has(version)) missingVersions.push({ library: need.file, version, neededBy: object.name })
      }
    }
  }
  missingVersions.sort((a, b) => (a.library === b.library ? compareVersionNames(a.version, b.version) : a.library < b.library ? -1 : 1))
  return { libraries, missingLibraries, missingVersions }
}

const RELEASE = /release version (\d+\.\d+(?:\.\d+)?)[.,\s]/

function glibcOf(libraries: readonly Loaded[], find: () => Loaded | null): { glibc: string | null; glibcNewestVersion: string | null } {
  const libc = libraries.find((lib) => lib.elf.dynamic?.soname === 'libc.so.6' || lib.name === 'libc.so.6') ?? find()
  if (!libc) return { glibc: null, glibcNewestVersion: null }
  const newest = glibcVersionsDefined(libc.elf).at(-1) ?? null
  const release = RELEASE.exec(libc.bytes.toString('latin1'))?.[1]
  return { glibc: release ?? newest?.replace(/^GLIBC_/, '') ?? null, glibcNewestVersion: newest }
}

/** The loader as the kernel finds PT_INTERP in the tree: no usr-merge twin, no host prefix. */
function directLoader(view: HostView, arch: Arch, interp: string): { loader: Loaded | null; problem: string | null } {
  const r = resolveInRoot(view, '', hostString(interp))
  if (isHostErr(r)) return { loader: null, problem: `has no loader ${q(interp)} (${STRERROR[r.errno]})` }
  if (r.stat.kind !== 'file' || !view.executable(r.path)) return { loader: null, problem: `has a loader ${q(interp)} that is not an executable file` }
  const file = view.open(r.path)
  if (isHostErr(file)) return { loader: null, problem: `has a loader ${q(interp)} it cannot read (${STRERROR[file.errno]})` }
  const verdict = readElf(file, arch)
  file.close()
  if (!verdict.ok) return { loader: null, problem: `has a loader ${q(interp)} ${verdict.wrongArch ? 'for another architecture' : 'that the kernel would not run'}` }
  return { loader: loadedFile(view, arch, jsString(r.path), interp), problem: null }
}

/** The loader at a resolved host path, as a loaded object named after `asked`'s last component. */
function loadedFile(view: HostView, arch: Arch, path: string, asked = path): Loaded | null {
  const r = resolveInRoot(view, '', hostString(path))
  if (isHostErr(r) || r.stat.kind !== 'file') return null
  const bytes = readAll(view, r.path, r.stat.size)
  const elf = parseQuietly(bytes)
  return bytes && elf && sameArch(elf, arch) ? { name: asked.slice(asked.lastIndexOf('/') + 1), path, elf, bytes } : null
}

function factsFrom(
  view: HostView,
  arch: Arch,
  program: { name: string; elf: ElfInfo },
  loader: Loaded | null,
  loaderProblem: string | null,
  dirs: readonly string[],
  explicit = false,
  own?: HostView,
  place?: ProgramPlace,
): TreeFacts {
  const closure = program.elf.isStatic ? { libraries: [], missingLibraries: [], missingVersions: [] } : loadClosure(view, arch, program, loader, dirs, explicit, place)
  // A tree with the host mounted: its glibc is its own libc.so.6, whatever the program loads.
  const treeLibc = own === undefined ? undefined : findLibrary(own, arch, dirs, 'libc.so.6')
  return {
    arch: treeArch(view),
    loader: loader?.path ?? null,
    loaderProblem,
    libraryPath: dirs,
    libraries: closure.libraries.map((lib) => ({ name: lib.name, path: lib.path })),
    missingLibraries: closure.missingLibraries,
    missingVersions: closure.missingVersions,
    ...glibcOf(treeLibc === undefined ? closure.libraries : treeLibc === null ? [] : [treeLibc], () => findLibrary(view, arch, dirs, 'libc.so.6')),
    ok: loaderProblem === null && closure.missingLibraries.length === 0 && closure.missingVersions.length === 0,
  }
}

/**
 * `view` with `host` mounted at `at`: what a container sees when the host's
 * root is bind-mounted there (Toolbx, `-v /:/run/host`). As in the kernel,
 * an absolute symbolic link under `at` is the container's path, not the host's.
 */
export function withHostMounted(view: HostView, host: HostView, at: string = PLAN_ROOT): HostView {
  const pick = (path: string): [HostView, string] =>
    path === at ? [host, '/'] : path.startsWith(`${at}/`) ? [host, path.slice(at.length)] : [view, path]
  // The mount point's parents exist in the container whether or not the tree has them (the engine makes them).
  const parent = (path: string, got: HostStat | HostErr): HostStat | HostErr =>
    isHostErr(got) && at.startsWith(`${path}/`) ? { kind: 'dir', size: 0, dev: 0n, ino: 0n } : got
  return {
    lstat: (path) => { const [v, p] = pick(path); return parent(path, v.lstat(p)) },
    stat: (path) => { const [v, p] = pick(path); return parent(path, v.stat(p)) },
    readlink: (path) => { const [v, p] = pick(path); return v.readlink(p) },
    executable: (path) => { const [v, p] = pick(path); return v.executable(p) },
    open: (path) => { const [v, p] = pick(path); return v.open(p) },
    readdir: (path) => { const [v, p] = pick(path); return v.readdir(p) },
  }
}

/**
 * The tree as `/`, the program started by the kernel: its PT_INTERP, then
 * the tree's libraries. With `host`, the tree is a container's and sees the
 * host at /run/host (so a Toolbx-built program, PT_INTERP and RUNPATH under
 * /run/host, finds the host's loader and libraries, as it does there).
 * `place`: where the program is, for its $ORIGIN RUNPATH entries.
 */
export function checkDirect(view: HostView, bytes: Buffer, name: string, host?: HostView, place?: ProgramPlace): TreeFacts {
  const { elf, arch } = programFacts(bytes, name)
  const program = { name, elf }
  const seen = host === undefined ? view : withHostMounted(view, host)
  if (elf.isStatic) return factsFrom(seen, arch, program, null, null, [])
  const interp = elf.interpreter ?? ''
  const { loader, problem } = elf.interpreter === null || elf.interpreterError
    ? { loader: null, problem: `the program's PT_INTERP is unusable: ${elf.interpreterError ?? 'none'}` }
    : directLoader(seen, arch, interp)
  // The library directories the tree's ld.so would search: the shim's rules
  // (ld.so.conf, the standard ones) give the same list; without any loader, the standard ones.
  const plan = shimPlan(view, arch, bytes)
  const dirs = plan.ok && plan.loader !== null ? plan.libraryPath : standardDirs(view, arch)
  return factsFrom(seen, arch, program, loader ?? (plan.ok && plan.loader ? loadedFile(view, arch, plan.loader) : null), problem, dirs, false, host === undefined ? undefined : view, place)
}

/** The tree as the host, the program started by the shim: the host's loader and library path. */
export function checkThroughShim(view: HostView, bytes: Buffer, name: string, place?: ProgramPlace): TreeFacts {
  const { elf, arch } = programFacts(bytes, name)
  const program = { name, elf }
  const plan = shimPlan(view, arch, bytes)
  if (!plan.ok) return factsFrom(view, arch, program, null, plan.problem, standardDirs(view, arch), false, undefined, place)
  if (plan.loader === null) return factsFrom(view, arch, program, null, null, [], false, undefined, place)
  return factsFrom(view, arch, program, loadedFile(view, arch, plan.loader), null, plan.libraryPath, true, undefined, place)
}

// ---------------------------------------------------------------------------
// Verdicts.

function list(items: readonly string[]): string {
  return items.length <= 6 ? items.join(', ') : `${items.slice(0, 6).join(', ')} and ${items.length - 6} more`
}

/** What is missing, in one phrase: "no loader ...", "lacks GLIBC_2.34 (libc.so.6)", "has no libfoo.so.1". */
export function describeGaps(facts: TreeFacts): string {
  const parts: string[] = []
  if (facts.loaderProblem) parts.push(facts.loaderProblem)
  if (facts.missingLibraries.length > 0) parts.push(`has no ${list(facts.missingLibraries.map((m) => m.name))}`)
  const byLibrary = new Map<string, string[]>()
  for (const m of facts.missingVersions) {
    const versions = byLibrary.get(m.library) ?? []
    if (!versions.includes(m.version)) versions.push(m.version)
    byLibrary.set(m.library, versions)
  }
  for (const [library, versions] of byLibrary) parts.push(`lacks ${list(versions)} of ${library}`)
  return parts.join('; ')
}

/** "GAPS; its glibc is 2.31", or just GAPS when they already say there is no libc. */
function withGlibc(text: string, facts: TreeFacts): string {
  if (facts.glibc !== null) return `${text}; its glibc is ${facts.glibc}`
  return facts.missingLibraries.some((m) => m.name === 'libc.so.6') || facts.loader === null ? text : `${text}; it has no glibc`
}

/** `place`: where the program's file is, for the libraries its RUNPATH finds relative to it ($ORIGIN). */
export function doctor(bytes: Buffer, file: string, trees: readonly Tree[], host: Tree, place?: ProgramPlace): DoctorReport {
  const { facts: program } = programFacts(bytes, file)
  const p = program
  const name = file.slice(file.lastIndexOf('/') + 1)
  const hostFacts = checkThroughShim(host.view, bytes, name, place)
  let hostReason: string
  let hostOk = hostFacts.ok
  if (hostFacts.arch !== null && !runsNatively(hostFacts.arch, program.arch)) {
    hostOk = false
    hostReason = `the program is for ${program.arch}, the host runs ${hostFacts.arch} programs (it could run only under emulation)`
  } else if (hostOk) {
    hostReason = program.static ? 'a static program: the shim execs it directly' : withGlibc('the host has its loader and libraries', hostFacts)
  } else {
    hostReason = withGlibc(`the host ${describeGaps(hostFacts)}`, hostFacts)
  }

  const reports = trees.map((tree): TreeReport => {
    const isHost = tree.id !== undefined && tree.id === host.id
    // A container sees the host at the host root; the host itself has no such mount.
    const direct = checkDirect(tree.view, bytes, name, isHost ? undefined : host.view, place)
    const foreign = direct.arch !== null && !runsNatively(direct.arch, program.arch)
    if (direct.ok && !foreign) {
      const what = direct.loader?.startsWith(`${PLAN_ROOT}/`)
        ? `the host's loader and libraries, mounted at ${PLAN_ROOT} where its PT_INTERP and RUNPATH name them, satisfy the program`
        : 'its loader and libraries satisfy the program'
      return { tree: tree.name, verdict: 'runs-directly', reason: program.static ? 'a static program needs nothing from the tree' : withGlibc(what, direct), direct }
    }
    const gaps = foreign ? `its programs are ${direct.arch}, the program is ${program.arch}` : withGlibc(`it ${describeGaps(direct)}`, direct)
    // On the host itself the shim runs in host mode: it helps only a program
    // whose PT_INTERP is under the host root (built for Toolbx); others it execs as they are.
    const shimHelps = hostOk && (!isHost || (p.interpreter ?? '').startsWith(`${PLAN_ROOT}/`))
    if (shimHelps) {
      return { tree: tree.name, verdict: 'needs-shim', reason: `${gaps}; the shim runs it with the host's loader and libraries`, direct }
    }
    return {
      tree: tree.name,
      verdict: 'cannot-run',
      reason: isHost ? `${gaps}; this tree is the host, so the shim has nothing better to offer` : `${gaps}; not through the shim either: ${hostReason}`,
      direct,
    }
  })
  return { program, host: { tree: host.name, ok: hostOk, reason: hostReason, facts: hostFacts }, trees: reports }
}

const VERDICT_TEXT: Record<Verdict, string> = {
  'runs-directly': 'runs directly',
  'needs-shim': 'needs the shim',
  'cannot-run': 'cannot run even through the shim',
}

export function formatDoctor(report: DoctorReport): string {
  const p = report.program
  const kind = p.static ? 'static' : `loader ${p.interpreter === null ? '-' : q(p.interpreter)}${p.glibc ? `, needs ${p.glibc}` : ''}`
  const lines = [`program: ${q(p.file)} (${p.arch}, ${kind})`]
  lines.push(`host ${q(report.host.tree)} through the shim: ${report.host.ok ? 'ok' : 'no'}: ${report.host.reason}`)
  for (const t of report.trees) lines.push(`${q(t.tree)}: ${VERDICT_TEXT[t.verdict]}: ${t.reason}`)
  return `${lines.join('\n')}\n`
}
