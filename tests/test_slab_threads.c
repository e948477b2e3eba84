/*
 * Producers allocate, consumers on other threads check and free: every free
 * is remote (slab objects and chunks of kmalloc's heap). Plus thread churn:
 * thousands of short-lived threads must not grow memory without bound,
 * kmm_resident() beside a thread that makes and discards slabs, and
 * kmalloc's chunk heap and page runs on four threads while their decay
 * runs, and fast paths interrupted by signals. Runs under ThreadSanitizer,
 * in both modes.
 */
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/time.h>
#include <time.h>
#include <stdio.h>
#include <stdatomic.h>
#include <string.h>

#include <kmm/kmm.h>

#include "test.h"

#define QUEUE 1024
#define PRODUCERS 2
#define CONSUMERS 2

struct item {
	size_t size;
	uint64_t seq;
	bool from_cache;
};

static struct {
	pthread_mutex_t lock;
	pthread_cond_t not_empty, not_full;
	struct item *slots[QUEUE];
	size_t head, tail, count;
	int producers_left;
} q = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, PTHREAD_COND_INITIALIZER,
	{ 0 }, 0, 0, 0, PRODUCERS };

static struct kmem_cache *item_cache;
static int per_producer;

static void push(struct item *it)
{
	pthread_mutex_lock(&q.lock);
	while (q.count == QUEUE)
		pthread_cond_wait(&q.not_full, &q.lock);
	q.slots[q.tail] = it;
	q.tail = (q.tail + 1) % QUEUE;
	q.count++;
	pthread_cond_signal(&q.not_empty);
	pthread_mutex_unlock(&q.lock);
}

static struct item *pop(void)
{
	struct item *it = NULL;

	pthread_mutex_lock(&q.lock);
	while (q.count == 0 && q.producers_left)
		pthread_cond_wait(&q.not_empty, &q.lock);
	if (q.count) {
		it = q.slots[q.head];
		q.head = (q.head + 1) % QUEUE;
		q.count--;
		pthread_cond_signal(&q.not_full);
	}
	pthread_mutex_unlock(&q.lock);
	return it;
}

static unsigned char pattern(const struct item *it, size_t i)
{
	return (unsigned char)(it->seq * 31 + i);
}

static void *producer(void *arg)
{
	uint64_t seed = (uintptr_t)arg * 977 + 1;

	for (int i = 0; i < per_producer; i++) {
		unsigned int kind = (unsigned int)(test_rand(&seed) % 8);
		bool from_cache = kind < 2;
		/* One in eight is a chunk of kmalloc's heap (one to three pages). */
		size_t size = from_cache ? 128 : kind == 7 ?
			      PAGE_SIZE + 16 + test_rand(&seed) % (2 * PAGE_SIZE) :
			      sizeof(struct item) + test_rand(&seed) % 2000;
		struct item *it = from_cache ? kmem_cache_alloc(item_cache, GFP_KERNEL)
					     : kmalloc(size, GFP_KERNEL);
		unsigned char *bytes = (unsigned char *)it;

		CHECK(it != NULL);
		it->size = size;
		it->seq = ((uint64_t)(uintptr_t)arg << 32) | (uint64_t)i;
		it->from_cache = from_cache;
		for (size_t b = sizeof(*it); b < size; b++)
			bytes[b] = pattern(it, b);
		push(it);
	}
	pthread_mutex_lock(&q.lock);
	q.producers_left--;
	pthread_cond_broadcast(&q.not_empty);
	pthread_mutex_unlock(&q.lock);
	return NULL;
}

static void *consumer(void *arg)
{
	struct item *it;

	(void)arg;
	while ((it = pop())) {
		const unsigned char *bytes = (const unsigned char *)it;

		for (size_t b = sizeof(*it); b < it->size; b++)
			CHECK_EQ(bytes[b], pattern(it, b));
		if (it->from_cache)
			kmem_cache_free(item_cache, it);
		else
			kfree(it);
	}
	return NULL;
}

static struct kmm_slabinfo cache_info(const char *name)
{
	static struct kmm_slabinfo all[128];
	int n = kmm_slabinfo(all, 128);

	for (int i = 0; i < n && i < 128; i++) {
		if (strcmp(all[i].name, name) == 0)
			return all[i];
	}
	CHECK(!"cache found");
	return all[0];
}

