/*
 * The kmalloc family: size classes and their waste, alignment, zeroing,
 * krealloc in place and by move, page-run and vmalloc sizes, copies,
 * kvmalloc, and bad kfree reports. Runs in both per-CPU modes.
 */
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <kmm/kmm.h>

#include "test.h"

#define MiB (1024UL * 1024UL)
/* Above the largest buddy block, kmalloc hands over to vmalloc. */
#define MAX_BLOCK (PAGE_SIZE << MAX_PAGE_ORDER)

static void test_zero_and_null(void)
{
	CHECK(kmalloc(0, GFP_KERNEL) == ZERO_SIZE_PTR);
	kfree(ZERO_SIZE_PTR);
	kfree(NULL);
	CHECK_EQ(ksize(ZERO_SIZE_PTR), 0);
	CHECK_EQ(ksize(NULL), 0);
}

/*
 * Every size up to 4 pages: usable size, alignment, at most 25% of the block
 * wasted above 24 bytes and at most 12.5% between 4 and 8 KiB.
 */
static void test_size_classes(void)
{
	size_t max = 4 * PAGE_SIZE;

	for (size_t size = 1; size <= max; size += size < 2048 ? 1 : 61) {
		unsigned char *p = kmalloc(size, GFP_KERNEL);
		size_t usable;

		CHECK(p != NULL);
		usable = ksize(p);
		CHECK(usable >= size);
		if (size > 24 && (usable - size) * 4 > usable) {
			fprintf(stderr, "size %zu lands in %zu\n", size, usable);
			CHECK(!"waste at most 25%");
		}
		if (size > 4096 && size <= 8192 && (usable - size) * 8 > usable) {
			fprintf(stderr, "size %zu lands in %zu\n", size, usable);
			CHECK(!"waste at most 12.5% between 4 and 8 KiB");
		}
		CHECK(((uintptr_t)p & 7) == 0);
		if ((size & (size - 1)) == 0)
			CHECK(((uintptr_t)p & (size - 1)) == 0);
		p[0] = 1;
		p[usable - 1] = 2;
		kfree(p);
	}
}

/* Every usable byte, as ksize() gives them, whichever path served the block. */
static void test_kzalloc_after_dirty_use(void)
{
	static const size_t odd[] = { 24, 100, 700, 1000, 3000 };

	for (size_t i = 0; i < sizeof(odd) / sizeof(odd[0]); i++) {
		unsigned char *p = kmalloc(odd[i], GFP_KERNEL);
		size_t usable = ksize(p);

		memset(p, 0xff, usable);
		kfree(p);
		p = kzalloc(odd[i], GFP_KERNEL);
		CHECK_EQ(ksize(p), usable);
		for (size_t j = 0; j < usable; j++)
			CHECK_EQ(p[j], 0);
		kfree(p);
	}
	for (size_t size = 8; size <= 8192; size *= 2) {
		unsigned char *p = kmalloc(size, GFP_KERNEL);

		memset(p, 0xff, size);
		kfree(p);
		p = kzalloc(size, GFP_KERNEL);
		for (size_t i = 0; i < size; i++)
			CHECK_EQ(p[i], 0);
		kfree(p);
		p = kcalloc(size / 8, 8, GFP_KERNEL);
		for (size_t i = 0; i < size; i++)
			CHECK_EQ(p[i], 0);
		kfree(p);
	}
}

static void test_overflow(void)
{
	errno = 0;
	CHECK(kmalloc_array(SIZE_MAX / 2, 3, GFP_KERNEL) == NULL);
	CHECK_EQ(errno, ENOMEM);
	errno = 0;
	CHECK(kcalloc(SIZE_MAX / 16, 32, GFP_KERNEL) == NULL);
	CHECK_EQ(errno, ENOMEM);
	errno = 0;
	CHECK(kmalloc(SIZE_MAX - 4096, GFP_KERNEL | __GFP_NOWARN) == NULL);
	CHECK_EQ(errno, ENOMEM);
}

static void fill(unsigned char *p, size_t n, unsigned seed)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (unsigned char)(i * 7 + seed);
}

