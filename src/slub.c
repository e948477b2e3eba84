/*
 * slub.c - slab caches: the SLUB allocator with per-CPU sheaves.
 *
 * Layers, top down:
 *   slot[cpu][cache]  a pointer to the sheaf (array of object pointers) a
 *                     CPU uses for a cache; the fast paths in slab.h pop and
 *                     push on it with no lock and no atomic read-modify-write.
 *   spare[cpu][cache] a second sheaf the slow paths swap in before they go
 *                     to the barn (the kernel's pcs->spare, Bonwick's
 *                     previous magazine): a CPU whose allocations and frees
 *                     of a cache wander around a sheaf boundary trades
 *                     nothing shared. Only caches whose sheaf holds at most
 *                     SPARE_MAX_BYTES have one: it doubles what a CPU caches.
 *   barn              per node: sheaves with objects and empty sheaves,
 *                     traded whole when a CPU's sheaf runs empty or full;
 *                     two full ones at most while the process has one
 *                     thread (barn_max_full()).
 *   node lists        slabs with free objects (partial) and without (full);
 *                     empty slabs beyond min_partial go back to the pages.
 *
 * A slot only ever changes by a whole-pointer replace that is committed on
 * the slot's own CPU (rseq_slot_replace), so whoever replaces a sheaf owns
 * it from then on and may work on it with no lock. To drain another CPU's
 * slot, the thread pins itself to that CPU first. Without rseq (valgrind,
 * qemu-user, KMM_RSEQ=0, not x86-64) slots are per thread: only the owner
 * touches them, except kmem_cache_destroy(), whose caller guarantees the
 * cache is idle.
 *
 * Locking:
 *   slab_mutex          the cache list, slot indexes, the thread list
 *   barn->lock          a cache's barn
 *   node->list_lock     a cache's slab lists and counters
 * Order: slab_mutex, then barn->lock or node->list_lock (never both), then
 * the page allocator's locks. Pages are allocated and freed outside
 * list_lock.
 *
 * Debug caches (SLAB_POISON, SLAB_RED_ZONE) and the boot caches have no
 * sheaves: every operation takes list_lock, so every check runs every time.
 */
#include "slab.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "options.h"
#include "os.h"
#include "page_alloc.h"
#include "topology.h"

#define MIN_PARTIAL 5
#define MAX_SLAB_ORDER 3
#define BARN_MAX_FULL 10
#define BARN_MAX_FULL_SINGLE 2
#define BARN_MAX_EMPTY 10
#define POISON_FREE 0x6b
#define POISON_END 0xa5
#define RED_INACTIVE 0xbb
#define RED_ACTIVE 0xcc

_Atomic int slab_mode KMM_HOT_DATA;
#ifdef KMM_HAVE_RSEQ_OPS
ptrdiff_t kmm_rseq_offset;
#endif
/* Read by every malloc before start-up: in .data, not a .bss page of its own. */
struct slab_sheaf slab_dummy_sheaf KMM_HOT_DATA;
/*
 * A thread's slots until it has its own. Before start-up only index 0 (the
 * unready cache) is ever looked up; slab_setup() fills the rest, in
 * per-thread mode, before the mode is published. Filling it at run time
 * spares every process a thousand relocations at load time.
 */
static struct slab_sheaf *dummy_slots[SLAB_MAX_CACHES] = { [0] = &slab_dummy_sheaf };
struct kmem_cache slab_unready_cache = { .index = SLAB_NO_SHEAVES };
__thread struct slab_sheaf **slab_thread_slots
	__attribute__((tls_model("initial-exec"))) = dummy_slots;

/*
 * The per-CPU slot area: for each of nr_slot_cpus CPUs a row of
 * SLAB_MAX_CACHES slots and right after it the row of their spares, as a
 * thread's slots are followed by its spares. A process on one CPU touches
 * one page of it, not two (a spare row after all the slot rows).
 */
#ifdef KMM_HAVE_RSEQ_OPS
_Static_assert(2 * SLAB_MAX_CACHES * sizeof(void *) == 1u << SLOT_STRIDE_SHIFT,
	       "the rseq sequences step between CPU rows by 1 << SLOT_STRIDE_SHIFT");
#endif
struct slab_sheaf **slab_percpu_slots;
static unsigned int nr_slot_cpus;

static struct kmm_lock slab_mutex = KMM_LOCK_INIT;
static struct list_head slab_caches = { &slab_caches, &slab_caches };
static struct kmem_cache *index_cache[SLAB_MAX_CACHES];	/* slab_mutex */

/* Per-thread mode: every thread's slots, for destroy and thread exit. */
struct slab_thread {
	struct slab_sheaf *slots[SLAB_MAX_CACHES];
	struct slab_sheaf *spares[SLAB_MAX_CACHES];
	struct list_head list;
};
static struct list_head slab_threads = { &slab_threads, &slab_threads };
static pthread_key_t slab_thread_key;

/* The boot caches: struct kmem_cache itself, and sheaves. */
static struct kmem_cache kmem_cache_boot;
static struct kmem_cache sheaf_cache_boot;

static atomic_bool slab_ready KMM_HOT_DATA;	/* read before start-up too */
static struct kmm_lock slab_init_lock = KMM_LOCK_INIT;

/* ---------------------------------------------------------------------------
 * Object layout
 */

static unsigned int align_up(unsigned int n, unsigned int a)
{
	return (n + a - 1) & ~(a - 1);
}

static unsigned char *slab_base(const struct page *head)
{
	return page_to_virt(head);
}

/*
 * The start of the slab that holds obj: a buddy block is aligned to its
 * size, so a mask, with no lookup of the head page's address.
 */
static unsigned char *obj_slab_base(const struct kmem_cache *s, const void *obj)
{
	return (unsigned char *)((uintptr_t)obj & ~((os_page_size << s->order) - 1));
}

static struct page *obj_slab(const void *obj)
{
	struct page *page = addr_to_page(obj);

	return page ? (struct page *)page->private : NULL;
}

/* The free pointer lives at offset from the start of the object's stride. */
static void **freeptr_addr(const struct kmem_cache *s, void *obj)
{
	return (void **)((char *)obj - s->red_left_pad + s->offset);
}

static void *get_freepointer(const struct kmem_cache *s, void *obj)
{
	return *freeptr_addr(s, obj);
}

static void set_freepointer(const struct kmem_cache *s, void *obj, void *next)
{
	*freeptr_addr(s, obj) = next;
}

/*
 * [left red zone][object][right red zone][free pointer][padding]
 * The red zones exist with SLAB_RED_ZONE; the free pointer moves out of the
 * object when the object must keep its contents while free (a constructor,
 * poisoning, red zones).
 */
KMM_HOT_TEXT static void calculate_sizes(struct kmem_cache *s)
{
	unsigned int word = sizeof(void *);
	unsigned int end;

	s->red_left_pad = (s->flags & SLAB_RED_ZONE) ? align_up(word, s->align) : 0;
	end = s->red_left_pad + (s->object_size < word ? word : s->object_size);
	if (s->flags & SLAB_RED_ZONE)
		end = align_up(s->red_left_pad + s->object_size, word) + word;
	if (s->ctor || (s->flags & (SLAB_POISON | SLAB_RED_ZONE))) {
		s->offset = end;
		end += word;
	} else {
		s->offset = 0;
	}
	s->size = align_up(end, s->align);
}

/* struct page counts a slab's objects in 16 bits. */
#define MAX_OBJS_PER_SLAB 65535