static void test_producer_consumer(void)
{
	pthread_t p[PRODUCERS], c[CONSUMERS];
	struct kmm_slabinfo info;

	per_producer = test_sanitized() ? 20000 : 100000;
	item_cache = kmem_cache_create("pc-items", 128, 0, 0, NULL);
	CHECK(item_cache != NULL);
	for (int i = 0; i < CONSUMERS; i++)
		CHECK(pthread_create(&c[i], NULL, consumer, NULL) == 0);
	for (int i = 0; i < PRODUCERS; i++)
		CHECK(pthread_create(&p[i], NULL, producer, (void *)(uintptr_t)(i + 1)) == 0);
	for (int i = 0; i < PRODUCERS; i++)
		pthread_join(p[i], NULL);
	for (int i = 0; i < CONSUMERS; i++)
		pthread_join(c[i], NULL);
	/* Everything was freed: shrink gives every slab back. */
	kmem_cache_shrink(item_cache);
	info = cache_info("pc-items");
	CHECK_EQ(info.active_objs, 0);
	CHECK_EQ(info.num_slabs, 0);
	kmem_cache_destroy(item_cache);
}

static void *short_lived(void *arg)
{
	void *p[32];

	(void)arg;
	for (int i = 0; i < 32; i++)
		p[i] = kmalloc(64 + i * 16, GFP_KERNEL);
	for (int i = 0; i < 32; i++)
		kfree(p[i]);
	return NULL;
}

static void *nothing(void *arg)
{
	return arg;
}

/*
 * Once the process has had a second thread, a barn keeps up to ten full
 * sheaves for the CPUs to trade (test_slab checks two while it has one).
 */
#define NR_BARN_OBJS 2048

static void test_barn_threaded(void)
{
	static void *objs[NR_BARN_OBJS];
	struct kmem_cache *s = kmem_cache_create("barn-threaded", 64, 0, 0, NULL);
	long old = kmm_page_decay_ms(-1);
	pthread_t t;

	CHECK(s != NULL);
	CHECK(pthread_create(&t, NULL, nothing, NULL) == 0);
	pthread_join(t, NULL);
	for (int i = 0; i < NR_BARN_OBJS; i++) {
		objs[i] = kmem_cache_alloc(s, GFP_KERNEL);
		CHECK(objs[i] != NULL);
	}
	for (int i = 0; i < NR_BARN_OBJS; i++)
		kmem_cache_free(s, objs[i]);
	CHECK(cache_info("barn-threaded").cached_objs > 2 * 64);
	kmm_page_decay_ms(old);
	kmem_cache_destroy(s);
}

/* Cached objects go back when a thread exits: memory stays bounded. */
static void test_thread_churn(void)
{
	int rounds = test_sanitized() ? 300 : 3000;
	unsigned long after_warmup = 0;

	for (int i = 0; i < rounds; i++) {
		pthread_t t;

		CHECK(pthread_create(&t, NULL, short_lived, NULL) == 0);
		pthread_join(t, NULL);
		if (i == 50)
			after_warmup = cache_info("kmalloc-64").num_objs;
	}
	CHECK(cache_info("kmalloc-64").num_objs <= after_warmup + 64 * 4);
}

/*
 * kmm_resident() reads which cache owns each page with no slab lock while
 * slabs come and go on another thread: statistics, but no data race (the
 * thread sanitizer run checks) and the count stays sane.
 */
#define RESIDENT_OBJS 4096

static atomic_bool slabs_done;

static void *make_and_discard_slabs(void *arg)
{
	static void *objs[RESIDENT_OBJS];
	struct kmem_cache *s = arg;

	for (int round = 0; round < 20; round++) {
		for (int i = 0; i < RESIDENT_OBJS; i++) {
			objs[i] = kmem_cache_alloc(s, GFP_KERNEL);
			CHECK(objs[i] != NULL);
			memset(objs[i], round, 512);
		}
		for (int i = 0; i < RESIDENT_OBJS; i++)
			kmem_cache_free(s, objs[i]);
		kmem_cache_shrink(s);
	}
	atomic_store(&slabs_done, true);
	return NULL;
}