static void check_fill(const unsigned char *p, size_t n, unsigned seed)
{
	for (size_t i = 0; i < n; i++) {
		if (p[i] != (unsigned char)(i * 7 + seed)) {
			fprintf(stderr, "byte %zu of %zu\n", i, n);
			CHECK(!"contents kept");
		}
	}
}

static void test_krealloc(void)
{
	unsigned char *p = kmalloc(100, GFP_KERNEL), *q;
	size_t steps[] = { 110, 500, 3000, 20000, 300000, MAX_BLOCK + MiB, 2 * MAX_BLOCK };
	size_t have = 100;

	fill(p, 100, 1);
	/* Within the class: in place. */
	q = krealloc(p, ksize(p), GFP_KERNEL);
	CHECK(q == p);
	/* Growing through slab, page-run and vmalloc sizes keeps the contents. */
	for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
		q = krealloc(p, steps[i], GFP_KERNEL);
		CHECK(q != NULL);
		check_fill(q, have, 1);
		fill(q, steps[i], 1);
		have = steps[i];
		p = q;
	}
	CHECK(is_vmalloc_addr(p));
	/* Shrinking keeps the block. */
	q = krealloc(p, 1000, GFP_KERNEL);
	CHECK(q == p);
	check_fill(q, 1000, 1);
	CHECK(krealloc(q, 0, GFP_KERNEL) == ZERO_SIZE_PTR);
	p = krealloc(NULL, 64, GFP_KERNEL);
	CHECK(p != NULL && ksize(p) >= 64);
	kfree(p);
}

/*
 * A page run grows where it lies into the free extent after it. After a
 * miss, krealloc has moved the block and freed the run, which would come
 * straight back: a plug takes it.
 */
static void test_krealloc_page_run_in_place(void)
{
	size_t run = 16 * (size_t)sysconf(_SC_PAGESIZE);
	unsigned char *kept[16], *plugs[16] = { NULL }, *big;
	int grown = -1;

	for (int i = 0; i < 16; i++) {
		unsigned char *p = kmalloc(run, GFP_KERNEL), *q;

		CHECK(p != NULL);
		fill(p, run, 3);
		q = krealloc(p, 4 * run, GFP_KERNEL);
		CHECK(q != NULL);
		check_fill(q, run, 3);
		CHECK(ksize(q) >= 4 * run);
		fill(q, 4 * run, 4);
		kept[i] = q;
		if (q == p) {
			grown = i;
			break;
		}
		plugs[i] = kmalloc(run, GFP_KERNEL);
	}
	CHECK(grown >= 0);
	/* The pages it took are no longer free: new blocks do not overlap it. */
	big = kept[grown];
	for (int i = 0; i < grown; i++) {
		kfree(kept[i]);
		kfree(plugs[i]);
	}
	for (int i = 0; i < 16; i++) {
		kept[i] = kmalloc(4 * run, GFP_KERNEL);
		CHECK(kept[i] != NULL);
		fill(kept[i], 4 * run, 5);
	}
	check_fill(big, 4 * run, 4);
	for (int i = 0; i < 16; i++) {
		check_fill(kept[i], 4 * run, 5);
		kfree(kept[i]);
	}
	kfree(big);
}

static bool range_zero(const unsigned char *p, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		if (p[i])
			return false;
	}
	return true;
}

/*
 * How many of the host pages of [p, p + len) (at most 4 MiB) are resident.
 * The vector has room for one entry per 4 KiB: qemu-user emulating 16 KiB
 * pages fills one per host page.
 */
#define MIN_HOST_PAGE 4096

static size_t resident_host_pages(void *p, size_t len)
{
	static unsigned char vec[1024];
	size_t n = 0;

	CHECK(len / MIN_HOST_PAGE <= sizeof(vec));
	CHECK_EQ(mincore(p, len, vec), 0);
	for (size_t i = 0; i < len / MIN_HOST_PAGE; i++)
		n += vec[i] & 1;
	return n;
}

/* Whether every page of [p, p + len) is non-resident; true if THP may back it. */
static bool range_not_resident(void *p, size_t len)
{
	return test_thp_always() || resident_host_pages(p, len) == 0;
}

