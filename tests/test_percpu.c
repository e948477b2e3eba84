/*
 * test_percpu.c - <kmm/percpu.h> and <kmm/percpu_counter.h>: allocation,
 * the copies' layout, chunk growth and release, static per-CPU variables,
 * exact this_cpu operations under many threads and migrations, bad input.
 * Runs in both modes: rseq sequences and the atomic fallback (KMM_RSEQ=0).
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <string.h>
#include <sys/rseq.h>
#include <unistd.h>

#include <kmm/kmm.h>

#include "test.h"

struct pair {
	long a;
	int b;
};

DEFINE_PER_CPU(long, static_counter) = 7;
static DEFINE_PER_CPU(struct pair, static_pair);

static unsigned int ncpus(void)
{
	return num_possible_cpus();
}

static void test_mode(void)
{
	const char *want = getenv("KMM_TEST_EXPECT_MODE");
	struct kmm_percpu_info info;

	kmm_percpu_info(&info);
	printf("unit %zu bytes, %u units, this_cpu ops: %s\n", info.unit_size, info.nr_units,
	       info.rseq ? "rseq" : "atomic");
	CHECK_EQ(info.nr_units, ncpus());
	CHECK(info.unit_size >= PAGE_SIZE && info.unit_size % PAGE_SIZE == 0);
#if !defined(__SANITIZE_THREAD__)
	if (want && strcmp(want, "rseq") == 0 && __rseq_size > 0)
		CHECK(info.rseq);
#endif
	if (want && strcmp(want, "thread") == 0)
		CHECK(!info.rseq);
}

/*
 * Pinned to each CPU this thread may run on in turn, the current CPU's copy
 * is that CPU's. At least one CPU must be checked.
 */
static void check_this_cpu_on_each_cpu(long *p)
{
	cpu_set_t old, one;
	int checked = 0;

	CHECK(sched_getaffinity(0, sizeof(old), &old) == 0);
	for (unsigned int cpu = 0; cpu < ncpus() && cpu < CPU_SETSIZE; cpu++) {
		if (!CPU_ISSET(cpu, &old))
			continue;
		CPU_ZERO(&one);
		CPU_SET(cpu, &one);
		if (sched_setaffinity(0, sizeof(one), &one) != 0)
			continue;
		CHECK_EQ(raw_smp_processor_id(), cpu);
		CHECK(this_cpu_ptr(p) == per_cpu_ptr(p, cpu));
		CHECK_EQ(*this_cpu_ptr(p), 1000 + (long)cpu);
		checked++;
	}
	CHECK(sched_setaffinity(0, sizeof(old), &old) == 0);
	CHECK(checked > 0);
}

static void test_layout(void)
{
	long *p = alloc_percpu(long);
	size_t unit = kmm_percpu_unit_size();
	unsigned int cpu;

	CHECK(p != NULL);
	for_each_possible_cpu(cpu) {
		long *copy = per_cpu_ptr(p, cpu);

		CHECK_EQ(*copy, 0);
		CHECK_EQ((char *)copy - (char *)per_cpu_ptr(p, 0), (long)(cpu * unit));
		*copy = 1000 + cpu;
	}
	for_each_possible_cpu(cpu)
		CHECK_EQ(*per_cpu_ptr(p, cpu), 1000 + cpu);
	/* Copies of different CPUs never share a cache line. */
	CHECK(unit >= 128);
	check_this_cpu_on_each_cpu(p);
	free_percpu(p);
	free_percpu(NULL);
}

static void test_alignment_and_zeroing(void)
{
	for (size_t align = 1; align <= (size_t)PAGE_SIZE; align *= 2) {
		char *p = __alloc_percpu(24, align);
		unsigned int cpu;

		CHECK(p != NULL);
		CHECK_EQ((uintptr_t)p % align, 0);
		for_each_possible_cpu(cpu) {
			char *copy = per_cpu_ptr(p, cpu);
			for (int i = 0; i < 24; i++)
				CHECK_EQ(copy[i], 0);
			memset(copy, 0xab, 24);	/* dirty it for the next round */
		}
		free_percpu(p);
	}
}

/* Areas never overlap, chunks grow on demand and empty ones go back. */
static void test_chunks(void)
{
	enum { N = 3000, SIZE = 40 };
	static unsigned char *area[N];
	struct kmm_percpu_info before, during, after;
	unsigned int cpu;

	kmm_percpu_info(&before);
	for (int i = 0; i < N; i++) {
		area[i] = __alloc_percpu(SIZE, 8);
		CHECK(area[i] != NULL);
		for_each_possible_cpu(cpu)
			memset(per_cpu_ptr(area[i], cpu), (i + (int)cpu) & 0xff, SIZE);
	}
	kmm_percpu_info(&during);
	CHECK(during.nr_chunks > before.nr_chunks);
	CHECK(during.used_bytes >= before.used_bytes + (size_t)N * SIZE);
	for (int i = 0; i < N; i++)
		for_each_possible_cpu(cpu) {
			unsigned char *copy = per_cpu_ptr(area[i], cpu);
			for (int k = 0; k < SIZE; k++)
				CHECK_EQ(copy[k], (i + (int)cpu) & 0xff);
		}
	/* Free in an interleaved order, so areas merge from both sides. */
	for (int i = 0; i < N; i += 2)
		free_percpu(area[i]);
	for (int i = 1; i < N; i += 2)
		free_percpu(area[i]);
	kmm_percpu_info(&after);
	CHECK_EQ(after.used_bytes, before.used_bytes);
	CHECK(after.nr_chunks <= before.nr_chunks + 1);
}