static void set_slab_order(struct kmem_cache *s, unsigned int order)
{
	size_t n = (os_page_size << order) / s->size;

	s->order = order;
	s->objects = (unsigned int)(n < MAX_OBJS_PER_SLAB ? n : MAX_OBJS_PER_SLAB);
}

/*
 * The smallest order whose leftover is at most 1/16 of the slab (then 1/8,
 * 1/4), as the kernel's calculate_order() does, holding at least four
 * objects when the object is small enough.
 */
KMM_HOT_TEXT static bool calculate_order(struct kmem_cache *s)
{
	static const unsigned int fractions[] = { 16, 8, 4, 1 };
	unsigned int max_order = MAX_SLAB_ORDER;

	while (max_order < MAX_PAGE_ORDER && (os_page_size << max_order) < s->size)
		max_order++;
	if ((os_page_size << max_order) < s->size)
		return false;
	for (unsigned int f = 0; f < ARRAY_SIZE(fractions); f++) {
		for (unsigned int order = 0; order <= max_order; order++) {
			size_t bytes = os_page_size << order;
			size_t n = bytes / s->size;
			size_t min = s->size <= bytes / 4 ? 4 : 1;

			if (n < min || (bytes % s->size) * fractions[f] > bytes)
				continue;
			set_slab_order(s, order);
			return true;
		}
	}
	set_slab_order(s, max_order);
	return true;
}

/*
 * Objects per sheaf: fewer for bigger objects, so that a sheaf holds at
 * most SHEAF_MAX_BYTES, and a barn BARN_MAX_FULL times that. Free objects
 * parked in sheaves are memory the program does not use: at 8 objects a
 * sheaf, sqlite's peak RSS was 12.8 MiB against glibc's 8.1, much of it
 * 10 to 16 KiB blocks cached per CPU and in the barns.
 */
#define SHEAF_MAX_BYTES (32 * 1024)
#define SPARE_MAX_BYTES (16 * 1024)

static unsigned int sheaf_capacity_for(unsigned int size)
{
	unsigned int cap = size <= 128 ? 64 : size <= 512 ? 32 : 16;
	unsigned int fit = SHEAF_MAX_BYTES / size;

	if (fit < cap)
		cap = fit < 2 ? 2 : fit;
	return cap;
}

/* ---------------------------------------------------------------------------
 * Debugging: poison and red zones
 */

_Noreturn void slab_bad_free(const void *obj, const char *why)
{
	kmm_bug("BUG: bad free of %p: %s", obj, why);
}

static _Noreturn void slab_double_free(void *obj)
{
	kmm_bug("BUG: free(%p): double free (the block is already free)", obj);
}

static _Noreturn void object_err(const struct kmem_cache *s, const void *obj,
				 const char *what, const void *at)
{
	kmm_bug("BUG %s: %s at %p (object %p, size %u)", s->name, what, at, obj,
		s->object_size);
}

static const unsigned char *find_not(const unsigned char *p, unsigned char c, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (p[i] != c)
			return p + i;
	}
	return NULL;
}

static void set_redzones(const struct kmem_cache *s, void *obj, unsigned char val)
{
	unsigned char *start = (unsigned char *)obj - s->red_left_pad;

	memset(start, val, s->red_left_pad);
	memset((unsigned char *)obj + s->object_size, val,
	       s->offset - s->red_left_pad - s->object_size);
}

static void poison_object(const struct kmem_cache *s, void *obj)
{
	memset(obj, POISON_FREE, s->object_size - 1);
	((unsigned char *)obj)[s->object_size - 1] = POISON_END;
}

/* A fresh or freed object in a debug cache. */
static void init_free_object(const struct kmem_cache *s, void *obj)
{
	if (s->flags & SLAB_RED_ZONE)
		set_redzones(s, obj, RED_INACTIVE);
	if ((s->flags & SLAB_POISON) && !s->ctor)
		poison_object(s, obj);
}

static void check_on_alloc(const struct kmem_cache *s, void *obj)
{
	const unsigned char *bad;

	if ((s->flags & SLAB_POISON) && !s->ctor) {
		bad = find_not(obj, POISON_FREE, s->object_size - 1);
		if (!bad && ((unsigned char *)obj)[s->object_size - 1] != POISON_END)
			bad = (unsigned char *)obj + s->object_size - 1;
		if (bad)
			object_err(s, obj, "Poison overwritten (written after free)", bad);
	}
	if (s->flags & SLAB_RED_ZONE)
		set_redzones(s, obj, RED_ACTIVE);
}

static void check_on_free(const struct kmem_cache *s, void *obj)
{
	const unsigned char *left = (unsigned char *)obj - s->red_left_pad;
	const unsigned char *right = (unsigned char *)obj + s->object_size;
	size_t right_len = s->offset - s->red_left_pad - s->object_size;
	const unsigned char *bad;

	if (!(s->flags & SLAB_RED_ZONE))
		return;
	if (!find_not(left, RED_INACTIVE, s->red_left_pad) &&
	    !find_not(right, RED_INACTIVE, right_len))
		object_err(s, obj, "double free", obj);
	bad = find_not(left, RED_ACTIVE, s->red_left_pad);
	if (bad)
		object_err(s, obj, "Left Redzone overwritten", bad);
	bad = find_not(right, RED_ACTIVE, right_len);
	if (bad)
		object_err(s, obj, "Right Redzone overwritten", bad);
}

/* ---------------------------------------------------------------------------
 * Slabs
 */

KMM_HOT_TEXT static void node_lock(struct kmem_cache_node *n, gfp_t gfp)
{
	if (gfp & __GFP_DIRECT_RECLAIM)
		kmm_lock(&n->list_lock);
	else
		kmm_lock_spin(&n->list_lock);
}

/* A new slab, all objects free and constructed; list_lock not held. */
static struct page *new_slab(struct kmem_cache *s, gfp_t gfp)
{
	struct page *head = kmm_alloc_pages(gfp & ~__GFP_ZERO, s->order);
	unsigned char *base;
	void *prev = NULL;

	if (!head)
		return NULL;
	base = slab_base(head);
	for (unsigned long i = 0; i < (1UL << s->order); i++) {
		set_page_slab_cache(&head[i], s, s->index);
		head[i].private = (unsigned long)head;
	}
	head->inuse = 0;
	head->objects = (unsigned short)s->objects;
	head->freelist = NULL;
	head->fresh = 0;
	/* Plain caches are carved lazily (take_objects); the rest are prepared now. */
	if (!s->ctor && !(s->flags & SLAB_DEBUG_FLAGS))
		return head;
	/* Free list in address order: the first object is handed out first. */
	for (unsigned int i = s->objects; i-- > 0;) {
		void *obj = base + (size_t)i * s->size + s->red_left_pad;

		if (s->ctor)
			s->ctor(obj);
		if (s->flags & SLAB_DEBUG_FLAGS)
			init_free_object(s, obj);
		set_freepointer(s, obj, prev);
		prev = obj;
	}
	head->freelist = prev;
	head->fresh = head->objects;
	return head;
}

/* No object left: nothing on the freelist and nothing left to carve. */
static bool slab_full(const struct page *slab)
{
	return !slab->freelist && slab->fresh == slab->objects;
}

static void discard_slab(struct kmem_cache *s, struct page *head)
{
	for (unsigned long i = 0; i < (1UL << s->order); i++) {
		set_page_slab_cache(&head[i], NULL, SLAB_NO_SHEAVES);
		head[i].private = 0;
	}
	head->freelist = NULL;
	kmm___free_pages(head, s->order);
}

