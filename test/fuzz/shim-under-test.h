/*
 * The shim under test: the C that renderShim() produced, included whole so
 * that its static functions are visible to the harness. test/lib/fuzz.ts
 * writes it as "shim.c" next to the harness's build and adds -I for it.
 *
 * Three things differ from a real build, all outside the shim's own text:
 * it is built against glibc, which the sanitizers need, in place of the
 * runtime of zig's build (no HOSTSHIM_RUNTIME), its main() is renamed
 * (libFuzzer brings one), and glibc calls musl's getdents() getdents64()
 * (same struct, same system call on 64-bit machines).
 */
#ifndef HOSTSHIM_SHIM_UNDER_TEST_H
#define HOSTSHIM_SHIM_UNDER_TEST_H

#define getdents getdents64
#define main hostshim_main
#include "shim.c"
#undef main
#undef getdents

#include <stdint.h>
#include <stdio.h>

/* A finding: print what and abort, so libFuzzer saves the input. */
#define CHECK(cond, ...)                                              \
	do {                                                          \
		if (!(cond)) {                                        \
			fprintf(stderr, "hostshim fuzz: check failed: %s: ", #cond); \
			fprintf(stderr, __VA_ARGS__);                 \
			fputc('\n', stderr);                          \
			abort();                                      \
		}                                                     \
	} while (0)

#endif