/*
 * A page run is whole pages, exactly its request's. Freed runs merge with
 * their free neighbours at once: three freed first, last, then middle leave
 * one free extent, which a request for all three takes, at the first one's
 * address (a fourth run stays in use, and the rest of the span is larger).
 */
#define MERGE_RUN_PAGES 10

static void test_page_runs_merge(void)
{
	size_t len = MERGE_RUN_PAGES * PAGE_SIZE, size = len - 100;
	unsigned char *p[4], *all;

	for (int i = 0; i < 4; i++) {
		p[i] = kmalloc(size, GFP_KERNEL);
		CHECK(p[i] != NULL);
		CHECK(((uintptr_t)p[i] & (PAGE_SIZE - 1)) == 0);
		CHECK_EQ(ksize(p[i]), len);
		memset(p[i], 0x30 + i, size);
	}
	/* Carved one after the other from an empty span (every test before freed its blocks). */
	for (int i = 1; i < 4; i++)
		CHECK(p[i] == p[i - 1] + len);
	kfree(p[0]);
	kfree(p[2]);
	kfree(p[1]);
	all = kmalloc(3 * len, GFP_KERNEL);
	CHECK(all == p[0]);
	CHECK_EQ(ksize(all), 3 * len);
	CHECK(p[3][0] == 0x33 && p[3][size - 1] == 0x33);
	kfree(all);
	kfree(p[3]);
}

/*
 * A span's top extent (the free extent that reaches its end) keeps 2 MiB
 * of its dirty pages and gives back the rest when a run goes free: runs
 * carved upwards and freed last first are not resident beyond that, with
 * the decay off. 3.5 MiB of runs, one of which may straddle the 2 MiB.
 */
#define TOP_TOTAL (3584 * 1024)
#define TOP_KEEP (2048 * 1024)

static void test_page_run_top_trim(void)
{
	size_t size = PAGE_SIZE < 64 * 1024 ? 256 * 1024 : 8 * PAGE_SIZE;
	int nr = TOP_TOTAL / size, kept = (TOP_KEEP + size - 1) / size, released = 0;
	long old = kmm_page_decay_ms(-1);
	unsigned char *r[16];

	CHECK(nr <= 16);
	if (test_thp_always())
		goto out;
	for (int i = 0; i < nr; i++) {
		r[i] = kmalloc(size, GFP_KERNEL);
		CHECK(r[i] != NULL);
		memset(r[i], 0x5c, size);
	}
	for (int i = nr - 1; i >= 0; i--)
		kfree(r[i]);
	for (int i = 0; i < nr; i++)
		released += range_not_resident(r[i], size);
	CHECK(released >= nr - kept - 1);
out:
	kmm_page_decay_ms(old);
}

/* Whether every page of [p, p + len) is resident; true if THP may back it. */
static bool range_resident(void *p, size_t len)
{
	return test_thp_always() || resident_host_pages(p, len) == len / MIN_HOST_PAGE;
}

/*
 * What the top extent keeps rises to twice the largest run freed (up to a
 * span): a loop on a 3 MiB buffer keeps all of it dirty from the first free
 * on, instead of giving back and faulting in what lies beyond 2 MiB every
 * round. After test_page_run_top_trim, whose runs leave the keep at 2 MiB.
 */
static void test_page_run_top_keep_rises(void)
{
	size_t size = 3 * 1024 * 1024;
	long old = kmm_page_decay_ms(-1);
	unsigned char *p = NULL;

	if (test_thp_always())
		goto out;
	for (int round = 0; round < 3; round++) {
		p = kmalloc(size, GFP_KERNEL);
		CHECK(p != NULL);
		memset(p, round + 1, size);
		kfree(p);
	}
	CHECK(range_resident(p, size));
out:
	kmm_page_decay_ms(old);
}

/*
 * kzalloc clears only the pages of a run that an earlier owner wrote: a
 * reused run reads zero, and pages of the span nobody wrote stay zero and
 * not resident.
 */