static void test_resident_while_slabs_change(void)
{
	struct kmem_cache *s = kmem_cache_create("test-resident-race", 512, 0, 0, NULL);
	struct kmm_buddyinfo info;
	struct kmm_resident r;
	pthread_t t;
	int calls = 0;

	CHECK(s != NULL);
	CHECK(pthread_create(&t, NULL, make_and_discard_slabs, s) == 0);
	while (!atomic_load(&slabs_done) || calls == 0) {
		kmm_resident(&r);
		kmm_buddyinfo(&info);
		/* Every page counted lies in a mapped section (sections may grow meanwhile). */
		CHECK(r.slab_pages + r.run_pages + r.other_pages + r.free_pages + r.pcp_pages <=
		      info.managed_pages + 64 * (1UL << MAX_PAGE_ORDER));
		calls++;
	}
	CHECK(pthread_join(t, NULL) == 0);
	printf("  %d kmm_resident calls meanwhile\n", calls);
	kmem_cache_destroy(s);
}

/*
 * kmalloc's chunk heap and page runs on four threads at once, with a decay
 * period of 10 ms so that purges (which give free chunks' and free
 * extents' pages back) run among the allocations, while the main thread
 * counts resident pages (which walks the run spans under their lock):
 * every live block must keep its bytes, also across krealloc, which grows
 * runs where they lie when it can, and the thread sanitizer run checks the
 * locking.
 */
#define HEAP_THREADS 4
#define HEAP_LIVE 16
#define HEAP_ROUNDS 6000

static atomic_int heap_workers_left;

static size_t heap_or_run_size(uint64_t *seed, unsigned int k)
{
	if (k & 1)
		return 4 * PAGE_SIZE + 1 + test_rand(seed) % (8 * PAGE_SIZE);
	return PAGE_SIZE + 16 + test_rand(seed) % (2 * PAGE_SIZE);
}

static void *heap_worker(void *arg)
{
	uint64_t seed = (uintptr_t)arg * 7919 + 3;
	unsigned char *live[HEAP_LIVE] = { 0 };
	size_t size[HEAP_LIVE] = { 0 };

	for (int r = 0; r < HEAP_ROUNDS; r++) {
		unsigned int k = (unsigned int)(test_rand(&seed) % HEAP_LIVE);
		unsigned char mark = (unsigned char)(k + 1);

		if (live[k]) {
			CHECK_EQ(live[k][0], mark);
			CHECK_EQ(live[k][size[k] / 2], mark);
			CHECK_EQ(live[k][size[k] - 1], mark);
		}
		if (live[k] && r % 3 == 0) {
			size_t grown = size[k] + PAGE_SIZE + test_rand(&seed) % (4 * PAGE_SIZE);

			live[k] = krealloc(live[k], grown, GFP_KERNEL);
			CHECK(live[k] != NULL);
			CHECK_EQ(live[k][size[k] - 1], mark);
			size[k] = grown;
		} else {
			kfree(live[k]);
			size[k] = heap_or_run_size(&seed, k);
			live[k] = kmalloc(size[k], GFP_KERNEL);
			CHECK(live[k] != NULL);
		}
		memset(live[k], mark, size[k]);
	}
	for (int k = 0; k < HEAP_LIVE; k++)
		kfree(live[k]);
	atomic_fetch_sub(&heap_workers_left, 1);
	return NULL;
}

static void test_heap_threads(void)
{
	pthread_t t[HEAP_THREADS];
	long old = kmm_page_decay_ms(10);
	struct kmm_resident r;

	atomic_store(&heap_workers_left, HEAP_THREADS);
	for (long i = 0; i < HEAP_THREADS; i++)
		CHECK(pthread_create(&t[i], NULL, heap_worker, (void *)i) == 0);
	while (atomic_load(&heap_workers_left) > 0)
		kmm_resident(&r);
	for (int i = 0; i < HEAP_THREADS; i++)
		CHECK(pthread_join(t[i], NULL) == 0);
	kmm_page_decay_ms(old);
}

/*
 * Page runs in a process with more than one thread: a freed run of up to
 * 16 pages waits in its CPU's cache for the next request of its length
 * (the same address, kzalloc still zero), so that threads do not meet on
 * the runs' lock; a cached run freed again is still reported.
 */
