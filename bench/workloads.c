/*
 * workloads.c - allocation workloads that run on any malloc.
 *
 * The binary uses only the standard malloc family, so one build measures
 * every allocator: tools/kmm bench runs it as is (glibc) and with each
 * other allocator in LD_PRELOAD. Every benchmark reports operations per
 * second (items_per_second), the process's peak RSS and its RSS once
 * everything it allocated is freed (docs/benchmarks.md).
 *
 * Thread counts are Google Benchmark threads; a benchmark's threads meet at
 * bench_barrier() where they share set-up or tear-down.
 */
#include <dlfcn.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common.h"

#define MAX_THREADS 256
#define BATCH 256

/* ---- fast path: one size, allocate and free at once ------------------- */

static void bm_fastpath(gb_state *s)
{
	size_t size = (size_t)gb_arg_value(s, 0);

	while (gb_loop_batch(s, BATCH)) {
		for (int i = 0; i < BATCH; i++) {
			void *p = malloc(size);
			gb_do_not_optimize(p);
			free(p);
		}
	}
	gb_set_items_processed(s, gb_iterations(s));
	bench_report_memory(s);
}

/*
 * Sizes as programs ask for them: mostly small, some medium, a few large.
 * 70% 16..128 bytes, 25% up to 1 KiB, 5% up to 16 KiB.
 */
static size_t program_size(uint64_t *rng)
{
	uint64_t r = bench_rand(rng);
	unsigned pick = (unsigned)(r % 100);

	r >>= 8;
	if (pick < 70)
		return 16 + r % 113;
	if (pick < 95)
		return 128 + r % 897;
	return 1024 + r % (15 * 1024 + 1);
}

/* ---- random working set: 16384 live blocks, one replaced per step ------ */

#define WORKING_SET 16384

static void bm_working_set(gb_state *s)
{
	static char *slot[WORKING_SET];
	uint64_t rng = 42;

	for (int i = 0; i < WORKING_SET; i++)
		slot[i] = malloc(program_size(&rng));
	while (gb_loop_batch(s, BATCH)) {
		for (int i = 0; i < BATCH; i++) {
			unsigned k = (unsigned)(bench_rand(&rng) % WORKING_SET);
			free(slot[k]);
			slot[k] = malloc(program_size(&rng));
			slot[k][0] = 1;
		}
	}
	for (int i = 0; i < WORKING_SET; i++)
		free(slot[i]);
	gb_set_items_processed(s, gb_iterations(s));
	bench_report_memory(s);
}

/* ---- producer/consumer: every block is freed by another thread --------- */

#define RING_SIZE 1024

struct ring {
	_Atomic unsigned long head;	/* written by the producer */
	char pad1[120];
	_Atomic unsigned long tail;	/* written by the consumer */
	char pad2[120];
	void *slot[RING_SIZE];
};

static struct ring rings[MAX_THREADS / 2];

static void produce(struct ring *r, void *p)
{
	unsigned long head = atomic_load_explicit(&r->head, memory_order_relaxed);

	while (head - atomic_load_explicit(&r->tail, memory_order_acquire) == RING_SIZE)
		sched_yield();
	r->slot[head % RING_SIZE] = p;
	atomic_store_explicit(&r->head, head + 1, memory_order_release);
}

static void *consume(struct ring *r)
{
	unsigned long tail = atomic_load_explicit(&r->tail, memory_order_relaxed);

	while (atomic_load_explicit(&r->head, memory_order_acquire) == tail)
		sched_yield();
	void *p = r->slot[tail % RING_SIZE];
	atomic_store_explicit(&r->tail, tail + 1, memory_order_release);
	return p;
}

/*
 * Threads pair up: even ones allocate, odd ones free. Both run the same
 * number of iterations, so every block produced is consumed.
 */
static void bm_producer_consumer(gb_state *s)
{
	int me = gb_thread_index(s);
	struct ring *r = &rings[me / 2];
	uint64_t rng = 7 + (uint64_t)me;

	if (gb_thread_count(s) % 2 || gb_thread_count(s) > MAX_THREADS) {
		gb_skip_with_error(s, "needs an even number of threads");
		return;
	}
	while (gb_loop(s)) {
		if (me % 2 == 0) {
			char *p = malloc(16 + bench_rand(&rng) % 241);
			p[0] = 1;
			produce(r, p);
		} else {
			free(consume(r));
		}
	}
	/* Count blocks handed over, not each side's half of the hand-over. */
	gb_set_items_processed(s, me % 2 == 0 ? gb_iterations(s) : 0);
	bench_barrier(gb_thread_count(s));
	bench_report_memory(s);
}

/* ---- larson-like server churn -------------------------------------------- */

#define LARSON_SLOTS 65536

static _Atomic(char *) larson_slot[LARSON_SLOTS];

