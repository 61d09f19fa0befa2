// launcher/arch.ts is data: every column is checked here against a source
// that does not come from hostshim. glibc's loader names (PRIOR-ART.md's
// table), the EM_* numbers of the C library's <elf.h>, Debian's own
// architecture tables (dpkg-architecture), zig's list of targets and CPUs,
// and finally readelf's view of a shim that zig built for each entry.

import { execFileSync, spawnSync } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join, posix } from 'node:path'
import t from 'tap'
import { ARCHES, ARCH_NAMES, archByMachine, isArchName, nativeArch, type Arch, type ArchName } from '../launcher/arch.js'
import { validateConfig } from '../launcher/config.js'
import { parseElf } from '../launcher/elf.js'
import { generate } from '../launcher/generate.js'
import { CFLAGS, LDFLAGS, compileSteps, findZig, loadZig } from '../launcher/toolchain.js'
import { TEST_CACHE_DIR } from './lib/shims.js'
import { readelfHeader } from './lib/readelf.js'

/** Cold: zig builds compiler-rt once per target (about 10 s each on a small machine). */
t.setTimeout(30 * 60_000)

interface Expected {
  /** glibc's loader path, as in PRIOR-ART.md's "Loader names (glibc)" table */
  readonly loader: string
  /** the EM_* macro of <elf.h> */
  readonly em: string
  /** what `readelf -h` prints as Machine */
  readonly readelf: string
  /** Debian's architecture name */
  readonly debian: string
  /** qemu-user's name for it */
  readonly qemu: string
  /** what `readelf -h` prints in Flags for the ABI zig must pin, if any */
  readonly flags?: RegExp
}

const EXPECTED: Record<ArchName, Expected> = {
  x86_64: { loader: '/lib64/ld-linux-x86-64.so.2', em: 'EM_X86_64', readelf: 'Advanced Micro Devices X86-64', debian: 'amd64', qemu: 'x86_64' },
  aarch64: { loader: '/lib/ld-linux-aarch64.so.1', em: 'EM_AARCH64', readelf: 'AArch64', debian: 'arm64', qemu: 'aarch64' },
  armhf: { loader: '/lib/ld-linux-armhf.so.3', em: 'EM_ARM', readelf: 'ARM', debian: 'armhf', qemu: 'arm', flags: /Version5 EABI, hard-float ABI/ },
  i686: { loader: '/lib/ld-linux.so.2', em: 'EM_386', readelf: 'Intel 80386', debian: 'i386', qemu: 'i386' },
  ppc64le: { loader: '/lib64/ld64.so.2', em: 'EM_PPC64', readelf: 'PowerPC64', debian: 'ppc64el', qemu: 'ppc64le', flags: /abiv2/ },
  s390x: { loader: '/lib/ld64.so.1', em: 'EM_S390', readelf: 'IBM S/390', debian: 's390x', qemu: 's390x' },
  riscv64: { loader: '/lib/ld-linux-riscv64-lp64d.so.1', em: 'EM_RISCV', readelf: 'RISC-V', debian: 'riscv64', qemu: 'riscv64', flags: /double-float ABI/ },
}

const arches = ARCH_NAMES.map((name) => ARCHES[name])

t.test('the table holds the seven architectures Toolbx ships, keyed by name', async (t) => {
  t.same(ARCH_NAMES, ['x86_64', 'aarch64', 'armhf', 'i686', 'ppc64le', 's390x', 'riscv64'])
  for (const [key, arch] of Object.entries(ARCHES)) t.equal(arch.name, key, `${key}: name is its key`)
  for (const name of ARCH_NAMES) t.ok(isArchName(name))
  for (const name of ['all', 'amd64', 'arm64', 'x86-64', 'toString', '__proto__', '']) t.notOk(isArchName(name), `${JSON.stringify(name)} is not an arch`)
  const native = nativeArch()
  if (process.arch === 'x64') t.equal(native, 'x86_64')
  else if (native !== undefined) t.ok(isArchName(native))
})

t.test('loaders are glibc\'s names, the usual one first', async (t) => {
  for (const arch of arches) {
    const want = EXPECTED[arch.name]
    t.equal(arch.loaders[0], want.loader, `${arch.name}: ${want.loader}`)
    t.equal(new Set(arch.loaders).size, arch.loaders.length, `${arch.name}: no duplicates`)
    for (const loader of arch.loaders) {
      t.ok(posix.isAbsolute(loader) && posix.normalize(loader) === loader, `${arch.name}: ${loader} is a normal absolute path`)
      t.match(posix.basename(loader), /^ld[-.\w]*\.so\.\d+$/, `${arch.name}: ${loader} is named like a loader`)
    }
    // The shim's library path starts with the loader's own directory; the
    // standard list must cover it too, for hosts that move the loader.
    t.ok(arch.libDirs.includes(posix.dirname(want.loader)), `${arch.name}: the loader's directory is a standard lib dir`)
  }
})

