/*
 * os.h - the only door to the kernel's memory system calls (mmap, munmap,
 * madvise, mprotect, mremap, mincore). Every mapping kmm makes goes through here, so this is
 * where page size, address-space limits and, later, fault injection live.
 * Also the few file calls kmm makes itself (sysfs, its log, its reports).
 */
#ifndef KMM_OS_H
#define KMM_OS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#pragma GCC visibility push(hidden)

#if defined(__x86_64__) || defined(__i386__)
/*
 * x86 pages are always 4 KiB: kfree's lookup shifts by a constant instead
 * of loading the shift first. os_init() checks that the kernel agrees.
 */
#define OS_FIXED_PAGE_SHIFT 12
static const size_t os_page_size = 1UL << OS_FIXED_PAGE_SHIFT;
static const unsigned int os_page_shift = OS_FIXED_PAGE_SHIFT;
#else
/* Set by os_init(); read-only afterwards. */
extern size_t os_page_size;
extern unsigned int os_page_shift;
#endif

/*
 * Static storage that os_map_meta() carves from first (section_table.c
 * holds it, at the end of .bss).
 */
#define OS_BSS_SPARE_BYTES (512UL << 10)
extern unsigned char os_bss_spare[OS_BSS_SPARE_BYTES];

/* Reads the page size, once; any layer may call it first, from any thread. */
void os_init(void);

/* Fresh zeroed read-write memory, or NULL with errno = ENOMEM. */
void *os_map(size_t size);

/*
 * Like os_map(), but the result is aligned to align (a power of two, a
 * multiple of the page size).
 */
void *os_map_aligned(size_t size, size_t align);

void os_unmap(void *addr, size_t size);

/*
 * Bookkeeping that lives as long as the process: zeroed, aligned to align
 * (0 or a power of two; at least a page), never to be unmapped (released
 * is fine); NULL with errno = ENOMEM. From the static spare while it lasts.
 */
void *os_map_meta(size_t size, size_t align);

/*
 * Gives the physical memory behind [addr, addr + size) back to the kernel.
 * The range stays mapped and reads back as zeros.
 */
void os_release(void *addr, size_t size);

/*
 * Faults in the pages of [addr, addr + size) for writing in one system
 * call, where the kernel can (MADV_POPULATE_WRITE, Linux 5.14). Only a
 * hint: nothing is reported if it fails, and the pages then fault when
 * touched, as they would have without it.
 */
void os_populate(void *addr, size_t size);

/* Makes [addr, addr + size) inaccessible: a guard. */
void os_protect_none(void *addr, size_t size);

/* Moves and grows a mapping (no copy); NULL with errno = ENOMEM on failure. */
void *os_remap(void *addr, size_t old_size, size_t new_size);

/*
 * vec[i] = 1 if page i of the pages from addr is resident, else 0; false if
 * the range is not mapped (mincore's ENOMEM). For statistics: the answer
 * may be stale by the time it returns.
 */
bool os_resident(void *addr, size_t pages, unsigned char *vec);

/* Asks for transparent huge pages where the kernel has them. */
void os_advise_huge(void *addr, size_t size);

/*
 * open(2), read(2), write(2) and close(2) as system calls of their own,
 * -1 with errno on failure. libc's are cancellation points, and kmm makes
 * these calls inside malloc, which is none: a thread whose cancel was
 * pending was unwound from inside kmm's start-up, holding its locks.
 */
int os_open(const char *path, int flags, mode_t mode);
ssize_t os_read(int fd, void *buf, size_t size);
ssize_t os_write(int fd, const void *buf, size_t size);
void os_close(int fd);

#pragma GCC visibility pop

#endif