static void add_partial(struct kmem_cache_node *n, struct page *slab)
{
	list_add(&slab->lru, &n->partial);
	n->nr_partial++;
}

static void remove_partial(struct kmem_cache_node *n, struct page *slab)
{
	list_del(&slab->lru);
	n->nr_partial--;
}

/*
 * list_lock held; the partial list is not empty. Takes up to want objects
 * from the first partial slab into objs, its freelist first, then carved
 * from its untouched tail in one go (a sheaf fill takes dozens). Returns
 * how many.
 */
KMM_HOT_TEXT static unsigned int take_objects(struct kmem_cache *s, struct kmem_cache_node *n,
				 void **objs, unsigned int want)
{
	struct page *slab = list_first_entry(&n->partial, struct page, lru);
	unsigned int got = 0;
	void *obj = slab->freelist;

	for (; obj && got < want; got++) {
		objs[got] = obj;
		obj = get_freepointer(s, obj);
	}
	slab->freelist = obj;
	if (!obj && got < want) {
		unsigned int carve = want - got, left = slab->objects - slab->fresh;
		unsigned char *p = slab_base(slab) + (size_t)slab->fresh * s->size + s->red_left_pad;

		if (carve > left)
			carve = left;
		slab->fresh += carve;
		for (; carve; carve--, p += s->size)
			objs[got++] = p;
	}
	slab->inuse += got;
	n->inuse_objects += got;
	if (slab_full(slab)) {
		remove_partial(n, slab);
		list_add(&slab->lru, &n->full);
	}
	return got;
}

/*
 * list_lock held. Puts obj back in its slab; an empty slab beyond
 * MIN_PARTIAL (or any empty slab with shrink) moves to *discard.
 */
KMM_HOT_TEXT static void put_object(struct kmem_cache *s, struct kmem_cache_node *n, void *obj,
		       struct list_head *discard, bool shrink)
{
	struct page *slab = obj_slab(obj);
	size_t off = (size_t)((unsigned char *)obj - obj_slab_base(s, obj)) - s->red_left_pad;

	if (off % s->size || off / s->size >= s->objects)
		slab_bad_free(obj, "not the start of an object");
	if (off / s->size >= slab->fresh)
		slab_bad_free(obj, "never allocated");
	if (slab_full(slab)) {
		list_del(&slab->lru);
		add_partial(n, slab);
	}
	set_freepointer(s, obj, slab->freelist);
	slab->freelist = obj;
	slab->inuse--;
	n->inuse_objects--;
	if (slab->inuse == 0 && (shrink || n->nr_partial > MIN_PARTIAL)) {
		remove_partial(n, slab);
		n->nr_slabs--;
		n->total_objects -= slab->objects;
		list_add(&slab->lru, discard);
	}
}

KMM_HOT_TEXT static void discard_all(struct kmem_cache *s, struct list_head *discard)
{
	while (!list_empty(discard)) {
		struct page *slab = list_first_entry(discard, struct page, lru);

		list_del(&slab->lru);
		discard_slab(s, slab);
	}
}

/* Makes sure the node has a partial slab; takes and returns with list_lock held. */
KMM_HOT_TEXT static bool node_ensure_partial(struct kmem_cache *s, struct kmem_cache_node *n, gfp_t gfp)
{
	struct page *slab;

	if (!list_empty(&n->partial))
		return true;
	kmm_unlock(&n->list_lock);
	slab = new_slab(s, gfp);
	node_lock(n, gfp);
	if (!slab)
		return !list_empty(&n->partial);
	add_partial(n, slab);
	n->nr_slabs++;
	n->total_objects += slab->objects;
	return true;
}

/* One object straight from the slabs (no sheaves), with the debug checks. */
KMM_HOT_TEXT static void *node_alloc(struct kmem_cache *s, gfp_t gfp)
{
	struct kmem_cache_node *n = &s->node;
	void *obj = NULL;

	node_lock(n, gfp);
	if (node_ensure_partial(s, n, gfp)) {
		take_objects(s, n, &obj, 1);
		if (s->flags & SLAB_DEBUG_FLAGS)
			check_on_alloc(s, obj);
	}
	kmm_unlock(&n->list_lock);
	return obj;
}

KMM_HOT_TEXT static void node_free(struct kmem_cache *s, void *obj)
{
	struct kmem_cache_node *n = &s->node;
	struct list_head discard;

	INIT_LIST_HEAD(&discard);
	kmm_lock(&n->list_lock);
	if (s->flags & SLAB_DEBUG_FLAGS) {
		check_on_free(s, obj);
		init_free_object(s, obj);
	}
	put_object(s, n, obj, &discard, false);
	kmm_unlock(&n->list_lock);
	discard_all(s, &discard);
}

/* Fills sheaf from the slabs under one hold of list_lock; false if it stays empty. */
static bool node_fill_sheaf(struct kmem_cache *s, struct slab_sheaf *sheaf, gfp_t gfp)
{
	struct kmem_cache_node *n = &s->node;

	node_lock(n, gfp);
	while (sheaf->size < sheaf->capacity && node_ensure_partial(s, n, gfp)) {
		void **objs = &sheaf->objects[sheaf->size];
		unsigned int got = take_objects(s, n, objs, sheaf->capacity - sheaf->size);

		/* Every object entering a sheaf is released, as the push path does. */
		for (unsigned int i = 0; i < got; i++)
			tsan_release(objs[i]);
		sheaf->size += got;
	}
	kmm_unlock(&n->list_lock);
	return sheaf->size > 0;
}

KMM_HOT_TEXT static void node_flush_sheaf(struct kmem_cache *s, struct slab_sheaf *sheaf, bool shrink)
{
	struct kmem_cache_node *n = &s->node;
	struct list_head discard;

	INIT_LIST_HEAD(&discard);
	kmm_lock(&n->list_lock);
	while (sheaf->size) {
		void *obj = sheaf->objects[--sheaf->size];

		tsan_acquire(obj);
		put_object(s, n, obj, &discard, shrink);
	}
	kmm_unlock(&n->list_lock);
	discard_all(s, &discard);
}

/* Frees every empty slab of the node. */
static void node_shrink(struct kmem_cache *s)
{
	struct kmem_cache_node *n = &s->node;
	struct list_head discard;

	INIT_LIST_HEAD(&discard);
	kmm_lock(&n->list_lock);
	for (struct list_head *e = n->partial.next, *next; e != &n->partial; e = next) {
		struct page *slab = list_entry(e, struct page, lru);

		next = e->next;
		if (slab->inuse)
			continue;
		remove_partial(n, slab);
		n->nr_slabs--;
		n->total_objects -= slab->objects;
		list_add(&slab->lru, &discard);
	}
	kmm_unlock(&n->list_lock);
	discard_all(s, &discard);
}

/* ---------------------------------------------------------------------------
 * Sheaves and the barn
 */

static struct slab_sheaf *sheaf_alloc(struct kmem_cache *s, gfp_t gfp)
{
	struct slab_sheaf *sheaf = node_alloc(&sheaf_cache_boot, gfp);

	if (sheaf) {
		sheaf->size = 0;
		sheaf->capacity = s->sheaf_capacity;
		sheaf->next = NULL;
	}
	return sheaf;
}

static void sheaf_free(struct slab_sheaf *sheaf)
{
	node_free(&sheaf_cache_boot, sheaf);
}

