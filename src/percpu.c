/*
 * percpu.c - per-CPU memory, after the kernel's mm/percpu.c.
 *
 * A chunk is one block from the page allocator cut into one unit per
 * possible CPU; every unit has the same layout, so an area at offset off
 * exists once per CPU, at base + cpu * unit_size + off. A per-CPU pointer is
 * the address of CPU 0's copy (base + off). Units are whole pages, so two
 * CPUs' copies never share a cache line.
 *
 * Inside a chunk, areas are found first-fit in a bitmap of 16-byte
 * granules (alloc_map); bound_map marks the first granule of each area, so
 * free_percpu knows an area's extent and can tell a double free. New chunks
 * come on demand; a chunk that becomes empty goes back to the page
 * allocator while another chunk remains.
 *
 * Static per-CPU variables (DEFINE_PER_CPU) sit in each object's
 * "kmm_percpu" section. The first use registers the section: an area of its
 * size is allocated and every CPU's copy starts as the section's contents.
 *
 * Locking: pcpu_lock serializes allocation, free, chunk creation and
 * registration of static sections. The this_cpu operations take no lock:
 * restartable sequences on x86-64 with rseq, atomics on the current CPU's
 * copy otherwise. Registered sections are published with a release store
 * of nr_statics and never removed, so lookups need no lock.
 */
#include <errno.h>
#include <stdatomic.h>
#include <string.h>

#include <kmm/percpu.h>
#include <kmm/slab.h>

#include "bitmap.h"
#include "internal.h"
#include "lock.h"
#include "list.h"
#include "percpu.h"
#include "options.h"
#include "os.h"
#include "page_alloc.h"
#include "rseq.h"
#include "topology.h"

#pragma GCC visibility push(hidden)

#define PCPU_MIN_ALLOC 16		/* granule: the smallest area */
#define PCPU_UNIT_TARGET (32 * 1024)	/* the kernel's minimum unit size */
#define PCPU_MAX_STATIC 64		/* objects with a static section */

struct pcpu_chunk {
	struct list_head list;
	char *base;			/* CPU 0's unit */
	unsigned int free_granules;
	unsigned long *alloc_map;	/* a set bit is a granule in use */
	unsigned long *bound_map;	/* a set bit starts an area */
};

struct pcpu_static {
	const char *start, *stop;	/* the object's kmm_percpu section */
	char *copy;			/* CPU 0's copy of it */
};

struct kmm_lock pcpu_lock = KMM_LOCK_INIT;
static struct list_head pcpu_chunks = { &pcpu_chunks, &pcpu_chunks };
/*
 * The geometry is set once, under pcpu_lock, before the first area exists;
 * whoever holds a per-CPU pointer has seen it.
 */
static size_t pcpu_unit_size;		/* 0 until pcpu_setup() */
static unsigned int pcpu_nr_units;
static unsigned int pcpu_nr_granules;	/* per unit */
static size_t pcpu_chunk_bytes;
static bool pcpu_use_rseq;

static struct pcpu_static pcpu_statics[PCPU_MAX_STATIC];
static atomic_uint nr_statics;

#pragma GCC visibility pop

/* ---------------------------------------------------------------------------
 * Geometry
 */

/*
 * One unit per possible CPU, and the whole chunk one block of at most the
 * maximum order: with many CPUs, units shrink towards one page.
 */
static bool pcpu_setup(void)
{
	size_t unit = PCPU_UNIT_TARGET, max_chunk;

	if (pcpu_unit_size)
		return true;
	if (!page_alloc_init())
		return false;
	max_chunk = os_page_size << MAX_PAGE_ORDER;
	pcpu_nr_units = topology_nr_possible_cpus();
	if (unit < os_page_size)
		unit = os_page_size;
	while (unit > os_page_size && unit * pcpu_nr_units > max_chunk)
		unit /= 2;
	pcpu_nr_granules = (unsigned int)(unit / PCPU_MIN_ALLOC);
	pcpu_chunk_bytes = unit * pcpu_nr_units;
#if defined(KMM_HAVE_RSEQ_OPS) && !defined(__SANITIZE_THREAD__)
	/* ThreadSanitizer cannot see rseq; it checks the atomic path instead. */
	pcpu_use_rseq = __rseq_size > 0 && kmm_options()->rseq != 0;
	kmm_rseq_offset = __rseq_offset;
#endif
	pcpu_unit_size = unit;
	return true;
}

