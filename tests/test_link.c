/*
 * Linked with -lkmm instead of preloaded: malloc is kmm's all the same.
 */
#include <stdlib.h>
#include <string.h>

#include <kmm/kmm.h>

#include "test.h"

int main(void)
{
	char *p = malloc(100);
	char *q = strdup("from libc, allocated by kmm");

	CHECK(p && q);
	CHECK(virt_addr_valid(p));
	CHECK(virt_addr_valid(q));
	CHECK(ksize(p) >= 100);
	free(p);
	free(q);
	return 0;
}
