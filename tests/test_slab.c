/*
 * Slab caches through <kmm/slab.h>: object identity and alignment,
 * constructors, zeroing, bulk calls, shrink, destroy, slabinfo, and the
 * errors a caller can make. Runs in both per-CPU modes (see meson.build).
 */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/rseq.h>
#include <sys/single_threaded.h>
#include <unistd.h>

#include <kmm/kmm.h>

#include "test.h"

static struct kmm_slabinfo find_cache(const char *name)
{
	static struct kmm_slabinfo all[256];
	int n = kmm_slabinfo(all, 256);

	for (int i = 0; i < n && i < 256; i++) {
		if (strcmp(all[i].name, name) == 0)
			return all[i];
	}
	test_fail(__FILE__, __LINE__, "cache listed in kmm_slabinfo", name);
	return all[0];
}

static int cmp_ptr(const void *a, const void *b)
{
	uintptr_t x = *(const uintptr_t *)a, y = *(const uintptr_t *)b;

	return x < y ? -1 : x > y;
}

#define NR_OBJS 20000

static void test_mode(void)
{
	const char *want = getenv("KMM_TEST_EXPECT_MODE");

	/* Where glibc could not register rseq (old kernel, sandbox), kmm must fall back. */
	if (want && strcmp(want, "rseq") == 0 && __rseq_size == 0)
		want = "thread";

	kfree(kmalloc(1, GFP_KERNEL));
	printf("per-CPU mode: %s\n", kmm_slab_mode());
	if (want)
		CHECK(strcmp(kmm_slab_mode(), want) == 0);
}

/* Every object is handed out once, aligned, and holds what was written. */
static void test_objects_unique(void)
{
	static void *objs[NR_OBJS];
	const unsigned int size = 100;
	struct kmem_cache *s = kmem_cache_create("test-unique", size, 16, 0, NULL);

	CHECK(s != NULL);
	CHECK_EQ(kmem_cache_size(s), size);
	for (int i = 0; i < NR_OBJS; i++) {
		objs[i] = kmem_cache_alloc(s, GFP_KERNEL);
		CHECK(objs[i] != NULL);
		CHECK(((uintptr_t)objs[i] & 15) == 0);
		memset(objs[i], i & 0xff, size);
	}
	for (int i = 0; i < NR_OBJS; i++) {
		const unsigned char *c = objs[i];

		CHECK_EQ(c[0], i & 0xff);
		CHECK_EQ(c[size - 1], i & 0xff);
	}
	qsort(objs, NR_OBJS, sizeof(objs[0]), cmp_ptr);
	for (int i = 1; i < NR_OBJS; i++)
		CHECK((uintptr_t)objs[i] - (uintptr_t)objs[i - 1] >= size);
	for (int i = 0; i < NR_OBJS; i++)
		kmem_cache_free(s, objs[i]);
	kmem_cache_destroy(s);
}

static void test_alignment(void)
{
	struct kmem_cache *a = kmem_cache_create("test-align256", 40, 256, 0, NULL);
	struct kmem_cache *h = kmem_cache_create("test-hwcache", 100, 0, SLAB_HWCACHE_ALIGN, NULL);
	void *p[64], *q[64];

	CHECK(a && h);
	for (int i = 0; i < 64; i++) {
		p[i] = kmem_cache_alloc(a, GFP_KERNEL);
		q[i] = kmem_cache_alloc(h, GFP_KERNEL);
		CHECK(((uintptr_t)p[i] & 255) == 0);
		CHECK(((uintptr_t)q[i] & 63) == 0);
	}
	for (int i = 0; i < 64; i++) {
		kmem_cache_free(a, p[i]);
		kmem_cache_free(h, q[i]);
	}
	kmem_cache_destroy(a);
	kmem_cache_destroy(h);
}

static int ctor_calls;

struct constructed {
	unsigned long magic;
	unsigned long uses;
};

static void ctor(void *obj)
{
	struct constructed *c = obj;

	c->magic = 0xc0ffee;
	c->uses = 0;
	__atomic_fetch_add(&ctor_calls, 1, __ATOMIC_RELAXED);
}

