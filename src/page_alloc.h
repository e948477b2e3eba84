/*
 * page_alloc.h - page descriptors and sections, shared with the layers that
 * build on the page allocator (slab, vmalloc, percpu).
 */
#ifndef KMM_PAGE_ALLOC_H
#define KMM_PAGE_ALLOC_H

#include <stdatomic.h>
#include <stdint.h>

#include <kmm/gfp.h>

#include "list.h"

/*
 * struct page flags. A block of 2^order pages is described by its first
 * page (the head); the other pages of a block have no flags.
 *   PG_buddy   head of a free block on a zone free list (zone lock)
 *   PG_pcp     head of a free block on a per-CPU list (that list's lock)
 *   PG_alloc   head of an allocated block (its owner)
 *   PG_zeroed  with PG_buddy or PG_pcp: the block is known to read as zeros
 */
enum pageflags {
	PG_buddy = 1u << 0,
	PG_pcp = 1u << 1,
	PG_alloc = 1u << 2,
	PG_zeroed = 1u << 3,
};

struct page {
	/*
	 * Atomic because free-path checks read the flags of a block its owner
	 * holds while a neighbour's free, under the zone lock, looks at it as a
	 * possible buddy. Relaxed loads and stores suffice: the lock or the
	 * ownership orders everything else.
	 */
	_Atomic unsigned long flags;
	struct list_head lru;	/* free list or per-CPU list while free */
	unsigned int order;	/* order of the block this page heads */
	atomic_int _refcount;	/* 1 while allocated */
	unsigned long private;
	/* Room for the slab layer. */
	void *slab_cache;
	void *freelist;
	unsigned long counters;
};

/*
 * A section is one max-order block of memory, aligned to its size, with its
 * page descriptors kept in a separate metadata mapping aligned to
 * SECTION_META_ALIGN so that page -> section is a mask.
 */
struct mem_section {
	uintptr_t start;	/* first byte of the section's memory; 0 if retired */
	struct list_head list;	/* zone->retired while unused */
	struct page pages[];	/* 2^MAX_PAGE_ORDER descriptors */
};

static inline unsigned long page_flags(const struct page *page)
{
	return atomic_load_explicit(&page->flags, memory_order_relaxed);
}

static inline void set_page_flags(struct page *page, unsigned long flags)
{
	atomic_store_explicit(&page->flags, flags, memory_order_relaxed);
}

#endif
