/*
 * vmalloc.c - large allocations, each its own mapping with a guard page
 * after it, and the registry of areas (the kernel's vmap_area tree; here a
 * sorted array, searched in O(log n); its first 64 entries are static, and
 * an area needs nothing of the page allocator but the page size, so a
 * process's first big buffers do not start it).
 *
 * kmalloc's blocks beyond the largest buddy block are vmalloc areas too.
 * When kfree gives one back it is kept for a while (the recycle cache: a
 * few areas, 64 MiB at most) and handed to the next kmalloc it fits, so a
 * program that allocates and frees the same big buffer in a loop does not
 * map, fault in and unmap it every time. Cached areas leave after the page
 * allocator's decay time, checked on every large kmalloc and kfree, and
 * all at once on kmalloc_trim (malloc_trim).
 *
 * Locking: vmap_lock protects the registry and the recycle cache. System
 * calls run outside it, except the ones that must be atomic with the
 * registry update.
 */
#include "vmalloc.h"

#include <errno.h>
#include <string.h>

#include <kmm/mmzone.h>
#include <kmm/vmalloc.h>

#include "internal.h"
#include "lock.h"
#include "os.h"
#include "page_alloc.h"

#define HUGE_ALIGN (2UL << 20)

struct vmap_area {
	uintptr_t addr;
	size_t size;		/* usable bytes, whole pages */
	void *caller;
	bool huge;
};

struct kmm_lock vmap_lock KMM_HOT_DATA = KMM_LOCK_INIT;
static struct vmap_area *areas KMM_HOT_DATA;	/* sorted by addr */
static size_t nr_areas KMM_HOT_DATA, max_areas KMM_HOT_DATA;

#define RECYCLE_SLOTS 4
#define RECYCLE_MAX_BYTES (64UL << 20)

struct recycled_area {
	struct vmap_area va;
	unsigned long freed_ms;
};

/* Areas kfree gave back, out of the registry; vmap_lock. */
static struct recycled_area recycled[RECYCLE_SLOTS] KMM_HOT_DATA;
static unsigned int nr_recycled KMM_HOT_DATA;
static size_t recycled_bytes KMM_HOT_DATA;

