/*
 * <kmm/gfp.h> - the page allocator: GFP flags and the buddy allocator's API
 * in the kernel's spellings. Each kernel name is an inline wrapper or macro
 * over an exported kmm_ symbol, so an LD_PRELOADed libkmm never captures a
 * program's own alloc_pages.
 *
 * struct page is opaque: reach memory through page_address() and back
 * through virt_to_page().
 */
#ifndef KMM_GFP_H
#define KMM_GFP_H

#include <stdbool.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef unsigned int gfp_t;

/*
 * Modifier bits. What each means in user space:
 *   __GFP_DIRECT_RECLAIM  the caller may sleep: wait on kmm's locks and ask
 *                         the OS for more memory (mmap).
 *   __GFP_KSWAPD_RECLAIM  a failed or reserve-dipping request marks the zone
 *                         so that the next sleeping allocation tops the
 *                         reserve back up (the kernel's kswapd wake-up).
 *   __GFP_HIGH            may use the reserve below the min watermark, and
 *                         may ask the OS when even the reserve is gone.
 *   __GFP_IO, __GFP_FS    accepted for source compatibility; no meaning.
 *   __GFP_ZERO            the memory comes back zeroed (without a memset
 *                         when kmm knows it is zero already).
 *   __GFP_NOWARN          no warning on stderr when the request fails.
 *   __GFP_NORETRY         when the OS refuses memory, fail at once instead
 *                         of draining the per-CPU lists and retrying.
 *   __GFP_NOFAIL          never fail: wait and retry until memory appears.
 */
#define __GFP_HIGH 0x20u
#define __GFP_IO 0x40u
#define __GFP_FS 0x80u
#define __GFP_ZERO 0x100u
#define __GFP_DIRECT_RECLAIM 0x400u
#define __GFP_KSWAPD_RECLAIM 0x800u
#define __GFP_NOWARN 0x2000u
#define __GFP_NOFAIL 0x8000u
#define __GFP_NORETRY 0x10000u
#define __GFP_RECLAIM (__GFP_DIRECT_RECLAIM | __GFP_KSWAPD_RECLAIM)

/*
 * GFP_KERNEL: the normal case; may sleep and map memory, keeps the reserve.
 * GFP_ATOMIC: never sleeps on a lock (spins), may dip into the reserve and
 *             may still ask the OS once the free lists are empty.
 * GFP_NOWAIT: never sleeps, never asks the OS, leaves the reserve alone:
 *             fails fast with NULL and errno = ENOMEM.
 */
#define GFP_KERNEL (__GFP_RECLAIM | __GFP_IO | __GFP_FS)
#define GFP_ATOMIC (__GFP_HIGH | __GFP_KSWAPD_RECLAIM)
#define GFP_NOWAIT (__GFP_KSWAPD_RECLAIM)
#define GFP_USER GFP_KERNEL

/* The largest block the buddy allocator hands out is 2^MAX_PAGE_ORDER pages. */
#define MAX_PAGE_ORDER 10
#define NR_PAGE_ORDERS (MAX_PAGE_ORDER + 1)

struct page;

/* Exported symbols; use the kernel spellings below. */
unsigned long kmm_page_size(void);
unsigned int kmm_page_shift(void);
struct page *kmm_alloc_pages(gfp_t gfp, unsigned int order);
void kmm___free_pages(struct page *page, unsigned int order);
unsigned long kmm___get_free_pages(gfp_t gfp, unsigned int order);
unsigned long kmm_get_zeroed_page(gfp_t gfp);
void kmm_free_pages(unsigned long addr, unsigned int order);
void *kmm_page_address(const struct page *page);
struct page *kmm_virt_to_page(const void *addr);
bool kmm_virt_addr_valid(const void *addr);
void *kmm_alloc_pages_exact(size_t size, gfp_t gfp);
void kmm_free_pages_exact(void *addr, size_t size);
void kmm_drain_all_pages(void);

#ifndef PAGE_SIZE
#define PAGE_SIZE (kmm_page_size())
#endif
#ifndef PAGE_SHIFT
#define PAGE_SHIFT (kmm_page_shift())
#endif
#define PAGE_ALIGN(x) (((x) + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1))

/* The smallest order whose block holds size bytes (0 for size 0). */
static inline int get_order(unsigned long size)
{
	unsigned long pages;

	if (size <= PAGE_SIZE)
		return 0;
	pages = (size - 1) >> PAGE_SHIFT;
	return (int)(sizeof(unsigned long) * 8) - __builtin_clzl(pages);
}

static inline struct page *alloc_pages(gfp_t gfp, unsigned int order)
{
	return kmm_alloc_pages(gfp, order);
}

static inline struct page *alloc_page(gfp_t gfp)
{
	return kmm_alloc_pages(gfp, 0);
}

static inline void __free_pages(struct page *page, unsigned int order)
{
	kmm___free_pages(page, order);
}

static inline void __free_page(struct page *page)
{
	kmm___free_pages(page, 0);
}

static inline unsigned long __get_free_pages(gfp_t gfp, unsigned int order)
{
	return kmm___get_free_pages(gfp, order);
}

static inline unsigned long __get_free_page(gfp_t gfp)
{
	return kmm___get_free_pages(gfp, 0);
}

static inline unsigned long get_zeroed_page(gfp_t gfp)
{
	return kmm_get_zeroed_page(gfp);
}

/* free_pages(0, order) does nothing, as in the kernel. */
static inline void free_pages(unsigned long addr, unsigned int order)
{
	kmm_free_pages(addr, order);
}

static inline void free_page(unsigned long addr)
{
	kmm_free_pages(addr, 0);
}

static inline void *page_address(const struct page *page)
{
	return kmm_page_address(page);
}

/* NULL when addr is not inside memory kmm's page allocator manages. */
static inline struct page *virt_to_page(const void *addr)
{
	return kmm_virt_to_page(addr);
}

/* Whether addr lies in memory kmm's page allocator manages; O(1), never faults. */
static inline bool virt_addr_valid(const void *addr)
{
	return kmm_virt_addr_valid(addr);
}

/*
 * size bytes rounded up to whole pages, aligned like the order that holds
 * them; the unused tail of that block goes back to the free lists.
 */
static inline void *alloc_pages_exact(size_t size, gfp_t gfp)
{
	return kmm_alloc_pages_exact(size, gfp);
}

static inline void free_pages_exact(void *addr, size_t size)
{
	kmm_free_pages_exact(addr, size);
}

/* Returns every per-CPU list's pages to the buddy free lists. */
static inline void drain_all_pages(void)
{
	kmm_drain_all_pages();
}

#ifdef __cplusplus
}
#endif

#endif
