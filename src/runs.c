/*
 * runs.c - kmalloc's page runs: blocks above kmalloc's largest class (four
 * pages) and up to a section, carved in whole pages from run spans.
 *
 * A run span is one section, taken from the page allocator as one block of
 * MAX_PAGE_ORDER and used for runs only. A run is exactly as many pages as
 * its request. A freed run merges at once with the free extents on either
 * side, and an allocation takes the best-fitting free extent (the smallest
 * that holds it, among the first few of its bin) and leaves the rest free.
 * realloc grows a run into the free extent after it, and shrinks it where
 * it lies.
 *
 * Why not whole buddy blocks, as before: a freed block of one order serves
 * no request of a higher order until its buddy is free too, so a program
 * whose large buffers change size kept freed blocks resident beside fresh
 * ones. Replaying git's allocations above 16 KiB cost 5492 KiB of RSS for a
 * live peak of 4463 (glibc 4424); a simulation of page-granular best fit
 * gave 4516 on the same trace. glibc's heap merges free neighbours of any
 * size the same way.
 *
 * The bookkeeping is in the page descriptors, so a span's pages are touched
 * only by the runs in them:
 *   span head     PG_alloc (the page allocator's block) and PG_run_span;
 *                 freelist points to the span's struct run_span.
 *   run head      PG_large_kmalloc; private = its usable size, whole pages.
 *   free extent   first page PG_run_free, private = its length in pages,
 *                 inuse = the decay epoch it went free in (RUN_CLEAN once
 *                 its pages went back), lru = its bin's list; last page
 *                 PG_run_tail, private = the length again (not for the
 *                 extent that reaches the span's end: extent_has_tail()).
 * A span's dirty bitmap has one bit per page that may be resident: set over
 * a run's usable pages when it is freed, cleared when pages go back to the
 * OS. __GFP_ZERO clears only dirty pages, and an empty span goes back to the
 * zone saying how far it was written.
 *
 * Decay: a free extent that stays free through a whole decay period gives
 * its dirty pages back (decay_tick()); the top extent, reaching a span's
 * end, keeps 2 MiB of them (or twice the largest run freed, if more) and
 * gives back the rest at once (trim_top()).
 * One empty span stays, for the next allocation; it goes back to the zone
 * once it has stayed empty as long, and a second empty span goes back at
 * once.
 *
 * Locking: run_lock guards every span's extents and dirty bits, the bins
 * and the counters; each per-CPU cache of freed runs has its own lock,
 * taken before run_lock. Spans come from and go back to the page allocator, and
 * their struct run_span from and to kmalloc, with run_lock dropped, so it is
 * never held while taking another lock of kmm's; kmm_resident() takes it
 * inside the zone's lock (run_count_resident()). The decay's madvise calls run
 * under it, as the heap's do: an extent released unlocked could be handed
 * out meanwhile.
 */
#include "runs.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>

#include <kmm/mmzone.h>
#include <kmm/slab.h>

#include "bitmap.h"
#include "internal.h"
#include "list.h"
#include "lock.h"
#include "os.h"
#include "page_alloc.h"
#include "rseq.h"
#include "topology.h"

#define SPAN_PAGES (1UL << MAX_PAGE_ORDER)
#define SPAN_WORDS (SPAN_PAGES / BITS_PER_LONG)
#define RUN_EXACT_SHIFT 5	/* a bin per length up to 32 pages, then four per doubling */
#define RUN_EXACT_BINS (1u << RUN_EXACT_SHIFT)
#define RUN_NR_BINS (RUN_EXACT_BINS + 4 * (MAX_PAGE_ORDER - RUN_EXACT_SHIFT) + 1)
#define RUN_BIN_SCAN 64		/* extents of a bin compared for the best fit */
#define RUN_CLEAN 0xffffffffu
#define RUN_TOP_KEEP (2048 * 1024)	/* bytes the top extent keeps dirty at first (trim_top()) */

_Static_assert(RUN_NR_BINS <= 64, "one mask bit per bin");

struct run_span {
	unsigned long dirty[SPAN_WORDS];
};

static struct kmm_lock run_lock = KMM_LOCK_INIT;
static struct list_head run_bins[RUN_NR_BINS];
static uint64_t run_bin_mask;		/* bit b: bin b is not empty */
static unsigned long run_spans, run_used_pages;
static unsigned long run_top_keep;	/* pages; see trim_top() */
static struct decay_clock run_clock;
static pthread_once_t run_once = PTHREAD_ONCE_INIT;

