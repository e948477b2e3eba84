/*
 * page_alloc.c - the buddy page allocator: sections, page descriptors, the
 * zone's free lists per order, per-CPU lists for low orders, and the return
 * of free memory to the OS.
 *
 * Memory comes from the OS one section at a time: a max-order block aligned
 * to its size. A two-level table indexed by address >> section_shift finds a
 * section's descriptors, which answers virt_to_page() and "is this kmm's
 * memory?" in O(1) for any address, without touching the address; a
 * direct-mapped cache in front of it (section_hash) saves kfree a load.
 *
 * Locking:
 *   zone->lock       free lists, counters, growing and shrinking the zone,
 *                    the section table (written only under it).
 *   pcp->lock        one CPU's lists. Allocation and free only ever *try*
 *                    it and fall back to the zone, so no one waits on it
 *                    except drain and fork.
 *   Lock order: pcp->lock (in CPU order) before zone->lock.
 *   No system call runs under zone->lock except mmap when growing; releasing
 *   memory isolates the blocks, drops the lock, madvises, then frees them back.
 *
 * A free block's dirty extent travels with it (private, in pages): its pages
 * from there up read as zeros and are not resident. Fresh and released
 * blocks have extent 0, a freed block the extent its owner says it wrote
 * (kmalloc's page runs: their usable pages; anything else: all of it).
 * Splits and merges carry the extent over, so __GFP_ZERO clears only the
 * dirty pages and a reused block tells kmalloc how much of it is resident.
 * Dirty blocks sit at the head of each free list (reused first, still warm
 * in cache), zero ones at the tail.
 */
#include "page_alloc.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <kmm/mmzone.h>

#include "fork.h"
#include "internal.h"
#include "lock.h"
#include "options.h"
#include "os.h"
#include "rseq.h"
#include "runs.h"
#include "topology.h"

/* The per-CPU lists serve orders up to this one (the kernel's COSTLY order). */
#define PCP_MAX_ORDER 3
#define NR_PCP_ORDERS (PCP_MAX_ORDER + 1)
#define PCP_BATCH_BYTES (128u << 10)

#define SECTION_PAGES (1UL << MAX_PAGE_ORDER)

struct free_area {
	struct list_head free_list;
	unsigned long nr_free;
};

struct zone {
	struct kmm_lock lock;
	struct free_area free_area[NR_PAGE_ORDERS];
	unsigned long free_mask;	/* bit o: free_area[o] is not empty */
	unsigned long free_pages;	/* in the free lists */
	unsigned long dirty_pages;	/* sum of the free blocks' dirty extents */
	unsigned long managed_pages;
	unsigned long nr_sections;
	unsigned long wmark_min;	/* reserve only __GFP_HIGH may use */
	unsigned long dirty_high;	/* dirty pages kept without decay */
	long decay_ms;
	unsigned long over_high_since;	/* ms; 0 while dirty <= dirty_high */
	bool need_refill;		/* a non-sleeping request found the reserve low */
	struct list_head sections;	/* mapped sections, newest first */
	struct list_head retired;	/* metadata of unmapped sections, for reuse */
	unsigned long released_pages;
	unsigned long unmapped_sections;
};

struct per_cpu_pages {
	struct kmm_lock lock;
	unsigned long count;	/* pages on all lists */
	struct list_head lists[NR_PCP_ORDERS];
} ____cacheline_aligned;

static struct zone zone = { .lock = KMM_LOCK_INIT };
static struct per_cpu_pages *pcp_array;
static unsigned int nr_pcp;
static unsigned long pcp_batch, pcp_high;	/* pages */

/* Until start-up sets the real value, this keeps lookups inside the table. */
unsigned int section_shift = MIN_SECTION_SHIFT;
/* section_root and section_hash: section_table.c. */
_Atomic uintptr_t section_hash_skew;
static bool section_hash_skewed;
static size_t section_size;
/* KMM_OPTIONS=thp=1: every section is advised for transparent huge pages. */
static bool section_thp;
static size_t section_meta_size;
size_t section_meta_align;

static atomic_ulong zeroed_skipped, zeroed_cleared;
static atomic_uint failure_warnings;

static atomic_bool page_alloc_ready KMM_HOT_DATA;	/* read before start-up too */
static struct kmm_lock init_lock = KMM_LOCK_INIT;

/* ---------------------------------------------------------------------------
 * Sections and the section table
 */

static inline unsigned long page_index(const struct page *page)
{
	return (unsigned long)(page - page_section(page)->pages);
}

KMM_HOT_TEXT struct kmem_cache *page_slab_cache(const struct page *page)
{
	return page_section(page)->slab_cache[page_index(page)];
}

/*
 * The page's own slab: its slot is owned by its section from before the
 * slab existed until after it is gone (a section leaves only when all its
 * pages are free), so the owner check cannot race with a change of owner.
 */
KMM_HOT_TEXT void set_page_slab_cache(struct page *page, struct kmem_cache *s, unsigned int index)
{
	struct mem_section *ms = page_section(page);
	uintptr_t idx = ms->start >> section_shift;
	uintptr_t nr = section_hash_nr(idx);

	/* Atomic for kmm_resident(), which reads it with no slab lock. */
	__atomic_store_n(&ms->slab_cache[page_index(page)], s, __ATOMIC_RELAXED);
	ms->slab_index[page_index(page)] = (unsigned short)index;
	if (atomic_load_explicit(&section_hash.slot[nr], memory_order_relaxed) == idx + 1)
		atomic_store_explicit(&section_hash.index[(nr << MAX_PAGE_ORDER) + page_index(page)],
				      (unsigned short)index, memory_order_relaxed);
}

/*
 * Zone lock held: section idx goes from old to ms (either may be NULL) in
 * the lookup cache. A new section takes its slot only if the slot is empty;
 * a leaving one empties its slot only if it holds it. An empty slot's row
 * of slab indexes is all zero: only the owner writes it, and a section
 * leaves only when all its pages are free, so every slab it had has set
 * its pages' entries back to 0.
 */
