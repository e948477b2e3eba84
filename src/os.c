/*
 * os.c - mmap, munmap and madvise for the rest of kmm (see os.h).
 *
 * Aligned mappings first try the address next to the previous aligned
 * mapping, in the direction the kernel hands out addresses (below it on
 * Linux; below the whole over-mapping after a trimmed one, whose trim lies
 * above what it kept), so that sections usually come out contiguous and
 * aligned with a single mmap; then the aligned address below where the
 * kernel put that try; otherwise they over-map by the alignment and trim
 * both ends.
 * The hint is a racy optimisation only: any answer from mmap is checked.
 *
 * Small mappings are carved from spares, so a process's start-up costs
 * one mmap instead of eleven memory system calls. Bookkeeping kept for the
 * life of the process (os_map_meta(): section descriptors, the section
 * table's leaves, per-CPU lists and slots) comes first from a static
 * spare, os_bss_spare at the end of .bss (section_table.c): its 2 MiB
 * region is one the process touches anyway, where a mapping of its own took
 * a page-table page more (a new region's first page cost 44-60 us on a VM
 * where any other page cost 10; `as` 0.5% faster). Nothing carved from it
 * is ever unmapped, so .bss never gets holes. Everything else small (a
 * vmalloc area, which vfree unmaps) and bookkeeping past the static spare
 * come from the first trimmed mapping's larger leftover (the first
 * section's, at start-up), kept instead of unmapped. Both spares are
 * untouched, so carved memory is as fresh and zeroed as a new mapping.
 * Carving is a compare-and-swap on a cursor; when any mmap fails (an
 * address-space limit), the rest of the mapped spare is unmapped and the
 * mmap is tried again.
 *
 * os_resident() asks mincore() which pages are resident, for statistics.
 *
 * The file calls go through syscall(2), which is no cancellation point.
 */
#include "os.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "internal.h"

#ifndef OS_FIXED_PAGE_SHIFT
size_t os_page_size KMM_HOT_DATA;
unsigned int os_page_shift KMM_HOT_DATA;
#endif

static _Atomic uintptr_t next_aligned_hint;
static atomic_bool hint_down;	/* hints go downwards: the kernel maps top-down */

/*
 * Where small mappings are carved from: [cursor, end); cursor 0 while there
 * is none (yet, or any more). end is written before cursor is published.
 */
struct spare {
	_Atomic uintptr_t cursor;
	uintptr_t end;
};

/*
 * Static storage in .bss (section_table.c), then the first section's trim.
 * In .data, not .bss: os_init() sets up bss_spare in every process, and
 * a process's first vmalloc area (a 64 KiB buffer, before start-up) reads
 * map_spare; neither then costs a page of .bss.
 */
static struct spare bss_spare KMM_HOT_DATA, map_spare KMM_HOT_DATA;
static atomic_bool spare_made;

/* 0: page size unknown, 1: being read, 2: os_page_size and os_page_shift set. */
static atomic_int os_state KMM_HOT_DATA;

KMM_HOT_TEXT void os_init(void)
{
	int expect = 0;
	long size;

	if (atomic_load_explicit(&os_state, memory_order_acquire) == 2)
		return;
	if (!atomic_compare_exchange_strong_explicit(&os_state, &expect, 1, memory_order_acquire,
						     memory_order_acquire)) {
		while (atomic_load_explicit(&os_state, memory_order_acquire) != 2)
			cpu_relax();
		return;
	}
	size = sysconf(_SC_PAGESIZE);
	if (size <= 0 || (size & (size - 1)))
		kmm_bug("unusable page size %ld", size);
#ifdef OS_FIXED_PAGE_SHIFT
	if ((size_t)size != os_page_size)
		kmm_bug("page size %ld, where this build assumes %zu", size, os_page_size);
#else
	os_page_size = (size_t)size;
	os_page_shift = (unsigned int)__builtin_ctzl((unsigned long)size);
#endif
	bss_spare.end = (uintptr_t)os_bss_spare + sizeof(os_bss_spare);
	atomic_store_explicit(&bss_spare.cursor,
			      ((uintptr_t)os_bss_spare + os_page_size - 1) & ~(uintptr_t)(os_page_size - 1),
			      memory_order_relaxed);
	atomic_store_explicit(&os_state, 2, memory_order_release);
}

