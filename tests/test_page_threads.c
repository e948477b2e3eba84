/*
 * Threads and fork. Blocks move between threads through a shared exchange,
 * so most frees happen on another thread (and usually another CPU) than the
 * allocation; every block carries a stamp that is checked before it is
 * freed. Run under ThreadSanitizer in CI. test_cross_thread_stress runs
 * first: it starts while the process still has one thread.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/single_threaded.h>
#include <sys/wait.h>
#include <unistd.h>

#include <kmm/kmm.h>

#include "test.h"

#define NR_THREADS 4
#define NR_SLOTS 64

struct stamp {
	unsigned long magic;
	unsigned int order;
	unsigned int thread;
	unsigned long seq;
};

static _Atomic(struct stamp *) slots[NR_SLOTS];
static atomic_bool stop;

static unsigned int pick_order(uint64_t *seed)
{
	uint64_t r = test_rand(seed) % 100;

	if (r < 60)
		return 0;
	if (r < 85)
		return (unsigned int)(1 + r % 3);
	return (unsigned int)(4 + r % 4);
}

static void check_and_free(struct stamp *s)
{
	size_t size = PAGE_SIZE << s->order;
	const unsigned char *tail = (const unsigned char *)s + size - 1;

	CHECK_EQ(s->magic, 0x6b6d6dUL ^ s->seq);
	CHECK_EQ(*tail, (unsigned char)s->seq);
	free_pages((unsigned long)s, s->order);
}

/* Checks and frees what the slots still hold; then every page is free again (*info). */
static void free_slots(struct kmm_buddyinfo *info)
{
	for (int i = 0; i < NR_SLOTS; i++) {
		struct stamp *s = atomic_exchange(&slots[i], NULL);

		if (s)
			check_and_free(s);
	}
	drain_all_pages();
	kmm_buddyinfo(info);
	CHECK_EQ(info->free_pages, info->managed_pages);
}

static void *worker(void *arg)
{
	unsigned int id = (unsigned int)(uintptr_t)arg;
	uint64_t seed = 0x1234567ull * (id + 1);
	int iterations = test_sanitized() ? 4000 : 40000;

	for (int i = 0; i < iterations; i++) {
		unsigned int order = pick_order(&seed);
		gfp_t gfp = (i % 7 == 0) ? GFP_ATOMIC : GFP_KERNEL;
		struct stamp *s = (struct stamp *)__get_free_pages(gfp | __GFP_ZERO, order);
		struct stamp *old;

		CHECK(s != NULL);
		CHECK_EQ(s->magic, 0);
		s->seq = ((unsigned long)id << 24) | (unsigned long)i;
		s->magic = 0x6b6d6dUL ^ s->seq;
		s->order = order;
		s->thread = id;
		((unsigned char *)s)[(PAGE_SIZE << order) - 1] = (unsigned char)s->seq;
		old = atomic_exchange(&slots[test_rand(&seed) % NR_SLOTS], s);
		if (old)
			check_and_free(old);
	}
	return NULL;
}

/*
 * First, while the process has one thread, main allocates and leaves blocks
 * in the exchange (kmm's locks are taken without locked instructions then);
 * the threads free them once they run.
 */
static void test_cross_thread_stress(void)
{
	pthread_t threads[NR_THREADS];
	struct kmm_buddyinfo info;

	CHECK(__libc_single_threaded);
	worker((void *)(uintptr_t)NR_THREADS);
	for (unsigned int i = 0; i < NR_THREADS; i++)
		CHECK(pthread_create(&threads[i], NULL, worker, (void *)(uintptr_t)i) == 0);
	for (unsigned int i = 0; i < NR_THREADS; i++)
		pthread_join(threads[i], NULL);
	free_slots(&info);
	CHECK_EQ(info.nr_free[MAX_PAGE_ORDER] << MAX_PAGE_ORDER, info.managed_pages);
}

static void *churn(void *arg)
{
	uint64_t seed = (uintptr_t)arg;

	while (!atomic_load(&stop)) {
		unsigned int order = pick_order(&seed);
		unsigned long a = __get_free_pages(GFP_KERNEL, order);

		CHECK(a != 0);
		memset((void *)a, 1, PAGE_SIZE);
		free_pages(a, order);
		if (test_rand(&seed) % 64 == 0)
			drain_all_pages();
	}
	return NULL;
}

/* The child of a fork taken while other threads allocate can allocate at once. */
static void test_fork_while_allocating(void)
{
	pthread_t threads[2];
	int forks = test_sanitized() ? 20 : 100;

	atomic_store(&stop, false);
	for (int i = 0; i < 2; i++)
		CHECK(pthread_create(&threads[i], NULL, churn, (void *)(uintptr_t)(i + 7)) == 0);
	for (int i = 0; i < forks; i++) {
		int status;
		pid_t pid = fork();

		CHECK(pid >= 0);
		if (pid == 0) {
			for (unsigned int order = 0; order <= MAX_PAGE_ORDER; order++) {
				unsigned long a = __get_free_pages(GFP_KERNEL, order);

				if (!a)
					_exit(2);
				memset((void *)a, 2, PAGE_SIZE << order);
				free_pages(a, order);
			}
			kmm_page_reclaim();
			_exit(0);
		}
		CHECK(waitpid(pid, &status, 0) == pid);
		CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	}
	atomic_store(&stop, true);
	for (int i = 0; i < 2; i++)
		pthread_join(threads[i], NULL);
}

/* Reclaim racing with allocation and free must lose nothing. */
static void *reclaimer(void *arg)
{
	(void)arg;
	while (!atomic_load(&stop))
		kmm_page_reclaim();
	return NULL;
}

static void test_reclaim_races(void)
{
	pthread_t r, threads[2];
	struct kmm_buddyinfo info;

	atomic_store(&stop, false);
	kmm_page_decay_ms(0);
	CHECK(pthread_create(&r, NULL, reclaimer, NULL) == 0);
	for (int i = 0; i < 2; i++)
		CHECK(pthread_create(&threads[i], NULL, worker, (void *)(uintptr_t)(i + 10)) == 0);
	for (int i = 0; i < 2; i++)
		pthread_join(threads[i], NULL);
	atomic_store(&stop, true);
	pthread_join(r, NULL);
	free_slots(&info);
}

int main(void)
{
	RUN(test_cross_thread_stress);
	RUN(test_fork_while_allocating);
	RUN(test_reclaim_races);
	return 0;
}
