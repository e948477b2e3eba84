/*
 * kmalloc.c - the byte allocator: size classes over slab caches up to a
 * page, the chunk heap (heap.c) from there to four pages, page runs
 * (runs.c) up to a section, vmalloc beyond.
 *
 * Size classes: 8-byte steps up to 64, then four classes per doubling
 * (80, 96, 112, 128, 160, ...) up to four pages, except between 4 and 8 KiB,
 * which has eight (4608, 5120, ...). Above 24 bytes no object wastes more
 * than 25% of its class, and between 4 and 8 KiB no more than 12.5%: a page
 * plus a header is a common size (sqlite's page cache: 4368 bytes), and a
 * quarter of such blocks is real memory. Above one page only the powers of
 * two use their class (for their natural alignment); every other size up
 * to four pages is a chunk of the heap, which merges freed chunks and
 * serves any size from them: per class, the few blocks of each such size a
 * program has at once kept a slab and cached objects each (git's replay
 * 0.7 MiB, cc1's 0.4, sqlite's 0.35 above the heap). From four pages up
 * to a section, a size is a page run (runs.c): exactly its pages, carved
 * from run spans that merge freed runs with their free neighbours; beyond
 * a section, a vmalloc area.
 * The class of a size is one table load: kmalloc_table up to 1024 bytes,
 * kmalloc_medium above.
 *
 * kfree() finds what it frees from the address alone: the page descriptor
 * names the slab cache, marks a heap span (PG_heap), or marks the head of
 * a page run (PG_large_kmalloc, usable size in private); an address outside
 * every section may be a vmalloc area.
 *
 * A class's cache is created the first time the class is asked for (a
 * short-lived process builds the few caches it uses, not all of them), or
 * for a cold class, later: see class_cold().
 * Creation is serialized by the slab layer's start-up lock (taken by the
 * fork handlers); kmalloc_caches[] and kmalloc_table[] entries are
 * published with release stores and never change after.
 */
#include <errno.h>
#include <string.h>

#include <kmm/mmzone.h>
#include <kmm/slab.h>
#include <kmm/vmalloc.h>

#include "heap.h"
#include "internal.h"
#include "os.h"
#include "page_alloc.h"
#include "kmalloc.h"
#include "runs.h"
#include "slab.h"
#include "vmalloc.h"

#define KMALLOC_MAX_CLASSES 80
#define KMALLOC_FINE_SHIFT 12	/* eight classes in (2^12, 2^13] bytes */
#define KMALLOC_FINE_FIRST (8 + 4 * (KMALLOC_FINE_SHIFT - 6))
#define KMALLOC_TABLE_MAX 1024

static struct kmem_cache *kmalloc_caches[KMALLOC_MAX_CLASSES];	/* NULL until used */
static unsigned int nr_kmalloc_classes;
static size_t kmalloc_max_cache_size KMM_HOT_DATA;	/* read before start-up too */
/*
 * Above KMALLOC_TABLE_MAX, every class boundary is a multiple of 256 bytes:
 * the class of size is kmalloc_medium[(size - 1) >> KMALLOC_MEDIUM_SHIFT],
 * filled by kmalloc_init() up to the largest class (256 KiB with 64 KiB
 * pages). A load, where computing the class cost the malloc-free loop of
 * tools/kmm bench's fastpath/4096 three times as much.
 */
#define KMALLOC_MEDIUM_SHIFT 8
static unsigned char kmalloc_medium[(256 * 1024) >> KMALLOC_MEDIUM_SHIFT];
/* All zero: index 0 is the dummy sheaf's (kmalloc_init() sets cpu_slot0). */
struct kmalloc_slot kmalloc_table[KMALLOC_TABLE_MAX / 8 + 1] KMM_HOT_DATA;

/* The class index of size (1 <= size <= kmalloc_max_cache_size). */
KMM_HOT_TEXT static unsigned int size_to_class(size_t size)
{
	unsigned int k, step, first;

	if (size <= 64)
		return (unsigned int)((size + 7) / 8) - 1;
	k = (unsigned int)(sizeof(long) * 8 - 1) - (unsigned int)__builtin_clzl(size - 1);
	if (k < KMALLOC_FINE_SHIFT) {
		step = 1u << (k - 2);
		first = 8 + 4 * (k - 6);
	} else if (k == KMALLOC_FINE_SHIFT) {
		step = 1u << (k - 3);
		first = KMALLOC_FINE_FIRST;
	} else {
		step = 1u << (k - 2);
		first = KMALLOC_FINE_FIRST + 8 + 4 * (k - KMALLOC_FINE_SHIFT - 1);
	}
	return first + (unsigned int)((size - (1UL << k) + step - 1) / step) - 1;
}