static struct slab_sheaf *barn_pop(struct slab_sheaf **list, unsigned int *count)
{
	struct slab_sheaf *sheaf = *list;

	if (sheaf) {
		*list = sheaf->next;
		(*count)--;
	}
	return sheaf;
}

/* A request that may not sleep spins for the barn's lock. */
KMM_HOT_TEXT static void barn_lock(struct node_barn *barn, gfp_t gfp)
{
	if (gfp & __GFP_DIRECT_RECLAIM)
		kmm_lock(&barn->lock);
	else
		kmm_lock_spin(&barn->lock);
}

static struct slab_sheaf *barn_get_full(struct kmem_cache *s, gfp_t gfp)
{
	struct node_barn *barn = &s->barn;
	struct slab_sheaf *sheaf;

	barn_lock(barn, gfp);
	sheaf = barn_pop(&barn->full, &barn->nr_full);
	if (sheaf) {
		barn->full_objects -= sheaf->size;
		barn->full_used_ms = kmm_now_ms();
	}
	kmm_unlock(&barn->lock);
	return sheaf;
}

static struct slab_sheaf *barn_get_empty(struct kmem_cache *s, gfp_t gfp)
{
	struct slab_sheaf *sheaf;

	barn_lock(&s->barn, gfp);
	sheaf = barn_pop(&s->barn.empty, &s->barn.nr_empty);
	kmm_unlock(&s->barn.lock);
	return sheaf;
}

/* Sheaves taken off a barn: the full ones' objects back to the slabs, then all freed. */
static void barn_free_sheaves(struct kmem_cache *s, struct slab_sheaf *full,
			      struct slab_sheaf *empty, bool shrink)
{
	for (struct slab_sheaf *next; full; full = next) {
		next = full->next;
		node_flush_sheaf(s, full, shrink);
		sheaf_free(full);
	}
	for (struct slab_sheaf *next; empty; empty = next) {
		next = empty->next;
		sheaf_free(empty);
	}
}

/* barn->lock held: takes the barn's full sheaves off it. */
static struct slab_sheaf *barn_take_full(struct node_barn *barn)
{
	struct slab_sheaf *full = barn->full;

	barn->full = NULL;
	barn->nr_full = 0;
	barn->full_objects = 0;
	return full;
}

/*
 * The barns' decay. Full sheaves parked in a barn are free objects the
 * program does not use, kept for the next burst; a cache whose burst is
 * over would keep them for good (up to BARN_MAX_FULL sheaves, 320 KiB for
 * 2 KiB objects), since only malloc_trim() and shrink emptied barns. So a
 * barn whose full sheaves nobody has taken for the page allocator's decay
 * time (KMM_OPTIONS=decay_ms, 1 s by default; never with -1) gives them
 * back to its slabs, whose empty slabs beyond MIN_PARTIAL go back to the
 * pages, and from there to the OS by the zone's own decay. A cache in use
 * takes a full sheaf every few dozen objects and is never drained: capping
 * barns instead, by size or by puts without a take, made producer_consumer
 * three times slower. The check runs when a free trades its full sheaf, at
 * most once per decay time (and at most every SLAB_DECAY_MIN_MS), with a
 * trylock of slab_mutex, and then lets the zone check its own decay, which
 * otherwise runs only when pages are freed: a program that freed a burst of 80 MiB of 0.5-4 KiB
 * blocks and then only reused cached small ones kept all of it resident for
 * good (glibc went back to 1.6 MiB at once, kmm now goes to 5.8 MiB after
 * the decay time; test_burst_given_back in test_slab).
 */
#define SLAB_DECAY_MIN_MS 10
static atomic_ulong last_barn_decay_ms;

static void barn_drain_idle(struct kmem_cache *s, unsigned long now, unsigned long decay)
{
	struct node_barn *barn = &s->barn;
	struct slab_sheaf *full = NULL;

	kmm_lock(&barn->lock);
	if (barn->nr_full && now - barn->full_used_ms >= decay)
		full = barn_take_full(barn);
	kmm_unlock(&barn->lock);
	barn_free_sheaves(s, full, NULL, false);
}

static void barn_decay(unsigned long now)
{
	unsigned long last = atomic_load_explicit(&last_barn_decay_ms, memory_order_relaxed);
	long decay = page_decay_ms();
	unsigned long every = decay > SLAB_DECAY_MIN_MS ? (unsigned long)decay : SLAB_DECAY_MIN_MS;

	if (decay < 0 || now - last < every ||
	    !atomic_compare_exchange_strong(&last_barn_decay_ms, &last, now))
		return;
	/* Not under any barn or list lock; a caller holding slab_mutex skips it. */
	if (kmm_trylock(&slab_mutex)) {
		for (struct list_head *e = slab_caches.next; e != &slab_caches; e = e->next) {
			struct kmem_cache *s = list_entry(e, struct kmem_cache, list);

			if (s->index != SLAB_NO_SHEAVES)
				barn_drain_idle(s, now, (unsigned long)decay);
		}
		kmm_unlock(&slab_mutex);
	}
	page_decay_check();
}

/*
 * The full sheaves a barn keeps. A barn trades objects between CPUs; in a
 * process with one thread it only deepens that thread's cache, and every
 * object parked there keeps its slab's pages. With ten, cc1 compiling the
 * gcc workload's file peaked 540 KiB higher than with two (bench/replay of
 * its trace: 8380 against 7840 KiB; glibc 7144).
 */
static unsigned int barn_max_full(void)
{
	return __libc_single_threaded ? BARN_MAX_FULL_SINGLE : BARN_MAX_FULL;
}

/* Parks a sheaf this thread owns; beyond the barn's limits it goes to the slabs. */
KMM_HOT_TEXT static void barn_put(struct kmem_cache *s, struct slab_sheaf *sheaf)
{
	struct node_barn *barn = &s->barn;

	kmm_lock(&barn->lock);
	if (sheaf->size && barn->nr_full < barn_max_full()) {
		if (!barn->nr_full)
			barn->full_used_ms = kmm_now_ms();
		sheaf->next = barn->full;
		barn->full = sheaf;
		barn->nr_full++;
		barn->full_objects += sheaf->size;
		sheaf = NULL;
	} else if (!sheaf->size && barn->nr_empty < BARN_MAX_EMPTY) {
		sheaf->next = barn->empty;
		barn->empty = sheaf;
		barn->nr_empty++;
		sheaf = NULL;
	}
	kmm_unlock(&barn->lock);
	if (!sheaf)
		return;
	node_flush_sheaf(s, sheaf, false);
	sheaf_free(sheaf);
}

/* Empties the barn into the slabs. */
static void barn_shrink(struct kmem_cache *s)
{
	struct node_barn *barn = &s->barn;
	struct slab_sheaf *full, *empty;

	kmm_lock(&barn->lock);
	full = barn_take_full(barn);
	empty = barn->empty;
	barn->empty = NULL;
	barn->nr_empty = 0;
	kmm_unlock(&barn->lock);
	barn_free_sheaves(s, full, empty, true);
}

/* ---------------------------------------------------------------------------
 * Slots: this CPU's or this thread's pointer to its sheaf
 */

static struct slab_sheaf **percpu_slot(unsigned int cpu, unsigned int index)
{
	return &slab_percpu_slots[(size_t)cpu * 2 * SLAB_MAX_CACHES + index];
}