static void test_bad_sizes(void)
{
	errno = 0;
	CHECK(__alloc_percpu(0, 8) == NULL);
	CHECK_EQ(errno, EINVAL);
	errno = 0;
	CHECK(__alloc_percpu(16, 24) == NULL);
	CHECK_EQ(errno, EINVAL);
	errno = 0;
	CHECK(__alloc_percpu(kmm_percpu_unit_size() + 1, 8) == NULL);
	CHECK_EQ(errno, ENOMEM);
	/* A whole unit still works. */
	void *p = __alloc_percpu(kmm_percpu_unit_size(), 8);
	CHECK(p != NULL);
	free_percpu(p);
}

static void free_foreign(void *addr)
{
	static long not_percpu;

	sprintf(addr, "%p", (void *)&not_percpu);
	free_percpu(&not_percpu);
}

static void free_twice(void *addr)
{
	int *p = alloc_percpu(int);
	int *q = alloc_percpu(int);	/* keeps the chunk alive */

	sprintf(addr, "%p", (void *)p);
	free_percpu(p);
	free_percpu(p);
	free_percpu(q);
}

static void free_interior(void *addr)
{
	char *p = __alloc_percpu(64, 16);

	sprintf(addr, "%p", (void *)(p + 16));
	free_percpu(p + 16);
}

static void test_bad_free(void)
{
	check_abort_report("foreign", free_foreign, "not a per-CPU allocation");
	check_abort_report("twice", free_twice, "double free");
	check_abort_report("interior", free_interior, "not the start of a live per-CPU area");
}

static void test_static_variables(void)
{
	unsigned int cpu;

	for_each_possible_cpu(cpu) {
		CHECK_EQ(per_cpu(static_counter, cpu), 7);
		CHECK_EQ(per_cpu(static_pair, cpu).a, 0);
	}
	this_cpu_inc(static_counter);
	this_cpu_add(static_pair.b, 5);
	this_cpu_ptr(&static_pair)->a = 3;
	long sum = 0, b = 0, a = 0;
	for_each_possible_cpu(cpu) {
		sum += per_cpu(static_counter, cpu);
		b += per_cpu_ptr(&static_pair, cpu)->b;
		a += per_cpu(static_pair.a, cpu);
	}
	CHECK_EQ(sum, 7L * ncpus() + 1);
	CHECK_EQ(b, 5);
	CHECK_EQ(a, 3);
	/* Reset for the threaded test. */
	for_each_possible_cpu(cpu)
		per_cpu(static_counter, cpu) = 0;
}

static void test_single_thread_ops(void)
{
	int *i = alloc_percpu(int);
	unsigned char *c = alloc_percpu(unsigned char);
	void **ptr = alloc_percpu(void *);
	unsigned int cpu;

	CHECK(i && c && ptr);
	/* Pin to one CPU so that "this CPU" stays one copy. */
	cpu_set_t set, old;
	sched_getaffinity(0, sizeof(old), &old);
	CPU_ZERO(&set);
	CPU_SET(sched_getcpu(), &set);
	sched_setaffinity(0, sizeof(set), &set);

	this_cpu_write(*i, 41);
	CHECK_EQ(this_cpu_read(*i), 41);
	CHECK_EQ(this_cpu_inc_return(*i), 42);
	CHECK_EQ(this_cpu_add_return(*i, -50), -8);
	CHECK_EQ(this_cpu_sub_return(*i, 2), -10);
	CHECK_EQ(this_cpu_cmpxchg(*i, 3, 4), -10);	/* mismatch: no store */
	CHECK_EQ(this_cpu_read(*i), -10);
	CHECK_EQ(this_cpu_cmpxchg(*i, -10, 4), -10);
	CHECK_EQ(this_cpu_read(*i), 4);
	CHECK_EQ(this_cpu_xchg(*i, 9), 4);
	CHECK_EQ(this_cpu_read(*i), 9);
	this_cpu_dec(*i);
	this_cpu_sub(*i, 3);
	CHECK_EQ(this_cpu_read(*i), 5);

	this_cpu_write(*c, 255);
	this_cpu_inc(*c);	/* wraps like an unsigned char */
	CHECK_EQ(this_cpu_read(*c), 0);

	this_cpu_write(*ptr, (void *)&set);
	CHECK(this_cpu_read(*ptr) == (void *)&set);
	CHECK(*this_cpu_ptr(ptr) == (void *)&set);

	sched_setaffinity(0, sizeof(old), &old);
	long total = 0;
	for_each_possible_cpu(cpu)
		total += *per_cpu_ptr(i, cpu);
	CHECK_EQ(total, 5);
	free_percpu(i);
	free_percpu(c);
	free_percpu(ptr);
}