static void section_hash_set(uintptr_t idx, struct mem_section *old, struct mem_section *ms)
{
	_Atomic uintptr_t *slot = &section_hash.slot[section_hash_nr(idx)];

	if (ms) {
		if (!atomic_load_explicit(slot, memory_order_relaxed))
			atomic_store_explicit(slot, idx + 1, memory_order_release);
		return;
	}
	if (old && atomic_load_explicit(slot, memory_order_relaxed) == idx + 1)
		atomic_store_explicit(slot, 0, memory_order_release);
}

/*
 * Zone lock held: the first section mapped sets the lookup cache's skew
 * (page_alloc.h), while every slot is still empty.
 */
static void section_hash_place(uintptr_t idx)
{
	uintptr_t slots = (SECTION_HASH_FIRST - idx) & SECTION_HASH_MASK;

	if (section_hash_skewed)
		return;
	atomic_store_explicit(&section_hash_skew, slots << MAX_PAGE_ORDER, memory_order_relaxed);
	section_hash_skewed = true;
}

/* Zone lock held. Returns false if the table leaf cannot be mapped. */
KMM_HOT_TEXT static bool section_set(uintptr_t start, struct mem_section *ms)
{
	uintptr_t idx = start >> section_shift;
	_Atomic(section_slot *) *root = &section_root[idx >> SECTION_LEAF_BITS];
	section_slot *leaf = atomic_load_explicit(root, memory_order_relaxed), *slot;
	struct mem_section *old = NULL;
	bool new_leaf = !leaf;

#if UINTPTR_MAX > 0xffffffffu
	if (start >> VA_BITS)
		return false;
#endif
	if (!leaf) {
		leaf = os_map_meta(sizeof(section_slot) << SECTION_LEAF_BITS, 0);
		if (!leaf)
			return false;
		atomic_store_explicit(root, leaf, memory_order_release);
	}
	slot = &leaf[idx & ((1UL << SECTION_LEAF_BITS) - 1)];
	/* A new leaf is all NULL: reading it first would fault its page in twice. */
	if (!new_leaf)
		old = atomic_load_explicit(slot, memory_order_relaxed);
	if (ms)
		section_hash_place(idx);
	section_hash_set(idx, old, ms);
	atomic_store_explicit(slot, ms, memory_order_release);
	return true;
}

/*
 * Descriptors of unmapped sections are kept (released, never unmapped): a
 * stale lookup racing with the unmap then reads zeros, not a hole.
 */
static struct mem_section *section_meta_get(struct zone *z)
{
	struct mem_section *ms;

	if (!list_empty(&z->retired)) {
		ms = list_first_entry(&z->retired, struct mem_section, list);
		list_del(&ms->list);
		return ms;
	}
	return os_map_meta(section_meta_size, section_meta_align);
}

/* ---------------------------------------------------------------------------
 * The buddy free lists (zone lock held)
 */

/* The dirty pages of the part [off, off + len) of a block with that extent. */
static unsigned long dirty_within(unsigned long dirty, unsigned long off, unsigned long len)
{
	if (dirty <= off)
		return 0;
	return dirty - off < len ? dirty - off : len;
}

/* The extent of two free halves of 2^order pages each, merged. */
static unsigned long dirty_merged(unsigned long lower, unsigned long upper, unsigned int order)
{
	return upper ? (1UL << order) + upper : lower;
}

KMM_HOT_TEXT static void add_to_free_list(struct zone *z, struct page *page, unsigned int order,
			     unsigned long dirty)
{
	struct free_area *area = &z->free_area[order];

	page->order = order;
	page->private = dirty;
	set_page_flags(page, PG_buddy);
	if (!dirty)
		list_add_tail(&page->lru, &area->free_list);
	else
		list_add(&page->lru, &area->free_list);
	z->dirty_pages += dirty;
	area->nr_free++;
	z->free_mask |= 1UL << order;
	z->free_pages += 1UL << order;
}

/* Takes a block off its free list; private keeps its dirty extent. */
KMM_HOT_TEXT static void del_from_free_list(struct zone *z, struct page *page, unsigned int order)
{
	list_del(&page->lru);
	z->dirty_pages -= page->private;
	if (!--z->free_area[order].nr_free)
		z->free_mask &= ~(1UL << order);
	z->free_pages -= 1UL << order;
	set_page_flags(page, 0);
}

/*
 * Splits a block of order high, dirty up to dirty, down to order low,
 * freeing the upper halves; returns the dirty extent of what is left.
 */
static unsigned long expand(struct zone *z, struct page *page, unsigned int low,
			    unsigned int high, unsigned long dirty)
{
	while (high > low) {
		unsigned long half = 1UL << --high;

		add_to_free_list(z, page + half, high, dirty_within(dirty, half, half));
		dirty = dirty_within(dirty, 0, half);
	}
	return dirty;
}

/*
 * The order to split for a block of order: the smallest whose first free
 * block would give all 2^order pages already dirty, else the smallest with
 * a free block; above MAX_PAGE_ORDER if none. Dirty blocks are kept at the
 * head of each list. Only non-empty orders are looked at (free_mask): the
 * page lists' refills take a block at a time, 32 of them for order 0.
 */
static unsigned int dirty_fit_order(const struct zone *z, unsigned int order)
{
	unsigned long orders = z->free_mask >> order << order;
	unsigned int first;

	if (!orders)
		return MAX_PAGE_ORDER + 1;
	first = (unsigned int)__builtin_ctzl(orders);
	if (!z->dirty_pages)
		return first;
	for (; orders; orders &= orders - 1) {
		unsigned int o = (unsigned int)__builtin_ctzl(orders);
		const struct list_head *list = &z->free_area[o].free_list;

		if (list_first_entry(list, struct page, lru)->private >= (1UL << order))
			return o;
	}
	return first;
}

/* The block's dirty extent is left in page->private. */
KMM_HOT_TEXT static struct page *__rmqueue_smallest(struct zone *z, unsigned int order)
{
	unsigned int o = dirty_fit_order(z, order);
	struct page *page;

	if (o > MAX_PAGE_ORDER)
		return NULL;
	page = list_first_entry(&z->free_area[o].free_list, struct page, lru);
	del_from_free_list(z, page, o);
	page->private = expand(z, page, order, o, page->private);
	page->order = order;
	return page;
}

