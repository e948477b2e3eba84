/*
 * The buddy allocator through <kmm/gfp.h>: orders, alignment, addresses,
 * split and merge, exact allocations, zeroing, GFP semantics.
 *
 * This process is the only user of its page allocator, so after
 * drain_all_pages() the buddy lists must account for every page exactly.
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include <kmm/kmm.h>

#include "test.h"

static struct kmm_buddyinfo settled(void)
{
	struct kmm_buddyinfo info;

	drain_all_pages();
	kmm_buddyinfo(&info);
	return info;
}

/* Every free page is in a whole max-order block, and nothing is allocated. */
static void check_all_merged(void)
{
	struct kmm_buddyinfo info = settled();

	for (int o = 0; o < MAX_PAGE_ORDER; o++)
		CHECK_EQ(info.nr_free[o], 0);
	CHECK_EQ(info.nr_free[MAX_PAGE_ORDER] << MAX_PAGE_ORDER, info.managed_pages);
	CHECK_EQ(info.free_pages, info.managed_pages);
	CHECK_EQ(info.nr_sections << MAX_PAGE_ORDER, info.managed_pages);
	CHECK_EQ(info.pcp_pages, 0);
}

static void test_get_order(void)
{
	unsigned long ps = PAGE_SIZE;

	printf("page size %lu\n", ps);
	CHECK(ps >= 4096 && (ps & (ps - 1)) == 0);
	CHECK_EQ(1UL << PAGE_SHIFT, ps);
	CHECK_EQ(get_order(1), 0);
	CHECK_EQ(get_order(ps), 0);
	CHECK_EQ(get_order(ps + 1), 1);
	CHECK_EQ(get_order(2 * ps), 1);
	CHECK_EQ(get_order(3 * ps), 2);
	CHECK_EQ(get_order(4 * ps), 2);
	CHECK_EQ(get_order(4 * ps + 1), 3);
	CHECK_EQ(get_order(ps << MAX_PAGE_ORDER), MAX_PAGE_ORDER);
}

static void test_every_order(void)
{
	for (unsigned int order = 0; order <= MAX_PAGE_ORDER; order++) {
		size_t size = PAGE_SIZE << order;
		struct page *page = alloc_pages(GFP_KERNEL, order);
		unsigned char *p;

		CHECK(page != NULL);
		p = page_address(page);
		CHECK(((uintptr_t)p & (size - 1)) == 0);
		CHECK(virt_to_page(p) == page);
		CHECK(virt_addr_valid(p));
		CHECK(virt_addr_valid(p + size - 1));
		for (size_t off = 0; off < size; off += PAGE_SIZE) {
			CHECK(page_address(virt_to_page(p + off + 17)) == p + off);
			p[off] = (unsigned char)order;
			p[off + PAGE_SIZE - 1] = (unsigned char)(off >> PAGE_SHIFT);
		}
		for (size_t off = 0; off < size; off += PAGE_SIZE) {
			CHECK_EQ(p[off], order);
			CHECK_EQ(p[off + PAGE_SIZE - 1], (unsigned char)(off >> PAGE_SHIFT));
		}
		__free_pages(page, order);
	}
	check_all_merged();
}

static int a_static;

static void test_foreign_addresses(void)
{
	int on_stack = 0;
	void *heap = malloc(64);

	CHECK(!virt_addr_valid(&on_stack));
	CHECK(!virt_addr_valid(&a_static));
	CHECK(!virt_addr_valid(heap));
	CHECK(!virt_addr_valid(NULL));
	CHECK(!virt_addr_valid((void *)UINTPTR_MAX));
	CHECK(virt_to_page(&on_stack) == NULL);
	free(heap);
	free_pages(0, 3); /* a no-op, as in the kernel */
}

