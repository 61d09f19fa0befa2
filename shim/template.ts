// The shim: one C program, rendered from a config.
//
// Read shim/README.md first: it is the algorithm, step by step, and
// launcher/plan.ts implements the same steps in TypeScript. The C below is the
// template author's text; every config value enters through shim/emit.ts.

import { createHash } from 'node:crypto'
import type { Arch } from '../launcher/arch.js'
import { originRelative, type ShimConfig } from '../launcher/config.js'
import { VERSION } from '../launcher/version.js'
import { MARK_NOTE_NAME, MARK_NOTE_TYPE, shimMark } from '../launcher/mark.js'
import { FAILURES, STRERROR } from '../launcher/plan.js'
import { c, cBool, cConstant, cInt, cString, cStringList, CCode } from './emit.js'
import { chainloadBlock } from './chainload.js'
import { RUNTIME_END, runtimeBlock } from './runtime.js'
import { PLAN_CACHE_IO, PLAN_CACHE_STATE } from './plancache.js'

function configBlock(config: ShimConfig, arch: Arch, planId: string): CCode {
  const env = config.env.map(([k, v]) => `${k}=${v}`)
  return c`static const char NAME[] = ${cString(config.name)};
/* What the plan cache's file must name: the hash of this source, with this line's value zeros. */
static const char PLAN_ID[33] = ${cString(planId)};
static const char TARGET[] = ${cString(config.target)};
static const char HOST_ROOT[] = ${cString(config.hostRoot)};
static const char DEBUG_ENV[] = ${cString(config.debugEnv)};
static const char STD_DIRS[] = ${cStringList(arch.libDirs)};
static const char EXTRA_DIRS[] = ${cStringList(config.libDirs)};
/* NAME=VALUE for each variable the shim sets. */
static const char SET_ENV[] = ${cStringList(env)};
enum {
	PASS_ARGV0 = ${cBool(config.argv0)},
	REQUIRE_HOST_ROOT = ${cBool(config.requireHostRoot === true)},
	/* TARGET is "$ORIGIN/REL": REL is next to the shim, in the caller's own view. */
	ORIGIN = ${cBool(originRelative(config.target) !== null)},
	ELF_MACHINE = ${cInt(arch.machine)},
	ELF_CLASS = ${cInt(arch.elfClass)},
	ELF_DATA = ${cInt(arch.byteOrder)},
	N_SET_ENV = ${cInt(env.length)},
	PLAN_CACHE = ${cBool(config.planCache !== false)},
};
#define WIDE ${cInt(arch.elfClass === 2 ? 1 : 0)}`
}

/*
 * The mark: an ELF note (name "hostshim") holding JSON that says which
 * hostshim built the shim and for what. Notes survive stripping and
 * --gc-sections keeps SHT_NOTE sections.
 */
function markNote(config: ShimConfig, arch: Arch): CCode {
  const desc = JSON.stringify(shimMark(config, arch))
  const size = Buffer.byteLength(desc) + 1
  return c`__attribute__((section(".note.hostshim"), used, aligned(4)))
static const struct {
	unsigned int namesz, descsz, type;
	char name[12];
	char desc[${cInt((size + 3) & ~3)}];
} mark = { 9, ${cInt(size)}, ${cInt(MARK_NOTE_TYPE)}, ${cString(MARK_NOTE_NAME)}, ${cString(desc)} };`
}

function failures(): CCode {
  return c`static const char
	WHAT_TARGET_MISSING[] = ${cString(FAILURES.targetMissing)},
	WHAT_TARGET_BAD[] = ${cString(FAILURES.targetBad)},
	WHAT_LOADER_MISSING[] = ${cString(FAILURES.loaderMissing)},
	WHAT_LOADER_BAD[] = ${cString(FAILURES.loaderBad)},
	WHAT_WRONG_ARCH[] = ${cString(FAILURES.wrongArch)},
	WHAT_EXEC[] = ${cString(FAILURES.exec)},
	WHAT_ORIGIN[] = ${cString(FAILURES.originMissing)},
	WHAT_SECURE[] = ${cString(FAILURES.secure)},
	WHAT_NO_HOST_ROOT[] = ${cString(FAILURES.noHostRoot)};`
}

const NO_PLAN_ID = '0'.repeat(32)

/** A plan as the shim runs it: what `renderBakedShim()` writes into a shim. */
export interface BakedPlan {
  readonly target: string
  readonly loader: string
  readonly libraryPath: string
  readonly argv0: boolean
}

/** Where renderBakedShim() writes the plan in: before the comment on struct run, which decide() fills. */
export const BAKE_BEFORE = '\n/*\n * What main() runs, as decide() found it'

/**
 * For `npm run bench` only, never for a user: the shim of `config` with
 * `plan` written into it in place of the plan cache. It checks nothing (no
 * witness, no plan file): it opens the loader and runs it, which is the
 * least a launch of this design can cost, the row the cache hit is measured
 * against. Mode detection (section 1) stays, as in every launch.
 */
export function renderBakedShim(config: ShimConfig, arch: Arch, plan: BakedPlan): string {
  const source = renderShim(config, arch)
  const at = source.indexOf(BAKE_BEFORE)
  if (at < 0) throw new Error('the shim has no decide() to bake a plan in front of')
  const baked = c`
#define HOSTSHIM_BAKED_PLAN 1
static const char BAKED_TARGET[] = ${cString(plan.target)}, BAKED_LOADER[] = ${cString(plan.loader)},
	BAKED_LP[] = ${cString(plan.libraryPath)};

static int baked_plan(struct plan *p, struct stat *st)
{
	int fd = openat(AT_FDCWD, BAKED_LOADER, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);

	(void)plan_load;	/* left out of this build, not out of the source */
	if (fd < 0 || fstat(fd, st) < 0)
		bail(WHAT_LOADER_BAD, BAKED_LOADER, errno);
	p->target = BAKED_TARGET;
	p->loader = BAKED_LOADER;
	p->lp = BAKED_LP;
	p->direct = 0;
	p->argv0 = ${cBool(plan.argv0)};
	plan_why = "baked";
	return fd;
}
`.text
  return source.slice(0, at) + baked + source.slice(at)
}

/** The generated C source for one architecture. Deterministic. */
export function renderShim(config: ShimConfig, arch: Arch): string {
  return renderSource(config, arch, planCacheId(config, arch))
}

/**
 * What a shim's plan cache files carry to say they are its own: the first
 * 32 hex digits of the sha256 of its C source (with this value zeros), so
 * that any change of config, architecture, mode or hostshim itself makes
 * the old files unusable. launcher/plan.ts checks it too.
 */
export function planCacheId(config: ShimConfig, arch: Arch): string {
  return createHash('sha256').update(renderSource(config, arch, NO_PLAN_ID)).digest('hex').slice(0, 32)
}