/* size bytes at a multiple of align from spare sp, or NULL. */
KMM_HOT_TEXT static void *carve_from(struct spare *sp, size_t size, size_t align)
{
	uintptr_t cur = atomic_load_explicit(&sp->cursor, memory_order_acquire), start;

	do {
		if (!cur)
			return NULL;
		start = (cur + align - 1) & ~(uintptr_t)(align - 1);
		if (start < cur || start + size < start || start + size > sp->end)
			return NULL;
	} while (!atomic_compare_exchange_weak_explicit(&sp->cursor, &cur, start + size,
							memory_order_acquire,
							memory_order_acquire));
	return (void *)start;
}

/* Unmaps what is left of the mapped spare; true if there was something. */
static bool spare_release(void)
{
	uintptr_t cur = atomic_exchange_explicit(&map_spare.cursor, 0, memory_order_acquire);

	if (!cur || cur >= map_spare.end)
		return false;
	munmap((void *)cur, map_spare.end - cur);
	return true;
}

/* A trimmed-off piece: the first big one becomes the mapped spare, the rest go. */
KMM_HOT_TEXT static void keep_or_unmap(uintptr_t start, size_t size)
{
	if (size >= 64 * os_page_size && !atomic_exchange(&spare_made, true)) {
		map_spare.end = start + size;
		atomic_store_explicit(&map_spare.cursor, start, memory_order_release);
		return;
	}
	munmap((void *)start, size);
}

