/*
 * heap.c - kmalloc's chunk heap: the sizes between one page and four that
 * are not powers of two (4 to 16 KiB with 4 KiB pages), carved as chunks
 * with boundary tags from spans of 2^HEAP_SPAN_ORDER pages; also the first
 * objects of kmalloc's cold classes, which kmalloc tags with their class
 * (heap_alloc_tagged(); the heap only keeps the tag for heap_free()).
 *
 * Why not size classes: a class keeps its own slabs, so memory one class
 * freed serves no other. Programs allocate these sizes in bursts of a few
 * (git's object buffers, a compiler's tables), and per class that left
 * kmm's replays of git and cc1 0.5 and 0.3 MiB above glibc, whose heap
 * merges a freed block with its free neighbours at once and then serves
 * any size from it (docs/benchmarks.md, --sizes 4096:16384). Here, too, a
 * freed chunk merges with its free neighbours at once, an allocation takes
 * the best-fitting free chunk (within 512 bytes) and splits off the rest,
 * and a span whose chunks are all free goes back to the page allocator.
 * Free chunks that stay free through a decay period give their inner pages
 * back to the OS. Powers of two keep their slab class, for their natural
 * alignment (kmalloc.c).
 *
 * A chunk is a 16-byte header and its payload: the chunk's size and the
 * size of the chunk before it in the span (0 for the first), so that a free
 * finds both neighbours, and a state word that tells a chunk in use from a
 * free one and from anything else (a bad or double free is reported, as for
 * slab objects). A free chunk keeps its bin's list links in its payload.
 * Every page of a span carries PG_heap, so kfree and ksize know a chunk
 * from the address alone; the head page's private holds how far into the
 * span anything was ever written, so that the span goes back to the zone
 * saying which pages are dirty.
 *
 * Locking: heap_lock guards every span's chunks, the bins and the counters;
 * it is taken for each allocation and free of these sizes. Pages come from
 * and go back to the page allocator with heap_lock dropped, so it is never
 * held together with another lock of kmm's.
 */
#include "heap.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>

#include "internal.h"
#include "list.h"
#include "lock.h"
#include "os.h"
#include "page_alloc.h"

#define HEAP_SPAN_ORDER 6
#define HEAP_HEADER 16
#define HEAP_BIN_SHIFT 9	/* bins 512 bytes wide */
#define HEAP_NR_BINS 64		/* the last holds every chunk of 32 KiB and more */
#define HEAP_MIN_CHUNK 32	/* a header and the list links of a free chunk */

#define HEAP_CLEAN 0xffffffffu	/* a free chunk whose inner pages went back */
#define CHUNK_USED 0x6b6d6d75u	/* "kmmu" */
#define CHUNK_FREE 0x6b6d6d66u	/* "kmmf" */

struct heap_chunk {
	uint32_t size;		/* bytes, this header included; a multiple of 16 */
	uint32_t prev_size;	/* the previous chunk's size; 0 for a span's first */
	uint32_t state;		/* CHUNK_USED or CHUNK_FREE */
	union {
		uint32_t freed_epoch;	/* free: when it went free; HEAP_CLEAN once released */
		uint32_t tag;		/* in use: what heap_alloc_tagged() was given (0 if none) */
	};
	struct list_head link;	/* a free chunk's place in its bin (payload) */
};

_Static_assert(offsetof(struct heap_chunk, link) == HEAP_HEADER, "payload after the header");

struct kmm_lock heap_lock = KMM_LOCK_INIT;
static struct list_head heap_bins[HEAP_NR_BINS];
static uint64_t heap_bin_mask;		/* bit b: bin b is not empty */
/* One span whose chunks all went free, kept so that a loop does not map one each time. */
static struct page *heap_spare;
static unsigned long heap_spans, heap_used_bytes;
/*
 * Decay: a free chunk's inner pages go back to the OS once the chunk has
 * stayed free through a whole decay period (the page allocator's decay_ms),
 * so a program that freed most of a burst but keeps a few chunks in each
 * span does not keep the rest resident for good (decay_tick()).
 */
