/*
 * <kmm/slab.h> - slab caches (kmem_cache_*) and the kmalloc family, in the
 * kernel's spellings over exported kmm_ symbols.
 */
#ifndef KMM_SLAB_H
#define KMM_SLAB_H

#include <stddef.h>
#include <stdint.h>

#include <kmm/gfp.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef unsigned int slab_flags_t;

/*
 * SLAB_HWCACHE_ALIGN  align objects to the cache line (half of it for objects
 *                     no larger than half a line)
 * SLAB_PANIC          creation failure aborts with a message
 * SLAB_POISON         freed objects are filled with 0x6b (last byte 0xa5) and
 *                     checked when handed out again: a write after free is
 *                     reported (not for caches with a constructor)
 * SLAB_RED_ZONE       guard bytes on both sides of each object, checked on
 *                     free: an overflow, underflow or double free is reported
 * Poisoned and red-zoned caches bypass the per-CPU sheaves, so every check
 * runs on every allocation and free. A report names the cache and the object,
 * then aborts.
 */
#define SLAB_RED_ZONE 0x00000400u
#define SLAB_POISON 0x00000800u
#define SLAB_HWCACHE_ALIGN 0x00002000u
#define SLAB_PANIC 0x00040000u

/* kmalloc(0) returns this: not NULL, and any access faults. */
#define ZERO_SIZE_PTR ((void *)16)
#define ZERO_OR_NULL_PTR(x) ((unsigned long)(x) <= (unsigned long)ZERO_SIZE_PTR)

struct kmem_cache;

struct kmem_cache *kmm_kmem_cache_create(const char *name, unsigned int size,
					 unsigned int align, slab_flags_t flags,
					 void (*ctor)(void *));
void kmm_kmem_cache_destroy(struct kmem_cache *s);
void *kmm_kmem_cache_alloc(struct kmem_cache *s, gfp_t gfp);
void kmm_kmem_cache_free(struct kmem_cache *s, void *obj);
int kmm_kmem_cache_shrink(struct kmem_cache *s);
int kmm_kmem_cache_alloc_bulk(struct kmem_cache *s, gfp_t gfp, size_t nr, void **p);
void kmm_kmem_cache_free_bulk(struct kmem_cache *s, size_t nr, void **p);
unsigned int kmm_kmem_cache_size(struct kmem_cache *s);

void *kmm_kmalloc(size_t size, gfp_t gfp);
void kmm_kfree(const void *p);
void *kmm_krealloc(const void *p, size_t new_size, gfp_t gfp);
size_t kmm_ksize(const void *p);
void kmm_kfree_sensitive(const void *p);
void *kmm_kmalloc_array(size_t n, size_t size, gfp_t gfp);
char *kmm_kstrdup(const char *s, gfp_t gfp);
char *kmm_kstrndup(const char *s, size_t max, gfp_t gfp);
void *kmm_kmemdup(const void *src, size_t len, gfp_t gfp);
void *kmm_kvmalloc(size_t size, gfp_t gfp);
void kmm_kvfree(const void *p);

/* /proc/slabinfo, one entry per cache. */
struct kmm_slabinfo {
	char name[32];
	unsigned long active_objs;	/* not free in their slabs (sheaf-cached count as active, as in the kernel) */
	unsigned long num_objs;		/* in all slabs */
	unsigned long cached_objs;	/* of the active ones, parked in the node's barn */
	unsigned int objsize;		/* the size asked for */
	unsigned int stride;		/* bytes per object in the slab, with padding and debug data */
	unsigned int objperslab;
	unsigned int pagesperslab;
	unsigned long active_slabs;	/* slabs with at least one active object */
	unsigned long num_slabs;
};

/*
 * Fills up to max entries and returns the number of caches (which may be
 * more than max). Safe from any thread at any time.
 */
int kmm_slabinfo(struct kmm_slabinfo *info, int max);

