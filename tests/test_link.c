/*
 * Linked with -lkmm instead of preloaded: malloc is kmm's all the same.
 */
#include <stdlib.h>
#include <string.h>

#include <kmm/kmm.h>

#include "test.h"

int main(void)
{
	static char *early[256];
	char *p, *q;

	/* A process's first blocks come from the boot arena; the rest are slab objects. */
	for (int i = 0; i < 256; i++) {
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
	for (int i = 0; i < 256; i++)
		free(early[i]);
	return 0;
}
