/*
 * Linked with -lkmm instead of preloaded: malloc is kmm's all the same.
 * Also checks the library's size in address space (load_extent_ok()).
 */
#include <dlfcn.h>
#include <link.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <kmm/kmm.h>

#include "test.h"

/*
 * Linux aligns a file mapping of 2 MiB or more to 2 MiB (for transparent
 * huge pages), and a library placed so lands in page-table regions of its
 * own: with 9 MiB of .bss, loading libkmm cost `as` 2% more than a small
 * library did (docs/malloc.md). Its static tables must keep the whole
 * library below 2 MiB. 64-bit only (the kernel does not align for 32-bit
 * processes), and not in sanitizer builds, whose globals grow red zones.
 */
#if UINTPTR_MAX > 0xffffffffu && !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
struct extent_query {
	const void *inside;	/* an address in the library */
	uintptr_t extent;	/* its PT_LOAD segments' span, once found */
};

static int find_extent(struct dl_phdr_info *info, size_t size, void *arg)
{
	struct extent_query *q = arg;
	uintptr_t lo = UINTPTR_MAX, hi = 0, at = (uintptr_t)q->inside;

	(void)size;
	for (int i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];

		if (ph->p_type != PT_LOAD)
			continue;
		if (ph->p_vaddr < lo)
			lo = ph->p_vaddr;
		if (ph->p_vaddr + ph->p_memsz > hi)
			hi = ph->p_vaddr + ph->p_memsz;
	}
	if (lo > hi || at < info->dlpi_addr + lo || at >= info->dlpi_addr + hi)
		return 0;
	q->extent = hi - lo;
	return 1;
}

static void load_extent_ok(void)
{
	struct extent_query q = { .inside = (const void *)kmm_kmalloc };

	CHECK(dl_iterate_phdr(find_extent, &q) == 1);
	CHECK(q.extent > 0 && q.extent < (2UL << 20));
}
#else
static void load_extent_ok(void)
{
}
#endif

int main(void)
{
	static char *early[640];
	char *p, *q;

	/* A process's first blocks come from the boot arena; the rest are slab objects. */
	for (int i = 0; i < 640; i++) {
		early[i] = malloc(1000);
		CHECK(early[i] != NULL);
	}
	p = malloc(100);
	q = strdup("from libc, allocated by kmm");
	CHECK(p && q);
	CHECK(virt_addr_valid(p));
	CHECK(virt_addr_valid(q));
	CHECK(ksize(p) >= 100);
	free(p);
	free(q);
	for (int i = 0; i < 640; i++)
		free(early[i]);
	load_extent_ok();
	return 0;
}