/*
 * Per-CPU caches of freed runs of up to RUN_PCP_MAX_PAGES, by length, used
 * only once the process has a second thread: with one, run_lock costs a
 * plain load and store, and a cache would only keep memory from merging.
 * With several, every run of these sizes took run_lock twice, and two
 * threads looping on 24 KiB blocks spent 617 ns a malloc+free pair in it
 * (39 ns with the zone's per-CPU lists, which served such runs before the
 * spans). A cache holds at most RUN_PCP_HIGH pages; beyond, half goes back
 * to the spans. Allocation and free only try a cache's lock, as the page
 * allocator's per-CPU lists do. A cached run keeps its head's private and
 * carries PG_run_cached instead of PG_large_kmalloc, so a second free of
 * it is reported. The decay hook and malloc_trim empty the caches.
 * Lock order: a cache's lock, then run_lock.
 */
#define RUN_PCP_MAX_PAGES 16
#define RUN_PCP_HIGH 64

struct run_pcp {
	struct kmm_lock lock;
	unsigned long pages;
	struct list_head lists[RUN_PCP_MAX_PAGES + 1];	/* by length in pages */
} ____cacheline_aligned;

static struct run_pcp *run_pcps;	/* NULL: no caches (the mapping failed) */
static unsigned int nr_run_pcp;


static void run_decay_check(void);

KMM_HOT_TEXT static void run_setup(void)
{
	unsigned int n = topology_nr_possible_cpus();
	/* Left zero: each list is set up by its first use (list_init_lazy()). */
	struct run_pcp *pcps = os_map_meta(sizeof(*pcps) * n, 0);

	for (unsigned int b = 0; b < RUN_NR_BINS; b++)
		INIT_LIST_HEAD(&run_bins[b]);
	run_top_keep = RUN_TOP_KEEP >> os_page_shift;
	/* Under run_lock, which the fork handler takes to read them (run_fork_lock()). */
	kmm_lock(&run_lock);
	run_pcps = pcps;
	nr_run_pcp = pcps ? n : 0;
	kmm_unlock(&run_lock);
	page_decay_register(run_decay_check);
}

static unsigned long pages_for(size_t size)
{
	return (size + os_page_size - 1) >> os_page_shift;
}

/* ---------------------------------------------------------------------------
 * Dirty bits (run_lock held, or a private copy)
 */

/* The first dirty range in [*from, end): its start in *from; its length, 0 if none. */
KMM_HOT_TEXT static unsigned long next_dirty(const unsigned long *map, unsigned long *from, unsigned long end)
{
	unsigned long i = bitmap_find(map, *from, end, true);

	if (i >= end)
		return 0;
	*from = i;
	return bitmap_find(map, i, end, false) - i;
}

/* How far into the span pages were written: one past the last dirty bit. */
static unsigned long dirty_extent(const unsigned long *map)
{
	for (unsigned long w = SPAN_WORDS; w-- > 0;) {
		if (map[w])
			return w * BITS_PER_LONG + BITS_PER_LONG - (unsigned long)__builtin_clzl(map[w]);
	}
	return 0;
}

/* ---------------------------------------------------------------------------
 * Spans and free extents (run_lock held)
 */

static unsigned long span_index(const struct page *page)
{
	return (unsigned long)(page - page_section(page)->pages);
}

static struct run_span *span_of(const struct page *page)
{
	return page_section(page)->pages[0].freelist;
}

static void flags_update(struct page *page, unsigned long set, unsigned long clear)
{
	set_page_flags(page, (page_flags(page) & ~clear) | set);
}

static unsigned int bin_of(unsigned long len)
{
	unsigned int k;

	if (len <= RUN_EXACT_BINS)
		return (unsigned int)len - 1;
	k = (unsigned int)(BITS_PER_LONG - 1) - (unsigned int)__builtin_clzl(len);
	return RUN_EXACT_BINS + 4 * (k - RUN_EXACT_SHIFT) +
	       (unsigned int)((len - (1UL << k)) >> (k - 2));
}

/*
 * Whether a free extent's last page carries the tail mark: only a free
 * below it reads the mark, so the top extent, which reaches the span's
 * end, goes without. Its last page's descriptor is the span's last, on a
 * page of descriptors nothing else touched: one page fault less for
 * every process that makes a run span.
 */
