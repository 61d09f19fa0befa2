// The plan cache (shim/README.md, section 10): the shim keeps the plan it
// computed in $XDG_RUNTIME_DIR/hostshim/, with the facts it rests on (its
// witnesses), and a later launch only checks those facts.
//
// Three pieces of C, each placed by shim/template.ts: the file format and
// the witness recording (after the shim's state, before resolve(), which
// records), and loading and saving (before main()). Both are
// config-independent: `#define PLAN_CACHE 0` in the config block leaves
// only the stubs that main() calls. launcher/plan.ts reads the same format
// (parsePlanCache) and checks the same witnesses (planCacheVerdict).

import { PLAN_FORMAT, PLAN_REASONS } from '../launcher/plan.js'
import { c, cInt, cString, type CCode } from './emit.js'

const REASONS = c`static const char
	WHY_OFF[] = ${cString(PLAN_REASONS.off)},
	WHY_NO_DIR[] = ${cString(PLAN_REASONS.noRuntimeDir)},
	WHY_MISSING[] = ${cString(PLAN_REASONS.missing)},
	WHY_DIR_OPEN[] = ${cString(PLAN_REASONS.dirNotPrivate)},
	WHY_FILE_OPEN[] = ${cString(PLAN_REASONS.fileNotPrivate)},
	WHY_UNREADABLE[] = ${cString(PLAN_REASONS.unreadable)},
	WHY_INVALID[] = ${cString(PLAN_REASONS.invalid)},
	WHY_CHANGED[] = ${cString(PLAN_REASONS.changed)};`

/** The format, the witness list, note(): before resolve(). */
export const PLAN_CACHE_STATE = c`
/*
 * The plan cache's file: a head, the witnesses, their strings (target,
 * loader, library path, the path asked for of a $ORIGIN target, then each
 * witness's path, every one with its NUL),
 * zeros up to a multiple of 8, and an FNV-1a hash of all that. Native byte
 * order: only a shim of the same build (PLAN_ID) reads it. Every field is
 * at its natural alignment on every architecture, so the layout is one.
 */
enum {
	PLAN_VERSION = ${cInt(PLAN_FORMAT.version)},
	MAX_WIT = ${cInt(PLAN_FORMAT.maxWitnesses)},	/* witnesses one plan may have */
	MAX_PLAN = ${cInt(PLAN_FORMAT.maxBytes)},	/* bytes of a plan file */
	WIT_TEXT = 8192,	/* bytes of witness paths recorded */
	WIT_FOLLOW = ${cInt(PLAN_FORMAT.witnessFollow)},	/* stat(), not lstat() */
	WIT_CALLER = ${cInt(PLAN_FORMAT.witnessCaller)},	/* a path of the caller's own view, not under the root */
};
static const char PLAN_MAGIC[8] = ${cString(PLAN_FORMAT.magic)};
${REASONS}

struct plan_head {
	char magic[8];
	unsigned int version, size;
	char id[32];
	unsigned int container, euid;
	unsigned long long root_dev, root_ino;
	unsigned int direct, argv0;
	unsigned int n_wit, target_len, loader_len, lp_len;
	unsigned long long loader_size;
	unsigned int origin_len, pad;
};

/* What one lstat() (or stat(): WIT_FOLLOW) of a full path gave: the facts, or the errno. */
struct plan_wit {
	unsigned long long dev, ino, size, mtime, ctime;
	unsigned int mode, err, flags, path_len;
};

_Static_assert(sizeof(struct plan_head) == ${cInt(PLAN_FORMAT.headBytes)}, "plan head layout");
_Static_assert(sizeof(struct plan_wit) == ${cInt(PLAN_FORMAT.witnessBytes)}, "plan witness layout");
/* The bytes of a witness that are its facts (dev to err): what two lstat()s of one path must agree on. */
enum { WIT_FACTS = __builtin_offsetof(struct plan_wit, flags) };

/* A plan, loaded or about to be saved: its strings point into a buffer. */
struct plan {
	const char *target, *loader, *lp;
	unsigned long long loader_size;
	int direct, argv0;
};

/*
 * What a computation records for the cache. Touched only when the plan is
 * computed: a launch that finds its plan never faults these pages in.
 */
static struct {
	/* caller: resolve() walks the caller's own view (a $ORIGIN target), its witnesses say so. */
	int recording, overflow, n_wit, ldcache_ok, caller;
	size_t text_used;
	struct timespec t0;
	struct plan_wit wit[MAX_WIT];
	char text[WIT_TEXT];
	/* The plan file's path, and its directory's length in it; its temporary name (not on the stack: see plan_save()). */
	char file[PATH_MAX], tmp[PATH_MAX + 32];
	size_t dir_len;
	/* "changed: PATH" */
	char why[PATH_MAX + 16];
} pc __attribute__((section(".bss.~2pc")));

/* Why the plan was computed, or "cached": the debug line's value. */
static const char *plan_why;

static unsigned long long ns_of(const struct timespec *ts)
{
	return (unsigned long long)ts->tv_sec * 1000000000ull + (unsigned long long)ts->tv_nsec;
}

/*
 * A directory is its type only: all a walk asks of it is that it is a
 * directory, not a link (replaced by another directory, what the walk finds
 * in it has witnesses of its own; made unsearchable, their lstat()s fail).
 * What is in it changes with every file installed next to the one that
 * matters, and the one that matters is a witness of its own.
 */
static void facts_of(struct plan_wit *w, const struct stat *st)
{
	if (S_ISDIR(st->st_mode)) {
		w->mode = S_IFDIR;
		return;
	}
	w->dev = (unsigned long long)st->st_dev;
	w->ino = (unsigned long long)st->st_ino;
	w->mode = (unsigned int)st->st_mode;
	w->size = (unsigned long long)st->st_size;
	w->mtime = ns_of(&st->st_mtim);
	w->ctime = ns_of(&st->st_ctim);
}

/*
 * resolve() calls this after each lstat() it makes (stat() for follow):
 * st on success, 0 with errno set on failure. errno is left alone.
 */
static void note(const char *full, size_t len, const struct stat *st, int follow)
{
	struct plan_wit *w;

	if (!PLAN_CACHE || pc.recording != 1)
		return;
	if (pc.n_wit == MAX_WIT || len + 1 > WIT_TEXT - pc.text_used) {
		pc.overflow = 1;
		return;
	}
	w = &pc.wit[pc.n_wit++];
	memset(w, 0, sizeof(*w));
	if (st)
		facts_of(w, st);
	else
		w->err = (unsigned int)errno;
	w->flags = (follow ? WIT_FOLLOW : 0) | (pc.caller ? WIT_CALLER : 0);
	w->path_len = (unsigned int)len;
	memcpy(pc.text + pc.text_used, full, len);
	pc.text[pc.text_used + len] = 0;
	pc.text_used += len + 1;
}
`

