/*
 * percpu_counter.c - counters summed over CPUs (see <kmm/percpu_counter.h>).
 *
 * Invariant: count + the sum of every CPU's copy is the counter's value.
 * Updates keep it however threads migrate: a fold adds to count exactly
 * what it subtracts from a copy, and a copy changes only through this_cpu
 * operations. fbc->lock serializes folds, set and sum; count is written
 * under it and read without it by percpu_counter_read().
 */
#include <errno.h>
#include <stdlib.h>

#include <kmm/percpu_counter.h>

#include "internal.h"
#include "lock.h"
#include "percpu.h"
#include "topology.h"

_Static_assert(sizeof(struct kmm_lock) == sizeof(int), "percpu_counter.lock holds a kmm_lock");

static struct kmm_lock *counter_lock(struct percpu_counter *fbc)
{
	return (struct kmm_lock *)&fbc->lock;
}

KMM_API int32_t kmm_percpu_counter_batch(void)
{
	unsigned int cpus = topology_nr_possible_cpus();

	return cpus * 2 > 32 ? (int32_t)(cpus * 2) : 32;
}

KMM_API int kmm_percpu_counter_init(struct percpu_counter *fbc, int64_t amount, gfp_t gfp)
{
	fbc->lock = 0;
	fbc->count = amount;
	fbc->counters = alloc_percpu_gfp(int32_t, gfp);
	return fbc->counters ? 0 : -ENOMEM;
}

KMM_API void kmm_percpu_counter_destroy(struct percpu_counter *fbc)
{
	free_percpu(fbc->counters);
	fbc->counters = NULL;
}

KMM_API void kmm_percpu_counter_set(struct percpu_counter *fbc, int64_t amount)
{
	unsigned int cpu;

	kmm_lock(counter_lock(fbc));
	for_each_possible_cpu(cpu)
		__atomic_store_n(per_cpu_ptr(fbc->counters, cpu), 0, __ATOMIC_RELAXED);
	__atomic_store_n(&fbc->count, amount, __ATOMIC_RELAXED);
	kmm_unlock(counter_lock(fbc));
}

KMM_API void kmm_percpu_counter_add_batch(struct percpu_counter *fbc, int64_t amount,
					  int32_t batch)
{
	char *base = pcpu_base(fbc->counters);
	int32_t count = (int32_t)pcpu_this_read(base, sizeof(int32_t));

	for (;;) {
		if (unlikely(llabs((long long)count + amount) >= batch)) {
			kmm_lock(counter_lock(fbc));
			count = (int32_t)pcpu_this_xchg(base, 0, sizeof(int32_t));
			__atomic_store_n(&fbc->count, fbc->count + count + amount, __ATOMIC_RELAXED);
			kmm_unlock(counter_lock(fbc));
			return;
		}
		int32_t seen = (int32_t)pcpu_this_cmpxchg(base, (uint32_t)count,
							  (uint32_t)(count + amount),
							  sizeof(int32_t));
		if (seen == count)
			return;
		count = seen;
	}
}

KMM_API int64_t kmm_percpu_counter_sum(struct percpu_counter *fbc)
{
	unsigned int cpu;
	int64_t sum;

	kmm_lock(counter_lock(fbc));
	sum = fbc->count;
	for_each_possible_cpu(cpu)
		sum += __atomic_load_n(per_cpu_ptr(fbc->counters, cpu), __ATOMIC_RELAXED);
	kmm_unlock(counter_lock(fbc));
	return sum;
}
