// install and uninstall: the program moves to libexec, a shim takes its
// place, and back again. Packaging calls it (`DESTDIR=... meson install`
// style), so it must be safe to run twice and must never leave a tree half
// changed.
//
// The order is what makes it safe. Everything that can fail for a reason
// other than the file system (config, ELF, zig, verification) happens before
// the first write. Then: the shim is written to a temporary file next to the
// program; the program is hard-linked to its libexec path (a rename that
// keeps the old name for a moment, so the program's path is never empty);
// the shim is renamed over the program's path. Any failure before that last
// rename undoes what was done, in reverse. Where a hard link is impossible
// (another file system) the program is copied, keeping its mode, owner and
// times.
//
// A shim knows itself: its ELF note (mark.ts) names its target and the hash
// of its config, so a second install changes nothing, a changed config
// replaces only the shim, and uninstall touches only a shim whose target is
// the libexec path.

import { createHash, randomBytes } from 'node:crypto'
import type { Stats } from 'node:fs'
import { chmod, chown, copyFile, link, lstat, mkdir, open, readFile, rename, rm, rmdir, unlink, utimes } from 'node:fs/promises'
import { basename, dirname, join, posix } from 'node:path'
import { ARCHES, type Arch, type ArchName } from './arch.js'
import { parseArchList, validateConfig, type BuildConfig, type RawConfig } from './config.js'
import { isElf, parseElf } from './elf.js'
import { IoError, RefusedError, ShimError, UsageError, ioError, q } from './errors.js'
import { buildVerifiedShim, expectedMark } from './generate.js'
import { markOf } from './mark.js'
import type { Toolchain } from './toolchain.js'
import { VERSION } from './version.js'

/** Where the program goes unless --libexec or a target says otherwise: /usr/libexec/NAME/NAME. */
export const DEFAULT_LIBEXEC = '/usr/libexec'

/** set-user-ID and set-group-ID */
const PRIVILEGE_BITS = 0o6000

export interface InstallRequest {
  /** the config as read (file and flags); name is required, target optional */
  readonly raw: RawConfig
  /** the program's path on the installed system (absolute when destdir is set) */
  readonly binary: string
  /** the staging directory standing for "/", or undefined for the real "/" */
  readonly destdir?: string
  /** the directory the program moves into (default /usr/libexec/NAME) */
  readonly libexec?: string
  /** for relative paths */
  readonly cwd: string
}

export interface InstallOptions {
  /** asked only when a shim must really be built, with the config's `cc` (undefined: zig) */
  readonly loadToolchain: (cc: string | undefined) => Promise<Toolchain>
  readonly cacheDir: string
  readonly onCompile?: (arch: Arch) => void
}

export type InstallAction = 'installed' | 'updated' | 'unchanged' | 'uninstalled' | 'absent'

/** Where things are, on the installed system and here. */
export interface Layout {
  readonly name: string
  /** the program's path on the installed system (where the shim is) */
  readonly binary: string
  /** the program's libexec path on the installed system (the shim's target) */
  readonly target: string
  readonly destdir: string | null
  /** binary and target as files here (under destdir) */
  readonly binaryFile: string
  readonly targetFile: string
}

export interface InstallResult extends Layout {
  /** installed: new shim; updated: shim replaced (config or hostshim changed); unchanged: nothing to do;
   * uninstalled: program moved back; absent: uninstall found nothing installed */
  readonly action: InstallAction
  /** the file now at binary: the shim after install, the program after uninstall (null: absent) */
  readonly arch: ArchName | null
  readonly bytes: number | null
  readonly sha256: string | null
  /** its permission bits, e.g. "0755" */
  readonly mode: string | null
  /** the shim's config hash (install), null after uninstall */
  readonly config: string | null
}


function errno(error: unknown): string {
  return (error as NodeJS.ErrnoException).code ?? String(error)
}

function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex')
}

function octal(mode: number): string {
  return `0${(mode & 0o7777).toString(8).padStart(3, '0')}`
}

