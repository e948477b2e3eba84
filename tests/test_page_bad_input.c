/*
 * Bad frees are reported on stderr with the address and what was wrong, then
 * abort, like the kernel's bad-page report. Each case runs in a child.
 */
#include <signal.h>
#include <string.h>
#include <sys/mman.h>

#include <kmm/kmm.h>

#include "test.h"

struct bad_case {
	const char *name;
	void (*provoke)(void *addr_out);
	const char *expect;
};

static void free_heap_pointer(void *addr)
{
	void *p = malloc(PAGE_SIZE * 2);
	unsigned long a = ((unsigned long)p + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1);

	sprintf(addr, "%#lx", a);
	free_pages(a, 0);
}

static void free_stack_pointer(void *addr)
{
	char buf[64];

	sprintf(addr, "%p", (void *)buf);
	free_pages_exact(buf, sizeof(buf));
}

static void double_free_low_order(void *addr)
{
	unsigned long a = __get_free_pages(GFP_KERNEL, 1);

	sprintf(addr, "%#lx", a);
	free_pages(a, 1);
	free_pages(a, 1);
}

static void double_free_high_order(void *addr)
{
	unsigned long a = __get_free_pages(GFP_KERNEL, 6);
	unsigned long b = __get_free_pages(GFP_KERNEL, 6);

	sprintf(addr, "%#lx", a);
	free_pages(a, 6);
	free_pages(a, 6);
	free_pages(b, 6);
}

static void double_free_page(void *addr)
{
	struct page *page = alloc_pages(GFP_KERNEL, 0);

	sprintf(addr, "%p", page_address(page));
	__free_pages(page, 0);
	__free_pages(page, 0);
}

static void wrong_order(void *addr)
{
	unsigned long a = __get_free_pages(GFP_KERNEL, 2);

	sprintf(addr, "%#lx", a);
	free_pages(a, 1);
}

static void interior_pointer(void *addr)
{
	unsigned long a = __get_free_pages(GFP_KERNEL, 2) + PAGE_SIZE;

	sprintf(addr, "%#lx", a);
	free_pages(a, 0);
}

static void unaligned_pointer(void *addr)
{
	unsigned long a = __get_free_pages(GFP_KERNEL, 0) + 8;

	sprintf(addr, "%#lx", a);
	free_pages(a, 0);
}

static void exact_wrong_size(void *addr)
{
	void *p = alloc_pages_exact(5 * PAGE_SIZE, GFP_KERNEL);

	sprintf(addr, "%p", p);
	free_pages_exact(p, 8 * PAGE_SIZE);
}

static void order_too_large(void *addr)
{
	unsigned long a = __get_free_pages(GFP_KERNEL, 0);

	sprintf(addr, "%#lx", a);
	free_pages(a, MAX_PAGE_ORDER + 1);
}

static const struct bad_case cases[] = {
	{ "heap pointer", free_heap_pointer, "never given out by kmm" },
	{ "stack pointer", free_stack_pointer, "never given out by kmm" },
	{ "double free, order 1", double_free_low_order, "double free" },
	{ "double free, order 6", double_free_high_order, "double free" },
	{ "double __free_pages", double_free_page, "double free" },
	{ "wrong order", wrong_order, "freed with order 1, allocated with order 2" },
	{ "pointer into a block", interior_pointer, "not the start of an allocated block" },
	{ "unaligned pointer", unaligned_pointer, "not page aligned" },
	{ "exact, wrong size", exact_wrong_size, "freed with order 3, allocated with order 2" },
	{ "order too large", order_too_large, "above MAX_PAGE_ORDER" },
};

int main(void)
{
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		check_abort_report(cases[i].name, cases[i].provoke, cases[i].expect);
	return 0;
}
