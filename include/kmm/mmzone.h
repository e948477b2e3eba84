/*
 * <kmm/mmzone.h> - looking into the page allocator and tuning its return of
 * memory to the OS: free blocks per order (like /proc/buddyinfo), resident
 * memory by owner, and the dirty-page decay.
 */
#ifndef KMM_MMZONE_H
#define KMM_MMZONE_H

#include <kmm/gfp.h>

#ifdef __cplusplus
extern "C" {
#endif

struct kmm_buddyinfo {
	unsigned long nr_free[NR_PAGE_ORDERS]; /* free blocks per order, buddy lists */
	unsigned long free_pages;    /* pages in the buddy free lists */
	unsigned long pcp_pages;     /* free pages cached on per-CPU lists */
	unsigned long dirty_pages;   /* free pages that may be resident (not released) */
	unsigned long managed_pages; /* pages in all mapped sections */
	unsigned long nr_sections;   /* sections mapped (2^MAX_PAGE_ORDER pages each) */
	unsigned long zeroed_skipped; /* __GFP_ZERO pages served without a memset */
	unsigned long zeroed_cleared; /* __GFP_ZERO pages cleared with a memset */
	unsigned long released_pages; /* pages given back with madvise, ever */
	unsigned long unmapped_sections; /* sections unmapped, ever */
};

/* A consistent snapshot, safe from any thread at any time. */
void kmm_buddyinfo(struct kmm_buddyinfo *info);

/*
 * Writes the snapshot to fd in /proc/buddyinfo's format, one line:
 * "Node 0, zone   Normal" followed by nr_free for orders 0..MAX_PAGE_ORDER.
 */
void kmm_show_buddyinfo(int fd);

/*
 * Where the memory of kmm's sections that is resident (in RAM, counted in
 * the process's RSS) lies, in pages, from mincore(2): what no counter can
 * tell, since a free page stays resident until it is released. Walks every
 * section: for statistics, not for a fast path. Allocations above the
 * largest buddy block (vmalloc areas) are separate mappings, not counted.
 */
struct kmm_resident {
	unsigned long slab_pages;  /* slab pages: live objects, cached free ones, empty slabs */
	unsigned long run_pages;   /* kmalloc/malloc page runs and the chunk heap */
	unsigned long other_pages; /* other allocated blocks: alloc_pages, percpu chunks... */
	unsigned long free_pages;  /* free in the buddy lists and between page runs, not released */
	unsigned long pcp_pages;   /* free on the per-CPU lists */
	unsigned long meta_pages;  /* the sections' page descriptors */
};

void kmm_resident(struct kmm_resident *r);

/*
 * Writes kmm_resident() to fd in KiB, one line: "resident KiB: slab N runs N
 * other N free N per-cpu N descriptors N".
 */
void kmm_show_resident(int fd);

/*
 * Free pages above the dirty high watermark are released to the OS once they
 * have stayed above it for decay_ms milliseconds (0: at once; -1: never
 * automatically). Returns the previous value. Default: 1000.
 */
long kmm_page_decay_ms(long decay_ms);

/*
 * Drains the per-CPU lists, releases every free page to the OS and unmaps
 * free sections beyond the small reserve. Returns the pages released or
 * unmapped.
 */
unsigned long kmm_page_reclaim(void);

#ifdef __cplusplus
}
#endif

#endif