function renderSource(config: ShimConfig, arch: Arch, planId: string): string {
  return c`/*
 * Generated by hostshim ${cInt(VERSION_PARTS[0])}.${cInt(VERSION_PARTS[1])}.${cInt(VERSION_PARTS[2])}; do not edit.
 * Runs a host binary through the host's own dynamic loader, found under the
 * host root, so that it works in containers whose C library is older or
 * missing. The algorithm: shim/README.md in hostshim's sources.
 */
#define _GNU_SOURCE
${runtimeBlock(arch)}

${configBlock(config, arch, planId)}

${markNote(config, arch)}

${failures()}
${STACK_C}
${chainloadBlock(config, arch)}
${BODY}${RUNTIME_END}`.text
}

/*
 * The stack: the kernel starts a program whose arguments and environment
 * take up to a quarter of the stack's rlimit (at least 128 KiB, however small
 * the limit), so the shim cannot count on room for a second copy of their
 * pointers there. Before the main() below and chainload() put one on the
 * stack, they ask stack_fits(); a small copy (the usual case) costs no
 * syscall.
 */
const STACK_C = c`
enum {
	STACK_SMALL = 4096,		/* bytes the shim puts on the stack without asking */
	STACK_SPARE = 64 * 1024,	/* left below a large copy: the shim's calls, the loader's start */
};

/*
 * Whether bytes more fit on the stack below here: its rlimit less what is
 * in use, from the top of the kernel's initial stack (the program's file
 * name, AT_EXECFN, is its last string) down to here.
 */
static int stack_fits(unsigned long bytes)
{
	unsigned long pg = getauxval(AT_PAGESZ), fn = getauxval(AT_EXECFN), here = (unsigned long)&pg, top;
	struct rlimit rl;

	if (bytes <= STACK_SMALL)
		return 1;
	if (getrlimit(RLIMIT_STACK, &rl) < 0 || rl.rlim_cur == RLIM_INFINITY || !fn)
		return 1;
	top = (fn + strlen((const char *)fn) + pg) & -pg;
	return top - here < rl.rlim_cur && bytes + STACK_SPARE <= rl.rlim_cur - (top - here);
}
`

const VERSION_PARTS = VERSION.split('.').map(Number) as [number, number, number]

/*
 * strerror(3) for the errors the shim can report, from the plan model's
 * table: the two cannot disagree, and musl's full table would be 2.5 KiB of
 * shim.
 */
function reasons(): CCode {
  const entries = Object.entries(STRERROR)
  let at = 0
  const offsets = entries.map(([, text]) => {
    const here = at
    at += Buffer.byteLength(text) + 1
    return cInt(here)
  })
  return c`/* Each errno the shim reports, and where its text starts in REASON_TEXT: a table, smaller than a switch. */
static const unsigned char REASON_ERR[] = { ${CCode.join(entries.map(([name], i) => c`${i ? c`, ` : c``}${cConstant(name)}`))} };
static const unsigned short REASON_AT[] = { ${CCode.join(offsets.map((o, i) => c`${i ? c`, ` : c``}${o}`))} };
static const char REASON_TEXT[] = ${cStringList(entries.map(([, text]) => text))};

static const char *reason(int err)
{
	unsigned int i;

	for (i = 0; i < sizeof(REASON_ERR); i++)
		if (REASON_ERR[i] == err)
			return REASON_TEXT + REASON_AT[i];
	return "No error information";
}`
}

const REASONS = reasons()

