/*
 * libFuzzer harness for resolve(): a small tree built from the input in a
 * scratch directory, then a few paths resolved inside it.
 *
 * Input (every field optional; a short input stops early):
 *   byte 0: bit 7 set: the root string is padded with "/" up to
 *           PATH_MAX - 1 - (byte & 0x7f) bytes (the kernel does not care,
 *           the shim's length checks do); else no padding
 *   byte 1: number of entries (mod 16)
 *   each entry: kind (mod 4: 0 dir, 1 file, 2 symlink, 3 fifo),
 *           parent (index into the directories made so far, 0 is the root),
 *           name (index into NAMES), and for a symlink a string: its text
 *   then up to 4 strings: paths to resolve
 *   a string: length byte, repeat byte, then length bytes; the bytes are
 *           repeated (repeat % 32) + 1 times; NUL becomes "/"
 *
 * For every path, what must hold (else abort(), and libFuzzer keeps the
 * input):
 *   - success: the result is the root string + "/" + a path without ".",
 *     "..", "//" or symbolic links, whose lstat is what resolve() returned,
 *     and the same object the kernel's openat2(RESOLVE_IN_ROOT) finds;
 *   - failure: the kernel fails the same way, except where the shim's own
 *     bound (4095 bytes of root + path, of link text + rest) is the reason
 *     (ENAMETOOLONG), and except for "" (the kernel's ENOENT, the shim's root);
 *   - nothing escapes the root, reads or writes out of bounds, or takes
 *     longer than libFuzzer's -timeout.
 *
 * A link whose text is the one byte 0x01 reads back as empty text
 * (readlinkat() returns 0), as on a FUSE or 9p file system: the kernel
 * cannot make one. A tree with such a link is not compared with openat2.
 *
 * With HOSTSHIM_FUZZ_LOG set, one line per path is appended to that file:
 * the input's size and FNV-1a hash, the path's index, the root's length,
 * then "ok HEX KIND" (the host path resolved, hex; dir, file, symlink or
 * other) or "err ERRNO". test/fuzz.test.ts replays the corpus so and holds
 * every line to the TypeScript model's resolveInRoot() on the same tree.
 */
#define readlinkat fuzz_readlinkat
#include "shim-under-test.h"
#undef readlinkat

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/syscall.h>

static const char *const NAMES[] = {
	"a", "b", "c", "lib", "lib64", "usr", "bin", "etc",
	"ld.so", "x y", "c:d", ".hid", "proc", "self", "root", "l",
};

enum { MAX_ENTRIES = 16, MAX_TEXT = 32 * 255 + 1 };

static char base[PATH_MAX];		/* the scratch root, real path */
static size_t base_len;
static char root_buf[PATH_MAX];		/* base, maybe padded with "/" */
static int base_fd;
static long budget0;	/* the shim's work budget at the start of a run */
static char made[MAX_ENTRIES][PATH_MAX];	/* what this input created, to remove */
static int n_made;
static int empty_links;	/* this tree has a link that reads back empty */
static FILE *log_file;
static char input_key[64];

/* The shim's readlinkat(); the name is taken by it, so the system call itself. */
ssize_t fuzz_readlinkat(int dirfd, const char *path, char *buf, size_t size)
{
	ssize_t k = syscall(SYS_readlinkat, dirfd, path, buf, size);

	return k == 1 && buf[0] == 1 ? 0 : k;
}

struct input {
	const uint8_t *p, *end;
};

static int byte(struct input *in)
{
	return in->p < in->end ? *in->p++ : -1;
}

/* A string of the input; 0 when the input is used up. */
static char *string(struct input *in, char *out)
{
	int len = byte(in), rep = byte(in), i, j;
	size_t n = 0;

	if (len < 0 || rep < 0 || in->end - in->p < len)
		return 0;
	for (i = 0; i <= rep % 32; i++)
		for (j = 0; j < len; j++)
			out[n++] = in->p[j] ? (char)in->p[j] : '/';
	out[n] = 0;
	in->p += len;
	return out;
}

