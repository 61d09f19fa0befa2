/*
 * libFuzzer harness for the library path: read_conf() (ld.so.conf lines,
 * include, hwcap, comments), include() (relative and absolute patterns,
 * wildcards, nesting), match() and add_dir(), over a fixed host tree whose
 * ld.so.conf files hold the input.
 *
 * Input: up to 6 parts separated by the byte 0xff: the contents of
 * /etc/ld.so.conf, /etc/ld.so.conf.d/a.conf, /etc/ld.so.conf.d/b.conf,
 * /etc/ld.so.conf.d/.c.conf, /etc/x.conf, /opt/y.conf; then two more
 * parts, a pattern and a file name, for match() alone.
 *
 * What must hold: the library path is at most MAX_DIRS entries, each the
 * full path of a directory below the root, without ":", ";" or "$", none
 * twice; match() agrees with glibc's fnmatch(FNM_PERIOD), which is what
 * ldconfig's glob() uses, for patterns without the features the shim leaves
 * out (character classes, "\" in a set); nothing reads or writes out of
 * bounds, and no input takes longer than libFuzzer's -timeout.
 */
#include "shim-under-test.h"

#include <fnmatch.h>

static char base[PATH_MAX];
static long budget0;	/* the shim's work budget at the start of a run */

static const char *const FILES[] = {
	"etc/ld.so.conf", "etc/ld.so.conf.d/a.conf", "etc/ld.so.conf.d/b.conf",
	"etc/ld.so.conf.d/.c.conf", "etc/x.conf", "opt/y.conf",
};

/* The rest of the host tree: directories, links to them, a loop, odd names. */
static const char *const DIRS[] = {
	"etc", "etc/ld.so.conf.d", "etc/ld.so.conf.d/d.conf", "opt", "opt/a", "opt/b", "opt/c:d", "opt/$ORIGIN",
	"usr", "usr/lib", "usr/lib64", "usr/local", "usr/local/lib", "lib64", "x y",
};
static const char *const LINKS[][2] = {
	{ "lib", "usr/lib" }, { "e", "/etc" }, { "loop", "loop" }, { "opt/up", "../../../opt" },
	{ "etc/ld.so.conf.d/z.conf", "../x.conf" }, { "opt/abs", "/usr/lib64" },
};

static void must(int ok, const char *what, const char *path)
{
	if (!ok) {
		perror(path);
		fprintf(stderr, "hostshim fuzz: cannot %s\n", what);
		abort();
	}
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *dir = getenv("HOSTSHIM_FUZZ_DIR");
	char tmpl[PATH_MAX], path[2 * PATH_MAX];
	size_t i;

	(void)argc;
	(void)argv;
	snprintf(tmpl, sizeof(tmpl), "%s/hostshim-fuzz-ldconf-XXXXXX", dir ? dir : "/tmp");
	must(mkdtemp(tmpl) && realpath(tmpl, base), "make a scratch dir", tmpl);
	for (i = 0; i < sizeof(DIRS) / sizeof(*DIRS); i++) {
		snprintf(path, sizeof(path), "%s/%s", base, DIRS[i]);
		must(!mkdir(path, 0755), "mkdir", path);
	}
	for (i = 0; i < sizeof(LINKS) / sizeof(*LINKS); i++) {
		snprintf(path, sizeof(path), "%s/%s", base, LINKS[i][0]);
		must(!symlink(LINKS[i][1], path), "symlink", path);
	}
	m.root = base;
	m.root_len = strlen(base);
	/* The shim's syscalls go relative to the open root, as in a container. */
	m.rootfd = open(base, O_PATH | O_DIRECTORY | O_CLOEXEC);
	must(m.rootfd >= 0, "open", base);
	budget0 = budget;
	return 0;
}

static void write_file(const char *name, const uint8_t *data, size_t size)
{
	char path[2 * PATH_MAX];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", base, name);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	must(fd >= 0 && write(fd, data, size) == (ssize_t)size && !close(fd), "write", path);
}

