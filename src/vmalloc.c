/*
 * vmalloc.c - large allocations, each its own mapping with a guard page
 * after it, and the registry of areas (the kernel's vmap_area tree; here a
 * sorted array, searched in O(log n)).
 *
 * Locking: vmap_lock protects the registry. System calls run outside it,
 * except the ones that must be atomic with the registry update.
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

static struct kmm_lock vmap_lock = KMM_LOCK_INIT;
static struct vmap_area *areas;	/* sorted by addr */
static size_t nr_areas, max_areas;

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
static struct vmap_area *area_at(uintptr_t a)
{
	size_t i = area_search(a);

	return i < nr_areas && areas[i].addr == a ? &areas[i] : NULL;
}

/* vmap_lock held. Grows the array from the page allocator. */
static bool area_reserve(void)
{
	size_t want = max_areas ? 2 * max_areas : 64;
	struct vmap_area *bigger;

	if (nr_areas < max_areas)
		return true;
	bigger = kmm_alloc_pages_exact(want * sizeof(*bigger), GFP_KERNEL | __GFP_NOWARN);
	if (!bigger)
		return false;
	if (areas) {
		memcpy(bigger, areas, nr_areas * sizeof(*areas));
		kmm_free_pages_exact(areas, max_areas * sizeof(*areas));
	}
	areas = bigger;
	max_areas = want;
	return true;
}

static bool area_insert(const struct vmap_area *va)
{
	size_t i;

	kmm_lock(&vmap_lock);
	if (!area_reserve()) {
		kmm_unlock(&vmap_lock);
		return false;
	}
	i = area_search(va->addr);
	memmove(&areas[i + 1], &areas[i], (nr_areas - i) * sizeof(*areas));
	areas[i] = *va;
	nr_areas++;
	kmm_unlock(&vmap_lock);
	return true;
}

/* vmap_lock held. */
static void area_remove(struct vmap_area *va)
{
	size_t i = (size_t)(va - areas);

	memmove(&areas[i], &areas[i + 1], (nr_areas - i - 1) * sizeof(*areas));
	nr_areas--;
}

static struct vmap_area take_area(const void *addr, const char *caller)
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

void *vmalloc_caller(size_t size, gfp_t gfp, size_t align, void *caller)
{
	struct vmap_area va = { .caller = caller, .huge = align == HUGE_ALIGN };
	size_t total;
	void *p;

	if (!page_alloc_init())
		return NULL;
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

KMM_API void *kmm_vmalloc(size_t size, gfp_t gfp, bool huge)
{
	return vmalloc_caller(size, gfp, huge ? HUGE_ALIGN : 0, __builtin_return_address(0));
}

KMM_API void kmm_vfree(const void *addr)
{
	struct vmap_area va;

	if (!addr)
		return;
	va = take_area(addr, "vfree");
	unmap_area(&va);
}

size_t vmalloc_size(const void *addr)
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
