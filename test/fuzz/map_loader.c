/*
 * libFuzzer harness for chainload mode's loader mapping: map_loader() over
 * any bytes as the loader file, after the headers are read as chainload()
 * reads them (read_loader_head(): e_phentsize, e_phnum <= LD_PHDRS, the
 * program headers read whole, and they must be the file's bytes).
 * chainload() itself and enter() are never called: they jump away. The shim is rendered in chainload mode for x86_64
 * (test/lib/fuzz.ts), so LdEhdr/LdPhdr are the Elf64 types.
 *
 * Findings: a sanitizer report, a signal (SIGBUS reading or zeroing past the
 * file's end, SIGSEGV), a slow input, or a result outside the contract
 * (shim/README.md 7a):
 *
 *   - map_loader() returns 0 or -1;
 *   - -1 sets errno: ENOEXEC for a refused loader (then nothing was mapped
 *     and the bias is untouched), or mmap's ENOMEM / EINVAL;
 *   - 0: the loader is ET_DYN, every PT_LOAD is within the file and within
 *     the one reservation [bias + lo, bias + hi) (lo, hi: the PT_LOADs'
 *     page-aligned span, computed here without wrapping), which is mapped;
 *     the program headers' address is inside it; every readable PT_LOAD
 *     that shares no page with another shows the file's bytes at
 *     bias + p_vaddr (its first 4096) and zeros in its bss (its first page).
 *
 *
 * loader_bti() (the aarch64 shim's, compiled in here: LD_PROT_BTI) on the
 * same input: 1, 0 or -1; 0 when there is no PT_GNU_PROPERTY; 1 only when
 * the last one lies in the file, is at most 1 KiB, and holds the feature
 * word (type 0xc0000000, 4 bytes, the BTI bit) at a property's place (a
 * multiple of 8 from 16 on); -1 makes map_loader() refuse with ENOEXEC.
 *
 * After each input the harness unmaps the reservation (also after an mmap
 * failure past it), so the iterations do not leak address space.
 */
/* The aarch64 shim's PT_GNU_PROPERTY parsing (loader_bti()), compiled into this x86_64 one. */
#define LD_PROT_BTI 0x10
#include "shim-under-test.h"

#include <sys/syscall.h>

#if !CHAINLOAD || !WIDE
#error "map_loader.c needs the x86_64 shim rendered in chainload mode"
#endif

/* What map_loader() leaves in *bias when it maps nothing: the real bias is page-aligned. */
#define NO_BIAS 1UL

static int fd = -1;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fd = (int)syscall(SYS_memfd_create, "loader", 0);
	if (fd < 0) {
		perror("memfd_create");
		abort();
	}
	return 0;
}

