/* The page allocator in a few lines: build with
 *   cc pages.c $(pkg-config --cflags --libs kmm)
 */
#include <stdio.h>
#include <string.h>

#include <kmm/kmm.h>

int main(void)
{
	/* Four contiguous pages, aligned to 4 * PAGE_SIZE. */
	struct page *page = alloc_pages(GFP_KERNEL, 2);
	char *buf;

	if (!page)
		return 1;
	buf = page_address(page);
	strcpy(buf, "hello from the buddy allocator");
	printf("%s at %p, order %d\n", buf, (void *)buf, get_order(4 * PAGE_SIZE));
	__free_pages(page, 2);

	/* 5 pages exactly: the other 3 of the order-3 block stay free. */
	void *exact = alloc_pages_exact(5 * PAGE_SIZE, GFP_KERNEL | __GFP_ZERO);
	free_pages_exact(exact, 5 * PAGE_SIZE);

	fflush(stdout);
	kmm_show_buddyinfo(1);	/* like /proc/buddyinfo */
	return 0;
}
