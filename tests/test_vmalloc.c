/*
 * vmalloc: areas, guard pages, vrealloc by mremap, huge alignment, the
 * registry and its /proc/vmallocinfo-style listing.
 */
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <kmm/kmm.h>

#include "test.h"

#define MiB (1024UL * 1024UL)

static void test_basic(void)
{
	size_t size = MiB + 100;
	unsigned char *p = vmalloc(size);
	struct kmm_vmallocinfo info[8];
	int n;

	CHECK(p != NULL);
	CHECK(((uintptr_t)p & (PAGE_SIZE - 1)) == 0);
	memset(p, 0x42, size);
	CHECK(is_vmalloc_addr(p));
	CHECK(is_vmalloc_addr(p + size - 1));
	CHECK(!is_vmalloc_addr(p - 1));
	CHECK(!virt_addr_valid(p));
	n = kmm_vmallocinfo(info, 8);
	CHECK_EQ(n, 1);
	CHECK(info[0].addr == p);
	CHECK_EQ(info[0].nr_pages, (size + PAGE_SIZE - 1) / PAGE_SIZE);
	CHECK_EQ(info[0].size, (info[0].nr_pages + 1) * PAGE_SIZE);
	CHECK(info[0].caller != NULL);
	vfree(p);
	CHECK_EQ(kmm_vmallocinfo(info, 8), 0);
	vfree(NULL);
	CHECK(vmalloc(0) == NULL);
}

static void test_vzalloc(void)
{
	unsigned char *p = vzalloc(3 * MiB);

	for (size_t i = 0; i < 3 * MiB; i += 4093)
		CHECK_EQ(p[i], 0);
	vfree(p);
}

static void test_huge(void)
{
	unsigned char *p = vmalloc_huge(5 * MiB, GFP_KERNEL);
	struct kmm_vmallocinfo info;

	CHECK(p != NULL);
	CHECK(((uintptr_t)p & (2 * MiB - 1)) == 0);
	memset(p, 1, 5 * MiB);
	CHECK_EQ(kmm_vmallocinfo(&info, 1), 1);
	CHECK(info.huge);
	vfree(p);
}

static void test_vrealloc(void)
{
	size_t size = 2 * MiB;
	unsigned char *p = vmalloc(size);

	for (size_t i = 0; i < size; i++)
		p[i] = (unsigned char)(i % 251);
	p = vrealloc(p, 9 * MiB, GFP_KERNEL);
	CHECK(p != NULL);
	for (size_t i = 0; i < size; i++)
		CHECK_EQ(p[i], (unsigned char)(i % 251));
	CHECK_EQ(p[9 * MiB - 1], 0);
	p[9 * MiB - 1] = 7;
	p = vrealloc(p, MiB, GFP_KERNEL);
	for (size_t i = 0; i < MiB; i++)
		CHECK_EQ(p[i], (unsigned char)(i % 251));
	CHECK(is_vmalloc_addr(p + MiB - 1));
	CHECK(!is_vmalloc_addr(p + MiB));
	vfree(p);
}

struct touch {
	size_t size;
	int mode; /* 0: plain vmalloc, 1: after growth, 2: after shrink */
};

static void touch_past_end(void *arg)
{
	struct touch *t = arg;
	/* Exactly the size; grown from one page; shrunk from four times the size. */
	size_t first = t->mode == 0 ? t->size : t->mode == 1 ? PAGE_SIZE : 4 * t->size;
	unsigned char *p = vmalloc(first);

	signal(SIGSEGV, SIG_DFL); /* sanitizers catch it otherwise */

	if (t->mode)
		p = vrealloc(p, t->size, GFP_KERNEL);
	p[t->size - 1] = 1;	/* fine */
	p[t->size] = 1;		/* the guard page */
	_exit(0);
}

static void test_guard_page(void)
{
	for (int mode = 0; mode < 3; mode++) {
		struct touch t = { 8 * PAGE_SIZE, mode };
		struct child_result res;

		run_in_child(touch_past_end, &t, &res);
		if (!res.signaled)
			fprintf(stderr, "mode %d: no fault (status %d) %s\n", mode, res.status, res.err);
		CHECK(res.signaled);
		CHECK_EQ(res.signal, SIGSEGV);
	}
}

static void vfree_foreign(void *arg)
{
	char *p = vmalloc(PAGE_SIZE * 4);

	sprintf(arg, "%p", (void *)(p + PAGE_SIZE));
	vfree(p + PAGE_SIZE);
}

static void test_bad_vfree(void)
{
	check_abort_report("vfree inside an area", vfree_foreign, "not an address vmalloc gave out");
}

static void test_show(void)
{
	void *a = vmalloc(4 * PAGE_SIZE);
	int fds[2];
	char buf[1024] = { 0 }, expect[64];

	CHECK(pipe(fds) == 0);
	kmm_show_vmallocinfo(fds[1]);
	close(fds[1]);
	CHECK(read(fds[0], buf, sizeof(buf) - 1) > 0);
	close(fds[0]);
	sprintf(expect, "%p-", a);
	CHECK(strncmp(buf, expect, strlen(expect)) == 0);
	CHECK(strstr(buf, " pages=4 vmalloc\n") != NULL);
	vfree(a);
}

int main(void)
{
	RUN(test_basic);
	RUN(test_vzalloc);
	RUN(test_huge);
	RUN(test_vrealloc);
	RUN(test_guard_page);
	RUN(test_bad_vfree);
	RUN(test_show);
	return 0;
}