/*
 * More sections than the section lookup's cache has slots (4096), so that
 * sections share slots and lookups fall back to the table: each block must
 * still be found, through an address anywhere in it, both before and after
 * the sections are given back and mapped again. 64-bit only (16 GiB of
 * address space with 4 KiB pages); a refused mapping ends the first round,
 * and then the second may be cut short too. Natively the second round must
 * map them all again.
 *
 * Under emulation (KMM_TEST_EMULATED, set for cross builds) the test maps
 * 256 sections, sharing no slot: qemu-user emulating 16 KiB pages, asked
 * for 4160 sections of 16 MiB on a loaded machine, refused mappings at
 * random (first rounds of 2500 to 4127, second rounds of none, or 3214
 * after 4160) and went on refusing them in the tests after this one.
 */
#define EMULATED_SECTIONS 256

static void test_many_sections(void)
{
#if UINTPTR_MAX > 0xffffffffu
	enum { WANT = 4096 + 64 };
	static struct page *blocks[WANT];
	static void *addrs[WANT];
	size_t size = PAGE_SIZE << MAX_PAGE_ORDER;
	int n = 0, first = 0, want = getenv("KMM_TEST_EMULATED") ? EMULATED_SECTIONS : WANT;
	bool refused = false;

	for (int round = 0; round < 2; round++) {
		int got = 0;
		unsigned long still = 0;

		for (; got < (round ? n : want); got++) {
			unsigned char *p;

			blocks[got] = alloc_pages(GFP_KERNEL | __GFP_NOWARN | __GFP_NORETRY,
						  MAX_PAGE_ORDER);
			if (!blocks[got])
				break;
			p = page_address(blocks[got]);
			p[0] = (unsigned char)got;
		}
		if (!round) {
			n = first = got;
			refused = got < want;
		}
		if (refused)
			CHECK(got <= n);
		else
			CHECK_EQ(got, n);
		n = got;
		for (int i = 0; i < n; i++) {
			unsigned char *p = page_address(blocks[i]);

			CHECK(virt_to_page(p) == blocks[i]);
			CHECK(page_address(virt_to_page(p + size / 2 + 5)) == p + size / 2);
			CHECK(virt_addr_valid(p + size - 1));
			CHECK_EQ(p[0], (unsigned char)i);
		}
		for (int i = 0; i < n; i++) {
			addrs[i] = page_address(blocks[i]);
			__free_pages(blocks[i], MAX_PAGE_ORDER);
		}
		/* Unmaps all sections but the reserve: the others are not kmm's now. */
		kmm_page_reclaim();
		for (int i = 0; i < n; i++)
			still += virt_addr_valid(addrs[i]);
		CHECK(still <= settled().nr_sections);
	}
	CHECK(first > 0);
	check_all_merged();
#endif
}

/* One block of order k in an otherwise free zone: one free block per order above it. */
static void test_split(void)
{
	for (unsigned int k = 0; k <= MAX_PAGE_ORDER; k++) {
		unsigned long addr = __get_free_pages(GFP_KERNEL, k);
		struct kmm_buddyinfo info;

		CHECK(addr != 0);
		info = settled();
		for (unsigned int o = 0; o < MAX_PAGE_ORDER; o++)
			CHECK_EQ(info.nr_free[o], o >= k ? 1 : 0);
		CHECK_EQ(info.nr_free[MAX_PAGE_ORDER], info.nr_sections - 1);
		CHECK_EQ(info.managed_pages - info.free_pages, 1UL << k);
		free_pages(addr, k);
		check_all_merged();
	}
}

#define NR_BLOCKS 400

