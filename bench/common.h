/*
 * common.h - helpers shared by kmm's benchmark programs: memory figures
 * from /proc, a barrier for benchmark threads, a cheap random generator.
 */
#ifndef KMM_BENCH_COMMON_H
#define KMM_BENCH_COMMON_H

#include <stdint.h>

#include "gbench.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* Resident and peak resident set of this process, in bytes (0 if unknown). */
uint64_t bench_rss(void);
uint64_t bench_peak_rss(void);

/*
 * Sets the counters every benchmark reports: peak_rss (the process's
 * VmHWM) and rss (VmRSS now; called after everything is freed, this is the
 * memory the allocator kept).
 */
void bench_report_memory(gb_state *s);

/* Blocks until n threads have called it; reusable. Yields while it waits. */
void bench_barrier(int n);

/* The CPUs online, for thread-count arguments. */
int bench_cpus(void);

/* xorshift64*: fast, and the same sequence for every allocator. */
static inline uint64_t bench_rand(uint64_t *state)
{
	uint64_t x = *state;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*state = x;
	return x * 0x2545F4914F6CDD1DULL;
}

#endif
