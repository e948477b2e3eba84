/*
 * layers.c - kmm's own API, layer by layer: kmalloc per size class,
 * kmem_cache_alloc/free and their bulk forms, alloc_pages per order,
 * vmalloc/vfree and krealloc growth.
 *
 * It links kmm's core statically and leaves malloc to glibc, so the
 * benchmark library's own allocations never share kmm's caches.
 */
#include <string.h>

#include <kmm/kmm.h>

#include "common.h"

#define BATCH 256

static void bm_kmalloc(gb_state *s)
{
	size_t size = (size_t)gb_arg_value(s, 0);

	while (gb_loop_batch(s, BATCH)) {
		for (int i = 0; i < BATCH; i++) {
			void *p = kmalloc(size, GFP_KERNEL);
			gb_do_not_optimize(p);
			kfree(p);
		}
	}
	gb_set_items_processed(s, gb_iterations(s));
	bench_report_memory(s);
}

static struct kmem_cache *bench_cache(gb_state *s)
{
	struct kmem_cache *cache = kmem_cache_create("bench", (unsigned int)gb_arg_value(s, 0),
						     0, 0, NULL);
	if (!cache)
		gb_skip_with_error(s, "kmem_cache_create failed");
	return cache;
}

static void bm_kmem_cache(gb_state *s)
{
	struct kmem_cache *cache = bench_cache(s);

	if (!cache)
		return;
	while (gb_loop_batch(s, BATCH)) {
		for (int i = 0; i < BATCH; i++) {
			void *p = kmem_cache_alloc(cache, GFP_KERNEL);
			gb_do_not_optimize(p);
			kmem_cache_free(cache, p);
		}
	}
	kmem_cache_destroy(cache);
	gb_set_items_processed(s, gb_iterations(s));
	bench_report_memory(s);
}

#define BULK 64

static void bm_kmem_cache_bulk(gb_state *s)
{
	struct kmem_cache *cache = bench_cache(s);
	void *objects[BULK];

	if (!cache)
		return;
	while (gb_loop_batch(s, BULK)) {
		if (kmem_cache_alloc_bulk(cache, GFP_KERNEL, BULK, objects) != BULK) {
			gb_skip_with_error(s, "kmem_cache_alloc_bulk failed");
			break;
		}
		kmem_cache_free_bulk(cache, BULK, objects);
	}
	kmem_cache_destroy(cache);
	gb_set_items_processed(s, gb_iterations(s));
	bench_report_memory(s);
}

static void bm_alloc_pages(gb_state *s)
{
	unsigned int order = (unsigned int)gb_arg_value(s, 0);

	while (gb_loop(s)) {
		struct page *page = alloc_pages(GFP_KERNEL, order);
		if (!page) {
			gb_skip_with_error(s, "alloc_pages failed");
			break;
		}
		__free_pages(page, order);
	}
	gb_set_items_processed(s, gb_iterations(s));
	bench_report_memory(s);
}

/* vmalloc maps, touches every page and unmaps: the cost a user pays. */
static void bm_vmalloc(gb_state *s)
{
	size_t size = (size_t)gb_arg_value(s, 0);

	while (gb_loop(s)) {
		char *p = vmalloc(size);
		if (!p) {
			gb_skip_with_error(s, "vmalloc failed");
			break;
		}
		for (size_t off = 0; off < size; off += PAGE_SIZE)
			p[off] = 1;
		vfree(p);
	}
	gb_set_items_processed(s, gb_iterations(s));
	gb_set_bytes_processed(s, gb_iterations(s) * (int64_t)size);
	bench_report_memory(s);
}

#define GROWTH_STEP 32
#define GROWTH_END (64 * 1024)

static void bm_krealloc_growth(gb_state *s)
{
	while (gb_loop(s)) {
		char *buf = NULL;
		for (size_t len = GROWTH_STEP; len <= GROWTH_END; len += GROWTH_STEP) {
			char *grown = krealloc(buf, len, GFP_KERNEL);
			if (!grown) {
				gb_skip_with_error(s, "krealloc failed");
				break;
			}
			buf = grown;
			memset(buf + len - GROWTH_STEP, (int)len, GROWTH_STEP);
		}
		kfree(buf);
	}
	gb_set_items_processed(s, gb_iterations(s) * (GROWTH_END / GROWTH_STEP));
	bench_report_memory(s);
}

static void args(gb_bench *b, const char *name, const int *values, size_t n)
{
	gb_arg_name(b, name);
	for (size_t i = 0; i < n; i++)
		gb_arg(b, values[i]);
}

int main(int argc, char **argv)
{
	static const int kmalloc_sizes[] = { 8, 64, 256, 1024, 4096, 16384, 65536 };
	static const int cache_sizes[] = { 64, 256 };
	static const int orders[] = { 0, 1, 2, 3, 4, 9 };
	static const int vmalloc_sizes[] = { 64 << 10, 1 << 20, 16 << 20 };

	args(gb_register("kmalloc", bm_kmalloc), "size", kmalloc_sizes, ARRAY_SIZE(kmalloc_sizes));
	args(gb_register("kmem_cache", bm_kmem_cache), "size", cache_sizes, ARRAY_SIZE(cache_sizes));
	args(gb_register("kmem_cache_bulk", bm_kmem_cache_bulk), "size", cache_sizes, ARRAY_SIZE(cache_sizes));
	args(gb_register("alloc_pages", bm_alloc_pages), "order", orders, ARRAY_SIZE(orders));
	args(gb_register("vmalloc", bm_vmalloc), "size", vmalloc_sizes, ARRAY_SIZE(vmalloc_sizes));
	gb_register("krealloc_growth", bm_krealloc_growth);
	return gb_main(argc, argv);
}
