// Chainload mode (issue #7): the shim maps the host loader into its own
// process and jumps to the loader's entry, instead of exec'ing it.
//
// Under an exec'd loader, /proc/self/exe is the loader, so a program that
// re-executes itself through /proc/self/exe runs the loader with arguments it
// does not understand; `ps` shows the loader's command line. Chained, there
// is no second execve: /proc/self/exe stays the shim (which, run again, does
// the same thing again), /proc/PID/cmdline is the caller's argv (the kernel
// reads it from the original stack, which the shim leaves alone), and
// /proc/PID/comm is the shim's name.
//
// What the shim does is what binfmt_elf would have done had it exec'd the
// loader: map its PT_LOAD segments, build an initial stack (argc, argv, envp,
// auxv) and enter it with the registers the process-entry ABI prescribes.
// glibc's loader then sees AT_ENTRY == its own entry and runs "as a program"
// (rtld.c: `*user_entry == ENTRY_POINT`), with exactly the argv exec mode
// would have given it.
//
// The C here is self-contained: it comes before the template's body and uses
// nothing of it, so shim/template.ts needs only two small hooks (this block,
// and `#if CHAINLOAD` around the final execve).

import type { Arch, ArchName } from '../launcher/arch.js'
import type { ShimConfig, ShimMode } from '../launcher/config.js'
import { c, type CCode } from './emit.js'

/*
 * The jump: sp at argc, 16-byte aligned; the register that carries a
 * function for atexit(3) at process entry set to 0 (none). Inputs bound to
 * that register keep the compiler from putting sp or entry there.
 */
const JUMPS: Partial<Record<ArchName, CCode>> = {
  // %rdx: the atexit function (x86-64 psABI, "Process Initialization").
  x86_64: c`	__asm__ volatile("mov %0, %%rsp\n\tjmp *%1" : : "r"(sp), "r"(entry), "d"(0UL) : "memory");`,
  // x0: the atexit function (glibc's aarch64 start.S passes it on as rtld_fini).
  // The entry in x16: a br through x16 lands on a "bti c" (glibc's _start)
  // even from a guarded page, where one through another register would not.
  aarch64: c`	register unsigned long x0 __asm__("x0") = 0, x16 __asm__("x16") = entry;

	__asm__ volatile("mov sp, %0\n\tbr %1" : : "r"(sp), "r"(x16), "r"(x0) : "memory");`,
  // %edx: the atexit function (i386 psABI).
  i686: c`	__asm__ volatile("mov %0, %%esp\n\tjmp *%1" : : "r"(sp), "r"(entry), "d"(0UL) : "memory");`,
  // a0: the atexit function (glibc's riscv start.S).
  riscv64: c`	register unsigned long a0 __asm__("a0") = 0;

	__asm__ volatile("mv sp, %0\n\tjr %1" : : "r"(sp), "r"(entry), "r"(a0) : "memory");`,
  // r0: the atexit function. Every other register is 0 too, as the kernel's
  // start_thread() leaves them: glibc's armhf _start (2.36, since
  // _dl_skip_args went) still runs "ldr r4, [sl, r4]" with r4 as it was at
  // entry, so whatever the shim left in r4 was an offset from the GOT: an
  // out-of-line enter() left an address there, and the loader died of
  // SIGSEGV.
  // The entry goes in r12, the one register left nonzero (nothing at process
  // entry reads it); bx follows its Thumb bit.
  armhf: c`	register unsigned long r12 __asm__("r12") = entry;

	__asm__ volatile("mov sp, %0\n\t"
			 "mov r0, #0\n\tmov r1, #0\n\tmov r2, #0\n\tmov r3, #0\n\tmov r4, #0\n\tmov r5, #0\n\t"
			 "mov r6, #0\n\tmov r7, #0\n\tmov r8, #0\n\tmov r9, #0\n\tmov r10, #0\n\tmov r11, #0\n\t"
			 "mov lr, #0\n\tbx r12"
			 : : "r"(sp), "r"(r12) : "memory");`,
  // ELFv2: r12 holds the entry, from which the loader's global entry point
  // computes its TOC; r7: the atexit function.
  ppc64le: c`	register unsigned long r12 __asm__("r12") = entry, r7 __asm__("r7") = 0;

	__asm__ volatile("mr 1, %0\n\tmtctr %1\n\tbctr" : : "r"(sp), "r"(r12), "r"(r7) : "memory");`,
  // %r15 is the stack pointer; %r14: the atexit function.
  s390x: c`	register unsigned long r14 __asm__("r14") = 0;

	__asm__ volatile("lgr %%r15, %0\n\tbr %1" : : "r"(sp), "a"(entry), "r"(r14) : "memory");`,
}

