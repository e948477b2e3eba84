/*
 * page_alloc.h - page descriptors and sections, shared with the layers that
 * build on the page allocator (slab, vmalloc, percpu).
 */
#ifndef KMM_PAGE_ALLOC_H
#define KMM_PAGE_ALLOC_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <kmm/gfp.h>

#include "list.h"

#pragma GCC visibility push(hidden)

/*
 * struct page flags. A block of 2^order pages is described by its first
 * page (the head); the other pages of a block have no flags.
 *   PG_buddy   head of a free block on a zone free list (zone lock)
 *   PG_pcp     head of a free block on a per-CPU list (that list's lock)
 *   PG_alloc   head of an allocated block (its owner)
 * With PG_buddy or PG_pcp, private is the block's dirty extent in pages:
 * the pages from there up read as zeros and are not resident.
 */
enum pageflags {
	PG_buddy = 1u << 0,
	PG_pcp = 1u << 1,
	PG_alloc = 1u << 2,
	/*
	 * Owned by kmalloc's page runs (runs.c), inside a run span: the head of
	 * a run; private = its usable size, whole pages.
	 */
	PG_large_kmalloc = 1u << 4,
	/* Every page of a span of kmalloc's chunk heap (heap.c). */
	PG_heap = 1u << 5,
	/*
	 * The head of a run span (with PG_alloc: a max-order block the runs
	 * hold); freelist points to runs.c's struct run_span.
	 */
	PG_run_span = 1u << 6,
	/* First and last page of a free extent of a run span (runs.c). */
	PG_run_free = 1u << 7,
	PG_run_tail = 1u << 8,
	/* The head of a freed run on a per-CPU cache of runs (runs.c). */
	PG_run_cached = 1u << 9,
};

struct page {
	/*
	 * Atomic because free-path checks read the flags of a block its owner
	 * holds while a neighbour's free, under the zone lock, looks at it as a
	 * possible buddy. Relaxed loads and stores suffice: the lock or the
	 * ownership orders everything else.
	 */
	_Atomic unsigned int flags;
	unsigned int order;	/* order of the block this page heads */
	struct list_head lru;	/* free list or per-CPU list while free */
	unsigned long private;
	/*
	 * Owned by the slab layer while the block is a slab, on the head page.
	 * (Each page's cache is in mem_section.slab_cache.)
	 */
	void *freelist;
	unsigned int inuse;
	unsigned short objects;
	/*
	 * Objects from index fresh up were never handed out and are on no
	 * freelist: a new slab is carved as it is used, so a process that
	 * needs three objects touches three objects' pages, not the slab's.
	 */
	unsigned short fresh;
};

/*
 * 48 bytes on 64-bit builds: a descriptor page covers 85 pages, and a
 * section's descriptors fit a 64 KiB metadata block. At 56 bytes (a 64-bit
 * flags word and a reference count nothing read) they needed 128 KiB, and
 * sqlite kept one descriptor page more resident, the gcc workload's cc1
 * two to six (KMM_OPTIONS=stats=1).
 */
_Static_assert(sizeof(struct page) <= 48, "struct page grew");

/*
 * A section is one max-order block of memory, aligned to its size, with its
 * page descriptors kept in a separate metadata mapping aligned to
 * SECTION_META_ALIGN so that page -> section is a mask.
 */
struct mem_section {
	uintptr_t start;	/* first byte of the section's memory; 0 if retired */
	struct list_head list;	/* zone->sections while mapped, zone->retired while unused */
	/*
	 * The slab cache of each page, set by the slab layer on every page of a
	 * slab and NULL otherwise (it must clear them before freeing the pages).
	 * Packed eight to a cache line apart from the descriptors: kfree's fast
	 * path reads one pointer here and never the page's 48-byte descriptor.
	 */
	struct kmem_cache *slab_cache[1UL << MAX_PAGE_ORDER];
	/*
	 * The same cache's sheaf slot index (0, SLAB_NO_SHEAVES, if none or
	 * not a slab page): kfree's fast path goes from here straight to this
	 * CPU's slot, one load shorter than through the cache.
	 */
	unsigned short slab_index[1UL << MAX_PAGE_ORDER];
	struct page pages[];	/* 2^MAX_PAGE_ORDER descriptors */
};

/* The section table and geometry, read-only after start-up (page_alloc.c). */
#if UINTPTR_MAX > 0xffffffffu
#define VA_BITS 48
#else
#define VA_BITS 32
#endif
#define MIN_SECTION_SHIFT (12 + MAX_PAGE_ORDER)
#define SECTION_INDEX_BITS (VA_BITS - MIN_SECTION_SHIFT)
#define SECTION_LEAF_BITS (SECTION_INDEX_BITS < 13 ? SECTION_INDEX_BITS : 13)
#define SECTION_ROOT_BITS (SECTION_INDEX_BITS - SECTION_LEAF_BITS)

typedef _Atomic(struct mem_section *) section_slot;