KMM_API size_t kmm_percpu_unit_size(void)
{
	size_t unit;

	kmm_lock(&pcpu_lock);
	unit = pcpu_setup() ? pcpu_unit_size : 0;
	kmm_unlock(&pcpu_lock);
	return unit;
}

KMM_API unsigned int kmm_num_possible_cpus(void)
{
	return topology_nr_possible_cpus();
}

KMM_API unsigned int kmm_raw_smp_processor_id(void)
{
	return kmm_current_cpu();
}

/* ---------------------------------------------------------------------------
 * Granule maps (bitmap.h)
 */

/* The first free run of n granules starting at a multiple of align; -1 if none. */
static int find_area(const struct pcpu_chunk *chunk, unsigned int n, unsigned int align)
{
	for (unsigned int start = 0; start + n <= pcpu_nr_granules; start += align) {
		unsigned int used = 0;

		while (used < n && !bitmap_test(chunk->alloc_map, start + used))
			used++;
		if (used == n)
			return (int)start;
	}
	return -1;
}

/* ---------------------------------------------------------------------------
 * Chunks (pcpu_lock held)
 */

static size_t map_bytes(void)
{
	return (pcpu_nr_granules + BITS_PER_LONG - 1) / BITS_PER_LONG * sizeof(unsigned long);
}

static struct pcpu_chunk *chunk_create(gfp_t gfp)
{
	struct pcpu_chunk *chunk = kmm_kmalloc(sizeof(*chunk) + 2 * map_bytes(), gfp | __GFP_ZERO);

	if (!chunk)
		return NULL;
	/* Not zeroed here: each area is cleared in every unit when handed out. */
	chunk->base = kmm_alloc_pages_exact(pcpu_chunk_bytes, gfp & ~__GFP_ZERO);
	if (!chunk->base) {
		kmm_kfree(chunk);
		return NULL;
	}
	chunk->alloc_map = (unsigned long *)(chunk + 1);
	chunk->bound_map = (unsigned long *)((char *)chunk->alloc_map + map_bytes());
	chunk->free_granules = pcpu_nr_granules;
	list_add_tail(&chunk->list, &pcpu_chunks);
	return chunk;
}

static void chunk_destroy(struct pcpu_chunk *chunk)
{
	list_del(&chunk->list);
	kmm_free_pages_exact(chunk->base, pcpu_chunk_bytes);
	kmm_kfree(chunk);
}

static struct pcpu_chunk *chunk_of(const char *ptr)
{
	for (struct list_head *e = pcpu_chunks.next; e != &pcpu_chunks; e = e->next) {
		struct pcpu_chunk *chunk = list_entry(e, struct pcpu_chunk, list);

		if (ptr >= chunk->base && ptr < chunk->base + pcpu_unit_size)
			return chunk;
	}
	return NULL;
}

static void *area_alloc(size_t size, size_t align, gfp_t gfp)
{
	unsigned int n = (unsigned int)((size + PCPU_MIN_ALLOC - 1) / PCPU_MIN_ALLOC);
	unsigned int step = align > PCPU_MIN_ALLOC ? (unsigned int)(align / PCPU_MIN_ALLOC) : 1;
	struct pcpu_chunk *chunk = NULL;
	int start = -1;

	for (struct list_head *e = pcpu_chunks.next; e != &pcpu_chunks && start < 0; e = e->next) {
		chunk = list_entry(e, struct pcpu_chunk, list);
		if (chunk->free_granules >= n)
			start = find_area(chunk, n, step);
	}
	if (start < 0) {
		chunk = chunk_create(gfp);
		if (!chunk)
			return NULL;
		start = 0;
	}
	bitmap_assign(chunk->alloc_map, (unsigned int)start, n, true);
	bitmap_assign(chunk->bound_map, (unsigned int)start, 1, true);
	chunk->free_granules -= n;

	char *ptr = chunk->base + (size_t)start * PCPU_MIN_ALLOC;
	for (unsigned int cpu = 0; cpu < pcpu_nr_units; cpu++)
		memset(ptr + cpu * pcpu_unit_size, 0, (size_t)n * PCPU_MIN_ALLOC);
	return ptr;
}

/* ---------------------------------------------------------------------------
 * Allocation API
 */