static void test_page_run_zeroing(void)
{
	size_t size = 16 * PAGE_SIZE, fresh = 64 * PAGE_SIZE;
	unsigned char *hold, *big, *p, *q;

	/* A new span, from a zone with no dirty pages left: the kept empty span is taken first. */
	kmm_page_reclaim();
	hold = kmalloc(MAX_BLOCK, GFP_KERNEL);
	big = kzalloc(fresh, GFP_KERNEL);
	CHECK(hold != NULL && big != NULL);
	CHECK(range_not_resident(big, fresh));
	CHECK(range_zero(big, fresh));
	kfree(hold);
	p = kmalloc(size, GFP_KERNEL);
	CHECK(p != NULL);
	memset(p, 0xee, size);
	kfree(p);
	q = kzalloc(size, GFP_KERNEL);
	CHECK(q == p);
	CHECK(range_zero(q, size));
	kfree(big);
	kfree(q);
}

/*
 * Free extents between runs that stay free through a whole decay period
 * give their pages back with no malloc_trim, while the runs still in use
 * keep their span: a burst of 6-page runs freed but for every tenth, then
 * two frees a period apart (each runs the decay check). A freed run merges
 * into the hole it came from and makes it new again, so only most holes
 * must be released.
 */
#define NR_DECAY_RUNS 100

/* A burst of n blocks of size bytes, each written with 1, freed again but for every tenth. */
static void burst_keep_tenth(unsigned char **p, int n, size_t size)
{
	for (int i = 0; i < n; i++) {
		p[i] = kmalloc(size, GFP_KERNEL);
		CHECK(p[i] != NULL);
		memset(p[i], 1, size);
	}
	for (int i = 0; i < n; i++) {
		if (i % 10)
			kfree(p[i]);
	}
}

static void test_page_run_decay(void)
{
	static unsigned char *r[NR_DECAY_RUNS];
	size_t size = 6 * PAGE_SIZE;
	long old = kmm_page_decay_ms(20);
	int released = 0;

	if (test_thp_always())
		goto out;
	burst_keep_tenth(r, NR_DECAY_RUNS, size);
	for (int k = 0; k < 2; k++) {
		usleep(60 * 1000);
		kfree(kmalloc(size, GFP_KERNEL));
	}
	for (int i = 0; i < NR_DECAY_RUNS; i++)
		released += i % 10 && range_not_resident(r[i], size);
	CHECK(released >= NR_DECAY_RUNS / 2);
	for (int i = 0; i < NR_DECAY_RUNS; i += 10) {
		CHECK(r[i][0] == 1 && r[i][size - 1] == 1);
		kfree(r[i]);
	}
out:
	kmm_page_decay_ms(old);
}

/*
 * krealloc moves a page run of run bytes (a plug right after it makes the
 * move happen; a run taken from a free extent may have the plug elsewhere,
 * hence several tries) and returns whether the old run's pages were left
 * not resident.
 */
static bool krealloc_move_releases(size_t run)
{
	unsigned char *p[8], *plug[8], *q = NULL;
	bool released = false;
	int moved = -1;

	for (int i = 0; i < 8 && moved < 0; i++) {
		p[i] = kmalloc(run, GFP_KERNEL);
		plug[i] = kmalloc(run, GFP_KERNEL);
		CHECK(p[i] && plug[i]);
		fill(p[i], run, 6);
		q = krealloc(p[i], 2 * run, GFP_KERNEL);
		CHECK(q != NULL);
		check_fill(q, run, 6);
		if (q != p[i]) {
			released = range_not_resident(p[i], run);
			moved = i;
		}
		p[i] = q;
	}
	CHECK(moved >= 0);
	for (int i = 0; i <= moved; i++) {
		kfree(p[i]);
		kfree(plug[i]);
	}
	return released;
}

/*
 * A page run of 1 MiB or more that krealloc moves leaves its pages clean:
 * they are not resident once the move is done. A smaller one stays dirty,
 * for the next request of its size to take without faulting it in again.
 */
static void test_krealloc_moved_run_released(void)
{
	long old = kmm_page_decay_ms(-1);

	if (!test_thp_always()) {
		CHECK(krealloc_move_releases(1024 * 1024));
		/* 256 KiB, or more where that is too few pages to be a run. */
		CHECK(!krealloc_move_releases(8 * PAGE_SIZE > 256 * 1024 ? 8 * PAGE_SIZE : 256 * 1024));
	}
	kmm_page_decay_ms(old);
}