/* ---- many threads, some hopping between CPUs ----------------------------- */

enum { ITERS = 30000 };

struct shared {
	long *longs;
	int *ints;
	unsigned short *shorts;
	long *cas;
	struct percpu_counter counter;
};

static struct shared sh;

/* Every few hundred operations, move to another CPU: restarts and migrations. */
static void maybe_hop(int id, int i)
{
	cpu_set_t set;
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	if (id % 2 || i % 500 || n < 2)
		return;
	CPU_ZERO(&set);
	CPU_SET((i / 500 + id) % n, &set);
	sched_setaffinity(0, sizeof(set), &set);
}

static void *hammer(void *arg)
{
	int id = (int)(intptr_t)arg;

	for (int i = 0; i < ITERS; i++) {
		maybe_hop(id, i);
		this_cpu_inc(*sh.longs);
		this_cpu_add(*sh.ints, 3);
		if (i % 64 == 0)
			this_cpu_inc(*sh.shorts);	/* 16-bit: always the atomic path */
		this_cpu_inc(static_counter);
		long seen = this_cpu_read(*sh.cas), found;
		while ((found = this_cpu_cmpxchg(*sh.cas, seen, seen + 2)) != seen)
			seen = found;
		percpu_counter_add(&sh.counter, i % 3);
	}
	return NULL;
}

static void test_threads_exact(void)
{
	int nthreads = 4 * (int)sysconf(_SC_NPROCESSORS_ONLN);
	pthread_t tid[64];
	unsigned int cpu;

	if (nthreads > 64)
		nthreads = 64;
	sh.longs = alloc_percpu(long);
	sh.ints = alloc_percpu(int);
	sh.shorts = alloc_percpu(unsigned short);
	sh.cas = alloc_percpu(long);
	CHECK(sh.longs && sh.ints && sh.shorts && sh.cas);
	CHECK_EQ(percpu_counter_init(&sh.counter, 100, GFP_KERNEL), 0);

	for (int t = 0; t < nthreads; t++)
		CHECK_EQ(pthread_create(&tid[t], NULL, hammer, (void *)(intptr_t)t), 0);
	for (int t = 0; t < nthreads; t++)
		pthread_join(tid[t], NULL);

	long longs = 0, ints = 0, shorts = 0, cas = 0, stat = 0;
	for_each_possible_cpu(cpu) {
		longs += *per_cpu_ptr(sh.longs, cpu);
		ints += *per_cpu_ptr(sh.ints, cpu);
		shorts += *per_cpu_ptr(sh.shorts, cpu);
		cas += *per_cpu_ptr(sh.cas, cpu);
		stat += per_cpu(static_counter, cpu);
	}
	long total = (long)nthreads * ITERS;
	CHECK_EQ(longs, total);
	CHECK_EQ(ints, 3 * total);
	CHECK_EQ(shorts, (long)nthreads * ((ITERS + 63) / 64));	/* no copy wraps */
	CHECK_EQ(cas, 2 * total);
	CHECK_EQ(stat, total);

	/* 0, 1, 2 repeating: ITERS / 3 of each, plus the remainder. */
	long expect = 100;
	for (int i = 0; i < ITERS; i++)
		expect += (long)nthreads * (i % 3);
	CHECK_EQ(percpu_counter_sum(&sh.counter), expect);
	long approx = percpu_counter_read(&sh.counter);
	long slack = (long)kmm_percpu_counter_batch() * ncpus();
	CHECK(approx >= expect - slack && approx <= expect + slack);

	percpu_counter_set(&sh.counter, -5);
	CHECK_EQ(percpu_counter_sum(&sh.counter), -5);
	CHECK_EQ(percpu_counter_sum_positive(&sh.counter), 0);
	percpu_counter_dec(&sh.counter);
	percpu_counter_sub(&sh.counter, 10);
	CHECK_EQ(percpu_counter_sum(&sh.counter), -16);
	CHECK(percpu_counter_initialized(&sh.counter));
	percpu_counter_destroy(&sh.counter);
	CHECK(!percpu_counter_initialized(&sh.counter));
	free_percpu(sh.longs);
	free_percpu(sh.ints);
	free_percpu(sh.shorts);
	free_percpu(sh.cas);
}

int main(void)
{
	RUN(test_mode);
	RUN(test_layout);
	RUN(test_alignment_and_zeroing);
	RUN(test_chunks);
	RUN(test_bad_sizes);
	RUN(test_bad_free);
	RUN(test_static_variables);
	RUN(test_single_thread_ops);
	RUN(test_threads_exact);
	return 0;
}