static void cleanup(void)
{
	while (n_made > 0) {
		const char *path = made[--n_made];

		if (unlink(path) < 0 && rmdir(path) < 0) {
			perror(path);
			abort();
		}
	}
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *dir = getenv("HOSTSHIM_FUZZ_DIR");
	char tmpl[PATH_MAX];

	(void)argc;
	(void)argv;
	snprintf(tmpl, sizeof(tmpl), "%s/hostshim-fuzz-resolve-XXXXXX", dir ? dir : "/tmp");
	if (!mkdtemp(tmpl) || !realpath(tmpl, base)) {
		perror(tmpl);
		abort();
	}
	base_len = strlen(base);
	base_fd = open(base, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (base_fd < 0)
		abort();
	/* The shim's syscalls go relative to the open root, as in a container. */
	m.rootfd = base_fd;
	if (getenv("HOSTSHIM_FUZZ_LOG")) {
		log_file = fopen(getenv("HOSTSHIM_FUZZ_LOG"), "a");
		if (!log_file) {
			perror("HOSTSHIM_FUZZ_LOG");
			abort();
		}
	}
	atexit(cleanup);
	budget0 = budget;
	return 0;
}

/* The kernel's answer: the real path of what openat2(RESOLVE_IN_ROOT) opens, or -errno. */
static int kernel_resolve(const char *path, char *real)
{
	struct open_how how = { .flags = O_PATH | O_CLOEXEC, .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS };
	char proc[64];
	ssize_t n;
	int fd, tries = 0;

	/* ".." under RESOLVE_IN_ROOT is EAGAIN when any rename or mount ran meanwhile, anywhere. */
	do
		fd = (int)syscall(SYS_openat2, base_fd, path, &how, sizeof(how));
	while (fd < 0 && errno == EAGAIN && ++tries < 1000);
	if (fd < 0)
		return -errno;
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
	n = readlink(proc, real, PATH_MAX - 1);
	close(fd);
	if (n < 0)
		abort();
	real[n] = 0;
	return 0;
}

/* The replay's line for one path. */
static void log_result(int index, int r, int err, const char *out, const struct stat *st)
{
	const unsigned char *p;

	if (!log_file)
		return;
	fprintf(log_file, "%s %d %zu ", input_key, index, m.root_len);
	if (r < 0) {
		fprintf(log_file, "err %d\n", err);
		return;
	}
	fputs("ok ", log_file);
	for (p = (const unsigned char *)out + m.root_len; *p; p++)
		fprintf(log_file, "%02x", *p);
	fprintf(log_file, " %s\n", S_ISDIR(st->st_mode) ? "dir" : S_ISREG(st->st_mode) ? "file" : S_ISLNK(st->st_mode) ? "symlink" : "other");
	fflush(log_file);
}

static void check_path(const char *path, int index)
{
	char out[PATH_MAX], expect[2 * PATH_MAX], kernel[PATH_MAX], prefix[PATH_MAX];
	const char *rest;
	struct stat st, again;
	int r, err, k;
	size_t i;

	memset(&st, 0, sizeof(st));
	budget = budget0;
	errno = 0;
	r = resolve(path, out, &st);
	err = errno;
	log_result(index, r, err, out, &st);
	k = kernel_resolve(path, kernel);
	if (r < 0) {
		CHECK(err != 0, "failed without errno for \"%s\"", path);
		if (err == ENAMETOOLONG || !*path || empty_links)
			return;
		CHECK(k == -err, "\"%s\": the shim fails with %s, the kernel says %s", path, strerror(err),
		      k ? strerror(-k) : kernel);
		return;
	}
	/* Inside the root: the root string, then "/" and a clean path. */
	CHECK(strlen(out) < PATH_MAX, "result longer than PATH_MAX");
	CHECK(!strncmp(out, m.root, m.root_len), "\"%s\" -> \"%s\" is not under the root", path, out);
	rest = out + m.root_len;
	CHECK(rest[0] == '/', "\"%s\" -> \"%s\": no \"/\" after the root", path, out);
	CHECK(!strstr(rest, "//") && !strstr(rest, "/./") && !strstr(rest, "/../"), "\"%s\" -> \"%s\" is not clean", path, out);
	i = strlen(rest);
	if (i > 1) {
		CHECK(rest[i - 1] != '/', "\"%s\" -> \"%s\" ends with \"/\"", path, out);
		CHECK(strcmp(rest + i - 2, "/.") && (i < 3 || strcmp(rest + i - 3, "/..")), "\"%s\" -> \"%s\" ends with a dot", path, out);
	}
	/* No component below the root is a symbolic link: nothing was followed outside the shim's rules. */
	for (i = 1; rest[i - 1]; i++) {
		if (rest[i] != '/' && rest[i])
			continue;
		memcpy(prefix, base, base_len);
		memcpy(prefix + base_len, rest, i);
		prefix[base_len + i] = 0;
		CHECK(!lstat(prefix, &again) && !S_ISLNK(again.st_mode), "\"%s\" -> \"%s\": \"%s\" is a link or missing", path, out, prefix);
	}
	/* A directory resolve() had seen before comes back with its type alone. */
	if (st.st_mode == S_IFDIR)
		CHECK(!lstat(out, &again) && S_ISDIR(again.st_mode), "\"%s\" -> \"%s\": not a directory", path, out);
	else
		CHECK(!lstat(out, &again) && again.st_ino == st.st_ino && again.st_dev == st.st_dev && again.st_mode == st.st_mode,
		      "\"%s\" -> \"%s\": *st is not the result's lstat", path, out);
	/* The kernel, resolving inside the same root, finds the same object. */
	if (!*path || empty_links)
		return;
	snprintf(expect, sizeof(expect), "%s%s", base, strcmp(rest, "/") ? rest : "");
	CHECK(k == 0, "\"%s\": the shim finds \"%s\", the kernel fails with %s", path, out, strerror(-k));
	CHECK(!strcmp(kernel, expect), "\"%s\": the shim finds \"%s\", the kernel \"%s\"", path, expect, kernel);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char text[MAX_TEXT];
	struct input in = { data, data + size };
	char dirs[MAX_ENTRIES + 1][PATH_MAX];
	int n_dirs = 1, pad = byte(&in), entries = byte(&in), i;
	uint64_t hash = 0xcbf29ce484222325u;	/* FNV-1a, as read_elf.c */

	for (size_t j = 0; j < size; j++)
		hash = (hash ^ data[j]) * 0x100000001b3u;
	snprintf(input_key, sizeof(input_key), "%zu %016llx", size, (unsigned long long)hash);
	empty_links = 0;

	memcpy(root_buf, base, base_len + 1);
	if (pad >= 0x80) {
		size_t want = PATH_MAX - 1 - (size_t)(pad & 0x7f), n = base_len;

		while (n < want)
			root_buf[n++] = '/';
		root_buf[n] = 0;
	}
	m.root = root_buf;
	m.root_len = strlen(root_buf);
	/* resolve()'s memory of components lives for one run; a new tree is a new run. */
	m.n_seen = 0;
	m.seen_used = 0;
	strcpy(dirs[0], base);

	for (i = 0; i < (entries < 0 ? 0 : entries % 16); i++) {
		int kind = byte(&in), parent = byte(&in), name = byte(&in), ok;
		char path[PATH_MAX];

		if (name < 0)
			break;
		if (snprintf(path, sizeof(path), "%s/%s", dirs[parent % n_dirs], NAMES[name % 16]) >= (int)sizeof(path))
			continue;
		switch (kind % 4) {
		case 0:
			ok = !mkdir(path, 0755);
			if (ok)
				strcpy(dirs[n_dirs++], path);
			break;
		case 1:
			ok = !mknod(path, S_IFREG | 0755, 0);
			break;
		case 2:
			if (!string(&in, text))
				goto walk;
			ok = *text && !symlink(text, path);
			empty_links |= ok && !strcmp(text, "\x01");
			break;
		default:
			ok = !mknod(path, S_IFIFO | 0644, 0);
			break;
		}
		if (ok)
			strcpy(made[n_made++], path);
	}
walk:
	for (i = 0; i < 4 && string(&in, text); i++)
		check_path(text, i);
	cleanup();
	return 0;
}