static bool extent_has_tail(const struct page *head, unsigned long len)
{
	return span_index(head) + len < SPAN_PAGES;
}

KMM_HOT_TEXT static void extent_add(struct page *head, unsigned long len, uint32_t epoch)
{
	struct page *tail = head + len - 1;
	unsigned int b = bin_of(len);

	head->private = len;
	head->inuse = epoch;
	flags_update(head, PG_run_free, 0);
	if (extent_has_tail(head, len)) {
		tail->private = len;
		flags_update(tail, PG_run_tail, 0);
	}
	list_add(&head->lru, &run_bins[b]);
	run_bin_mask |= 1ULL << b;
}

/* Takes a free extent off its bin and drops its marks; returns its length. */
KMM_HOT_TEXT static unsigned long extent_del(struct page *head)
{
	unsigned long len = head->private;
	unsigned int b = bin_of(len);

	list_del(&head->lru);
	if (list_empty(&run_bins[b]))
		run_bin_mask &= ~(1ULL << b);
	flags_update(head, 0, PG_run_free);
	if (extent_has_tail(head, len))
		flags_update(head + len - 1, 0, PG_run_tail);
	return len;
}

/* Of the first extents of bin b, the shortest that holds need pages; NULL if none. */
static struct page *best_in_bin(unsigned int b, unsigned long need)
{
	struct page *best = NULL;
	unsigned int n = 0;

	for (struct list_head *e = run_bins[b].next; e != &run_bins[b] && n++ < RUN_BIN_SCAN;
	     e = e->next) {
		struct page *page = list_entry(e, struct page, lru);

		if (page->private < need || (best && (page->private > best->private ||
		    (page->private == best->private && page > best))))
			continue;
		best = page;
		if (page->private == need)
			break;
	}
	return best;
}

/* A free extent of at least need pages, off its bin; NULL if none. */
static struct page *take_fit(unsigned long need)
{
	unsigned int b = bin_of(need);
	uint64_t mask = run_bin_mask >> b << b;

	while (mask) {
		struct page *page = best_in_bin((unsigned int)__builtin_ctzll(mask), need);

		if (page) {
			extent_del(page);
			return page;
		}
		mask &= mask - 1;
	}
	return NULL;
}

/*
 * Hands out need pages at offset off of the free extent head (len pages,
 * off its bin); what lies before and after stays free, as old as it was.
 */
static struct page *carve(struct page *head, unsigned long len, unsigned long off,
			  unsigned long need, uint32_t epoch)
{
	struct page *run = head + off;

	if (off)
		extent_add(head, off, epoch);
	if (len > off + need)
		extent_add(run + need, len - off - need, epoch);
	run->private = need << os_page_shift;
	flags_update(run, PG_large_kmalloc, 0);
	run_used_pages += need;
	return run;
}

static bool empty_span_kept(void)
{
	return run_bin_mask & (1ULL << bin_of(SPAN_PAGES));
}

/*
 * Gives back the dirty pages from..end (pages from head) of the free extent
 * head; returns how many. Its decay epoch stays: that is the caller's.
 */
KMM_HOT_TEXT static unsigned long release_dirty(struct page *head, unsigned long from, unsigned long end)
{
	struct run_span *span = span_of(head);
	struct page *first = page_section(head)->pages;
	unsigned long n, pages = 0;

	from += span_index(head);
	end += span_index(head);
	while ((n = next_dirty(span->dirty, &from, end)) != 0) {
		os_release(page_to_virt(first + from), n << os_page_shift);
		bitmap_assign(span->dirty, from, n, false);
		pages += n;
		from += n;
	}
	return pages;
}