/*
 * Each thread replaces blocks in its own share of a common array; one step
 * in eight touches any share, so blocks often die on a thread other than
 * the one that allocated them, as in a server handing requests around.
 */
static void bm_larson(gb_state *s)
{
	int me = gb_thread_index(s), n = gb_thread_count(s);
	unsigned share = LARSON_SLOTS / (unsigned)n, base = share * (unsigned)me;
	uint64_t rng = 1000 + (uint64_t)me;

	while (gb_loop_batch(s, BATCH)) {
		for (int i = 0; i < BATCH; i++) {
			uint64_t r = bench_rand(&rng);
			unsigned k = (r & 7) ? base + (unsigned)(r >> 8) % share
					     : (unsigned)(r >> 8) % LARSON_SLOTS;
			char *p = malloc(16 + (r >> 40) % 497);
			p[0] = 1;
			free(atomic_exchange(&larson_slot[k], p));
		}
	}
	bench_barrier(n);
	for (unsigned k = base; k < base + share; k++)
		free(atomic_exchange(&larson_slot[k], NULL));
	gb_set_items_processed(s, gb_iterations(s));
	bench_barrier(n);
	bench_report_memory(s);
}

/* ---- false sharing (Hoard's cache-scratch) -------------------------------- */

static char *handed[MAX_THREADS];

/*
 * Thread 0 allocates one small block per thread, so neighbours share cache
 * lines, and hands block i to thread i, which frees it. From then on each
 * thread allocates a block of the same size and writes it many times. An
 * allocator that gives thread i the block it just freed puts the threads'
 * hot data on shared cache lines and pays for it on every write.
 */
static void bm_false_sharing(gb_state *s)
{
	int me = gb_thread_index(s), n = gb_thread_count(s);

	if (n > MAX_THREADS) {
		gb_skip_with_error(s, "too many threads");
		return;
	}
	if (me == 0)
		for (int i = 0; i < n; i++)
			handed[i] = malloc(16);
	bench_barrier(n);
	free(handed[me]);
	while (gb_loop(s)) {
		volatile char *p = malloc(16);
		for (int w = 0; w < 256; w++)
			p[w % 16]++;
		free((void *)p);
	}
	gb_set_items_processed(s, gb_iterations(s));
	bench_barrier(n);
	bench_report_memory(s);
}

/* ---- thread scaling: small blocks, a private working set per thread ------ */

#define SCALING_SET 256

static void bm_scaling(gb_state *s)
{
	char *slot[SCALING_SET];
	uint64_t rng = 99 + (uint64_t)gb_thread_index(s);

	for (int i = 0; i < SCALING_SET; i++)
		slot[i] = malloc(16 + bench_rand(&rng) % 497);
	while (gb_loop_batch(s, BATCH)) {
		for (int i = 0; i < BATCH; i++) {
			uint64_t r = bench_rand(&rng);
			unsigned k = (unsigned)(r % SCALING_SET);
			free(slot[k]);
			slot[k] = malloc(16 + (r >> 32) % 497);
			slot[k][0] = 1;
		}
	}
	for (int i = 0; i < SCALING_SET; i++)
		free(slot[i]);
	gb_set_items_processed(s, gb_iterations(s));
	bench_barrier(gb_thread_count(s));
	bench_report_memory(s);
}

/* ---- realloc growth: a buffer grown 32 bytes at a time to 64 KiB -------- */

#define GROWTH_STEP 32
#define GROWTH_END (64 * 1024)

static void bm_realloc_growth(gb_state *s)
{
	while (gb_loop(s)) {
		char *buf = NULL;
		for (size_t len = GROWTH_STEP; len <= GROWTH_END; len += GROWTH_STEP) {
			char *grown = realloc(buf, len);
			if (!grown) {
				gb_skip_with_error(s, "realloc failed");
				break;
			}
			buf = grown;
			memset(buf + len - GROWTH_STEP, (int)len, GROWTH_STEP);
		}
		free(buf);
	}
	gb_set_items_processed(s, gb_iterations(s) * (GROWTH_END / GROWTH_STEP));
	bench_report_memory(s);
}

/* ---- large blocks: allocate, touch every page, free ---------------------- */

/*
 * One byte per page: the pages are the allocator's cost, not a memset. The
 * byte is in the middle of each page, whatever the block's own offset in
 * its first page, so that every allocator's blocks are touched alike: on
 * the Xeon VM of 2026-12-04, writing the first bytes of 2048 consecutive
 * pages took 16.7 us and writing their middles 11.1 us, which made every
 * page-aligned 8 MiB block look a third slower than glibc's heap chunk
 * that starts 672 bytes into a page.
 */
static void touch_pages(char *p, size_t size, size_t page)
{
	uintptr_t start = (uintptr_t)p, end = start + size;
	uintptr_t at = (start & ~(uintptr_t)(page - 1)) + page / 2;

	if (at < start)
		at += page;
	for (; at < end; at += page)
		*(char *)at = 1;
}