/* The constructor runs when a slab is populated, once per object, not per allocation. */
static void test_ctor(void)
{
	static struct constructed *objs[1000];
	struct kmem_cache *s = kmem_cache_create("test-ctor", sizeof(struct constructed), 0, 0, ctor);
	struct kmm_slabinfo info;
	int calls;

	CHECK(s != NULL);
	for (int round = 0; round < 3; round++) {
		int reused = 0;

		for (int i = 0; i < 1000; i++) {
			objs[i] = kmem_cache_alloc(s, GFP_KERNEL);
			CHECK_EQ(objs[i]->magic, 0xc0ffee);
			reused += objs[i]->uses > 0;
			objs[i]->uses++;
		}
		calls = __atomic_load_n(&ctor_calls, __ATOMIC_RELAXED);
		info = find_cache("test-ctor");
		/* Nothing freed yet: every object of every slab was constructed once. */
		if (round == 0)
			CHECK_EQ(calls, info.num_objs);
		/*
		 * Later rounds reuse constructed objects as they were left (slabs
		 * emptied and given back in between are constructed anew).
		 */
		if (round > 0)
			CHECK(reused > 0);
		for (int i = 0; i < 1000; i++)
			kmem_cache_free(s, objs[i]);
	}
	CHECK(calls < 3 * 1000);
	kmem_cache_destroy(s);
}

static void test_zalloc(void)
{
	struct kmem_cache *s = kmem_cache_create("test-zalloc", 300, 0, 0, NULL);
	unsigned char *p;

	CHECK(s != NULL);
	for (int i = 0; i < 200; i++) {
		p = kmem_cache_alloc(s, GFP_KERNEL);
		memset(p, 0xee, 300);
		kmem_cache_free(s, p);
		p = kmem_cache_zalloc(s, GFP_KERNEL);
		for (int j = 0; j < 300; j++)
			CHECK_EQ(p[j], 0);
		kmem_cache_free(s, p);
	}
	kmem_cache_destroy(s);
}

static void test_bulk(void)
{
	struct kmem_cache *s = kmem_cache_create("test-bulk", 64, 0, 0, NULL);
	void *p[500];

	CHECK(s != NULL);
	CHECK_EQ(kmem_cache_alloc_bulk(s, GFP_KERNEL, 500, p), 500);
	qsort(p, 500, sizeof(p[0]), cmp_ptr);
	for (int i = 1; i < 500; i++)
		CHECK(p[i] != p[i - 1]);
	kmem_cache_free_bulk(s, 250, p);
	kmem_cache_free_bulk(NULL, 250, p + 250); /* the cache comes from the objects */
	kmem_cache_destroy(s);
}

/* After shrink, a cache whose objects are all freed holds no slab. */
static void test_shrink_leaves_no_page(void)
{
	static void *objs[NR_OBJS];
	struct kmem_cache *s = kmem_cache_create("test-shrink", 200, 0, 0, NULL);
	struct kmm_slabinfo info;

	CHECK(s != NULL);
	for (int i = 0; i < NR_OBJS; i++)
		objs[i] = kmem_cache_alloc(s, GFP_KERNEL);
	info = find_cache("test-shrink");
	CHECK(info.num_slabs > 0);
	CHECK(info.objperslab * info.stride <= info.pagesperslab * PAGE_SIZE);
	/* The kernel's 1/16 rule for the leftover. */
	CHECK((info.pagesperslab * PAGE_SIZE - info.objperslab * info.stride) * 16 <=
	      info.pagesperslab * PAGE_SIZE);
	CHECK_EQ(info.active_objs, NR_OBJS);
	for (int i = 0; i < NR_OBJS; i++)
		kmem_cache_free(s, objs[i]);
	CHECK_EQ(kmem_cache_shrink(s), 0);
	info = find_cache("test-shrink");
	CHECK_EQ(info.num_slabs, 0);
	CHECK_EQ(info.num_objs, 0);
	CHECK_EQ(info.active_objs, 0);
	kmem_cache_destroy(s);
}

/*
 * kfree finds an object's cache from its address through a per-page index
 * that the slab layer sets and clears with its slabs. After a cache's slabs
 * are gone and their sections unmapped, page runs on the same pages must
 * not look like that cache's objects: kfree would park them in the cache's
 * per-CPU sheaf, which has room after one allocation, and the cache would
 * hand out a page run next.
 */
#define NR_CHURN (6 * 4096)
#define NR_RUNS 256
#define NR_AFTER 64

static void test_slab_pages_reused_by_runs(void)
{
	static void *objs[NR_CHURN], *runs[NR_RUNS];
	struct kmem_cache *s = kmem_cache_create("test-reuse", 256, 0, 0, NULL);

	CHECK(s != NULL);
	for (int round = 0; round < 3; round++) {
		for (int i = 0; i < NR_CHURN; i++) {
			objs[i] = kmem_cache_alloc(s, GFP_KERNEL);
			CHECK(objs[i] != NULL);
			memset(objs[i], round, 256);
		}
		for (int i = 0; i < NR_CHURN; i++)
			kmem_cache_free(s, objs[i]);
		CHECK_EQ(kmem_cache_shrink(s), 0);
		kmm_page_reclaim();
		objs[0] = kmem_cache_alloc(s, GFP_KERNEL);
		CHECK(objs[0] != NULL);
		for (int i = 0; i < NR_RUNS; i++) {
			/* Above the largest kmalloc class (4 pages): a page run. */
			runs[i] = kmalloc(5 * PAGE_SIZE, GFP_KERNEL);
			CHECK(runs[i] != NULL);
			memset(runs[i], 0x77, 5 * PAGE_SIZE);
		}
		for (int i = 0; i < NR_RUNS; i++)
			kfree(runs[i]);
		for (int i = 1; i <= NR_AFTER; i++) {
			objs[i] = kmem_cache_alloc(s, GFP_KERNEL);
			CHECK(objs[i] != NULL);
			CHECK_EQ(ksize(objs[i]), 256);
		}
		for (int i = 0; i <= NR_AFTER; i++)
			kmem_cache_free(s, objs[i]);
	}
	kmem_cache_destroy(s);
}