static struct decay_clock heap_clock;
static uint32_t heap_spare_epoch;
static pthread_once_t heap_once = PTHREAD_ONCE_INIT;

static size_t span_bytes(void)
{
	return os_page_size << HEAP_SPAN_ORDER;
}


static void heap_decay_check(void);

KMM_HOT_TEXT static void heap_setup(void)
{
	for (int b = 0; b < HEAP_NR_BINS; b++)
		INIT_LIST_HEAD(&heap_bins[b]);
	page_decay_register(heap_decay_check);
}


/* ---------------------------------------------------------------------------
 * Chunks and bins (heap_lock held)
 */

static unsigned int bin_of(size_t size)
{
	size_t b = size >> HEAP_BIN_SHIFT;

	return b < HEAP_NR_BINS ? (unsigned int)b : HEAP_NR_BINS - 1;
}

/* A chunk's size for a request of size bytes: the header, rounded to 16. */
static size_t chunk_need(size_t size)
{
	return (size + HEAP_HEADER + 15) & ~(size_t)15;
}

static uintptr_t span_base_of(const void *p)
{
	return (uintptr_t)p & ~(uintptr_t)(span_bytes() - 1);
}

static struct heap_chunk *next_chunk(struct heap_chunk *c)
{
	uintptr_t next = (uintptr_t)c + c->size;

	return next - span_base_of(c) < span_bytes() ? (struct heap_chunk *)next : NULL;
}

static struct heap_chunk *prev_chunk(struct heap_chunk *c)
{
	return c->prev_size ? (struct heap_chunk *)((uintptr_t)c - c->prev_size) : NULL;
}

static void bin_add(struct heap_chunk *c)
{
	unsigned int b = bin_of(c->size);

	c->state = CHUNK_FREE;
	list_add(&c->link, &heap_bins[b]);
	heap_bin_mask |= 1ULL << b;
}

static void bin_del(struct heap_chunk *c)
{
	unsigned int b = bin_of(c->size);

	list_del(&c->link);
	if (list_empty(&heap_bins[b]))
		heap_bin_mask &= ~(1ULL << b);
}

/* c's size changed or c is new: the chunk after it learns c's size. */
static void set_size(struct heap_chunk *c, size_t size)
{
	struct heap_chunk *next;

	c->size = (uint32_t)size;
	next = next_chunk(c);
	if (next)
		next->prev_size = (uint32_t)size;
}

/* b, which follows a, becomes part of a (b is off any bin). */
static void merge_into(struct heap_chunk *a, struct heap_chunk *b)
{
	b->state = 0;
	set_size(a, a->size + b->size);
}

/*
 * A free chunk of at least need bytes, off its bin: the first that fits in
 * need's own bin, else the first of the next bin that has any (every chunk
 * there fits). NULL if none.
 */
static struct heap_chunk *take_fit(size_t need)
{
	unsigned int b = bin_of(need);
	uint64_t above;

	for (struct list_head *e = heap_bins[b].next; e != &heap_bins[b]; e = e->next) {
		struct heap_chunk *c = list_entry(e, struct heap_chunk, link);

		if (c->size >= need) {
			bin_del(c);
			return c;
		}
	}
	above = b + 1 < HEAP_NR_BINS ? heap_bin_mask >> (b + 1) << (b + 1) : 0;
	if (!above)
		return NULL;
	b = (unsigned int)__builtin_ctzll(above);
	{
		struct heap_chunk *c = list_first_entry(&heap_bins[b], struct heap_chunk, link);

		bin_del(c);
		return c;
	}
}

/* Marks the dirty extent of c's span to cover [c, c + len). */
KMM_HOT_TEXT static void note_written(struct heap_chunk *c, size_t len)
{
	uintptr_t base = span_base_of(c);
	struct page *head = addr_to_page((void *)base);
	unsigned long end = (unsigned long)((uintptr_t)c + len - base);

	if (end > head->private)
		head->private = end;
}

