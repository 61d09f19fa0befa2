// Can this machine's kernel run a program of an architecture itself, without
// qemu? Asked, not assumed: an x86_64 kernel runs i386 programs only when it
// was built with IA32 emulation (CONFIG_IA32_EMULATION) and it is not turned
// off (ia32_emulation=false); some microVM kernels have none, and execve()
// of an i686 program fails there with ENOEXEC.
//
// The question is a tiny static program of that architecture, made here
// byte by byte (an ELF header, one PT_LOAD, the three instructions of
// exit(42)): the kernel runs it natively when it exits 42. Anything else (an
// error, or a shell that took the file for a script after ENOEXEC) is no.
//
// HOSTSHIM_TEST_EMULATE=i686 (a comma list of architectures, or "all") makes
// runsNatively() answer no for them, so that a machine whose kernel could
// run them also takes the path of a machine whose kernel cannot: qemu-user.
// The kernel's true answer stays available (kernelRunsNatively) for the
// tests whose control depends on what the kernel really refuses.

import { spawnSync } from 'node:child_process'
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Arch, ArchName } from '../../launcher/arch.js'

export const EMULATE_ENV = 'HOSTSHIM_TEST_EMULATE'

const EXIT = 42

/** exit(42) as machine code, for the architectures an x86_64 kernel might run. */
const EXIT_CODE: Partial<Record<ArchName, Buffer>> = {
  // mov edi, 42; mov eax, 60 (exit); syscall
  x86_64: Buffer.from([0xbf, EXIT, 0, 0, 0, 0xb8, 60, 0, 0, 0, 0x0f, 0x05]),
  // mov ebx, 42; mov eax, 1 (exit); int 0x80
  i686: Buffer.from([0xbb, EXIT, 0, 0, 0, 0xb8, 1, 0, 0, 0, 0xcd, 0x80]),
}

/**
 * A static little-endian ELF executable of `arch` whose code is `code`: the
 * header, one PT_LOAD (read, execute) of the whole file, the code after them.
 */
export function exitProgram(arch: Arch): Buffer | null {
  const code = EXIT_CODE[arch.name]
  if (code === undefined || arch.byteOrder !== 1) return null
  const is64 = arch.elfClass === 2
  const ehsize = is64 ? 64 : 52
  const phentsize = is64 ? 56 : 32
  const vaddr = is64 ? 0x400000 : 0x08048000
  const size = ehsize + phentsize + code.length
  const b = Buffer.alloc(size)
  b.set([0x7f, 0x45, 0x4c, 0x46, arch.elfClass, 1, 1], 0)
  b.writeUInt16LE(2, 16) // ET_EXEC
  b.writeUInt16LE(arch.machine, 18)
  b.writeUInt32LE(1, 20) // EV_CURRENT
  const entry = vaddr + ehsize + phentsize
  if (is64) {
    b.writeBigUInt64LE(BigInt(entry), 24)
    b.writeBigUInt64LE(BigInt(ehsize), 32) // e_phoff
    b.writeUInt16LE(ehsize, 52)
    b.writeUInt16LE(phentsize, 54)
    b.writeUInt16LE(1, 56) // e_phnum
    const p = ehsize
    b.writeUInt32LE(1, p) // PT_LOAD
    b.writeUInt32LE(5, p + 4) // PF_R | PF_X
    b.writeBigUInt64LE(0n, p + 8) // p_offset
    b.writeBigUInt64LE(BigInt(vaddr), p + 16)
    b.writeBigUInt64LE(BigInt(vaddr), p + 24)
    b.writeBigUInt64LE(BigInt(size), p + 32)
    b.writeBigUInt64LE(BigInt(size), p + 40)
    b.writeBigUInt64LE(0x1000n, p + 48)
  } else {
    b.writeUInt32LE(entry, 24)
    b.writeUInt32LE(ehsize, 28) // e_phoff
    b.writeUInt16LE(ehsize, 40)
    b.writeUInt16LE(phentsize, 42)
    b.writeUInt16LE(1, 44) // e_phnum
    const p = ehsize
    b.writeUInt32LE(1, p) // PT_LOAD
    b.writeUInt32LE(0, p + 4) // p_offset
    b.writeUInt32LE(vaddr, p + 8)
    b.writeUInt32LE(vaddr, p + 12)
    b.writeUInt32LE(size, p + 16)
    b.writeUInt32LE(size, p + 20)
    b.writeUInt32LE(5, p + 24) // PF_R | PF_X
    b.writeUInt32LE(0x1000, p + 28)
  }
  code.copy(b, ehsize + phentsize)
  return b
}

const answers = new Map<ArchName, boolean>()

/** The kernel's own answer: does execve() of a static `arch` program run it here? */
export function kernelRunsNatively(arch: Arch): boolean {
  const known = answers.get(arch.name)
  if (known !== undefined) return known
  const program = exitProgram(arch)
  let yes = false
  if (program !== null) {
    const dir = mkdtempSync(join(tmpdir(), 'hostshim-native-'))
    try {
      const file = join(dir, `exit42-${arch.name}`)
      writeFileSync(file, program)
      chmodSync(file, 0o755)
      yes = spawnSync(file, [], { stdio: 'ignore', timeout: 10_000 }).status === EXIT
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  }
  answers.set(arch.name, yes)
  return yes
}

/** The architectures HOSTSHIM_TEST_EMULATE names ("all": every one). */
export function forcedEmulation(env: NodeJS.ProcessEnv = process.env): (name: ArchName) => boolean {
  const list = (env[EMULATE_ENV] ?? '').split(',').map((s) => s.trim()).filter(Boolean)
  return (name) => list.includes('all') || list.includes(name)
}

/** Run `arch` programs directly (true) or under qemu-user (false): the kernel's answer, unless HOSTSHIM_TEST_EMULATE says qemu. */
export function runsNatively(arch: Arch, env: NodeJS.ProcessEnv = process.env): boolean {
  return !forcedEmulation(env)(arch.name) && kernelRunsNatively(arch)
}

/** One line for a test's output: what the kernel says, and which path this run takes. */
export function describeNative(arch: Arch, env: NodeJS.ProcessEnv = process.env): string {
  const kernel = kernelRunsNatively(arch)
  const forced = forcedEmulation(env)(arch.name)
  return `${arch.name}: the kernel ${kernel ? 'runs' : 'cannot run'} it natively${forced ? ` (${EMULATE_ENV} sends it to qemu)` : ''}`
}