/*
 * Beside the table, a direct-mapped cache for kfree's fast path: slot
 * (idx + skew) % 2^SECTION_HASH_BITS holds idx + 1 for the first live
 * section mapped with that remainder (0 while empty), and the slot's row
 * in section_hash.index holds the slab_index of every page of that
 * section (all zero while the slot is empty; see section_hash_set).
 * kfree reads the slot and the row entry at once, both computed from the
 * address alone, so the index is one dependent load away, not three. Two
 * live sections with one remainder (1 GiB apart with 4 KiB pages): the one
 * mapped later is found through the table. A slot changes owner only
 * while it is empty, so an owner keeps it for as long as it has pages in
 * use.
 *
 * The skew is set once, when the first section is mapped, so that it takes
 * slot SECTION_HASH_FIRST; until then every slot is empty, whatever the
 * skew. The sections mapped after it lie near it, so their slots and rows
 * are its neighbours at the front of the arrays, in .bss pages next to the
 * library's other variables.
 *
 * 256 slots, not more: their rows are 512 KiB of .bss. With 4096 the
 * library took 9 MiB of address space, and the kernel aligns a mapping of
 * 2 MiB or more to 2 MiB, which put the library in page-table regions of
 * its own and cost every process that loads it some 2% of a 7 ms run
 * (see docs/malloc.md); test_link checks the extent stays below.
 */
#define SECTION_HASH_BITS (SECTION_INDEX_BITS < 8 ? SECTION_INDEX_BITS : 8)
#define SECTION_HASH_MASK ((1UL << SECTION_HASH_BITS) - 1)
#define SECTION_HASH_FIRST 32
#define SECTION_ROW_MASK ((1UL << (SECTION_HASH_BITS + MAX_PAGE_ORDER)) - 1)

extern unsigned int section_shift;
/* Descriptor mappings are aligned to this: page -> section is a mask. */
extern size_t section_meta_align;
extern _Atomic(section_slot *) section_root[1UL << SECTION_ROOT_BITS];

/* One object, so the slots lie before the rows (section_table.c). */
struct section_hash {
	_Atomic uintptr_t slot[1UL << SECTION_HASH_BITS];	/* the owner's index + 1 */
	/* One row of 2^MAX_PAGE_ORDER entries per slot, flat: slot * row + page. */
	_Atomic unsigned short index[1UL << (SECTION_HASH_BITS + MAX_PAGE_ORDER)]
		__attribute__((aligned(sizeof(unsigned short) << MAX_PAGE_ORDER)));
};
extern struct section_hash section_hash;
/* The skew in pages (slots << MAX_PAGE_ORDER): added to a page number, it gives the row entry. */
extern _Atomic uintptr_t section_hash_skew;

#include "os.h"

static inline uintptr_t section_skew_pages(void)
{
	return atomic_load_explicit(&section_hash_skew, memory_order_relaxed);
}

/* The lookup-cache slot number of section index idx. */
static inline uintptr_t section_hash_nr(uintptr_t idx)
{
	return (idx + (section_skew_pages() >> MAX_PAGE_ORDER)) & SECTION_HASH_MASK;
}

/*
 * The section with index idx in the two-level table, or NULL. The lookup
 * cache needs no bound on the address (an index above every real one
 * matches no slot), the table does: an address beyond VA_BITS has none.
 */
static inline struct mem_section *section_table_lookup(uintptr_t idx)
{
	section_slot *leaf;

	if (idx >> (SECTION_ROOT_BITS + SECTION_LEAF_BITS))
		return NULL;
	leaf = atomic_load_explicit(&section_root[idx >> SECTION_LEAF_BITS], memory_order_acquire);
	if (!leaf)
		return NULL;
	return atomic_load_explicit(&leaf[idx & ((1UL << SECTION_LEAF_BITS) - 1)],
				    memory_order_acquire);
}

/* The section holding addr, or NULL: O(1), never touches addr. */
static inline struct mem_section *section_lookup(uintptr_t addr)
{
	return section_table_lookup(addr >> section_shift);
}

/*
 * The index of addr's page in its section. Sections are aligned to their
 * size, so this is a mask: kfree's lookup does not wait for a load of
 * ms->start on its way from the pointer to the slab cache.
 */
static inline uintptr_t section_page_index(const void *addr)
{
	return ((uintptr_t)addr >> os_page_shift) & ((1UL << MAX_PAGE_ORDER) - 1);
}

/* The section whose descriptors hold page. */
static inline struct mem_section *page_section(const struct page *page)
{
	return (struct mem_section *)((uintptr_t)page & ~(uintptr_t)(section_meta_align - 1));
}

/* page_address() for the library's own layers: no call through the PLT. */
static inline void *page_to_virt(const struct page *page)
{
	const struct mem_section *ms = page_section(page);

	return (void *)(ms->start + ((uintptr_t)(page - ms->pages) << os_page_shift));
}