KMM_HOT_TEXT static unsigned int class_size(unsigned int idx)
{
	unsigned int k;

	if (idx < 8)
		return 8 * (idx + 1);
	if (idx < KMALLOC_FINE_FIRST) {
		k = 6 + (idx - 8) / 4;
		return (1u << k) + ((idx - 8) % 4 + 1) * (1u << (k - 2));
	}
	if (idx < KMALLOC_FINE_FIRST + 8) {
		k = KMALLOC_FINE_SHIFT;
		return (1u << k) + ((idx - KMALLOC_FINE_FIRST) % 8 + 1) * (1u << (k - 3));
	}
	k = KMALLOC_FINE_SHIFT + 1 + (idx - KMALLOC_FINE_FIRST - 8) / 4;
	return (1u << k) + ((idx - KMALLOC_FINE_FIRST - 8) % 4 + 1) * (1u << (k - 2));
}

/* "kmalloc-<size>", without the general formatter: this runs in every process. */
static void kmalloc_name(char name[32], unsigned int size)
{
	char digits[12];
	int n = 0;

	memcpy(name, "kmalloc-", 8);
	do {
		digits[n++] = (char)('0' + size % 10);
		size /= 10;
	} while (size);
	for (int i = 0; i < n; i++)
		name[8 + i] = digits[n - 1 - i];
	name[8 + n] = 0;
}

/* Called by slab_init() before the fast paths switch on. */
KMM_HOT_TEXT bool kmalloc_init(void)
{
	unsigned int max = 4 * (unsigned int)os_page_size;

	/* With 64 KiB pages the classes end first: larger sizes are page runs. */
	if (max > class_size(KMALLOC_MAX_CLASSES - 1))
		max = class_size(KMALLOC_MAX_CLASSES - 1);
	while (nr_kmalloc_classes < KMALLOC_MAX_CLASSES && class_size(nr_kmalloc_classes) <= max)
		nr_kmalloc_classes++;
	for (unsigned int i = 0; i < ARRAY_SIZE(kmalloc_medium) && (i << KMALLOC_MEDIUM_SHIFT) < max; i++)
		kmalloc_medium[i] = (unsigned char)size_to_class((size_t)(i + 1) << KMALLOC_MEDIUM_SHIFT);
	/* Last: a size below it may now use kmalloc_medium. */
	__atomic_store_n(&kmalloc_max_cache_size, max, __ATOMIC_RELEASE);
	/* Before the mode is published: rseq-mode lookups need a real slot. */
	for (unsigned int i = 0; i < ARRAY_SIZE(kmalloc_table); i++) {
		kmalloc_table[i].cpu_slot0 = slab_unready_cache.cpu_slot0;
		kmalloc_table[i].size = class_size(size_to_class(i ? 8 * (size_t)i : 1));
	}
	return true;
}

/* Slab start-up lock held: makes class idx's cache and points the table at it. */
static struct kmem_cache *kmalloc_create(unsigned int idx)
{
	char name[32];
	struct kmem_cache *s;

	kmalloc_name(name, class_size(idx));
	s = slab_create_cache(name, class_size(idx), 0, 0, NULL);
	if (!s)
		return NULL;
	tsan_release(s);
	__atomic_store_n(&kmalloc_caches[idx], s, __ATOMIC_RELEASE);
	/* Class sizes are multiples of 8: entries (previous class, this class]. */
	for (unsigned int i = idx ? class_size(idx - 1) / 8 + 1 : 0;
	     i <= class_size(idx) / 8 && i < ARRAY_SIZE(kmalloc_table); i++) {
		tsan_release(&kmalloc_table[i]);
		__atomic_store_n(&kmalloc_table[i].index, s->index, __ATOMIC_RELEASE);
		__atomic_store_n(&kmalloc_table[i].cpu_slot0, s->cpu_slot0, __ATOMIC_RELEASE);
	}
	return s;
}