/*
 * c keeps need of its bytes; what is left, if it can be a chunk, becomes a
 * free one, as dirty as the free space it was (epoch).
 */
KMM_HOT_TEXT static void split_rest(struct heap_chunk *c, size_t need, uint32_t epoch)
{
	size_t rest = c->size - need;
	struct heap_chunk *r;

	if (rest < HEAP_MIN_CHUNK)
		return;
	r = (struct heap_chunk *)((uintptr_t)c + need);
	r->prev_size = (uint32_t)need;
	set_size(r, rest);
	c->size = (uint32_t)need;
	r->freed_epoch = epoch;
	bin_add(r);
	note_written(r, HEAP_MIN_CHUNK);
}

/* Hands out need bytes of the free chunk c (off its bin). */
static void *carve(struct heap_chunk *c, size_t need)
{
	split_rest(c, need, c->freed_epoch);
	c->state = CHUNK_USED;
	note_written(c, c->size);
	heap_used_bytes += c->size;
	return (unsigned char *)c + HEAP_HEADER;
}

/* ---------------------------------------------------------------------------
 * Spans
 */

static void span_mark(struct page *head, unsigned long flags_add, bool set)
{
	for (unsigned long i = 0; i < (1UL << HEAP_SPAN_ORDER); i++) {
		unsigned long f = page_flags(&head[i]);

		set_page_flags(&head[i], set ? f | flags_add : f & ~flags_add);
	}
}

/* A new span's one free chunk, off the lock: nobody else can see the span yet. */
static struct heap_chunk *span_new(gfp_t gfp)
{
	unsigned long dirty = 0;
	struct page *head = page_alloc_run(gfp & ~__GFP_ZERO, HEAP_SPAN_ORDER, &dirty);
	struct heap_chunk *c;

	if (!head)
		return NULL;
	span_mark(head, PG_heap, true);
	head->private = dirty << os_page_shift;
	c = page_to_virt(head);
	c->prev_size = 0;
	c->size = (uint32_t)span_bytes();
	c->state = CHUNK_FREE;
	/* Clean, or dirty as of the epoch its caller stamps under the lock. */
	c->freed_epoch = dirty ? 0 : HEAP_CLEAN;
	if (head->private < HEAP_MIN_CHUNK)
		head->private = HEAP_MIN_CHUNK;
	return c;
}

/* Gives an empty span's pages back, saying how far they were written. */
KMM_HOT_TEXT static void span_free(struct page *head)
{
	unsigned long dirty = (head->private + os_page_size - 1) >> os_page_shift;

	span_mark(head, PG_heap, false);
	head->private = 0;
	page_free_run(head, dirty);
}

/* ---------------------------------------------------------------------------
 * Giving memory back
 */

/*
 * heap_lock held: gives back the pages wholly inside the payloads of the
 * free chunks that went free before epoch limit and are not clean yet,
 * beyond their bin links; they read as zeros when next used. Under the
 * lock: a chunk released outside it could be handed out meanwhile.
 * Returns the pages given back.
 */
KMM_HOT_TEXT static unsigned long release_free_interiors(uint32_t limit)
{
	unsigned long pages = 0;

	for (int b = 0; b < HEAP_NR_BINS; b++) {
		for (struct list_head *e = heap_bins[b].next; e != &heap_bins[b]; e = e->next) {
			struct heap_chunk *c = list_entry(e, struct heap_chunk, link);
			uintptr_t from = ((uintptr_t)c + sizeof(*c) + os_page_size - 1) &
					 ~(uintptr_t)(os_page_size - 1);
			uintptr_t to = ((uintptr_t)c + c->size) & ~(uintptr_t)(os_page_size - 1);

			if (c->freed_epoch == HEAP_CLEAN || c->freed_epoch >= limit)
				continue;
			c->freed_epoch = HEAP_CLEAN;
			if (to > from) {
				os_release((void *)from, to - from);
				pages += (to - from) >> os_page_shift;
			}
		}
	}
	return pages;
}