/*
 * A barn's full sheaves that nobody takes go back to the slabs once they
 * have waited the decay time: the next barn_put() of any cache drains it.
 */
#define NR_DECAY_OBJS 4096

static void test_barn_decay(void)
{
	static void *objs[NR_DECAY_OBJS];
	struct kmem_cache *s = kmem_cache_create("test-decay", 64, 0, 0, NULL);
	struct kmem_cache *other = kmem_cache_create("test-decay-other", 96, 0, 0, NULL);
	long old = kmm_page_decay_ms(20);

	CHECK(s != NULL && other != NULL);
	for (int i = 0; i < NR_DECAY_OBJS; i++) {
		objs[i] = kmem_cache_alloc(s, GFP_KERNEL);
		CHECK(objs[i] != NULL);
	}
	for (int i = 0; i < NR_DECAY_OBJS; i++)
		kmem_cache_free(s, objs[i]);
	CHECK(find_cache("test-decay").cached_objs > 0);
	usleep(50 * 1000);
	/* Activity elsewhere: the other cache's sheaves go to its barn and back. */
	for (int round = 0; round < 4; round++) {
		for (int i = 0; i < NR_DECAY_OBJS; i++)
			objs[i] = kmem_cache_alloc(other, GFP_KERNEL);
		for (int i = 0; i < NR_DECAY_OBJS; i++)
			kmem_cache_free(other, objs[i]);
	}
	CHECK_EQ(find_cache("test-decay").cached_objs, 0);
	/* Decay off: a full barn stays. */
	kmm_page_decay_ms(-1);
	for (int i = 0; i < NR_DECAY_OBJS; i++)
		objs[i] = kmem_cache_alloc(s, GFP_KERNEL);
	for (int i = 0; i < NR_DECAY_OBJS; i++)
		kmem_cache_free(s, objs[i]);
	usleep(50 * 1000);
	for (int i = 0; i < NR_DECAY_OBJS; i++)
		objs[i] = kmem_cache_alloc(other, GFP_KERNEL);
	for (int i = 0; i < NR_DECAY_OBJS; i++)
		kmem_cache_free(other, objs[i]);
	CHECK(find_cache("test-decay").cached_objs > 0);
	kmm_page_decay_ms(old);
	kmem_cache_destroy(other);
	kmem_cache_destroy(s);
}

/*
 * While the process has one thread, a barn keeps two full sheaves: a freed
 * burst beyond them (and the CPU's own two sheaves) goes back to the slabs.
 * 64-byte objects: 64 to a sheaf. test_slab_threads checks that a threaded
 * process's barn keeps more.
 */
#define NR_BARN_OBJS 2048

static void test_barn_single_thread(void)
{
	static void *objs[NR_BARN_OBJS];
	struct kmem_cache *s = kmem_cache_create("test-barn-one", 64, 0, 0, NULL);
	long old = kmm_page_decay_ms(-1);
	struct kmm_slabinfo info;

	CHECK(s != NULL);
	CHECK(__libc_single_threaded);
	for (int i = 0; i < NR_BARN_OBJS; i++) {
		objs[i] = kmem_cache_alloc(s, GFP_KERNEL);
		CHECK(objs[i] != NULL);
	}
	for (int i = 0; i < NR_BARN_OBJS; i++)
		kmem_cache_free(s, objs[i]);
	info = find_cache("test-barn-one");
	CHECK(info.cached_objs > 0);
	CHECK(info.cached_objs <= 2 * 64);
	CHECK(info.active_objs <= 4 * 64);
	kmm_page_decay_ms(old);
	kmem_cache_destroy(s);
}

/*
 * A run of allocations refills its sheaf again and again: each refill fills
 * an empty sheaf parked in the barn rather than making one, so a cache
 * keeps a few sheaves, not one per refill (cc1 had 76 for 16 caches). 20
 * sheaves' worth of objects allocated in a row may add the slot's sheaf,
 * the spare and one parked, plus one for the freeing.
 */
#define NR_REFILL_OBJS (20 * 64)

