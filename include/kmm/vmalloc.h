/*
 * <kmm/vmalloc.h> - large virtually contiguous allocations, each in its own
 * mapping followed by a guard page: an access past the end faults.
 */
#ifndef KMM_VMALLOC_H
#define KMM_VMALLOC_H

#include <stdbool.h>
#include <stddef.h>

#include <kmm/gfp.h>

#ifdef __cplusplus
extern "C" {
#endif

void *kmm_vmalloc(size_t size, gfp_t gfp, bool huge);
void kmm_vfree(const void *addr);
void *kmm_vrealloc(const void *addr, size_t size, gfp_t gfp);
bool kmm_is_vmalloc_addr(const void *addr);

/* One area, as /proc/vmallocinfo shows it. */
struct kmm_vmallocinfo {
	void *addr;
	size_t size;		/* the mapping, guard page included */
	unsigned long nr_pages;	/* usable pages */
	bool huge;		/* vmalloc_huge: 2 MiB aligned, MADV_HUGEPAGE */
	void *caller;		/* return address of the allocating call */
};

/* Fills up to max entries, in address order; returns the number of areas. */
int kmm_vmallocinfo(struct kmm_vmallocinfo *info, int max);

/* One line per area, like /proc/vmallocinfo:
 * 0x7f...000-0x7f...000   20480 0x5555...(caller) pages=4 vmalloc */
void kmm_show_vmallocinfo(int fd);

/* Memory from fresh mappings is zero: vzalloc costs no memset. */
static inline void *vmalloc(size_t size)
{
	return kmm_vmalloc(size, GFP_KERNEL, false);
}

static inline void *vzalloc(size_t size)
{
	return kmm_vmalloc(size, GFP_KERNEL | __GFP_ZERO, false);
}

static inline void *vmalloc_huge(size_t size, gfp_t gfp)
{
	return kmm_vmalloc(size, gfp, true);
}

static inline void vfree(const void *addr)
{
	kmm_vfree(addr);
}

/* Grows with mremap (no copy); shrinking unmaps the tail. */
static inline void *vrealloc(const void *addr, size_t size, gfp_t gfp)
{
	return kmm_vrealloc(addr, size, gfp);
}

static inline bool is_vmalloc_addr(const void *addr)
{
	return kmm_is_vmalloc_addr(addr);
}

#ifdef __cplusplus
}
#endif

#endif
