/*
 * percpu.c - the example of docs/percpu.md; tests/meson.build builds and
 * runs it, so the documentation cannot rot.
 */
#include <stdio.h>

#include <kmm/kmm.h>

DEFINE_PER_CPU(long, requests);			/* static: every CPU's copy starts at 0 */

struct stats {
	long hits, misses;
};

int main(void)
{
	struct stats *st = alloc_percpu(struct stats);	/* dynamic, zeroed on every CPU */
	unsigned int cpu;
	long hits = 0, requests_total = 0;

	if (!st)
		return 1;
	this_cpu_inc(requests);				/* exact under preemption and migration */
	this_cpu_add(st->hits, 3);			/* a member of a per-CPU struct */

	for_each_possible_cpu(cpu) {
		hits += per_cpu_ptr(st, cpu)->hits;	/* the total: sum of the copies */
		requests_total += per_cpu(requests, cpu);
	}
	printf("%ld hits, %ld requests\n", hits, requests_total);
	free_percpu(st);

	struct percpu_counter c;			/* approximate fast read, exact sum */
	if (percpu_counter_init(&c, 0, GFP_KERNEL))
		return 1;
	percpu_counter_add(&c, 5);
	printf("%lld\n", (long long)percpu_counter_sum(&c));
	percpu_counter_destroy(&c);
	return hits == 3 && requests_total == 1 ? 0 : 1;
}
