// The shim's own C runtime: what a zig-built shim has in place of a C
// library.
//
// A shim needs about twenty system calls and a dozen string functions. musl
// brought them with 5.7 KiB of code the shim does not use (its start-up sets
// up a thread pointer, stdio, locale, a stack protector; its wrappers are
// written for every caller), and two system calls at every launch. Here each
// is a few bytes: one system call function per architecture (inline
// assembly, the kernel's calling convention), `_start` (sp to C), and the
// functions the compiler may call by their standard names (memcpy, memset,
// ...). A shim needs no relocation (launcher/toolchain.ts, shim.ld), so
// there is no relocation code.
//
// The C library's headers are still read, for types and constants (zig has
// musl's for every target); no C library is linked (zig cc -nostdlib). The
// template's body keeps calling open(), stat(), mmap() as POSIX names them:
// each is a macro here, so the body reads the same in both builds.
//
// Only zig's build defines HOSTSHIM_RUNTIME (launcher/toolchain.ts, CFLAGS).
// Without it the C is an ordinary program of its C library: a
// distribution's compiler (--cc), a hand-made build of `hostshim render`,
// the sanitizer and fuzz builds against glibc.

import type { Arch, ArchName } from '../launcher/arch.js'
import { c, type CCode } from './emit.js'

/*
 * The convention most architectures share: the number in one register, the
 * six arguments in six more, one instruction, the result in the first
 * argument's register, and only memory changed.
 */
function inRegisters(insn: CCode, num: CCode, args: readonly [CCode, CCode, CCode, CCode, CCode, CCode]): CCode {
  const [r0, r1, r2, r3, r4, r5] = args
  return c`	register long ${num} __asm__("${num}") = n, ${r0} __asm__("${r0}") = a, ${r1} __asm__("${r1}") = b, ${r2} __asm__("${r2}") = c,
		      ${r3} __asm__("${r3}") = d, ${r4} __asm__("${r4}") = e, ${r5} __asm__("${r5}") = f;

	__asm__ volatile("${insn}" : "+r"(${r0}) : "r"(${num}), "r"(${r1}), "r"(${r2}), "r"(${r3}), "r"(${r4}), "r"(${r5}) : "memory");
	r = ${r0};`
}

/*
 * One system call: number n, six arguments, the kernel's result (-errno on
 * failure) in r. Each is the architecture's documented convention, with the
 * registers the kernel may change declared as clobbered.
 */
const SYSCALLS: Readonly<Record<ArchName, CCode>> = {
  // rax, then rdi rsi rdx r10 r8 r9; the kernel changes rcx and r11.
  x86_64: c`	register long r10 __asm__("r10") = d, r8 __asm__("r8") = e, r9 __asm__("r9") = f;

	__asm__ volatile("syscall" : "+a"(n) : "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9) : "rcx", "r11", "memory");
	r = n;`,
  // eax, then ebx ecx edx esi edi ebp. ebp is the frame pointer's, so the
  // last two go through memory: edi points at them.
  i686: c`	long last[2] = { e, f }, *p = last;

	__asm__ volatile("push %%ebp\n\tmov 4(%%edi), %%ebp\n\tmov (%%edi), %%edi\n\tint $0x80\n\tpop %%ebp"
			 : "+a"(n), "+D"(p) : "b"(a), "c"(b), "d"(c), "S"(d) : "memory");
	r = n;`,
  // EABI: r7, then r0-r5.
  armhf: inRegisters(c`svc 0`, c`r7`, [c`r0`, c`r1`, c`r2`, c`r3`, c`r4`, c`r5`]),
  // x8, then x0-x5.
  aarch64: inRegisters(c`svc 0`, c`x8`, [c`x0`, c`x1`, c`x2`, c`x3`, c`x4`, c`x5`]),
  // a7, then a0-a5.
  riscv64: inRegisters(c`ecall`, c`a7`, [c`a0`, c`a1`, c`a2`, c`a3`, c`a4`, c`a5`]),
  // r1, then r2-r7; the result in r2.
  s390x: inRegisters(c`svc 0`, c`r1`, [c`r2`, c`r3`, c`r4`, c`r5`, c`r6`, c`r7`]),
  // r0, then r3-r8; failure is cr0's SO bit with a positive errno in r3.
  // The kernel may change r0 and r4-r12, cr0, ctr and xer.
  ppc64le: c`	register long r0 __asm__("r0") = n, r3 __asm__("r3") = a, r4 __asm__("r4") = b, r5 __asm__("r5") = c,
		      r6 __asm__("r6") = d, r7 __asm__("r7") = e, r8 __asm__("r8") = f;

	__asm__ volatile("sc\n\tbns+ 1f\n\tneg 3, 3\n1:"
			 : "+r"(r0), "+r"(r3), "+r"(r4), "+r"(r5), "+r"(r6), "+r"(r7), "+r"(r8)
			 : : "r9", "r10", "r11", "r12", "cr0", "ctr", "xer", "memory");
	r = r3;`,
}