/* Frees a block into the zone, merging with its buddy as long as it is free. */
KMM_HOT_TEXT static void __free_one_page(struct zone *z, struct page *page, unsigned int order,
			    unsigned long dirty)
{
	struct mem_section *ms = page_section(page);
	unsigned long idx = page_index(page);

	set_page_flags(page, 0);
	while (order < MAX_PAGE_ORDER) {
		unsigned long buddy_idx = idx ^ (1UL << order);
		struct page *buddy = &ms->pages[buddy_idx];

		if (!(page_flags(buddy) & PG_buddy) || buddy->order != order)
			break;
		del_from_free_list(z, buddy, order);
		if (buddy_idx > idx)
			dirty = dirty_merged(dirty, buddy->private, order);
		else
			dirty = dirty_merged(buddy->private, dirty, order);
		buddy->private = 0;
		idx &= buddy_idx;
		order++;
	}
	add_to_free_list(z, &ms->pages[idx], order, dirty);
}

static bool watermark_ok(const struct zone *z, unsigned int order, gfp_t gfp)
{
	unsigned long need = 1UL << order;

	if (gfp & __GFP_HIGH)
		return z->free_pages >= need;
	return z->free_pages >= need + z->wmark_min;
}

/* Zone lock held. Maps one more section into the zone. */
KMM_HOT_TEXT static int grow_zone(struct zone *z)
{
	/* The section first: its alignment trim leaves room for the descriptors. */
	void *mem = os_map_aligned(section_size, section_size);
	struct mem_section *ms = mem ? section_meta_get(z) : NULL;

	if (!ms || !section_set((uintptr_t)mem, ms)) {
		if (mem)
			os_unmap(mem, section_size);
		if (ms)
			list_add(&ms->list, &z->retired);
		errno = ENOMEM;
		return -1;
	}
	ms->start = (uintptr_t)mem;
	/* Before anything touches it: a huge page comes only at a first fault. */
	if (section_thp)
		os_advise_huge(mem, section_size);
	list_add(&ms->list, &z->sections);
	z->managed_pages += SECTION_PAGES;
	z->nr_sections++;
	add_to_free_list(z, &ms->pages[0], MAX_PAGE_ORDER, 0);
	return 0;
}

/* ---------------------------------------------------------------------------
 * Giving memory back to the OS
 */

/* Zone lock held: dirty free blocks, largest first, until at most target dirty pages stay. */
KMM_HOT_TEXT static void isolate_dirty_blocks(struct zone *z, unsigned long target, struct list_head *release)
{
	for (int o = MAX_PAGE_ORDER; o >= 0 && z->dirty_pages > target; o--) {
		struct free_area *area = &z->free_area[o];

		while (z->dirty_pages > target && !list_empty(&area->free_list)) {
			struct page *page = list_first_entry(&area->free_list, struct page, lru);

			if (!page->private)
				break;
			del_from_free_list(z, page, (unsigned int)o);
			list_add(&page->lru, release);
		}
	}
}

/*
 * Zone lock held. Takes off the free lists what a purge gives back: whole
 * free sections beyond the reserve (to unmap; they leave the section table
 * now, since nobody can own memory in them), then dirty blocks, largest
 * first, until no more than target dirty pages remain.
 */
static void isolate_for_purge(struct zone *z, unsigned long target,
			      struct list_head *release, struct list_head *unmap)
{
	struct free_area *top = &z->free_area[MAX_PAGE_ORDER];

	while (!list_empty(&top->free_list) &&
	       z->free_pages >= SECTION_PAGES + z->wmark_min) {
		/* Dirty sections first (list head): unmapping frees their RSS too. */
		struct page *page = list_first_entry(&top->free_list, struct page, lru);
		struct mem_section *ms;

		if (page->private && z->dirty_pages <= target) {
			page = list_last_entry(&top->free_list, struct page, lru);
			if (page->private)
				break;
		}
		ms = page_section(page);
		del_from_free_list(z, page, MAX_PAGE_ORDER);
		list_del(&ms->list);
		section_set(ms->start, NULL);
		z->managed_pages -= SECTION_PAGES;
		z->nr_sections--;
		z->unmapped_sections++;
		list_add(&page->lru, unmap);
	}
	isolate_dirty_blocks(z, target, release);
}

/*
 * Zone lock not held: gives the dirty pages of isolated free blocks back to
 * the OS, then frees the blocks back with extent 0. Returns the pages.
 */
KMM_HOT_TEXT static unsigned long release_isolated(struct zone *z, struct list_head *release)
{
	unsigned long done = 0;

	if (list_empty(release))
		return 0;
	for (struct list_head *e = release->next; e != release; e = e->next) {
		struct page *page = list_entry(e, struct page, lru);

		/* Only the dirty extent is resident. */
		os_release(kmm_page_address(page), page->private << os_page_shift);
		done += page->private;
	}
	kmm_lock(&z->lock);
	while (!list_empty(release)) {
		struct page *page = list_first_entry(release, struct page, lru);

		list_del(&page->lru);
		z->released_pages += page->private;
		__free_one_page(z, page, page->order, 0);
	}
	kmm_unlock(&z->lock);
	return done;
}

/*
 * A page run is about to write pages that no free block held dirty: as
 * many dirty free pages go back to the OS, largest blocks first, while more
 * than a quarter of the high watermark (1 MiB with 4 KiB pages) stays for
 * reuse. The run then costs no RSS while stranded dirty blocks exist. git
 * reads files of ever larger sizes, and each new buffer needs more pages
 * than any freed one holds: its peak is the high-water mark of pages
 * touched. `git log --stat` on loose objects: 10644-10660 -> 10236-10308
 * KiB (glibc 7848), in the same 0.25 s; the whole git workload of
 * tests/programs 10920 -> 10672 KiB; the other programs and the large
 * rows of bench/workloads unchanged within their noise.
 */
KMM_HOT_TEXT void page_release_for_run(unsigned long pages)
{
	struct list_head release;

	INIT_LIST_HEAD(&release);
	kmm_lock(&zone.lock);
	if (zone.dirty_pages > zone.dirty_high / 4) {
		unsigned long keep = zone.dirty_high / 4;
		unsigned long target = zone.dirty_pages - pages;

		isolate_dirty_blocks(&zone, pages < zone.dirty_pages && target > keep ? target : keep,
				     &release);
	}
	kmm_unlock(&zone.lock);
	release_isolated(&zone, &release);
}