async function lstatOrNull(path: string): Promise<Stats | null> {
  try {
    return await lstat(path)
  } catch (error) {
    if (errno(error) === 'ENOENT') return null
    throw ioError(`cannot look at ${q(path)}`, error)
  }
}

/** The libexec path's lstat; a file where one of its directories should be is in the way. */
async function lstatTarget(path: string): Promise<Stats | null> {
  try {
    return await lstat(path)
  } catch (error) {
    if (errno(error) === 'ENOENT') return null
    if (errno(error) === 'ENOTDIR') throw new RefusedError(`a file is in the way of the libexec path ${q(path)}: one of its directories is not a directory`)
    throw ioError(`cannot look at ${q(path)}`, error)
  }
}

async function readOrFail(path: string): Promise<Buffer> {
  try {
    return await readFile(path)
  } catch (error) {
    throw ioError(`cannot read ${q(path)}`, error)
  }
}

/** A host path that join() cannot move: absolute, no ".", "..", or "//". */
function checkHostPath(what: string, path: string): void {
  if (!path.startsWith('/') || posix.normalize(path) !== path || path.endsWith('/')) {
    throw new UsageError(`${what} ${q(path)} must be an absolute path without ".", ".." or repeated "/"`)
  }
}

/**
 * Name, target and paths, checked. The target is the config's (or --target)
 * when it has one, else LIBEXEC/NAME; --libexec and a target must agree.
 */
function layoutOf(req: InstallRequest): Layout {
  const { raw } = req
  // validateConfig judges the name (and names the field); the target is not known yet.
  const { name } = validateConfig({ name: raw.name, target: '/unknown' })
  const destdir = req.destdir === undefined ? null : posix.resolve(req.cwd, req.destdir)
  let binary: string
  if (destdir === null) binary = posix.resolve(req.cwd, req.binary)
  else {
    binary = req.binary
    checkHostPath('--binary (a path on the installed system, under --destdir)', binary)
  }
  let target: string
  if (req.libexec !== undefined) {
    checkHostPath('--libexec', req.libexec)
    target = posix.join(req.libexec, name)
    if (raw.target !== undefined && raw.target !== target) {
      throw new UsageError(`--libexec puts the program at ${q(target)}, but the config's target is ${q(String(raw.target))}: give one of them`)
    }
  } else if (typeof raw.target === 'string') {
    target = raw.target
    checkHostPath('target', target)
  } else {
    target = posix.join(DEFAULT_LIBEXEC, name, name)
  }
  if (target === binary) throw new UsageError(`the program is already at its libexec path ${q(target)}: --binary must be where the shim goes`)
  if (target.startsWith(`${binary}/`)) throw new UsageError(`the libexec path ${q(target)} is below the program ${q(binary)}`)
  const file = (path: string) => (destdir === null ? path : join(destdir, path))
  return { name, binary, target, destdir, binaryFile: file(binary), targetFile: file(target) }
}

/** The config the shim is built from: the request's, with this target and this one architecture. */
function shimConfig(req: InstallRequest, layout: Layout, arch: ArchName): BuildConfig {
  const { output: _output, outDir: _outDir, ...raw } = req.raw
  if (raw.arch !== undefined && !parseArchList('arch', raw.arch).includes(arch)) {
    throw new UsageError(`${q(layout.binary)} is an ${arch} program, but --arch (or the config's arch) says ${JSON.stringify(raw.arch)}`)
  }
  return validateConfig({ ...raw, target: layout.target, arch })
}

/** The architecture of a program hostshim can shim, or a ShimError saying why not. */
function programArch(bytes: Uint8Array, path: string): ArchName {
  if (!isElf(bytes)) throw new ShimError(`${q(path)} is not an ELF program: a shim can only run ELF executables`)
  const elf = parseElf(bytes, path)
  if (elf.typeName !== 'EXEC' && elf.typeName !== 'DYN') throw new ShimError(`${q(path)} is not an executable (ELF type ${elf.typeName})`)
  if (elf.kernelWouldReject) throw new ShimError(`${q(path)} would not run: ${elf.kernelWouldReject}`)
  if (elf.arch === null) throw new ShimError(`${q(path)} is for machine ${elf.machineName}, which hostshim has no shim for`)
  return elf.arch
}