/* The cache of class idx, created on first use; NULL if that fails. */
static struct kmem_cache *kmalloc_cache(unsigned int idx)
{
	struct kmem_cache *s = __atomic_load_n(&kmalloc_caches[idx], __ATOMIC_ACQUIRE);

	if (likely(s))
		return s;
	slab_setup_lock();
	s = kmalloc_caches[idx];
	if (!s)
		s = kmalloc_create(idx);
	slab_setup_unlock();
	return s;
}

/*
 * Cold classes. Every class a process uses cost it at least a slab and a
 * sheaf or two, however few objects it holds: cc1 compiling the make
 * workload's main.c held at most 13 objects at once in 15 of its 28
 * classes, and their slabs (with the free objects their sheaves cache)
 * were 360 KiB for 73 KiB of objects. So a class above 64 bytes that is
 * not a power of two (those keep their natural alignment, which only a
 * slab gives; below 64 bytes a chunk's header and 16-byte steps waste
 * more than a quarter of some sizes) makes no cache until it holds
 * KMALLOC_COLD_LIVE objects at once or has served KMALLOC_COLD_ALLOCS:
 * until then its objects are chunks of the heap (heap.c), which packs
 * every size together as glibc's heap does, at the cost of a lock per
 * allocation and free for those few objects. A chunk carries its class
 * (the heap's tag), so that its free counts it out; chunks still live
 * when the class gets its cache stay chunks until freed. The counters are
 * relaxed atomics: a race makes a class's cache a few objects early or
 * late, nothing worse.
 */
#define KMALLOC_COLD_MIN 64	/* up to here a chunk's 16-byte steps waste too much */
#define KMALLOC_COLD_LIVE 16
#define KMALLOC_COLD_ALLOCS 128

struct kmalloc_cold {
	atomic_uint allocs;
	atomic_int live;
};
static struct kmalloc_cold kmalloc_cold[KMALLOC_MAX_CLASSES];

/* Whether a request of class idx goes to the heap, counted as one if so. */
static bool class_cold(unsigned int idx)
{
	struct kmalloc_cold *c = &kmalloc_cold[idx];
	unsigned int size = class_size(idx);

	if (size <= KMALLOC_COLD_MIN || !(size & (size - 1)) ||
	    __atomic_load_n(&kmalloc_caches[idx], __ATOMIC_ACQUIRE))
		return false;
	if (atomic_load_explicit(&c->live, memory_order_relaxed) >= KMALLOC_COLD_LIVE ||
	    atomic_fetch_add_explicit(&c->allocs, 1, memory_order_relaxed) >= KMALLOC_COLD_ALLOCS)
		return false;
	atomic_fetch_add_explicit(&c->live, 1, memory_order_relaxed);
	return true;
}

static void *cold_alloc(unsigned int idx, size_t size, gfp_t gfp)
{
	void *obj = heap_alloc_tagged(size, gfp, idx + 1);

	if (!obj)
		atomic_fetch_sub_explicit(&kmalloc_cold[idx].live, 1, memory_order_relaxed);
	return obj;
}

/* A heap chunk went free: if a cold class's, one object fewer live. */
static void cold_freed(uint32_t tag)
{
	if (tag)
		atomic_fetch_sub_explicit(&kmalloc_cold[tag - 1].live, 1, memory_order_relaxed);
}

/* ---------------------------------------------------------------------------
 * Allocation
 */

static void *kmalloc_large(size_t size, gfp_t gfp)
{
	if (size > (os_page_size << MAX_PAGE_ORDER))
		return vmalloc_recycled(size, gfp, __builtin_return_address(0));
	return run_alloc(size, 0, gfp);
}

/*
 * Sizes above a page and up to the largest class go to the chunk heap,
 * except powers of two: kmalloc gives those their natural alignment, which
 * a slab of that class has and a chunk has not.
 */
static bool heap_serves(size_t size)
{
	return size > os_page_size && (size & (size - 1));
}

/* A size of class idx: a chunk while the class is cold, else an object of its cache. */
static void *kmalloc_class(unsigned int idx, size_t size, gfp_t gfp)
{
	struct kmem_cache *s;
	void *obj;

	if (class_cold(idx))
		return cold_alloc(idx, size, gfp);
	s = kmalloc_cache(idx);
	if (!s)
		return NULL;
	obj = slab_alloc_fast(s);
	if (!obj)
		obj = slab_alloc_slow(s, gfp);
	if (obj && (gfp & __GFP_ZERO))
		memset(obj, 0, s->object_size);
	return obj;
}