/*
 * The top extent, the free extent that reaches its span's end, keeps the
 * dirty pages of its first run_top_keep pages and gives back the rest at
 * once, as glibc trims the top of its heap. Runs are carved from the lowest
 * fitting address, so the top is where a program's biggest buffers went
 * and what the decay would give back last. git's log --stat over loose
 * objects peaked at 9.6 MiB with freed buffers kept there (glibc 7.9); with
 * this, 8.7 (at 128 KiB kept, 8.6, but its madvise calls and refaults made
 * the whole git workload 15% slower; at 1 MiB, 4%). Where a page fault
 * costs 10-15 us (an AMD EPYC VM), 1 MiB still left log --stat and diff
 * --stat refaulting 66,000 and 45,000 pages, xdiff's per-file arrays going
 * past what the top kept each time: 2 MiB cut that to 38,000 faults for the
 * whole git workload (121,000 at 1 MiB) and its time from 0.90 of glibc's to
 * 0.62, for a peak within the runs' spread (9.06-9.27 MiB against
 * 9.07-9.15; keeping everything: 9.5).
 *
 * run_top_keep starts at RUN_TOP_KEEP and, as glibc raises its trim
 * threshold when it frees a mapped chunk, rises to twice the largest run
 * freed since (up to a span): a program that loops on a buffer of 2 MiB
 * otherwise gave back and faulted in 1 MiB of it every round (227 us a
 * round instead of 3.1).
 */
static void trim_top(struct page *head)
{
	if (span_index(head) + head->private == SPAN_PAGES && head->private > run_top_keep)
		release_dirty(head, run_top_keep, head->private);
}

/* run_lock held: a run of n pages went free, after its trim. */
static void top_keep_raise(unsigned long n)
{
	if (2 * n > run_top_keep)
		run_top_keep = 2 * n < SPAN_PAGES ? 2 * n : SPAN_PAGES;
}

/*
 * Pages [page, page + n) of a span go free, dirty or released, merged with
 * the free extents beside them. Returns the span's head if that left it
 * empty while another empty span is kept: the caller gives it back unlocked.
 */
KMM_HOT_TEXT static struct page *free_extent(struct page *page, unsigned long n, bool dirty)
{
	unsigned long idx = span_index(page);
	uint32_t epoch = dirty ? run_clock.epoch : RUN_CLEAN;
	struct page *head = page;

	bitmap_assign(span_of(page)->dirty, idx, n, dirty);
	if (idx + n < SPAN_PAGES && (page_flags(page + n) & PG_run_free)) {
		if (page[n].inuse != RUN_CLEAN)
			epoch = run_clock.epoch;
		n += extent_del(page + n);
	}
	if (idx > 0 && (page_flags(page - 1) & PG_run_tail)) {
		head = page - page[-1].private;
		if (head->inuse != RUN_CLEAN)
			epoch = run_clock.epoch;
		n += extent_del(head);
	}
	if (n == SPAN_PAGES && empty_span_kept()) {
		run_spans--;
		return head;
	}
	extent_add(head, n, epoch);
	trim_top(head);
	return NULL;
}

/* A new span, as one free extent not yet on a bin; made with run_lock dropped. */
static struct page *span_new(gfp_t gfp)
{
	struct run_span *span = kmm_kmalloc(sizeof(*span), gfp | __GFP_ZERO);
	unsigned long dirty = 0;
	struct page *head;

	if (!span)
		return NULL;
	head = page_alloc_run(gfp & ~__GFP_ZERO, MAX_PAGE_ORDER, &dirty);
	if (!head) {
		kmm_kfree(span);
		return NULL;
	}
	bitmap_assign(span->dirty, 0, dirty, true);
	head->freelist = span;
	head->private = SPAN_PAGES;
	flags_update(head, PG_run_span, 0);
	return head;
}

/* Gives an empty span (off its bin) back to the zone, run_lock dropped. */
KMM_HOT_TEXT static void span_free(struct page *head)
{
	struct run_span *span = head->freelist;
	unsigned long dirty = dirty_extent(span->dirty);

	head->freelist = NULL;
	head->private = 0;
	head->inuse = 0;
	flags_update(head, 0, PG_run_span);
	kmm_kfree(span);
	page_free_run(head, dirty);
}

KMM_HOT_TEXT static void spans_free(struct list_head *list)
{
	while (!list_empty(list)) {
		struct page *head = list_first_entry(list, struct page, lru);

		list_del(&head->lru);
		span_free(head);
	}
}

/* ---------------------------------------------------------------------------
 * Giving memory back (run_lock held)
 */

/* Gives back the dirty pages of a free extent; returns how many. */
static unsigned long release_extent(struct page *head)
{
	unsigned long pages = release_dirty(head, 0, head->private);

	head->inuse = RUN_CLEAN;
	return pages;
}

/*
 * The free extents that went free before epoch limit give their dirty
 * pages back; empty spans that did go onto empty, off their bin, for the
 * caller to give back unlocked. Returns the pages released.
 */