/** Architectures whose shims can chainload; others fall back to exec mode. */
export const CHAINLOAD_ARCHES: readonly ArchName[] = Object.keys(JUMPS) as ArchName[]

export function chainloadSupported(arch: Arch): boolean {
  return Object.hasOwn(JUMPS, arch.name)
}

/** The mode a shim for `arch` really gets: chainload only where it is implemented. */
export function effectiveMode(config: ShimConfig, arch: Arch): ShimMode {
  return config.mode === 'chainload' && chainloadSupported(arch) ? 'chainload' : 'exec'
}

/**
 * The config a shim for `arch` is rendered from: chainload dropped where the
 * architecture lacks it, so the shim's mark and config hash say what it does.
 */
export function configForArch(config: ShimConfig, arch: Arch): ShimConfig {
  if (config.mode !== 'chainload' || chainloadSupported(arch)) return config
  const { mode: _dropped, ...exec } = config
  return exec
}

/** Why a chainload config builds an exec-mode shim for `arch`, or null when it does not. */
export function chainloadFallbackNote(config: ShimConfig, arch: Arch): string | null {
  if (config.mode !== 'chainload' || chainloadSupported(arch)) return null
  return `chainload is not implemented for ${arch.name} (only ${CHAINLOAD_ARCHES.join(', ')}); the ${arch.name} shim execs the loader instead`
}

/**
 * The C for the template, placed after the config block and before the body.
 * Exec mode: only `#define CHAINLOAD 0`. Chainload mode: `#define CHAINLOAD 1`
 * and `static int chainload(fd, size, args, env, auxv, spare, spare_len, work)`,
 * which returns -1
 * with errno set when it fails before the point of no return (the caller
 * then fails as a failed execve would), and otherwise never returns.
 */
export function chainloadBlock(config: ShimConfig, arch: Arch): CCode {
  if (effectiveMode(config, arch) !== 'chainload') return c`#define CHAINLOAD 0`
  const jump = JUMPS[arch.name] as CCode
  // PROT_BTI: only aarch64 has it. The map_loader fuzz harness defines it for x86_64 first.
  const bti = arch.name === 'aarch64' ? c`0x10` : c`0`
  return c`#define CHAINLOAD 1
#ifndef LD_PROT_BTI
#define LD_PROT_BTI ${bti}
#endif
${CHAINLOAD_C}
/*
 * Enter the loader as the kernel enters a program: sp at argc, and the
 * registers that a loader reads at entry as the kernel leaves them.
 */
static _Noreturn void enter(unsigned long *sp, unsigned long entry)
{
${jump}
	__builtin_unreachable();
}
${CHAINLOAD_MAIN_C}`
}