static void test_refill_reuses_sheaves(void)
{
	static void *objs[NR_REFILL_OBJS];
	struct kmem_cache *s = kmem_cache_create("test-refill", 64, 0, 0, NULL);
	unsigned long before;

	CHECK(s != NULL);
	objs[0] = kmem_cache_alloc(s, GFP_KERNEL);
	kmem_cache_free(s, objs[0]);
	before = find_cache("kmm_sheaf").active_objs;
	for (int i = 0; i < NR_REFILL_OBJS; i++) {
		objs[i] = kmem_cache_alloc(s, GFP_KERNEL);
		CHECK(objs[i] != NULL);
	}
	CHECK(find_cache("kmm_sheaf").active_objs <= before + 4);
	for (int i = 0; i < NR_REFILL_OBJS; i++)
		kmem_cache_free(s, objs[i]);
	kmem_cache_destroy(s);
}

/*
 * A process with one thread that moves to another CPU finds the objects it
 * freed on the first one: the slow path on the new CPU gathers the sheaves
 * left in the old CPU's slots. Without that, the new CPU filled a sheaf
 * from the slabs and the freed objects stayed out of reach (cc1 ended with
 * 140 KiB more slabs when the scheduler had moved it). rseq mode only: per
 * thread, the slots follow the thread.
 */
#define NR_MIGRATE_OBJS 40

/* Pins this thread to cpu; says the test is skipped if it cannot. */
static bool pin_to(int cpu)
{
	cpu_set_t one;

	CPU_ZERO(&one);
	CPU_SET(cpu, &one);
	if (sched_setaffinity(0, sizeof(one), &one) == 0 && sched_getcpu() == cpu)
		return true;
	printf("  skipped: cannot pin to CPU %d\n", cpu);
	return false;
}

static void test_migration_gathers_sheaves(void)
{
	void *freed[NR_MIGRATE_OBJS], *again[NR_MIGRATE_OBJS];
	struct kmem_cache *s;
	cpu_set_t old;
	int cpus[2], n = 0, found = 0;

	kfree(kmalloc(1, GFP_KERNEL));
	CHECK(sched_getaffinity(0, sizeof(old), &old) == 0);
	for (int c = 0; c < CPU_SETSIZE && n < 2; c++) {
		if (CPU_ISSET(c, &old))
			cpus[n++] = c;
	}
	if (strcmp(kmm_slab_mode(), "rseq") != 0 || n < 2 || !__libc_single_threaded) {
		printf("  skipped: needs rseq mode, one thread and two CPUs\n");
		return;
	}
	s = kmem_cache_create("test-migrate", 64, 0, 0, NULL);
	CHECK(s != NULL);
	if (!pin_to(cpus[0]))
		goto out;
	for (int i = 0; i < NR_MIGRATE_OBJS; i++) {
		freed[i] = kmem_cache_alloc(s, GFP_KERNEL);
		CHECK(freed[i] != NULL);
	}
	for (int i = 0; i < NR_MIGRATE_OBJS; i++)
		kmem_cache_free(s, freed[i]);
	if (!pin_to(cpus[1]))
		goto out;
	for (int i = 0; i < NR_MIGRATE_OBJS; i++) {
		again[i] = kmem_cache_alloc(s, GFP_KERNEL);
		CHECK(again[i] != NULL);
		for (int j = 0; j < NR_MIGRATE_OBJS; j++)
			found += again[i] == freed[j];
	}
	CHECK_EQ(found, NR_MIGRATE_OBJS);
	for (int i = 0; i < NR_MIGRATE_OBJS; i++)
		kmem_cache_free(s, again[i]);
out:
	CHECK(sched_setaffinity(0, sizeof(old), &old) == 0);
	kmem_cache_destroy(s);
}

/*
 * A burst freed, then only small cached objects reused: no page is freed
 * after the burst, yet its memory goes back. The burst's page runs leave
 * two empty run spans: one goes to the zone at once, the other is kept
 * (with 1 MiB of its pages dirty) until it has stayed empty through a
 * decay period. The barns' periodic
 * check runs the runs' decay and then the zone's, which no free would run
 * now: once above its high watermark (one section) for a period, the zone
 * keeps at most half of it. So within three periods. Slab objects wait in
 * a barn: its decay drains it into the slabs, and their empty slabs go
 * back to the pages, which the zone's decay then releases: again within
 * three periods. Each burst runs with the decay off, so that a slow
 * machine (qemu, the thread sanitizer) does not release part of it early.
 */
#define NR_BURST_RUNS 128

static void reuse_small(struct kmem_cache *s, void **objs)
{
	for (int round = 0; round < 4; round++) {
		for (int i = 0; i < 4096; i++)
			objs[i] = kmem_cache_alloc(s, GFP_KERNEL);
		for (int i = 0; i < 4096; i++)
			kmem_cache_free(s, objs[i]);
	}
}