/** Loading, checking and saving: before main(). */
export const PLAN_CACHE_IO = c`
/* FNV-1a, 64 bits: a plan file's checksum, and its name from the key. */
static unsigned long long fnv(unsigned long long h, const void *data, size_t n)
{
	const unsigned char *p = data;

	while (n--)
		h = (h ^ *p++) * 0x100000001b3ull;
	return h;
}

static unsigned long long fnv_u64(unsigned long long h, unsigned long long v)
{
	int i;

	/* Little-endian whatever the machine: the name is the same on every one. */
	for (i = 0; i < 8; i++, v >>= 8)
		h = (h ^ (v & 255)) * 0x100000001b3ull;
	return h;
}

/*
 * The key: what must be equal for a plan to be this launch's. origin: the
 * path a $ORIGIN target asked for (the shim's own directory and REL), ""
 * for any other target: two build directories never share a plan.
 */
struct plan_key {
	/* The head's container, euid, root_dev, root_ino: the same layout, compared and copied at once. */
	unsigned int container, euid;
	unsigned long long root_dev, root_ino;
	const char *origin;
	size_t origin_len;
};
enum { KEY_HEAD = 2 * sizeof(unsigned int) + 2 * sizeof(unsigned long long) };

/* One string of the file at *at: len bytes and a NUL, none inside. */
static const char *plan_string(const char *buf, size_t end, size_t *at, unsigned int len)
{
	const char *s = buf + *at;

	if (len > end - *at || end - *at - len < 1 || s[len] || strlen(s) != len)
		return 0;
	*at += (size_t)len + 1;
	return s;
}

/*
 * A plan file's n bytes: 0 when it is whole, of this build and for this key,
 * with the plan's strings pointing into buf; -1 otherwise. buf is 8-byte
 * aligned. Trusts nothing in it: every length is checked against n.
 */
static int plan_parse(const char *buf, size_t n, const struct plan_key *key, struct plan *p)
{
	const struct plan_head *h = (const struct plan_head *)buf;
	const struct plan_wit *w = (const struct plan_wit *)(h + 1);
	const char *origin;
	unsigned long long sum;
	size_t at, end = n - 8;
	unsigned int i;

	if (n < sizeof(*h) + 8 || n > MAX_PLAN || n % 8)
		return -1;
	memcpy(&sum, buf + end, 8);
	if (memcmp(h->magic, PLAN_MAGIC, 8) || h->version != PLAN_VERSION || h->size != n ||
	    fnv(0xcbf29ce484222325ull, buf, end) != sum)
		return -1;
	if (memcmp(h->id, PLAN_ID, 32) || memcmp(&h->container, key, KEY_HEAD) || h->origin_len != key->origin_len)
		return -1;
	if (h->n_wit > MAX_WIT || h->direct > 1 || h->argv0 > 1 || h->target_len >= PATH_MAX ||
	    h->loader_len >= PATH_MAX || (h->direct && (h->loader_len || h->lp_len || h->argv0)))
		return -1;
	at = sizeof(*h) + h->n_wit * sizeof(*w);
	if (at > end)
		return -1;
	p->target = plan_string(buf, end, &at, h->target_len);
	p->loader = p->target ? plan_string(buf, end, &at, h->loader_len) : 0;
	p->lp = p->loader ? plan_string(buf, end, &at, h->lp_len) : 0;
	origin = p->lp ? plan_string(buf, end, &at, h->origin_len) : 0;
	if (!origin || memcmp(origin, key->origin, key->origin_len) || p->target[0] != '/' ||
	    (!h->direct && p->loader[0] != '/'))
		return -1;
	for (i = 0; i < h->n_wit; i++)
		if (w[i].path_len >= PATH_MAX || w[i].flags > (WIT_FOLLOW | WIT_CALLER) ||
		    !plan_string(buf, end, &at, w[i].path_len))
			return -1;
	if (((at + 7) & ~(size_t)7) != end)
		return -1;
	for (; at < end; at++)
		if (buf[at])
			return -1;
	p->direct = (int)h->direct;
	p->argv0 = (int)h->argv0;
	p->loader_size = h->loader_size;
	return 0;
}

/* A directory or file of the cache that only euid can have written: owned by it, not group or other writable. */
static int private_to(const struct stat *st, unsigned int euid)
{
	return st->st_uid == euid && !(st->st_mode & 022);
}

/*
 * The plan file's path for key at top: $XDG_RUNTIME_DIR/hostshim/plan-HEX,
 * HEX the FNV-1a of PLAN_ID and the key (the origin's bytes last). Returns
 * the directory's length, 0 without a usable XDG_RUNTIME_DIR (unset,
 * relative, or too long).
 */
static size_t plan_path(char *out, const struct plan_key *key)
{
	const char *xdg = getenv("XDG_RUNTIME_DIR");
	unsigned long long h = fnv(0xcbf29ce484222325ull, PLAN_ID, 32);
	size_t n, i;

	if (!xdg || xdg[0] != '/' || (n = strlen(xdg)) > PATH_MAX - 64)
		return 0;
	h = fnv_u64(h, key->container);
	h = fnv_u64(h, key->euid);
	h = fnv_u64(h, key->root_dev);
	h = fnv_u64(h, key->root_ino);
	h = fnv(h, key->origin, key->origin_len);
	memcpy(out, xdg, n);
	memcpy(out + n, "/hostshim", 10);
	n += 9;
	memcpy(out + n, "/plan-", 6);
	for (i = 0; i < 8; i++)
		hex2(out + n + 6 + 2 * i, (unsigned char)(h >> (56 - 8 * i)));
	out[n + 22] = 0;
	return n;
}

static void plan_key_of(struct plan_key *key, int container, const struct stat *root, const char *origin)
{
	key->container = (unsigned int)container;
	key->euid = (unsigned int)getauxval(AT_EUID);
	key->root_dev = (unsigned long long)root->st_dev;
	key->root_ino = (unsigned long long)root->st_ino;
	key->origin = origin ? origin : "";
	key->origin_len = strlen(key->origin);
}

/* A witness does not hold: plan_why says which. */
static void plan_changed(const char *path, size_t len)
{
	size_t k = sizeof(WHY_CHANGED) - 1;

	memcpy(pc.why, WHY_CHANGED, k);
	memcpy(pc.why + k, ": ", 2);
	memcpy(pc.why + k + 2, path, len);
	pc.why[k + 2 + len] = 0;
	plan_why = pc.why;
}

/* Whether a witness no longer holds: the same call now gives other facts, or fails otherwise. Says which. */
static int wit_changed(const struct plan_wit *w, const char *wpath)
{
	struct plan_wit now;
	struct stat st;

	memset(&now, 0, sizeof(now));
	if (fstatat(AT_FDCWD, wpath, &st, w->flags & WIT_FOLLOW ? 0 : AT_SYMLINK_NOFOLLOW) < 0)
		now.err = (unsigned int)errno;
	else
		facts_of(&now, &st);
	if (!memcmp(&now, w, WIT_FACTS))
		return 0;
	plan_changed(wpath, w->path_len);
	return 1;
}

#ifndef SYS_openat2
#define SYS_openat2 437	/* the same number on every architecture */
#endif
_Static_assert(MAX_WIT <= 64, "one bit per witness in plan_load()");

/* path opened with no symbolic link on the way, the last component included; -1 where the kernel cannot say. */
static int open_no_links(const char *path)
{
	/* struct open_how: flags, mode, resolve (RESOLVE_NO_SYMLINKS) */
	unsigned long long how[3] = { O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK, 0, 0x04 };

	return (int)syscall(SYS_openat2, AT_FDCWD, path, how, sizeof(how));
}

/*
 * Use the kept plan when every witness still holds. Returns the file to
 * run (the loader, or the target when it runs directly), opened and its
 * fstat in *st equal to its witness, with *p set (its strings are kept in
 * the arena); or -1 with plan_why saying why not. Every failure is a
 * reason to compute, never an error.
 */
static int plan_load(const struct plan_key *key, struct plan *p, struct stat *st_run)
{
	char *path = top(), *buf;
	const struct plan_head *h;
	const struct plan_wit *w, *run_w = 0;
	const char *wpath, *run;
	unsigned long long on_way = 0;	/* witnesses that are directories on the way to run */
	struct stat st;
	size_t dir_len, run_len;
	ssize_t n;
	unsigned int i;
	int fd;

	plan_why = WHY_OFF;
	if (!PLAN_CACHE)
		return -1;
	dir_len = plan_path(path, key);
	plan_why = WHY_NO_DIR;
	if (!dir_len)
		return -1;
	plan_why = WHY_MISSING;
	path[dir_len] = 0;
	if (fstatat(AT_FDCWD, path, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return -1;
	plan_why = WHY_DIR_OPEN;
	if (!S_ISDIR(st.st_mode) || !private_to(&st, key->euid))
		return -1;
	path[dir_len] = '/';
	/* Not a link, not a FIFO that would block: a regular file of euid's. */
	fd = openat(AT_FDCWD, path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0) {
		plan_why = errno == ENOENT ? WHY_MISSING : errno == ELOOP ? WHY_FILE_OPEN : WHY_UNREADABLE;
		return -1;
	}
	buf = path + ((strlen(path) + 8) & ~(size_t)7);
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || !private_to(&st, key->euid)) {
		close(fd);
		plan_why = WHY_FILE_OPEN;
		return -1;
	}
	n = read(fd, buf, MAX_PLAN + 1);
	close(fd);
	plan_why = WHY_INVALID;
	if (n < 0 || plan_parse(buf, (size_t)n, key, p) < 0)
		return -1;
	h = (const struct plan_head *)buf;
	w = (const struct plan_wit *)(h + 1);
	/*
	 * Every witness is a full path of the caller's view: under HOST_ROOT, or
	 * (WIT_CALLER) not. The file to run is not lstat()ed: it is opened
	 * below, and the open file's fstat() is checked against its witness.
	 */
	run = p->direct ? p->target : p->loader;
	run_len = strlen(run);
	wpath = p->lp + h->lp_len + 1 + h->origin_len + 1;
	for (i = 0; i < h->n_wit; i++, wpath += w[i - 1].path_len + 1) {
		if (!(w[i].flags & WIT_FOLLOW) && !strcmp(wpath, run)) {
			run_w = &w[i];
			continue;
		}
		/* A directory on the way to the file to run: its open below tells, see there. */
		if (!(w[i].flags & WIT_FOLLOW) && !w[i].err && w[i].mode == S_IFDIR && w[i].path_len < run_len &&
		    run[w[i].path_len] == '/' && !memcmp(wpath, run, w[i].path_len)) {
			on_way |= 1ull << i;
			continue;
		}
		if (wit_changed(&w[i], wpath))
			return -1;
	}
	/*
	 * The file to run is its last lstat's witness: opened without following
	 * a link (a link or a missing file fails, as its lstat() would differ),
	 * it must be that very file. Opened with no link anywhere on its path
	 * (openat2, Linux 5.6), it also shows every directory on the way still a
	 * directory, which is all those witnesses say: their lstat()s are
	 * skipped. Any failure (an older kernel, a seccomp filter, a link such
	 * as a linked HOST_ROOT, a missing file) checks them one by one, so the
	 * answer never depends on which way it went.
	 */
	fd = run_w ? open_no_links(run) : -1;
	if (fd < 0 && on_way) {
		wpath = p->lp + h->lp_len + 1 + h->origin_len + 1;
		for (i = 0; i < h->n_wit; i++, wpath += w[i - 1].path_len + 1)
			if (on_way >> i & 1 && wit_changed(&w[i], wpath))
				return -1;
	}
	if (fd < 0 && run_w)
		fd = openat(AT_FDCWD, run, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
	if (fd >= 0 && !fstat(fd, st_run)) {
		struct plan_wit now;

		memset(&now, 0, sizeof(now));
		facts_of(&now, st_run);
		if (!memcmp(&now, run_w, WIT_FACTS) && S_ISREG(now.mode)) {
			/*
			 * Keep the plan's strings (target, loader and library path,
			 * one after the other in the file), moved down over the
			 * path: the rest of the file is read and checked, and what
			 * comes next (the loader's headers) is written over it. A
			 * hit then writes one stretch of the arena, not two, and
			 * stays on the page of the shim's data (shim.ld).
			 */
			size_t loader_at = (size_t)(p->loader - p->target), lp_at = (size_t)(p->lp - p->target);
			size_t keep_n = lp_at + h->lp_len + 1;

			/* The head is overwritten: nothing is read from it after this. */
			memmove(path, p->target, keep_n);
			p->target = path;
			p->loader = path + loader_at;
			p->lp = path + lp_at;
			keep(keep_n);
			plan_why = "cached";
			return fd;
		}
	}
	if (fd >= 0)
		close(fd);
	plan_changed(run, run_len);
	return -1;
}


/* Start recording witnesses: the full computation is about to begin. */
static void plan_record(void)
{
	if (!PLAN_CACHE)
		return;
	pc.recording = 1;
	/* Every witness must be older than this by RACY_NS: see plan_save(). The system call: musl's vDSO lookup is a KiB of shim. */
#ifdef SYS_clock_gettime64
	/* 32-bit machines: musl's time_t is 64 bits, as this call's. */
	syscall(SYS_clock_gettime64, CLOCK_REALTIME, &pc.t0);
#else
	syscall(SYS_clock_gettime, CLOCK_REALTIME, &pc.t0);
#endif
}

/*
 * The host's ld.so.cache, resolved in the root as any host path, is a
 * witness: ldconfig rewrites it after every library change, as the host's
 * own loader expects. The run's work budget is not spent on it, so that
 * the library path comes out as the model's.
 */
static void plan_witness_ldcache(void)
{
	long saved = budget;
	struct stat st;

	if (!PLAN_CACHE)
		return;
	pc.ldcache_ok = resolve("/etc/ld.so.cache", top(), &st) == 0 && S_ISREG(st.st_mode);
	budget = saved;
}

/* The target and the loader are resolved: what comes next (the library path) follows ld.so.cache. */
static void plan_record_done(void)
{
	if (PLAN_CACHE && pc.recording == 1)
		pc.recording = 2;
}

/*
 * Keep the plan just computed, when it may be kept: a usable runtime
 * directory, an ld.so.cache, every witness recorded, and none changed in
 * the RACY_NS before the computation began (a change after it then shows
 * in the ctime: see shim/README.md, section 10). Written to a temporary
 * name and renamed, so a reader sees the old file or the new one, whole.
 * Any failure leaves things as they were: the cache never fails a launch.
 */
static void plan_save(const struct plan_key *key, const struct plan *p)
{
	const unsigned long long RACY_NS = ${cInt(PLAN_FORMAT.racySeconds)} * 1000000000ull;
	struct plan_head *h;
	struct stat st;
	/* pc.tmp, not a 4 KiB array here: this is inlined into decide(), whose frame a hit touches too. */
	char *buf, *s, *tmp = pc.tmp;
	size_t size, t_len, l_len, lp_len, i;
	unsigned long long sum;
	const unsigned char *rnd = (const unsigned char *)getauxval(AT_RANDOM);
	int fd, ok;

	if (!PLAN_CACHE || pc.recording != 2 || pc.overflow || !pc.ldcache_ok)
		return;
	for (i = 0; i < (size_t)pc.n_wit; i++)
		if (!pc.wit[i].err && pc.wit[i].ctime + RACY_NS >= ns_of(&pc.t0))
			return;
	pc.dir_len = plan_path(pc.file, key);
	if (!pc.dir_len)
		return;
	t_len = strlen(p->target);
	l_len = p->direct ? 0 : strlen(p->loader);
	lp_len = p->direct ? 0 : strlen(p->lp);
	size = sizeof(*h) + (size_t)pc.n_wit * sizeof(struct plan_wit) + t_len + l_len + lp_len + key->origin_len + 4 +
	       pc.text_used;
	size = ((size + 7) & ~(size_t)7) + 8;
	if (size > MAX_PLAN)
		return;
	buf = top();
	memset(buf, 0, size);
	h = (struct plan_head *)buf;
	memcpy(h->magic, PLAN_MAGIC, 8);
	h->version = PLAN_VERSION;
	h->size = (unsigned int)size;
	memcpy(h->id, PLAN_ID, 32);
	memcpy(&h->container, key, KEY_HEAD);
	h->direct = (unsigned int)p->direct;
	h->argv0 = (unsigned int)p->argv0;
	h->n_wit = (unsigned int)pc.n_wit;
	h->target_len = (unsigned int)t_len;
	h->loader_len = (unsigned int)l_len;
	h->lp_len = (unsigned int)lp_len;
	h->loader_size = p->loader_size;
	h->origin_len = (unsigned int)key->origin_len;
	memcpy(h + 1, pc.wit, (size_t)pc.n_wit * sizeof(struct plan_wit));
	s = (char *)((struct plan_wit *)(h + 1) + pc.n_wit);
	memcpy(s, p->target, t_len + 1);
	s += t_len + 1;
	if (!p->direct) {
		memcpy(s, p->loader, l_len + 1);
		memcpy(s + l_len + 1, p->lp, lp_len + 1);
	}
	s += l_len + 1 + lp_len + 1;
	memcpy(s, key->origin, key->origin_len + 1);
	s += key->origin_len + 1;
	memcpy(s, pc.text, pc.text_used);
	sum = fnv(0xcbf29ce484222325ull, buf, size - 8);
	memcpy(buf + size - 8, &sum, 8);

	/* The directory: made private, or found private. */
	pc.file[pc.dir_len] = 0;
	if (mkdir(pc.file, 0700) < 0 && errno != EEXIST)
		return;
	if (fstatat(AT_FDCWD, pc.file, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISDIR(st.st_mode) || !private_to(&st, key->euid))
		return;
	pc.file[pc.dir_len] = '/';
	/* ".plan-HEX.RANDOM": a name of this launch's own, from the kernel's AT_RANDOM bytes. */
	memcpy(tmp, pc.file, pc.dir_len + 1);
	tmp[pc.dir_len + 1] = '.';
	cpy(tmp + pc.dir_len + 2, pc.file + pc.dir_len + 1);
	s = tmp + strlen(tmp);
	*s++ = '.';
	for (i = 0; i < 8; i++, s += 2)
		hex2(s, rnd ? rnd[i] : 0);
	*s = 0;
	fd = openat(AT_FDCWD, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return;
	ok = write(fd, buf, size) == (ssize_t)size;
	ok = !close(fd) && ok;
	if (!ok || rename(tmp, pc.file) < 0)
		unlink(tmp);
}
`