KMM_API void *kmm___alloc_percpu_gfp(size_t size, size_t align, gfp_t gfp)
{
	void *ptr = NULL;

	if (size == 0 || align == 0 || (align & (align - 1))) {
		errno = EINVAL;
		return NULL;
	}
	kmm_lock(&pcpu_lock);
	if (pcpu_setup() && size <= pcpu_unit_size && align <= os_page_size)
		ptr = area_alloc(size, align, gfp);
	kmm_unlock(&pcpu_lock);
	if (!ptr)
		errno = ENOMEM;
	return ptr;
}

KMM_API void kmm_free_percpu(void *ptr)
{
	struct pcpu_chunk *chunk;
	unsigned int first, n = 1;

	if (!ptr)
		return;
	kmm_lock(&pcpu_lock);
	chunk = chunk_of(ptr);
	if (!chunk || ((char *)ptr - chunk->base) % PCPU_MIN_ALLOC)
		kmm_bug("BUG: free_percpu(%p): not a per-CPU allocation", ptr);
	first = (unsigned int)(((char *)ptr - chunk->base) / PCPU_MIN_ALLOC);
	if (!bitmap_test(chunk->bound_map, first) || !bitmap_test(chunk->alloc_map, first))
		kmm_bug("BUG: free_percpu(%p): not the start of a live per-CPU area "
			"(double free?)", ptr);
	while (first + n < pcpu_nr_granules && bitmap_test(chunk->alloc_map, first + n) &&
	       !bitmap_test(chunk->bound_map, first + n))
		n++;
	bitmap_assign(chunk->alloc_map, first, n, false);
	bitmap_assign(chunk->bound_map, first, 1, false);
	chunk->free_granules += n;
	if (chunk->free_granules == pcpu_nr_granules &&
	    !(pcpu_chunks.next == &chunk->list && pcpu_chunks.prev == &chunk->list))
		chunk_destroy(chunk);
	kmm_unlock(&pcpu_lock);
}

KMM_API void kmm_percpu_info(struct kmm_percpu_info *info)
{
	*info = (struct kmm_percpu_info){ 0 };
	kmm_lock(&pcpu_lock);
	if (pcpu_setup()) {
		info->unit_size = pcpu_unit_size;
		info->nr_units = pcpu_nr_units;
		info->rseq = pcpu_use_rseq;
	}
	for (struct list_head *e = pcpu_chunks.next; e != &pcpu_chunks; e = e->next) {
		struct pcpu_chunk *chunk = list_entry(e, struct pcpu_chunk, list);

		info->nr_chunks++;
		info->used_bytes += (size_t)(pcpu_nr_granules - chunk->free_granules) *
				    PCPU_MIN_ALLOC;
	}
	kmm_unlock(&pcpu_lock);
}

/* ---------------------------------------------------------------------------
 * Static per-CPU sections
 */

static char *static_copy(const char *var)
{
	unsigned int n = atomic_load_explicit(&nr_statics, memory_order_acquire);

	for (unsigned int i = 0; i < n; i++) {
		const struct pcpu_static *st = &pcpu_statics[i];

		if (var >= st->start && var < st->stop)
			return st->copy + (var - st->start);
	}
	return NULL;
}

/* Registers [start, stop): every CPU's copy begins as the section's bytes. */
static char *static_register(const char *start, const char *stop)
{
	size_t bytes = (size_t)(stop - start);
	unsigned int n = atomic_load_explicit(&nr_statics, memory_order_relaxed);
	char *copy;

	if (n == PCPU_MAX_STATIC)
		kmm_bug("per-CPU variables: more than %d objects define them", PCPU_MAX_STATIC);
	if (!pcpu_setup() || bytes > pcpu_unit_size)
		kmm_bug("per-CPU variables: a %u-byte kmm_percpu section does not fit a unit",
			(unsigned int)bytes);
	copy = area_alloc(bytes, os_page_size, GFP_KERNEL);
	if (!copy)
		kmm_bug("per-CPU variables: no memory for a %u-byte section", (unsigned int)bytes);
	for (unsigned int cpu = 0; cpu < pcpu_nr_units; cpu++)
		memcpy(copy + cpu * pcpu_unit_size, start, bytes);
	pcpu_statics[n] = (struct pcpu_static){ .start = start, .stop = stop, .copy = copy };
	atomic_store_explicit(&nr_statics, n + 1, memory_order_release);
	return copy;
}