static unsigned long zone_purge(struct zone *z, unsigned long target)
{
	struct list_head release, unmap;
	unsigned long done = 0;

	INIT_LIST_HEAD(&release);
	INIT_LIST_HEAD(&unmap);
	kmm_lock(&z->lock);
	isolate_for_purge(z, target, &release, &unmap);
	z->over_high_since = 0;
	kmm_unlock(&z->lock);

	done += release_isolated(z, &release);
	for (struct list_head *e = unmap.next; e != &unmap; e = e->next) {
		struct mem_section *ms = page_section(list_entry(e, struct page, lru));

		os_unmap((void *)ms->start, section_size);
		ms->start = 0;
		done += SECTION_PAGES;
	}

	/* Descriptors are released outside the lock, then parked for reuse. */
	while (!list_empty(&unmap)) {
		struct page *page = list_first_entry(&unmap, struct page, lru);
		struct mem_section *ms = page_section(page);

		list_del(&page->lru);
		os_release(ms, section_meta_size);
		kmm_lock(&z->lock);
		list_add(&ms->list, &z->retired);
		kmm_unlock(&z->lock);
	}
	return done;
}

/*
 * Zone lock held, after a free. The kernel's watermarks with jemalloc's
 * decay: dirty pages above dirty_high are released once they have stayed
 * above it for decay_ms.
 */
static bool zone_wants_purge(struct zone *z)
{
	unsigned long now;

	if (z->dirty_pages <= z->dirty_high || z->decay_ms < 0) {
		z->over_high_since = 0;
		return false;
	}
	if (z->decay_ms == 0)
		return true;
	now = kmm_now_ms();
	if (!z->over_high_since) {
		z->over_high_since = now ? now : 1;
		return false;
	}
	return now - z->over_high_since >= (unsigned long)z->decay_ms;
}

/* A decay purge: down to half the high watermark, so it does not rerun at once. */
static void zone_decay(struct zone *z)
{
	zone_purge(z, z->dirty_high / 2);
}

static void free_one_page(struct zone *z, struct page *page, unsigned int order,
			  unsigned long dirty)
{
	bool purge;

	kmm_lock(&z->lock);
	__free_one_page(z, page, order, dirty);
	purge = zone_wants_purge(z);
	kmm_unlock(&z->lock);
	if (purge)
		zone_decay(z);
}

/* ---------------------------------------------------------------------------
 * Per-CPU page lists
 */

KMM_HOT_TEXT static struct per_cpu_pages *this_cpu_pcp(void)
{
	unsigned int cpu = kmm_current_cpu();

	/* A CPU beyond the possible count (hotplug) shares another's lists. */
	if (unlikely(cpu >= nr_pcp))
		cpu %= nr_pcp;
	return &pcp_array[cpu];
}

/* Zone lock held: returns pcp pages to the buddy lists, coldest first. */
KMM_HOT_TEXT static void free_pcppages_bulk(struct zone *z, struct per_cpu_pages *pcp,
			       unsigned long count)
{
	unsigned int order = 0;

	while (count && pcp->count) {
		struct list_head *list = &pcp->lists[order];

		if (!list_empty_lazy(list)) {
			struct page *page = list_last_entry(list, struct page, lru);

			list_del(&page->lru);
			pcp->count -= 1UL << order;
			count -= count < (1UL << order) ? count : (1UL << order);
			__free_one_page(z, page, order, page->private);
		}
		order = (order + 1) % NR_PCP_ORDERS;
	}
}

/* Zone lock held: moves up to count blocks of order to list. */
static unsigned long rmqueue_bulk(struct zone *z, unsigned int order, unsigned long count,
				  struct list_head *list, gfp_t gfp)
{
	unsigned long n = 0;

	while (n < count && watermark_ok(z, order, gfp)) {
		struct page *page = __rmqueue_smallest(z, order);

		if (!page)
			break;
		set_page_flags(page, PG_pcp);
		list_add_tail(&page->lru, list);
		n++;
	}
	return n;
}

/* The common case: no zone lock unless the list needs a refill. */
static struct page *rmqueue_pcplist(gfp_t gfp, unsigned int order, unsigned long *dirty)
{
	struct per_cpu_pages *pcp = this_cpu_pcp();
	struct list_head *list = &pcp->lists[order];
	struct page *page;

	if (!kmm_trylock(&pcp->lock))
		return NULL;
	if (list_empty_lazy(list)) {
		unsigned long want = pcp_batch >> order;

		list_init_lazy(list);
		kmm_lock_for(&zone.lock, gfp);
		want = rmqueue_bulk(&zone, order, want ? want : 1, list, gfp);
		kmm_unlock(&zone.lock);
		pcp->count += want << order;
		if (!want) {
			kmm_unlock(&pcp->lock);
			return NULL;
		}
	}
	page = list_first_entry(list, struct page, lru);
	list_del(&page->lru);
	pcp->count -= 1UL << order;
	*dirty = page->private;
	set_page_flags(page, 0);
	kmm_unlock(&pcp->lock);
	return page;
}

static void free_unref_page(struct page *page, unsigned int order, unsigned long dirty)
{
	struct per_cpu_pages *pcp = this_cpu_pcp();
	bool purge = false;

	if (!kmm_trylock(&pcp->lock)) {
		free_one_page(&zone, page, order, dirty);
		return;
	}
	page->private = dirty;
	set_page_flags(page, PG_pcp);
	list_init_lazy(&pcp->lists[order]);
	list_add(&page->lru, &pcp->lists[order]);
	pcp->count += 1UL << order;
	if (pcp->count >= pcp_high) {
		kmm_lock(&zone.lock);
		free_pcppages_bulk(&zone, pcp, pcp_batch);
		purge = zone_wants_purge(&zone);
		kmm_unlock(&zone.lock);
	}
	kmm_unlock(&pcp->lock);
	if (purge)
		zone_decay(&zone);
}

KMM_API void kmm_drain_all_pages(void)
{
	if (!atomic_load_explicit(&page_alloc_ready, memory_order_acquire))
		return;
	for (unsigned int cpu = 0; cpu < nr_pcp; cpu++) {
		struct per_cpu_pages *pcp = &pcp_array[cpu];

		kmm_lock(&pcp->lock);
		kmm_lock(&zone.lock);
		free_pcppages_bulk(&zone, pcp, pcp->count);
		kmm_unlock(&zone.lock);
		kmm_unlock(&pcp->lock);
	}
	page_decay_check();
}