/*
 * kmm_resident() counts a written page run as run pages and written slab
 * objects as slab pages; freed, the run's pages are no run's any more. Of
 * the 1 MiB of objects, up to the cache's own reserve of free objects may
 * reuse pages written before: half of it must be new.
 */
#define NR_RESIDENT_OBJS 1024

static void test_resident_by_owner(void)
{
	static unsigned char *objs[NR_RESIDENT_OBJS];
	size_t run_size = 25 * PAGE_SIZE;
	struct kmm_resident before, after;
	unsigned char *run;

	if (test_thp_always())
		return;
	kmm_resident(&before);
	run = kmalloc(run_size, GFP_KERNEL);
	CHECK(run != NULL);
	memset(run, 0x5d, run_size);
	for (int i = 0; i < NR_RESIDENT_OBJS; i++) {
		objs[i] = kmalloc(1024, GFP_KERNEL);
		CHECK(objs[i] != NULL);
		memset(objs[i], 0x5e, 1024);
	}
	kmm_resident(&after);
	CHECK(after.run_pages >= before.run_pages + 25);
	CHECK(after.slab_pages >= before.slab_pages + NR_RESIDENT_OBJS * 1024 / 2 / PAGE_SIZE);
	kfree(run);
	kmm_resident(&after);
	CHECK(after.run_pages <= before.run_pages);
	for (int i = 0; i < NR_RESIDENT_OBJS; i++)
		kfree(objs[i]);
}

/*
 * A page run that must write fresh pages gives as many of the zone's dirty
 * free pages back to the OS, while more than a quarter of the high
 * watermark (a quarter section) stays: 512 dirty free pages, then a run of
 * 768 fresh pages in a new span (the span before holds one as large), leave
 * about 256 of them resident (512 without it). A block in use among the
 * dirty ones keeps them from merging into a section the new span could take.
 */
static void test_run_growth_releases_dirty(void)
{
	struct page *blocks[9];
	unsigned char *first, *big;
	size_t big_size = 768 * PAGE_SIZE;
	long old = kmm_page_decay_ms(-1);
	struct kmm_resident before, r;

	if (test_thp_always())
		goto out;
	first = kmalloc(big_size, GFP_KERNEL);
	CHECK(first != NULL);
	kmm_page_reclaim();
	kmm_resident(&before);
	for (int i = 0; i < 9; i++) {
		blocks[i] = alloc_pages(GFP_KERNEL, 6);
		CHECK(blocks[i] != NULL);
		memset(page_address(blocks[i]), 0x61, 64 * PAGE_SIZE);
	}
	for (int i = 0; i < 8; i++)
		__free_pages(blocks[i], 6);
	kmm_drain_all_pages();
	kmm_resident(&r);
	CHECK(r.free_pages >= before.free_pages + 512);
	big = kmalloc(big_size, GFP_KERNEL);
	CHECK(big != NULL);
	memset(big, 0x62, big_size);
	kmm_resident(&r);
	/* 256 dirty pages stay by the books; a few more may read resident. */
	CHECK(r.free_pages <= before.free_pages + 256 + 64);
	CHECK(r.run_pages >= before.run_pages + 768);
	kfree(big);
	kfree(first);
	__free_pages(blocks[8], 6);
out:
	kmm_page_decay_ms(old);
}

static void test_large(void)
{
	unsigned char *run = kmalloc(100000, GFP_KERNEL);
	size_t big_size = 2 * MAX_BLOCK;
	unsigned char *big = kmalloc(big_size, GFP_KERNEL);

	CHECK(run && big);
	CHECK(!is_vmalloc_addr(run));
	CHECK(virt_addr_valid(run));
	/* A page run is usable to its request's last page. */
	CHECK_EQ(ksize(run), PAGE_ALIGN(100000));
	CHECK(is_vmalloc_addr(big));
	CHECK_EQ(ksize(big), big_size);
	fill(run, 100000, 3);
	fill(big, big_size, 4);
	check_fill(run, 100000, 3);
	check_fill(big, big_size, 4);
	kfree(run);
	kfree(big);
	CHECK(!is_vmalloc_addr(big));
}