static unsigned long resident_free_and_slab(void)
{
	struct kmm_resident r;

	kmm_resident(&r);
	return r.slab_pages + r.free_pages + r.pcp_pages;
}

static void test_burst_given_back(void)
{
	static void *runs[NR_BURST_RUNS];
	/* Two sections of 1 KiB objects: above the zone's high watermark, one section. */
	size_t nr_burst = 2 * (PAGE_SIZE << MAX_PAGE_ORDER) / 1024;
	void **objs = malloc(nr_burst * sizeof(void *));
	size_t run = 16 * PAGE_SIZE;
	struct kmem_cache *other = kmem_cache_create("test-burst-other", 96, 0, 0, NULL);
	unsigned long section = 1UL << MAX_PAGE_ORDER, before;
	struct kmm_resident r;
	long old = kmm_page_decay_ms(-1);

	CHECK(other != NULL && objs != NULL);
	if (test_thp_always())
		goto out;
	reuse_small(other, objs);
	for (int i = 0; i < NR_BURST_RUNS; i++) {
		runs[i] = kmalloc(run, GFP_KERNEL);
		CHECK(runs[i] != NULL);
		memset(runs[i], 0x43, run);
	}
	for (int i = 0; i < NR_BURST_RUNS; i++)
		kfree(runs[i]);
	/* Dirty still: at least the 1 MiB a span's top extent keeps (test_kmalloc). */
	kmm_resident(&r);
	CHECK(r.free_pages >= (1024 * 1024) / PAGE_SIZE);
	kmm_page_decay_ms(20);
	for (int period = 0; period < 3; period++) {
		usleep(60 * 1000);
		reuse_small(other, objs);
	}
	kmm_resident(&r);
	CHECK(r.free_pages <= section / 2);

	kmm_page_decay_ms(-1);
	for (size_t i = 0; i < nr_burst; i++) {
		objs[i] = kmalloc(1024, GFP_KERNEL);
		CHECK(objs[i] != NULL);
		memset(objs[i], 0x42, 1024);
	}
	for (size_t i = 0; i < nr_burst; i++)
		kfree(objs[i]);
	before = resident_free_and_slab();
	CHECK(before >= 2 * section);
	kmm_page_decay_ms(20);
	for (int period = 0; period < 3; period++) {
		usleep(60 * 1000);
		reuse_small(other, objs);
	}
	CHECK(resident_free_and_slab() <= before - section);
out:
	kmm_page_decay_ms(old);
	kmem_cache_destroy(other);
	free(objs);
}

static void test_create_errors(void)
{
	errno = 0;
	CHECK(kmem_cache_create("zero", 0, 0, 0, NULL) == NULL);
	CHECK_EQ(errno, EINVAL);
	errno = 0;
	CHECK(kmem_cache_create("align", 64, 48, 0, NULL) == NULL);
	CHECK_EQ(errno, EINVAL);
	errno = 0;
	CHECK(kmem_cache_create(NULL, 64, 0, 0, NULL) == NULL);
	CHECK_EQ(errno, EINVAL);
}

static void panic_create(void *arg)
{
	(void)arg;
	kmem_cache_create("doomed", 0, 0, SLAB_PANIC, NULL);
}

static void destroy_with_objects(void *arg)
{
	struct kmem_cache *s = kmem_cache_create("leaky", 48, 0, 0, NULL);
	void *a = kmem_cache_alloc(s, GFP_KERNEL);
	void *b = kmem_cache_alloc(s, GFP_KERNEL);
	void *c = kmem_cache_alloc(s, GFP_KERNEL);
	char **addr = arg;

	sprintf(addr[0], "%p", b);
	kmem_cache_free(s, kmem_cache_alloc(s, GFP_KERNEL));
	kmem_cache_destroy(s);
	/* The objects stay valid: nothing was freed under them. */
	memset(a, 1, 48);
	memset(b, 1, 48);
	memset(c, 1, 48);
	exit(0);
}

static void wrong_cache(void *arg)
{
	struct kmem_cache *x = kmem_cache_create("cache-x", 48, 0, 0, NULL);
	struct kmem_cache *y = kmem_cache_create("cache-y", 48, 0, 0, NULL);

	(void)arg;
	kmem_cache_free(y, kmem_cache_alloc(x, GFP_KERNEL));
}

static void foreign_pointer(void *arg)
{
	struct kmem_cache *x = kmem_cache_create("cache-x", 48, 0, 0, NULL);
	static char not_kmm[64];

	(void)arg;
	kmem_cache_free(x, not_kmm);
}