KMM_API void *kmm_percpu_static_base(const void *var, const char *start, const char *stop)
{
	char *copy = static_copy(var);

	if (likely(copy))
		return copy;
	kmm_lock(&pcpu_lock);
	copy = static_copy(var);
	if (!copy)
		copy = static_register(start, stop) + ((const char *)var - start);
	kmm_unlock(&pcpu_lock);
	return copy;
}

/*
 * CPU 0's copy of pcp. Per-CPU allocations live in page-allocator memory;
 * anything else must be a static variable of a registered section (one
 * used from an object other than its own whose section is not registered
 * yet has no copy kmm could find).
 */
char *pcpu_base(const void *pcp)
{
	char *copy;

	if (likely(addr_to_page(pcp)))
		return (char *)pcp;
	copy = static_copy(pcp);
	if (!copy)
		kmm_bug("BUG: this_cpu/per_cpu on %p: not per-CPU memory, nor a DEFINE_PER_CPU "
			"variable of an object that has used its per-CPU variables", pcp);
	return copy;
}

KMM_API void *kmm_per_cpu_ptr(void *ptr, unsigned int cpu)
{
	if (!ptr)
		return NULL;
	if (cpu >= topology_nr_possible_cpus())
		kmm_bug("BUG: per_cpu_ptr(%p, %u): CPU %u is not possible", ptr, cpu, cpu);
	return pcpu_base(ptr) + (size_t)cpu * pcpu_unit_size;
}

/* ---------------------------------------------------------------------------
 * this_cpu operations
 *
 * Values travel as 64-bit integers; each operation reads and writes only
 * the size of the variable, so signed and unsigned types of any width up to
 * 8 bytes behave as their own arithmetic does.
 */

static uint64_t load_value(const void *p, size_t size)
{
	switch (size) {
	case 1: return *(const uint8_t *)p;
	case 2: return *(const uint16_t *)p;
	case 4: return *(const uint32_t *)p;
	case 8: return *(const uint64_t *)p;
	}
	kmm_bug("this_cpu operation on a %u-byte variable (1, 2, 4 or 8 only)", (unsigned int)size);
}

static void store_value(void *p, uint64_t v, size_t size)
{
	switch (size) {
	case 1: *(uint8_t *)p = (uint8_t)v; return;
	case 2: *(uint16_t *)p = (uint16_t)v; return;
	case 4: *(uint32_t *)p = (uint32_t)v; return;
	case 8: *(uint64_t *)p = v; return;
	}
	kmm_bug("this_cpu operation on a %u-byte variable (1, 2, 4 or 8 only)", (unsigned int)size);
}

/* The current CPU's copy, for the atomic path (the CPU is only a hint). */
static void *this_copy(char *base)
{
	return base + (size_t)kmm_current_cpu() * pcpu_unit_size;
}

static uint64_t atomic_add_return(void *p, uint64_t delta, size_t size)
{
	switch (size) {
	case 1: return __atomic_add_fetch((uint8_t *)p, (uint8_t)delta, __ATOMIC_RELAXED);
	case 2: return __atomic_add_fetch((uint16_t *)p, (uint16_t)delta, __ATOMIC_RELAXED);
	case 4: return __atomic_add_fetch((uint32_t *)p, (uint32_t)delta, __ATOMIC_RELAXED);
	case 8: return __atomic_add_fetch((uint64_t *)p, delta, __ATOMIC_RELAXED);
	}
	return load_value(p, size);
}

/* Compare-and-swap on one copy; returns the value found there. */
static uint64_t atomic_cmpxchg(void *p, uint64_t expect, uint64_t newv, size_t size)
{
	switch (size) {
	case 1: {
		uint8_t e = (uint8_t)expect;
		__atomic_compare_exchange_n((uint8_t *)p, &e, (uint8_t)newv, false,
					    __ATOMIC_RELAXED, __ATOMIC_RELAXED);
		return e;
	}
	case 2: {
		uint16_t e = (uint16_t)expect;
		__atomic_compare_exchange_n((uint16_t *)p, &e, (uint16_t)newv, false,
					    __ATOMIC_RELAXED, __ATOMIC_RELAXED);
		return e;
	}
	case 4: {
		uint32_t e = (uint32_t)expect;
		__atomic_compare_exchange_n((uint32_t *)p, &e, (uint32_t)newv, false,
					    __ATOMIC_RELAXED, __ATOMIC_RELAXED);
		return e;
	}
	case 8: {
		uint64_t e = expect;
		__atomic_compare_exchange_n((uint64_t *)p, &e, newv, false,
					    __ATOMIC_RELAXED, __ATOMIC_RELAXED);
		return e;
	}
	}
	return load_value(p, size);
}