t.test('ELF identity: machine numbers are <elf.h>\'s, and machine + class + byte order name one arch', async (t) => {
  // zig ships musl's <elf.h>; the machine's glibc one is a second witness.
  const zigElfH = join(dirname(findZig()), 'lib/libc/include/generic-musl/elf.h')
  const headers = [zigElfH, '/usr/include/elf.h'].filter((p) => existsSync(p))
  t.ok(headers.includes(zigElfH), `zig's elf.h is at ${zigElfH}`)
  for (const header of headers) {
    const text = readFileSync(header, 'utf8')
    for (const arch of arches) {
      const em = EXPECTED[arch.name].em
      const m = new RegExp(`^#define\\s+${em}\\s+(\\d+)\\b`, 'm').exec(text)
      t.ok(m, `${header} defines ${em}`)
      t.equal(arch.machine, Number(m?.[1]), `${arch.name}: machine ${arch.machine} is ${em} in ${header}`)
    }
  }
  for (const arch of arches) {
    t.equal(archByMachine(arch.machine, arch.elfClass, arch.byteOrder), arch, `${arch.name}: found by its ELF identity`)
    t.equal(archByMachine(arch.machine, arch.elfClass === 2 ? 1 : 2, arch.byteOrder), undefined, `${arch.name}: the other class is not it`)
    t.equal(archByMachine(arch.machine, arch.elfClass, arch.byteOrder === 1 ? 2 : 1), undefined, `${arch.name}: the other byte order is not it`)
  }
})

t.test('Debian names are Debian\'s', async (t) => {
  const debs = arches.map((a) => a.debian)
  t.equal(new Set(debs).size, debs.length, 'Debian names are unique')
  for (const arch of arches) t.equal(arch.debian, EXPECTED[arch.name].debian, `${arch.name} is Debian's ${arch.debian}`)
})

const dpkgArchitecture = spawnSync('dpkg-architecture', ['--version'], { encoding: 'utf8' })
const noDpkgArchitecture = dpkgArchitecture.error || dpkgArchitecture.status !== 0 ? 'dpkg-architecture is not installed (dpkg-dev)' : false