/* ---------------------------------------------------------------------------
 * Start-up and fork
 */

/*
 * fork.c's handlers: the init lock, every per-CPU lock, the zone lock. nr_pcp
 * is read under the init lock, which start-up holds while it sets it.
 */
void page_alloc_fork_lock(void)
{
	kmm_lock(&init_lock);
	for (unsigned int cpu = 0; cpu < nr_pcp; cpu++)
		kmm_lock(&pcp_array[cpu].lock);
	kmm_lock(&zone.lock);
}

void page_alloc_fork_unlock(void)
{
	kmm_unlock(&zone.lock);
	for (unsigned int cpu = nr_pcp; cpu-- > 0;)
		kmm_unlock(&pcp_array[cpu].lock);
	kmm_unlock(&init_lock);
}

/* The child has one thread: the one that forked, holding every lock. */
void page_alloc_fork_reset(void)
{
	kmm_lock_reset(&zone.lock);
	for (unsigned int cpu = 0; cpu < nr_pcp; cpu++)
		kmm_lock_reset(&pcp_array[cpu].lock);
	kmm_lock_reset(&init_lock);
}

/* KMM_OPTIONS' decay_ms, or the default. */
static long configured_decay_ms(void)
{
	return kmm_options()->decay_ms >= -1 ? kmm_options()->decay_ms : 1000;
}

static size_t roundup_pow2(size_t n)
{
	size_t p = 1;

	while (p < n)
		p <<= 1;
	return p;
}

static bool page_alloc_setup(void)
{
	unsigned int n = topology_nr_possible_cpus();
	struct per_cpu_pages *pcps;

	os_init();
	section_shift = os_page_shift + MAX_PAGE_ORDER;
	section_size = (size_t)1 << section_shift;
	section_meta_size = sizeof(struct mem_section) + SECTION_PAGES * sizeof(struct page);
	section_meta_align = roundup_pow2(section_meta_size);
	if (section_meta_align < os_page_size)
		section_meta_align = os_page_size;
	pcp_batch = PCP_BATCH_BYTES >> os_page_shift;
	if (!pcp_batch)
		pcp_batch = 1;
	pcp_high = 4 * pcp_batch;

	for (int o = 0; o <= MAX_PAGE_ORDER; o++)
		INIT_LIST_HEAD(&zone.free_area[o].free_list);
	INIT_LIST_HEAD(&zone.sections);
	INIT_LIST_HEAD(&zone.retired);
	zone.wmark_min = SECTION_PAGES / 16;
	zone.dirty_high = SECTION_PAGES;
	zone.decay_ms = configured_decay_ms();
	section_thp = kmm_options()->thp;
	/*
	 * The first section now, before any other mapping: its alignment trim
	 * becomes the mapped spare, which small mappings and, once the static
	 * spare is used up, bookkeeping are carved from (os.c). A failure here
	 * is not fatal: the zone grows again on demand.
	 */
	kmm_lock(&zone.lock);
	grow_zone(&zone);
	kmm_unlock(&zone.lock);
	/* Left zero: each list is set up by its first use (list_init_lazy()). */
	pcps = os_map_meta(sizeof(*pcps) * n, 0);
	if (!pcps)
		return false;
	pcp_array = pcps;
	nr_pcp = n;
	return true;
}

/*
 * kmm's fork handlers (fork.c), registered while the process has one
 * thread. Here, in a file every program that uses kmm links, so that a
 * static link (libkmm.a, the unit tests' core library) keeps fork.c too.
 */
KMM_HOT_TEXT __attribute__((constructor(KMM_CTOR_FORK))) static void register_fork_handlers(void)
{
	fork_register_handlers();
}

/* Returns false (errno = ENOMEM) if the bookkeeping cannot be mapped. */
KMM_HOT_TEXT bool page_alloc_init(void)
{
	bool ok = true;

	if (likely(atomic_load_explicit(&page_alloc_ready, memory_order_acquire)))
		return true;
	kmm_lock(&init_lock);
	if (!atomic_load_explicit(&page_alloc_ready, memory_order_relaxed)) {
		kmm_init_depth++;
		ok = page_alloc_setup();
		if (ok) {
			atomic_store_explicit(&page_alloc_ready, true, memory_order_release);
			kmm_options_log_load();
		}
		kmm_init_depth--;
	}
	kmm_unlock(&init_lock);
	return ok;
}

/* ---------------------------------------------------------------------------
 * Allocation
 */

/* Takes from the zone, growing it when the request may map memory. */
KMM_HOT_TEXT static struct page *rmqueue_zone(gfp_t gfp, unsigned int order, unsigned long *dirty)
{
	bool may_sleep = gfp & __GFP_DIRECT_RECLAIM;
	bool may_map = gfp & (__GFP_DIRECT_RECLAIM | __GFP_HIGH);
	struct page *page;

	bool grew = false;

	kmm_lock_for(&zone.lock, gfp);
	if (may_sleep && zone.need_refill) {
		zone.need_refill = false;
		if (zone.free_pages < 2 * zone.wmark_min)
			grow_zone(&zone);
	}
	for (;;) {
		page = watermark_ok(&zone, order, gfp) ? __rmqueue_smallest(&zone, order) : NULL;
		if (page || !may_map || grow_zone(&zone) != 0)
			break;
		grew = true;
	}
	/*
	 * Growing while dirty free pages pile up (too fragmented to serve this
	 * order) would only add RSS: release them now instead of after decay.
	 */
	grew = grew && may_sleep && zone.decay_ms >= 0 && zone.dirty_pages > zone.dirty_high;
	if (!may_sleep && (gfp & __GFP_KSWAPD_RECLAIM) &&
	    (!page || zone.free_pages < zone.wmark_min))
		zone.need_refill = true;
	if (page)
		*dirty = page->private;
	kmm_unlock(&zone.lock);
	if (grew)
		zone_decay(&zone);
	return page;
}

/* Sleeps without being a cancellation point, as the kernel API's callers expect of an allocation. */
static void nofail_backoff(gfp_t gfp)
{
	struct timespec ts = { 0, 1000000 };
	int cancel_state;

	if (gfp & __GFP_DIRECT_RECLAIM) {
		pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &cancel_state);
		nanosleep(&ts, NULL);
		pthread_setcancelstate(cancel_state, NULL);
		kmm_drain_all_pages();
	} else {
		cpu_relax();
	}
}