/* Not inlined into kmm_kmalloc(), whose fast path would then need a stack frame. */
KMM_HOT_TEXT void *__attribute__((noinline)) kmalloc_slow(size_t size, gfp_t gfp)
{
	void *obj;

	if (size == 0)
		return ZERO_SIZE_PTR;
	if (unlikely(!slab_init()))
		return NULL;
	if (size > kmalloc_max_cache_size)
		obj = kmalloc_large(size, gfp);
	else if (heap_serves(size))
		obj = heap_alloc(size, gfp);
	else
		obj = kmalloc_class(size_to_class(size), size, gfp);
	if (!obj)
		errno = ENOMEM;
	return obj;
}

KMM_HOT_TEXT void *kmalloc_fast_medium(size_t size)
{
	struct kmem_cache *s;

	/* 0 until start-up: then every size takes the slow path. */
	if (size > __atomic_load_n(&kmalloc_max_cache_size, __ATOMIC_ACQUIRE) || heap_serves(size))
		return NULL;
	s = __atomic_load_n(&kmalloc_caches[kmalloc_medium[(size - 1) >> KMALLOC_MEDIUM_SHIFT]],
			    __ATOMIC_ACQUIRE);
	return s ? slab_alloc_fast(s) : NULL;
}

/*
 * kmalloc with __GFP_ZERO: out of line, so that kmalloc's own fast path
 * keeps its 72 instructions a pair. Through the slow path, which found the
 * cache and cleared the object, kzalloc+kfree took 139 instructions at 16
 * bytes and 238 at 1024; this way 92 and 152 (bench/instructions.sh).
 */
KMM_HOT_TEXT static void *__attribute__((noinline)) kzalloc_any(size_t size, gfp_t gfp)
{
	void *obj = likely(size - 1 < KMALLOC_TABLE_MAX) ? kzalloc_fast(size) : NULL;

	return likely(obj) ? obj : kmalloc_slow(size, gfp);
}

KMM_HOT_TEXT KMM_API void *kmm_kmalloc(size_t size, gfp_t gfp)
{
	void *obj;

	if (unlikely(gfp & __GFP_ZERO))
		return kzalloc_any(size, gfp);
	obj = kmalloc_fast_any(size);
	return likely(obj) ? obj : kmalloc_slow(size, gfp);
}

KMM_API void *kmm_kmalloc_array(size_t n, size_t size, gfp_t gfp)
{
	size_t bytes;

	if (__builtin_mul_overflow(n, size, &bytes)) {
		errno = ENOMEM;
		return NULL;
	}
	return kmm_kmalloc(bytes, gfp);
}

/* ---------------------------------------------------------------------------
 * Free and size
 */

/*
 * Whether p, on page, is the start of a page run. Only a run's head page
 * carries PG_large_kmalloc, so a page-aligned p on such a page is its start.
 */
static bool is_page_run(const struct page *page, const void *p)
{
	return page && (page_flags(page) & PG_large_kmalloc) &&
	       !((uintptr_t)p & (os_page_size - 1));
}

/*
 * A vmalloc area of size bytes that kmalloc (or malloc's early path) gave
 * out. One no bigger than the largest buddy block came from the early path:
 * once the slab layer runs, page runs serve that size, so nobody would take
 * it from the recycle cache and it goes at once.
 */
static void vfree_area(const void *p, size_t size)
{
	if (size <= (os_page_size << MAX_PAGE_ORDER) && slab_is_ready())
		kmm_vfree(p);
	else
		vfree_recycle(p);
}

/* Everything but a slab object whose free fits this CPU's sheaf. */
KMM_HOT_TEXT void kfree_slow(const void *p, const char *who)
{
	struct page *page = addr_to_page(p);
	size_t size;

	if (ZERO_OR_NULL_PTR(p) && !page)
		return;
	if (page) {
		struct kmem_cache *s = page_slab_cache(page);

		if (s) {
			slab_free_slow(s, (void *)p, 0);
			return;
		}
		if (page_flags(page) & PG_heap) {
			cold_freed(heap_free(p, who));
			return;
		}
		if (is_page_run(page, p)) {
			run_free(page, false);
			return;
		}
		kmm_bug("BUG: %s(%p): not the start of an allocation "
			"(double free, or a pointer into an object)", who, p);
	}
	size = vmalloc_size(p);
	if (size) {
		vfree_area(p, size);
		return;
	}
	kmm_bug("BUG: %s(%p): invalid pointer: kmm never gave out this address", who, p);
}