/* Is the page at a mapped? mincore() fails with ENOMEM on an unmapped one (PROT_NONE counts as mapped). */
static int mapped(unsigned long a, unsigned long pg)
{
	unsigned char vec;

	return mincore((void *)(a & -pg), pg, &vec) == 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	unsigned long pg = getauxval(AT_PAGESZ), lo = -1UL, hi = 0, bias = NO_BIAS, phdr = 0;
	static union {
		LdPhdr align;
		unsigned char b[LD_HEAD_ROOM];
	} head;
	const LdEhdr *ehp;
	const LdPhdr *ph;
	const LdPhdr *prop = 0;
	int r, err, i, j, wraps = 0, bti;

	if (ftruncate(fd, 0) < 0 || pwrite(fd, data, size, 0) != (ssize_t)size)
		abort();
	/* chainload()'s reading of the headers before map_loader(): it refuses the rest with ENOEXEC itself. */
	if (read_loader_head(fd, head.b, &ehp, &ph) < 0) {
		CHECK(errno == ENOEXEC, "read_loader_head failed with errno %d", errno);
		return 0;
	}
	/* The headers read are the file's bytes. */
	CHECK(size >= sizeof(LdEhdr) && !memcmp(ehp, data, sizeof(LdEhdr)), "the ELF header read is not the file's");
	/* (No program headers: any offset reads the 0 bytes of them, as pread() of 0 bytes does.) */
	CHECK(!ehp->e_phnum || (ehp->e_phoff <= size && ehp->e_phnum * sizeof(LdPhdr) <= size - ehp->e_phoff &&
				!memcmp(ph, data + ehp->e_phoff, ehp->e_phnum * sizeof(LdPhdr))),
	      "the program headers read are not the file's");

	/* The reservation's span, as map_loader() computes it (wrapping included, to unmap what it mapped). */
	for (i = 0; i < ehp->e_phnum; i++) {
		if (ph[i].p_type != PT_LOAD)
			continue;
		if ((ph[i].p_vaddr & -pg) < lo)
			lo = ph[i].p_vaddr & -pg;
		if (ph[i].p_vaddr + ph[i].p_memsz > hi)
			hi = ph[i].p_vaddr + ph[i].p_memsz;
		if (ph[i].p_memsz > -1UL - ph[i].p_vaddr)
			wraps = 1;
	}

	bti = loader_bti(fd, ehp, ph);
	CHECK(bti == 0 || bti == 1 || bti == -1, "loader_bti returned %d", bti);
	for (i = 0; i < ehp->e_phnum; i++)
		if (ph[i].p_type == LD_PT_GNU_PROPERTY)
			prop = &ph[i];
	CHECK(prop || bti == 0, "loader_bti returned %d without a PT_GNU_PROPERTY", bti);
	if (bti == 1) {
		unsigned long o;
		int found = 0;

		CHECK(prop->p_filesz <= 1024 && prop->p_offset <= size && prop->p_filesz <= size - prop->p_offset,
		      "BTI from a note [%#lx, +%#lx) not in the file (%zu bytes) or over 1 KiB", prop->p_offset, prop->p_filesz,
		      size);
		for (o = 16; o + 12 <= prop->p_filesz && !found; o += 8) {
			const uint8_t *at = data + prop->p_offset + o;
			uint32_t w[3];

			memcpy(w, at, sizeof(w));
			found = w[0] == 0xc0000000U && w[1] == 4 && (w[2] & 1);
		}
		CHECK(found, "BTI without the feature word in the note");
	}

	errno = 0;
	r = map_loader(fd, size, ehp, ph, &bias, &phdr);
	err = errno;
	CHECK(r == 0 || r == -1, "map_loader returned %d", r);
	CHECK(bti >= 0 || (r == -1 && err == ENOEXEC), "a property note loader_bti refuses, and map_loader returned %d (%s)", r,
	      strerror(err));
	if (r < 0) {
		CHECK(err == ENOEXEC || err == ENOMEM || err == EINVAL, "failed with errno %d (%s)", err, strerror(err));
		CHECK(err != ENOEXEC || bias == NO_BIAS, "refused with ENOEXEC after mapping (bias %#lx)", bias);
		/* An mmap failure past the reservation: the shim exits then; the harness must not leak it. */
		if (bias != NO_BIAS)
			munmap((void *)(bias + lo), hi - lo);
		return 0;
	}

	CHECK(bias != NO_BIAS && (bias & (pg - 1)) == 0, "bias %#lx not set or not page-aligned", bias);
	CHECK(ehp->e_type == ET_DYN, "mapped a loader of type %u", ehp->e_type);
	CHECK(!wraps, "mapped a PT_LOAD whose p_vaddr + p_memsz wraps: it lies outside the reservation "
		      "[%#lx, %#lx), mapped with MAP_FIXED over whatever is there", bias + lo, bias + hi);
	CHECK(lo < hi, "empty span [%#lx, %#lx)", lo, hi);
	CHECK(mapped(bias + lo, pg) && mapped(bias + hi - 1, pg), "the reservation [%#lx, %#lx) is not mapped", bias + lo,
	      bias + hi);
	CHECK(phdr >= bias + lo && phdr < bias + hi, "phdr %#lx outside [%#lx, %#lx)", phdr, bias + lo, bias + hi);

	for (i = 0; i < ehp->e_phnum; i++) {
		const LdPhdr *p = &ph[i];
		unsigned long start = p->p_vaddr & -pg, end = (p->p_vaddr + p->p_memsz + pg - 1) & -pg, n;
		const unsigned char *at = (const unsigned char *)(bias + p->p_vaddr);
		int alone = 1;

		if (p->p_type == PT_INTERP)
			CHECK(0, "mapped a loader with a PT_INTERP (header %d)", i);
		if (p->p_type != PT_LOAD)
			continue;
		CHECK(p->p_filesz <= p->p_memsz, "header %d: p_filesz %#lx > p_memsz %#lx", i, p->p_filesz, p->p_memsz);
		CHECK(p->p_filesz <= size && p->p_offset <= size - p->p_filesz,
		      "header %d: [%#lx, +%#lx) past the file's end (%zu bytes)", i, p->p_offset, p->p_filesz, size);
		CHECK(((p->p_vaddr - p->p_offset) & (pg - 1)) == 0, "header %d: p_vaddr %#lx and p_offset %#lx differ within a page", i,
		      p->p_vaddr, p->p_offset);
		CHECK(start >= lo && p->p_vaddr + p->p_memsz <= hi, "header %d outside the span", i);
		if (!(p->p_flags & PF_R))
			continue;
		/* A segment that shares a page with another: whichever came last is what is there. */
		for (j = 0; j < ehp->e_phnum && alone; j++) {
			const LdPhdr *q = &ph[j];

			if (j != i && q->p_type == PT_LOAD && (q->p_vaddr & -pg) < end &&
			    start < ((q->p_vaddr + q->p_memsz + pg - 1) & -pg))
				alone = 0;
		}
		if (!alone)
			continue;
		n = p->p_filesz < 4096 ? p->p_filesz : 4096;
		CHECK(memcmp(at, data + p->p_offset, n) == 0, "header %d: the bytes at bias + %#lx are not the file's at %#lx", i,
		      p->p_vaddr, p->p_offset);
		n = p->p_memsz - p->p_filesz < pg ? p->p_memsz - p->p_filesz : pg;
		for (at += p->p_filesz; n; n--, at++)
			CHECK(!*at, "header %d: bss byte at bias + %#lx is %#x, not 0", i, (unsigned long)at - bias, *at);
	}
	CHECK(munmap((void *)(bias + lo), hi - lo) == 0, "munmap: %s", strerror(errno));
	return 0;
}