static void test_reports(void)
{
	static char buf[64];
	char *addr[1] = { buf };
	struct child_result res;

	run_in_child(panic_create, NULL, &res);
	CHECK(res.signaled && res.signal == SIGABRT);
	CHECK(strstr(res.err, "kmem_cache_create(doomed, 0): cannot create the cache") != NULL);

	run_in_child(destroy_with_objects, addr, &res);
	CHECK_EQ(res.status, 0);
	CHECK(strstr(res.err, "BUG leaky: kmem_cache_destroy: the cache still has 3 objects") != NULL);

	run_in_child(wrong_cache, NULL, &res);
	CHECK(res.signaled && res.signal == SIGABRT);
	CHECK(strstr(res.err, "kmem_cache_free to cache cache-y, the object belongs to cache-x") != NULL);

	run_in_child(foreign_pointer, NULL, &res);
	CHECK(res.signaled && res.signal == SIGABRT);
	CHECK(strstr(res.err, "no slab object") != NULL);
}

/* The leak report names live objects; run in-process so the address is known. */
static void test_destroy_report_lists_objects(void)
{
	int fds[2], saved;
	char err[4096] = { 0 };
	struct kmem_cache *s = kmem_cache_create("listed", 48, 0, 0, NULL);
	void *obj = kmem_cache_alloc(s, GFP_KERNEL);
	char expect[64];

	CHECK(pipe(fds) == 0);
	saved = dup(2);
	dup2(fds[1], 2);
	kmem_cache_destroy(s);
	dup2(saved, 2);
	close(fds[1]);
	CHECK(read(fds[0], err, sizeof(err) - 1) > 0);
	close(fds[0]);
	sprintf(expect, "object %p still allocated", obj);
	CHECK(strstr(err, expect) != NULL);
	kmem_cache_free(s, obj);
	kmem_cache_destroy(s); /* now empty: really destroyed */
}

static void read_slabinfo(char *buf, size_t size)
{
	int fds[2];
	size_t len = 0;
	ssize_t n;

	CHECK(pipe(fds) == 0);
	kmm_show_slabinfo(fds[1]);
	close(fds[1]);
	while ((n = read(fds[0], buf + len, size - 1 - len)) > 0)
		len += (size_t)n;
	buf[len] = 0;
	close(fds[0]);
}

static void test_show_slabinfo(void)
{
	static char buf[65536];

	kfree(kmalloc(64, GFP_KERNEL));
	read_slabinfo(buf, sizeof(buf));
	CHECK(strncmp(buf, "slabinfo - version: 2.1\n", 24) == 0);
	CHECK(strstr(buf, "\nkmalloc-64 ") != NULL);
	CHECK(strstr(buf, "\nkmem_cache ") != NULL);
}

/*
 * A kmalloc class is made on demand, and a class above 64 bytes that is
 * not a power of two not before it holds 16 objects at once or has served
 * 128: until then its objects are chunks of kmalloc's heap, packed with
 * every other size. Then its slab cache appears in slabinfo and new
 * objects are the class's size.
 */
#define COLD_LIVE 16
#define COLD_ALLOCS 128

static bool listed(const char *name)
{
	static char buf[65536];

	read_slabinfo(buf, sizeof(buf));
	return strstr(buf, name) != NULL;
}

static void test_kmalloc_cache_on_demand(void)
{
	size_t size = PAGE_SIZE - PAGE_SIZE / 8;	/* the 7/8-page class, unused so far */
	size_t other = PAGE_SIZE / 2 - PAGE_SIZE / 8;	/* the 3/8-page one, unused too */
	void *p[COLD_LIVE + 1];
	char name[32];

	snprintf(name, sizeof(name), "\nkmalloc-%zu ", size);
	CHECK(!listed(name));
	for (int i = 0; i < COLD_LIVE; i++) {
		p[i] = kmalloc(size - 8, GFP_KERNEL);
		CHECK(p[i] != NULL);
		CHECK(ksize(p[i]) >= size - 8 && ksize(p[i]) < size + 16);
		memset(p[i], 0x5a, ksize(p[i]));
	}
	CHECK(!listed(name));
	p[COLD_LIVE] = kmalloc(size - 8, GFP_KERNEL);
	CHECK(p[COLD_LIVE] != NULL);
	CHECK_EQ(ksize(p[COLD_LIVE]), size);
	CHECK(listed(name));
	for (int i = 0; i <= COLD_LIVE; i++)
		kfree(p[i]);

	/* One at a time: the class's cache comes with its 129th object. */
	snprintf(name, sizeof(name), "\nkmalloc-%zu ", other);
	CHECK(!listed(name));
	for (int i = 0; i < COLD_ALLOCS; i++) {
		void *q = kmalloc(other, GFP_KERNEL);

		CHECK(q != NULL);
		CHECK(ksize(q) >= other);
		kfree(q);
	}
	CHECK(!listed(name));
	p[0] = kmalloc(other, GFP_KERNEL);
	CHECK(p[0] != NULL);
	CHECK_EQ(ksize(p[0]), other);
	CHECK(listed(name));
	kfree(p[0]);
}