KMM_HOT_TEXT static unsigned long release_free(uint32_t limit, struct list_head *empty)
{
	unsigned long pages = 0;

	for (unsigned int b = 0; b < RUN_NR_BINS; b++) {
		struct list_head *e = run_bins[b].next;

		while (e != &run_bins[b]) {
			struct page *head = list_entry(e, struct page, lru);
			bool old = head->inuse == RUN_CLEAN || head->inuse < limit;

			e = e->next;
			if (old && head->private == SPAN_PAGES) {
				extent_del(head);
				run_spans--;
				list_add(&head->lru, empty);
			} else if (old && head->inuse != RUN_CLEAN) {
				pages += release_extent(head);
			}
		}
	}
	return pages;
}

/*
 * After a free (allocations do not read the clock: a program that only
 * allocates has nothing to give back): the decay's turn, once per period.
 */
static void run_decay(struct list_head *empty)
{
	uint32_t limit = decay_tick(&run_clock);

	if (limit)
		release_free(limit, empty);
}

/*
 * run_lock held: the run headed by page (n pages, dirty or released) goes
 * free in its span; a span that leaves goes onto empty.
 */
KMM_HOT_TEXT static void free_locked(struct page *page, unsigned long n, bool dirty, struct list_head *empty)
{
	struct page *idle;

	flags_update(page, 0, PG_large_kmalloc | PG_run_cached);
	run_used_pages -= n;
	idle = free_extent(page, n, dirty);
	top_keep_raise(n);
	if (idle)
		list_add(&idle->lru, empty);
}

/* ---------------------------------------------------------------------------
 * Per-CPU caches of freed runs
 */

/* A cache's lock held: its runs go back to their spans until it holds at most keep pages. */
KMM_HOT_TEXT static void pcp_drain(struct run_pcp *pcp, unsigned long keep, struct list_head *empty)
{
	kmm_lock(&run_lock);
	for (unsigned int len = RUN_PCP_MAX_PAGES; len > 0 && pcp->pages > keep; len--) {
		while (!list_empty_lazy(&pcp->lists[len]) && pcp->pages > keep) {
			struct page *page = list_last_entry(&pcp->lists[len], struct page, lru);

			list_del(&page->lru);
			pcp->pages -= len;
			free_locked(page, len, true, empty);
		}
	}
	kmm_unlock(&run_lock);
}

/* The caches serve only once the process has had a second thread (and never go back). */
static bool run_pcps_in_use(void)
{
	return !__libc_single_threaded && nr_run_pcp;
}

KMM_HOT_TEXT static struct run_pcp *this_cpu_run_pcp(unsigned long n)
{
	if (!run_pcps_in_use() || n > RUN_PCP_MAX_PAGES)
		return NULL;
	return &run_pcps[kmm_current_cpu() % nr_run_pcp];
}

/* A freed run onto this CPU's cache; false if it does not go there. */
static bool pcp_put(struct page *page, unsigned long n, struct list_head *empty)
{
	struct run_pcp *pcp = this_cpu_run_pcp(n);

	if (!pcp || !kmm_trylock(&pcp->lock))
		return false;
	flags_update(page, PG_run_cached, PG_large_kmalloc);
	list_init_lazy(&pcp->lists[n]);
	list_add(&page->lru, &pcp->lists[n]);
	pcp->pages += n;
	if (pcp->pages > RUN_PCP_HIGH)
		pcp_drain(pcp, RUN_PCP_HIGH / 2, empty);
	kmm_unlock(&pcp->lock);
	return true;
}

/* A cached run of exactly n pages from this CPU's cache, or NULL. */
static struct page *pcp_take(unsigned long n)
{
	struct run_pcp *pcp = this_cpu_run_pcp(n);
	struct page *page = NULL;

	if (!pcp || !kmm_trylock(&pcp->lock))
		return NULL;
	if (!list_empty_lazy(&pcp->lists[n])) {
		page = list_first_entry(&pcp->lists[n], struct page, lru);
		list_del(&page->lru);
		pcp->pages -= n;
		flags_update(page, PG_large_kmalloc, PG_run_cached);
	}
	kmm_unlock(&pcp->lock);
	return page;
}

