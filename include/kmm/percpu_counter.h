/*
 * <kmm/percpu_counter.h> - a counter that is cheap to update from many
 * CPUs at once, as in the kernel's lib/percpu_counter.c.
 *
 * Each CPU accumulates changes in its own 32-bit copy; once a copy's size
 * reaches the batch, it is folded into the shared count under the lock.
 * percpu_counter_read() is one load and may be off by up to batch per CPU;
 * percpu_counter_sum() adds every CPU's copy and is exact whenever no update
 * runs concurrently.
 */
#ifndef KMM_PERCPU_COUNTER_H
#define KMM_PERCPU_COUNTER_H

#include <stdint.h>

#include <kmm/percpu.h>

#ifdef __cplusplus
extern "C" {
#endif

struct percpu_counter {
	int lock;			/* kmm's lock word; 0 when free */
	int64_t count;			/* folded from the CPUs' copies */
	int32_t __percpu *counters;
};

int kmm_percpu_counter_init(struct percpu_counter *fbc, int64_t amount, gfp_t gfp);
void kmm_percpu_counter_destroy(struct percpu_counter *fbc);
void kmm_percpu_counter_set(struct percpu_counter *fbc, int64_t amount);
void kmm_percpu_counter_add_batch(struct percpu_counter *fbc, int64_t amount, int32_t batch);
int64_t kmm_percpu_counter_sum(struct percpu_counter *fbc);
int32_t kmm_percpu_counter_batch(void);

static inline int percpu_counter_init(struct percpu_counter *fbc, int64_t amount, gfp_t gfp)
{
	return kmm_percpu_counter_init(fbc, amount, gfp);
}

static inline void percpu_counter_destroy(struct percpu_counter *fbc)
{
	kmm_percpu_counter_destroy(fbc);
}

static inline void percpu_counter_set(struct percpu_counter *fbc, int64_t amount)
{
	kmm_percpu_counter_set(fbc, amount);
}

static inline void percpu_counter_add_batch(struct percpu_counter *fbc, int64_t amount,
					    int32_t batch)
{
	kmm_percpu_counter_add_batch(fbc, amount, batch);
}

/* The batch is max(32, 2 * possible CPUs), as in the kernel. */
static inline void percpu_counter_add(struct percpu_counter *fbc, int64_t amount)
{
	kmm_percpu_counter_add_batch(fbc, amount, kmm_percpu_counter_batch());
}

static inline void percpu_counter_sub(struct percpu_counter *fbc, int64_t amount)
{
	percpu_counter_add(fbc, -amount);
}

static inline void percpu_counter_inc(struct percpu_counter *fbc)
{
	percpu_counter_add(fbc, 1);
}

static inline void percpu_counter_dec(struct percpu_counter *fbc)
{
	percpu_counter_add(fbc, -1);
}

static inline int64_t percpu_counter_sum(struct percpu_counter *fbc)
{
	return kmm_percpu_counter_sum(fbc);
}

static inline int64_t percpu_counter_sum_positive(struct percpu_counter *fbc)
{
	int64_t v = kmm_percpu_counter_sum(fbc);

	return v < 0 ? 0 : v;
}

/* Fast and approximate: the folded count only. */
static inline int64_t percpu_counter_read(struct percpu_counter *fbc)
{
	return __atomic_load_n(&fbc->count, __ATOMIC_RELAXED);
}

static inline int64_t percpu_counter_read_positive(struct percpu_counter *fbc)
{
	int64_t v = percpu_counter_read(fbc);

	return v < 0 ? 0 : v;
}

static inline int percpu_counter_initialized(struct percpu_counter *fbc)
{
	return fbc->counters != NULL;
}

#ifdef __cplusplus
}
#endif

#endif