/** A temporary name in the same directory, so rename() is atomic. */
function tempNear(path: string): string {
  return join(dirname(path), `.${basename(path)}.${randomBytes(6).toString('hex')}.hostshim.tmp`)
}

/** Owner first: chown() may clear mode bits, chmod() after it sets them. */
async function applyOwnerAndMode(path: string, st: Stats, mode: number): Promise<void> {
  if (st.uid !== process.geteuid?.() || st.gid !== process.getegid?.()) await chown(path, st.uid, st.gid)
  await chmod(path, mode)
}

/** Write the shim next to `dest` with dest's owner and these permissions; returns the temp path. */
async function stageShim(dest: string, binary: Uint8Array, like: Stats, mode: number): Promise<string> {
  const tmp = tempNear(dest)
  try {
    const fh = await open(tmp, 'wx', 0o600)
    try {
      await fh.writeFile(binary)
      await fh.sync()
    } finally {
      await fh.close()
    }
    await applyOwnerAndMode(tmp, like, mode)
    return tmp
  } catch (error) {
    await rm(tmp, { force: true })
    throw ioError(`cannot write the shim next to ${q(dest)}`, error)
  }
}

/** mkdir -p, returning the directories it made, top first (for the undo). */
async function makeDirs(dir: string): Promise<string[]> {
  const missing: string[] = []
  for (let d = dir; ; d = dirname(d)) {
    const st = await lstatOrNull(d)
    if (st !== null) {
      if (!st.isDirectory()) throw new RefusedError(`${q(d)} is in the way of the libexec directory ${q(dir)}: it is not a directory`)
      break
    }
    missing.unshift(d)
    if (dirname(d) === d) break
  }
  const made: string[] = []
  try {
    for (const d of missing) {
      await mkdir(d)
      made.push(d)
      await chmod(d, 0o755)
    }
  } catch (error) {
    await removeDirs(made)
    throw ioError(`cannot create ${q(dir)}`, error)
  }
  return made
}

async function removeDirs(made: readonly string[]): Promise<void> {
  for (const d of [...made].reverse()) await rmdir(d).catch(() => undefined)
}

const NO_HARD_LINK = new Set(['EXDEV', 'EPERM', 'ENOTSUP', 'EOPNOTSUPP', 'EMLINK'])

/** `from` at `to` as well: a hard link where possible, else a copy with mode, owner and times. */
async function placeCopy(from: string, to: string, st: Stats): Promise<void> {
  const tmp = tempNear(to)
  try {
    try {
      await link(from, tmp)
    } catch (error) {
      if (!NO_HARD_LINK.has(errno(error))) throw error
      await copyFile(from, tmp)
      await applyOwnerAndMode(tmp, st, st.mode & 0o7777)
      await utimes(tmp, st.atime, st.mtime)
    }
    await rename(tmp, to)
  } catch (error) {
    await rm(tmp, { force: true })
    throw error
  }
}

function resultFor(action: InstallAction, layout: Layout, file: { bytes: Uint8Array; mode: number; arch: ArchName | null; config: string | null } | null): InstallResult {
  return {
    action,
    name: layout.name,
    binary: layout.binary,
    target: layout.target,
    destdir: layout.destdir,
    binaryFile: layout.binaryFile,
    targetFile: layout.targetFile,
    arch: file?.arch ?? null,
    bytes: file ? file.bytes.length : null,
    sha256: file ? sha256(file.bytes) : null,
    mode: file ? octal(file.mode) : null,
    config: file?.config ?? null,
  }
}

/**
 * Install a shim at req.binary for the program there, moved to its libexec
 * path. Idempotent; atomic; refuses (RefusedError) rather than guess.
 */