/*
 * How sheaves are kept: "rseq" (per CPU, restartable sequences), "thread"
 * (per thread: no rseq, or KMM_RSEQ=0 in the environment) or "off" (the slab
 * layer has not started yet).
 */
const char *kmm_slab_mode(void);

/* Writes every cache in /proc/slabinfo's format (version 2.1) to fd. */
void kmm_show_slabinfo(int fd);

static inline struct kmem_cache *kmem_cache_create(const char *name, unsigned int size,
						   unsigned int align, slab_flags_t flags,
						   void (*ctor)(void *))
{
	return kmm_kmem_cache_create(name, size, align, flags, ctor);
}

static inline void kmem_cache_destroy(struct kmem_cache *s)
{
	kmm_kmem_cache_destroy(s);
}

static inline void *kmem_cache_alloc(struct kmem_cache *s, gfp_t gfp)
{
	return kmm_kmem_cache_alloc(s, gfp);
}

static inline void *kmem_cache_zalloc(struct kmem_cache *s, gfp_t gfp)
{
	return kmm_kmem_cache_alloc(s, gfp | __GFP_ZERO);
}

static inline void kmem_cache_free(struct kmem_cache *s, void *obj)
{
	kmm_kmem_cache_free(s, obj);
}

static inline int kmem_cache_shrink(struct kmem_cache *s)
{
	return kmm_kmem_cache_shrink(s);
}

/* All nr objects or none: returns nr, or 0 with nothing allocated. */
static inline int kmem_cache_alloc_bulk(struct kmem_cache *s, gfp_t gfp, size_t nr, void **p)
{
	return kmm_kmem_cache_alloc_bulk(s, gfp, nr, p);
}

static inline void kmem_cache_free_bulk(struct kmem_cache *s, size_t nr, void **p)
{
	kmm_kmem_cache_free_bulk(s, nr, p);
}

static inline unsigned int kmem_cache_size(struct kmem_cache *s)
{
	return kmm_kmem_cache_size(s);
}

static inline void *kmalloc(size_t size, gfp_t gfp)
{
	return kmm_kmalloc(size, gfp);
}

static inline void *kzalloc(size_t size, gfp_t gfp)
{
	return kmm_kmalloc(size, gfp | __GFP_ZERO);
}

/* NULL (errno = ENOMEM) when n * size overflows. */
static inline void *kmalloc_array(size_t n, size_t size, gfp_t gfp)
{
	return kmm_kmalloc_array(n, size, gfp);
}

static inline void *kcalloc(size_t n, size_t size, gfp_t gfp)
{
	return kmm_kmalloc_array(n, size, gfp | __GFP_ZERO);
}

static inline void kfree(const void *p)
{
	kmm_kfree(p);
}

static inline void *krealloc(const void *p, size_t new_size, gfp_t gfp)
{
	return kmm_krealloc(p, new_size, gfp);
}

static inline size_t ksize(const void *p)
{
	return kmm_ksize(p);
}

static inline void kfree_sensitive(const void *p)
{
	kmm_kfree_sensitive(p);
}

static inline char *kstrdup(const char *s, gfp_t gfp)
{
	return kmm_kstrdup(s, gfp);
}

static inline char *kstrndup(const char *s, size_t max, gfp_t gfp)
{
	return kmm_kstrndup(s, max, gfp);
}

static inline void *kmemdup(const void *src, size_t len, gfp_t gfp)
{
	return kmm_kmemdup(src, len, gfp);
}

static inline void *kvmalloc(size_t size, gfp_t gfp)
{
	return kmm_kvmalloc(size, gfp);
}

static inline void *kvzalloc(size_t size, gfp_t gfp)
{
	return kmm_kvmalloc(size, gfp | __GFP_ZERO);
}

static inline void kvfree(const void *p)
{
	kmm_kvfree(p);
}

#ifdef __cplusplus
}
#endif

#endif
