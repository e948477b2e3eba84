/*
 * kmalloc.h - kmalloc's fast paths and helpers, shared with the malloc
 * family in preload/.
 */
#ifndef KMM_KMALLOC_H
#define KMM_KMALLOC_H

#include <stddef.h>
#include <string.h>

#include <kmm/gfp.h>

#include "page_alloc.h"
#include "slab.h"

#pragma GCC visibility push(hidden)

#define KMALLOC_TABLE_MAX 1024

/*
 * kmalloc_table[(size + 7) / 8]: where the fast path finds the sheaf for
 * sizes 1..1024 without a trip through the cache structure: the class
 * cache's CPU-0 slot (rseq mode) and slot index (per-thread mode). Until a
 * class's cache exists its entry leads to the always-empty dummy sheaf, so
 * the fast path fails over to kmalloc_slow(). Entries are published with
 * release stores once the cache is complete; the fast path's relaxed loads
 * are followed only by loads that depend on them.
 */
struct kmalloc_slot {
	uintptr_t cpu_slot0;
	unsigned int index;
	unsigned int size;	/* the class's object size, set before any fast path runs */
};

extern struct kmalloc_slot kmalloc_table[KMALLOC_TABLE_MAX / 8 + 1];

void *kmalloc_slow(size_t size, gfp_t gfp);
/* KMALLOC_TABLE_MAX < size: this CPU's sheaf of the class, if the cache exists. */
void *kmalloc_fast_medium(size_t size);
void kfree_slow(const void *p, const char *who);
void kfree_moved(const void *p, const char *who);
size_t kmalloc_usable_size(const void *p, const char *who);
void *kmalloc_aligned(size_t size, size_t align, gfp_t gfp);
unsigned long kmalloc_trim(void);
bool kmalloc_grow_in_place(const void *p, size_t new_size);
bool kmalloc_shrink_in_place(const void *p, size_t new_size);

/* 1 <= size <= KMALLOC_TABLE_MAX. NULL: take kmalloc_slow(). */
static inline void *kmalloc_fast(size_t size)
{
	struct kmalloc_slot *k = &kmalloc_table[(size + 7) >> 3];

	tsan_acquire(k);
	return slab_alloc_fast_at(&k->cpu_slot0, &k->index);
}

/*
 * kzalloc's: 1 <= size <= KMALLOC_TABLE_MAX, the whole object cleared, as
 * the slow path clears it. NULL: take kmalloc_slow().
 */
static inline void *kzalloc_fast(size_t size)
{
	void *obj = kmalloc_fast(size);

	return likely(obj) ? memset(obj, 0, kmalloc_table[(size + 7) >> 3].size) : NULL;
}

/*
 * Any size: the table for 1..KMALLOC_TABLE_MAX, the class computed above
 * that (NULL beyond four pages, for 0, and before start-up).
 */
static inline void *kmalloc_fast_any(size_t size)
{
	if (likely(size - 1 < KMALLOC_TABLE_MAX))
		return kmalloc_fast(size);
	return size ? kmalloc_fast_medium(size) : NULL;
}

/* A slab object onto this CPU's sheaf; false: take kfree_slow(). */
static inline bool kfree_fast(const void *p)
{
	unsigned int index = addr_slab_index(p);

	return likely(index != SLAB_NO_SHEAVES) && slab_free_fast_index(index, (void *)p) > 0;
}

#pragma GCC visibility pop

#endif