static void test_coalesce_random(void)
{
	static struct { unsigned char *p; unsigned int order; } blocks[NR_BLOCKS];
	unsigned long allocated = 0;
	uint64_t seed = 0x9e3779b97f4a7c15ull;

	for (int i = 0; i < NR_BLOCKS; i++) {
		unsigned int order = (unsigned int)(test_rand(&seed) % 7);

		blocks[i].p = (unsigned char *)__get_free_pages(GFP_KERNEL, order);
		blocks[i].order = order;
		CHECK(blocks[i].p != NULL);
		memset(blocks[i].p, i & 0xff, PAGE_SIZE << order);
		allocated += 1UL << order;
	}
	/* Shuffle, then free one at a time, checking the books after every free. */
	for (int i = NR_BLOCKS - 1; i > 0; i--) {
		int j = (int)(test_rand(&seed) % (uint64_t)(i + 1));
		unsigned char *p = blocks[i].p;
		unsigned int o = blocks[i].order;

		blocks[i] = blocks[j];
		blocks[j].p = p;
		blocks[j].order = o;
	}
	for (int i = 0; i < NR_BLOCKS; i++) {
		struct kmm_buddyinfo info;
		unsigned long sum = 0;
		unsigned char tag = blocks[i].p[0];

		for (size_t off = 0; off < PAGE_SIZE << blocks[i].order; off += 512)
			CHECK_EQ(blocks[i].p[off], tag);
		free_pages((unsigned long)blocks[i].p, blocks[i].order);
		allocated -= 1UL << blocks[i].order;
		info = settled();
		for (int o = 0; o <= MAX_PAGE_ORDER; o++)
			sum += info.nr_free[o] << o;
		CHECK_EQ(sum, info.free_pages);
		CHECK_EQ(info.managed_pages - info.free_pages, allocated);
	}
	check_all_merged();
}

static void test_exact(void)
{
	static const size_t pages[] = { 1, 3, 5, 7, 100, 1000, 1023, 1024 };

	for (size_t i = 0; i < sizeof(pages) / sizeof(pages[0]); i++) {
		size_t size = pages[i] * PAGE_SIZE - (pages[i] > 1 ? 100 : 0);
		unsigned char *p = alloc_pages_exact(size, GFP_KERNEL);
		struct kmm_buddyinfo info;

		CHECK(p != NULL);
		CHECK(((uintptr_t)p & ((PAGE_SIZE << get_order(size)) - 1)) == 0);
		memset(p, 0x5a, size);
		info = settled();
		CHECK_EQ(info.managed_pages - info.free_pages, pages[i]);
		free_pages_exact(p, size);
		check_all_merged();
	}
	errno = 0;
	CHECK(alloc_pages_exact(0, GFP_KERNEL | __GFP_NOWARN) == NULL);
	CHECK_EQ(errno, EINVAL);
	errno = 0;
	CHECK(alloc_pages_exact((PAGE_SIZE << MAX_PAGE_ORDER) + 1, GFP_KERNEL | __GFP_NOWARN) == NULL);
	CHECK_EQ(errno, EINVAL);
}

static bool all_zero(const unsigned char *p, size_t size)
{
	for (size_t i = 0; i < size; i++) {
		if (p[i])
			return false;
	}
	return true;
}

static void test_zeroing(void)
{
	struct kmm_buddyinfo before, after;
	unsigned char *p;
	unsigned long addr;

	/* Reused dirty memory is cleared for __GFP_ZERO. */
	for (unsigned int order = 0; order <= 5; order++) {
		p = (unsigned char *)__get_free_pages(GFP_KERNEL, order);
		CHECK(p != NULL);
		memset(p, 0xaa, PAGE_SIZE << order);
		free_pages((unsigned long)p, order);
		p = (unsigned char *)__get_free_pages(GFP_KERNEL | __GFP_ZERO, order);
		CHECK(p != NULL);
		CHECK(all_zero(p, PAGE_SIZE << order));
		free_pages((unsigned long)p, order);
	}
	addr = get_zeroed_page(GFP_KERNEL);
	CHECK(addr != 0 && all_zero((void *)addr, PAGE_SIZE));
	free_page(addr);

	/* Released memory is known to be zero: no memset. */
	kmm_page_reclaim();
	kmm_buddyinfo(&before);
	p = (unsigned char *)__get_free_pages(GFP_KERNEL | __GFP_ZERO, 5);
	kmm_buddyinfo(&after);
	CHECK(p != NULL && all_zero(p, PAGE_SIZE << 5));
	CHECK_EQ(after.zeroed_skipped - before.zeroed_skipped, 32);
	CHECK_EQ(after.zeroed_cleared, before.zeroed_cleared);

	/* That block is dirty once used: the next __GFP_ZERO request clears it. */
	memset(p, 0x11, PAGE_SIZE << 5);
	free_pages((unsigned long)p, 5);
	kmm_buddyinfo(&before);
	p = (unsigned char *)__get_free_pages(GFP_KERNEL | __GFP_ZERO, 5);
	kmm_buddyinfo(&after);
	CHECK(p != NULL && all_zero(p, PAGE_SIZE << 5));
	CHECK_EQ(after.zeroed_cleared - before.zeroed_cleared, 32);
	free_pages((unsigned long)p, 5);
	check_all_merged();
}

