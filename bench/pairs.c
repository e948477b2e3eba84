/*
 * pairs - N allocation+free pairs of one size, for instruction counting.
 *
 *   pairs malloc SIZE N     malloc(SIZE) + free() N times (whatever malloc is
 *                           loaded: glibc, or an LD_PRELOADed allocator)
 *   pairs kmalloc SIZE N    kmalloc(SIZE, GFP_KERNEL) + kfree() N times
 *   pairs kzalloc SIZE N    kzalloc(SIZE, GFP_KERNEL) + kfree() N times
 *
 * bench/instructions.sh runs it under callgrind with two values of N; the
 * difference divided by the difference in N is the cost of one pair, with
 * start-up and the first slow-path refills cancelled out.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <kmm/slab.h>

static void *keep(void *p)
{
	/* The compiler must not elide the pair. */
	__asm__ __volatile__("" : "+r"(p) : : "memory");
	return p;
}

int main(int argc, char **argv)
{
	size_t size;
	long n;
	int use_kmalloc, use_kzalloc;

	if (argc != 4) {
		fprintf(stderr, "usage: pairs malloc|kmalloc|kzalloc SIZE N\n");
		return 2;
	}
	use_kmalloc = strcmp(argv[1], "kmalloc") == 0;
	use_kzalloc = strcmp(argv[1], "kzalloc") == 0;
	size = strtoul(argv[2], NULL, 0);
	n = strtol(argv[3], NULL, 0);
	for (long i = 0; i < n; i++) {
		if (use_kmalloc)
			kfree(keep(kmalloc(size, GFP_KERNEL)));
		else if (use_kzalloc)
			kfree(keep(kzalloc(size, GFP_KERNEL)));
		else
			free(keep(malloc(size)));
	}
	return 0;
}