/*
 * Blocks beyond the largest buddy block are kept for a while after kfree
 * and handed to the next request they fit: same address, no new mapping.
 * kzalloc still gets zeroes.
 */
static void test_large_recycled(void)
{
	size_t size = 2 * MAX_BLOCK;
	unsigned char *a = kmalloc(size, GFP_KERNEL), *b, *c;

	CHECK(a != NULL);
	fill(a, size, 5);
	kfree(a);
	b = kmalloc(size - PAGE_SIZE, GFP_KERNEL);	/* fits: reused */
	CHECK(b == a);
	CHECK(is_vmalloc_addr(b));
	CHECK_EQ(ksize(b), size);
	kfree(b);
	c = kzalloc(size, GFP_KERNEL);
	CHECK(c == a);
	for (size_t i = 0; i < size; i += 997)
		CHECK_EQ(c[i], 0);
	kfree(c);
}

static void test_copies(void)
{
	char *s = kstrdup("hello, kmm", GFP_KERNEL);
	char *n = kstrndup("hello, kmm", 5, GFP_KERNEL);
	int data[4] = { 1, 2, 3, 4 };
	int *d = kmemdup(data, sizeof(data), GFP_KERNEL);

	CHECK(s && strcmp(s, "hello, kmm") == 0);
	CHECK(n && strcmp(n, "hello") == 0);
	CHECK(d && memcmp(d, data, sizeof(data)) == 0);
	CHECK(kstrdup(NULL, GFP_KERNEL) == NULL);
	kfree(s);
	kfree(n);
	kfree(d);
}

static void test_kfree_sensitive(void)
{
	unsigned char *p = kmalloc(256, GFP_KERNEL);

	memset(p, 0x5e, 256);
	kfree_sensitive(p);
	/* The object now sits in a sheaf; its bytes past the first word were cleared. */
	for (int i = 8; i < 256; i++)
		CHECK_EQ(p[i], 0);
}

static void test_kvmalloc(void)
{
	void *small = kvmalloc(1000, GFP_KERNEL);
	void *big = kvzalloc(2 * MAX_BLOCK, GFP_KERNEL);

	CHECK(small && !is_vmalloc_addr(small));
	CHECK(big && is_vmalloc_addr(big));
	CHECK_EQ(((unsigned char *)big)[2 * MAX_BLOCK - 1], 0);
	kvfree(small);
	kvfree(big);
}

static void kfree_foreign(void *arg)
{
	static char not_kmm[64];

	sprintf(arg, "%p", (void *)not_kmm);
	kfree(not_kmm);
}

static void kfree_inside_run(void *arg)
{
	char *p = kmalloc(100000, GFP_KERNEL);

	sprintf(arg, "%p", (void *)(p + PAGE_SIZE));
	kfree(p + PAGE_SIZE);
}

static void kfree_twice_run(void *arg)
{
	char *p = kmalloc(100000, GFP_KERNEL);

	sprintf(arg, "%p", (void *)p);
	kfree(p);
	kfree(p);
}

static void kfree_twice_big(void *arg)
{
	char *p = kmalloc(2 * MAX_BLOCK, GFP_KERNEL);

	sprintf(arg, "%p", (void *)p);
	kfree(p);	/* kept for reuse, but no longer a live block */
	kfree(p);
}

static void kfree_twice_small(void *arg)
{
	char *p = kmalloc(100, GFP_KERNEL);

	sprintf(arg, "%p", (void *)p);
	kfree(p);
	kfree(p);
}

/* A chunk of the heap (more than a page, not a power of two). */
#define HEAP_SIZE (PAGE_SIZE + PAGE_SIZE / 4)

static void kfree_inside_chunk(void *arg)
{
	char *p = kmalloc(HEAP_SIZE, GFP_KERNEL);

	sprintf(arg, "%p", (void *)(p + 64));
	kfree(p + 64);
}

static void kfree_twice_chunk(void *arg)
{
	char *keep = kmalloc(HEAP_SIZE, GFP_KERNEL);	/* the span stays */
	char *p = kmalloc(HEAP_SIZE, GFP_KERNEL);
	char *after = kmalloc(HEAP_SIZE, GFP_KERNEL);	/* p merges with nothing */

	(void)keep;
	(void)after;
	sprintf(arg, "%p", (void *)p);
	kfree(p);
	kfree(p);
}

