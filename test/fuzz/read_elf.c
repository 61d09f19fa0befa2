/*
 * libFuzzer harness for the shim's ELF checks: read_elf() over any bytes,
 * and knows_argv0() over the same file, as the shim calls them on a target
 * or a loader it has opened.
 *
 * Findings: a sanitizer report (out-of-bounds read of the header table or
 * the interpreter buffer, undefined shifts or overflows), a verdict outside
 * the contract (-1 with ENOEXEC, 0, or 1 with a NUL-terminated interpreter
 * that is the first PT_INTERP's bytes), or a slow input.
 *
 * With HOSTSHIM_FUZZ_LOG=FILE set, each input also appends one line to FILE:
 * its size and FNV-1a hash, then "bad", "wrong-arch", "static" or
 * "interp HEX", then " argv0" when the "--argv0" scan finds the string. test/fuzz.test.ts replays the corpus
 * through this and through the TypeScript model (launcher/plan.ts) and
 * compares the lines.
 */
#include "shim-under-test.h"

#include <sys/syscall.h>

static int fd = -1;
static FILE *log_file;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *log = getenv("HOSTSHIM_FUZZ_LOG");

	(void)argc;
	(void)argv;
	fd = (int)syscall(SYS_memfd_create, "elf", 0);
	if (fd < 0) {
		perror("memfd_create");
		abort();
	}
	if (log) {
		log_file = fopen(log, "a");
		if (!log_file) {
			perror(log);
			abort();
		}
	}
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* read_elf() leaves the interpreter at the arena's top; knows_argv0() works there too. */
	char *interp = top(), found[MAX_INTERP];
	struct stat st;
	int r, err, argv0;

	if (ftruncate(fd, 0) < 0 || pwrite(fd, data, size, 0) != (ssize_t)size || fstat(fd, &st) < 0)
		abort();
	memset(interp, 0xa5, MAX_PHDRS + MAX_INTERP);
	m.wrong_arch = 0;
	errno = 0;
	r = read_elf(fd);
	err = errno;
	CHECK(r >= -1 && r <= 1, "read_elf returned %d", r);
	CHECK(r != -1 || err == ENOEXEC, "failed with errno %d, not ENOEXEC", err);
	CHECK(r == -1 || !m.wrong_arch, "wrong_arch set on success");
	if (r == 1) {
		/* The interpreter is a C string inside the buffer, and the first PT_INTERP's bytes. */
		size_t n = strnlen(interp, MAX_INTERP);

		CHECK(n < MAX_INTERP, "interpreter not NUL-terminated");
		CHECK(size >= sizeof(Ehdr), "interpreter from a %zu-byte file", size);
		memcpy(found, interp, n + 1);
	}
	argv0 = knows_argv0(fd, &st);
	CHECK(argv0 == 0 || argv0 == 1, "knows_argv0 returned %d", argv0);
	/* libFuzzer runs inputs of its own when it starts: each line says which input it is about. */
	if (log_file) {
		uint64_t hash = 0xcbf29ce484222325u;	/* FNV-1a */
		size_t i;

		for (i = 0; i < size; i++)
			hash = (hash ^ data[i]) * 0x100000001b3u;
		fprintf(log_file, "%zu %016llx ", size, (unsigned long long)hash);
		if (r < 0)
			fputs(m.wrong_arch ? "wrong-arch" : "bad", log_file);
		else if (r == 0)
			fputs("static", log_file);
		else {
			const unsigned char *p = (const unsigned char *)found;

			fputs("interp ", log_file);
			for (; *p; p++)
				fprintf(log_file, "%02x", *p);
		}
		fputs(argv0 ? " argv0\n" : "\n", log_file);
		fflush(log_file);
	}
	return 0;
}
