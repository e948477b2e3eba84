/*
 * heap.h - kmalloc's chunk heap (heap.c): blocks of more than one page and
 * at most kmalloc's largest class that are not powers of two, and the
 * objects of kmalloc's cold classes (kmalloc.c, class_cold()).
 */
#ifndef KMM_HEAP_H
#define KMM_HEAP_H

#include <stddef.h>
#include <stdint.h>

#include <kmm/gfp.h>

#include "lock.h"

#pragma GCC visibility push(hidden)

struct heap_stats {
	unsigned long spans;		/* spans mapped from the page allocator, the spare one included */
	unsigned long used_bytes;	/* in chunks handed out, headers included */
	unsigned long free_bytes;	/* the rest of the spans */
};

/* size bytes, 16-byte aligned; NULL with errno = ENOMEM. */
void *heap_alloc(size_t size, gfp_t gfp);
/*
 * The same, with a caller's tag (not 0) kept in the chunk until its free
 * returns it: kmalloc counts its cold classes' chunks with it.
 */
void *heap_alloc_tagged(size_t size, gfp_t gfp, uint32_t tag);
/* Frees a chunk and returns its tag (0: none); reports (as who) and aborts for anything else. */
uint32_t heap_free(const void *p, const char *who);
size_t heap_usable_size(const void *p, const char *who);
/* Grows a chunk to size bytes where it lies, if the free chunk after it has room. */
bool heap_grow_in_place(const void *p, size_t size);
/* Shrinks a chunk to size bytes where it lies, giving the tail back if it can be a chunk. */
void heap_shrink_in_place(const void *p, size_t size);
/* Gives back the spare empty span and the pages inside free chunks; how many. */
unsigned long heap_trim(void);
void heap_stats(struct heap_stats *st);
/* "kmalloc heap: spans N, in use N KiB, free N KiB" on fd (KMM_OPTIONS=stats=1). */
void heap_show(int fd);

/* The chunk heap's one lock; fork.c's handlers take it too. */
extern struct kmm_lock heap_lock;

#pragma GCC visibility pop

#endif