/*
 * Sizes above a page that are not powers of two are chunks of the heap:
 * 16-byte aligned, the usable size within 16 bytes of the request, and
 * every byte kept. A freed chunk merges with its free neighbours at once:
 * three neighbours freed first, last, then middle leave one free chunk,
 * which a request for all three takes, at the first one's address (a
 * fourth chunk stays in use, so the span is not emptied).
 */
#define HEAP_NEED (HEAP_SIZE + 16)	/* a chunk: a 16-byte header, no padding */

static void test_heap_chunks_merge(void)
{
	unsigned char *p[4], *all;

	for (int i = 0; i < 4; i++) {
		p[i] = kmalloc(HEAP_SIZE, GFP_KERNEL);
		CHECK(p[i] != NULL);
		CHECK(((uintptr_t)p[i] & 15) == 0);
		CHECK_EQ(ksize(p[i]), HEAP_SIZE);
		memset(p[i], 0x40 + i, HEAP_SIZE);
	}
	/* Carved one after the other from an empty heap (every test before freed its blocks). */
	for (int i = 1; i < 4; i++)
		CHECK(p[i] == p[i - 1] + HEAP_NEED);
	for (int i = 0; i < 4; i++)
		CHECK(p[i][0] == 0x40 + i && p[i][HEAP_SIZE - 1] == 0x40 + i);
	kfree(p[0]);
	kfree(p[2]);
	kfree(p[1]);
	all = kmalloc(3 * HEAP_NEED - 16, GFP_KERNEL);
	CHECK(all == p[0]);
	CHECK_EQ(ksize(all), 3 * HEAP_NEED - 16);
	CHECK_EQ(p[3][0], 0x43);
	kfree(all);
	kfree(p[3]);
}

/*
 * krealloc of a chunk grows it into the free chunk after it without a
 * copy; with that neighbour in use it moves, keeping the contents.
 */
static void test_heap_grow_in_place(void)
{
	unsigned char *p = kmalloc(HEAP_SIZE, GFP_KERNEL), *q, *r;

	CHECK(p != NULL);
	memset(p, 0x5a, HEAP_SIZE);
	q = krealloc(p, 2 * HEAP_SIZE, GFP_KERNEL);
	CHECK(q == p);
	CHECK_EQ(ksize(q), 2 * HEAP_SIZE);
	CHECK(q[HEAP_SIZE - 1] == 0x5a);
	memset(q, 0x5b, 2 * HEAP_SIZE);
	r = kmalloc(HEAP_SIZE, GFP_KERNEL);	/* right after q */
	CHECK(r == q + 2 * HEAP_SIZE + 16);
	p = krealloc(q, 3 * HEAP_SIZE, GFP_KERNEL);
	CHECK(p != NULL && p != q);
	CHECK(p[0] == 0x5b && p[2 * HEAP_SIZE - 1] == 0x5b);
	kfree(p);
	kfree(r);
}

/*
 * Powers of two above a page keep their natural alignment (their class),
 * and when every chunk is free the heap's spans go back to the zone but
 * one kept for the next burst.
 */
static void test_heap_spans_given_back(void)
{
	static void *chunks[256];
	struct kmm_buddyinfo before, after;
	unsigned long used_before, used_after;

	for (size_t size = 2 * PAGE_SIZE; size <= 4 * PAGE_SIZE; size *= 2) {
		void *p = kmalloc(size, GFP_KERNEL);

		CHECK(p != NULL);
		CHECK(((uintptr_t)p & (size - 1)) == 0);
		kfree(p);
	}
	kmm_drain_all_pages();
	kmm_buddyinfo(&before);
	for (int i = 0; i < 256; i++) {
		chunks[i] = kmalloc(3 * PAGE_SIZE - 100, GFP_KERNEL);
		CHECK(chunks[i] != NULL);
		memset(chunks[i], 1, 3 * PAGE_SIZE - 100);
	}
	for (int i = 0; i < 256; i++)
		kfree(chunks[i]);
	kmm_drain_all_pages();
	kmm_buddyinfo(&after);
	used_before = before.managed_pages - before.free_pages - before.pcp_pages;
	used_after = after.managed_pages - after.free_pages - after.pcp_pages;
	/* At most the one spare span of 64 pages stays. */
	CHECK(used_after <= used_before + 64);
}