t.test('triplets, class and byte order agree with dpkg-architecture', { skip: noDpkgArchitecture }, async (t) => {
  for (const arch of arches) {
    const query = (v: string) =>
      execFileSync('dpkg-architecture', ['-a', arch.debian, `-q${v}`], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim()
    t.equal(arch.triplet, query('DEB_HOST_MULTIARCH'), `${arch.name}: multiarch triplet`)
    t.equal(arch.elfClass === 2 ? '64' : '32', query('DEB_HOST_ARCH_BITS'), `${arch.name}: class`)
    t.equal(arch.byteOrder === 1 ? 'little' : 'big', query('DEB_HOST_ARCH_ENDIAN'), `${arch.name}: byte order`)
  }
})

t.test('library directories: multiarch first, lib64 only on 64-bit, all plain absolute paths', async (t) => {
  for (const arch of arches) {
    const dirs = arch.libDirs
    t.same(dirs.slice(0, 2), [`/lib/${arch.triplet}`, `/usr/lib/${arch.triplet}`], `${arch.name}: the multiarch triplet first`)
    t.same(dirs.slice(-2), ['/lib', '/usr/lib'], `${arch.name}: plain lib last`)
    t.equal(new Set(dirs).size, dirs.length, `${arch.name}: no duplicates`)
    for (const dir of dirs) {
      t.ok(posix.isAbsolute(dir) && posix.normalize(dir) === dir && !dir.endsWith('/'), `${arch.name}: ${dir} is a normal absolute path`)
      t.notOk(dir.includes(':'), `${arch.name}: ${dir} has no ":" (the --library-path separator)`)
    }
    const lib64 = dirs.filter((d) => /^(\/usr)?\/lib64(\/|$)/.test(d))
    if (arch.elfClass === 2) t.ok(lib64.includes('/lib64') && lib64.includes('/usr/lib64'), `${arch.name}: 64-bit has Fedora's lib64`)
    else t.same(lib64, [], `${arch.name}: 32-bit has no lib64`)
  }
  // Fedora's riscv64 keeps its libraries in the ABI subdirectory.
  t.ok(ARCHES.riscv64.libDirs.includes('/usr/lib64/lp64d'))
})

t.test('zig targets: musl, the ABI of the Debian triplet, a CPU zig knows', async (t) => {
  const zig = await loadZig()
  const targets = JSON.parse(execFileSync(zig.path, ['targets'], { encoding: 'utf8', maxBuffer: 64 << 20 })) as {
    libc: string[]
    cpus: Record<string, Record<string, unknown>>
    cpuFeatures: Record<string, string[]>
  }
  for (const arch of arches) {
    t.ok(targets.libc.includes(arch.zigTarget), `${arch.name}: zig can build musl for ${arch.zigTarget}`)
    const [cpu, os, abi] = arch.zigTarget.split('-') as [string, string, string]
    t.equal(os, 'linux')
    // gnu -> musl, gnueabihf -> musleabihf: the same float ABI as Debian's.
    t.equal(abi, (arch.triplet.split('-')[2] ?? '').replace(/^gnu/, 'musl'), `${arch.name}: ABI of ${arch.triplet}`)
    const tripletCpu = arch.triplet.split('-')[0]
    t.equal(cpu, tripletCpu === 'i386' ? 'x86' : tripletCpu, `${arch.name}: CPU family of ${arch.triplet}`)

    const mcpu = arch.zigFlags.filter((f) => f.startsWith('-mcpu='))
    t.equal(mcpu.length, 1, `${arch.name}: exactly one -mcpu pins the CPU baseline`)
    const [model, ...features] = (mcpu[0] ?? '').slice('-mcpu='.length).split(/(?=[+-])/)
    t.ok(model === 'baseline' || Object.hasOwn(targets.cpus[cpu] ?? {}, model ?? ''), `${arch.name}: zig knows CPU ${model} for ${cpu}`)
    for (const feature of features) {
      t.ok(targets.cpuFeatures[cpu]?.includes(feature.slice(1)), `${arch.name}: zig knows feature ${feature} for ${cpu}`)
    }
    for (const flag of arch.zigFlags) t.match(flag, /^-[mW]/, `${arch.name}: ${flag} is a machine or warning flag`)
    const [compile = [], link = []] = compileSteps(arch, 'shim.c', 'shim')
    t.same(compile.slice(0, 3 + arch.zigFlags.length), ['cc', '-target', arch.zigTarget, ...arch.zigFlags], `${arch.name}: target flags come first`)
    t.ok(CFLAGS.every((f) => compile.includes(f)), `${arch.name}: the common flags follow`)
    t.same(link.slice(0, 3), ['cc', '-target', arch.zigTarget], `${arch.name}: the link is for the same target`)
    t.ok(LDFLAGS.every((f) => link.includes(f)), `${arch.name}: the link flags follow`)
  }
})

t.test('qemu-user names', async (t) => {
  for (const arch of arches) t.equal(arch.qemu, EXPECTED[arch.name].qemu, `${arch.name}: qemu-${arch.qemu}-static`)
})

const noQemu = existsSync('/usr/bin/qemu-aarch64-static') ? false : 'qemu-user-static is not installed'
// .ci/setup installs both: without them the run fails, not only skips.
for (const missing of [noDpkgArchitecture, noQemu]) if (missing) t.fail(`${missing} (see .ci/setup)`)

t.test('qemu-user-static has a binary for each', { skip: noQemu }, async (t) => {
  for (const arch of arches) t.ok(existsSync(`/usr/bin/qemu-${arch.qemu}-static`), `${arch.name}: /usr/bin/qemu-${arch.qemu}-static exists`)
})


t.test('a shim built for each entry is what the entry says (readelf -h)', async (t) => {
  const out = await mkdtemp(join(tmpdir(), 'hostshim-arch-'))
  t.teardown(() => rm(out, { recursive: true, force: true }))
  const config = validateConfig({ name: 'dash', target: '/bin/dash', arch: 'all', outDir: out })
  const built = await generate(config, { toolchain: await loadZig(), cacheDir: TEST_CACHE_DIR })
  t.same(built.map((b) => b.arch), ARCH_NAMES, 'one shim per architecture, in table order')
  for (const shim of built) {
    const arch: Arch = ARCHES[shim.arch]
    const want = EXPECTED[arch.name]
    t.equal(shim.path, join(out, `dash-${arch.name}`), `${arch.name}: written as NAME-ARCH`)
    const h = readelfHeader(shim.path)
    t.equal(h.get('Class'), arch.elfClass === 2 ? 'ELF64' : 'ELF32', `${arch.name}: class`)
    t.equal(h.get('Data'), `2's complement, ${arch.byteOrder === 1 ? 'little' : 'big'} endian`, `${arch.name}: byte order`)
    t.equal(h.get('Machine'), want.readelf, `${arch.name}: machine`)
    t.match(h.get('Type') ?? '', /^(EXEC|DYN) /, `${arch.name}: an executable`)
    if (want.flags) t.match(h.get('Flags') ?? '', want.flags, `${arch.name}: ABI flags`)
    const elf = parseElf(readFileSync(shim.path))
    t.equal(elf.machine, arch.machine, `${arch.name}: e_machine`)
    t.equal(elf.arch, arch.name, `${arch.name}: the reader names it`)
    const segments = execFileSync('readelf', ['-lW', shim.path], { encoding: 'utf8' })
    t.notMatch(segments, /\bINTERP\b/, `${arch.name}: no PT_INTERP`)
    t.notMatch(execFileSync('readelf', ['-dW', shim.path], { encoding: 'utf8' }), /\(NEEDED\)/, `${arch.name}: no DT_NEEDED`)
  }
})
