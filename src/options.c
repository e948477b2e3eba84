/*
 * options.c - parses KMM_OPTIONS (see options.h; what users read is the
 * Settings table of docs/malloc.md). Runs inside the first allocation of
 * the process: no malloc, no stdio.
 */
#include "options.h"

#include <fcntl.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"
#include "lock.h"
#include "os.h"

static struct kmm_options opts = { .rseq = -1, .decay_ms = -2 };
static atomic_bool parsed KMM_HOT_DATA;
struct kmm_lock parse_lock KMM_HOT_DATA = KMM_LOCK_INIT;

static bool parse_long(const char *s, size_t len, long *out)
{
	long v = 0;
	bool neg = len && s[0] == '-';

	if (len == (size_t)neg)
		return false;
	for (size_t i = neg; i < len; i++) {
		if (s[i] < '0' || s[i] > '9' || v > 100000000L)
			return false;
		v = v * 10 + (s[i] - '0');
	}
	*out = neg ? -v : v;
	return true;
}

static bool name_is(const char *name, size_t len, const char *want)
{
	return strlen(want) == len && memcmp(name, want, len) == 0;
}

/* One "name=value" (or bare "name", meaning 1). */
static void parse_one(const char *name, size_t nlen, const char *val, size_t vlen)
{
	long v = 1;
	bool numeric = !val || parse_long(val, vlen, &v);

	if (name_is(name, nlen, "log_load") && val && vlen < sizeof(opts.log_load)) {
		memcpy(opts.log_load, val, vlen);
		opts.log_load[vlen] = 0;
	} else if (name_is(name, nlen, "rseq") && numeric && (v == 0 || v == 1)) {
		opts.rseq = (int)v;
	} else if (name_is(name, nlen, "decay_ms") && numeric && v >= -1) {
		opts.decay_ms = v;
	} else if (name_is(name, nlen, "stats") && numeric) {
		opts.stats = v != 0;
	} else if (name_is(name, nlen, "topology") && numeric) {
		opts.topology = v != 0;
	} else if (name_is(name, nlen, "boot_arena") && numeric) {
		opts.no_boot_arena = v == 0;
	} else if (name_is(name, nlen, "thp") && numeric) {
		opts.thp = v != 0;
	} else {
		kmm_report("KMM_OPTIONS: ignoring '%.*s%s%.*s' (unknown option or bad value)",
			   (int)nlen, name, val ? "=" : "", val ? (int)vlen : 0, val ? val : "");
	}
}

static void parse(const char *s)
{
	while (s && *s) {
		const char *end = s + strcspn(s, ", ");
		const char *eq = memchr(s, '=', (size_t)(end - s));

		if (end > s) {
			if (eq)
				parse_one(s, (size_t)(eq - s), eq + 1, (size_t)(end - eq - 1));
			else
				parse_one(s, (size_t)(end - s), NULL, 0);
		}
		s = *end ? end + 1 : end;
	}
}

KMM_HOT_TEXT const struct kmm_options *kmm_options(void)
{
	if (atomic_load_explicit(&parsed, memory_order_acquire))
		return &opts;
	kmm_lock(&parse_lock);
	if (!atomic_load_explicit(&parsed, memory_order_relaxed)) {
		const char *rseq = getenv("KMM_RSEQ");

		if (rseq && rseq[0] == '0')
			opts.rseq = 0;
		parse(getenv("KMM_OPTIONS"));
		atomic_store_explicit(&parsed, true, memory_order_release);
	}
	kmm_unlock(&parse_lock);
	return &opts;
}

KMM_HOT_TEXT void kmm_options_log_load(void)
{
	const struct kmm_options *o = kmm_options();
	char exe[256];
	ssize_t n;
	int fd;

	if (!o->log_load[0])
		return;
	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	exe[n > 0 ? n : 0] = 0;
	fd = os_open(o->log_load, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	if (fd < 0)
		return;
	kmm_dprint(fd, "%d %s\n", (int)getpid(), exe);
	os_close(fd);
}