/*
 * heap_lock held, after an allocation or a free: once per decay period,
 * the chunks that stayed free through the last whole period give their
 * inner pages back, and so does a spare span that stayed empty as long;
 * returns that span, for the caller to free unlocked.
 */
static struct page *heap_decay(void)
{
	uint32_t limit = decay_tick(&heap_clock);
	struct page *spare = NULL;

	if (!limit)
		return NULL;
	release_free_interiors(limit);
	if (heap_spare && heap_spare_epoch < limit) {
		spare = heap_spare;
		heap_spare = NULL;
	}
	return spare;
}

/* The decay without an allocation or a free of a chunk (page_decay_register()). */
KMM_HOT_TEXT static void heap_decay_check(void)
{
	struct page *idle;

	kmm_lock(&heap_lock);
	idle = heap_decay();
	kmm_unlock(&heap_lock);
	if (idle)
		span_free(idle);
}

/* ---------------------------------------------------------------------------
 * Allocation and free
 */

KMM_HOT_TEXT void *heap_alloc(size_t size, gfp_t gfp)
{
	return heap_alloc_tagged(size, gfp, 0);
}

KMM_HOT_TEXT void *heap_alloc_tagged(size_t size, gfp_t gfp, uint32_t tag)
{
	size_t need = chunk_need(size);
	struct heap_chunk *c;
	struct page *idle;
	void *p;

	pthread_once(&heap_once, heap_setup);
	kmm_lock_for(&heap_lock, gfp);
	c = take_fit(need);
	if (!c && heap_spare) {
		c = page_to_virt(heap_spare);
		heap_spare = NULL;
		heap_spans++;
	}
	if (!c) {
		kmm_unlock(&heap_lock);
		c = span_new(gfp);
		if (!c) {
			errno = ENOMEM;
			return NULL;
		}
		kmm_lock_for(&heap_lock, gfp);
		heap_spans++;
		if (c->freed_epoch != HEAP_CLEAN)
			c->freed_epoch = heap_clock.epoch;
	}
	p = carve(c, need);
	c->tag = tag;
	idle = heap_decay();
	kmm_unlock(&heap_lock);
	if (idle)
		span_free(idle);
	if (gfp & __GFP_ZERO)
		memset(p, 0, need - HEAP_HEADER);
	return p;
}

/*
 * heap_lock held: the chunk whose payload p is, or a report. Besides the
 * state word, a chunk in use must have a sane size and be its successor's
 * predecessor: a pointer into a payload that happens to hold CHUNK_USED 16
 * bytes before it is still caught (unless the program forged it all).
 */
KMM_HOT_TEXT static struct heap_chunk *chunk_of(const void *p, const char *who)
{
	struct heap_chunk *c = (struct heap_chunk *)((uintptr_t)p - HEAP_HEADER);
	uintptr_t base = span_base_of(p);
	uint32_t state = 0;

	if (!((uintptr_t)p & 15) && (uintptr_t)c >= base) {
		struct heap_chunk *n;

		state = c->state;
		if (state == CHUNK_USED && c->size >= HEAP_MIN_CHUNK && !(c->size & 15) &&
		    (uintptr_t)c - base + c->size <= span_bytes() &&
		    (!(n = next_chunk(c)) || n->prev_size == c->size))
			return c;
	}
	kmm_unlock(&heap_lock);
	kmm_bug("BUG: %s(%p): %s", who, p, state == CHUNK_FREE ?
		"double free (the block is already free)" :
		"not the start of an allocation (double free, or a pointer into an object)");
}