export async function install(req: InstallRequest, options: InstallOptions): Promise<InstallResult> {
  const layout = layoutOf(req)
  const { binaryFile, targetFile } = layout
  const st = await lstatOrNull(binaryFile)
  if (st === null) {
    const how = layout.destdir === null ? 'e.g. by `meson install`' : `e.g. by \`DESTDIR=${layout.destdir} meson install\``
    throw new IoError(`cannot install over ${q(binaryFile)}: there is no such file; the program must be installed there first, ${how}`, 'ENOENT')
  }
  if (st.isSymbolicLink()) {
    throw new RefusedError(`${q(binaryFile)} is a symbolic link: install the shim where the program file is, or replace the link by the file`)
  }
  if (!st.isFile()) throw new RefusedError(`${q(binaryFile)} is not a regular file`)
  const bytes = await readOrFail(binaryFile)
  const mark = markOf(bytes)

  if (mark !== null) {
    // Already a shim: ours if it runs this libexec path; then keep or refresh it.
    if (mark.target !== layout.target) {
      throw new RefusedError(
        `${q(binaryFile)} is already a hostshim shim, for ${q(mark.target)}, not ${q(layout.target)}: uninstall that one first (same --libexec as when it was installed)`,
      )
    }
    const tst = await lstatTarget(targetFile)
    if (tst === null || !tst.isFile()) {
      throw new RefusedError(`${q(binaryFile)} is a shim for ${q(layout.target)}, but ${q(targetFile)} is ${tst === null ? 'missing' : 'not a regular file'}: put the program back there first`)
    }
    const arch = programArch(await readOrFail(targetFile), targetFile)
    const config = shimConfig(req, layout, arch)
    const hash = expectedMark(config, ARCHES[arch]).config
    if (mark.config === hash && mark.arch === arch && mark.hostshim === VERSION) {
      return resultFor('unchanged', layout, { bytes, mode: st.mode, arch, config: hash })
    }
    const shim = await buildShim(config, ARCHES[arch], options)
    const tmp = await stageShim(binaryFile, shim, st, st.mode & 0o777)
    try {
      await rename(tmp, binaryFile)
    } catch (error) {
      await rm(tmp, { force: true })
      throw ioError(`cannot replace the shim at ${q(binaryFile)}`, error)
    }
    return resultFor('updated', layout, { bytes: shim, mode: st.mode & 0o777, arch, config: hash })
  }

  // A program: check everything, build the shim, then change the tree.
  if (st.mode & PRIVILEGE_BITS) {
    const bits = st.mode & 0o4000 ? 'set-user-ID' : 'set-group-ID'
    throw new RefusedError(
      `refusing to install over ${q(binaryFile)}: it is ${bits} (mode ${octal(st.mode)}). A shim runs the program through the host's loader, which would not keep those privileges, and a privileged shim is refused by design; leave this program as it is`,
    )
  }
  if ((st.mode & 0o111) === 0) throw new RefusedError(`${q(binaryFile)} is not executable (mode ${octal(st.mode)}): there is nothing for a shim to run`)
  const arch = programArch(bytes, binaryFile)
  const config = shimConfig(req, layout, arch)
  const tst = await lstatTarget(targetFile)
  let targetExisted = false
  if (tst !== null) {
    if (!tst.isFile()) throw new RefusedError(`${q(targetFile)} exists and is not a regular file; refusing to replace it`)
    const there = await readOrFail(targetFile)
    if (!there.equals(bytes)) {
      throw new RefusedError(`${q(targetFile)} exists and differs from ${q(binaryFile)}; refusing to overwrite it (move it away, or choose another --libexec)`)
    }
    targetExisted = true
  }

  const shim = await buildShim(config, ARCHES[arch], options)
  const shimMode = st.mode & 0o777
  const tmp = await stageShim(binaryFile, shim, st, shimMode)
  let made: string[] = []
  let linked = false
  try {
    made = await makeDirs(dirname(targetFile))
    try {
      await placeCopy(binaryFile, targetFile, st)
    } catch (error) {
      throw ioError(`cannot move ${q(binaryFile)} to ${q(targetFile)}`, error)
    }
    linked = true
    try {
      await rename(tmp, binaryFile)
    } catch (error) {
      throw ioError(`cannot put the shim at ${q(binaryFile)}`, error)
    }
  } catch (error) {
    // Undo in reverse; the program never left binaryFile.
    await rm(tmp, { force: true })
    if (linked && !targetExisted) await unlink(targetFile).catch(() => undefined)
    await removeDirs(made)
    throw error
  }
  return resultFor('installed', layout, { bytes: shim, mode: shimMode, arch, config: expectedMark(config, ARCHES[arch]).config })
}

