/*
 * vmalloc.h - what kmalloc needs from vmalloc.c.
 */
#ifndef KMM_VMALLOC_H_INTERNAL
#define KMM_VMALLOC_H_INTERNAL

#include <stdbool.h>
#include <stddef.h>

#include <kmm/gfp.h>

#include "lock.h"

#pragma GCC visibility push(hidden)

/*
 * A vmalloc area recording caller; align 0 or up to the page size: page
 * aligned; 2 MiB: vmalloc_huge (aligned when at least 2 MiB, MADV_HUGEPAGE).
 */
void *vmalloc_caller(size_t size, gfp_t gfp, size_t align, void *caller);

/*
 * kmalloc's blocks beyond the largest buddy block: an area recycled from
 * vfree_recycle() when one fits (cleared for __GFP_ZERO), else a new one.
 * vfree_recycle() keeps the area for reuse for the decay time;
 * vmalloc_recycle_drain() unmaps every kept area.
 */
void *vmalloc_recycled(size_t size, gfp_t gfp, void *caller);
void vfree_recycle(const void *addr);
void vmalloc_recycle_drain(void);

/* How many areas there are, and their bytes (guard pages included). */
void vmalloc_totals(size_t *areas, size_t *bytes);

/* The usable size of the area starting exactly at addr; 0 if there is none. */
size_t vmalloc_size(const void *addr);

/* The registry's and the recycle cache's lock; fork.c's handlers take it too. */
extern struct kmm_lock vmap_lock;

#pragma GCC visibility pop

#endif
