/*
 * replay.c - replays a recorded allocation trace (bench/alloc_trace.c) on
 * whatever malloc is loaded, and reports the memory it cost.
 *
 *   replay --prepare TRACE OUT            turn a trace into a replay file
 *   replay [--stop N] [--sizes LO:HI] OUT  replay it (under LD_PRELOAD=LIB)
 *
 * Preparing maps each live pointer of the trace to a small slot number, so
 * that replaying needs only an array indexed by slot, not a table of
 * addresses: the replayer's own memory stays small and the same for every
 * allocator. Replaying allocates, writes every byte it asked for (programs
 * write what they allocate; untouched memory would cost nothing), reallocs
 * and frees as the program did, streaming the file through a fixed buffer.
 * It prints the peak of live bytes, the peak RSS above its own RSS at the
 * start (getrusage's ru_maxrss), and their difference: what the allocator
 * added. --stop N ends after N calls, so that an allocator's statistics
 * (KMM_OPTIONS=stats=1 for kmm) describe that moment; peak_live_at is the
 * call count at the peak of live bytes, the N that stops there. --sizes LO:HI replays
 * only the blocks whose size is above LO and at most HI bytes (a realloc
 * across a bound frees in one range and allocates in the other): which
 * sizes an allocator's overhead comes from.
 *
 * Timing is not the point: one thread replays what may have been many, in
 * the order the trace lock saw the calls.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

enum { OP_MALLOC, OP_REALLOC, OP_FREE };

struct record {
	uint32_t op;
	uint32_t slot;
	uint64_t size;
};

struct header {
	uint64_t magic;
	uint64_t slots;
	uint64_t records;
};

#define REPLAY_MAGIC 0x6b6d6d7265706c31ULL /* "kmmrepl1" */
#define BATCH 4096

static void die(const char *what)
{
	fprintf(stderr, "replay: %s: %s\n", what, strerror(errno));
	exit(1);
}

/* ---- preparing: addresses to slots ------------------------------------ */

struct entry {
	uintptr_t addr;	/* 0: empty */
	uint32_t slot;
};

struct slot_map {
	struct entry *table;
	size_t mask;
	size_t live;
	uint32_t *free_slots;
	size_t nr_free, free_cap;
	uint32_t next_slot;
};

static size_t hash_addr(uintptr_t a, size_t mask)
{
	return (size_t)((a >> 4) * 0x9e3779b97f4a7c15ULL >> 20) & mask;
}

static void map_grow(struct slot_map *m);

static struct entry *map_find(struct slot_map *m, uintptr_t addr)
{
	size_t i = hash_addr(addr, m->mask);

	while (m->table[i].addr && m->table[i].addr != addr)
		i = (i + 1) & m->mask;
	return &m->table[i];
}

static uint32_t map_insert(struct slot_map *m, uintptr_t addr)
{
	struct entry *e;

	if (2 * (m->live + 1) > m->mask + 1)
		map_grow(m);
	e = map_find(m, addr);
	if (!e->addr) {
		e->addr = addr;
		e->slot = m->nr_free ? m->free_slots[--m->nr_free] : m->next_slot++;
		m->live++;
	}
	return e->slot;
}

/* Removes addr (linear probing: re-inserts the rest of its cluster). */
static int map_remove(struct slot_map *m, uintptr_t addr, uint32_t *slot)
{
	struct entry *e = map_find(m, addr);
	size_t i;

	if (!e->addr)
		return 0;
	*slot = e->slot;
	if (m->nr_free == m->free_cap) {
		m->free_cap = m->free_cap ? 2 * m->free_cap : 1024;
		m->free_slots = realloc(m->free_slots, m->free_cap * sizeof(uint32_t));
		if (!m->free_slots)
			die("realloc");
	}
	m->free_slots[m->nr_free++] = e->slot;
	e->addr = 0;
	m->live--;
	for (i = ((size_t)(e - m->table) + 1) & m->mask; m->table[i].addr; i = (i + 1) & m->mask) {
		struct entry moved = m->table[i];

		m->table[i].addr = 0;
		*map_find(m, moved.addr) = moved;
	}
	return 1;
}

static void map_grow(struct slot_map *m)
{
	struct entry *old = m->table;
	size_t old_size = old ? m->mask + 1 : 0;

	m->mask = old ? 2 * old_size - 1 : 4095;
	m->table = calloc(m->mask + 1, sizeof(struct entry));
	if (!m->table)
		die("calloc");
	for (size_t i = 0; i < old_size; i++) {
		if (old[i].addr)
			*map_find(m, old[i].addr) = old[i];
	}
	free(old);
}