/*
 * Frees a block whose contents a realloc has just copied out. A page run
 * of at least MOVED_RELEASE_MIN gives its pages back to the OS first, so
 * that they lie free clean: a buffer that grows by moving leaves behind
 * runs of every smaller size, which it can no longer use and which would
 * otherwise stay resident until the decay (sqlite's sorter, 32 KiB to 2 MiB
 * twice: replay peak 5140 -> 4948 KiB with buddy blocks; cc1's replay with
 * page-granular runs, 8732 -> 8376).
 * Smaller runs stay dirty: for them the madvise and the faults of their
 * next use cost more than the copy (a loop growing a buffer to 64 KiB took
 * 21.7 us instead of 12.7 releasing every moved run). The bound was 128
 * KiB, where glibc's realloc starts using mmap'd chunks, until python's
 * lists and strings, grown by realloc through 256 KiB-2 MiB, were measured
 * on a VM where a page fault costs 10-15 us: its workload took 0.89 of
 * glibc's time (jemalloc 0.83), 0.80 with 512 KiB and 0.74 with 1 MiB; a
 * replay of its allocations 51,900 page faults, 41,200 and 39,600
 * (jemalloc 35,700). What it costs is gcc's peak: 127.1 MiB, 127.6 and
 * 127.7 (glibc 126.8); sqlite, make, git and perl did not move.
 */
#define MOVED_RELEASE_MIN (1024 * 1024)

KMM_HOT_TEXT void kfree_moved(const void *p, const char *who)
{
	struct page *page = addr_to_page(p);

	if (is_page_run(page, p) && page->private >= MOVED_RELEASE_MIN) {
		run_free(page, true);
		return;
	}
	kfree_slow(p, who);
}

KMM_HOT_TEXT KMM_API void kmm_kfree(const void *p)
{
	if (likely(kfree_fast(p)))
		return;
	kfree_slow(p, "kfree");
}

/* One section lookup serves both slab objects and page runs (realloc asks on every call). */
KMM_HOT_TEXT size_t kmalloc_usable_size(const void *p, const char *who)
{
	struct mem_section *ms = section_lookup((uintptr_t)p);
	size_t size = 0;

	if (likely(ms)) {
		uintptr_t i = section_page_index(p);

		if (likely(ms->slab_cache[i]))
			return ms->slab_cache[i]->object_size;
		if (page_flags(&ms->pages[i]) & PG_heap)
			return heap_usable_size(p, who);
		if (is_page_run(&ms->pages[i], p))
			return ms->pages[i].private;
	} else if (ZERO_OR_NULL_PTR(p)) {
		return 0;
	} else {
		size = vmalloc_size(p);
	}
	if (!size)
		kmm_bug("BUG: %s(%p): invalid pointer: not an allocation kmm gave out", who, p);
	return size;
}

KMM_API size_t kmm_ksize(const void *p)
{
	return kmalloc_usable_size(p, "ksize");
}

/*
 * size bytes aligned to align (a power of two). Power-of-two kmalloc classes
 * are naturally aligned; a page run starts where its span allows, and a
 * span is aligned to its size.
 */
KMM_HOT_TEXT void *kmalloc_aligned(size_t size, size_t align, gfp_t gfp)
{
	size_t want = size > align ? size : align;
	void *p;

	if (want <= kmalloc_max_cache_size) {
		size_t pow2 = 16;

		while (pow2 < want)
			pow2 <<= 1;
		return kmalloc_slow(pow2, gfp);
	}
	if (!slab_init())
		return NULL;
	p = run_alloc(size, align, gfp);
	if (p || errno == ENOMEM)
		return p;
	/* Beyond a section, or an alignment that leaves no room in one. */
	return vmalloc_caller(size, gfp, align, __builtin_return_address(0));
}

/* Shrinks every kmalloc cache, then gives free pages back: malloc_trim(). */
unsigned long kmalloc_trim(void)
{
	for (unsigned int i = 0; i < nr_kmalloc_classes; i++) {
		struct kmem_cache *s = __atomic_load_n(&kmalloc_caches[i], __ATOMIC_ACQUIRE);

		if (s)
			kmm_kmem_cache_shrink(s);
	}
	vmalloc_recycle_drain();
	heap_trim();
	run_trim();
	return kmm_page_reclaim();
}