/*
 * Process entry: the kernel leaves sp at argc. hs_start(sp) is called with
 * the stack aligned as the ABI wants it for a call, and never returns.
 */
const STARTS: Readonly<Record<ArchName, CCode>> = {
  x86_64: c`\txor %ebp, %ebp\n\tmov %rsp, %rdi\n\tand $-16, %rsp\n\tcall hs_start\n\thlt`,
  i686: c`\txor %ebp, %ebp\n\tmov %esp, %eax\n\tand $-16, %esp\n\tsub $12, %esp\n\tpush %eax\n\tcall hs_start\n\thlt`,
  armhf: c`\tmov fp, #0\n\tmov lr, #0\n\tmov r0, sp\n\tbic r1, r0, #15\n\tmov sp, r1\n\tbl hs_start`,
  aarch64: c`\tmov x29, #0\n\tmov x30, #0\n\tmov x0, sp\n\tand sp, x0, #-16\n\tbl hs_start`,
  riscv64: c`\tmv a0, sp\n\tandi sp, sp, -16\n\tcall hs_start`,
  // A caller gives its callee a 160-byte save area, the back chain (0) at its start.
  s390x: c`\tlgr %r2, %r15\n\taghi %r15, -160\n\txc 0(8,%r15), 0(%r15)\n\tbrasl %r14, hs_start`,
  // ELFv2: a function's global entry computes its TOC from r12, so r12
  // holds hs_start's address and the call goes through ctr; a 32-byte frame.
  ppc64le: c`\tbcl 20, 31, 1f\n1:\tmflr 12\n\taddis 12, 12, (hs_start - 1b)@ha\n\taddi 12, 12, (hs_start - 1b)@l\n\tmr 3, 1\n\tclrrdi 1, 1, 4\n\tli 0, 0\n\tstdu 0, -32(1)\n\tmtctr 12\n\tbctrl`,
}

/*
 * What differs in the system calls themselves: a 64-bit file offset takes
 * two registers on 32-bit machines (on arm an aligned pair, after a pad);
 * mmap's offset is in pages there (mmap2); s390x's mmap takes its six
 * arguments in memory.
 */
const PREAD_OFFSET: Readonly<Record<ArchName, CCode>> = {
  x86_64: c`off`,
  i686: c`off, 0`,
  armhf: c`0, off, 0`,
  aarch64: c`off`,
  riscv64: c`off`,
  s390x: c`off`,
  ppc64le: c`off`,
}

function mmapCall(arch: Arch): CCode {
  if (arch.name === 's390x') {
    return c`	long args[6] = { (long)addr, (long)len, prot, flags, fd, off };

	return (void *)syscall(SYS_mmap, args);`
  }
  if (arch.elfClass === 1) return c`	return (void *)hs_sys6(SYS_mmap2, (long)addr, (long)len, prot, flags, fd, off >> 12);`
  return c`	return (void *)hs_sys6(SYS_mmap, (long)addr, (long)len, prot, flags, fd, off);`
}