static struct page *alloc_pages_slowpath(gfp_t gfp, unsigned int order, unsigned long *dirty)
{
	struct page *page = rmqueue_zone(gfp, order, dirty);

	if (!page && (gfp & __GFP_DIRECT_RECLAIM) && !(gfp & __GFP_NORETRY)) {
		kmm_drain_all_pages();
		page = rmqueue_zone(gfp, order, dirty);
	}
	while (!page && (gfp & __GFP_NOFAIL)) {
		nofail_backoff(gfp);
		page = rmqueue_zone(gfp, order, dirty);
	}
	return page;
}

static void warn_alloc(gfp_t gfp, unsigned int order, const char *why)
{
	unsigned int n;

	if (gfp & __GFP_NOWARN)
		return;
	n = atomic_fetch_add_explicit(&failure_warnings, 1, memory_order_relaxed);
	if (n < 10)
		kmm_report("page allocation failure: order:%u, mode:%#x: %s%s", order, gfp, why,
			   n == 9 ? " (further failures not reported)" : "");
}

/*
 * A block of 2^order pages, not yet marked allocated, and its dirty extent;
 * NULL with errno set.
 */
KMM_HOT_TEXT static struct page *alloc_block(gfp_t gfp, unsigned int order, unsigned long *dirty)
{
	struct page *page = NULL;

	if (unlikely(order > MAX_PAGE_ORDER)) {
		warn_alloc(gfp, order, "order above MAX_PAGE_ORDER");
		errno = EINVAL;
		return NULL;
	}
	if (unlikely(!page_alloc_init())) {
		warn_alloc(gfp, order, "out of memory");
		errno = ENOMEM;
		return NULL;
	}
	if (order <= PCP_MAX_ORDER)
		page = rmqueue_pcplist(gfp, order, dirty);
	if (!page)
		page = alloc_pages_slowpath(gfp, order, dirty);
	if (unlikely(!page)) {
		warn_alloc(gfp, order, "out of memory");
		errno = ENOMEM;
	}
	return page;
}

void page_zero_run(struct page *page, unsigned long nr_pages, unsigned long dirty)
{
	unsigned long clear = dirty < nr_pages ? dirty : nr_pages;

	if (clear)
		memset(kmm_page_address(page), 0, clear << os_page_shift);
	kmm_counter_add(&zeroed_cleared, clear);
	kmm_counter_add(&zeroed_skipped, nr_pages - clear);
}

static void set_allocated(struct page *page, unsigned int order)
{
	page->order = order;
	page->private = 0;
	set_page_flags(page, PG_alloc);
}

KMM_HOT_TEXT struct page *page_alloc_run(gfp_t gfp, unsigned int order, unsigned long *dirty)
{
	struct page *page = alloc_block(gfp, order, dirty);

	if (likely(page))
		set_allocated(page, order);
	return page;
}

KMM_HOT_TEXT KMM_API struct page *kmm_alloc_pages(gfp_t gfp, unsigned int order)
{
	unsigned long dirty = 0;
	struct page *page = page_alloc_run(gfp, order, &dirty);

	if (likely(page) && (gfp & __GFP_ZERO))
		page_zero_run(page, 1UL << order, dirty);
	return page;
}

KMM_API unsigned long kmm___get_free_pages(gfp_t gfp, unsigned int order)
{
	struct page *page = kmm_alloc_pages(gfp, order);

	return page ? (unsigned long)kmm_page_address(page) : 0;
}

KMM_API unsigned long kmm_get_zeroed_page(gfp_t gfp)
{
	return kmm___get_free_pages(gfp | __GFP_ZERO, 0);
}

/* ---------------------------------------------------------------------------
 * Free, with the kernel's bad-page checks
 */

static _Noreturn void bad_page_free(const struct page *page, unsigned int order)
{
	unsigned long flags = page_flags(page);
	const void *addr = kmm_page_address(page);

	if (flags & (PG_buddy | PG_pcp))
		kmm_bug("BUG: bad page free of %p: double free (the block is already free)", addr);
	if (flags & PG_alloc)
		kmm_bug("BUG: bad page free of %p: freed with order %u, allocated with order %u",
			addr, order, page->order);
	kmm_bug("BUG: bad page free of %p: not the start of an allocated block "
		"(double free, or a pointer into a block)", addr);
}

KMM_HOT_TEXT static void free_checked(struct page *page, unsigned int order, unsigned long dirty)
{
	if (unlikely(!(page_flags(page) & PG_alloc) || page->order != order))
		bad_page_free(page, order);
	if (order <= PCP_MAX_ORDER) {
		free_unref_page(page, order, dirty);
		return;
	}
	set_page_flags(page, 0);
	free_one_page(&zone, page, order, dirty);
}

KMM_HOT_TEXT void page_free_run(struct page *page, unsigned long dirty)
{
	free_checked(page, page->order, dirty);
}

KMM_HOT_TEXT KMM_API void kmm___free_pages(struct page *page, unsigned int order)
{
	if (unlikely(!page))
		kmm_bug("BUG: __free_pages(NULL, %u)", order);
	if (unlikely(order > MAX_PAGE_ORDER))
		kmm_bug("BUG: bad page free of %p: order %u above MAX_PAGE_ORDER",
			kmm_page_address(page), order);
	free_checked(page, order, 1UL << order);
}

/* The page that holds addr, or a report and abort if kmm never gave it out. */
static struct page *lookup_for_free(const void *addr, const char *caller)
{
	struct mem_section *ms = NULL;

	if (atomic_load_explicit(&page_alloc_ready, memory_order_acquire))
		ms = section_lookup((uintptr_t)addr);
	if (unlikely(!ms))
		kmm_bug("BUG: %s(%p): the address was never given out by kmm", caller, addr);
	if (unlikely((uintptr_t)addr & (os_page_size - 1)))
		kmm_bug("BUG: %s(%p): the address is not page aligned", caller, addr);
	return &ms->pages[section_page_index(addr)];
}