static void *no_op(void *arg)
{
	return arg;
}

static void run_twice_threaded(void *arg)
{
	pthread_t t;
	char *p;

	/* A child of fork starts with one thread: give it a second. */
	CHECK(pthread_create(&t, NULL, no_op, NULL) == 0);
	CHECK(pthread_join(t, NULL) == 0);
	p = kmalloc(6 * PAGE_SIZE, GFP_KERNEL);
	sprintf(arg, "%p", (void *)p);
	kfree(p);
	kfree(p);
}

static void test_run_cache(void)
{
	size_t size = 6 * PAGE_SIZE;
	struct kmm_resident before, after;
	cpu_set_t old, one;
	unsigned char *p, *z;
	bool pinned;

	CPU_ZERO(&one);
	CPU_SET(0, &one);
	pinned = sched_getaffinity(0, sizeof(old), &old) == 0 &&
		 sched_setaffinity(0, sizeof(one), &one) == 0;
	/*
	 * Empty caches first: runs that test_heap_threads left cached could
	 * take this CPU's cache over its bound at the free below, and the
	 * drain would take them out of the run count (seen once under qemu
	 * with 16 KiB pages).
	 */
	kmm_drain_all_pages();
	p = kmalloc(size, GFP_KERNEL);
	CHECK(p != NULL);
	memset(p, 0x5a, size);
	kmm_resident(&before);
	kfree(p);
	/* Cached, not freed into its span: its pages still count as a run's. */
	kmm_resident(&after);
	if (!test_thp_always())
		CHECK(after.run_pages >= before.run_pages);
	z = kzalloc(size, GFP_KERNEL);
	CHECK(z != NULL);
	if (pinned)
		CHECK(z == p);
	for (size_t i = 0; i < size; i += 97)
		CHECK_EQ(z[i], 0);
	/*
	 * The decay check (which the barns run once a period, and
	 * kmm_drain_all_pages at once) empties the caches: then the pages
	 * are a free extent's.
	 */
	kfree(z);
	kmm_drain_all_pages();
	kmm_resident(&after);
	if (!test_thp_always())
		CHECK(after.run_pages + 6 <= before.run_pages);
	if (pinned)
		sched_setaffinity(0, sizeof(old), &old);
	check_abort_report("cached run freed twice", run_twice_threaded,
			   "not the start of an allocation");
}

/*
 * Fast paths interrupted: a profiling timer signal (every 50 us of CPU
 * time, in practice every tick) lands in threads that allocate and free
 * until it has come 100 times, and its handler allocates and frees too. In rseq mode
 * a signal or a preemption inside a sequence sends it to its abort handler,
 * which restarts it; an object must still go to exactly one owner. Each
 * thread keeps its live objects stamped with its id and a generation and
 * checks the stamp before every free: an object handed out twice would be
 * overwritten by its second owner.
 */
#define ABORT_THREADS 2
#define ABORT_LIVE 32
#define ABORT_SIGNALS 100	/* the timer fires on CPU-time ticks: run until this many */
#define ABORT_MAX_ROUNDS 100000000

static atomic_long abort_signals;

/*
 * The handler must stay on the fast paths: a slow path takes locks (the
 * zone's, the sheaf cache's) that the thread it interrupted may hold, and
 * it would spin on them forever (seen once under qemu). Its kmalloc and
 * kfree are a balanced pair in kmalloc-48, which nothing else here uses,
 * so once the sheaf it pops from holds objects it never empties nor
 * overflows. handler_cache_warm() fills that sheaf: the calling thread's
 * with per-thread sheaves, the current CPU's in rseq mode.
 */
static void abort_handler(int sig)
{
	void *p = kmalloc(48, GFP_ATOMIC);

	(void)sig;
	kfree(p);
	atomic_fetch_add_explicit(&abort_signals, 1, memory_order_relaxed);
}

static void handler_cache_warm(void)
{
	kfree(kmalloc(48, GFP_KERNEL));
}

