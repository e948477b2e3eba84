/*
 * counters.c - the classic experiment behind per-CPU data: threads
 * increment one shared count under a spinlock, with one atomic add, with
 * this_cpu_inc on a per-CPU variable, and through a percpu_counter. Thread
 * counts run from 1 to 4x the CPUs online.
 *
 * Every run checks its own result: the count summed at the end must equal
 * the increments made, or the benchmark reports an error.
 */
#include <pthread.h>

#include <kmm/kmm.h>

#include "common.h"

#define BATCH 64

static pthread_spinlock_t spin;
static long locked_count;
static long atomic_count __attribute__((aligned(128)));
static long *percpu_count;
static struct percpu_counter counter;

static void check_total(gb_state *s, long counted)
{
	long expect = gb_iterations(s) * gb_thread_count(s);

	if (counted != expect)
		gb_skip_with_error(s, "the summed count is not the number of increments");
	gb_set_items_processed(s, gb_iterations(s));
}

static void bm_spinlock(gb_state *s)
{
	if (gb_thread_index(s) == 0)
		locked_count = 0;
	bench_barrier(gb_thread_count(s));
	while (gb_loop_batch(s, BATCH))
		for (int i = 0; i < BATCH; i++) {
			pthread_spin_lock(&spin);
			locked_count++;
			pthread_spin_unlock(&spin);
		}
	bench_barrier(gb_thread_count(s));
	check_total(s, locked_count);
}

static void bm_atomic(gb_state *s)
{
	if (gb_thread_index(s) == 0)
		atomic_count = 0;
	bench_barrier(gb_thread_count(s));
	while (gb_loop_batch(s, BATCH))
		for (int i = 0; i < BATCH; i++)
			__atomic_fetch_add(&atomic_count, 1, __ATOMIC_RELAXED);
	bench_barrier(gb_thread_count(s));
	check_total(s, __atomic_load_n(&atomic_count, __ATOMIC_RELAXED));
}

static long percpu_sum(void)
{
	unsigned int cpu;
	long sum = 0;

	for_each_possible_cpu(cpu)
		sum += *per_cpu_ptr(percpu_count, cpu);
	return sum;
}

static void bm_this_cpu_inc(gb_state *s)
{
	if (gb_thread_index(s) == 0) {
		unsigned int cpu;
		for_each_possible_cpu(cpu)
			*per_cpu_ptr(percpu_count, cpu) = 0;
	}
	bench_barrier(gb_thread_count(s));
	while (gb_loop_batch(s, BATCH))
		for (int i = 0; i < BATCH; i++)
			this_cpu_inc(*percpu_count);
	bench_barrier(gb_thread_count(s));
	check_total(s, percpu_sum());
}

static void bm_percpu_counter(gb_state *s)
{
	if (gb_thread_index(s) == 0)
		percpu_counter_set(&counter, 0);
	bench_barrier(gb_thread_count(s));
	while (gb_loop_batch(s, BATCH))
		for (int i = 0; i < BATCH; i++)
			percpu_counter_inc(&counter);
	bench_barrier(gb_thread_count(s));
	check_total(s, (long)percpu_counter_sum(&counter));
}

static void register_scaled(const char *name, gb_fn fn)
{
	gb_bench *b = gb_use_real_time(gb_register(name, fn));
	int max = 4 * bench_cpus();

	for (int t = 1; t <= max; t *= 2)
		gb_threads(b, t);
	if (max & (max - 1))
		gb_threads(b, max);
}

int main(int argc, char **argv)
{
	pthread_spin_init(&spin, PTHREAD_PROCESS_PRIVATE);
	percpu_count = alloc_percpu(long);
	if (!percpu_count || percpu_counter_init(&counter, 0, GFP_KERNEL) != 0)
		return 1;
	register_scaled("counter/spinlock", bm_spinlock);
	register_scaled("counter/atomic", bm_atomic);
	register_scaled("counter/this_cpu_inc", bm_this_cpu_inc);
	register_scaled("counter/percpu_counter", bm_percpu_counter);
	return gb_main(argc, argv);
}