/*
 * Two live sections that share a slot of the section lookup cache: their
 * indexes are equal modulo the cache's 256 slots (1 GiB apart with 4 KiB
 * pages); the test puts them 4096 sections (16 GiB) apart, a multiple. The first owns the slot and its row of slab indexes; kfree of a
 * block in the second must not take the owner's entry for it. The harmful
 * case is a page run in the second section at the page offset of one of the
 * owner's slab pages: read through the owner's row it would be an object of
 * that slab's cache. Such a run must go back to the runs, not into the
 * owner's cache, which would then hand its pages out as objects.
 *
 * kmm maps sections wherever the kernel puts them, so the test fills every
 * gap of the address space below the stack with PROT_NONE reservations except
 * a window at the chosen address; the zone's next section can only go there.
 * No libc allocation runs while the gaps are filled. Only where the layout is
 * predictable (64-bit x86, no sanitizer, not under an emulator's own mmap) is
 * a missed placement a failure; elsewhere the test says so and stops.
 */
#if UINTPTR_MAX > 0xffffffffu
#define SHARED_SLOT_SECTIONS 4096UL	/* a multiple of the cache's slots */
#define MAX_GAPS 4096
#define MAX_SLOT_RUNS 8192
#define SLOT_RUN_PAGES 5	/* above the largest class: a page run */
#define WINDOW_SLACK (64UL << 20)

static struct { uintptr_t start, end; } maps[MAX_GAPS];
static int nr_maps;
static struct { void *addr; size_t len; } holds[MAX_GAPS];
static int nr_holds;

/* /proc/self/maps into maps[], sorted as the kernel lists them; no malloc. */
static bool read_maps(void)
{
	static char buf[1 << 20];
	size_t len = 0;
	ssize_t n;
	int fd = open("/proc/self/maps", O_RDONLY);

	if (fd < 0)
		return false;
	while ((n = read(fd, buf + len, sizeof(buf) - 1 - len)) > 0)
		len += (size_t)n;
	close(fd);
	buf[len] = 0;
	nr_maps = 0;
	for (char *line = buf; *line && nr_maps < MAX_GAPS; line = strchr(line, '\n') + 1) {
		char *dash;

		maps[nr_maps].start = strtoul(line, &dash, 16);
		maps[nr_maps].end = strtoul(dash + 1, NULL, 16);
		nr_maps++;
		if (!strchr(line, '\n'))
			break;
	}
	return nr_maps > 1;
}

static bool range_free(uintptr_t start, uintptr_t end)
{
	for (int i = 0; i < nr_maps; i++) {
		if (maps[i].start < end && start < maps[i].end)
			return false;
	}
	return true;
}

static void hold(uintptr_t start, uintptr_t end)
{
	void *p;

	if (end <= start || nr_holds == MAX_GAPS)
		return;
	p = mmap((void *)start, end - start, PROT_NONE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED_NOREPLACE, -1, 0);
	if (p == MAP_FAILED)
		return;
	if (p != (void *)start) {	/* a kernel without MAP_FIXED_NOREPLACE */
		munmap(p, end - start);
		return;
	}
	holds[nr_holds].addr = p;
	holds[nr_holds].len = end - start;
	nr_holds++;
}

/*
 * Fills every gap between mappings but the window. The stack keeps room to
 * grow below it (the kernel places no mapping there anyway: mmap's search
 * starts lower down).
 */
static void hold_all_but(uintptr_t win_start, uintptr_t win_end)
{
	uintptr_t prev = 1UL << 20, here = (uintptr_t)&prev;

	nr_holds = 0;
	for (int i = 0; i < nr_maps; i++) {
		uintptr_t start = prev, end = maps[i].start;

		prev = maps[i].end > prev ? maps[i].end : prev;
		if (here >= maps[i].start && here < maps[i].end)
			end = end > start + WINDOW_SLACK ? end - WINDOW_SLACK : start;
		if (end <= start)
			continue;
		if (win_start >= start && win_end <= end) {
			hold(start, win_start);
			hold(win_end, end);
		} else {
			hold(start, end);
		}
	}
}

static void release_holds(void)
{
	for (int i = 0; i < nr_holds; i++)
		munmap(holds[i].addr, holds[i].len);
	nr_holds = 0;
}

static bool layout_predictable(void)
{
#if defined(__x86_64__)
	return !test_sanitized();
#else
	return false;
#endif
}