static uint64_t atomic_load_value(const void *p, size_t size)
{
	switch (size) {
	case 1: return __atomic_load_n((const uint8_t *)p, __ATOMIC_RELAXED);
	case 2: return __atomic_load_n((const uint16_t *)p, __ATOMIC_RELAXED);
	case 4: return __atomic_load_n((const uint32_t *)p, __ATOMIC_RELAXED);
	case 8: return __atomic_load_n((const uint64_t *)p, __ATOMIC_RELAXED);
	}
	return load_value(p, size);
}

#ifdef KMM_HAVE_RSEQ_OPS
static bool rseq_size_ok(size_t size)
{
	return pcpu_use_rseq && (size == 4 || size == 8);
}
#endif

/* this CPU's copy += delta; returns the new value. */
static uint64_t op_add_return(char *base, uint64_t delta, size_t size)
{
#ifdef KMM_HAVE_RSEQ_OPS
	if (rseq_size_ok(size))
		return size == 8 ? rseq_percpu_add_return_u64(base, pcpu_unit_size, delta)
				 : rseq_percpu_add_return_u32(base, pcpu_unit_size, (uint32_t)delta);
#endif
	return atomic_add_return(this_copy(base), delta, size);
}

/* If this CPU's copy holds expect, it becomes newv; returns what it held. */
uint64_t pcpu_this_cmpxchg(char *base, uint64_t expect, uint64_t newv, size_t size)
{
#ifdef KMM_HAVE_RSEQ_OPS
	if (rseq_size_ok(size))
		return size == 8 ? rseq_percpu_cmpxchg_u64(base, pcpu_unit_size, expect, newv)
				 : rseq_percpu_cmpxchg_u32(base, pcpu_unit_size, (uint32_t)expect,
							   (uint32_t)newv);
#endif
	return atomic_cmpxchg(this_copy(base), expect, newv, size);
}

/* Swaps in newv on whichever CPU the swap commits; returns the old value. */
uint64_t pcpu_this_xchg(char *base, uint64_t newv, size_t size)
{
	uint64_t old = atomic_load_value(this_copy(base), size), seen;

	while ((seen = pcpu_this_cmpxchg(base, old, newv, size)) != old)
		old = seen;
	return old;
}

uint64_t pcpu_this_read(char *base, size_t size)
{
	return atomic_load_value(this_copy(base), size);
}

KMM_API void kmm_this_cpu_read(const void *pcp, void *out, size_t size)
{
	store_value(out, pcpu_this_read(pcpu_base(pcp), size), size);
}

KMM_API void kmm_this_cpu_write(void *pcp, const void *value, size_t size)
{
	pcpu_this_xchg(pcpu_base(pcp), load_value(value, size), size);
}

KMM_API void kmm_this_cpu_add(void *pcp, const void *delta, size_t size)
{
	op_add_return(pcpu_base(pcp), load_value(delta, size), size);
}

KMM_API void kmm_this_cpu_add_return(void *pcp, void *delta_then_result, size_t size)
{
	uint64_t v = op_add_return(pcpu_base(pcp), load_value(delta_then_result, size), size);

	store_value(delta_then_result, v, size);
}

KMM_API void kmm_this_cpu_xchg(void *pcp, void *value_then_old, size_t size)
{
	uint64_t old = pcpu_this_xchg(pcpu_base(pcp), load_value(value_then_old, size), size);

	store_value(value_then_old, old, size);
}

KMM_API bool kmm_this_cpu_cmpxchg(void *pcp, void *expect_then_old, const void *newv, size_t size)
{
	uint64_t expect = load_value(expect_then_old, size);
	uint64_t old = pcpu_this_cmpxchg(pcpu_base(pcp), expect, load_value(newv, size), size);

	store_value(expect_then_old, old, size);
	return old == expect;
}