async function buildShim(config: BuildConfig, arch: Arch, options: InstallOptions): Promise<Buffer> {
  const toolchain = await options.loadToolchain(config.cc)
  const { binary } = await buildVerifiedShim(config, arch, { toolchain, cacheDir: options.cacheDir, onCompile: options.onCompile })
  return binary
}

/**
 * Put the program back: only when req.binary holds a hostshim shim whose
 * target is the libexec path. The libexec directory goes too when it is
 * empty and named after the program (the one install made by default).
 */
export async function uninstall(req: InstallRequest): Promise<InstallResult> {
  const layout = layoutOf(req)
  const { binaryFile, targetFile } = layout
  const st = await lstatOrNull(binaryFile)
  const tst = await lstatTarget(targetFile)
  if (st === null) {
    throw new IoError(`cannot uninstall: there is no file at ${q(binaryFile)}${tst === null ? '' : ` (the program is still at ${q(targetFile)})`}`)
  }
  const mark = st.isFile() ? markOf(await readOrFail(binaryFile)) : null
  if (mark === null) {
    if (tst === null) return resultFor('absent', layout, null)
    throw new RefusedError(`${q(binaryFile)} is not a hostshim shim; leaving it and ${q(targetFile)} as they are`)
  }
  if (mark.target !== layout.target) {
    throw new RefusedError(`${q(binaryFile)} is a shim for ${q(mark.target)}, not ${q(layout.target)}: give the --libexec it was installed with`)
  }
  if (tst === null || !tst.isFile()) {
    throw new RefusedError(`${q(binaryFile)} is a shim for ${q(layout.target)}, but ${q(targetFile)} is ${tst === null ? 'missing' : 'not a regular file'}: nothing to put back`)
  }
  try {
    await rename(targetFile, binaryFile)
  } catch (error) {
    if (errno(error) !== 'EXDEV') throw ioError(`cannot move ${q(targetFile)} back to ${q(binaryFile)}`, error)
    try {
      await placeCopy(targetFile, binaryFile, tst)
      await unlink(targetFile)
    } catch (error2) {
      throw ioError(`cannot move ${q(targetFile)} back to ${q(binaryFile)}`, error2)
    }
  }
  const dir = dirname(targetFile)
  const born = await lstat(dir, { bigint: true }).then((st) => st.birthtimeNs, () => 0n)
  if (basename(dir) === layout.name && (await rmdir(dir).then(() => true, () => false)) && layout.destdir !== null && born > 0n) {
    // In a staging directory, an empty libexec directory install made above it goes too (usr/libexec
    // of a stage that had none): one born with it, within BORN_TOGETHER_NS. rmdir leaves one that
    // holds something; other directories (opt) and the staging directory itself stay.
    for (let up = dirname(dir); up.startsWith(`${layout.destdir}/`); up = dirname(up)) {
      const upBorn = await lstat(up, { bigint: true }).then((st) => st.birthtimeNs, () => 0n)
      if (basename(up) !== 'libexec' || upBorn === 0n || born - upBorn > BORN_TOGETHER_NS || !(await rmdir(up).then(() => true, () => false))) break
    }
  }
  const bytes = await readOrFail(binaryFile)
  return resultFor('uninstalled', layout, { bytes, mode: tst.mode, arch: safeArch(bytes), config: null })
}

/**
 * Directories install makes one after the other are born this close (a few
 * system calls apart, even on a starved machine); a stage's own directories are
 * older than the whole install run.
 */
const BORN_TOGETHER_NS = 500_000_000n

function safeArch(bytes: Uint8Array): ArchName | null {
  try {
    return isElf(bytes) ? parseElf(bytes).arch : null
  } catch {
    return null
  }
}
