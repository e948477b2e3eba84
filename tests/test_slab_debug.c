/*
 * SLAB_POISON and SLAB_RED_ZONE: writes past either end, writes after free
 * and double frees are reported with the cache, the object and the bad
 * address, then abort. Each provocation runs in a child.
 */
#include <signal.h>
#include <string.h>
#include <sys/mman.h>

#include <kmm/kmm.h>

#include "test.h"

#define OBJ 60

static struct kmem_cache *debug_cache(void)
{
	struct kmem_cache *s = kmem_cache_create("dbg", OBJ, 0, SLAB_POISON | SLAB_RED_ZONE, NULL);

	CHECK(s != NULL);
	return s;
}

static void overflow(void *addr)
{
	struct kmem_cache *s = debug_cache();
	unsigned char *p = kmem_cache_alloc(s, GFP_KERNEL);

	sprintf(addr, "%p", (void *)(p + OBJ));
	p[OBJ] = 1;
	kmem_cache_free(s, p);
}

static void underflow(void *addr)
{
	struct kmem_cache *s = debug_cache();
	unsigned char *p = kmem_cache_alloc(s, GFP_KERNEL);

	sprintf(addr, "%p", (void *)(p - 1));
	p[-1] = 1;
	kmem_cache_free(s, p);
}

static void double_free(void *addr)
{
	struct kmem_cache *s = debug_cache();
	void *p = kmem_cache_alloc(s, GFP_KERNEL);

	sprintf(addr, "%p", p);
	kmem_cache_free(s, p);
	kmem_cache_free(s, p);
}

static void use_after_free(void *addr)
{
	struct kmem_cache *s = debug_cache();
	unsigned char *p = kmem_cache_alloc(s, GFP_KERNEL);

	sprintf(addr, "%p", (void *)(p + 10));
	kmem_cache_free(s, p);
	p[10] = 0; /* the bug */
	/* The freed object is the first one handed out again. */
	for (int i = 0; i < 4; i++)
		kmem_cache_alloc(s, GFP_KERNEL);
}

static const struct {
	const char *name;
	void (*provoke)(void *);
	const char *expect;
} cases[] = {
	{ "write past the end", overflow, "BUG dbg: Right Redzone overwritten at " },
	{ "write before the start", underflow, "BUG dbg: Left Redzone overwritten at " },
	{ "double free", double_free, "BUG dbg: double free at " },
	{ "write after free", use_after_free, "BUG dbg: Poison overwritten (written after free) at " },
};

/* A correct program sees no report, and freed objects carry the poison. */
static void test_clean_use(void)
{
	struct kmem_cache *s = debug_cache();
	unsigned char *p[100];

	for (int round = 0; round < 5; round++) {
		for (int i = 0; i < 100; i++) {
			p[i] = kmem_cache_alloc(s, GFP_KERNEL);
			memset(p[i], i, OBJ);
		}
		for (int i = 0; i < 100; i++) {
			CHECK_EQ(p[i][OBJ - 1], i);
			kmem_cache_free(s, p[i]);
		}
	}
	/* Reading freed memory: our own allocator keeps it mapped. */
	CHECK_EQ(p[0][0], 0x6b);
	CHECK_EQ(p[0][OBJ - 2], 0x6b);
	CHECK_EQ(p[0][OBJ - 1], 0xa5);
	kmem_cache_destroy(s);
}

static void test_reports(void)
{
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		check_abort_report(cases[i].name, cases[i].provoke, cases[i].expect);
}

int main(void)
{
	RUN(test_clean_use);
	RUN(test_reports);
	return 0;
}