/* vmap_lock held. Index of the first area with addr >= a. */
static size_t area_search(uintptr_t a)
{
	size_t lo = 0, hi = nr_areas;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (areas[mid].addr < a)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* vmap_lock held. The area starting exactly at a, or NULL. */
KMM_HOT_TEXT static struct vmap_area *area_at(uintptr_t a)
{
	size_t i = area_search(a);

	return i < nr_areas && areas[i].addr == a ? &areas[i] : NULL;
}

/*
 * The first areas' entries are static, so that a short process's few big
 * buffers (see the boot arena in preload/malloc.c) take no page from the
 * page allocator: its first page splits a fresh section and touches five
 * pages of descriptors.
 */
#define BOOT_AREAS 64
static struct vmap_area boot_areas[BOOT_AREAS];

/* vmap_lock held. Grows the array, past the static one from the page allocator. */
KMM_HOT_TEXT static bool area_reserve(void)
{
	size_t want = 2 * max_areas;
	struct vmap_area *bigger;

	if (nr_areas < max_areas)
		return true;
	if (!areas) {
		areas = boot_areas;
		max_areas = BOOT_AREAS;
		return true;
	}
	bigger = kmm_alloc_pages_exact(want * sizeof(*bigger), GFP_KERNEL | __GFP_NOWARN);
	if (!bigger)
		return false;
	memcpy(bigger, areas, nr_areas * sizeof(*areas));
	if (areas != boot_areas)
		kmm_free_pages_exact(areas, max_areas * sizeof(*areas));
	areas = bigger;
	max_areas = want;
	return true;
}

/* vmap_lock held. */
KMM_HOT_TEXT static bool __area_insert(const struct vmap_area *va)
{
	size_t i;

	if (!area_reserve())
		return false;
	i = area_search(va->addr);
	memmove(&areas[i + 1], &areas[i], (nr_areas - i) * sizeof(*areas));
	areas[i] = *va;
	nr_areas++;
	return true;
}

static bool area_insert(const struct vmap_area *va)
{
	bool ok;

	kmm_lock(&vmap_lock);
	ok = __area_insert(va);
	kmm_unlock(&vmap_lock);
	return ok;
}

/* vmap_lock held. */
static void area_remove(struct vmap_area *va)
{
	size_t i = (size_t)(va - areas);

	memmove(&areas[i], &areas[i + 1], (nr_areas - i - 1) * sizeof(*areas));
	nr_areas--;
}

KMM_HOT_TEXT static struct vmap_area take_area(const void *addr, const char *caller)
{
	struct vmap_area *va, copy;

	kmm_lock(&vmap_lock);
	va = area_at((uintptr_t)addr);
	if (!va) {
		kmm_unlock(&vmap_lock);
		kmm_bug("BUG: %s(%p): not an address vmalloc gave out", caller, addr);
	}
	copy = *va;
	area_remove(va);
	kmm_unlock(&vmap_lock);
	return copy;
}

static void unmap_area(const struct vmap_area *va)
{
	os_unmap((void *)va->addr, va->size + os_page_size);
}

static void *map_area(size_t total, size_t align)
{
	return align ? os_map_aligned(total, align) : os_map(total);
}

KMM_HOT_TEXT void *vmalloc_caller(size_t size, gfp_t gfp, size_t align, void *caller)
{
	struct vmap_area va = { .caller = caller, .huge = align == HUGE_ALIGN };
	size_t total;
	void *p;

	/*
	 * The page size is all an area needs: a short process's few big
	 * buffers (preload/malloc.c) do not start the page allocator.
	 */
	os_init();
	va.size = (size + os_page_size - 1) & ~(os_page_size - 1);
	total = va.size + os_page_size;
	if (size == 0 || va.size < size || total < va.size) {
		errno = size ? ENOMEM : EINVAL;
		return NULL;
	}
	va.huge = va.huge && va.size >= HUGE_ALIGN;
	p = map_area(total, va.huge || align > os_page_size ? align : 0);
	if (!p && !(gfp & __GFP_NORETRY)) {
		/* Free sections may hold the address space we need (RLIMIT_AS). */
		kmm_page_reclaim();
		p = map_area(total, va.huge || align > os_page_size ? align : 0);
	}
	if (!p)
		return NULL;
	va.addr = (uintptr_t)p;
	os_protect_none((char *)p + va.size, os_page_size);
	if (va.huge)
		os_advise_huge(p, va.size);
	if (!area_insert(&va)) {
		unmap_area(&va);
		errno = ENOMEM;
		return NULL;
	}
	/* Fresh mappings are zero: __GFP_ZERO costs nothing. */
	return p;
}

/* vmap_lock held. Moves the expired areas (all, if everything) to out. */
KMM_HOT_TEXT static unsigned int recycle_expire(struct vmap_area *out, bool everything)
{
	long decay = page_decay_ms();
	unsigned long now = kmm_now_ms();
	unsigned int n = 0, kept = 0;

	for (unsigned int i = 0; i < nr_recycled; i++) {
		struct recycled_area *r = &recycled[i];

		if (everything || (decay >= 0 && now - r->freed_ms >= (unsigned long)decay)) {
			recycled_bytes -= r->va.size;
			out[n++] = r->va;
		} else {
			recycled[kept++] = *r;
		}
	}
	nr_recycled = kept;
	return n;
}

static void unmap_all(const struct vmap_area *va, unsigned int n)
{
	for (unsigned int i = 0; i < n; i++)
		unmap_area(&va[i]);
}

/*
 * vmap_lock held. The smallest cached area that holds size bytes without
 * keeping more than twice as much; it is back in the registry. Else NULL.
 */
static void *recycle_take(size_t size, void *caller)
{
	int best = -1;

	for (unsigned int i = 0; i < nr_recycled; i++) {
		size_t have = recycled[i].va.size;

		if (have >= size && have / 2 <= size &&
		    (best < 0 || have < recycled[best].va.size))
			best = (int)i;
	}
	if (best < 0 || !__area_insert(&recycled[best].va))
		return NULL;
	struct vmap_area *va = area_at(recycled[best].va.addr);

	va->caller = caller;
	recycled_bytes -= va->size;
	recycled[best] = recycled[--nr_recycled];
	return (void *)va->addr;
}

KMM_HOT_TEXT void *vmalloc_recycled(size_t size, gfp_t gfp, void *caller)
{
	struct vmap_area expired[RECYCLE_SLOTS];
	unsigned int n;
	void *p;

	kmm_lock(&vmap_lock);
	n = recycle_expire(expired, false);
	p = recycle_take(size, caller);
	kmm_unlock(&vmap_lock);
	unmap_all(expired, n);
	if (!p)
		return vmalloc_caller(size, gfp, 0, caller);
	if (gfp & __GFP_ZERO)
		memset(p, 0, size);
	return p;
}

KMM_HOT_TEXT void vfree_recycle(const void *addr)
{
	struct vmap_area expired[RECYCLE_SLOTS + 1];
	struct vmap_area va = take_area(addr, "kfree");
	unsigned int n;

	if (va.huge || va.size > RECYCLE_MAX_BYTES || page_decay_ms() == 0) {
		unmap_area(&va);
		return;
	}
	kmm_lock(&vmap_lock);
	n = recycle_expire(expired, false);
	/* Full, or over budget: the oldest area leaves. */
	while (nr_recycled && (nr_recycled == RECYCLE_SLOTS ||
			       recycled_bytes + va.size > RECYCLE_MAX_BYTES)) {
		expired[n++] = recycled[0].va;
		recycled_bytes -= recycled[0].va.size;
		memmove(&recycled[0], &recycled[1], --nr_recycled * sizeof(recycled[0]));
	}
	recycled[nr_recycled++] = (struct recycled_area){ .va = va, .freed_ms = kmm_now_ms() };
	recycled_bytes += va.size;
	kmm_unlock(&vmap_lock);
	unmap_all(expired, n);
}

KMM_HOT_TEXT void vmalloc_recycle_drain(void)
{
	struct vmap_area expired[RECYCLE_SLOTS];
	unsigned int n;

	kmm_lock(&vmap_lock);
	n = recycle_expire(expired, true);
	kmm_unlock(&vmap_lock);
	unmap_all(expired, n);
}

KMM_API void *kmm_vmalloc(size_t size, gfp_t gfp, bool huge)
{
	return vmalloc_caller(size, gfp, huge ? HUGE_ALIGN : 0, __builtin_return_address(0));
}

KMM_HOT_TEXT KMM_API void kmm_vfree(const void *addr)
{
	struct vmap_area va;

	if (!addr)
		return;
	va = take_area(addr, "vfree");
	unmap_area(&va);
}

KMM_HOT_TEXT size_t vmalloc_size(const void *addr)
{
	struct vmap_area *va;
	size_t size = 0;

	kmm_lock(&vmap_lock);
	va = area_at((uintptr_t)addr);
	if (va)
		size = va->size;
	kmm_unlock(&vmap_lock);
	return size;
}

/* Shrinks in place: unmap the tail, the first unused page becomes the guard. */
static void *vrealloc_shrink(struct vmap_area *va, size_t new_size)
{
	char *p = (char *)va->addr;

	os_unmap(p + new_size + os_page_size, va->size - new_size);
	os_protect_none(p + new_size, os_page_size);
	va->size = new_size;
	return p;
}

/*
 * Grows by moving the usable part with mremap to a larger mapping, whose last
 * page becomes the new guard; the old guard is unmapped. On failure the area
 * is untouched.
 */
static void *vrealloc_grow(struct vmap_area *va, size_t new_size)
{
	char *old = (char *)va->addr;
	char *p = os_remap(old, va->size, new_size + os_page_size);

	if (!p) {
		kmm_page_reclaim(); /* as in vmalloc_caller() */
		p = os_remap(old, va->size, new_size + os_page_size);
	}
	if (!p)
		return NULL;
	os_unmap(old + va->size, os_page_size);
	os_protect_none(p + new_size, os_page_size);
	va->addr = (uintptr_t)p;
	va->size = new_size;
	return p;
}

KMM_API void *kmm_vrealloc(const void *addr, size_t size, gfp_t gfp)
{
	struct vmap_area va;
	size_t new_size;
	void *p;

	if (!addr)
		return vmalloc_caller(size, gfp, 0, __builtin_return_address(0));
	if (size == 0) {
		kmm_vfree(addr);
		return NULL;
	}
	new_size = (size + os_page_size - 1) & ~(os_page_size - 1);
	if (new_size < size) {
		errno = ENOMEM;
		return NULL;
	}
	va = take_area(addr, "vrealloc");
	if (new_size < va.size)
		p = vrealloc_shrink(&va, new_size);
	else if (new_size > va.size)
		p = vrealloc_grow(&va, new_size);
	else
		p = (void *)addr;
	if (!area_insert(&va) && p) {
		/* Registry full and no memory to grow it: give the area up cleanly. */
		unmap_area(&va);
		errno = ENOMEM;
		return NULL;
	}
	return p;
}

void vmalloc_totals(size_t *nr, size_t *bytes)
{
	kmm_lock(&vmap_lock);
	*nr = nr_areas;
	*bytes = 0;
	for (size_t i = 0; i < nr_areas; i++)
		*bytes += areas[i].size + os_page_size;
	kmm_unlock(&vmap_lock);
}

KMM_API bool kmm_is_vmalloc_addr(const void *addr)
{
	uintptr_t a = (uintptr_t)addr;
	bool found = false;
	size_t i;

	kmm_lock(&vmap_lock);
	i = area_search(a + 1);
	if (i > 0 && a >= areas[i - 1].addr && a < areas[i - 1].addr + areas[i - 1].size)
		found = true;
	kmm_unlock(&vmap_lock);
	return found;
}

/* vmap_lock held. */
static void fill_info(struct kmm_vmallocinfo *info, const struct vmap_area *va)
{
	info->addr = (void *)va->addr;
	info->size = va->size + os_page_size;
	info->nr_pages = va->size >> os_page_shift;
	info->huge = va->huge;
	info->caller = va->caller;
}

KMM_API int kmm_vmallocinfo(struct kmm_vmallocinfo *info, int max)
{
	int count;

	kmm_lock(&vmap_lock);
	for (count = 0; (size_t)count < nr_areas; count++) {
		if (count < max)
			fill_info(&info[count], &areas[count]);
	}
	kmm_unlock(&vmap_lock);
	return count;
}

KMM_API void kmm_show_vmallocinfo(int fd)
{
	/* One area at a time, so that no lock is held across the writes. */
	for (size_t i = 0;; i++) {
		struct kmm_vmallocinfo info;
		bool more;

		kmm_lock(&vmap_lock);
		more = i < nr_areas;
		if (more)
			fill_info(&info, &areas[i]);
		kmm_unlock(&vmap_lock);
		if (!more)
			return;
		kmm_dprint(fd, "%p-%p %8zu %p pages=%lu vmalloc%s\n", info.addr,
			   (void *)((char *)info.addr + info.size), info.size, info.caller,
			   info.nr_pages, info.huge ? " huge" : "");
	}
}