/*
 * A request takes pages that are resident already before clean ones, even
 * from a larger free block: with a clean order-4 block free, an order-4
 * request splits the freed, written order-6 block, so the program's RSS
 * does not grow. (Above PCP_MAX_ORDER, so the zone serves it directly.)
 */
static void test_dirty_fit(void)
{
	struct kmm_buddyinfo before, after;
	unsigned long a, d, e;

	kmm_page_reclaim();
	CHECK_EQ(settled().dirty_pages, 0);
	/* From one clean section: d splits a's buddy, leaving clean orders 4 and 5. */
	a = __get_free_pages(GFP_KERNEL, 6);
	d = __get_free_pages(GFP_KERNEL, 4);
	CHECK(a != 0 && d != 0);
	CHECK_EQ(d, a + (PAGE_SIZE << 6));
	memset((void *)a, 0x5c, PAGE_SIZE << 6);
	free_pages(a, 6);
	before = settled();
	CHECK_EQ(before.nr_free[4], 1);
	CHECK_EQ(before.dirty_pages, 64);
	e = __get_free_pages(GFP_KERNEL, 4);
	after = settled();
	CHECK_EQ(e, a);
	CHECK_EQ(after.dirty_pages, 64 - 16);
	free_pages(e, 4);
	free_pages(d, 4);
	check_all_merged();
}

/*
 * kmm_resident() sorts the sections' resident pages by owner: a written
 * block is allocated ("other" through this API), the same block freed is
 * free and resident, and a reclaim leaves no free page resident.
 */
static void test_resident(void)
{
	struct kmm_resident r;
	unsigned long addr, other;

	if (test_thp_always())
		return;
	kmm_page_reclaim();
	kmm_resident(&r);
	CHECK_EQ(r.free_pages, 0);
	CHECK_EQ(r.pcp_pages, 0);
	CHECK(r.meta_pages > 0);
	other = r.other_pages;
	addr = __get_free_pages(GFP_KERNEL, 5);
	CHECK(addr != 0);
	memset((void *)addr, 0x3a, PAGE_SIZE << 5);
	kmm_resident(&r);
	CHECK_EQ(r.other_pages, other + 32);
	CHECK_EQ(r.free_pages, 0);
	free_pages(addr, 5);
	kmm_resident(&r);
	CHECK_EQ(r.other_pages, other);
	CHECK_EQ(r.free_pages, 32);
	kmm_page_reclaim();
	kmm_resident(&r);
	CHECK_EQ(r.free_pages, 0);
	check_all_merged();
}

/*
 * After a reclaim the zone holds one free section: exactly a max-order block,
 * which is less than a max-order request plus the reserve.
 */