KMM_HOT_TEXT uint32_t heap_free(const void *p, const char *who)
{
	struct heap_chunk *c, *n, *prev;
	struct page *empty = NULL, *idle;
	uint32_t tag;

	kmm_lock(&heap_lock);
	c = chunk_of(p, who);
	tag = c->tag;
	heap_used_bytes -= c->size;
	n = next_chunk(c);
	if (n && n->state == CHUNK_FREE) {
		bin_del(n);
		merge_into(c, n);
	}
	prev = prev_chunk(c);
	if (prev && prev->state == CHUNK_FREE) {
		bin_del(prev);
		merge_into(prev, c);
		c = prev;
	}
	c->freed_epoch = heap_clock.epoch;
	if (c->size == span_bytes()) {
		empty = addr_to_page(c);
		heap_spans--;
		if (!heap_spare) {
			heap_spare = empty;
			heap_spare_epoch = heap_clock.epoch;
			empty = NULL;
			c->state = CHUNK_FREE;
		}
	} else {
		bin_add(c);
	}
	idle = heap_decay();
	kmm_unlock(&heap_lock);
	if (empty)
		span_free(empty);
	if (idle)
		span_free(idle);
	return tag;
}

/*
 * realloc's growth: the chunk takes in the free chunk after it when the two
 * hold size, and gives back what it does not need. A buffer grown in steps
 * copies nothing while the span has room behind it.
 */
KMM_HOT_TEXT bool heap_grow_in_place(const void *p, size_t size)
{
	size_t need = chunk_need(size);
	struct heap_chunk *c, *n;
	bool ok = false;

	kmm_lock(&heap_lock);
	c = chunk_of(p, "realloc");
	n = next_chunk(c);
	if (n && n->state == CHUNK_FREE && c->size + n->size >= need) {
		uint32_t epoch = n->freed_epoch;

		bin_del(n);
		heap_used_bytes -= c->size;
		merge_into(c, n);
		split_rest(c, need, epoch);
		note_written(c, c->size);
		heap_used_bytes += c->size;
		ok = true;
	}
	kmm_unlock(&heap_lock);
	return ok;
}

/*
 * realloc's shrink: a chunk that would keep a free chunk's worth or more
 * beyond size gives that tail back, merged with a free chunk after it, as
 * glibc's realloc does.
 */
KMM_HOT_TEXT void heap_shrink_in_place(const void *p, size_t size)
{
	size_t need = chunk_need(size);
	struct heap_chunk *c, *r, *n;

	kmm_lock(&heap_lock);
	c = chunk_of(p, "realloc");
	if (c->size >= need + HEAP_MIN_CHUNK) {
		heap_used_bytes -= c->size - need;
		split_rest(c, need, heap_clock.epoch);
		r = next_chunk(c);
		n = next_chunk(r);
		if (n && n->state == CHUNK_FREE) {
			bin_del(r);
			bin_del(n);
			merge_into(r, n);
			r->freed_epoch = heap_clock.epoch;
			bin_add(r);
		}
	}
	kmm_unlock(&heap_lock);
}

KMM_HOT_TEXT size_t heap_usable_size(const void *p, const char *who)
{
	size_t size;

	kmm_lock(&heap_lock);
	size = chunk_of(p, who)->size - HEAP_HEADER;
	kmm_unlock(&heap_lock);
	return size;
}

/* malloc_trim(): the spare span and the free chunks' inner pages go back. */
unsigned long heap_trim(void)
{
	struct page *spare;
	unsigned long pages;

	pthread_once(&heap_once, heap_setup);
	kmm_lock(&heap_lock);
	spare = heap_spare;
	heap_spare = NULL;
	pages = release_free_interiors(HEAP_CLEAN);
	kmm_unlock(&heap_lock);
	if (spare) {
		span_free(spare);
		pages += 1UL << HEAP_SPAN_ORDER;
	}
	return pages;
}

void heap_show(int fd)
{
	struct heap_stats st;

	heap_stats(&st);
	kmm_dprint(fd, "kmalloc heap: spans %lu, in use %lu KiB, free %lu KiB\n", st.spans,
		   st.used_bytes >> 10, st.free_bytes >> 10);
}

void heap_stats(struct heap_stats *st)
{
	kmm_lock(&heap_lock);
	st->spans = heap_spans + (heap_spare != NULL);
	st->used_bytes = heap_used_bytes;
	st->free_bytes = st->spans * span_bytes() - heap_used_bytes;
	kmm_unlock(&heap_lock);
}