KMM_HOT_TEXT static void *map_at(void *hint, size_t size)
{
	void *p = mmap(hint, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
		       -1, 0);

	if (p == MAP_FAILED && spare_release())
		p = mmap(hint, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	return p == MAP_FAILED ? NULL : p;
}

KMM_HOT_TEXT void *os_map(size_t size)
{
	void *p = carve_from(&map_spare, (size + os_page_size - 1) & ~(os_page_size - 1), os_page_size);

	if (!p)
		p = map_at(NULL, size);

	if (!p)
		errno = ENOMEM;
	return p;
}

KMM_HOT_TEXT void *os_map_meta(size_t size, size_t align)
{
	void *p;

	size = (size + os_page_size - 1) & ~(os_page_size - 1);
	if (align < os_page_size)
		align = os_page_size;
	p = carve_from(&bss_spare, size, align);
	if (p)
		return p;
	return align > os_page_size ? os_map_aligned(size, align) : os_map(size);
}

/* p if it is aligned; otherwise p is unmapped and NULL returned. */
static void *keep_if_aligned(void *p, size_t size, size_t align)
{
	if (p && ((uintptr_t)p & (align - 1))) {
		munmap(p, size);
		return NULL;
	}
	return p;
}

static void *map_aligned_hinted(uintptr_t hint, size_t size, size_t align)
{
	uintptr_t below;
	void *p;

	if (!hint || (hint & (align - 1)))
		return NULL;
	p = map_at((void *)hint, size);
	if (!p || !((uintptr_t)p & (align - 1)))
		return p;
	/*
	 * The hint was taken (the first section's trim leaves half a section
	 * above it, then the libraries), and the kernel placed the mapping in
	 * the highest gap below that fits. The aligned address just below
	 * where it did is usually free too: one more mmap instead of the three
	 * calls of an over-map and its trims.
	 */
	below = (uintptr_t)p & ~(uintptr_t)(align - 1);
	munmap(p, size);
	return below ? keep_if_aligned(map_at((void *)below, size), size, align) : NULL;
}

/* *low: where the over-mapping started, below what is kept and the spare. */
static void *map_aligned_trimmed(size_t size, size_t align, uintptr_t *low)
{
	size_t over = size + align;
	uintptr_t start, end;
	char *raw;

	if (over < size)
		return NULL;
	raw = map_at(NULL, over);
	if (!raw)
		return NULL;
	*low = (uintptr_t)raw;
	start = ((uintptr_t)raw + align - 1) & ~(uintptr_t)(align - 1);
	end = start + size;
	/* The larger piece first, so that it is the one kept as the spare. */
	if (start - (uintptr_t)raw >= (uintptr_t)raw + over - end) {
		if (start > (uintptr_t)raw)
			keep_or_unmap((uintptr_t)raw, start - (uintptr_t)raw);
		if ((uintptr_t)raw + over > end)
			keep_or_unmap(end, (uintptr_t)raw + over - end);
	} else {
		keep_or_unmap(end, (uintptr_t)raw + over - end);
		if (start > (uintptr_t)raw)
			keep_or_unmap((uintptr_t)raw, start - (uintptr_t)raw);
	}
	return (void *)start;
}

KMM_HOT_TEXT void *os_map_aligned(size_t size, size_t align)
{
	uintptr_t hint, low = 0;
	void *p;

	/* Trimming works in whole pages. */
	size = (size + os_page_size - 1) & ~(os_page_size - 1);
	p = carve_from(&map_spare, size, align);
	if (p)
		return p;
	hint = atomic_load_explicit(&next_aligned_hint, memory_order_relaxed);
	p = map_aligned_hinted(hint, size, align);
	if (!p)
		p = map_aligned_trimmed(size, align, &low);
	if (!p) {
		errno = ENOMEM;
		return NULL;
	}
	/*
	 * The next hint: onwards in the direction the kernel hands out
	 * addresses (top-down on Linux). After an over-mapping, below all of
	 * it, since just above what is kept lies its trim (the spare, the
	 * first time); a bottom-up kernel then maps above the hint, and the
	 * hints follow upwards from there.
	 */
	if (hint && (uintptr_t)p != hint)
		atomic_store_explicit(&hint_down, (uintptr_t)p < hint, memory_order_relaxed);
	if (low) {
		low &= ~(uintptr_t)(align - 1);
		atomic_store_explicit(&hint_down, true, memory_order_relaxed);
		hint = low >= size ? low - size : 0;
	} else if (atomic_load_explicit(&hint_down, memory_order_relaxed) && (uintptr_t)p >= size) {
		hint = (uintptr_t)p - size;
	} else {
		hint = (uintptr_t)p + size;
	}
	atomic_store_explicit(&next_aligned_hint, hint, memory_order_relaxed);
	return p;
}

KMM_HOT_TEXT void os_unmap(void *addr, size_t size)
{
	if (munmap(addr, size) != 0)
		kmm_bug("munmap(%p, %zu) failed: errno %d", addr, size, errno);
}

KMM_HOT_TEXT void os_release(void *addr, size_t size)
{
	/*
	 * MADV_DONTNEED, not MADV_FREE: the range must read back as zeros, so
	 * that released blocks can be handed out for __GFP_ZERO without a
	 * memset.
	 */
	if (madvise(addr, size, MADV_DONTNEED) != 0)
		kmm_bug("madvise(%p, %zu, MADV_DONTNEED) failed: errno %d", addr, size, errno);
}

/*
 * A page fault costs a trap per page, populating one system call for the
 * whole range. On the virtual machines kmm is measured on the trap is what
 * costs: a page touched cold took 10-15 us on one (populated: 0.9 us in
 * the call, 4-7 us at the first touch after), 1.15 us on another (0.75).
 * Cleared for good when the kernel does not know the advice, so an old
 * kernel pays one failed call.
 */
static atomic_bool populate_works = true;

KMM_HOT_TEXT void os_populate(void *addr, size_t size)
{
#ifdef MADV_POPULATE_WRITE
	uintptr_t start = (uintptr_t)addr & ~(uintptr_t)(os_page_size - 1);
	uintptr_t end = ((uintptr_t)addr + size + os_page_size - 1) & ~(uintptr_t)(os_page_size - 1);
	int saved = errno;

	if (!size || !atomic_load_explicit(&populate_works, memory_order_relaxed))
		return;
	if (madvise((void *)start, end - start, MADV_POPULATE_WRITE) != 0 && errno == EINVAL)
		atomic_store_explicit(&populate_works, false, memory_order_relaxed);
	errno = saved;
#else
	(void)addr;
	(void)size;
#endif
}

KMM_HOT_TEXT void os_protect_none(void *addr, size_t size)
{
	if (mprotect(addr, size, PROT_NONE) != 0)
		kmm_bug("mprotect(%p, %zu, PROT_NONE) failed: errno %d", addr, size, errno);
}

void *os_remap(void *addr, size_t old_size, size_t new_size)
{
	void *p = mremap(addr, old_size, new_size, MREMAP_MAYMOVE);

	if (p == MAP_FAILED) {
		errno = ENOMEM;
		return NULL;
	}
	return p;
}

void os_advise_huge(void *addr, size_t size)
{
#ifdef MADV_HUGEPAGE
	madvise(addr, size, MADV_HUGEPAGE);
#endif
}

/*
 * mincore() entries per page of ours: 1, except under an emulator whose
 * page size is above its host's (qemu-user with QEMU_PAGESIZE), where the
 * kernel answers per host page. Learned once by letting mincore() write
 * into a marked vector: it writes only bit 0 of each entry it fills.
 */
#define RESIDENT_CHUNK 64		/* our pages per mincore() call */
#define RESIDENT_MAX_RATIO 16		/* 64 KiB pages on a 4 KiB host */
static atomic_uint mincore_ratio;

static unsigned int resident_ratio(void *addr)
{
	unsigned char probe[RESIDENT_MAX_RATIO + 1];
	unsigned int ratio = atomic_load_explicit(&mincore_ratio, memory_order_relaxed);

	if (ratio)
		return ratio;
	memset(probe, 0xfe, sizeof(probe));
	if (os_page_size / 4096 > RESIDENT_MAX_RATIO || mincore(addr, os_page_size, probe) != 0)
		return 0;
	while (ratio < RESIDENT_MAX_RATIO && !(probe[ratio] & 0xfe))
		ratio++;
	ratio = ratio ? ratio : 1;
	atomic_store_explicit(&mincore_ratio, ratio, memory_order_relaxed);
	return ratio;
}

bool os_resident(void *addr, size_t pages, unsigned char *vec)
{
	unsigned char raw[RESIDENT_CHUNK * RESIDENT_MAX_RATIO];
	unsigned int ratio = resident_ratio(addr);

	if (!ratio)
		return false;
	for (size_t done = 0, n; done < pages; done += n) {
		n = pages - done < RESIDENT_CHUNK ? pages - done : RESIDENT_CHUNK;
		if (mincore((char *)addr + (done << os_page_shift), n << os_page_shift, raw) != 0)
			return false;
		for (size_t i = 0; i < n; i++) {
			unsigned char any = 0;

			for (unsigned int j = 0; j < ratio; j++)
				any |= raw[i * ratio + j];
			vec[done + i] = any & 1;
		}
	}
	return true;
}

KMM_HOT_TEXT int os_open(const char *path, int flags, mode_t mode)
{
	return (int)syscall(SYS_openat, AT_FDCWD, path, flags, mode);
}

KMM_HOT_TEXT ssize_t os_read(int fd, void *buf, size_t size)
{
	return (ssize_t)syscall(SYS_read, fd, buf, size);
}

ssize_t os_write(int fd, const void *buf, size_t size)
{
	return (ssize_t)syscall(SYS_write, fd, buf, size);
}

KMM_HOT_TEXT void os_close(int fd)
{
	syscall(SYS_close, fd);
}