static void put_record(FILE *out, uint32_t op, uint32_t slot, uint64_t size, uint64_t *n)
{
	struct record r = { op, slot, size };

	if (fwrite(&r, sizeof(r), 1, out) != 1)
		die("write");
	(*n)++;
}

static int prepare(const char *trace, const char *path)
{
	FILE *in = fopen(trace, "r"), *out = fopen(path, "w");
	struct slot_map m = { 0 };
	struct header h = { REPLAY_MAGIC, 0, 0 };
	char line[256];
	uint32_t slot;

	if (!in)
		die(trace);
	if (!out)
		die(path);
	map_grow(&m);
	if (fwrite(&h, sizeof(h), 1, out) != 1)
		die("write");
	while (fgets(line, sizeof(line), in)) {
		char op;
		unsigned long long a = 0, size = 0, old = 0;

		if (sscanf(line, "%c %llx %llu %llx", &op, &a, &size, &old) < 2)
			continue;
		if (op == 'm') {
			put_record(out, OP_MALLOC, map_insert(&m, a), size, &h.records);
		} else if (op == 'f') {
			/* Frees of blocks the trace never saw allocated are skipped. */
			if (map_remove(&m, (uintptr_t)a, &slot))
				put_record(out, OP_FREE, slot, 0, &h.records);
		} else if (op == 'r') {
			int had = old && map_remove(&m, (uintptr_t)old, &slot);

			if (!a) {
				/*
				 * Failed (old kept: it gets its slot back, the last
				 * one freed) or realloc(old, 0) (old freed).
				 */
				if (had && size)
					map_insert(&m, (uintptr_t)old);
				else if (had)
					put_record(out, OP_FREE, slot, 0, &h.records);
				continue;
			}
			if (had) {
				uint32_t s = map_insert(&m, a);

				put_record(out, OP_REALLOC, slot, s, &h.records);
				put_record(out, OP_REALLOC, s, size, &h.records);
			} else {
				put_record(out, OP_MALLOC, map_insert(&m, a), size, &h.records);
			}
		}
	}
	h.slots = m.next_slot;
	if (fseek(out, 0, SEEK_SET) != 0 || fwrite(&h, sizeof(h), 1, out) != 1 || fclose(out) != 0)
		die(path);
	fclose(in);
	free(m.table);
	free(m.free_slots);
	printf("%s: %llu calls, %llu slots\n", path, (unsigned long long)h.records,
	       (unsigned long long)h.slots);
	return 0;
}

/* ---- replaying -------------------------------------------------------- */

struct block {
	unsigned char *p;
	size_t size;
};

static long rss_now_kib(void)
{
	long pages = 0, resident = 0;
	FILE *f = fopen("/proc/self/statm", "r");

	if (f) {
		if (fscanf(f, "%ld %ld", &pages, &resident) != 2)
			resident = 0;
		fclose(f);
	}
	return resident * (sysconf(_SC_PAGESIZE) / 1024);
}

/*
 * The process's peak RSS in KiB: VmHWM, which starts afresh at exec. Not
 * getrusage's ru_maxrss, which keeps the peak of the process before exec
 * (the shell's fork that ran this, some megabytes): below that, every
 * allocator's peak read the same. ru_maxrss only where VmHWM is missing.
 */
static long peak_rss_kib(void)
{
	char line[256];
	long kib = -1;
	FILE *f = fopen("/proc/self/status", "r");

	while (f && kib < 0 && fgets(line, sizeof(line), f))
		if (sscanf(line, "VmHWM: %ld kB", &kib) != 1)
			kib = -1;
	if (f)
		fclose(f);
	if (kib < 0) {
		struct rusage ru;

		getrusage(RUSAGE_SELF, &ru);
		kib = ru.ru_maxrss;
	}
	return kib;
}

/* The sizes replayed: (lo, hi]; everything when !filtered. */
struct size_range {
	bool filtered;
	size_t lo, hi;
};

static bool in_range(const struct size_range *range, size_t size)
{
	return !range->filtered || (size > range->lo && size <= range->hi);
}

static void do_realloc(struct block *blocks, uint32_t from, uint32_t to, size_t size)
{
	struct block *b = &blocks[from];
	unsigned char *p = realloc(b->p, size);

	if (!p) {
		fprintf(stderr, "replay: realloc(%zu) failed\n", size);
		exit(1);
	}
	if (size > b->size)
		memset(p + b->size, 2, size - b->size);
	blocks[to].p = p;
	blocks[to].size = size;
	if (to != from) {
		b->p = NULL;
		b->size = 0;
	}
}

static void do_malloc(struct block *b, size_t size)
{
	b->p = malloc(size);
	if (!b->p && size) {
		fprintf(stderr, "replay: malloc(%zu) failed\n", size);
		exit(1);
	}
	if (size)
		memset(b->p, 1, size);
	b->size = size;
}

