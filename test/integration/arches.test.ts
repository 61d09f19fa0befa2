// Every architecture in launcher/arch.ts, end to end: zig builds the shim,
// hostshim's ELF reader and readelf agree on what it is, and the shim runs a
// real Debian program of its own architecture under qemu-user, through that
// architecture's real glibc loader, from a busybox root with the Debian
// tree at /run/host.
//
// The host trees: `libc6` and `dash` (a program that needs only libc6) for
// each architecture, fetched with apt-get into a PRIVATE apt state (lists,
// cache, sources and architecture of its own; the machine's apt is never
// touched) from the machine's Debian mirror, and unpacked with `dpkg -x`.
// They are kept under $HOSTSHIM_ARCH_CACHE (default /var/cache/hostshim-arch)
// so that warm runs do not download anything.
//
// Emulation without touching the machine: binfmt_misc is per user namespace
// since Linux 6.7. The recipe (worked out on 6.18), run for every container:
//
//   unshare --user --map-root-user --mount --propagation private -- sh -euc '
//     mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc   # a fresh, empty instance
//     printf %s ":hostshim-aarch64:M::<ELF magic>:<mask>:/usr/bin/qemu-aarch64-static:F" \
//       > /proc/sys/fs/binfmt_misc/register
//     exec bwrap --bind ROOT / --ro-bind TREE /run/host ... -- /usr/bin/dash-aarch64 ARGS'
//
// - The new user namespace owns its own binfmt_misc instance: registrations
//   in it are seen by execve() in that namespace and its children (bwrap may
//   nest one more), never by the rest of the machine, and vanish with it.
//   The instance starts empty, so a global qemu registration (systemd-binfmt
//   on a developer's machine) cannot make a test pass by accident either.
// - F ("fix binary") makes the kernel open qemu at registration time, in the
//   outer root; the busybox root that bwrap makes `/` has no qemu at all.
// - The magic and mask come from the arch table (class, byte order,
//   e_machine; e_type EXEC or DYN, any OS/ABI), so a wrong table entry
//   would not match the Debian loader and the run would fail.
// - bwrap runs as uid 0 of the new namespace, with its capabilities; it makes
//   the container root as in test/lib/container.ts.
// So the shim starts through binfmt -> qemu, and its execve() of the FOREIGN
// loader under /run/host goes through binfmt -> qemu again. The control: with
// an empty instance, the same shim started by an explicit qemu cannot exec
// the loader (ENOEXEC).
//
// The foreign shims, i686 among them, always start through the private
// binfmt_misc rule (it comes before the kernel's own ELF loader), so qemu
// runs them whether or not the kernel could; only the control (no rule: the
// loader cannot be exec'd) depends on the kernel, and runs for each
// architecture the kernel refuses (asked, test/lib/native.ts). Checked on
// Linux 6.18 without IA32 emulation (i686 gets the control) and with it
// (i686 does not).
//
// Needs: an x86_64 machine (as the pinned zig does; x86_64 shims run natively,
// the others under qemu), root (for the default cache dir; others use
// ~/.cache/hostshim-arch), unshare (util-linux), bwrap, busybox-static,
// qemu-user-static, binutils (readelf), dpkg/apt-get, a Debian mirror, and
// Linux >= 6.7. binfmt-support is NOT needed: it would register qemu
// globally, which these tests avoid.