/*
 * An empty per-CPU slot holds NULL, which the rseq fast paths test for, and
 * not the dummy: the slot rows then need no writing at start-up, where
 * filling a row and a spare row for every possible CPU touched 4 KiB per
 * CPU in every process, 1 MiB and 256 page faults on a machine with 256
 * possible CPUs. A thread's slots (per-thread mode) hold the dummy, as its
 * fast path dereferences them untested. load_slot() reads NULL as the
 * dummy, so the slow paths see one empty value in both modes.
 */
static struct slab_sheaf *load_slot(struct slab_sheaf **slot)
{
	struct slab_sheaf *sheaf = __atomic_load_n(slot, __ATOMIC_RELAXED);

	return sheaf ? sheaf : &slab_dummy_sheaf;
}

#ifdef KMM_HAVE_RSEQ_OPS
/* What a per-CPU slot holds for sheaf. */
static void *percpu_slot_value(struct slab_sheaf *sheaf)
{
	return sheaf == &slab_dummy_sheaf ? NULL : sheaf;
}
#endif

/* The spare slot that goes with a CPU's or a thread's slot: the next row. */
static struct slab_sheaf **spare_slot(struct slab_sheaf **slot)
{
	return slot + SLAB_MAX_CACHES;
}

/* Per-thread mode: this thread's slot array, created on first use. */
static struct slab_sheaf **thread_slots(void)
{
	struct slab_thread *t;

	if (slab_thread_slots != dummy_slots)
		return slab_thread_slots;
	t = kmm_alloc_pages_exact(sizeof(*t), GFP_KERNEL);
	if (!t)
		return NULL;
	for (unsigned int i = 0; i < SLAB_MAX_CACHES; i++) {
		t->slots[i] = &slab_dummy_sheaf;
		t->spares[i] = &slab_dummy_sheaf;
	}
	kmm_lock(&slab_mutex);
	list_add(&t->list, &slab_threads);
	kmm_unlock(&slab_mutex);
	pthread_setspecific(slab_thread_key, t);
	slab_thread_slots = t->slots;
	return t->slots;
}

/* This context's slot for s, and in rseq mode the CPU it belongs to. */
KMM_HOT_TEXT static struct slab_sheaf **current_slot(struct kmem_cache *s, unsigned int *cpu)
{
	struct slab_sheaf **slots;

#ifdef KMM_HAVE_RSEQ_OPS
	if (atomic_load_explicit(&slab_mode, memory_order_relaxed) == SLAB_MODE_RSEQ) {
		*cpu = rseq_cpu_start();
		return percpu_slot(*cpu, s->index);
	}
#endif
	*cpu = 0;
	slots = thread_slots();
	return slots ? &slots[s->index] : NULL;
}

/* Replaces *slot if it still holds expect (and, with rseq, we are still on cpu). */
KMM_HOT_TEXT static bool replace_slot(struct slab_sheaf **slot, unsigned int cpu, struct slab_sheaf *expect,
			 struct slab_sheaf *newv)
{
#ifdef KMM_HAVE_RSEQ_OPS
	if (atomic_load_explicit(&slab_mode, memory_order_relaxed) == SLAB_MODE_RSEQ) {
		tsan_release(slot);
		if (!rseq_slot_replace((void **)slot, cpu, percpu_slot_value(expect),
				       percpu_slot_value(newv)))
			return false;
		tsan_acquire(slot);
		return true;
	}
#endif
	(void)cpu;
	if (*slot != expect)
		return false;
	*slot = newv;
	return true;
}

/* Gives back the sheaf a replaced slot held: to the spare slot if free, else the barn. */
static void release_sheaf(struct kmem_cache *s, struct slab_sheaf **slot, unsigned int cpu,
			  struct slab_sheaf *old)
{
	if (old == &slab_dummy_sheaf)
		return;
	if (s->spare && replace_slot(spare_slot(slot), cpu, &slab_dummy_sheaf, old))
		return;
	barn_put(s, old);
}

/*
 * Swaps the spare in for the sheaf in *slot (cur) when the spare is usable:
 * with objects for an allocation, with room for a free. Three replaces, each
 * committed on cpu; a migration between them leaves the spare slot empty or
 * sends a sheaf to the barn, never two owners. True if *slot changed.
 */
KMM_HOT_TEXT static bool swap_spare(struct kmem_cache *s, struct slab_sheaf **slot, unsigned int cpu,
		       struct slab_sheaf *cur, bool for_alloc)
{
	struct slab_sheaf **spare = spare_slot(slot);
	struct slab_sheaf *sp;

	if (!s->spare)
		return false;
	sp = load_slot(spare);
	tsan_acquire(spare);
	if (sp == &slab_dummy_sheaf || (for_alloc ? !sp->size : sp->size == sp->capacity))
		return false;
	if (!replace_slot(spare, cpu, sp, &slab_dummy_sheaf))
		return false;
	if (!replace_slot(slot, cpu, cur, sp)) {
		release_sheaf(s, slot, cpu, sp);
		return false;
	}
	release_sheaf(s, slot, cpu, cur);
	return true;
}

/* ---------------------------------------------------------------------------
 * Slow paths
 */

/*
 * A process with one thread uses the slots of whichever CPU it is on, so
 * each migration left the sheaves of the CPU before behind, their free
 * objects out of reach: cc1 compiling a small file ended with 96 sheaves
 * and 656 KiB of slabs when the scheduler had moved it, against 65 and 516
 * when pinned. With no other thread nothing else can use those slots (a
 * signal handler of this thread runs between two instructions, never in
 * an exchange), so when a cache's slow path runs on another CPU than the
 * one the cache last used, it takes that CPU's slot and spare sheaves and
 * parks them in the barn, where the next sheaf is taken from. Only the
 * last CPU is looked at, one compare in a slow path; a process that moved
 * from CPU to CPU gathers each cache's sheaves from wherever it last ran.
 */
KMM_HOT_TEXT static void gather_stranded(struct kmem_cache *s, unsigned int cpu)
{
#ifdef KMM_HAVE_RSEQ_OPS
	unsigned int last;

	if (atomic_load_explicit(&slab_mode, memory_order_relaxed) != SLAB_MODE_RSEQ ||
	    !__libc_single_threaded)
		return;
	last = atomic_exchange_explicit(&s->last_cpu, cpu + 1, memory_order_relaxed);
	if (last == 0 || last == cpu + 1)
		return;
	for (int i = 0; i < 2; i++) {
		struct slab_sheaf **slot = percpu_slot(last - 1, s->index);
		struct slab_sheaf *sheaf;

		if (i)
			slot = spare_slot(slot);
		sheaf = __atomic_exchange_n(slot, NULL, __ATOMIC_ACQ_REL);
		if (sheaf)
			barn_put(s, sheaf);
	}
#else
	(void)s;
	(void)cpu;
#endif
}

KMM_HOT_TEXT void *slab_alloc_slow(struct kmem_cache *s, gfp_t gfp)
{
	if (unlikely(!slab_init()))
		return NULL;
	if (s->index == SLAB_NO_SHEAVES)
		return node_alloc(s, gfp);
	for (;;) {
		struct slab_sheaf **slot, *cur, *fresh;
		unsigned int cpu;
		void *obj = slab_alloc_fast(s);

		if (obj)
			return obj;
		slot = current_slot(s, &cpu);
		if (!slot)
			return node_alloc(s, gfp);
		cur = load_slot(slot);
		if (swap_spare(s, slot, cpu, cur, true))
			continue;
		gather_stranded(s, cpu);
		fresh = barn_get_full(s, gfp);
		if (!fresh) {
			/*
			 * Refill an empty sheaf parked in the barn before making
			 * one: in a run of allocations each refill parked the
			 * sheaf it replaced, and cc1 ended with 76 sheaves
			 * (40 KiB) for 16 caches, most of them empty.
			 */
			fresh = barn_get_empty(s, gfp);
			if (!fresh)
				fresh = sheaf_alloc(s, gfp);
			if (!fresh)
				return NULL;
			if (!node_fill_sheaf(s, fresh, gfp)) {
				sheaf_free(fresh);
				return NULL;
			}
		}
		if (replace_slot(slot, cpu, cur, fresh))
			release_sheaf(s, slot, cpu, cur);
		else
			barn_put(s, fresh);
	}
}