/*
 * A realloc from slot from to slot to, of which only the sizes in range are
 * replayed; out-of-range blocks keep their size (for the next realloc's
 * range) but no memory. Returns the change in live bytes.
 */
static long long replay_realloc(struct block *blocks, const struct size_range *range,
				uint32_t from, uint32_t to, size_t size)
{
	struct block *b = &blocks[from];
	bool was_in = in_range(range, b->size), is_in = in_range(range, size);
	long long before = was_in ? (long long)b->size : 0;

	if (was_in && is_in) {
		do_realloc(blocks, from, to, size);
		return (long long)size - before;
	}
	if (was_in)
		free(b->p);
	b->p = NULL;
	b->size = 0;
	if (is_in)
		do_malloc(&blocks[to], size);
	else
		blocks[to].size = size;
	return (is_in ? (long long)size : 0) - before;
}

static int replay(const char *path, uint64_t stop, const struct size_range *range)
{
	static struct record batch[BATCH];
	struct header h;
	struct block *blocks;
	long peak_kib;
	uint64_t done = 0, peak_at = 0;
	size_t live = 0, peak = 0;
	long start_kib;
	ssize_t n;
	int fd = open(path, O_RDONLY);

	if (fd < 0 || read(fd, &h, sizeof(h)) != sizeof(h) || h.magic != REPLAY_MAGIC) {
		fprintf(stderr, "replay: %s: not a replay file (replay --prepare makes one)\n", path);
		return 1;
	}
	/* Outside the allocator under test, and populated: the same for all. */
	blocks = mmap(NULL, (h.slots + 1) * sizeof(*blocks), PROT_READ | PROT_WRITE,
		      MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	if (blocks == MAP_FAILED)
		die("mmap");
	start_kib = rss_now_kib();
	while (done < stop && (n = read(fd, batch, sizeof(batch))) > 0) {
		for (size_t i = 0; i < (size_t)n / sizeof(*batch) && done < stop; i++, done++) {
			struct record *r = &batch[i];
			struct block *b = &blocks[r->slot];

			if (r->op == OP_MALLOC) {
				if (in_range(range, r->size)) {
					do_malloc(b, r->size);
					live += r->size;
				} else {
					b->size = r->size;
				}
			} else if (r->op == OP_FREE) {
				if (in_range(range, b->size)) {
					live -= b->size;
					free(b->p);
				}
				b->p = NULL;
				b->size = 0;
			} else {
				/* A pair: (old slot, new slot) then (new slot, size). */
				struct record *next = i + 1 < (size_t)n / sizeof(*batch) ? &batch[i + 1] : NULL;
				struct record tail;

				if (!next) {
					if (read(fd, &tail, sizeof(tail)) != sizeof(tail))
						break;
					next = &tail;
				} else {
					i++;
				}
				live += replay_realloc(blocks, range, r->slot, (uint32_t)r->size,
						       next->size);
				done++;
			}
			if (live > peak) {
				peak = live;
				peak_at = done + 1;
			}
		}
	}
	peak_kib = peak_rss_kib();
	printf("calls %llu peak_live_kib %zu peak_rss_kib %ld overhead_kib %ld peak_live_at %llu\n",
	       (unsigned long long)done, peak / 1024, peak_kib - start_kib,
	       peak_kib - start_kib - (long)(peak / 1024), (unsigned long long)peak_at);
	close(fd);
	return 0;
}

/* "LO:HI" in bytes, LO < HI. */
static bool parse_range(const char *arg, struct size_range *range)
{
	char *end;

	range->lo = strtoull(arg, &end, 10);
	if (end == arg || *end != ':')
		return false;
	arg = end + 1;
	range->hi = strtoull(arg, &end, 10);
	range->filtered = true;
	return end != arg && !*end && range->lo < range->hi;
}

static int usage(void)
{
	fprintf(stderr, "usage: replay --prepare TRACE OUT\n"
			"       replay [--stop N] [--sizes LO:HI] OUT\n");
	return 2;
}

int main(int argc, char **argv)
{
	struct size_range range = { .filtered = false };
	uint64_t stop = UINT64_MAX;
	int i = 1;

	if (argc == 4 && !strcmp(argv[1], "--prepare"))
		return prepare(argv[2], argv[3]);
	for (; i + 1 < argc; i += 2) {
		if (!strcmp(argv[i], "--stop"))
			stop = strtoull(argv[i + 1], NULL, 10);
		else if (strcmp(argv[i], "--sizes") || !parse_range(argv[i + 1], &range))
			return usage();
	}
	if (i != argc - 1)
		return usage();
	return replay(argv[i], stop, &range);
}