// The program itself: no config values below this line.
const BODY = c`
#if WIDE
typedef Elf64_Ehdr Ehdr;
typedef Elf64_Phdr Phdr;
typedef Elf64_Shdr Shdr;
#else
typedef Elf32_Ehdr Ehdr;
typedef Elf32_Phdr Phdr;
typedef Elf32_Shdr Shdr;
#endif

/*
 * One getdents64(2) record (the kernel's linux_dirent64). The shim's own
 * type: musl's struct dirent has this layout, glibc's does not on 32-bit.
 */
struct dent {
	unsigned long long ino;
	long long off;
	unsigned short reclen;
	unsigned char type;
	char name[];
};

enum {
	MAX_LINKS = 40,		/* the kernel's limit, then ELOOP */
	MAX_CONF = 64 * 1024,	/* bytes read of one ld.so.conf file */
	MAX_DEPTH = 8,		/* ld.so.conf include nesting */
	MAX_CONF_FILES = 64,	/* ld.so.conf files read in all: a hostile tree cannot make it more */
	MAX_DIRS = 128,		/* library path entries */
	MAX_MATCHES = 256,	/* files one include pattern may name */
	MAX_INTERP = 4096,	/* PATH_MAX: binfmt_elf refuses a longer PT_INTERP */
	MAX_PHDRS = 65536,	/* bytes: binfmt_elf refuses a larger header table */
	MAX_SCAN = 16 << 20,	/* bytes of a loader searched for "--argv0" */
	MAX_SHDRS = 128,	/* section headers read to find a loader's .rodata */
	MAX_NAMES = 16384,	/* bytes of file names one include pattern may keep */
	DENTS = 4096,		/* bytes of directory entries per getdents(2) */
	MAX_SEEN = 64,		/* directories and links resolve() remembers */
	SEEN_BYTES = 3072,	/* ... and the bytes of their paths and link texts */
};

/*
 * The run's work budget: one unit per resolve() and per lstat(), and per
 * directory entry an include pattern is tried on, one plus the pattern's
 * length. Three resolutions at their worst (1 + 41 * 2048 lstats each: the
 * path and 40 link texts of 2048 components) fit with room to spare, so
 * target and loader never run out; only a hostile ld.so.conf can, which
 * would otherwise keep the shim busy for minutes: 64 files of lines each
 * naming a 40-link chain. Spent, resolve() fails with ELOOP and include
 * stops listing.
 */
static long budget = 1 << 18;

static int spend(long units)
{
	if ((budget -= units) < 0) {
		errno = ELOOP;
		return -1;
	}
	return 0;
}

/*
 * Memory. The first touch of a page is a page fault, and on a virtual
 * machine one fault costs about as much as ten of the shim's syscalls. So
 * the shim's working memory is three objects, laid out so that a launch
 * touches few pages of them: the small state, an arena used as a stack,
 * and the buffers that a launch which finds its plan leaves alone. A buffer is taken
 * at the arena's top with all the room it may need and, once filled, keeps
 * only what it holds (keep()), so that the next one starts right after it
 * instead of a page further on; a caller gives back what it kept by setting
 * the top back. The arena's size is the sum of what can be kept at once,
 * each kept string at most PATH_MAX bytes (a multiple of KEEP_ALIGN): what
 * main() keeps (the target, its interpreter, the usr-merged loader name,
 * the loader, its directory; for a $ORIGIN target, also the path asked
 * for), and per ld.so.conf include level a file's text, two paths, matched
 * names and their index; plus the largest buffer
 * used and given back on top of all that (the headers and interpreter
 * read_elf() reads; more than resolve()'s path and link, or a batch of
 * directory entries). test/integration/arena.test.ts comes close to it.
 */
enum {
	KEEP_ALIGN = 16,
	LEVEL = MAX_CONF + MAX_NAMES + 2 * PATH_MAX + MAX_MATCHES * sizeof(char *) + 5 * KEEP_ALIGN,
	ARENA = (5 + ORIGIN) * PATH_MAX + (MAX_DEPTH + 1) * LEVEL + MAX_PHDRS + MAX_INTERP,
};
static struct {
	/* "" on the host, HOST_ROOT in a container: every host path is opened below it. */
	const char *root;
	size_t root_len, top, line_len, lp_len, seen_used;
	/* The root, opened once (see at()); AT_FDCWD on the host. */
	int rootfd;
	int n_seen, n_dirs, n_conf, wrong_arch;
} m;
/*
 * Sections named .bss.~RANK...: the chainload shim's linker script
 * (launcher/toolchain.ts) puts them after every other one of the bss,
 * sorted by name, so by rank: after musl's own globals, which every launch
 * writes, so that those, the small state above and the arena's first KiB
 * share a page or two. Another link keeps them in its bss, in no particular
 * order.
 *
 * The arena first: a launch that finds its plan keeps the plan file and
 * (chainload) the loader's headers at its start, a few KiB, and touches
 * nothing further on. An object of its own, so that a sanitizer sees a
 * buffer overrun past its end.
 */
static char arena[ARENA] __attribute__((section(".bss.~0arena"), aligned(KEEP_ALIGN)));
/* The buffers a launch that finds its plan leaves alone (but for its debug output or an error's line). */
static struct {
	/* What resolve() has learnt of directories and links: see there. */
	struct {
		unsigned short at, len, link_len;
		unsigned char is_link;
	} seen[MAX_SEEN];
	unsigned short entry_len[MAX_DIRS];
	/* What resolve() has left to walk. */
	char todo[PATH_MAX];
	/* The library path, built as "dir:dir:...", and the length of each entry above. */
	char lp[MAX_DIRS * PATH_MAX];
	/* One line of stderr is built here and written with a single write(2). */
	char line[3 * PATH_MAX];
	char seen_text[SEEN_BYTES];
} big __attribute__((section(".bss.~1big")));
${PLAN_CACHE_STATE}
/*
 * A full path (root + host path) as the syscalls take it: relative to the
 * open root, so that the kernel does not walk the root's own components
 * (/run/host) again in each of them; as it is on the host.
 */
static const char *at(const char *full)
{
	const char *rel = full + m.root_len;

	if (m.rootfd == AT_FDCWD)
		return full;
	rel += *rel == '/';
	return *rel ? rel : ".";
}

/* strcpy(3) without musl's word-at-a-time one: a third of a KiB of shim. */
static char *cpy(char *dest, const char *src)
{
	return memcpy(dest, src, strlen(src) + 1);
}

/* The arena's top: where the next buffer goes. */
static char *top(void)
{
	return arena + m.top;
}

/* Keep the first n bytes at the top; returns them. */
static char *keep(size_t n)
{
	char *p = top();

	m.top += (n + KEEP_ALIGN - 1) & -(size_t)KEEP_ALIGN;
	return p;
}

/* Keep the string written at the top, with its NUL; returns it. */
static char *keep_string(void)
{
	return keep(strlen(top()) + 1);
}

static void put(const char *s)
{
	size_t n = strlen(s);

	if (n > sizeof(big.line) - 1 - m.line_len)
		n = sizeof(big.line) - 1 - m.line_len;
	memcpy(big.line + m.line_len, s, n);
	m.line_len += n;
}

/* b as two lower-case hex digits at out. */
static void hex2(char *out, unsigned char b)
{
	out[0] = "0123456789abcdef"[b >> 4];
	out[1] = "0123456789abcdef"[b & 15];
}

/* Debug output must survive newlines and odd bytes in paths and arguments. */
static void put_escaped(const char *s)
{
	/* Filled in, not initialised: s390x reaches a local array's initial copy through a GOT entry that lld leaves unrelocated. */
	char e[5];

	e[0] = '\\';
	e[1] = 'x';
	e[4] = 0;
	for (; *s; s++) {
		unsigned char b = (unsigned char)*s;

		if (b >= 0x20 && b <= 0x7e && b != '\\') {
			e[3] = (char)b;
			put(e + 3);
		} else {
			hex2(e + 2, b);
			put(e);
		}
	}
}

/* One line of stderr: "NAME: key: value", value escaped, and ": more" when there is more. */
static void line(const char *key, const char *value, const char *more)
{
	put(NAME);
	put(": ");
	put(key);
	put(": ");
	put_escaped(value);
	if (more) {
		put(": ");
		put(more);
	}
	big.line[m.line_len++] = '\n';
	(void)!write(2, big.line, m.line_len);
	m.line_len = 0;
}

${REASONS}

/*
 * The one way to fail: "NAME: what: path: reason", then 127 or 126. The path
 * is escaped as in debug output: a newline in a host path must not forge a
 * second message.
 */
static _Noreturn void bail(const char *what, const char *path, int err)
{
	line(what, path, reason(err));
	_exit(err == ENOENT || err == ENOTDIR ? 127 : 126);
}

/* root + path at the arena's top, for messages that name what was asked for. */
static const char *in_root(const char *path)
{
	char *out = top();
	size_t n = strlen(path);

	memcpy(out, m.root, m.root_len);
	if (n > PATH_MAX - 1 - m.root_len)
		n = PATH_MAX - 1 - m.root_len;
	memcpy(out + m.root_len, path, n);
	out[m.root_len + n] = 0;
	return out;
}

/*
 * What resolve() has learnt of directories and links on its way, so that the
 * next path through /usr/lib or /lib -> usr/lib costs no syscall: a dozen
 * host paths share a handful of components, and the library path names the
 * same directories again and again. Kept: links, with their text, and
 * directories; only successes. The work budget is spent as if each were
 * looked up again, so the shim and the model count alike.
 */
static int seen_find(const char *full, size_t len)
{
	int i;

	for (i = 0; i < m.n_seen; i++)
		if (big.seen[i].len == len && !memcmp(big.seen_text + big.seen[i].at, full, len))
			return i;
	return -1;
}

static void seen_add(const char *full, size_t len, const char *link, size_t link_len, int is_link)
{
	int i = m.n_seen;

	if (i == MAX_SEEN || len + link_len > SEEN_BYTES - m.seen_used)
		return;
	big.seen[i].at = (unsigned short)m.seen_used;
	big.seen[i].len = (unsigned short)len;
	big.seen[i].link_len = (unsigned short)link_len;
	big.seen[i].is_link = (unsigned char)is_link;
	memcpy(big.seen_text + m.seen_used, full, len);
	memcpy(big.seen_text + m.seen_used + len, link, link_len);
	m.seen_used += len + link_len;
	m.n_seen++;
}

/*
 * Resolve a host path inside the root, the way openat2(RESOLVE_IN_ROOT)
 * would: an absolute symlink target starts again at the root, and ".." never
 * climbs above it. Following Debian's absolute
 * /lib64/ld-linux-x86-64.so.2 -> /lib/x86_64-linux-gnu/... naively from a
 * container would land in the container's /lib: the wrong C library.
 * out: PATH_MAX bytes, not above the arena's top. On success it holds the
 * full path and *st the last component's lstat; for a directory resolve()
 * had seen before, only its type.
 */
static int resolve(const char *path, char *out, struct stat *st)
{
	/* A link's text: a page above the arena's top, where read_conf()'s buffers are anyway. */
	char *todo = big.todo, *p = todo, *link = top() + PATH_MAX;
	size_t len = m.root_len, links = 0;
	int stale = 1;	/* *st does not describe out yet */
	int hit;

	if (strlen(path) >= PATH_MAX) {
		errno = ENAMETOOLONG;
		return -1;
	}
	if (spend(1) < 0)
		return -1;
	cpy(todo, path);
	memcpy(out, m.root, m.root_len);
	for (;;) {
		char *end;
		size_t n;

		while (*p == '/')
			p++;
		if (!*p)
			break;
		end = strchrnul(p, '/');
		n = (size_t)(end - p);
		if (n == 1 && p[0] == '.') {
			p = end;
			continue;
		}
		if (n == 2 && p[0] == '.' && p[1] == '.') {
			while (len > m.root_len && out[len - 1] != '/')
				len--;
			if (len > m.root_len)
				len--;
			stale = 1;
			p = end;
			continue;
		}
		if (len + 1 + n > PATH_MAX - 1) {
			errno = ENAMETOOLONG;
			return -1;
		}
		out[len] = '/';
		memcpy(out + len + 1, p, n);
		out[len + 1 + n] = 0;
		if (spend(1) < 0)
			return -1;
		hit = seen_find(out, len + 1 + n);
		if (hit < 0 && fstatat(m.rootfd, at(out), st, AT_SYMLINK_NOFOLLOW) < 0) {
			note(out, len + 1 + n, 0, 0);
			return -1;
		}
		if (hit < 0)
			note(out, len + 1 + n, st, 0);
		if (hit >= 0 ? big.seen[hit].is_link : S_ISLNK(st->st_mode)) {
			size_t rest = strlen(end);
			ssize_t k;

			if (++links > MAX_LINKS) {
				errno = ELOOP;
				return -1;
			}
			if (hit >= 0) {
				k = big.seen[hit].link_len;
				memcpy(link, big.seen_text + big.seen[hit].at + big.seen[hit].len, (size_t)k);
			} else {
				k = readlinkat(m.rootfd, at(out), link, PATH_MAX);
				if (k < 0)
					return -1;
				seen_add(out, len + 1 + n, link, (size_t)k, 1);
			}
			if ((size_t)k + rest > PATH_MAX - 1) {
				errno = ENAMETOOLONG;
				return -1;
			}
			/* The link's text goes in front of what is left to walk. */
			memmove(todo + k, end, rest + 1);
			memcpy(todo, link, (size_t)k);
			p = todo;
			/* An empty text (a FUSE or 9p file system can have one) is relative: link[0] is stale. */
			if (k > 0 && link[0] == '/')
				len = m.root_len;
			stale = 1;
			continue;
		}
		len += 1 + n;
		p = end;
		if (hit >= 0) {
			/* A directory seen before: its type is all anyone asks of it. */
			st->st_mode = S_IFDIR;
			stale = 0;
			continue;
		}
		if (*end && !S_ISDIR(st->st_mode)) {
			errno = ENOTDIR;
			return -1;
		}
		if (S_ISDIR(st->st_mode))
			seen_add(out, len, "", 0, 0);
		stale = 0;
	}
	/* The root itself is "root/": one byte longer than the root, and it must fit too. */
	if (len == m.root_len) {
		if (len >= PATH_MAX - 1) {
			errno = ENAMETOOLONG;
			return -1;
		}
		out[len++] = '/';
	}
	out[len] = 0;
	/* After "..", or for the root: nothing was lstat'ed last. */
	if (!stale)
		return 0;
	if (fstatat(m.rootfd, at(out), st, 0) < 0) {
		note(out, len, 0, 1);
		return -1;
	}
	note(out, len, st, 1);
	return 0;
}

/*
 * Check an ELF file the way the kernel's binfmt_elf would before running it,
 * and find its first PT_INTERP. Returns 1 with the interpreter at the
 * arena's top, 0 for a file without one (static), -1 with errno ENOEXEC;
 * m.wrong_arch is set when the file was refused for its machine alone.
 */
static int read_elf(int fd)
{
	Phdr *ph = (Phdr *)top();
	char *interp;
	Ehdr eh;
	size_t size, i;

	if (pread(fd, &eh, sizeof(eh), 0) != (ssize_t)sizeof(eh))
		goto bad;
	if (memcmp(eh.e_ident, ELFMAG, SELFMAG))
		goto bad;
	if (eh.e_ident[EI_CLASS] != ELF_CLASS || eh.e_ident[EI_DATA] != ELF_DATA) {
		/* A well-formed identity of another kind of machine: 32-bit, big-endian... */
		m.wrong_arch = (eh.e_ident[EI_CLASS] == ELFCLASS32 || eh.e_ident[EI_CLASS] == ELFCLASS64) &&
			     (eh.e_ident[EI_DATA] == ELFDATA2LSB || eh.e_ident[EI_DATA] == ELFDATA2MSB);
		goto bad;
	}
	if (eh.e_type != ET_EXEC && eh.e_type != ET_DYN)
		goto bad;
	/* Handing another architecture's file to this one's loader would only crash later. */
	if (eh.e_machine != ELF_MACHINE) {
		m.wrong_arch = 1;
		goto bad;
	}
	size = (size_t)eh.e_phnum * eh.e_phentsize;
	if (eh.e_phentsize != sizeof(Phdr) || eh.e_phnum < 1 || size > MAX_PHDRS)
		goto bad;
	if (pread(fd, ph, size, (off_t)eh.e_phoff) != (ssize_t)size)
		goto bad;
	for (i = 0; i < eh.e_phnum; i++) {
		if (ph[i].p_type != PT_INTERP)
			continue;
		/* Only the first PT_INTERP counts; its last byte must be NUL. */
		if (ph[i].p_filesz < 2 || ph[i].p_filesz > MAX_INTERP)
			goto bad;
		/* Right after the headers, then down to the top, where the headers were. */
		interp = (char *)ph + size;
		if (pread(fd, interp, ph[i].p_filesz, (off_t)ph[i].p_offset) != (ssize_t)ph[i].p_filesz ||
		    interp[ph[i].p_filesz - 1])
			goto bad;
		memmove(top(), interp, ph[i].p_filesz);
		return 1;
	}
	return 0;
bad:
	errno = ENOEXEC;
	return -1;
}

/*
 * Open a resolved file that is to be run: a regular, executable ELF file of
 * this architecture. The loader does not check the exec bit of the program it
 * loads, so the shim does, as the kernel would. Every fact is the open
 * file's, so that a file swapped in after the walk cannot pass another's
 * checks: *st (the walk's lstat on entry) becomes its fstat. Returns the fd;
 * *has_interp tells whether its interpreter is at the arena's top.
 */
static int open_program(const char *path, struct stat *st, int *has_interp)
{
	int fd, err = EACCES;

	/* The walk's lstat refuses most for free, and no fifo is ever opened by it. */
	if (S_ISDIR(st->st_mode)) {
		errno = EISDIR;
		return -1;
	}
	if (!S_ISREG(st->st_mode)) {
		errno = EACCES;
		return -1;
	}
	/*
	 * The walk resolved every link: one put in its place since is ELOOP
	 * (O_NOFOLLOW), and a fifo does not block the shim (O_NONBLOCK).
	 * openat(), not open(): musl's open() follows O_CLOEXEC with an fcntl().
	 */
	fd = openat(m.rootfd, at(path), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
	if (fd < 0)
		return -1;
	if (fstat(fd, st) < 0) {
		err = errno;
		goto fail;
	}
	if (S_ISDIR(st->st_mode))
		err = EISDIR;
	/* X_OK of the open file (faccessat2, Linux 5.8); an older kernel says EINVAL: of the path. */
	if (!S_ISREG(st->st_mode) ||
	    (faccessat(fd, "", X_OK, AT_EMPTY_PATH) < 0 && (errno != EINVAL || access(path, X_OK) < 0)))
		goto fail;
	*has_interp = read_elf(fd);
	if (*has_interp >= 0)
		return fd;
	err = errno;
fail:
	close(fd);
	errno = err;
	return -1;
}

/*
 * Search bytes [off, off + len) of a file for "--argv0", a page at a time
 * through one small buffer: mapping the whole loader cost more page faults
 * than the rest of the shim's work together. memchr + memcmp, because
 * memmem(3) would cost a kilobyte of shim.
 */
static int scan_argv0(int fd, off_t off, size_t len)
{
	char *buf = top();
	size_t carry = 0;

	if (len > MAX_SCAN)
		len = MAX_SCAN;
	while (len) {
		ssize_t got = pread(fd, buf + carry, len < 4096 ? len : 4096, off);
		const char *p, *end;
		size_t have;

		if (got <= 0)
			return 0;
		off += got;
		len -= (size_t)got;
		have = carry + (size_t)got;
		if (have >= 7)
			for (p = buf, end = buf + have - 6; p < end && (p = memchr(p, '-', (size_t)(end - p))); p++)
				if (!memcmp(p, "--argv0", 7))
					return 1;
		/* A match may straddle two reads: carry the last six bytes over. */
		carry = have < 6 ? have : 6;
		memmove(buf, buf + have - carry, carry);
	}
	return 0;
}

/*
 * The loader's .rodata, where its option strings are: a tenth of the file.
 * Leaves off and len alone when the section headers do not say.
 */
static void find_rodata(int fd, off_t *off, size_t *len)
{
	Shdr *sh = (Shdr *)top();
	char *names;
	size_t size, i;
	ssize_t got;
	Ehdr eh;

	if (pread(fd, &eh, sizeof(eh), 0) != (ssize_t)sizeof(eh) || !eh.e_shoff ||
	    eh.e_shentsize != sizeof(Shdr) || eh.e_shnum < 1 || eh.e_shnum > MAX_SHDRS ||
	    eh.e_shstrndx >= eh.e_shnum)
		return;
	size = (size_t)eh.e_shnum * sizeof(Shdr);
	if (pread(fd, sh, size, (off_t)eh.e_shoff) != (ssize_t)size)
		return;
	/* The section names right after the headers: 4 KiB of them at most. */
	names = (char *)sh + size;
	size = sh[eh.e_shstrndx].sh_size < 4095 ? sh[eh.e_shstrndx].sh_size : 4095;
	got = pread(fd, names, size, (off_t)sh[eh.e_shstrndx].sh_offset);
	if (got < 0)
		return;
	names[got] = 0;
	for (i = 0; i < eh.e_shnum; i++)
		if (sh[i].sh_type == SHT_PROGBITS && sh[i].sh_name < (size_t)got &&
		    !strcmp(names + sh[i].sh_name, ".rodata")) {
			*off = (off_t)sh[i].sh_offset;
			*len = (size_t)sh[i].sh_size;
			return;
		}
}

/* --argv0 came with glibc 2.33; older loaders (RHEL 8, Ubuntu 20.04) reject it. */
static int knows_argv0(int fd, const struct stat *st)
{
	off_t off = 0;
	size_t len = (size_t)st->st_size;

	if (!PASS_ARGV0)
		return 0;
	find_rodata(fd, &off, &len);
	return scan_argv0(fd, off, len);
}

/* strpbrk(3) without the bitmap tables of musl's strcspn(). */
static int any_of(const char *s, const char *set)
{
	for (; *s; s++)
		if (strchr(set, *s))
			return 1;
	return 0;
}

/* Entry by entry: a hostile ld.so.conf may name a directory thousands of times. */
static int listed(const char *full, size_t n)
{
	const char *p = big.lp;
	int i;

	for (i = 0; i < m.n_dirs; p += big.entry_len[i++] + 1)
		if (big.entry_len[i] == n && !memcmp(p, full, n))
			return 1;
	return 0;
}

static void add_dir(const char *path)
{
	char *full = top();
	struct stat st;
	size_t n;

	if (m.n_dirs >= MAX_DIRS || resolve(path, full, &st) < 0)
		return;
	/*
	 * resolve() stops at the last component: a directory, not a link to one.
	 * The loader splits --library-path at ":" and ";" and expands "$ORIGIN"
	 * and friends: a directory with any of them cannot be passed on.
	 */
	if (!S_ISDIR(st.st_mode) || any_of(full, ":;$"))
		return;
	n = strlen(full);
	if (listed(full, n))
		return;
	if (m.lp_len)
		big.lp[m.lp_len++] = ':';
	memcpy(big.lp + m.lp_len, full, n + 1);
	m.lp_len += n;
	big.entry_len[m.n_dirs++] = (unsigned short)n;
}

static void read_conf(const char *path, int depth);

/* One element of a glob pattern (not "*") against one byte: past the element, or 0. */
static const char *one(const char *p, unsigned char c)
{
	if (*p == '?')
		return p + 1;
	if (*p == '[') {
		const char *q = p + 1;
		int neg = *q == '!' || *q == '^', hit = 0;

		q += neg;
		/* A "]" first in the set is a member; an unclosed "[" is literal. */
		do {
			unsigned char lo = (unsigned char)*q, hi = lo;

			if (!*q)
				break;
			/* A range the pattern's end cuts off: glibc's fnmatch() never matches. */
			if (q[1] == '-' && !q[2])
				return 0;
			if (q[1] == '-' && q[2] != ']') {
				hi = (unsigned char)q[2];
				q += 2;
			}
			hit |= lo <= c && c <= hi;
		} while (*++q != ']');
		if (*q == ']')
			return hit != neg ? q + 1 : 0;
	}
	/* A lone "\" at the end matches nothing, as in glibc. */
	if (*p == '\\')
		p++;
	return (unsigned char)*p == c ? p + 1 : 0;
}

/*
 * glob(3)'s matching of one file name, in bytes: * ? [set] [!set] [^set],
 * ranges, \ quotes the next byte. Without GLOB_PERIOD a leading dot must
 * be matched by a dot. fnmatch(3) would do, but musl's drags in the wide
 * character tables: three times the size of the rest of the shim.
 * Every element but "*" takes one byte, so on a mismatch only the last "*"
 * needs to take one more: at most name x pattern steps, where trying every
 * "*" again is exponential in their number (a hostile ld.so.conf could
 * stall the shim with "include *a*a*a*a*a*a*a*a*a*a*b").
 */
static int match(const char *p, const char *s)
{
	const char *star = 0, *retry = 0, *next;

	if (*s == '.' && *p != '.' && (*p != '\\' || p[1] != '.'))
		return 0;
	for (;;) {
		if (*p == '*') {
			star = ++p;
			retry = s;
		} else if (*p && *s && (next = one(p, (unsigned char)*s))) {
			p = next;
			s++;
		} else if (!*p && !*s) {
			return 1;
		} else if (star && *retry) {
			p = star;
			s = ++retry;
		} else {
			return 0;
		}
	}
}

/*
 * One pattern of an "include" line, as glibc's ldconfig reads it: relative to
 * the including file's directory, matches in sorted order. Wildcards are
 * honoured in the last component only.
 */
static void include(const char *pattern, const char *from, int depth)
{
	size_t mark = m.top, dir_len, used = 0, n = 0, i, j, cost;
	char *path = top(), *full, *names, **match_;
	const char *base;
	struct stat st;
	long got;
	int fd;

	if (pattern[0] == '/') {
		if (strlen(pattern) >= PATH_MAX)
			return;
		cpy(path, pattern);
	} else {
		const char *slash = strrchr(from, '/');
		size_t head = (size_t)(slash - from) + 1;

		if (head + strlen(pattern) >= PATH_MAX)
			return;
		memcpy(path, from, head);
		cpy(path + head, pattern);
	}
	keep_string();
	base = strrchr(path, '/') + 1;
	if (!any_of(base, "*?[")) {
		read_conf(path, depth + 1);
		goto out;
	}
	dir_len = (size_t)(base - path);
	cost = strlen(base) + 1;
	path[dir_len - 1] = 0;
	full = top();
	if (resolve(dir_len > 1 ? path : "/", full, &st) < 0 || !S_ISDIR(st.st_mode))
		goto out;
	path[dir_len - 1] = '/';
	fd = openat(m.rootfd, at(full), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		goto out;
	/*
	 * The names that match, one after the other at the top; each batch of
	 * directory entries is read right after them, and a matching name moves
	 * down to join them (never past its own entry: a name is shorter than it).
	 */
	names = top();
	for (;;) {
		char *buf = names + ((used + 7) & -(size_t)8);
		long off = 0;

		/*
		 * getdents64(2), not opendir(3): no malloc in the shim. musl calls
		 * its wrapper getdents(), glibc (2.30 and later) getdents64().
		 */
#ifdef __GLIBC__
		got = getdents64(fd, buf, DENTS);
#else
		got = getdents(fd, (void *)buf, DENTS);
#endif
		if (got <= 0)
			break;
		while (off < got) {
			struct dent *de = (struct dent *)(buf + off);
			size_t len = strlen(de->name) + 1;

			off += de->reclen;
			if (!strcmp(de->name, ".") || !strcmp(de->name, ".."))
				continue;
			/* Matching costs up to the pattern's length per byte of name. */
			if (spend((long)cost) < 0)
				goto listed_all;
			if (n == MAX_MATCHES || len > MAX_NAMES - used || !match(base, de->name))
				continue;
			memmove(names + used, de->name, len);
			used += len;
			n++;
		}
	}
listed_all:
	close(fd);
	keep(used);
	match_ = (char **)keep(n * sizeof(char *));
	for (i = 0; i < n; i++, names += strlen(names) + 1)
		match_[i] = names;
	/* Few names: an insertion sort is smaller than qsort(3). */
	for (i = 1; i < n; i++)
		for (j = i; j > 0 && strcmp(match_[j - 1], match_[j]) > 0; j--) {
			char *t = match_[j];

			match_[j] = match_[j - 1];
			match_[j - 1] = t;
		}
	for (i = 0; i < n; i++) {
		size_t at = m.top;
		char *file = top();

		if (dir_len + strlen(match_[i]) >= PATH_MAX)
			continue;
		memcpy(file, path, dir_len);
		cpy(file + dir_len, match_[i]);
		keep_string();
		read_conf(file, depth + 1);
		m.top = at;
	}
out:
	m.top = mark;
}

/* glibc's /etc/ld.so.conf syntax: comments, include lines, hwcap lines, dirs. */
static void read_conf(const char *path, int depth)
{
	/*
	 * The text at the arena's top, not on the stack: there, eight nested
	 * includes took 860 KiB of it, and a shim started with a stack limit
	 * under 1 MiB crashed.
	 */
	size_t mark = m.top;
	char *full = top(), *buf, *p, *next;
	struct stat st;
	ssize_t n;
	int fd;

	if (depth > MAX_DEPTH || m.n_conf >= MAX_CONF_FILES || resolve(path, full, &st) < 0 || !S_ISREG(st.st_mode))
		return;
	m.n_conf++;
	fd = openat(m.rootfd, at(full), O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	/* Over the path, which is done with. */
	buf = full;
	n = read(fd, buf, MAX_CONF);
	close(fd);
	if (n < 0)
		return;
	buf[n] = 0;
	keep((size_t)n + 1);
	for (p = buf; p; p = next) {
		char *end, *hash;

		next = strchr(p, '\n');
		if (next)
			*next++ = 0;
		hash = strchr(p, '#');
		if (hash)
			*hash = 0;
		while (*p == ' ' || (*p >= '\t' && *p <= '\r'))
			p++;
		end = p + strlen(p);
		while (end > p && (end[-1] == ' ' || (end[-1] >= '\t' && end[-1] <= '\r')))
			*--end = 0;
		/* memcmp(), not strncmp(): the text is in the arena, with room after it. */
		if (!memcmp(p, "include", 7) && (p[7] == ' ' || p[7] == '\t')) {
			/* Blank-separated patterns, as ldconfig's strsep() loop takes them. */
			for (p += 8;;) {
				char *pat;

				while (*p == ' ' || *p == '\t')
					p++;
				if (!*p)
					break;
				for (pat = p; *p && *p != ' ' && *p != '\t'; p++)
					;
				if (*p)
					*p++ = 0;
				include(pat, path, depth);
			}
		} else if (p[0] == '/') {
			/* "hwcap" lines, and anything else not naming a directory, are skipped. */
			while (end > p + 1 && end[-1] == '/')
				*--end = 0;
			add_dir(p);
		}
	}
	m.top = mark;
}


/* "plan: cached", or "plan: computed (why)", why escaped: "computed (" and ")" escape to themselves. */
static void debug_plan(void)
{
	char *why = top();

	if (!strcmp(plan_why, "cached")) {
		why = (char *)plan_why;
	} else {
		memcpy(why, "computed (", 10);
		memcpy(cpy(why + 10, plan_why) + strlen(plan_why), ")", 2);
	}
	line("plan", why, 0);
}

static void debug(int container, const char *loader, const char *lp, const char *path, char *const *args)
{
	char key[32];
	int i;

	cpy(key, "argv[");

	line("mode", container ? "container" : "host", 0);
	debug_plan();
	line("loader", loader ? loader : "-", 0);
	line("library-path", loader ? lp : "-", 0);
	/* Chainload maps the loader in (no execve); exec execs the loader or the target. */
	line(CHAINLOAD && loader ? "chainload" : "exec", path, 0);
	for (i = 0; args[i]; i++) {
		/* The index's digits, written backwards in front of "]". */
		char num[12], *q = num + sizeof(num) - 2;
		int v = i;

		q[0] = ']';
		q[1] = 0;
		do
			*--q = (char)('0' + v % 10);
		while (v /= 10);
		cpy(key + 5, q);
		line(key, args[i], 0);
	}
}

/* The caller's environment, with the configured variables set. */
static char **environment(char **env, char **out)
{
	const char *set;
	size_t n = 0, k;

	for (; *env; env++) {
		/* A variable the shim sets is left out here: its value comes after. */
		for (set = SET_ENV; *set; set += strlen(set) + 1) {
			k = (size_t)(strchr(set, '=') - set) + 1;
			if (!strncmp(*env, set, k))
				break;
		}
		if (!*set)
			out[n++] = *env;
	}
	for (set = SET_ENV; *set; set += strlen(set) + 1)
		out[n++] = (char *)set;
	out[n] = 0;
	return out;
}

${PLAN_CACHE_IO}

/*
 * For a "$ORIGIN/REL" target: the directory of the shim's resolved
 * executable, with REL after it, kept at the arena's top. /proc/self/exe is
 * what the kernel resolved, so a symbolic link to the shim elsewhere still
 * finds its build directory. Without /proc (some minimal containers), the
 * name the shim was exec'd by (AT_EXECFN), resolved, when it is absolute.
 * Runs before the mode is known: resolve() walks the caller's own root.
 */
static char *origin_path(void)
{
	char *path = top();
	const char *execfn;
	struct stat st;
	ssize_t n = readlink("/proc/self/exe", path, PATH_MAX);
	size_t dir;

	if (n > 0 && n < PATH_MAX && path[0] == '/') {
		path[n] = 0;
	} else {
		int err = n < 0 ? errno : ENAMETOOLONG;

		execfn = (const char *)getauxval(AT_EXECFN);
		if (!execfn || execfn[0] != '/' || resolve(execfn, path, &st) < 0)
			bail(WHAT_ORIGIN, "/proc/self/exe", err);
	}
	dir = (size_t)(strrchr(path, '/') - path) + 1;
	if (dir + strlen(TARGET + sizeof("$ORIGIN")) > PATH_MAX - 1) {
		memcpy(path + dir, TARGET + sizeof("$ORIGIN"), PATH_MAX - 1 - dir);
		path[PATH_MAX - 1] = 0;
		bail(WHAT_TARGET_MISSING, path, ENAMETOOLONG);
	}
	cpy(path + dir, TARGET + sizeof("$ORIGIN"));
	return keep_string();
}

/*
 * The target, resolved in the root and checked: kept at the arena's top,
 * and its interpreter, if it has one, right above it (*has_interp); *fd is
 * the file checked, open.
 */
static char *find_target(const char *asked, int *has_interp, int *fd)
{
	char *target = top();
	struct stat st;

	if (resolve(asked, target, &st) < 0)
		bail(WHAT_TARGET_MISSING, ORIGIN ? asked : in_root(asked), errno);
	keep_string();
	*fd = open_program(target, &st, has_interp);
	if (*fd < 0)
		bail(m.wrong_arch ? WHAT_WRONG_ARCH : WHAT_TARGET_BAD, target, errno);
	return target;
}

extern char **environ;

/*
 * What main() runs, as decide() found it: the loader (0: the target runs
 * directly), with the library path, whether it takes --argv0, and the open
 * file to run, size bytes long.
 */
struct run {
	char *target, *loader, *lp;
	int container, fd, knows;
	unsigned long size;
};

/*
 * The plan, kept or computed. Not inlined: its stack frame (three struct
 * stats) is gone before main() builds the program's vector below its own,
 * so the program's stack starts that much higher.
 */
static __attribute__((noinline)) void decide(struct run *r)
{
	char *target, *loader = 0, *tried, *lp = big.lp;
	const char *host_loader = 0, *dir, *asked = 0;
	struct stat st, top_st;
	struct plan_key key;
	struct plan plan;
	int container = 0, fd, target_fd = -1, has_interp, knows = 0;
	int loader_fd = -1;

	m.root = "";
	m.rootfd = AT_FDCWD;
	/*
	 * Set-user-ID or otherwise privileged: the host loader ignores those bits
	 * anyway, and a host tree that the container can write must not steer a
	 * privileged exec.
	 */
	if (getauxval(AT_SECURE))
		bail(WHAT_SECURE, TARGET, EPERM);
	/* Next to the shim: where the shim is, in the caller's own view. */
	if (ORIGIN)
		asked = origin_path();

	/* A Toolbx host has /run/host -> ../: the same directory as /, so host mode. */
	memset(&top_st, 0, sizeof(top_st));
	if (!stat(HOST_ROOT, &st) && S_ISDIR(st.st_mode) && !stat("/", &top_st) &&
	    (st.st_dev != top_st.st_dev || st.st_ino != top_st.st_ino)) {
		container = 1;
	} else if (REQUIRE_HOST_ROOT) {
		/* For images only: the host's root is not mounted, and host mode is never right. */
		bail(WHAT_NO_HOST_ROOT, HOST_ROOT, stat(HOST_ROOT, &st) ? errno : S_ISDIR(st.st_mode) ? ENOENT : ENOTDIR);
	}
	/*
	 * The root's identity is in the plan cache's key: another host, another
	 * plan. A $ORIGIN target's path asked for is in it too: each build
	 * directory has its own plan.
	 */
	if (PLAN_CACHE && !container && !top_st.st_ino && stat("/", &top_st) < 0)
		memset(&top_st, 0, sizeof(top_st));
	plan_key_of(&key, container, container ? &st : &top_st, asked);
#ifdef HOSTSHIM_BAKED_PLAN
	/* The bench's limit (renderBakedShim()): a plan written into the shim, nothing checked. */
	fd = baked_plan(&plan, &st);
#else
	fd = plan_load(&key, &plan, &st);
#endif
	if (fd >= 0) {
		/* Every witness checked, and fd is the file they describe: the plan the computation would make. */
		target = (char *)plan.target;
		if (plan.direct) {
			target_fd = fd;
		} else {
			host_loader = loader = (char *)plan.loader;
			lp = (char *)plan.lp;
			loader_fd = fd;
		}
		knows = plan.argv0;
	} else {
		plan_record();
		/*
		 * A $ORIGIN target: in the caller's own view, so before the host
		 * root is taken; its witnesses are that view's paths (WIT_CALLER).
		 */
		if (ORIGIN) {
			pc.caller = 1;
			target = find_target(asked, &has_interp, &target_fd);
			pc.caller = 0;
		}
		if (container) {
			m.root = HOST_ROOT;
			m.root_len = sizeof(HOST_ROOT) - 1;
			/* Without it, full paths do. */
			m.rootfd = openat(AT_FDCWD, HOST_ROOT, O_PATH | O_DIRECTORY | O_CLOEXEC);
			if (m.rootfd < 0)
				m.rootfd = AT_FDCWD;
			/* What resolve() learnt of the caller's tree is not the host's. */
			m.n_seen = 0;
			m.seen_used = 0;
		}
		if (!ORIGIN)
			target = find_target(TARGET, &has_interp, &target_fd);
		if (has_interp) {
			char *interp = keep_string();

			/* Built for Toolbx: PT_INTERP already names /run/host/...; take the host path under it. */
			/* memcmp() reads past a shorter interp: still in the arena, and it differs at its NUL. */
			if (!memcmp(interp, HOST_ROOT, sizeof(HOST_ROOT) - 1) && interp[sizeof(HOST_ROOT) - 1] == '/')
				host_loader = interp + sizeof(HOST_ROOT) - 1;
			else if (container)
				host_loader = interp;
		}
		plan_witness_ldcache();

		if (host_loader) {
			int err;

			/* The loader opens the target by its path again: not ours to keep. */
			close(target_fd);
			loader = top();
			if (resolve(host_loader, loader, &st) < 0) {
				err = errno;
				/* Old Toolbx containers mount only parts of the host: try the usr-merged twin. */
				if ((err != ENOENT && err != ENOTDIR) || memcmp(host_loader, "/lib", 4) ||
				    strlen(host_loader) + 4 >= PATH_MAX)
					bail(WHAT_LOADER_MISSING, in_root(host_loader), err);
				tried = top();
				memcpy(tried, "/usr", 4);
				cpy(tried + 4, host_loader);
				keep_string();
				loader = top();
				if (resolve(tried, loader, &st) < 0)
					bail(WHAT_LOADER_MISSING, in_root(host_loader), err);
			}
			keep_string();
			plan_record_done();
			fd = open_program(loader, &st, &has_interp);
			if (fd < 0)
				bail(m.wrong_arch ? WHAT_WRONG_ARCH : WHAT_LOADER_BAD, loader, errno);
			/* Asked even without an argv[0]: the kept plan serves launches that have one. */
			knows = knows_argv0(fd, &st);
			/* Open still: chainload() maps the loader from it; exec mode runs it. */
			loader_fd = fd;

			/* The loader's own directory first: that is where its libc is. */
			tried = top();
			cpy(tried, loader + m.root_len);
			*strrchr(tried, '/') = 0;
			keep_string();
			add_dir(tried[0] ? tried : "/");
			read_conf("/etc/ld.so.conf", 0);
			for (dir = STD_DIRS; *dir; dir += strlen(dir) + 1)
				add_dir(dir);
			for (dir = EXTRA_DIRS; *dir; dir += strlen(dir) + 1)
				add_dir(dir);
		}
		plan_record_done();
		plan.target = target;
		plan.loader = loader;
		plan.lp = lp;
		plan.direct = !host_loader;
		plan.argv0 = knows;
		plan.loader_size = host_loader ? (unsigned long long)st.st_size : 0;
		plan_save(&key, &plan);
	}
	r->target = target;
	r->loader = host_loader ? loader : 0;
	r->lp = lp;
	r->container = container;
	r->fd = host_loader ? loader_fd : target_fd;
	r->knows = knows;
	r->size = (unsigned long)st.st_size;
}

int main(int argc, char **argv)
{
	struct run r;
	const char *path;
	char **env = environ, **auxv = 0;
	size_t env_n = 0, aux_n = 0, n_ptr;
	int argv0, on_stack, i;

	decide(&r);
	argv0 = argc > 0 && r.knows;
	while (environ[env_n])
		env_n++;
	path = r.loader ? r.loader : r.target;
	/*
	 * Chainload: the program's vector (argc, the arguments, the
	 * environment, the auxiliary vector, as the kernel lays them out) is
	 * built right here, and the loader starts below it: its stack starts
	 * where an exec'd loader's would, less this frame and musl's start.
	 * So the kernel's auxiliary vector is counted too: it goes after the
	 * environment.
	 */
	if (CHAINLOAD && r.loader) {
		for (auxv = argv + argc + 1; *auxv; auxv++)
			;
		for (auxv++; auxv[aux_n]; aux_n += 2)
			;
		aux_n += 2;
	}
	/* argc and 16-byte alignment; at most 7 loader arguments, the caller's arguments, and NULL; the environment. */
	n_ptr = 1 + 16 / sizeof(char *) + (size_t)argc + 8 + env_n + N_SET_ENV + 1 + aux_n;
	on_stack = stack_fits(n_ptr * sizeof(char *));
	{
		/* Not on the stack when it has no room for them: a mapping the program never sees. */
		char *small[on_stack ? n_ptr : 1], **vec = small, **args, **a;

		if (!on_stack) {
			vec = mmap(0, n_ptr * sizeof(char *), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
			if (vec == MAP_FAILED)
				bail(WHAT_EXEC, path, ENOMEM);
		}
		/* After argc's place, which is 16-byte aligned, as the loader's stack pointer must be. */
		args = (char **)(((unsigned long)vec + 15) & -16UL) + 1;
		a = args;

		if (r.loader) {
			*a++ = r.loader;
			if (argv0) {
				*a++ = "--argv0";
				*a++ = argv[0];
			}
			*a++ = "--inhibit-cache";
			*a++ = "--library-path";
			*a++ = r.lp;
			*a++ = r.target;
			/* argv[0] is the loader's to replace; argc == 0 has none. */
			i = argc > 0;
		} else {
			i = 0;
		}
		for (; i < argc; i++)
			*a++ = argv[i];
		*a = 0;
		/* Right after the arguments' NULL: chainload() puts the auxiliary vector after it. */
		if (N_SET_ENV != 0 || (CHAINLOAD && r.loader))
			env = environment(environ, a + 1);
		if (getenv(DEBUG_ENV))
			debug(r.container, r.loader, r.lp, path, args);
#if CHAINLOAD
		/*
		 * shim/chainload.ts: map the loader here, no second execve, so no
		 * O_CLOEXEC either: the program must not inherit the root's fd.
		 */
		if (r.loader) {
			if (m.rootfd != AT_FDCWD)
				close(m.rootfd);
			/* The arena's top for the loader's headers: its room is there (MAX_PHDRS alone is more). */
			chainload(r.fd, r.size, args, env, (unsigned long *)auxv, on_stack ? 0 : vec, on_stack ? 0 : n_ptr * sizeof(char *),
				  (unsigned char *)top());
			bail(WHAT_EXEC, path, errno);
		}
#endif
		/* The file checked, not whatever its path names now; Linux < 3.19: the path. */
		syscall(SYS_execveat, r.fd, "", args, env, AT_EMPTY_PATH);
		if (errno == ENOSYS)
			execve(path, args, env);
		bail(WHAT_EXEC, path, errno);
	}
}
`
