/*
 * KMM_OPTIONS=thp=1: every section kmm maps carries the kernel's
 * transparent-huge-page advice (VmFlags "hg" in /proc/self/smaps), so that
 * a first fault in each 2 MiB of it can map a huge page. Run with the
 * option, and with the argument "off" without it, where no section may
 * carry the advice.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <kmm/kmm.h>

#include "test.h"

static bool want_huge;

/* Whether the mapping that holds addr is advised MADV_HUGEPAGE. */
static bool advised_huge(const void *addr)
{
	FILE *f = fopen("/proc/self/smaps", "r");
	char line[512];
	bool inside = false, huge = false, found = false;

	CHECK(f != NULL);
	while (fgets(line, sizeof(line), f)) {
		unsigned long start, end;

		/* A mapping's first line; the field lines start with a name and a colon. */
		if (sscanf(line, "%lx-%lx ", &start, &end) == 2) {
			inside = (uintptr_t)addr >= start && (uintptr_t)addr < end;
			continue;
		}
		if (inside && strncmp(line, "VmFlags:", 8) == 0) {
			huge = strstr(line, " hg") != NULL;
			found = true;
			break;
		}
	}
	fclose(f);
	CHECK(found);
	return huge;
}

static void test_pages(void)
{
	struct page *page = alloc_pages(GFP_KERNEL, 0);

	CHECK(page != NULL);
	CHECK_EQ(advised_huge(page_address(page)), want_huge);
	__free_pages(page, 0);
}

/* A section mapped after the first one gets the same advice. */
static void test_later_section(void)
{
	struct page *blocks[3];

	for (int i = 0; i < 3; i++) {
		blocks[i] = alloc_pages(GFP_KERNEL, MAX_PAGE_ORDER);
		CHECK(blocks[i] != NULL);
		CHECK_EQ(advised_huge(page_address(blocks[i])), want_huge);
	}
	for (int i = 0; i < 3; i++)
		__free_pages(blocks[i], MAX_PAGE_ORDER);
}

static void test_kmalloc(void)
{
	void *p = kmalloc(64, GFP_KERNEL);

	CHECK(p != NULL);
	CHECK_EQ(advised_huge(p), want_huge);
	kfree(p);
}

int main(int argc, char **argv)
{
	want_huge = argc < 2 || strcmp(argv[1], "off") != 0;
	/* qemu-user answers smaps for itself; a kernel without THP has no advice to give. */
	if (getenv("KMM_TEST_EMULATED") || access("/sys/kernel/mm/transparent_hugepage/enabled", F_OK) != 0) {
		printf("SKIP: no transparent huge pages to check here\n");
		return TEST_SKIP;
	}
	RUN(test_pages);
	RUN(test_later_section);
	RUN(test_kmalloc);
	return 0;
}