KMM_API void kmm_free_pages(unsigned long addr, unsigned int order)
{
	if (!addr)
		return;
	if (unlikely(order > MAX_PAGE_ORDER))
		kmm_bug("BUG: bad page free of %#lx: order %u above MAX_PAGE_ORDER", addr, order);
	free_checked(lookup_for_free((void *)addr, "free_pages"), order, 1UL << order);
}

/* ---------------------------------------------------------------------------
 * Exact allocations: a run of pages carved from a block. The run is held as
 * aligned sub-blocks (5 pages = 4 + 1), each marked allocated, so that
 * free_pages_exact() can check and free them with the ordinary checks.
 */

/* The largest aligned block at page offset i that ends at or before end. */
static unsigned int range_block_order(unsigned long i, unsigned long end)
{
	unsigned int order = MAX_PAGE_ORDER;

	while (order && ((i & ((1UL << order) - 1)) || i + (1UL << order) > end))
		order--;
	return order;
}

KMM_API void *kmm_alloc_pages_exact(size_t size, gfp_t gfp)
{
	unsigned long nr, end, i;
	unsigned int order;
	struct page *page;
	unsigned long dirty = 0;

	if (unlikely(!page_alloc_init()))
		return NULL;
	if (unlikely(size == 0 || size > section_size)) {
		if (!(gfp & __GFP_NOWARN))
			kmm_report("alloc_pages_exact(%zu): size must be 1 to %zu bytes", size,
				   section_size);
		errno = EINVAL;
		return NULL;
	}
	nr = (size + os_page_size - 1) >> os_page_shift;
	order = (unsigned int)get_order(size);
	page = alloc_block(gfp, order, &dirty);
	if (!page)
		return NULL;
	if (gfp & __GFP_ZERO)
		page_zero_run(page, nr, dirty);
	for (i = 0; i < nr; i += 1UL << range_block_order(i, nr))
		set_allocated(page + i, range_block_order(i, nr));
	end = 1UL << order;
	if (nr < end) {
		kmm_lock(&zone.lock);
		for (i = nr; i < end; i += 1UL << range_block_order(i, end))
			__free_one_page(&zone, page + i, range_block_order(i, end),
					dirty_within(dirty, i, 1UL << range_block_order(i, end)));
		kmm_unlock(&zone.lock);
	}
	return kmm_page_address(page);
}

KMM_API void kmm_free_pages_exact(void *addr, size_t size)
{
	struct page *page;
	unsigned long nr;

	if (!addr)
		return;
	page = lookup_for_free(addr, "free_pages_exact");
	nr = (size + os_page_size - 1) >> os_page_shift;
	if (unlikely(size == 0 || page_index(page) + nr > SECTION_PAGES))
		kmm_bug("BUG: free_pages_exact(%p, %zu): size does not match an exact allocation",
			addr, size);
	for (unsigned long i = 0; i < nr;) {
		unsigned int order = range_block_order(i, nr);

		free_checked(page + i, order, 1UL << order);
		i += 1UL << order;
	}
}

/* ---------------------------------------------------------------------------
 * Addresses and descriptors
 */

/* Read at run time: 4, 16 or 64 KiB. Valid even if start-up could not map. */
KMM_API unsigned long kmm_page_size(void)
{
	if (unlikely(!page_alloc_init()))
		return (unsigned long)sysconf(_SC_PAGESIZE);
	return os_page_size;
}

KMM_API unsigned int kmm_page_shift(void)
{
	return (unsigned int)__builtin_ctzl(kmm_page_size());
}

KMM_HOT_TEXT KMM_API void *kmm_page_address(const struct page *page)
{
	return page ? page_to_virt(page) : NULL;
}

KMM_API struct page *kmm_virt_to_page(const void *addr)
{
	struct mem_section *ms;

	if (!atomic_load_explicit(&page_alloc_ready, memory_order_acquire))
		return NULL;
	ms = section_lookup((uintptr_t)addr);
	if (!ms)
		return NULL;
	return &ms->pages[section_page_index(addr)];
}

KMM_API bool kmm_virt_addr_valid(const void *addr)
{
	return kmm_virt_to_page(addr) != NULL;
}

/* ---------------------------------------------------------------------------
 * Statistics and tuning
 */

KMM_API void kmm_buddyinfo(struct kmm_buddyinfo *info)
{
	memset(info, 0, sizeof(*info));
	if (!atomic_load_explicit(&page_alloc_ready, memory_order_acquire))
		return;
	for (unsigned int cpu = 0; cpu < nr_pcp; cpu++)
		kmm_lock(&pcp_array[cpu].lock);
	kmm_lock(&zone.lock);
	for (int o = 0; o <= MAX_PAGE_ORDER; o++)
		info->nr_free[o] = zone.free_area[o].nr_free;
	for (unsigned int cpu = 0; cpu < nr_pcp; cpu++)
		info->pcp_pages += pcp_array[cpu].count;
	info->free_pages = zone.free_pages;
	info->dirty_pages = zone.dirty_pages;
	info->managed_pages = zone.managed_pages;
	info->nr_sections = zone.nr_sections;
	info->released_pages = zone.released_pages;
	info->unmapped_sections = zone.unmapped_sections;
	kmm_unlock(&zone.lock);
	for (unsigned int cpu = nr_pcp; cpu-- > 0;)
		kmm_unlock(&pcp_array[cpu].lock);
	info->zeroed_skipped = atomic_load_explicit(&zeroed_skipped, memory_order_relaxed);
	info->zeroed_cleared = atomic_load_explicit(&zeroed_cleared, memory_order_relaxed);
}

KMM_API void kmm_show_buddyinfo(int fd)
{
	struct kmm_buddyinfo info;

	kmm_buddyinfo(&info);
	kmm_dprint(fd, "Node 0, zone   Normal ");
	for (int o = 0; o <= MAX_PAGE_ORDER; o++)
		kmm_dprint(fd, "%7lu", info.nr_free[o]);
	kmm_dprint(fd, "\n");
}

/*
 * Resident memory by owner. Each section's pages are asked of the kernel
 * (mincore) with no lock held, as no system call but mmap runs under the
 * zone lock, then sorted under every lock; a section unmapped in between
 * is skipped. The slab layer sets a page's cache without these locks, so a
 * slab being made meanwhile may count as "other": statistics, not books.
 * Finding the k-th section walks the list from its head each time: a few
 * sections per process.
 */
