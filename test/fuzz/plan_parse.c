/*
 * libFuzzer harness for the plan cache's file parser: plan_parse() over any
 * bytes, as plan_load() reads them from $XDG_RUNTIME_DIR/hostshim.
 *
 * Each input is parsed twice: as it is (almost always refused at the
 * checksum), and with the fields a real file of this shim would have made
 * right (PLAN_ID, the size, the checksum), so that the fuzzer reaches the
 * lengths, strings and witnesses behind them. Findings: a sanitizer report
 * (a read past the input), or a plan accepted whose strings are not
 * NUL-terminated inside the input, or whose head does not say what was
 * parsed.
 */
#include "shim-under-test.h"

static void check_plan(const char *buf, size_t n, const struct plan *p)
{
	const struct plan_head *h = (const struct plan_head *)buf;

	CHECK(p->target >= buf && p->target < buf + n, "target outside the file");
	CHECK(strnlen(p->target, (size_t)(buf + n - p->target)) == h->target_len, "target length");
	CHECK(p->loader >= buf && p->loader < buf + n, "loader outside the file");
	CHECK(strnlen(p->loader, (size_t)(buf + n - p->loader)) == h->loader_len, "loader length");
	CHECK(p->lp >= buf && p->lp < buf + n, "library path outside the file");
	CHECK(strnlen(p->lp, (size_t)(buf + n - p->lp)) == h->lp_len, "library path length");
	CHECK(p->target[0] == '/', "target not absolute");
	CHECK(p->direct || p->loader[0] == '/', "loader not absolute");
	CHECK(h->n_wit <= MAX_WIT, "too many witnesses");
	CHECK(h->origin_len < PATH_MAX, "origin length");
}

/* A $ORIGIN key's path asked for: as long as the head says, of 'o's (a fuzzer writes those easily). */
static char origin[PATH_MAX];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* 8-byte aligned, as the arena's top is. */
	static unsigned long long words[(MAX_PLAN + 16) / 8 + 1];
	char *buf = (char *)words;
	struct plan_head *h = (struct plan_head *)buf;
	struct plan_key key;
	struct plan p;
	unsigned long long sum;
	size_t n = size < MAX_PLAN + 8 ? size : MAX_PLAN + 8;

	memcpy(buf, data, n);
	memset(&key, 0, sizeof(key));
	key.origin = "";
	if (plan_parse(buf, n, &key, &p) == 0)
		check_plan(buf, n, &p);
	if (n < sizeof(*h) + 8 || n > MAX_PLAN)
		return 0;
	/* A file this shim could have written: its id, its key, a whole size and checksum. */
	n &= ~(size_t)7;
	memcpy(h->magic, PLAN_MAGIC, 8);
	h->version = PLAN_VERSION;
	h->size = (unsigned int)n;
	memcpy(h->id, PLAN_ID, 32);
	key.container = h->container;
	key.euid = h->euid;
	key.root_dev = h->root_dev;
	key.root_ino = h->root_ino;
	if (h->origin_len < PATH_MAX) {
		memset(origin, 'o', h->origin_len);
		origin[h->origin_len] = 0;
		key.origin = origin;
		key.origin_len = h->origin_len;
	}
	sum = fnv(0xcbf29ce484222325ull, buf, n - 8);
	memcpy(buf + n - 8, &sum, 8);
	if (plan_parse(buf, n, &key, &p) == 0)
		check_plan(buf, n, &p);
	return 0;
}