/*
 * The heap's decay: chunks that stay free through a whole decay period give
 * their inner pages back with no malloc_trim, while the chunks still in use
 * keep the spans. A burst of 3.5-page chunks freed but for every tenth,
 * then two allocations a period apart (each runs the decay check).
 */
#define NR_DECAY_CHUNKS 100

static bool overlaps(const unsigned char *a, size_t alen, const unsigned char *b, size_t blen)
{
	return a < b + blen && b < a + alen;
}

static void test_heap_decay(void)
{
	static unsigned char *c[NR_DECAY_CHUNKS];
	size_t size = 3 * PAGE_SIZE + PAGE_SIZE / 2;
	long old = kmm_page_decay_ms(20);
	unsigned char *t[2];
	int checked = 0;

	burst_keep_tenth(c, NR_DECAY_CHUNKS, size);
	for (int k = 0; k < 2; k++) {
		usleep(60 * 1000);
		t[k] = kmalloc(size, GFP_KERNEL);
		CHECK(t[k] != NULL);
	}
	for (int i = 0; i < NR_DECAY_CHUNKS; i++) {
		/* The whole pages inside the freed chunk, clear of its header and links. */
		uintptr_t from = ((uintptr_t)c[i] + 64 + PAGE_SIZE - 1) & ~(uintptr_t)(PAGE_SIZE - 1);
		uintptr_t to = ((uintptr_t)c[i] + size) & ~(uintptr_t)(PAGE_SIZE - 1);

		if (!(i % 10) || overlaps(c[i], size, t[0], size) || overlaps(c[i], size, t[1], size))
			continue;
		CHECK(range_not_resident((void *)from, to - from));
		checked++;
	}
	CHECK(checked >= NR_DECAY_CHUNKS / 2);
	for (int i = 0; i < NR_DECAY_CHUNKS; i += 10)
		CHECK(c[i][0] == 1 && c[i][size - 1] == 1);
	kfree(t[0]);
	kfree(t[1]);
	for (int i = 0; i < NR_DECAY_CHUNKS; i += 10)
		kfree(c[i]);
	kmm_page_decay_ms(old);
}

static void test_bad_kfree(void)
{
	static const struct {
		void (*fn)(void *);
		const char *expect;
	} cases[] = {
		{ kfree_foreign, "invalid pointer: kmm never gave out this address" },
		{ kfree_inside_run, "not the start of an allocation" },
		{ kfree_twice_run, "not the start of an allocation" },
		{ kfree_twice_big, "invalid pointer: kmm never gave out this address" },
		{ kfree_twice_small, "double free" },
		{ kfree_inside_chunk, "not the start of an allocation" },
		{ kfree_twice_chunk, "double free" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		check_abort_report(cases[i].expect, cases[i].fn, cases[i].expect);
}

int main(void)
{
	RUN(test_zero_and_null);
	RUN(test_size_classes);
	RUN(test_heap_chunks_merge);
	RUN(test_heap_grow_in_place);
	RUN(test_heap_spans_given_back);
	RUN(test_heap_decay);
	RUN(test_page_runs_merge);
	RUN(test_page_run_top_trim);
	RUN(test_page_run_top_keep_rises);
	RUN(test_page_run_zeroing);
	RUN(test_page_run_decay);
	RUN(test_kzalloc_after_dirty_use);
	RUN(test_overflow);
	RUN(test_krealloc);
	RUN(test_krealloc_page_run_in_place);
	RUN(test_krealloc_moved_run_released);
	RUN(test_resident_by_owner);
	RUN(test_run_growth_releases_dirty);
	RUN(test_large);
	RUN(test_large_recycled);
	RUN(test_copies);
	RUN(test_kfree_sensitive);
	RUN(test_kvmalloc);
	RUN(test_bad_kfree);
	return 0;
}