import { execFile, spawnSync } from 'node:child_process'
import { existsSync, lstatSync, readFileSync, readdirSync, readlinkSync } from 'node:fs'
import { mkdir, mkdtemp, readdir, rename, rm, symlink, writeFile } from 'node:fs/promises'
import { homedir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import t from 'tap'
import { ARCHES, ARCH_NAMES, type Arch, type ArchName } from '../../launcher/arch.js'
import { validateConfig } from '../../launcher/config.js'
import { parseElf } from '../../launcher/elf.js'
import { generate, type BuiltShim } from '../../launcher/generate.js'
import { inspectFile } from '../../launcher/inspect.js'
import { FAILURES } from '../../launcher/plan.js'
import { loadZig } from '../../launcher/toolchain.js'
import {
  BWRAP,
  CONTAINER_ENV,
  HOST_ROOT,
  assertNoStrayMounts,
  makeBusyboxRoot,
  makeScratchDir,
  removeScratchDir,
  runHost,
  runInContainer,
  type Bind,
  type RunResult,
} from '../lib/container.js'
import { DEBUG_ENV, TEST_CACHE_DIR, parseDebug } from '../lib/shims.js'
import { describeNative, kernelRunsNatively } from '../lib/native.js'
import { readelfHeader } from '../lib/readelf.js'

const run = promisify(execFile)

/** Cold: compiler-rt for seven targets, seven Debian trees. Warm: well under a minute. */
t.setTimeout(60 * 60_000)

const UNSHARE = '/usr/bin/unshare'
const BINFMT = '/proc/sys/fs/binfmt_misc'
const SHIM_NAME = 'dash'
/** The host program: dash needs only libc6, and `-c` lets a test choose its output and exit status. */
const TARGET = '/bin/dash'
const PACKAGES = ['libc6', 'dash'] as const
/** Debian's release; riscv64 became a release architecture with trixie. */
const SUITE: Partial<Record<ArchName, string>> = { riscv64: 'trixie' }
const DEFAULT_SUITE = 'bookworm'
const CACHE =
  process.env.HOSTSHIM_ARCH_CACHE || (process.getuid?.() === 0 ? '/var/cache/hostshim-arch' : join(homedir(), '.cache/hostshim-arch'))
/**
 * What this kernel runs without qemu, as it answers (test/lib/native.ts; not
 * HOSTSHIM_TEST_EMULATE: the control below needs the kernel's real refusal).
 * i686 is not assumed: kernels without IA32 emulation refuse it.
 */
const NATIVE: ReadonlySet<ArchName> = new Set(ARCH_NAMES.filter((a) => kernelRunsNatively(ARCHES[a])))
const FOREIGN = ARCH_NAMES.filter((a) => a !== 'x86_64')

// ---------------------------------------------------------------- the mirror

interface Mirror {
  readonly uri: string
  readonly signedBy: string | null
}

/**
 * The machine's Debian mirror: the first deb822 stanza of
 * /etc/apt/sources.list.d/debian.sources (or the first `deb` line of
 * /etc/apt/sources.list) for a release suite, not -security or -updates.
 */
function machineMirror(): Mirror | null {
  const deb822 = '/etc/apt/sources.list.d/debian.sources'
  if (existsSync(deb822)) {
    for (const stanza of readFileSync(deb822, 'utf8').split(/\n\s*\n/)) {
      const field = (name: string) => {
        const m = new RegExp(`^${name}:[ \\t]*(.*)$`, 'mi').exec(stanza.replace(/^#.*$/gm, ''))
        return m ? (m[1] as string).trim() : null
      }
      const suites = (field('Suites') ?? '').split(/\s+/)
      const uri = (field('URIs') ?? '').split(/\s+/)[0]
      if ((field('Types') ?? '').split(/\s+/).includes('deb') && uri && suites.some((s) => /^[a-z]+$/.test(s))) {
        // Signed-By may also hold the key itself; only a keyring path is passed on.
        const signedBy = field('Signed-By')
        return { uri, signedBy: signedBy?.startsWith('/') ? signedBy : null }
      }
    }
  }
  const list = '/etc/apt/sources.list'
  if (existsSync(list)) {
    const m = /^deb\s+(?:\[([^\]]*)\]\s+)?(\S+)\s+([a-z]+)\s/m.exec(readFileSync(list, 'utf8'))
    if (m) return { uri: m[2] as string, signedBy: /signed-by=(\S+)/.exec(m[1] ?? '')?.[1] ?? null }
  }
  return null
}

// ---------------------------------------------------------- Debian trees

interface HostTree {
  readonly arch: Arch
  readonly suite: string
  /** the unpacked packages: what the container sees at /run/host */
  readonly root: string
  readonly debs: readonly string[]
  /** true when this run fetched it */
  readonly fetched: boolean
}

const MANIFEST = '.hostshim-tree.json'

/**
 * The tree for one architecture, from the cache or fetched. A tree is built
 * in a temp dir next to its final place and renamed there whole, with its
 * manifest inside, so a crash or a concurrent run never leaves half a tree.
 */
async function hostTree(arch: Arch, mirror: Mirror): Promise<HostTree> {
  const suite = SUITE[arch.name] ?? DEFAULT_SUITE
  const dir = join(CACHE, `${arch.debian}-${suite}`)
  const wanted = { suite, packages: PACKAGES }
  try {
    const manifest = JSON.parse(readFileSync(join(dir, MANIFEST), 'utf8')) as { suite: string; packages: string[]; debs: string[] }
    if (JSON.stringify({ suite: manifest.suite, packages: manifest.packages }) === JSON.stringify(wanted)) {
      return { arch, suite, root: join(dir, 'root'), debs: manifest.debs, fetched: false }
    }
  } catch {
    // not cached (or another layout): fetch
  }
  await mkdir(CACHE, { recursive: true })
  const work = await mkdtemp(`${dir}.tmp-`)
  try {
    const apt = join(work, 'apt')
    for (const d of ['lists/partial', 'archives/partial', 'parts']) await mkdir(join(apt, d), { recursive: true })
    await writeFile(join(apt, 'status'), '')
    const options = [`arch=${arch.debian}`, ...(mirror.signedBy ? [`signed-by=${mirror.signedBy}`] : [])].join(' ')
    await writeFile(join(apt, 'sources.list'), `deb [${options}] ${mirror.uri} ${suite} main\n`)
    const o = (k: string, v: string) => ['-o', `${k}=${v}`]
    const aptArgs = [
      ...o('Dir::State', apt),
      ...o('Dir::State::Lists', join(apt, 'lists')),
      ...o('Dir::State::status', join(apt, 'status')),
      ...o('Dir::Cache', apt),
      ...o('Dir::Cache::Archives', join(apt, 'archives')),
      ...o('Dir::Cache::pkgcache', ''),
      ...o('Dir::Cache::srcpkgcache', ''),
      ...o('Dir::Etc::SourceList', join(apt, 'sources.list')),
      ...o('Dir::Etc::SourceParts', join(apt, 'parts')),
      ...o('Dir::Etc::Preferences', '/dev/null'),
      ...o('Dir::Etc::PreferencesParts', join(apt, 'parts')),
      ...o('APT::Architecture', arch.debian),
      ...o('APT::Architectures', arch.debian),
      ...o('APT::Sandbox::User', 'root'),
      ...o('Acquire::Languages', 'none'),
      '-q',
    ]
    const debsDir = join(work, 'debs')
    await mkdir(debsDir)
    try {
      await run('apt-get', [...aptArgs, 'update'], { maxBuffer: 16 << 20 })
      await run('apt-get', [...aptArgs, 'download', ...PACKAGES.map((p) => `${p}:${arch.debian}`)], { cwd: debsDir, maxBuffer: 16 << 20 })
    } catch (error) {
      const e = error as Error & { stderr?: string }
      throw new Error(`apt-get for ${arch.debian} ${suite} from ${mirror.uri} failed: ${e.stderr || e.message}`)
    }
    const debs = (await readdir(debsDir)).filter((f) => f.endsWith('.deb')).sort()
    const root = join(work, 'root')
    await mkdir(root)
    for (const deb of debs) await run('dpkg', ['-x', join(debsDir, deb), root])
    await usrMerge(root)
    await rm(apt, { recursive: true, force: true })
    await writeFile(join(work, MANIFEST), `${JSON.stringify({ ...wanted, debs }, null, 2)}\n`)
    try {
      await rename(work, dir)
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code
      if (code !== 'ENOTEMPTY' && code !== 'EEXIST') throw error
      // A concurrent run got there first (its tree is as good as ours), or
      // the dir is a stale layout: replace only the latter.
      if (!existsSync(join(dir, MANIFEST)) || JSON.parse(readFileSync(join(dir, MANIFEST), 'utf8')).suite !== suite) {
        await rm(dir, { recursive: true, force: true })
        await rename(work, dir)
      }
    }
    return { arch, suite, root: join(dir, 'root'), debs, fetched: true }
  } finally {
    await rm(work, { recursive: true, force: true })
  }
}

/**
 * Packages from trixie on ship only /usr; a real host has the usr-merge
 * links (relative, as base-files makes them). Bookworm's packages still ship
 * /lib and /bin themselves, and need nothing.
 */
async function usrMerge(root: string): Promise<void> {
  for (const d of ['bin', 'sbin', 'lib', 'lib64']) {
    if (!existsSync(join(root, d)) && existsSync(join(root, 'usr', d))) await symlink(`usr/${d}`, join(root, d))
  }
}

// ---------------------------------------------------------------- binfmt

/**
 * A binfmt_misc rule for this architecture's ELF files: magic and mask over
 * the first 20 bytes (e_ident, e_type, e_machine), as qemu's own rules do.
 */
function binfmtRule(arch: Arch, interpreter: string): string {
  const le = arch.byteOrder === 1
  const half = (v: number) => (le ? [v & 0xff, v >> 8] : [v >> 8, v & 0xff])
  // e_ident: magic, class, data, version; OS/ABI any; ABI version and padding zero.
  const magic = [0x7f, 0x45, 0x4c, 0x46, arch.elfClass, arch.byteOrder, 1, 0, ...Array<number>(8).fill(0), ...half(2), ...half(arch.machine)]
  // e_type ET_EXEC (2) or ET_DYN (3): the low bit is free.
  const mask = [...Array<number>(7).fill(0xff), 0, ...Array<number>(8).fill(0xff), ...(le ? [0xfe, 0xff] : [0xff, 0xfe]), 0xff, 0xff]
  const hex = (bytes: number[]) => bytes.map((b) => `\\x${b.toString(16).padStart(2, '0')}`).join('')
  return `:hostshim-${arch.name}:M::${hex(magic)}:${hex(mask)}:${interpreter}:F`
}

const qemuOf = (arch: Arch) => `/usr/bin/qemu-${arch.qemu}-static`

/**
 * The command that runs the rest of its argv in a new user + mount namespace
 * with a fresh binfmt_misc instance holding `rules`.
 */
function privateBinfmt(rules: readonly string[]): string[] {
  const script = [
    `mount -t binfmt_misc binfmt_misc ${BINFMT}`,
    'while [ "$1" != -- ]; do printf %s "$1" > ' + `${BINFMT}/register; shift; done`,
    'shift',
    'exec "$@"',
  ].join('\n')
  return [UNSHARE, '--user', '--map-root-user', '--mount', '--propagation', 'private', '--', '/bin/sh', '-euc', script, 'sh', ...rules, '--']
}

/** Run `argv` on the host (no container) in a private binfmt_misc namespace holding `rules`. */
function inPrivateBinfmt(rules: readonly string[], argv: readonly string[]): RunResult {
  const [file, ...args] = [...privateBinfmt(rules), ...argv] as [string, ...string[]]
  return runHost(file, args, { env: CONTAINER_ENV })
}

/** The entries of binfmt_misc: in this process's namespace, and the machine's (init user namespace) one. */
function binfmtState(): { here: string[]; machine: string[] | null } {
  const here = existsSync(BINFMT) ? readdirSync(BINFMT).sort() : []
  let machine: string[] | null = null
  if (process.getuid?.() === 0) {
    // As real root, a mount in a throwaway mount namespace shows the machine's
    // instance (it is the init user namespace's) without changing it.
    const script = `mountpoint -q ${BINFMT} || mount -t binfmt_misc binfmt_misc ${BINFMT}; ls -1 ${BINFMT}`
    const r = runHost(UNSHARE, ['--mount', '--propagation', 'private', '--', '/bin/sh', '-euc', script], { env: CONTAINER_ENV })
    if (r.status === 0) machine = r.stdout.toString().split('\n').filter(Boolean).sort()
  }
  return { here, machine }
}

// ----------------------------------------------------------------- setup

const mirror = machineMirror()

/** Why the emulated runs cannot happen here, or null. */
function cannotEmulate(): string | null {
  if (process.arch !== 'x64') return 'the emulated runs assume an x86_64 machine'
  const missing = [UNSHARE, BWRAP, '/bin/busybox', 'readelf', ...ARCH_NAMES.map((a) => qemuOf(ARCHES[a]))].filter(
    (p) => (p.startsWith('/') ? !existsSync(p) : spawnSync(p, ['--version']).status !== 0),
  )
  if (missing.length > 0) return `missing ${missing.join(', ')} (see .ci/setup)`
  if (mirror === null) return 'no Debian mirror in /etc/apt/sources.list.d/debian.sources or /etc/apt/sources.list'
  // Can a user namespace have its own binfmt_misc here (Linux >= 6.7)?
  const probe = inPrivateBinfmt([], ['/bin/true'])
  if (probe.status !== 0) return `a user namespace cannot mount its own binfmt_misc: ${probe.stderr.toString().trim()}`
  return null
}
const cannot = cannotEmulate()
// .ci/setup installs everything above: a machine without it fails here,
// instead of passing with the emulated cases skipped.
if (cannot !== null) t.fail(`the emulated cases cannot run here: ${cannot}`)

const scratch = await makeScratchDir('arches')
const binfmtBefore = binfmtState()
t.teardown(() => removeScratchDir(scratch))

/** The busybox root every run uses; the shims go to its /usr/bin as dash-ARCH. */
const root = await makeBusyboxRoot(join(scratch, 'root'))
const timings: string[] = []
let clock = performance.now()
const lap = (what: string) => {
  const now = performance.now()
  timings.push(`${what} ${((now - clock) / 1000).toFixed(1)} s`)
  clock = now
}

const compiled: ArchName[] = []
// Exec mode: these shims exec the foreign loader through the private
// binfmt_misc rule. Chainload shims map it in-process, so no rule is involved:
// test/integration/chainload.test.ts runs them on every architecture.
const built: BuiltShim[] = await generate(validateConfig({ name: SHIM_NAME, target: TARGET, arch: 'all', mode: 'exec', outDir: join(root, 'usr/bin') }), {
  toolchain: await loadZig(),
  cacheDir: TEST_CACHE_DIR,
  onCompile: (a) => compiled.push(a.name),
})
lap(`shims (${compiled.length} compiled)`)
const shimOf = (a: ArchName) => `/usr/bin/${SHIM_NAME}-${a}`

const trees = new Map<ArchName, HostTree>()
if (cannot === null && mirror !== null) {
  for (const tree of await Promise.all(ARCH_NAMES.map((a) => hostTree(ARCHES[a], mirror)))) trees.set(tree.arch.name, tree)
  lap(`trees (${[...trees.values()].filter((x) => x.fetched).length} fetched)`)
}
t.comment(`timings: ${timings.join(', ')}`)

function treeOf(a: ArchName): HostTree {
  const tree = trees.get(a)
  if (!tree) throw new Error(`no tree for ${a}`)
  return tree
}

interface Run {
  readonly shim: ArchName
  readonly host: ArchName
  readonly args: readonly string[]
  /** registrations in the private binfmt_misc instance */
  readonly register: readonly ArchName[]
  /** start the shim with an explicit qemu instead of through binfmt_misc */
  readonly explicitQemu?: boolean
  /** qemu's -cpu for the shim (with explicitQemu) */
  readonly cpu?: string
  readonly debug?: boolean
}

function runShim(r: Run): RunResult {
  const arch = ARCHES[r.shim]
  const binds: Bind[] = r.explicitQemu ? [[qemuOf(arch), qemuOf(arch), 'ro']] : []
  const qemu = r.explicitQemu ? [qemuOf(arch), ...(r.cpu ? ['-cpu', r.cpu] : [])] : []
  const argv = [...qemu, shimOf(r.shim), ...r.args]
  return runInContainer({
    root,
    host: treeOf(r.host).root,
    binds,
    argv,
    env: r.debug ? { ...CONTAINER_ENV, [DEBUG_ENV]: '1' } : CONTAINER_ENV,
    wrapper: privateBinfmt(r.register.map((a) => binfmtRule(ARCHES[a], qemuOf(ARCHES[a])))),
  })
}


/** What readelf says, in the words inspect uses. */
function readelfIdentity(file: string): { class: string; byteOrder: string; machine: string } {
  const h = readelfHeader(file)
  return {
    class: h.get('Class') ?? '?',
    byteOrder: /little endian/.test(h.get('Data') ?? '') ? 'little endian' : /big endian/.test(h.get('Data') ?? '') ? 'big endian' : '?',
    machine: h.get('Machine') ?? '?',
  }
}

const READELF_MACHINE: Record<ArchName, string> = {
  x86_64: 'Advanced Micro Devices X86-64',
  aarch64: 'AArch64',
  armhf: 'ARM',
  i686: 'Intel 80386',
  ppc64le: 'PowerPC64',
  s390x: 'IBM S/390',
  riscv64: 'RISC-V',
}

/**
 * A host path resolved inside a tree, as the host would see it: absolute
 * link targets start again at the tree's root (Debian's are absolute:
 * /lib64/ld64.so.2 -> /lib/powerpc64le-linux-gnu/ld64.so.2). Enough for
 * the few well-formed links of these trees; the shim's full rules are
 * shim/README.md's and the plan model's.
 */
function inTree(tree: HostTree, hostPath: string): string {
  const todo = hostPath.split('/').filter(Boolean)
  const done: string[] = []
  for (let links = 0; todo.length > 0; ) {
    const name = todo.shift() as string
    if (name === '.') continue
    if (name === '..') {
      done.pop()
      continue
    }
    const full = join(tree.root, ...done, name)
    if (lstatSync(full).isSymbolicLink()) {
      if (++links > 40) throw new Error(`too many links resolving ${hostPath} in ${tree.root}`)
      const target = readlinkSync(full)
      if (target.startsWith('/')) done.length = 0
      todo.unshift(...target.split('/').filter(Boolean))
    } else {
      done.push(name)
    }
  }
  return `/${done.join('/')}`
}

/** The full path of a host path inside a tree, on this machine. */
const fileInTree = (tree: HostTree, hostPath: string) => join(tree.root, inTree(tree, hostPath))

/** libc.so.6 in the first multiarch dir of the table that has it, as a host path. */
function libcOf(tree: HostTree): string | undefined {
  return tree.arch.libDirs
    .slice(0, 2)
    .map((d) => `${d}/libc.so.6`)
    .find((p) => {
      try {
        return lstatSync(fileInTree(tree, p)).isFile()
      } catch {
        return false
      }
    })
}

// ------------------------------------------------------------------ tests

t.test('generate builds a verified static shim for every architecture', async (t) => {
  t.same(built.map((b) => b.arch), ARCH_NAMES)
  for (const b of built) {
    const arch = ARCHES[b.arch]
    t.equal(b.path, join(root, shimOf(b.arch)), `${b.arch}: NAME-ARCH in the out dir`)
    const elf = parseElf(readFileSync(b.path))
    t.equal(elf.machine, arch.machine, `${b.arch}: e_machine ${arch.machine}`)
    t.equal(elf.class, arch.elfClass === 2 ? 64 : 32, `${b.arch}: class`)
    t.equal(elf.byteOrder, arch.byteOrder === 1 ? 'little' : 'big', `${b.arch}: byte order`)
    t.ok(elf.isStatic, `${b.arch}: static`)
    t.equal(elf.interpreter, null, `${b.arch}: no PT_INTERP`)
    t.equal(elf.kernelWouldReject, null, `${b.arch}: the kernel would load it`)
    const h = readelfIdentity(b.path)
    t.same(h, { class: `ELF${elf.class}`, byteOrder: `${elf.byteOrder} endian`, machine: READELF_MACHINE[b.arch] }, `${b.arch}: readelf -h agrees`)
  }
})

t.test('the Debian trees match the arch table', { skip: cannot ?? false }, async (t) => {
  for (const a of ARCH_NAMES) {
    const tree = treeOf(a)
    const arch = tree.arch
    t.same(tree.debs.map((d) => d.split('_')[0]), [...PACKAGES].sort(), `${a}: ${tree.debs.join(' ')}`)
    t.ok(tree.debs.every((d) => d.endsWith(`_${arch.debian}.deb`)), `${a}: packages of Debian's ${arch.debian}`)
    const dash = parseElf(readFileSync(fileInTree(tree, TARGET)))
    t.equal(dash.interpreter, arch.loaders[0], `${a}: ${TARGET}'s PT_INTERP is the table's loader`)
    t.ok(lstatSync(fileInTree(tree, arch.loaders[0] as string)).isFile(), `${a}: the loader is in the tree`)
    t.ok(libcOf(tree), `${a}: libc.so.6 is in a multiarch dir (${arch.triplet})`)
  }
})

t.test('inspect reads 32-bit and big-endian files as readelf does', { skip: cannot ?? false }, async (t) => {
  for (const a of ARCH_NAMES) {
    const arch = ARCHES[a]
    const tree = treeOf(a)
    const want = {
      class: arch.elfClass === 2 ? 'ELF64' : 'ELF32',
      byteOrder: arch.byteOrder === 1 ? 'little endian' : 'big endian',
      machine: a,
    }
    const shim = join(root, shimOf(a))
    const libc = libcOf(tree) ?? '/lib/libc.so.6'
    const files: [string, string][] = [
      ['shim', shim],
      ['loader', fileInTree(tree, arch.loaders[0] as string)],
      ['libc', fileInTree(tree, libc)],
      ['dash', fileInTree(tree, TARGET)],
    ]
    for (const [what, file] of files) {
      const report = inspectFile(readFileSync(file), file)
      t.same({ class: report.class, byteOrder: report.byteOrder, machine: report.machine }, want, `${a} ${what}: inspect`)
      t.same(readelfIdentity(file), { ...want, machine: READELF_MACHINE[a] }, `${a} ${what}: readelf -h`)
      if (what === 'shim') {
        t.ok(report.static, `${a} shim: static`)
        t.equal(report.shim?.arch, a, `${a} shim: its mark names the arch`)
        t.equal(report.shim?.target, TARGET, `${a} shim: its mark names the target`)
      }
      if (what === 'dash') {
        t.equal(report.interpreter, arch.loaders[0], `${a} dash: interpreter`)
        t.ok(report.needed.includes('libc.so.6'), `${a} dash: needs libc.so.6`)
        t.ok(report.glibcVersions.length > 0, `${a} dash: glibc versions read (${report.glibcVersions.at(-1)})`)
      }
    }
  }
})

t.test('the private binfmt_misc instance holds the rule, with F', { skip: cannot ?? false }, async (t) => {
  const arch = ARCHES.aarch64
  const r = inPrivateBinfmt([binfmtRule(arch, qemuOf(arch))], ['/bin/cat', `${BINFMT}/hostshim-aarch64`])
  t.equal(r.status, 0, r.stderr.toString())
  const text = r.stdout.toString()
  t.match(text, /^enabled$/m)
  t.match(text, new RegExp(`^interpreter ${qemuOf(arch)}$`, 'm'))
  t.match(text, /^flags: F$/m)
  t.match(text, /^magic 7f454c460201010000000000000000000200b700$/m, 'the same magic as qemu\'s own aarch64 rule')
  t.match(text, /^mask ffffffffffffff00fffffffffffffffffeffffff$/m, 'the same mask as qemu\'s own aarch64 rule')
})

const SCRIPT = 'printf "%s|" "$0" "$@"; echo; exit 7'
const ARGS = ['-c', SCRIPT, 'zero', 'one', 'two words'] as const
const OUTPUT = 'zero|one|two words|\n'

t.test('x86_64: the shim runs amd64 dash natively', { skip: cannot ?? false }, async (t) => {
  const r = runShim({ shim: 'x86_64', host: 'x86_64', args: ARGS, register: [] })
  t.equal(r.stdout.toString(), OUTPUT)
  t.equal(r.stderr.toString(), '')
  t.equal(r.status, 7, 'the program\'s exit status')
})

for (const a of FOREIGN) {
  const arch = ARCHES[a]
  t.test(`${a}: the shim runs ${arch.debian} dash through its loader under qemu`, { skip: cannot ?? false }, async (t) => {
    const tree = treeOf(a)
    const viaBinfmt = runShim({ shim: a, host: a, args: ARGS, register: [a] })
    t.equal(viaBinfmt.stdout.toString(), OUTPUT, 'started through binfmt_misc: dash\'s output')
    t.equal(viaBinfmt.stderr.toString(), '')
    t.equal(viaBinfmt.status, 7, 'the program\'s exit status')

    const viaQemu = runShim({ shim: a, host: a, args: ARGS, register: [a], explicitQemu: true })
    t.equal(viaQemu.stdout.toString(), OUTPUT, 'started by an explicit qemu: dash\'s output')
    t.equal(viaQemu.status, 7)

    const debug = runShim({ shim: a, host: a, args: ARGS, register: [a], debug: true })
    t.equal(debug.stdout.toString(), OUTPUT)
    const d = parseDebug(debug.stderr, SHIM_NAME)
    const loader = `${HOST_ROOT}${inTree(tree, arch.loaders[0] as string)}`
    t.equal(d.mode, 'container')
    t.equal(d.loader?.toString(), loader, 'the Debian loader, resolved inside /run/host')
    t.equal(d.exec.toString(), loader)
    const lp = (d.libraryPath?.toString() ?? '').split(':')
    t.ok(
      [`/lib/${arch.triplet}`, `/usr/lib/${arch.triplet}`].some((dir) => lp.includes(`${HOST_ROOT}${dir}`)),
      `the library path has the ${arch.triplet} dir: ${lp.join(':')}`,
    )
    t.same(d.argv.slice(-ARGS.length).map(String), ARGS, 'the arguments follow the target')
    t.equal(d.argv[d.argv.length - ARGS.length - 1]?.toString(), `${HOST_ROOT}${inTree(tree, TARGET)}`)

    t.comment(describeNative(arch))
    if (NATIVE.has(a)) {
      // The kernel runs these itself: there is no failing control.
      t.comment(`${a} runs natively here; no control without qemu`)
      return
    }
    // The control: an empty binfmt_misc instance. qemu still starts the shim,
    // but the kernel cannot exec the foreign loader without a rule.
    const control = runShim({ shim: a, host: a, args: ARGS, register: [], explicitQemu: true })
    t.equal(control.status, 126, 'no rule: the loader cannot be exec\'d')
    t.equal(control.stdout.toString(), '')
    t.equal(control.stderr.toString(), `${SHIM_NAME}: ${FAILURES.exec}: ${loader}: Exec format error\n`)
  })
}

/**
 * The oldest CPU of each Debian port that qemu models: the shim must not use
 * an instruction the port does not promise. armhf: VFPv3-D16 without NEON
 * (cortex-r5f; Debian's armhf baseline, which zig's arm baseline exceeds).
 * s390x: qemu's TCG cannot model Debian's z196, so the older z900.
 */
const OLDEST_CPU: Record<ArchName, string> = {
  x86_64: 'qemu64',
  i686: 'pentium2',
  aarch64: 'cortex-a53',
  armhf: 'cortex-r5f',
  ppc64le: 'power8',
  s390x: 'z900',
  riscv64: 'sifive-u54',
}

t.test('each shim runs on the oldest CPU its Debian port supports', { skip: cannot ?? false }, async (t) => {
  for (const a of ARCH_NAMES) {
    // Only the shim runs on that CPU; the Debian loader and dash run through
    // binfmt_misc on qemu's default one (glibc may well need more).
    const r = runShim({ shim: a, host: a, args: ARGS, register: a === 'x86_64' ? [] : [a], explicitQemu: true, cpu: OLDEST_CPU[a] })
    t.equal(r.stderr.toString(), '', `${a} on ${OLDEST_CPU[a]}: no SIGILL`)
    t.equal(r.stdout.toString(), OUTPUT, `${a} on ${OLDEST_CPU[a]}`)
    t.equal(r.status, 7)
  }
})

t.test('a shim refuses a target of another architecture: 126 and a message', { skip: cannot ?? false }, async (t) => {
  // "wrong architecture" whether the machine, the class or the byte order
  // differs (shim/README.md section 3).
  const message = (_shim: ArchName, host: ArchName) =>
    `${SHIM_NAME}: ${FAILURES.wrongArch}: ${HOST_ROOT}${inTree(treeOf(host), TARGET)}: Exec format error\n`
  for (const a of FOREIGN) {
    // The foreign shim (under qemu) pointed at amd64's dash.
    const foreign = runShim({ shim: a, host: 'x86_64', args: ['-c', 'echo no'], register: [a] })
    t.equal(foreign.status, 126, `${a} shim, amd64 host tree`)
    t.equal(foreign.stderr.toString(), message(a, 'x86_64'), `${a} shim, amd64 host tree: the message`)
    t.equal(foreign.stdout.toString(), '')
    // The x86_64 shim (native) pointed at the foreign dash.
    const native = runShim({ shim: 'x86_64', host: a, args: ['-c', 'echo no'], register: [] })
    t.equal(native.status, 126, `x86_64 shim, ${ARCHES[a].debian} host tree`)
    t.equal(native.stderr.toString(), message('x86_64', a), `x86_64 shim, ${ARCHES[a].debian} host tree: the message`)
    t.equal(native.stdout.toString(), '')
  }
})

// Last: everything above ran in private namespaces.
t.test('the machine\'s binfmt_misc and mounts are untouched', async (t) => {
  const after = binfmtState()
  t.same(after, binfmtBefore, 'binfmt_misc: no entry appeared or vanished, here or machine-wide')
  t.notOk([...after.here, ...(after.machine ?? [])].some((e) => e.startsWith('hostshim-')), 'no hostshim registration outside the test namespaces')
  if (process.getuid?.() === 0) t.not(after.machine, null, 'the machine-wide instance was read')
  assertNoStrayMounts(t, [scratch])
})
