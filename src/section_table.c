/*
 * section_table.c - the storage of the section table and its lookup cache
 * (page_alloc.h says what they hold; page_alloc.c writes them under the
 * zone lock).
 *
 * They are the library's big static arrays (8.1 MiB of .bss on 64-bit
 * builds, of which a process touches a few pages), so they live in a file
 * of their own, the last one linked: the linker lays .bss out file by file,
 * and with the arrays in page_alloc.c the small variables of the files
 * before and after it were spread over seven pages instead of five, each
 * faulted in twice at start-up (read as the zero page, then written).
 * Each row of section_hash_index is aligned to its size, so that one
 * section's row lies within one page, not across two.
 *
 * os.c's static spare (0.5 MiB) is here too, first: right after the small
 * variables, in their 2 MiB region (os.c says why).
 */
#include "os.h"
#include "page_alloc.h"

unsigned char os_bss_spare[OS_BSS_SPARE_BYTES];
_Atomic(section_slot *) section_root[1UL << SECTION_ROOT_BITS];
_Atomic uintptr_t section_hash[1UL << SECTION_HASH_BITS];
_Atomic unsigned short section_hash_index[1UL << (SECTION_HASH_BITS + MAX_PAGE_ORDER)]
	__attribute__((aligned(sizeof(unsigned short) << MAX_PAGE_ORDER)));