KMM_HOT_TEXT void slab_free_slow(struct kmem_cache *s, void *obj, int fast)
{
	if (fast < 0)
		slab_double_free(obj);
	if (s->index == SLAB_NO_SHEAVES) {
		node_free(s, obj);
		return;
	}
	for (;;) {
		struct slab_sheaf **slot, *cur, *fresh;
		unsigned int cpu;

		fast = slab_free_fast(s, obj);
		if (fast > 0)
			return;
		if (fast < 0)
			slab_double_free(obj);
		slot = current_slot(s, &cpu);
		if (slot && swap_spare(s, slot, cpu, load_slot(slot), false))
			continue;
		if (slot)
			gather_stranded(s, cpu);
		fresh = slot ? barn_get_empty(s, GFP_KERNEL) : NULL;
		if (slot && !fresh)
			fresh = sheaf_alloc(s, GFP_KERNEL | __GFP_NOWARN);
		if (!fresh) {
			node_free(s, obj);
			return;
		}
		cur = load_slot(slot);
		if (replace_slot(slot, cpu, cur, fresh))
			release_sheaf(s, slot, cpu, cur);
		else
			barn_put(s, fresh);
		/* A free may release memory; an allocation (GFP_ATOMIC, say) does not. */
		barn_decay(kmm_now_ms());
	}
}

/* Takes the sheaf out of a slot that nobody else can use now, and flushes it. */
static void flush_slot_owned(struct kmem_cache *s, struct slab_sheaf **slot)
{
	struct slab_sheaf *old = *slot;

	if (old == &slab_dummy_sheaf)
		return;
	*slot = &slab_dummy_sheaf;
	node_flush_sheaf(s, old, true);
	sheaf_free(old);
}

#ifdef KMM_HAVE_RSEQ_OPS
/* Runs on cpu (pinned): replaces a slot of it with the dummy and flushes the sheaf. */
static void flush_cpu_slot(struct slab_sheaf **slot, struct kmem_cache *s, unsigned int cpu)
{
	for (;;) {
		struct slab_sheaf *cur = load_slot(slot);

		if (cur == &slab_dummy_sheaf)
			return;
		if (rseq_cpu_start() != cpu)
			return;
		tsan_release(slot);
		if (rseq_slot_replace((void **)slot, cpu, cur, NULL)) {
			tsan_acquire(slot);
			node_flush_sheaf(s, cur, true);
			sheaf_free(cur);
			return;
		}
	}
}

static bool pin_to_cpu(unsigned int cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	if (sched_setaffinity(0, sizeof(set), &set) != 0)
		return false;
	for (int i = 0; i < 100 && rseq_cpu_start() != cpu; i++)
		sched_yield();
	return rseq_cpu_start() == cpu;
}

/*
 * Flushes every CPU's sheaf by visiting the CPUs in turn. A CPU this thread
 * may not run on keeps its sheaf until its own threads trade it.
 */
static void flush_all_cpu_slots(struct kmem_cache *s)
{
	cpu_set_t saved;
	bool pinned = false;

	if (sched_getaffinity(0, sizeof(saved), &saved) != 0)
		return;
	for (unsigned int cpu = 0; cpu < nr_slot_cpus; cpu++) {
		struct slab_sheaf **slot = percpu_slot(cpu, s->index);

		if (load_slot(slot) == &slab_dummy_sheaf &&
		    load_slot(spare_slot(slot)) == &slab_dummy_sheaf)
			continue;
		pinned = true;
		if (pin_to_cpu(cpu)) {
			flush_cpu_slot(slot, s, cpu);
			flush_cpu_slot(spare_slot(slot), s, cpu);
		}
	}
	if (pinned)
		sched_setaffinity(0, sizeof(saved), &saved);
}
#endif

/*
 * Every sheaf of s back to the slabs. all_threads: also other threads'
 * slots in per-thread mode, which only destroy may touch.
 */
static void flush_sheaves(struct kmem_cache *s, bool all_threads)
{
	if (s->index == SLAB_NO_SHEAVES)
		return;
#ifdef KMM_HAVE_RSEQ_OPS
	if (atomic_load_explicit(&slab_mode, memory_order_relaxed) == SLAB_MODE_RSEQ) {
		flush_all_cpu_slots(s);
		barn_shrink(s);
		return;
	}
#endif
	if (all_threads) {
		kmm_lock(&slab_mutex);
		for (struct list_head *e = slab_threads.next; e != &slab_threads; e = e->next) {
			struct slab_thread *t = list_entry(e, struct slab_thread, list);

			flush_slot_owned(s, &t->slots[s->index]);
			flush_slot_owned(s, &t->spares[s->index]);
		}
		kmm_unlock(&slab_mutex);
	} else if (slab_thread_slots != dummy_slots) {
		flush_slot_owned(s, &slab_thread_slots[s->index]);
		flush_slot_owned(s, spare_slot(&slab_thread_slots[s->index]));
	}
	barn_shrink(s);
}

/* Thread exit in per-thread mode: the thread's sheaves go to the barns. */
static void slab_thread_exit(void *arg)
{
	struct slab_thread *t = arg;

	kmm_lock(&slab_mutex);
	slab_thread_slots = dummy_slots;
	for (unsigned int i = 1; i < SLAB_MAX_CACHES; i++) {
		if (t->slots[i] != &slab_dummy_sheaf)
			barn_put(index_cache[i], t->slots[i]);
		if (t->spares[i] != &slab_dummy_sheaf)
			barn_put(index_cache[i], t->spares[i]);
	}
	list_del(&t->list);
	kmm_unlock(&slab_mutex);
	kmm_free_pages_exact(t, sizeof(*t));
}

/* ---------------------------------------------------------------------------
 * Start-up and fork
 */

static void init_cache_struct(struct kmem_cache *s, const char *name, unsigned int size,
			      unsigned int align, slab_flags_t flags, void (*ctor)(void *))
{
	memset(s, 0, sizeof(*s));
	/* Not kmm_snprint(): its formatter would be hot text for one copy. */
	memcpy(s->name, name, strnlen(name, sizeof(s->name) - 1));
	s->object_size = size;
	s->flags = flags;
	s->ctor = ctor;
	s->align = align;
	INIT_LIST_HEAD(&s->node.partial);
	INIT_LIST_HEAD(&s->node.full);
	s->index = SLAB_NO_SHEAVES;
	s->cpu_slot0 = (uintptr_t)slab_percpu_slots;
}

/* fork.c's handlers: slab_init_lock, slab_mutex, then every cache's barn and list lock. */
void slab_fork_lock(void)
{
	kmm_lock(&slab_init_lock);
	kmm_lock(&slab_mutex);
	for (struct list_head *e = slab_caches.next; e != &slab_caches; e = e->next) {
		struct kmem_cache *s = list_entry(e, struct kmem_cache, list);

		kmm_lock(&s->barn.lock);
		kmm_lock(&s->node.list_lock);
	}
}