/* Every cache back to the spans: the decay and malloc_trim. */
KMM_HOT_TEXT static void pcp_drain_all(struct list_head *empty)
{
	/* Never used yet: leave their pages untouched. */
	if (!run_pcps_in_use())
		return;
	for (unsigned int cpu = 0; cpu < nr_run_pcp; cpu++) {
		struct run_pcp *pcp = &run_pcps[cpu];

		kmm_lock(&pcp->lock);
		if (pcp->pages)
			pcp_drain(pcp, 0, empty);
		kmm_unlock(&pcp->lock);
	}
}

/* The decay without an allocation or a free of a run (page_decay_register()). */
KMM_HOT_TEXT static void run_decay_check(void)
{
	struct list_head empty;

	INIT_LIST_HEAD(&empty);
	pcp_drain_all(&empty);
	kmm_lock(&run_lock);
	run_decay(&empty);
	kmm_unlock(&run_lock);
	spans_free(&empty);
}

/* ---------------------------------------------------------------------------
 * Allocation and free
 */

/*
 * The dirty pages among a new run's, by its span's bits map (under
 * run_lock, or a copy of them); with zero, they are cleared.
 */
KMM_HOT_TEXT static unsigned long run_dirty_pages(struct page *run, unsigned long need,
				     const unsigned long *map, bool zero)
{
	unsigned long from = span_index(run), end = from + need, n, dirty = 0;

	while ((n = next_dirty(map, &from, end)) != 0) {
		if (zero)
			memset(page_to_virt(run + (from - span_index(run))), 0, n << os_page_shift);
		dirty += n;
		from += n;
	}
	return dirty;
}

KMM_HOT_TEXT void *run_alloc(size_t size, size_t align, gfp_t gfp)
{
	unsigned long need = pages_for(size), dirty, off, len, snap[SPAN_WORDS];
	unsigned long mask = align > os_page_size ? (align >> os_page_shift) - 1 : 0;
	struct page *head, *run;
	uint32_t epoch;

	if (need + mask > SPAN_PAGES) {
		errno = EINVAL;
		return NULL;
	}
	pthread_once(&run_once, run_setup);
	if (!mask && (run = pcp_take(need)) != NULL) {
		/* A cached run was written up to its end: all of it is dirty. */
		if (gfp & __GFP_ZERO)
			memset(page_to_virt(run), 0, need << os_page_shift);
		return page_to_virt(run);
	}
	kmm_lock_for(&run_lock, gfp);
	head = take_fit(need + mask);
	if (!head) {
		kmm_unlock(&run_lock);
		head = span_new(gfp);
		if (!head) {
			errno = ENOMEM;
			return NULL;
		}
		kmm_lock_for(&run_lock, gfp);
		run_spans++;
		head->inuse = dirty_extent(span_of(head)->dirty) ? run_clock.epoch : RUN_CLEAN;
	}
	len = head->private;
	epoch = head->inuse;
	off = ((span_index(head) + mask) & ~mask) - span_index(head);
	run = carve(head, len, off, need, epoch);
	/* Clearing waits for the lock to drop, on a copy of the bits: calloc's cost, not malloc's. */
	if (gfp & __GFP_ZERO)
		memcpy(snap, span_of(run)->dirty, sizeof(snap));
	else
		dirty = run_dirty_pages(run, need, span_of(run)->dirty, false);
	kmm_unlock(&run_lock);
	if (gfp & __GFP_ZERO)
		dirty = run_dirty_pages(run, need, snap, true);
	/* Only where the caller may wait: releasing takes system calls. */
	if (need > dirty && (gfp & __GFP_DIRECT_RECLAIM))
		page_release_for_run(need - dirty);
	return page_to_virt(run);
}

KMM_HOT_TEXT void run_free(struct page *page, bool release)
{
	unsigned long n = page->private >> os_page_shift;
	struct list_head empty;

	INIT_LIST_HEAD(&empty);
	if (!release && pcp_put(page, n, &empty)) {
		spans_free(&empty);
		return;
	}
	/* The run is still the caller's: no lock needed, nobody else sees it. */
	if (release)
		os_release(page_to_virt(page), n << os_page_shift);
	kmm_lock(&run_lock);
	free_locked(page, n, !release, &empty);
	run_decay(&empty);
	kmm_unlock(&run_lock);
	spans_free(&empty);
}

