/*
 * section_table.c - the storage of the section table and its lookup cache
 * (page_alloc.h says what they hold; page_alloc.c writes them under the
 * zone lock).
 *
 * They are the library's big static arrays (1.1 MiB of .bss on 64-bit
 * builds, of which a process touches a few pages), so they live in a file
 * of their own, the last one linked: the linker lays .bss out file by file,
 * and with the arrays in page_alloc.c the small variables of the files
 * before and after it were spread over seven pages instead of five, each
 * faulted in twice at start-up (read as the zero page, then written).
 * Each row of section_hash.index is aligned to its size, so that one
 * section's row lies within one page, not across two.
 *
 * GCC lays out a file's variables in the reverse order of their
 * definitions: section_hash, defined last, comes first, right after the
 * small variables, so that the slots and rows of the first sections
 * (page_alloc.h's skew puts them at the front) share their 2 MiB region.
 * os.c's static spare (0.5 MiB) comes last, in .bss's last 2 MiB region,
 * which the small mappings made after the library usually share.
 */
#include "os.h"
#include "page_alloc.h"

unsigned char os_bss_spare[OS_BSS_SPARE_BYTES];
_Atomic(section_slot *) section_root[1UL << SECTION_ROOT_BITS];
struct section_hash section_hash;