/* virt_to_page() for the library's own layers. */
static inline struct page *addr_to_page(const void *addr)
{
	struct mem_section *ms = section_lookup((uintptr_t)addr);

	if (!ms)
		return NULL;
	return &ms->pages[section_page_index(addr)];
}

/*
 * The sheaf slot index of the slab cache owning addr's page, for kfree's
 * fast path; 0 (SLAB_NO_SHEAVES) if the cache has no sheaves, the page is
 * no slab's, or addr is not kmm's: all of those take the slow path.
 */
static inline unsigned int addr_slab_index(const void *addr)
{
	/*
	 * From the page number alone: the section index is its high part
	 * (section_shift is the page shift plus MAX_PAGE_ORDER). Plus the
	 * skew, whose low MAX_PAGE_ORDER bits are zero, its low HASH_BITS +
	 * MAX_PAGE_ORDER bits are the row entry (slot times a row plus the
	 * page's index in its section) and the bits above them the slot.
	 */
	uintptr_t pfn = (uintptr_t)addr >> os_page_shift, idx = pfn >> MAX_PAGE_ORDER, e;
	uintptr_t entry = pfn + section_skew_pages();
	unsigned int index;
	struct mem_section *ms;

	e = atomic_load_explicit(&section_hash.slot[(entry >> MAX_PAGE_ORDER) & SECTION_HASH_MASK],
				 memory_order_acquire);
	/* Relaxed: a section without the slot may read its owner's row. */
	index = atomic_load_explicit(&section_hash.index[entry & SECTION_ROW_MASK], memory_order_relaxed);
	if (likely(e == idx + 1))
		return index;
	ms = section_table_lookup(idx);
	return ms ? ms->slab_index[section_page_index(addr)] : 0;
}

/* The slab cache owning addr's page; NULL if none or if addr is not kmm's. */
static inline struct kmem_cache *addr_slab_cache(const void *addr)
{
	struct mem_section *ms = section_lookup((uintptr_t)addr);

	if (!ms)
		return NULL;
	return ms->slab_cache[section_page_index(addr)];
}

/*
 * The slab cache of page (NULL if it is not in a slab), and setting it with
 * the cache's slot index (0 with NULL).
 */
struct kmem_cache *page_slab_cache(const struct page *page);
void set_page_slab_cache(struct page *page, struct kmem_cache *s, unsigned int index);

/* Starts the page allocator if needed; false if it cannot (ENOMEM). */
bool page_alloc_init(void);
/*
 * For owners that know how much of a block they write (kmalloc's page runs):
 * an allocated block whose pages from *dirty up read as zeros and are not
 * resident, nothing cleared; NULL with errno set. page_free_run() frees it,
 * saying that its pages from dirty up were never written.
 */
struct page *page_alloc_run(gfp_t gfp, unsigned int order, unsigned long *dirty);
void page_free_run(struct page *page, unsigned long dirty);
/* A run is about to write pages beyond its block's dirty extent (see page_alloc.c). */
void page_release_for_run(unsigned long pages);
/* Clears the first nr_pages of a block with that dirty extent (__GFP_ZERO). */
void page_zero_run(struct page *page, unsigned long nr_pages, unsigned long dirty);
/* The decay time in ms (-1: never release); other layers' caches follow it. */
long page_decay_ms(void);
/*
 * The decay clock of a cache of free memory above the zone (kmalloc's heap
 * and page runs): what went free in an epoch goes back to the OS once a
 * whole decay period (page_decay_ms(), at least 10 ms) has passed after it.
 * The cache stamps what it frees with epoch, under its own lock, and calls
 * decay_tick() under that lock after its allocations and frees: 0 when no
 * period has ended, else the limit below which stamped memory is due (and
 * epoch has moved on).
 */
struct decay_clock {
	uint32_t epoch;
	unsigned long last_ms;
};

uint32_t decay_tick(struct decay_clock *clock);
/*
 * fn (which takes its own locks, and is called with none of kmm's held)
 * runs at each page_decay_check(), so that such a cache decays while the
 * program only reuses slab objects.
 */
void page_decay_register(void (*fn)(void));
/*
 * The zone's decay without a free: releases dirty pages that have stayed
 * above the watermark for the decay time. The slab layer's periodic check
 * calls it, so that a program which frees a burst and then only reuses
 * cached objects still gives the burst's pages back.
 */
void page_decay_check(void);

struct kmem_cache;

static inline unsigned long page_flags(const struct page *page)
{
	return atomic_load_explicit(&page->flags, memory_order_relaxed);
}

static inline void set_page_flags(struct page *page, unsigned long flags)
{
	atomic_store_explicit(&page->flags, (unsigned int)flags, memory_order_relaxed);
}

/* fork.c's handlers: the page allocator's locks, released, reset in the child. */
void page_alloc_fork_lock(void);
void page_alloc_fork_unlock(void);
void page_alloc_fork_reset(void);

#pragma GCC visibility pop

#endif