static struct mem_section *nth_section(unsigned long k, uintptr_t *start)
{
	struct mem_section *found = NULL;
	struct list_head *e;

	kmm_lock(&zone.lock);
	for (e = zone.sections.next; e != &zone.sections && k; e = e->next)
		k--;
	if (e != &zone.sections) {
		found = list_entry(e, struct mem_section, list);
		*start = found->start;
	}
	kmm_unlock(&zone.lock);
	return found;
}

/* Every lock held: adds the section's resident pages (vec) to r by owner. */
static void count_resident(const struct mem_section *ms, const unsigned char *vec,
			   struct kmm_resident *r)
{
	for (unsigned long i = 0, n; i < SECTION_PAGES; i += n) {
		const struct page *page = &ms->pages[i];
		unsigned long flags = page_flags(page), *to = &r->other_pages;

		n = 1;
		if (flags & (PG_buddy | PG_pcp)) {
			n = 1UL << page->order;
			to = flags & PG_buddy ? &r->free_pages : &r->pcp_pages;
		} else if (__atomic_load_n(&ms->slab_cache[i], __ATOMIC_RELAXED)) {
			to = &r->slab_pages;
		} else if (flags & PG_run_span) {
			run_count_resident(&ms->pages[i], &vec[i], &r->run_pages, &r->free_pages);
			n = 1UL << page->order;
			continue;
		} else if (flags & PG_heap) {
			to = &r->run_pages;
		}
		for (unsigned long j = i; j < i + n; j++)
			*to += vec[j];
	}
}

KMM_API void kmm_resident(struct kmm_resident *r)
{
	unsigned char vec[SECTION_PAGES];
	struct mem_section *ms;
	uintptr_t start = 0;

	memset(r, 0, sizeof(*r));
	if (!atomic_load_explicit(&page_alloc_ready, memory_order_acquire))
		return;
	for (unsigned long k = 0; (ms = nth_section(k, &start)) != NULL; k++) {
		/* The descriptors first, through the same vector: fewer pages than a section. */
		unsigned long meta_pages = (section_meta_size + os_page_size - 1) >> os_page_shift;
		unsigned long meta = 0;

		if (os_resident(ms, meta_pages, vec)) {
			for (unsigned long i = 0; i < meta_pages; i++)
				meta += vec[i];
		}
		if (!os_resident((void *)start, SECTION_PAGES, vec))
			continue;
		for (unsigned int cpu = 0; cpu < nr_pcp; cpu++)
			kmm_lock(&pcp_array[cpu].lock);
		kmm_lock(&zone.lock);
		if (ms->start == start) {
			count_resident(ms, vec, r);
			r->meta_pages += meta;
		}
		kmm_unlock(&zone.lock);
		for (unsigned int cpu = nr_pcp; cpu-- > 0;)
			kmm_unlock(&pcp_array[cpu].lock);
	}
}

KMM_API void kmm_show_resident(int fd)
{
	struct kmm_resident r;
	unsigned long kib = os_page_size >> 10;

	kmm_resident(&r);
	kmm_dprint(fd, "resident KiB: slab %lu runs %lu other %lu free %lu per-cpu %lu "
		   "descriptors %lu\n", r.slab_pages * kib, r.run_pages * kib, r.other_pages * kib,
		   r.free_pages * kib, r.pcp_pages * kib, r.meta_pages * kib);
}

/* The caches above the zone that decay (kmalloc's heap and page runs); few and never removed. */
#define MAX_DECAY_HOOKS 4
typedef void (*decay_hook_fn)(void);
static _Atomic(decay_hook_fn) decay_hooks[MAX_DECAY_HOOKS];

KMM_HOT_TEXT void page_decay_register(void (*fn)(void))
{
	for (unsigned int i = 0; i < MAX_DECAY_HOOKS; i++) {
		decay_hook_fn none = NULL;

		if (atomic_compare_exchange_strong(&decay_hooks[i], &none, fn))
			return;
	}
	kmm_bug("BUG: page_decay_register: more than %d decay hooks", MAX_DECAY_HOOKS);
}

KMM_HOT_TEXT void page_decay_check(void)
{
	bool purge;

	if (!atomic_load_explicit(&page_alloc_ready, memory_order_acquire))
		return;
	/* The caches first: what they give back whole, the zone's decay may then release. */
	for (unsigned int i = 0; i < MAX_DECAY_HOOKS; i++) {
		decay_hook_fn fn = atomic_load_explicit(&decay_hooks[i], memory_order_acquire);

		if (fn)
			fn();
	}
	kmm_lock(&zone.lock);
	purge = zone_wants_purge(&zone);
	kmm_unlock(&zone.lock);
	if (purge)
		zone_decay(&zone);
}

#define DECAY_CLOCK_MIN_MS 10

KMM_HOT_TEXT uint32_t decay_tick(struct decay_clock *clock)
{
	long decay = page_decay_ms();
	unsigned long now, every;

	if (decay < 0)
		return 0;
	every = decay > DECAY_CLOCK_MIN_MS ? (unsigned long)decay : DECAY_CLOCK_MIN_MS;
	now = kmm_now_ms();
	if (now - clock->last_ms < every)
		return 0;
	clock->last_ms = now;
	return clock->epoch++;
}

/* Before the zone starts, what it will start with: vmalloc's recycling asks. */
KMM_HOT_TEXT long page_decay_ms(void)
{
	if (!atomic_load_explicit(&page_alloc_ready, memory_order_acquire))
		return configured_decay_ms();
	return __atomic_load_n(&zone.decay_ms, __ATOMIC_RELAXED);
}

KMM_API long kmm_page_decay_ms(long decay_ms)
{
	long old;

	if (!page_alloc_init())
		return -1;
	kmm_lock(&zone.lock);
	old = zone.decay_ms;
	__atomic_store_n(&zone.decay_ms, decay_ms < 0 ? -1 : decay_ms, __ATOMIC_RELAXED);
	zone.over_high_since = 0;
	kmm_unlock(&zone.lock);
	return old;
}

KMM_API unsigned long kmm_page_reclaim(void)
{
	if (!atomic_load_explicit(&page_alloc_ready, memory_order_acquire))
		return 0;
	kmm_drain_all_pages();
	return zone_purge(&zone, 0);
}