const CHAINLOAD_C = c`
/*
 * Chainload: the host loader is mapped into this process and entered as if
 * the kernel had exec'd it, so /proc/self/exe stays this shim.
 */
#if WIDE
typedef Elf64_Ehdr LdEhdr;
typedef Elf64_Phdr LdPhdr;
#else
typedef Elf32_Ehdr LdEhdr;
typedef Elf32_Phdr LdPhdr;
#endif

enum {
	LD_PHDRS = 64,	/* glibc's loaders have about ten */
	LD_HEAD = 1024,	/* read at once: the ELF header and, in every loader seen, the program headers */
	/* What read_loader_head() needs of its caller's buffer. */
	LD_HEAD_ROOM = LD_HEAD + LD_PHDRS * sizeof(LdPhdr),
};

/*
 * The loader's ELF header and program headers, with one pread() where the
 * program headers are in the file's first LD_HEAD bytes (glibc's are right
 * after the ELF header), two otherwise. buf: LD_HEAD_ROOM bytes, aligned
 * for LdPhdr; the program headers are copied to its end, so a file whose
 * e_phoff is not aligned is read as the kernel reads it. ENOEXEC for a
 * loader whose headers are not there whole, or not of this class.
 */
static int read_loader_head(int fd, unsigned char *buf, const LdEhdr **eh, const LdPhdr **ph)
{
	LdEhdr *e = (LdEhdr *)buf;
	LdPhdr *p = (LdPhdr *)(buf + LD_HEAD);
	ssize_t n = pread(fd, buf, LD_HEAD, 0);
	size_t len;

	if (n < (ssize_t)sizeof(*e) || e->e_phentsize != sizeof(LdPhdr) || e->e_phnum > LD_PHDRS)
		goto bad;
	len = e->e_phnum * sizeof(LdPhdr);
	if (e->e_phoff <= (unsigned long)n && len <= (unsigned long)n - e->e_phoff)
		memcpy(p, buf + e->e_phoff, len);
	else if (pread(fd, p, len, (off_t)e->e_phoff) != (ssize_t)len)
		goto bad;
	*eh = e;
	*ph = p;
	return 0;
bad:
	errno = ENOEXEC;
	return -1;
}

#if LD_PROT_BTI
enum {
	LD_PT_GNU_PROPERTY = 0x6474e553,
	LD_NT_GNU_PROPERTY_TYPE_0 = 5,
	LD_NOTE_MAX = 1024,	/* binfmt_elf's limit: a bigger one is refused */
};
#define LD_FEATURE_1_AND 0xc0000000U	/* GNU_PROPERTY_AARCH64_FEATURE_1_AND */
#define LD_FEATURE_1_BTI 1U
#define LD_HWCAP2_BTI (1UL << 17)

/*
 * Does the loader ask for branch target identification? binfmt_elf's
 * parse_elf_properties() on the last PT_GNU_PROPERTY: one
 * NT_GNU_PROPERTY_TYPE_0 note named "GNU", its properties sorted by type,
 * each padded to the word size, the AArch64 feature word exactly 4 bytes.
 * 1 or 0; -1 for a note the kernel would refuse to exec (ENOEXEC).
 */
static int loader_bti(int fd, const LdEhdr *eh, const LdPhdr *ph)
{
	/* Static: a caller's arguments may have left the shim little stack. */
	static union {
		uint32_t w[LD_NOTE_MAX / 4];
		unsigned char b[LD_NOTE_MAX];
	} note;
	const LdPhdr *prop = 0;
	unsigned long align = sizeof(unsigned long), off = 16, end, o, step;
	uint32_t type, size, prev = 0;
	ssize_t n;
	int i, bti = 0;

	for (i = 0; i < eh->e_phnum; i++)
		if (ph[i].p_type == LD_PT_GNU_PROPERTY)
			prop = &ph[i];
	if (!prop)
		return 0;
	if (prop->p_filesz > LD_NOTE_MAX || prop->p_offset > (unsigned long)-1 / 2)
		return -1;
	/* Header (namesz, descsz, type) and "GNU\0"; the properties start at 16. */
	n = pread(fd, note.b, prop->p_filesz, (off_t)prop->p_offset);
	/* A note cut short by the end of the file is refused, as the kernel refuses it. */
	if (n < 16 || (unsigned long)n != prop->p_filesz || note.w[0] != 4 || note.w[2] != LD_NT_GNU_PROPERTY_TYPE_0 || memcmp(note.b + 12, "GNU", 4) ||
	    note.w[1] > (unsigned long)n - off)
		return -1;
	for (end = off + note.w[1]; off != end; off = o + step, prev = type) {
		if (end - off < 8)
			return -1;
		type = note.w[off / 4];
		size = note.w[off / 4 + 1];
		o = off + 8;
		step = (size + align - 1) & -align;
		if (size > end - o || step > end - o || (off > 16 && type <= prev))
			return -1;
		if (type == LD_FEATURE_1_AND) {
			if (size != 4)
				return -1;
			bti = !!(note.w[o / 4] & LD_FEATURE_1_BTI);
		}
	}
	return bti;
}
#endif

/*
 * Map the loader's PT_LOAD segments the way binfmt_elf maps an ET_DYN
 * interpreter: one PROT_NONE reservation of the whole span, so that the
 * segments keep their distances and nothing else lands between them; then
 * each segment from the file over its part of it, with its own protection;
 * then its bss: the rest of the last file page zeroed (the file's next bytes
 * are mapped there), anonymous pages beyond. Sets the load bias and the
 * address of the mapped program headers (the kernel's AT_PHDR).
 */
static int map_loader(int fd, unsigned long size, const LdEhdr *eh, const LdPhdr *ph, unsigned long *bias,
		      unsigned long *phdr)
{
	unsigned long pg = getauxval(AT_PAGESZ), lo = -1UL, hi = 0;
	char *map;
	int i, bti = 0;

	for (i = 0; i < eh->e_phnum; i++) {
		const LdPhdr *p = &ph[i];

		/* A loader with a loader of its own: binfmt_elf would run that one. */
		if (p->p_type == PT_INTERP)
			goto bad;
		if (p->p_type != PT_LOAD)
			continue;
		/*
		 * A file page must land on a memory page at the same offset in it,
		 * a bss is only zeroed in a writable segment (glibc's is), the file
		 * must hold what is mapped from it (past its end: SIGBUS), and the
		 * segment must not wrap around the address space (its end would
		 * fall short of the reservation, and MAP_FIXED land outside it).
		 */
		if ((p->p_vaddr - p->p_offset) & (pg - 1) || p->p_filesz > p->p_memsz || p->p_memsz > -1UL - p->p_vaddr ||
		    (p->p_filesz < p->p_memsz && !(p->p_flags & PF_W)) || p->p_filesz > size ||
		    p->p_offset > size - p->p_filesz)
			goto bad;
		if ((p->p_vaddr & -pg) < lo)
			lo = p->p_vaddr & -pg;
		if (p->p_vaddr + p->p_memsz > hi)
			hi = p->p_vaddr + p->p_memsz;
		if (p->p_offset <= eh->e_phoff && eh->e_phoff < p->p_offset + p->p_filesz)
			*phdr = p->p_vaddr + (eh->e_phoff - p->p_offset);
	}
	/* Position-independent only: a loader at fixed addresses could land on the program. */
	if (eh->e_type != ET_DYN || !*phdr || hi <= lo)
		goto bad;
#if LD_PROT_BTI
	/* Its executable segments guarded, where the CPU can: as the kernel maps a program or an interpreter. */
	i = loader_bti(fd, eh, ph);
	if (i < 0)
		goto bad;
	if (i && getauxval(AT_HWCAP2) & LD_HWCAP2_BTI)
		bti = LD_PROT_BTI;
#endif
	map = mmap(0, hi - lo, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (map == MAP_FAILED)
		return -1;
	*bias = (unsigned long)map - lo;
	*phdr += *bias;

	for (i = 0; i < eh->e_phnum; i++) {
		const LdPhdr *p = &ph[i];
		/* p_flags has R, W, X as 4, 2, 1; PROT_* has them as 1, 2, 4. */
		int prot = "\0\4\2\6\1\5\3\7"[p->p_flags & 7] | (p->p_flags & PF_X ? bti : 0);
		unsigned long start = *bias + (p->p_vaddr & -pg), end, zero, stop;

		if (p->p_type != PT_LOAD)
			continue;
		end = p->p_filesz ? *bias + p->p_vaddr + p->p_filesz : start;
		zero = (end + pg - 1) & -pg;
		stop = *bias + p->p_vaddr + p->p_memsz;
		/*
		 * MAP_POPULATE: the kernel maps what the page cache holds of the segment now, in this one
		 * call, where the loader would otherwise enter a fault for each 64 KiB it touches; on a VM
		 * a fault costs ~20 us, and this is what takes a hit to within 5% of an exec'd loader.
		 */
		if (end > start && mmap((void *)start, end - start, prot, MAP_PRIVATE | MAP_FIXED | MAP_POPULATE, fd,
					(off_t)(p->p_offset & -pg)) == MAP_FAILED)
			return -1;
		if (stop > end) {
			memset((void *)end, 0, zero - end);
			if (stop > zero && mmap((void *)zero, stop - zero, prot, MAP_PRIVATE | MAP_FIXED | MAP_ANONYMOUS, -1, 0) == MAP_FAILED)
				return -1;
		}
	}
	return 0;
bad:
	errno = ENOEXEC;
	return -1;
}
`