/** The end of every shim: what runtimeBlock() began. */
export const RUNTIME_END = c`
#if defined(HOSTSHIM_RUNTIME) && defined(__clang__)
#pragma clang attribute pop
#endif
`

/** The headers and the runtime: the start of every shim, after `#define _GNU_SOURCE`. */
export function runtimeBlock(arch: Arch): CCode {
  return c`#ifndef HOSTSHIM_RUNTIME
#include <dirent.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#else
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/*
 * The shim's own runtime (shim/runtime.ts): no C library is linked.
 * Wrappers behave as the C library's do: -1 with errno set on failure.
 */
static int hs_errno;
static unsigned long *hs_auxv;
/* Not the C library's extern: a static is reached without a GOT entry, which would need relocating. */
static char **hs_environ;
#define environ hs_environ

/* Every function as small as it can be (clang's -Oz, which zig cc does not pass on). */
#ifdef __clang__
#pragma clang attribute push(__attribute__((minsize)), apply_to = function)
#endif

#undef errno
#define errno hs_errno

/* System call n with six arguments: the C library's syscall(). */
static __attribute__((noinline)) long hs_sys6(long n, long a, long b, long c, long d, long e, long f)
{
	long r;

${SYSCALLS[arch.name]}
	if ((unsigned long)r > -4096UL) {
		hs_errno = (int)-r;
		return -1;
	}
	return r;
}

/* With five or fewer (all but mmap): a sixth argument passed on the stack at every call costs more than this. */
static __attribute__((noinline)) long hs_sys(long n, long a, long b, long c, long d, long e)
{
	return hs_sys6(n, a, b, c, d, e, 0);
}

#define HS_SYS5(n, a, b, c, d, e, ...) hs_sys(n, (long)(a), (long)(b), (long)(c), (long)(d), (long)(e))
#define syscall(...) HS_SYS5(__VA_ARGS__, 0, 0, 0, 0, 0)
#define HS_OPENAT(fd, path, flags, mode, ...) hs_openat(fd, path, flags, mode)
#define openat(...) HS_OPENAT(__VA_ARGS__, 0)
#define close(fd) hs_close(fd)
#define read(fd, buf, n) hs_pread(fd, buf, n, -1)
#define pread(fd, buf, n, off) hs_pread(fd, buf, n, off)
#define write(fd, buf, n) syscall(SYS_write, fd, buf, n)
#define fstatat(fd, path, st, flags) hs_fstatat(fd, path, st, flags)
#define stat(path, st) hs_stat(path, st)
#define lstat(path, st) hs_fstatat(AT_FDCWD, path, st, AT_SYMLINK_NOFOLLOW)
#define fstat(fd, st) hs_fstat(fd, st)
#define faccessat(fd, path, mode, flags) hs_faccessat(fd, path, mode, flags)
#define access(path, mode) ((int)syscall(SYS_faccessat, AT_FDCWD, path, mode))
#define readlinkat(fd, path, buf, n) syscall(SYS_readlinkat, fd, path, buf, n)
#define readlink(path, buf, n) syscall(SYS_readlinkat, AT_FDCWD, path, buf, n)
#define mkdir(path, mode) ((int)syscall(SYS_mkdirat, AT_FDCWD, path, mode))
#ifdef SYS_renameat
#define rename(from, to) ((int)syscall(SYS_renameat, AT_FDCWD, from, AT_FDCWD, to))
#else
#define rename(from, to) ((int)syscall(SYS_renameat2, AT_FDCWD, from, AT_FDCWD, to, 0))
#endif
#define unlink(path) syscall(SYS_unlinkat, AT_FDCWD, path, 0)
#define getdents(fd, buf, n) syscall(SYS_getdents64, fd, buf, n)
#define getrlimit(which, rl) ((int)syscall(SYS_prlimit64, 0, which, 0, rl))
#define mmap(addr, len, prot, flags, fd, off) hs_mmap(addr, len, prot, flags, fd, off)
#define munmap(addr, len) ((int)syscall(SYS_munmap, addr, len))
#define execve(path, argv, envp) syscall(SYS_execve, path, argv, envp)
#define _exit(status) hs_exit(status)
#define getauxval(type) hs_getauxval(type)
#define getenv(name) hs_getenv(name)

static int hs_openat(int fd, const char *path, int flags, int mode)
{
	return (int)syscall(SYS_openat, fd, path, flags, mode);
}

static int hs_close(int fd)
{
	return (int)syscall(SYS_close, fd);
}

/* read(2) when off is -1. */
static long hs_pread(int fd, void *buf, size_t n, long off)
{
	if (off < 0)
		return syscall(SYS_read, fd, buf, n);
	return syscall(SYS_pread64, fd, buf, n, ${PREAD_OFFSET[arch.name]});
}

#ifdef SYS_newfstatat
/* A 64-bit machine: the C library's struct stat is the kernel's. */
static int hs_fstatat(int fd, const char *path, struct stat *st, int flags)
{
	return (int)syscall(SYS_newfstatat, fd, path, st, flags);
}
#else
/* statx(2)'s result (Linux 4.11): the same layout on every machine. */
struct hs_statx {
	unsigned int mask, blksize;
	unsigned long long attributes;
	unsigned int nlink, uid, gid;
	unsigned short mode, pad0;
	unsigned long long ino, size, blocks, attributes_mask;
	struct {
		long long sec;
		unsigned int nsec;
		int pad;
	} atime, btime, ctime, mtime;
	unsigned int rdev_major, rdev_minor, dev_major, dev_minor;
	unsigned long long spare[14];
};

/* makedev(3), as the C library encodes a device number. */
static unsigned long long hs_dev(unsigned long long major, unsigned long long minor)
{
	return (major & 0xfffff000ULL) << 32 | (major & 0xfffULL) << 8 | (minor & 0xffffff00ULL) << 12 | (minor & 0xffULL);
}

/* A 32-bit machine: the kernel's stat64 is not the C library's struct stat (64-bit times); statx fills it. */
static int hs_fstatat(int fd, const char *path, struct stat *st, int flags)
{
	struct hs_statx x;

	if (syscall(SYS_statx, fd, path, flags, 0x7ff, &x) < 0)
		return -1;
	memset(st, 0, sizeof(*st));
	st->st_dev = hs_dev(x.dev_major, x.dev_minor);
	st->st_ino = x.ino;
	st->st_mode = x.mode;
	st->st_nlink = x.nlink;
	st->st_uid = x.uid;
	st->st_gid = x.gid;
	st->st_rdev = hs_dev(x.rdev_major, x.rdev_minor);
	st->st_size = (off_t)x.size;
	st->st_blksize = (blksize_t)x.blksize;
	st->st_blocks = (blkcnt_t)x.blocks;
	st->st_atim.tv_sec = x.atime.sec;
	st->st_atim.tv_nsec = x.atime.nsec;
	st->st_mtim.tv_sec = x.mtime.sec;
	st->st_mtim.tv_nsec = x.mtime.nsec;
	st->st_ctim.tv_sec = x.ctime.sec;
	st->st_ctim.tv_nsec = x.ctime.nsec;
	return 0;
}
#endif

static int hs_stat(const char *path, struct stat *st)
{
	return hs_fstatat(AT_FDCWD, path, st, 0);
}

static int hs_fstat(int fd, struct stat *st)
{
	return hs_fstatat(fd, "", st, AT_EMPTY_PATH);
}

static void *hs_mmap(void *addr, size_t len, int prot, int flags, int fd, long off)
{
${mmapCall(arch)}
}

/* faccessat2(2) is Linux 5.8: before it, flags are refused (EINVAL), as the C library refuses them. */
static int hs_faccessat(int fd, const char *path, int mode, int flags)
{
	long r = syscall(SYS_faccessat2, fd, path, mode, flags);

	if (r < 0 && errno == ENOSYS)
		errno = EINVAL;
	return (int)r;
}

static _Noreturn void hs_exit(int status)
{
	for (;;)
		syscall(SYS_exit_group, status);
}

static unsigned long hs_getauxval(unsigned long type)
{
	unsigned long *a;

	for (a = hs_auxv; *a; a += 2)
		if (*a == type)
			return a[1];
	return 0;
}

static char *hs_getenv(const char *name)
{
	size_t n = strlen(name);
	char **e;

	/* memcmp() stops at the first difference: at the latest the NUL of a shorter variable. */
	for (e = environ; *e; e++)
		if (!memcmp(*e, name, n) && (*e)[n] == '=')
			return *e + n + 1;
	return 0;
}

/*
 * What the compiler may call by its standard name, and the body calls.
 * Byte at a time: the shim's strings are short. The empty asm in a loop
 * keeps the compiler from turning the loop into a call of the function
 * being defined.
 */
void *memcpy(void *restrict dst, const void *restrict src, size_t n)
{
	unsigned char *d = dst;
	const unsigned char *s = src;

	for (; n; n--) {
		*d++ = *s++;
		__asm__("" : "+r"(d));
	}
	return dst;
}

void *memmove(void *dst, const void *src, size_t n)
{
	unsigned char *d = dst;
	const unsigned char *s = src;

	if (d <= s)
		return memcpy(dst, src, n);
	while (n) {
		n--;
		d[n] = s[n];
		__asm__("" : "+r"(d));
	}
	return dst;
}

void *memset(void *dst, int ch, size_t n)
{
	unsigned char *d = dst;

	for (; n; n--) {
		*d++ = (unsigned char)ch;
		__asm__("" : "+r"(d));
	}
	return dst;
}

/* Stops at the first difference, which the shim counts on: see hs_getenv(). */
int memcmp(const void *a, const void *b, size_t n)
{
	const unsigned char *p = a, *q = b;

	for (; n; n--, p++, q++)
		if (*p != *q)
			return *p - *q;
	return 0;
}

int bcmp(const void *a, const void *b, size_t n)
{
	return memcmp(a, b, n);
}

void *memchr(const void *s, int ch, size_t n)
{
	const unsigned char *p = s;

	for (; n; n--, p++)
		if (*p == (unsigned char)ch)
			return (void *)p;
	return 0;
}

size_t strlen(const char *s)
{
	const char *p = s;

	while (*p) {
		p++;
		__asm__("" : "+r"(p));
	}
	return (size_t)(p - s);
}

int strcmp(const char *a, const char *b)
{
	for (; *a && *a == *b; a++, b++)
		;
	return *(const unsigned char *)a - *(const unsigned char *)b;
}

int strncmp(const char *a, const char *b, size_t n)
{
	for (; n && *a && *a == *b; n--, a++, b++)
		;
	return n ? *(const unsigned char *)a - *(const unsigned char *)b : 0;
}

char *strchrnul(const char *s, int ch)
{
	for (; *s && *s != (char)ch; s++)
		;
	return (char *)s;
}

char *strchr(const char *s, int ch)
{
	s = strchrnul(s, ch);
	return *s == (char)ch ? (char *)s : 0;
}

char *strrchr(const char *s, int ch)
{
	const char *r = 0;

	do
		if (*s == (char)ch)
			r = s;
	while (*s++);
	return (char *)r;
}

int main(int argc, char **argv);

/* From _start, sp at argc. */
static __attribute__((used, noreturn)) void hs_start(unsigned long *sp)
{
	char **e;

	environ = (char **)sp + sp[0] + 2;
	for (e = environ; *e; e++)
		;
	hs_auxv = (unsigned long *)(e + 1);
	hs_exit(main((int)sp[0], (char **)sp + 1));
}

__asm__(".text\n.global _start\n.type _start, %function\n_start:\n${STARTS[arch.name]}\n");
#endif`
}