static void bm_large(gb_state *s)
{
	size_t size = (size_t)gb_arg_value(s, 0);
	size_t page = (size_t)sysconf(_SC_PAGESIZE);

	while (gb_loop(s)) {
		char *p = malloc(size);
		if (!p) {
			gb_skip_with_error(s, "malloc failed");
			break;
		}
		touch_pages(p, size, page);
		free(p);
	}
	gb_set_items_processed(s, gb_iterations(s));
	gb_set_bytes_processed(s, gb_iterations(s) * (int64_t)size);
	bench_report_memory(s);
}

/*
 * ---- large blocks of two sizes in turn: 60 KiB, then 36 KiB --------------
 * Both round to the same 64 KiB buddy block in kmm, and the 36 KiB one
 * reuses the block the 60 KiB one dirtied: an allocator that gave such a
 * dirty tail back every time would pay a madvise and the faults to get it
 * back on each round (measured on kmm trimming every time: 122 us a
 * round instead of 1).
 */

#define MIXED_BIG (60 * 1024)
#define MIXED_SMALL (36 * 1024)

static void bm_large_mixed(gb_state *s)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);

	while (gb_loop(s)) {
		char *big = malloc(MIXED_BIG), *small;

		if (!big) {
			gb_skip_with_error(s, "malloc failed");
			break;
		}
		touch_pages(big, MIXED_BIG, page);
		free(big);
		small = malloc(MIXED_SMALL);
		if (!small) {
			gb_skip_with_error(s, "malloc failed");
			break;
		}
		touch_pages(small, MIXED_SMALL, page);
		free(small);
	}
	gb_set_items_processed(s, 2 * gb_iterations(s));
	bench_report_memory(s);
}

/*
 * ---- large blocks on every thread at once: 24 and 64 KiB -----------------
 * Each thread allocates a block, writes its first and last byte, and frees
 * it, in a loop: what an allocator's large sizes cost when threads meet on
 * them. (kmm's page runs had one lock for all threads, 617 ns a round on
 * two threads at 24 KiB, until per-CPU caches took runs of up to 16 pages.)
 */
static void bm_large_threads(gb_state *s)
{
	size_t size = (size_t)gb_arg_value(s, 0);

	while (gb_loop(s)) {
		char *p = malloc(size);

		if (!p) {
			gb_skip_with_error(s, "malloc failed");
			break;
		}
		p[0] = 1;
		p[size - 1] = 1;
		gb_do_not_optimize(p);
		free(p);
	}
	gb_set_items_processed(s, gb_iterations(s));
	bench_barrier(gb_thread_count(s));
	bench_report_memory(s);
}

/* Thread counts 1, 2, 4, ... up to 4x the CPUs online. */
static void thread_range(gb_bench *b, int even_only)
{
	int max = 4 * bench_cpus();

	for (int t = even_only ? 2 : 1; t <= max; t *= 2)
		gb_threads(b, t);
	if (max & (max - 1))
		gb_threads(b, max);
	gb_use_real_time(b);
}

/*
 * Names the library that serves malloc in this process ("malloc" in the
 * JSON context), so a run can prove which allocator it measured.
 */
static void add_malloc_context(void)
{
	void *fn = dlsym(RTLD_DEFAULT, "malloc");
	Dl_info info;

	if (fn && dladdr(fn, &info) && info.dli_fname)
		gb_add_context("malloc", info.dli_fname);
}

int main(int argc, char **argv)
{
	static const int fast_sizes[] = { 16, 64, 256, 1024, 4096 };
	static const int large_sizes[] = { 256 << 10, 1 << 20, 2 << 20, 8 << 20 };
	gb_bench *b;

	b = gb_arg_name(gb_register("fastpath", bm_fastpath), "size");
	for (size_t i = 0; i < ARRAY_SIZE(fast_sizes); i++)
		gb_arg(b, fast_sizes[i]);
	gb_register("working_set", bm_working_set);
	thread_range(gb_register("producer_consumer", bm_producer_consumer), 1);
	thread_range(gb_register("larson", bm_larson), 0);
	thread_range(gb_register("false_sharing", bm_false_sharing), 0);
	thread_range(gb_register("scaling", bm_scaling), 0);
	gb_register("realloc_growth", bm_realloc_growth);
	gb_register("large_mixed", bm_large_mixed);
	b = gb_arg_name(gb_register("large", bm_large), "size");
	for (size_t i = 0; i < ARRAY_SIZE(large_sizes); i++)
		gb_arg(b, large_sizes[i]);
	b = gb_arg_name(gb_register("large_threads", bm_large_threads), "size");
	gb_arg(gb_arg(b, 24 << 10), 64 << 10);
	thread_range(b, 1);
	add_malloc_context();
	return gb_main(argc, argv);
}