const CHAINLOAD_MAIN_C = c`
/*
 * Run the loader open at fd (the caller's, from its checks; closed here; size
 * bytes long: its fstat) with args and env, in this process. args is the
 * program's vector as the loader takes it: args[-1] is argc's place, 16-byte
 * aligned, env starts right after args' NULL, and after env's NULL there is
 * room for the auxiliary vector auxv (the kernel's, which the shim started
 * with), copied there with the entries that describe the program now
 * describing the loader; the loader starts with its stack pointer at argc.
 * spare (spare_len bytes, 0 for none) is where the caller built args when
 * the stack had no room: then the vector is copied onto the stack, and spare
 * unmapped. work: LD_HEAD_ROOM bytes for the loader's headers, aligned (the
 * caller's arena, whose pages it has touched already: a static array here
 * cost a page fault). Returns -1 (errno set) when it fails before the jump;
 * the caller then fails as a failed execve would, and the shim exits, so a
 * half-made mapping or an open fd do not matter.
 */
static int chainload(int fd, unsigned long size, char **args, char **env, const unsigned long *auxv, void *spare,
		     size_t spare_len, unsigned char *work)
{
	const LdEhdr *eh;
	const LdPhdr *ph;
	unsigned long bias = 0, phdr = 0, *sp = (unsigned long *)args - 1, *a;
	size_t argc = 0, envc = 0, auxc = 0, n, i;

	if (read_loader_head(fd, work, &eh, &ph) < 0)
		return -1;
	while (auxv[auxc])
		auxc += 2;
	while (args[argc])
		argc++;
	while (env[envc])
		envc++;
	/* argc, argv + NULL, envp + NULL, auxv + AT_NULL. */
	n = argc + envc + auxc + 5;
	/* The kernel started the shim with less room than a copy needs: as an exec'd loader would fail. */
	if (spare_len && !stack_fits((n + 2) * sizeof(unsigned long))) {
		errno = E2BIG;
		return -1;
	}
	if (map_loader(fd, size, eh, ph, &bias, &phdr) < 0)
		return -1;
	/* No exec will close it: the program must not inherit it. */
	close(fd);
	{
		/*
		 * In place, or (spare) copied below this frame: on the real
		 * stack either way, for glibc finds the main thread's stack from
		 * __libc_stack_end. Everything it points to (the caller's
		 * strings, the shim's buffers) stays.
		 */
		unsigned long frame[spare_len ? n + 2 : 1], entry = bias + eh->e_entry;

		if (spare_len) {
			sp = (unsigned long *)(((unsigned long)frame + 15) & -16UL);
			memcpy(sp + 1, args, (argc + 1) * sizeof(*sp));
			memcpy(sp + argc + 2, env, (envc + 1) * sizeof(*sp));
			munmap(spare, spare_len);
		}
		*sp = argc;
		a = sp + argc + envc + 3;
		memcpy(a, auxv, (auxc + 2) * sizeof(*a));
		for (i = 0; i < auxc; i += 2) {
			unsigned long *v = &a[i + 1];

			/* The loader is the program now; AT_BASE 0, as for an exec'd loader. */
			switch (a[i]) {
			case AT_PHDR: *v = phdr; break;
			case AT_PHENT: *v = sizeof(LdPhdr); break;
			case AT_PHNUM: *v = eh->e_phnum; break;
			case AT_ENTRY: *v = entry; break;
			case AT_BASE: *v = 0; break;
			}
		}
		enter(sp, entry);
	}
}
`
