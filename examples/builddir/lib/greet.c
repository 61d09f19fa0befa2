#include <gnu/libc-version.h>
#include <stdio.h>

#include "greet.h"

void greet(const char *who)
{
	printf("hello %s from libgreet, on glibc %s\n", who, gnu_get_libc_version());
}