/* Patterns the differential covers: no "\" inside a set, no "[:", "[=", "[." classes. */
static int comparable(const char *p)
{
	for (; *p; p++) {
		if (*p == '\\' && !p[1])
			return 0;
		if (*p == '\\') {
			p++;
			continue;
		}
		if (*p == '[') {
			const char *q = p + 1;

			if (*q == '!' || *q == '^')
				q++;
			if (*q == ']')
				q++;
			for (; *q && *q != ']'; q++)
				if (*q == '\\' || (*q == '[' && (q[1] == ':' || q[1] == '=' || q[1] == '.')))
					return 0;
		}
	}
	return 1;
}

static void check_match(const uint8_t *p, size_t np, const uint8_t *s, size_t ns)
{
	char pattern[512], name[256];
	int mine, glibc;

	if (np >= sizeof(pattern) || ns >= sizeof(name) || memchr(p, 0, np) || memchr(s, 0, ns) ||
	    memchr(p, '/', np) || memchr(s, '/', ns))
		return;
	memcpy(pattern, p, np);
	pattern[np] = 0;
	memcpy(name, s, ns);
	name[ns] = 0;
	mine = match(pattern, name);
	if (!comparable(pattern))
		return;
	glibc = !fnmatch(pattern, name, FNM_PERIOD);
	CHECK(mine == glibc, "match(\"%s\", \"%s\") is %d, glibc's fnmatch says %d", pattern, name, mine, glibc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *part[8], *end = data + size, *p = data;
	size_t len[8], n = 0, i;
	const char *e;

	while (n < 8) {
		const uint8_t *sep = memchr(p, 0xff, (size_t)(end - p));

		part[n] = p;
		len[n] = (size_t)((sep ? sep : end) - p);
		n++;
		if (!sep)
			break;
		p = sep + 1;
	}
	for (i = 0; i < 6; i++)
		write_file(FILES[i], i < n ? part[i] : (const uint8_t *)"", i < n ? len[i] : 0);
	if (n == 8)
		check_match(part[6], len[6], part[7], len[7]);

	m.lp_len = 0;
	big.lp[0] = 0;
	m.n_dirs = 0;
	m.n_conf = 0;
	m.n_seen = 0;
	m.seen_used = 0;
	m.top = 0;
	budget = budget0;
	read_conf("/etc/ld.so.conf", 0);

	CHECK(m.top == 0, "read_conf kept %zu bytes of the arena", m.top);
	CHECK(m.n_dirs <= MAX_DIRS, "%d library path entries", m.n_dirs);
	CHECK(m.n_conf <= MAX_CONF_FILES, "%d ld.so.conf files read", m.n_conf);
	CHECK(strlen(big.lp) == m.lp_len, "lp_len %zu, strlen %zu", m.lp_len, strlen(big.lp));
	for (e = big.lp, i = 0; *e; i++) {
		const char *colon = strchrnul(e, ':'), *other;
		size_t n_e = (size_t)(colon - e);
		char dir[PATH_MAX];
		struct stat st;

		CHECK(n_e < PATH_MAX && n_e > m.root_len && !strncmp(e, m.root, m.root_len) && e[m.root_len] == '/',
		      "entry %zu of \"%s\" is not below the root", i, big.lp);
		memcpy(dir, e, n_e);
		dir[n_e] = 0;
		CHECK(!strpbrk(dir, ";$"), "entry \"%s\" has \";\" or \"$\"", dir);
		CHECK(!lstat(dir, &st) && S_ISDIR(st.st_mode), "entry \"%s\" is not a directory", dir);
		for (other = colon; *other; other++)
			if (other[0] == ':' && !strncmp(other + 1, dir, n_e) && (other[1 + n_e] == ':' || !other[1 + n_e]))
				CHECK(0, "entry \"%s\" is listed twice in \"%s\"", dir, big.lp);
		e = *colon ? colon + 1 : colon;
	}
	CHECK((int)i == m.n_dirs, "%zu entries, n_dirs %d", i, m.n_dirs);
	return 0;
}
