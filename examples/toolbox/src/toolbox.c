/*
 * Stands in for Toolbx: a program linked dynamically against the C library
 * of the machine that built it, so it needs that machine's loader and libc.
 * It says which C library runs it and what it was given.
 */
#include <stdio.h>
#ifdef __GLIBC__
#include <gnu/libc-version.h>
#endif

int main(int argc, char **argv)
{
	int i;

#ifdef __GLIBC__
	printf("toolbox (stand-in) 1.0, glibc %s\n", gnu_get_libc_version());
#else
	printf("toolbox (stand-in) 1.0\n");
#endif
	for (i = 1; i < argc; i++)
		printf("arg: %s\n", argv[i]);
	return 0;
}
