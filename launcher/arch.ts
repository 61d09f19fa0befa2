// The architectures hostshim builds shims for, as data.
//
// Everything that differs between architectures lives in this one table: the
// zig target, the ELF identity a shim checks its target against, the glibc
// loader names, and the directories a host keeps that architecture's
// libraries in. Both the C shim and the TypeScript plan model read it.

export type ArchName =
  | 'x86_64'
  | 'aarch64'
  | 'armhf'
  | 'i686'
  | 'ppc64le'
  | 's390x'
  | 'riscv64'

export interface Arch {
  readonly name: ArchName
  /** zig `-target` triple; musl so the shim is static and libc-free at run time */
  readonly zigTarget: string
  /** extra zig cc flags that pin the ABI (float ABI, CPU baseline) */
  readonly zigFlags: readonly string[]
  /** e_machine */
  readonly machine: number
  /** EI_CLASS: 1 = ELFCLASS32, 2 = ELFCLASS64 */
  readonly elfClass: 1 | 2
  /** EI_DATA: 1 = little endian, 2 = big endian */
  readonly byteOrder: 1 | 2
  /** glibc loader paths, the usual one first */
  readonly loaders: readonly string[]
  /** Debian multiarch triplet */
  readonly triplet: string
  /**
   * Standard library directories searched after the loader's own directory
   * and ld.so.conf: Debian multiarch, then Fedora-style lib64 where the
   * architecture has one, then plain lib.
   */
  readonly libDirs: readonly string[]
  /** Debian's architecture name (for apt and dpkg) */
  readonly debian: string
  /** qemu-user binary name suffix (qemu-SUFFIX-static) */
  readonly qemu: string
}

function dirs(triplet: string, lib64: readonly string[]): string[] {
  return [`/lib/${triplet}`, `/usr/lib/${triplet}`, ...lib64, '/lib', '/usr/lib']
}

const LIB64 = ['/lib64', '/usr/lib64'] as const

export const ARCHES: Readonly<Record<ArchName, Arch>> = {
  x86_64: {
    name: 'x86_64',
    zigTarget: 'x86_64-linux-musl',
    zigFlags: ['-mcpu=baseline'],
    machine: 62,
    elfClass: 2,
    byteOrder: 1,
    loaders: ['/lib64/ld-linux-x86-64.so.2'],
    triplet: 'x86_64-linux-gnu',
    libDirs: dirs('x86_64-linux-gnu', LIB64),
    debian: 'amd64',
    qemu: 'x86_64',
  },
  aarch64: {
    name: 'aarch64',
    zigTarget: 'aarch64-linux-musl',
    zigFlags: ['-mcpu=baseline'],
    machine: 183,
    elfClass: 2,
    byteOrder: 1,
    loaders: ['/lib/ld-linux-aarch64.so.1'],
    triplet: 'aarch64-linux-gnu',
    libDirs: dirs('aarch64-linux-gnu', LIB64),
    debian: 'arm64',
    qemu: 'aarch64',
  },
  armhf: {
    name: 'armhf',
    zigTarget: 'arm-linux-musleabihf',
    // Debian's armhf: ARMv7-A, Thumb-2, VFPv3-D16; NEON is optional there.
    // zig's baseline for this target assumes NEON and 32 D registers: the
    // shim then holds vld1/vst1 on d16-d19, SIGILL on a CPU without NEON.
    zigFlags: ['-mcpu=generic+v7a+vfp3d16-d32-neon'],
    machine: 40,
    elfClass: 1,
    byteOrder: 1,
    loaders: ['/lib/ld-linux-armhf.so.3'],
    triplet: 'arm-linux-gnueabihf',
    libDirs: dirs('arm-linux-gnueabihf', []),
    debian: 'armhf',
    qemu: 'arm',
  },
  i686: {
    name: 'i686',
    zigTarget: 'x86-linux-musl',
    zigFlags: ['-mcpu=i686'],
    machine: 3,
    elfClass: 1,
    byteOrder: 1,
    loaders: ['/lib/ld-linux.so.2'],
    triplet: 'i386-linux-gnu',
    libDirs: dirs('i386-linux-gnu', []),
    debian: 'i386',
    qemu: 'i386',
  },
  ppc64le: {
    name: 'ppc64le',
    zigTarget: 'powerpc64le-linux-musl',
    // zig 0.14 passes clang -mred-zone for this target, which clang then
    // reports as unused; with -Werror that fails every compile.
    zigFlags: ['-mcpu=baseline', '-Wno-unused-command-line-argument'],
    machine: 21,
    elfClass: 2,
    byteOrder: 1,
    loaders: ['/lib64/ld64.so.2'],
    triplet: 'powerpc64le-linux-gnu',
    libDirs: dirs('powerpc64le-linux-gnu', LIB64),
    debian: 'ppc64el',
    qemu: 'ppc64le',
  },
  s390x: {
    name: 's390x',
    zigTarget: 's390x-linux-musl',
    zigFlags: ['-mcpu=baseline'],
    machine: 22,
    elfClass: 2,
    byteOrder: 2,
    loaders: ['/lib/ld64.so.1'],
    triplet: 's390x-linux-gnu',
    libDirs: dirs('s390x-linux-gnu', LIB64),
    debian: 's390x',
    qemu: 's390x',
  },
  riscv64: {
    name: 'riscv64',
    zigTarget: 'riscv64-linux-musl',
    zigFlags: ['-mcpu=baseline_rv64'],
    machine: 243,
    elfClass: 2,
    byteOrder: 1,
    loaders: ['/lib/ld-linux-riscv64-lp64d.so.1'],
    triplet: 'riscv64-linux-gnu',
    libDirs: dirs('riscv64-linux-gnu', ['/lib64/lp64d', '/usr/lib64/lp64d', ...LIB64]),
    debian: 'riscv64',
    qemu: 'riscv64',
  },
}

export const ARCH_NAMES = Object.keys(ARCHES) as ArchName[]

export function isArchName(name: string): name is ArchName {
  return Object.hasOwn(ARCHES, name)
}

/** The architecture this process runs on, if hostshim knows it. */
export function nativeArch(): ArchName | undefined {
  const byNode: Record<string, ArchName> = {
    x64: 'x86_64',
    arm64: 'aarch64',
    arm: 'armhf',
    ia32: 'i686',
    ppc64: 'ppc64le',
    s390x: 's390x',
    riscv64: 'riscv64',
  }
  return byNode[process.arch]
}

/** The architecture whose ELF identity this is, if any. */
export function archByMachine(machine: number, elfClass: number, byteOrder: number): Arch | undefined {
  return Object.values(ARCHES).find(
    (a) => a.machine === machine && a.elfClass === elfClass && a.byteOrder === byteOrder,
  )
}
