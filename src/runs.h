/*
 * runs.h - kmalloc's page runs (runs.c): blocks above kmalloc's largest
 * class, up to a section, as whole pages carved from run spans.
 */
#ifndef KMM_RUNS_H
#define KMM_RUNS_H

#include <stdbool.h>
#include <stddef.h>

#include <kmm/gfp.h>

#pragma GCC visibility push(hidden)

struct page;

struct run_stats {
	unsigned long spans;		/* sections held as run spans, empty ones included */
	unsigned long used_pages;	/* in runs handed out */
	unsigned long free_pages;	/* the rest of the spans */
};

/*
 * A run of size bytes (at most a section), aligned to align bytes (a power
 * of two; 0 or up to a page: page-aligned); its head page carries
 * PG_large_kmalloc and its usable size, whole pages, in private. NULL with
 * errno = ENOMEM, or EINVAL where the size and alignment cannot fit in a span.
 */
void *run_alloc(size_t size, size_t align, gfp_t gfp);
/* Frees the run headed by page; with release, its pages go back to the OS first. */
void run_free(struct page *page, bool release);
/* Grows or shrinks the run headed by page to size bytes where it lies; false if it cannot grow. */
bool run_resize_in_place(struct page *page, size_t size);
/* Gives back the empty spans and the pages inside free extents; how many pages. */
unsigned long run_trim(void);
void run_stats(struct run_stats *st);
/*
 * kmm_resident()'s count of the run span headed by head, whose pages' mincore
 * flags are vec: pages of runs add to *runs, those of free extents to *free.
 * The caller holds the zone lock.
 */
void run_count_resident(const struct page *head, const unsigned char *vec, unsigned long *runs,
			unsigned long *free);
/* "kmalloc runs: spans N, in use N KiB, free N KiB" on fd (KMM_OPTIONS=stats=1). */
void run_show(int fd);

/* fork.c's handlers: every lock of the page runs, released, reset in the child. */
void run_fork_lock(void);
void run_fork_unlock(void);
void run_fork_reset(void);

#pragma GCC visibility pop

#endif