KMM_HOT_TEXT bool run_resize_in_place(struct page *page, size_t size)
{
	unsigned long want = pages_for(size), n, len;
	struct page *next;
	bool ok = true;

	kmm_lock(&run_lock);
	n = page->private >> os_page_shift;
	next = page + n;
	if (want < n) {
		/* The run stays in its span, so the span cannot turn empty. */
		free_extent(page + want, n - want, true);
		run_used_pages -= n - want;
	} else if (want > n) {
		ok = span_index(page) + n < SPAN_PAGES && (page_flags(next) & PG_run_free) &&
		     n + next->private >= want;
		if (ok) {
			uint32_t epoch = next->inuse;

			len = extent_del(next);
			if (n + len > want)
				extent_add(page + want, n + len - want, epoch);
			run_used_pages += want - n;
		}
	}
	if (ok)
		page->private = want << os_page_shift;
	kmm_unlock(&run_lock);
	return ok;
}

unsigned long run_trim(void)
{
	struct list_head empty;
	unsigned long pages, spans = 0;

	pthread_once(&run_once, run_setup);
	INIT_LIST_HEAD(&empty);
	pcp_drain_all(&empty);
	kmm_lock(&run_lock);
	pages = release_free(RUN_CLEAN, &empty);
	kmm_unlock(&run_lock);
	for (struct list_head *e = empty.next; e != &empty; e = e->next)
		spans++;
	spans_free(&empty);
	return pages + spans * SPAN_PAGES;
}

void run_count_resident(const struct page *head, const unsigned char *vec, unsigned long *runs,
			unsigned long *free)
{
	kmm_lock(&run_lock);
	for (unsigned long i = 0, n; i < SPAN_PAGES; i += n) {
		unsigned long flags = page_flags(&head[i]), *to = runs;

		n = 1;
		if (flags & PG_run_free) {
			n = head[i].private;
			to = free;
		} else if (flags & (PG_large_kmalloc | PG_run_cached)) {
			n = head[i].private >> os_page_shift;
		}
		/* A span on its way back to the zone has no marks left: page by page. */
		if (!n || n > SPAN_PAGES - i)
			n = 1;
		for (unsigned long j = i; j < i + n; j++)
			*to += vec[j];
	}
	kmm_unlock(&run_lock);
}

void run_stats(struct run_stats *st)
{
	kmm_lock(&run_lock);
	st->spans = run_spans;
	st->used_pages = run_used_pages;
	st->free_pages = run_spans * SPAN_PAGES - run_used_pages;
	kmm_unlock(&run_lock);
}

void run_show(int fd)
{
	struct run_stats st;
	unsigned long kib = os_page_size >> 10;

	run_stats(&st);
	kmm_dprint(fd, "kmalloc runs: spans %lu, in use %lu KiB, free %lu KiB\n", st.spans,
		   st.used_pages * kib, st.free_pages * kib);
}

/* ---------------------------------------------------------------------------
 * fork
 */

static unsigned int fork_nr_pcp;	/* the caches run_fork_lock() locked */

static void lock_run_pcps(unsigned int n)
{
	for (unsigned int cpu = 0; cpu < n; cpu++)
		kmm_lock(&run_pcps[cpu].lock);
}

static void unlock_run_pcps(unsigned int n)
{
	for (unsigned int cpu = n; cpu-- > 0;)
		kmm_unlock(&run_pcps[cpu].lock);
}

/*
 * fork.c's handlers: every cache's lock, then run_lock (the lock order).
 * The caches may appear meanwhile (run_setup() publishes them under
 * run_lock): then again.
 */
void run_fork_lock(void)
{
	unsigned int n;

	for (;;) {
		kmm_lock(&run_lock);
		n = nr_run_pcp;
		kmm_unlock(&run_lock);
		lock_run_pcps(n);
		kmm_lock(&run_lock);
		if (nr_run_pcp == n)
			break;
		kmm_unlock(&run_lock);
		unlock_run_pcps(n);
	}
	fork_nr_pcp = n;
}

void run_fork_unlock(void)
{
	kmm_unlock(&run_lock);
	unlock_run_pcps(fork_nr_pcp);
}

void run_fork_reset(void)
{
	kmm_lock_reset(&run_lock);
	for (unsigned int cpu = 0; cpu < fork_nr_pcp; cpu++)
		kmm_lock_reset(&run_pcps[cpu].lock);
}