static void test_lookup_slot_shared(void)
{
	static void *objs[2048], *runs[MAX_SLOT_RUNS];
	static bool owner_slab[1UL << MAX_PAGE_ORDER];
	const uintptr_t section = PAGE_SIZE << MAX_PAGE_ORDER;
	struct kmem_cache *s = kmem_cache_create("test-slot", 256, 0, 0, NULL);
	uintptr_t owner, target = 0, stride = section * SHARED_SLOT_SECTIONS;
	int nr_runs = 0, in_target = 0, overlaps = 0;
	void *keep = NULL;

	CHECK(s != NULL);
	/* The owner: a section with slab pages of a cache with sheaves. */
	for (int i = 0; i < 2048; i++) {
		objs[i] = kmem_cache_alloc(s, GFP_KERNEL);
		CHECK(objs[i] != NULL);
	}
	owner = (uintptr_t)objs[0] & ~(section - 1);
	for (int i = 0; i < 2048; i++) {
		if (((uintptr_t)objs[i] & ~(section - 1)) == owner)
			owner_slab[((uintptr_t)objs[i] - owner) / PAGE_SIZE] = true;
	}
	CHECK(read_maps());
	for (long k = 1; k <= 64 && !target; k++) {
		uintptr_t down = owner - k * stride, up = owner + k * stride;

		if (owner > k * stride && down > (1UL << 32) &&
		    range_free(down - WINDOW_SLACK, down + section))
			target = down;
		else if (up < (1UL << 46) && range_free(up - WINDOW_SLACK, up + section))
			target = up;
	}
	CHECK(target != 0);

	/* From here until release_holds(): kmm only, no libc allocation. */
	hold_all_but(target - WINDOW_SLACK, target + section);
	while (nr_runs < MAX_SLOT_RUNS) {
		void *p = kmalloc(SLOT_RUN_PAGES * PAGE_SIZE, GFP_KERNEL | __GFP_NOWARN);

		if (!p)
			break;
		runs[nr_runs++] = p;
		in_target += ((uintptr_t)p & ~(section - 1)) == target;
	}
	release_holds();

	printf("  owner section %#lx, shared-slot section %#lx: %d runs there\n",
	       (unsigned long)owner, (unsigned long)target, in_target);
	if (!in_target && !layout_predictable()) {
		printf("  the zone did not grow into the window here: nothing to check\n");
	} else {
		CHECK(in_target > 0);
	}
	/* Runs elsewhere go now; one in the target stays, so its section stays mapped. */
	for (int i = 0; i < nr_runs; i++) {
		bool there = ((uintptr_t)runs[i] & ~(section - 1)) == target;

		if (!there) {
			kfree(runs[i]);
			runs[i] = NULL;
		} else if (!keep) {
			keep = runs[i];
			runs[i] = NULL;
		}
	}
	for (int i = 0; i < nr_runs; i++) {
		unsigned long off;

		if (!runs[i])
			continue;
		off = ((uintptr_t)runs[i] - target) / PAGE_SIZE;
		overlaps += owner_slab[off];
		CHECK_EQ(ksize(runs[i]), SLOT_RUN_PAGES * PAGE_SIZE);
		kfree(runs[i]);
	}
	if (in_target > 1)
		CHECK(overlaps > 0);
	printf("  %d of them on a page offset where the owner has a slab page\n", overlaps);
	/*
	 * They all went back to the target's span, none into the owner's cache:
	 * the span's free pages merged into one extent beside the kept run (the
	 * first carved there), which a request for all of them gets.
	 */
	if (keep) {
		size_t rest = ((1UL << MAX_PAGE_ORDER) - SLOT_RUN_PAGES) * PAGE_SIZE;
		unsigned char *all = kmalloc(rest, GFP_KERNEL);

		CHECK(all != NULL);
		CHECK(all == (unsigned char *)keep + SLOT_RUN_PAGES * PAGE_SIZE);
		kfree(all);
	}
	kfree(keep);
	for (int i = 0; i < 2048; i++)
		kfree(objs[i]);
	kmem_cache_destroy(s);
}
#else
static void test_lookup_slot_shared(void)
{
	printf("  32-bit: the lookup cache has a slot per section, nothing to share\n");
}
#endif

int main(void)
{
	RUN(test_mode);
	RUN(test_objects_unique);
	RUN(test_alignment);
	RUN(test_ctor);
	RUN(test_zalloc);
	RUN(test_bulk);
	RUN(test_shrink_leaves_no_page);
	RUN(test_slab_pages_reused_by_runs);
	RUN(test_lookup_slot_shared);
	RUN(test_barn_decay);
	RUN(test_barn_single_thread);
	RUN(test_migration_gathers_sheaves);
	RUN(test_refill_reuses_sheaves);
	RUN(test_burst_given_back);
	RUN(test_create_errors);
	RUN(test_reports);
	RUN(test_destroy_report_lists_objects);
	RUN(test_show_slabinfo);
	RUN(test_kmalloc_cache_on_demand);
	return 0;
}
