/*
 * Memory goes back to the OS: after a program frees everything, its RSS
 * returns near where it started, automatically above the dirty watermark
 * and completely on kmm_page_reclaim(). Measured with /proc/self/statm.
 */
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <kmm/kmm.h>

#include "test.h"

#define MiB (1024UL * 1024UL)
#define WORKING_SET (64 * MiB)

static void **blocks;
static size_t nr_blocks;

static void fill(unsigned int order)
{
	size_t size = PAGE_SIZE << order;

	nr_blocks = WORKING_SET / size;
	for (size_t i = 0; i < nr_blocks; i++) {
		blocks[i] = (void *)__get_free_pages(GFP_KERNEL, order);
		CHECK(blocks[i] != NULL);
		memset(blocks[i], 0x77, size);
	}
}

static void release(unsigned int order)
{
	for (size_t i = 0; i < nr_blocks; i++)
		free_pages((unsigned long)blocks[i], order);
}

/* RSS with the allocator started and holding nothing. */
static size_t baseline(void)
{
	free_pages(__get_free_pages(GFP_KERNEL, 0), 0);
	kmm_page_reclaim();
	return test_rss();
}

static void check_cycle(unsigned int order, long decay_ms, size_t slack_after_free)
{
	size_t r0, r1, r2;

	kmm_page_decay_ms(decay_ms);
	r0 = baseline();
	fill(order);
	r1 = test_rss();
	CHECK(r1 >= r0 + WORKING_SET - 4 * MiB);
	release(order);
	r2 = test_rss();
	if (r2 > r0 + slack_after_free) {
		fprintf(stderr, "order %u decay %ld: rss %zu KiB -> %zu KiB -> %zu KiB\n", order,
			decay_ms, r0 >> 10, r1 >> 10, r2 >> 10);
		CHECK(!"RSS back near the start after free");
	}
	kmm_page_reclaim();
	if (test_rss() > r0 + MiB) {
		fprintf(stderr, "order %u: rss %zu KiB at the start, %zu KiB after reclaim\n", order,
			r0 >> 10, test_rss() >> 10);
		CHECK(!"RSS back to the start after kmm_page_reclaim()");
	}
}

/* With decay 0, dirty pages beyond the high watermark go back at once. */
static void test_decay_zero(void)
{
	/* The dirty high watermark is one section; descriptors add a little. */
	size_t high = (PAGE_SIZE << MAX_PAGE_ORDER) * 9 / 8;
	size_t pcp = 512 * 1024 * (size_t)sysconf(_SC_NPROCESSORS_CONF);

	check_cycle(5, 0, high + MiB);
	check_cycle(MAX_PAGE_ORDER, 0, high + MiB);
	check_cycle(0, 0, high + pcp + MiB);
}

/* With decay -1 nothing goes back by itself, only on kmm_page_reclaim(). */
static void test_decay_never(void)
{
	size_t r0;
	struct kmm_buddyinfo info;

	kmm_page_decay_ms(-1);
	r0 = baseline();
	fill(4);
	release(4);
	CHECK(test_rss() >= r0 + WORKING_SET - 4 * MiB);
	kmm_buddyinfo(&info);
	CHECK(info.dirty_pages * PAGE_SIZE >= WORKING_SET - 4 * MiB);
	CHECK(kmm_page_reclaim() * PAGE_SIZE >= WORKING_SET - 4 * MiB);
	CHECK(test_rss() <= r0 + MiB);
}

/* With a decay time, dirty pages go back on the first free after it has passed. */
static void test_decay_time(void)
{
	struct timespec pause = { 0, 200 * 1000 * 1000 };
	unsigned long extra;
	size_t r0;

	kmm_page_decay_ms(50);
	r0 = baseline();
	fill(4);
	release(4);
	nanosleep(&pause, NULL);
	extra = __get_free_pages(GFP_KERNEL, 6);
	CHECK(extra != 0);
	free_pages(extra, 6);
	CHECK(test_rss() <= r0 + (PAGE_SIZE << MAX_PAGE_ORDER) + 2 * MiB);
}

/* Free sections beyond the reserve are unmapped; their addresses stop being kmm's. */
static void test_unmap_sections(void)
{
	unsigned long a[4];
	struct kmm_buddyinfo before, after;

	kmm_page_decay_ms(-1);
	kmm_page_reclaim();
	kmm_buddyinfo(&before);
	for (int i = 0; i < 4; i++) {
		a[i] = __get_free_pages(GFP_KERNEL, MAX_PAGE_ORDER);
		CHECK(a[i] != 0);
	}
	for (int i = 0; i < 4; i++)
		free_pages(a[i], MAX_PAGE_ORDER);
	kmm_buddyinfo(&after);
	CHECK(after.nr_sections >= 4);
	kmm_page_reclaim();
	kmm_buddyinfo(&after);
	CHECK_EQ(after.nr_sections, 1);
	CHECK(after.unmapped_sections >= before.unmapped_sections + 3);
	for (int i = 0, valid = 0; i < 4; i++) {
		valid += virt_addr_valid((void *)a[i]);
		CHECK(valid <= 1);
	}
}

int main(void)
{
	if (test_sanitized()) {
		printf("RSS figures mean little under a sanitizer\n");
		return TEST_SKIP;
	}
	blocks = calloc(WORKING_SET / 4096, sizeof(*blocks));
	CHECK(blocks != NULL);
	RUN(test_decay_zero);
	RUN(test_decay_never);
	RUN(test_decay_time);
	RUN(test_unmap_sections);
	free(blocks);
	return 0;
}