/* In rseq mode: warms every CPU this process may run on, one after another. */
static void handler_cache_warm_cpus(void)
{
	cpu_set_t all, one;

	if (sched_getaffinity(0, sizeof(all), &all) != 0)
		return;
	for (int cpu = 0; cpu < CPU_SETSIZE; cpu++) {
		if (!CPU_ISSET(cpu, &all))
			continue;
		CPU_ZERO(&one);
		CPU_SET(cpu, &one);
		if (sched_setaffinity(0, sizeof(one), &one) == 0)
			handler_cache_warm();
	}
	sched_setaffinity(0, sizeof(all), &all);
}

struct stamp {
	uint64_t owner;
	uint64_t gen;
};

static void *abort_worker(void *arg)
{
	uint64_t id = (uintptr_t)arg, seed = 7 + id, *bad = malloc(sizeof(*bad));
	struct stamp *live[ABORT_LIVE];
	sigset_t prof;

	/* Started with SIGPROF blocked: the handler may run here once this thread's sheaf is warm. */
	handler_cache_warm();
	sigemptyset(&prof);
	sigaddset(&prof, SIGPROF);
	CHECK(pthread_sigmask(SIG_UNBLOCK, &prof, NULL) == 0);
	*bad = 0;
	for (int i = 0; i < ABORT_LIVE; i++) {
		live[i] = kmalloc(sizeof(struct stamp), GFP_KERNEL);
		*live[i] = (struct stamp){ id, (uint64_t)i };
	}
	for (uint64_t r = 0; r < ABORT_MAX_ROUNDS &&
	     atomic_load_explicit(&abort_signals, memory_order_relaxed) < ABORT_SIGNALS; r++) {
		unsigned int k;

		seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
		k = (unsigned int)(seed >> 33) % ABORT_LIVE;
		*bad += live[k]->owner != id || live[k]->gen % ABORT_LIVE != k;
		kfree(live[k]);
		live[k] = kmalloc(sizeof(struct stamp), GFP_KERNEL);
		*live[k] = (struct stamp){ id, r * ABORT_LIVE + k };
	}
	for (int i = 0; i < ABORT_LIVE; i++)
		kfree(live[i]);
	return bad;
}

static void test_fast_paths_interrupted(void)
{
	struct sigaction sa = { .sa_handler = abort_handler, .sa_flags = SA_RESTART }, old;
	struct itimerval every = { { 0, 50 }, { 0, 50 } }, off = { { 0, 0 }, { 0, 0 } };
	pthread_t t[ABORT_THREADS];
	uint64_t bad = 0;
	sigset_t prof, saved;

	handler_cache_warm_cpus();
	/* This thread only waits: the signal goes to the workers, which unblock it. */
	sigemptyset(&prof);
	sigaddset(&prof, SIGPROF);
	CHECK(pthread_sigmask(SIG_BLOCK, &prof, &saved) == 0);
	CHECK(sigaction(SIGPROF, &sa, &old) == 0);
	CHECK(setitimer(ITIMER_PROF, &every, NULL) == 0);
	for (uintptr_t i = 0; i < ABORT_THREADS; i++)
		CHECK(pthread_create(&t[i], NULL, abort_worker, (void *)(i + 1)) == 0);
	for (int i = 0; i < ABORT_THREADS; i++) {
		void *ret;

		CHECK(pthread_join(t[i], &ret) == 0);
		bad += *(uint64_t *)ret;
		free(ret);
	}
	CHECK(setitimer(ITIMER_PROF, &off, NULL) == 0);
	/*
	 * A tick that came after the last worker left is pending on the
	 * process, blocked here: take it before the default action, which
	 * ends the process, is back (it did once, under qemu).
	 */
	while (sigtimedwait(&prof, NULL, &(struct timespec){ 0, 0 }) == SIGPROF)
		;
	CHECK(sigaction(SIGPROF, &old, NULL) == 0);
	CHECK(pthread_sigmask(SIG_SETMASK, &saved, NULL) == 0);
	printf("  %ld signals\n", atomic_load(&abort_signals));
	CHECK(atomic_load(&abort_signals) > 0);
	CHECK_EQ(bad, 0);
}

int main(void)
{
	RUN(test_producer_consumer);
	RUN(test_thread_churn);
	RUN(test_resident_while_slabs_change);
	RUN(test_heap_threads);
	RUN(test_run_cache);
	RUN(test_barn_threaded);
	RUN(test_fast_paths_interrupted);
	return 0;
}