static void test_gfp_reserve(void)
{
	struct kmm_buddyinfo info;
	struct page *atomic_page, *kernel_page;

	kmm_page_reclaim();
	info = settled();
	CHECK_EQ(info.nr_sections, 1);
	CHECK_EQ(info.free_pages, 1UL << MAX_PAGE_ORDER);

	/* GFP_NOWAIT leaves the reserve alone and does not ask the OS. */
	errno = 0;
	CHECK(alloc_pages(GFP_NOWAIT | __GFP_NOWARN, MAX_PAGE_ORDER) == NULL);
	CHECK_EQ(errno, ENOMEM);
	CHECK_EQ(settled().nr_sections, 1);

	/* GFP_ATOMIC may take the reserve, without mapping. */
	atomic_page = alloc_pages(GFP_ATOMIC, MAX_PAGE_ORDER);
	CHECK(atomic_page != NULL);
	CHECK_EQ(settled().nr_sections, 1);

	/* GFP_KERNEL maps memory, and tops up the reserve the atomic request used. */
	kernel_page = alloc_pages(GFP_KERNEL, 0);
	CHECK(kernel_page != NULL);
	info = settled();
	CHECK(info.free_pages >= (1UL << MAX_PAGE_ORDER) / 16);
	__free_pages(kernel_page, 0);
	__free_pages(atomic_page, MAX_PAGE_ORDER);
	check_all_merged();

	/* An order above MAX_PAGE_ORDER is an error, not an abort. */
	errno = 0;
	CHECK(alloc_pages(GFP_KERNEL | __GFP_NOWARN, MAX_PAGE_ORDER + 1) == NULL);
	CHECK_EQ(errno, EINVAL);
	CHECK(__get_free_pages(GFP_KERNEL | __GFP_NOWARN, 40) == 0);
}

static void nowait_failure(void *warn)
{
	kmm_page_reclaim();
	if (alloc_pages(GFP_NOWAIT | (warn ? 0 : __GFP_NOWARN), MAX_PAGE_ORDER))
		_exit(3);
	_exit(errno == ENOMEM ? 0 : 4);
}

static void test_nowarn(void)
{
	struct child_result res;

	run_in_child(nowait_failure, (void *)1, &res);
	CHECK_EQ(res.status, 0);
	CHECK(strstr(res.err, "kmm: page allocation failure: order:10") != NULL);
	run_in_child(nowait_failure, NULL, &res);
	CHECK_EQ(res.status, 0);
	CHECK_EQ(strlen(res.err), 0);
}

static void test_nofail(void)
{
	struct page *page = alloc_pages(GFP_KERNEL | __GFP_NOFAIL, 4);

	CHECK(page != NULL);
	__free_pages(page, 4);
}

static void test_show_buddyinfo(void)
{
	int fds[2];
	char buf[256] = { 0 };
	unsigned long n[NR_PAGE_ORDERS];
	struct kmm_buddyinfo info;

	CHECK(pipe(fds) == 0);
	info = settled();
	kmm_show_buddyinfo(fds[1]);
	close(fds[1]);
	CHECK(read(fds[0], buf, sizeof(buf) - 1) > 0);
	close(fds[0]);
	CHECK(strncmp(buf, "Node 0, zone   Normal ", 22) == 0);
	CHECK_EQ(sscanf(buf + 22, "%lu %lu %lu %lu %lu %lu %lu %lu %lu %lu %lu", &n[0], &n[1],
			&n[2], &n[3], &n[4], &n[5], &n[6], &n[7], &n[8], &n[9], &n[10]),
		 NR_PAGE_ORDERS);
	for (int o = 0; o <= MAX_PAGE_ORDER; o++)
		CHECK_EQ(n[o], info.nr_free[o]);
}

int main(void)
{
	RUN(test_get_order);
	RUN(test_every_order);
	RUN(test_foreign_addresses);
	RUN(test_many_sections);
	RUN(test_split);
	RUN(test_coalesce_random);
	RUN(test_exact);
	RUN(test_zeroing);
	RUN(test_dirty_fit);
	RUN(test_resident);
	RUN(test_gfp_reserve);
	RUN(test_nowarn);
	RUN(test_nofail);
	RUN(test_show_buddyinfo);
	return 0;
}