/*
 * A heap chunk or a page run grown to new_size where it lies, into the free
 * space after it: a buffer grown by realloc neither copies nor holds the
 * old and the new block at once. False for anything else.
 */
KMM_HOT_TEXT bool kmalloc_grow_in_place(const void *p, size_t new_size)
{
	struct page *page = addr_to_page(p);

	if (page && (page_flags(page) & PG_heap))
		return new_size <= kmalloc_max_cache_size && heap_grow_in_place(p, new_size);
	if (!is_page_run(page, p) || new_size > (os_page_size << MAX_PAGE_ORDER))
		return false;
	return run_resize_in_place(page, new_size);
}

/*
 * realloc's shrink where the block lies: a heap chunk or a page run gives
 * its tail back (false, nothing done, for slab objects, which stay in their
 * class, and vmalloc areas, which mremap).
 */
KMM_HOT_TEXT bool kmalloc_shrink_in_place(const void *p, size_t new_size)
{
	struct page *page = addr_to_page(p);

	if (page && (page_flags(page) & PG_heap)) {
		heap_shrink_in_place(p, new_size);
		return true;
	}
	if (!is_page_run(page, p) || new_size <= kmalloc_max_cache_size)
		return false;
	return run_resize_in_place(page, new_size);
}

KMM_API void *kmm_krealloc(const void *p, size_t new_size, gfp_t gfp)
{
	size_t old_size;
	void *n;

	if (ZERO_OR_NULL_PTR(p))
		return kmm_kmalloc(new_size, gfp);
	if (new_size == 0) {
		kmm_kfree(p);
		return ZERO_SIZE_PTR;
	}
	old_size = kmm_ksize(p);
	if (new_size <= old_size)
		return (void *)p;
	if (addr_to_page(p) == NULL && new_size > kmalloc_max_cache_size)
		return kmm_vrealloc(p, new_size, gfp);
	if (kmalloc_grow_in_place(p, new_size))
		return (void *)p;
	n = kmm_kmalloc(new_size, gfp);
	if (!n)
		return NULL;
	memcpy(n, p, old_size);
	kfree_moved(p, "krealloc");
	return n;
}

KMM_API void kmm_kfree_sensitive(const void *p)
{
	size_t size = kmm_ksize(p);

	if (size) {
		memset((void *)p, 0, size);
		/* The clearing must not be optimised away as a dead store. */
		__asm__ __volatile__("" : : "r"(p) : "memory");
	}
	kmm_kfree(p);
}

/* ---------------------------------------------------------------------------
 * Copies and kvmalloc
 */

KMM_API void *kmm_kmemdup(const void *src, size_t len, gfp_t gfp)
{
	void *p = kmm_kmalloc(len, gfp & ~__GFP_ZERO);

	if (p && len)
		memcpy(p, src, len);
	return p;
}

KMM_API char *kmm_kstrndup(const char *s, size_t max, gfp_t gfp)
{
	size_t len;
	char *p;

	if (!s)
		return NULL;
	len = strnlen(s, max);
	p = kmm_kmalloc(len + 1, gfp & ~__GFP_ZERO);
	if (p) {
		memcpy(p, s, len);
		p[len] = 0;
	}
	return p;
}

KMM_API char *kmm_kstrdup(const char *s, gfp_t gfp)
{
	return s ? kmm_kmemdup(s, strlen(s) + 1, gfp) : NULL;
}

/* kmalloc first, quietly and without retrying for multi-page sizes, then vmalloc. */
KMM_API void *kmm_kvmalloc(size_t size, gfp_t gfp)
{
	gfp_t try = size > os_page_size ? gfp | __GFP_NORETRY | __GFP_NOWARN : gfp;
	void *p;

	if (size > (os_page_size << MAX_PAGE_ORDER))
		return vmalloc_caller(size, gfp, 0, __builtin_return_address(0));
	p = kmm_kmalloc(size, try);
	if (p || size <= os_page_size)
		return p;
	return vmalloc_caller(size, gfp, 0, __builtin_return_address(0));
}

KMM_API void kmm_kvfree(const void *p)
{
	kmm_kfree(p);
}