void slab_fork_unlock(void)
{
	for (struct list_head *e = slab_caches.prev; e != &slab_caches; e = e->prev) {
		struct kmem_cache *s = list_entry(e, struct kmem_cache, list);

		kmm_unlock(&s->node.list_lock);
		kmm_unlock(&s->barn.lock);
	}
	kmm_unlock(&slab_mutex);
	kmm_unlock(&slab_init_lock);
}

void slab_fork_reset(void)
{
	for (struct list_head *e = slab_caches.next; e != &slab_caches; e = e->next) {
		struct kmem_cache *s = list_entry(e, struct kmem_cache, list);

		kmm_lock_reset(&s->node.list_lock);
		kmm_lock_reset(&s->barn.lock);
	}
	kmm_lock_reset(&slab_mutex);
	kmm_lock_reset(&slab_init_lock);
}

static int choose_mode(void)
{
#ifdef KMM_HAVE_RSEQ_OPS
	if (__rseq_size > 0 && kmm_options()->rseq != 0)
		return SLAB_MODE_RSEQ;
#endif
	return SLAB_MODE_THREAD;
}

static bool slab_setup(void)
{
	int mode = choose_mode();

	if (!page_alloc_init())
		return false;
	if (mode == SLAB_MODE_RSEQ) {
#ifdef KMM_HAVE_RSEQ_OPS
		kmm_rseq_offset = __rseq_offset;
#endif
		nr_slot_cpus = topology_nr_possible_cpus();
		/* All NULL: no sheaf anywhere (load_slot()). */
		slab_percpu_slots = os_map_meta(2 * (size_t)nr_slot_cpus * SLAB_MAX_CACHES *
						sizeof(void *), 0);
		if (!slab_percpu_slots)
			return false;
		/* kmalloc classes not created yet point here: always the slow path. */
		slab_unready_cache.cpu_slot0 = (uintptr_t)percpu_slot(0, SLAB_NO_SHEAVES);
	} else {
		if (pthread_key_create(&slab_thread_key, slab_thread_exit) != 0)
			return false;
		for (unsigned int i = 1; i < SLAB_MAX_CACHES; i++)
			dummy_slots[i] = &slab_dummy_sheaf;
	}
	init_cache_struct(&kmem_cache_boot, "kmem_cache", sizeof(struct kmem_cache),
			  sizeof(void *), 0, NULL);
	init_cache_struct(&sheaf_cache_boot, "kmm_sheaf",
			  sizeof(struct slab_sheaf) + SHEAF_MAX_CAPACITY * sizeof(void *),
			  sizeof(void *), 0, NULL);
	calculate_sizes(&kmem_cache_boot);
	calculate_order(&kmem_cache_boot);
	calculate_sizes(&sheaf_cache_boot);
	calculate_order(&sheaf_cache_boot);
	list_add_tail(&kmem_cache_boot.list, &slab_caches);
	list_add_tail(&sheaf_cache_boot.list, &slab_caches);
	if (!kmalloc_init())
		return false;
	atomic_store_explicit(&slab_mode, mode, memory_order_release);
	return true;
}

/*
 * The lock that start-up holds, for kmalloc's caches made on first use:
 * the fork handlers take it before slab_mutex, so no child inherits it held.
 */
KMM_HOT_TEXT void slab_setup_lock(void)
{
	kmm_lock(&slab_init_lock);
}

KMM_HOT_TEXT void slab_setup_unlock(void)
{
	kmm_unlock(&slab_init_lock);
}

/* Whether the slab layer has started (without starting it). */
KMM_HOT_TEXT bool slab_is_ready(void)
{
	return atomic_load_explicit(&slab_ready, memory_order_acquire);
}

KMM_HOT_TEXT bool slab_init(void)
{
	bool ok = true;

	if (likely(atomic_load_explicit(&slab_ready, memory_order_acquire)))
		return true;
	kmm_lock(&slab_init_lock);
	if (!atomic_load_explicit(&slab_ready, memory_order_relaxed)) {
		kmm_init_depth++;
		ok = slab_setup();
		if (ok)
			atomic_store_explicit(&slab_ready, true, memory_order_release);
		kmm_init_depth--;
	}
	kmm_unlock(&slab_init_lock);
	if (!ok)
		errno = ENOMEM;
	return ok;
}

/* ---------------------------------------------------------------------------
 * Creating and destroying caches
 */

/*
 * slab_mutex held. A free slot index: its slots hold no objects, never
 * having had a sheaf or flushed when its last cache was destroyed (a cache
 * is destroyed only once none of its objects is left anywhere). A CPU the
 * destroying thread could not run on may still hold an empty sheaf there,
 * which then serves the new cache as any empty sheaf would.
 */
static unsigned int assign_index(struct kmem_cache *s)
{
	for (unsigned int i = 1; i < SLAB_MAX_CACHES; i++) {
		if (index_cache[i])
			continue;
		index_cache[i] = s;
		return i;
	}
	return SLAB_NO_SHEAVES;
}

KMM_HOT_TEXT struct kmem_cache *slab_create_cache(const char *name, unsigned int size, unsigned int align,
				     slab_flags_t flags, void (*ctor)(void *))
{
	struct kmem_cache *s;

	if (align & (align - 1)) {
		errno = EINVAL;
		return NULL;
	}
	if (align < sizeof(void *))
		align = sizeof(void *);
	if (flags & SLAB_HWCACHE_ALIGN) {
		/* The kernel's rule: the line, halved while two objects fit in it. */
		unsigned int line = topology_cache_line();

		while (line / 2 >= size && line > align)
			line /= 2;
		if (line > align)
			align = line;
	}
	s = node_alloc(&kmem_cache_boot, GFP_KERNEL);
	if (!s)
		return NULL;
	init_cache_struct(s, name, size, align, flags, ctor);
	calculate_sizes(s);
	if (!calculate_order(s)) {
		node_free(&kmem_cache_boot, s);
		errno = EINVAL;
		return NULL;
	}
	s->sheaf_capacity = sheaf_capacity_for(s->size);
	s->spare = (unsigned long)s->sheaf_capacity * s->size <= SPARE_MAX_BYTES;
	kmm_lock(&slab_mutex);
	if (!(flags & SLAB_DEBUG_FLAGS))
		s->index = assign_index(s);
	s->cpu_slot0 = (uintptr_t)(slab_percpu_slots ? percpu_slot(0, s->index) : NULL);
	list_add_tail(&s->list, &slab_caches);
	kmm_unlock(&slab_mutex);
	return s;
}

KMM_API struct kmem_cache *kmm_kmem_cache_create(const char *name, unsigned int size,
						 unsigned int align, slab_flags_t flags,
						 void (*ctor)(void *))
{
	struct kmem_cache *s = NULL;

	if (!name || size == 0 || size > (1u << 30))
		errno = EINVAL;
	else if (slab_init())
		s = slab_create_cache(name, size, align, flags, ctor);
	if (!s && (flags & SLAB_PANIC))
		kmm_bug("kmem_cache_create(%s, %u): cannot create the cache (errno %d)",
			name ? name : "(null)", size, errno);
	return s;
}

