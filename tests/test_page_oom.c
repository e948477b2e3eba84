/*
 * When the OS refuses memory (here: an address-space limit), allocation
 * returns NULL with errno = ENOMEM, never crashes, and the process goes on:
 * freed memory is reused and later requests succeed.
 */
#include <errno.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include <kmm/kmm.h>

#include "test.h"

static size_t vm_size(void)
{
	FILE *f = fopen("/proc/self/statm", "r");
	unsigned long pages = 0;

	CHECK(f != NULL);
	CHECK(fscanf(f, "%lu", &pages) == 1);
	fclose(f);
	return pages * (size_t)sysconf(_SC_PAGESIZE);
}

#define HEADROOM (256UL << 20)

static void exhaust(void *unused)
{
	size_t block = PAGE_SIZE << MAX_PAGE_ORDER;
	size_t cap = HEADROOM / block + 64;
	unsigned long *held = calloc(cap, sizeof(*held));
	struct rlimit lim;
	size_t n = 0;

	(void)unused;
	CHECK(held != NULL);
	lim.rlim_cur = lim.rlim_max = vm_size() + HEADROOM;
	CHECK(setrlimit(RLIMIT_AS, &lim) == 0);
	for (;;) {
		errno = 0;
		held[n] = __get_free_pages(GFP_KERNEL | __GFP_NOWARN, MAX_PAGE_ORDER);
		if (!held[n])
			break;
		if (++n == cap)
			_exit(TEST_SKIP); /* the limit is not enforced (qemu-user) */
	}
	CHECK_EQ(errno, ENOMEM);
	CHECK(n > 0);
	printf("the OS refused memory after %zu max-order blocks\n", n);
	fflush(stdout);
	/* Small requests fail too once the reserve is gone, and warn unless asked not to. */
	for (int i = 0; i < 4096; i++) {
		unsigned long a = __get_free_pages(GFP_KERNEL | __GFP_NORETRY | __GFP_NOWARN, 0);

		if (!a) {
			CHECK_EQ(errno, ENOMEM);
			break;
		}
	}
	/* The process goes on: what is freed is used again. */
	free_pages(held[--n], MAX_PAGE_ORDER);
	held[n] = __get_free_pages(GFP_KERNEL, MAX_PAGE_ORDER);
	CHECK(held[n] != 0);
	memset((void *)held[n], 1, block);
	while (n)
		free_pages(held[--n], MAX_PAGE_ORDER);
	CHECK(__get_free_pages(GFP_KERNEL, 3) != 0);
	_exit(0);
}

int main(void)
{
	struct child_result res;

	if (test_sanitized()) {
		printf("address-space limits do not mix with sanitizer shadow memory\n");
		return TEST_SKIP;
	}
	run_in_child(exhaust, NULL, &res);
	if (res.status == TEST_SKIP) {
		printf("RLIMIT_AS is not enforced here\n");
		return TEST_SKIP;
	}
	if (res.signaled || res.status != 0)
		fprintf(stderr, "child: signal %d status %d\n%s\n", res.signal, res.status, res.err);
	CHECK(!res.signaled);
	CHECK_EQ(res.status, 0);
	return 0;
}