/* Reports up to a few objects still allocated in a slab. */
static unsigned int report_live_objects(struct kmem_cache *s, struct page *slab,
					unsigned int budget)
{
	unsigned char freemap[4096 / 8 + 1];
	unsigned char *base = slab_base(slab);
	unsigned int shown = 0;

	memset(freemap, 0, sizeof(freemap));
	for (void *p = slab->freelist; p; p = get_freepointer(s, p)) {
		size_t i = (size_t)((unsigned char *)p - base - s->red_left_pad) / s->size;

		if (i < sizeof(freemap) * 8)
			freemap[i / 8] |= (unsigned char)(1u << (i % 8));
	}
	for (unsigned int i = 0; i < slab->fresh && shown < budget; i++) {
		if (i < sizeof(freemap) * 8 && (freemap[i / 8] & (1u << (i % 8))))
			continue;
		kmm_report("  object %p still allocated",
			   (void *)(base + (size_t)i * s->size + s->red_left_pad));
		shown++;
	}
	return shown;
}

static void report_leaks(struct kmem_cache *s)
{
	struct kmem_cache_node *n = &s->node;
	struct list_head *lists[] = { &n->partial, &n->full };
	unsigned int budget = 16;

	kmm_report("BUG %s: kmem_cache_destroy: the cache still has %lu objects; "
		   "it is left in place, its memory is not freed", s->name, n->inuse_objects);
	for (unsigned int l = 0; l < ARRAY_SIZE(lists); l++) {
		for (struct list_head *e = lists[l]->next; e != lists[l] && budget; e = e->next)
			budget -= report_live_objects(s, list_entry(e, struct page, lru), budget);
	}
}

KMM_API void kmm_kmem_cache_destroy(struct kmem_cache *s)
{
	unsigned long inuse;

	if (!s)
		return;
	flush_sheaves(s, true);
	node_shrink(s);
	kmm_lock(&s->node.list_lock);
	inuse = s->node.inuse_objects;
	if (inuse)
		report_leaks(s);
	kmm_unlock(&s->node.list_lock);
	if (inuse)
		return;
	kmm_lock(&slab_mutex);
	list_del(&s->list);
	if (s->index != SLAB_NO_SHEAVES)
		index_cache[s->index] = NULL;
	kmm_unlock(&slab_mutex);
	node_free(&kmem_cache_boot, s);
}

KMM_API int kmm_kmem_cache_shrink(struct kmem_cache *s)
{
	flush_sheaves(s, false);
	node_shrink(s);
	return 0;
}

/* ---------------------------------------------------------------------------
 * Objects
 */

KMM_API void *kmm_kmem_cache_alloc(struct kmem_cache *s, gfp_t gfp)
{
	void *obj = slab_alloc_fast(s);

	if (unlikely(!obj)) {
		obj = slab_alloc_slow(s, gfp);
		if (!obj) {
			errno = ENOMEM;
			return NULL;
		}
	}
	if (gfp & __GFP_ZERO)
		memset(obj, 0, s->object_size);
	return obj;
}

KMM_API void kmm_kmem_cache_free(struct kmem_cache *s, void *obj)
{
	struct kmem_cache *owner = addr_slab_cache(obj);

	if (unlikely(owner != s)) {
		if (!owner)
			slab_bad_free(obj, "kmem_cache_free of memory that is no slab object");
		kmm_bug("BUG: bad free of %p: kmem_cache_free to cache %s, the object belongs to %s",
			obj, s->name, owner->name);
	}
	int fast = slab_free_fast(s, obj);

	if (likely(fast > 0))
		return;
	slab_free_slow(s, obj, fast);
}

KMM_API int kmm_kmem_cache_alloc_bulk(struct kmem_cache *s, gfp_t gfp, size_t nr, void **p)
{
	for (size_t i = 0; i < nr; i++) {
		p[i] = kmm_kmem_cache_alloc(s, gfp);
		if (!p[i]) {
			kmm_kmem_cache_free_bulk(s, i, p);
			return 0;
		}
	}
	return (int)nr;
}

KMM_API void kmm_kmem_cache_free_bulk(struct kmem_cache *s, size_t nr, void **p)
{
	for (size_t i = 0; i < nr; i++) {
		struct kmem_cache *c = s;

		if (!c) {
			c = addr_slab_cache(p[i]);
			if (!c)
				slab_bad_free(p[i], "kmem_cache_free_bulk of memory that is no slab object");
		}
		kmm_kmem_cache_free(c, p[i]);
	}
}

KMM_API unsigned int kmm_kmem_cache_size(struct kmem_cache *s)
{
	return s->object_size;
}

/* ---------------------------------------------------------------------------
 * Statistics
 */

static void fill_slabinfo(struct kmem_cache *s, struct kmm_slabinfo *info)
{
	struct kmem_cache_node *n = &s->node;
	unsigned long empty = 0;

	memset(info, 0, sizeof(*info));
	kmm_snprint(info->name, sizeof(info->name), "%s", s->name);
	info->objsize = s->object_size;
	info->stride = s->size;
	info->objperslab = s->objects;
	info->pagesperslab = 1u << s->order;
	kmm_lock(&s->barn.lock);
	info->cached_objs = s->barn.full_objects;
	kmm_unlock(&s->barn.lock);
	kmm_lock(&n->list_lock);
	for (struct list_head *e = n->partial.next; e != &n->partial; e = e->next)
		empty += list_entry(e, struct page, lru)->inuse == 0;
	info->active_objs = n->inuse_objects;
	info->num_objs = n->total_objects;
	info->num_slabs = n->nr_slabs;
	info->active_slabs = n->nr_slabs - empty;
	kmm_unlock(&n->list_lock);
}

KMM_API int kmm_slabinfo(struct kmm_slabinfo *info, int max)
{
	int count = 0;

	if (!slab_init())
		return 0;
	kmm_lock(&slab_mutex);
	for (struct list_head *e = slab_caches.next; e != &slab_caches; e = e->next) {
		if (count < max)
			fill_slabinfo(list_entry(e, struct kmem_cache, list), &info[count]);
		count++;
	}
	kmm_unlock(&slab_mutex);
	return count;
}

KMM_API void kmm_show_slabinfo(int fd)
{
	struct kmm_slabinfo info;

	if (!slab_init())
		return;
	kmm_dprint(fd, "slabinfo - version: 2.1\n");
	kmm_dprint(fd, "# name            <active_objs> <num_objs> <objsize> <objperslab> "
		       "<pagesperslab> : tunables <limit> <batchcount> <sharedfactor> "
		       ": slabdata <active_slabs> <num_slabs> <sharedavail>\n");
	kmm_lock(&slab_mutex);
	for (struct list_head *e = slab_caches.next; e != &slab_caches; e = e->next) {
		struct kmem_cache *s = list_entry(e, struct kmem_cache, list);

		fill_slabinfo(s, &info);
		kmm_dprint(fd, "%s", info.name);
		for (size_t pad = strlen(info.name); pad < 17; pad++)
			kmm_dprint(fd, " ");
		kmm_dprint(fd, " %6lu %6lu %6u %4u %4u : tunables %4u %4u %4u : slabdata %6lu %6lu %6u\n",
			   info.active_objs, info.num_objs, info.objsize, info.objperslab,
			   info.pagesperslab, s->sheaf_capacity, s->sheaf_capacity / 2, 0u,
			   info.active_slabs, info.num_slabs, 0u);
	}
	kmm_unlock(&slab_mutex);
}

KMM_API const char *kmm_slab_mode(void)
{
	switch (atomic_load_explicit(&slab_mode, memory_order_acquire)) {
	case SLAB_MODE_RSEQ:
		return "rseq";
	case SLAB_MODE_THREAD:
		return "thread";
	default:
		return "off";
	}
}
