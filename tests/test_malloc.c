/*
 * The malloc family through the standard names, in a program that knows
 * nothing of kmm: meson runs it with LD_PRELOAD=libkmm.so. Semantics as
 * glibc documents them, fork while other threads allocate and flush stdio,
 * fork from a signal handler, thread churn, cross-thread frees, address-space
 * limits, and reports of bad pointers.
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "test.h"

#define MiB (1024UL * 1024UL)

/* Impossible sizes, hidden from the compiler's own checks. */
static volatile size_t huge_size = SIZE_MAX - 8;
static volatile size_t half_max = SIZE_MAX / 2;

/* The compiler may drop a malloc whose memory is never read: keep it. */
static void *keep(void *p)
{
	__asm__ __volatile__("" : "+r"(p) : : "memory");
	return p;
}

/* kmm's own answer to "is this yours?", looked up at run time. */
static bool kmm_owns(void *p)
{
	static bool (*valid)(const void *);

	if (!valid)
		valid = (bool (*)(const void *))dlsym(RTLD_DEFAULT, "kmm_virt_addr_valid");
	return valid && valid(p);
}

/* Writes a byte in each page; volatile, so that a write before free stays. */
static void touch_pages(char *p, size_t size)
{
	for (size_t i = 0; i < size; i += 4096)
		((volatile char *)p)[i] = 1;
}

static bool is_vmalloc(void *p)
{
	bool (*vm)(const void *) = (bool (*)(const void *))dlsym(RTLD_DEFAULT, "kmm_is_vmalloc_addr");

	return vm && vm(p);
}

static void test_kmm_is_malloc(void)
{
	void *p = malloc(100);

	CHECK(dlsym(RTLD_DEFAULT, "kmm_slab_mode") != NULL);
	CHECK(kmm_owns(p));
	free(p);
}

/* An arena block left live by test_boot_arena, for test_bad_pointers. */
static void *early_block;

/* Of the pages wholly inside [from, to), how many are resident (*whole: how many). */
static int resident_pages_within(const char *from, const char *to, int *whole)
{
	uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
	uintptr_t a = ((uintptr_t)from + page - 1) & ~(page - 1), e = (uintptr_t)to & ~(page - 1);
	unsigned char v[256];
	int n = 0;

	*whole = e > a ? (int)((e - a) / page) : 0;
	if (!*whole)
		return 0;
	if (*whole > (int)sizeof(v) || mincore((void *)a, e - a, v))
		return -1;
	for (int i = 0; i < *whole; i++)
		n += v[i] & 1;
	return n;
}

/*
 * Whether this kernel faults pages in on MADV_POPULATE_WRITE (Linux 5.14;
 * qemu-user accepts the advice and ignores it).
 */
static bool kernel_populates(void)
{
#ifdef MADV_POPULATE_WRITE
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	unsigned char v = 0;
	void *p = mmap(NULL, page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	bool ok;

	if (p == MAP_FAILED)
		return false;
	ok = madvise(p, page, MADV_POPULATE_WRITE) == 0 && mincore(p, page, &v) == 0 && (v & 1);
	munmap(p, page);
	return ok;
#else
	return false;
#endif
}

/* Whether the whole page after the one holding p's last byte is resident. */
static bool next_page_resident(const char *p, size_t size)
{
	uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
	uintptr_t next = ((uintptr_t)p + size - 1 + page) & ~(page - 1);
	int whole;

	return resident_pages_within((const char *)next, (const char *)next + page, &whole) == 1;
}

/*
 * While the arena is open, freed space serves again: a small block's from
 * the bin of its size (cleared for calloc), the last block's by the next
 * carving, and realloc grows the last block where it lies.
 */
static void test_boot_reuse(void)
{
	char *a = malloc(200), *b = malloc(4500), *c, *z;	/* b: too big for a bin, carved */

	CHECK(a && b && !kmm_owns(a));
	memset(a, 'x', 200);
	free(a);
	z = calloc(1, 200);
	CHECK(z == a);
	for (int i = 0; i < 200; i++)
		CHECK_EQ(z[i], 0);
	free(b);
	c = malloc(5000);
	CHECK(c == b);
	memset(c, 'c', 5000);
	a = realloc(c, 6000);
	CHECK(a == c);
	CHECK(malloc_usable_size(a) >= 6000);
	for (int i = 0; i < 5000; i++)
		CHECK_EQ(a[i], 'c');
	/* A block of 0 bytes goes on a bin too, its link clear of its neighbour. */
	b = malloc(0);
	c = malloc(8);
	CHECK(b != NULL && c != NULL);
	free(b);
	CHECK_EQ(malloc_usable_size(c), 8);
	CHECK(malloc(0) == b);
	free(b);
	free(c);
	free(a);
	free(z);
}

/* Whether the n bytes at p all hold c. */
static bool block_holds(const unsigned char *p, size_t n, unsigned char c)
{
	for (size_t k = 0; k < n; k++)
		if (p[k] != c)
			return false;
	return true;
}

/* Too big for a bin: always carved, so that a block before it is not the last. */
#define GUARD 4200

/*
 * A block of a few pages that test_boot_split() shrank in place, and its
 * old end: once the arena has closed, the pages of its tail go back to the
 * OS like those of any freed block (test_boot_arena()).
 */
static char *boot_shrunk, *boot_shrunk_end;

static void shrink_arena_block(void)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	size_t size = 3 * page < 48 * 1024 ? 3 * page : 48 * 1024;	/* below BOOT_LARGE_MIN */
	char *guard;
	int whole;

	boot_shrunk = malloc(size);
	guard = malloc(GUARD);
	CHECK(boot_shrunk && guard && !kmm_owns(boot_shrunk));
	memset(boot_shrunk, 's', size);
	boot_shrunk_end = boot_shrunk + size;
	CHECK(realloc(boot_shrunk, 100) == boot_shrunk);	/* not the last block: guard is */
	CHECK_EQ(resident_pages_within(boot_shrunk + 100, boot_shrunk_end, &whole), whole);
	free(guard);
}

/*
 * A request with no freed block of its size splits a bigger one that
 * leaves room for a block after it, and the rest serves the next request
 * of its size (cleared for calloc). A block that is not the last stays
 * where it is under realloc while it fits, and gives its tail to the bins
 * the same way. Each freed block is kept from being the last by a GUARD
 * block after it, and each request is sized so that only the block just
 * freed is in the bins it looks at (blocks of 1873-1936 and 3985-4048
 * bytes, headers included), so where each lands is known.
 */
static void test_boot_split(void)
{
	char *big = malloc(4000), *guard = malloc(GUARD), *guard2, *head, *rest, *p, *q, *tail;

	CHECK(big && guard && !kmm_owns(big));
	memset(big, 'b', 4000);
	free(big);
	head = malloc(3936);	/* 3952 of big's 4016 bytes */
	CHECK(head == big);
	rest = calloc(1, 48);	/* the other 64 */
	CHECK(rest == big + 3952);
	CHECK(block_holds((unsigned char *)rest, 48, 0));

	p = malloc(120);
	q = malloc(10);
	CHECK(p && q);
	memset(p, 'p', 120);
	CHECK(realloc(p, 128) == p);	/* the same 144 bytes */
	CHECK_EQ(p[119], 'p');
	free(q);
	q = malloc(2000);
	guard2 = malloc(GUARD);
	CHECK(q && guard2);
	memset(q, 'q', 2000);
	CHECK(realloc(q, 100) == q);	/* keeps 128 of its 2016 bytes */
	CHECK_EQ(malloc_usable_size(q), 100);
	CHECK_EQ(q[99], 'q');
	tail = calloc(1, 1824);	/* 1840 of the 1888 given back */
	CHECK(tail == q + 128);
	CHECK(block_holds((unsigned char *)tail, 1824, 0));
	free(tail);
	free(q);
	free(p);
	free(rest);
	free(head);
	free(guard2);
	free(guard);
	shrink_arena_block();
}

/*
 * A process's first requests come from the boot arena (preload/malloc.c)
 * until some 496 KiB are used, and buffers of 64 KiB and more meanwhile from
 * vmalloc areas, reused once freed; then from kmm's slabs and page runs for
 * good; with KMM_OPTIONS=boot_arena=0 from the slabs at once. Runs first, while the
 * arena is still open.
 */
static void test_boot_arena(void)
{
	const char *opts = getenv("KMM_OPTIONS");
	bool arena = !(opts && strstr(opts, "boot_arena=0"));
	static void *blocks[1024];
	char *first = malloc(100), *grown, *big;
	unsigned char *zero;
	size_t total = 0;
	struct rusage ru;
	long faults;
	int n = 0, ahead = 0;

	CHECK(first != NULL);
	CHECK_EQ(kmm_owns(first), !arena);
	CHECK(malloc_usable_size(first) >= 100);
	memset(first, 'a', 100);
	zero = calloc(1, 3000);
	CHECK(zero != NULL);
	for (int i = 0; i < 3000; i++)
		CHECK_EQ(zero[i], 0);
	grown = realloc(first, 5000);
	CHECK(grown != NULL);
	for (int i = 0; i < 100; i++)
		CHECK_EQ(grown[i], 'a');
	free(zero);
	free(grown);
	if (arena) {
		test_boot_reuse();
		test_boot_split();
	}

	/*
	 * A big buffer meanwhile is a vmalloc area. Once freed it is kept for
	 * the next buffer it fits: a loop on a big buffer at start-up does not
	 * map and fault it in every time.
	 */
	big = malloc(1 << 20);
	CHECK(big != NULL);
	CHECK_EQ(is_vmalloc(big), arena);
	touch_pages(big, 1 << 20);
	free(big);
	getrusage(RUSAGE_SELF, &ru);
	faults = ru.ru_minflt;
	for (int i = 0; i < 4; i++) {
		char *again = malloc(1 << 20);

		CHECK(again != NULL);
		CHECK_EQ(is_vmalloc(again), arena);
		touch_pages(again, 1 << 20);
		free(again);
	}
	getrusage(RUSAGE_SELF, &ru);
	/* A new mapping each time would fault in 1 MiB four times. */
	if (arena)
		CHECK(ru.ru_minflt - faults < 32);

	/* It frees and reallocs as any block. */
	big = malloc(100 * 1024);
	CHECK(big != NULL);
	CHECK_EQ(is_vmalloc(big), arena);
	memset(big, 'b', 100 * 1024);
	big = realloc(big, 300 * 1024);
	CHECK(big != NULL);
	for (int i = 0; i < 100 * 1024; i += 4096)
		CHECK_EQ(big[i], 'b');
	free(big);

	/*
	 * Used up by a bounded amount; from then on every block is a slab's.
	 * The arena faults its pages in 16 KiB at a time as it carves them,
	 * so the page after a new block is often resident before anything is
	 * carved there (with pages of 16 KiB or more, never: skipped).
	 */
	do {
		blocks[n] = malloc(1000);
		CHECK(blocks[n] != NULL);
		if (!kmm_owns(blocks[n]))
			ahead += next_page_resident(blocks[n], 1000);
		memset(blocks[n], 1, 1000);
		total += 1000;
	} while (!kmm_owns(blocks[n++]) && n < 1024);
	CHECK(kmm_owns(blocks[n - 1]));
	CHECK(total <= 512 * 1024);
	if (arena && kernel_populates() && sysconf(_SC_PAGESIZE) < 16 * 1024)
		CHECK(ahead > n / 8);
	for (int i = 0; i < 16; i++) {
		void *p = malloc(16 * (i + 1));

		CHECK(kmm_owns(p));
		free(p);
	}
	/*
	 * Once kmm runs, an arena page whose blocks are all freed goes back to
	 * the OS. The second half of blocks[] lies back to back (the arena
	 * carves upwards; the first requests may split freed blocks from the
	 * bins, which hold far less than half the arena), so the pages between
	 * them hold nothing else. blocks[0] stays live for test_bad_pointers.
	 */
	free(blocks[--n]);
	if (arena) {
		char *lo = blocks[n / 2], *hi = blocks[n - 2];
		int whole;

		CHECK(n > 16);
		CHECK_EQ(resident_pages_within(lo, hi, &whole), whole);
		early_block = blocks[0];
		while (n > 1)
			free(blocks[--n]);
		/* Idle pages go back in batches; malloc_trim gives back the rest. */
		malloc_trim(0);
		CHECK_EQ(resident_pages_within(lo, hi, &whole), 0);
		CHECK_EQ(resident_pages_within(boot_shrunk + 100, boot_shrunk_end, &whole), 0);
		CHECK_EQ(boot_shrunk[99], 's');
		free(boot_shrunk);
		n = 0;
	}
	while (n > 0)
		free(blocks[--n]);
}

static void test_basics(void)
{
	void *zero[4];

	for (size_t size = 1; size <= 9000; size += size < 300 ? 1 : 97) {
		unsigned char *p = malloc(size);

		CHECK(p != NULL);
		CHECK(((uintptr_t)p & 15) == 0);
		CHECK(malloc_usable_size(p) >= size);
		memset(p, 0xab, size);
		free(p);
	}
	for (int i = 0; i < 4; i++) {
		zero[i] = malloc(0);
		CHECK(zero[i] != NULL);
		for (int j = 0; j < i; j++)
			CHECK(zero[i] != zero[j]);
	}
	for (int i = 0; i < 4; i++)
		free(zero[i]);
	free(NULL);
	CHECK_EQ(malloc_usable_size(NULL), 0);
	errno = 0;
	CHECK(malloc(huge_size) == NULL);
	CHECK_EQ(errno, ENOMEM);
}

static void test_calloc(void)
{
	for (size_t size = 16; size <= 8 * MiB; size *= 4) {
		unsigned char *p = malloc(size);

		/* keep(): otherwise the compiler drops the memset and the malloc. */
		memset(p, 0xff, size);
		free(keep(p));
		p = calloc(1, size);
		CHECK(p != NULL);
		for (size_t i = 0; i < size; i += 61)
			CHECK_EQ(p[i], 0);
		CHECK_EQ(p[size - 1], 0);
		free(p);
	}
	/* A size that is not a multiple of 16, in a block a malloc of its class dirtied. */
	for (int round = 0; round < 2; round++) {
		unsigned char *p = malloc(24), *q;

		memset(p, 0xff, 24);
		free(keep(p));
		q = calloc(3, 7);
		CHECK(q != NULL);
		for (size_t i = 0; i < 21; i++)
			CHECK_EQ(q[i], 0);
		free(q);
	}
	errno = 0;
	CHECK(calloc(half_max, 4) == NULL);
	CHECK_EQ(errno, ENOMEM);
}

static void test_realloc(void)
{
	size_t sizes[] = { 1, 24, 100, 1000, 5000, 70000, 3 * MiB, 9 * MiB, 40 * MiB, 500, 10 };
	unsigned char *p = NULL;
	size_t have = 0;

	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		size_t keep = have < sizes[i] ? have : sizes[i];

		p = realloc(p, sizes[i]);
		CHECK(p != NULL);
		for (size_t b = 0; b < keep; b += 7)
			CHECK_EQ(p[b], (unsigned char)(b * 13));
		for (size_t b = 0; b < sizes[i]; b++)
			p[b] = (unsigned char)(b * 13);
		have = sizes[i];
	}
	CHECK(realloc(p, 0) == NULL);
	p = realloc(NULL, 50);
	CHECK(p != NULL);
	errno = 0;
	CHECK(reallocarray(p, half_max, 3) == NULL);
	CHECK_EQ(errno, ENOMEM);
	p[49] = 7; /* still ours */
	errno = 0;
	CHECK(realloc(p, huge_size) == NULL);
	CHECK_EQ(errno, ENOMEM);
	CHECK_EQ(p[49], 7);
	free(p);
}

/*
 * realloc shrinks a page run where it lies: the pages beyond the new size
 * go free, and the block keeps its contents up to there. (A size below
 * the run sizes, five pages and up, moves to a smaller block instead.)
 */
static void test_realloc_shrinks_run(void)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE), size = 48 * page, small = 10 * page;
	unsigned char *p = malloc(size), *q;

	CHECK(p != NULL);
	CHECK(kmm_owns(p));
	memset(p, 0x3c, size);
	q = realloc(p, small);
	CHECK(q == p);
	CHECK_EQ(malloc_usable_size(q), small);
	CHECK_EQ(q[0], 0x3c);
	CHECK_EQ(q[small - 1], 0x3c);
	free(q);
}

/*
 * malloc_trim gives back the pages inside free chunks of kmalloc's chunk
 * heap (blocks of one to four pages that are not powers of two), as glibc's
 * gives back its free chunks' pages: every other block of a row freed, the
 * whole pages inside the freed ones are no longer resident, and the blocks
 * still live keep their contents.
 */
/*
 * realloc shrinking a chunk of kmalloc's heap (1-4 pages, not a power of
 * two) keeps it where it is and gives the tail back, as glibc does: the
 * usable size follows the request, the bytes kept are intact, and the
 * freed tail serves the next request that fits in it.
 */
static void test_realloc_shrinks_chunk(void)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE), big = 3 * page + page / 2;
	size_t small = page + page / 4;
	unsigned char *guard, *p = malloc(big), *q, *tail;

	CHECK(p != NULL);
	guard = malloc(big);	/* the tail cannot merge past p's neighbour */
	CHECK(guard != NULL);
	memset(p, 0x6d, big);
	q = realloc(p, small);
	CHECK(q == p);
	CHECK(malloc_usable_size(q) >= small && malloc_usable_size(q) < small + 32);
	CHECK_EQ(q[0], 0x6d);
	CHECK_EQ(q[small - 1], 0x6d);
	tail = malloc(big - small - 64);
	CHECK(tail != NULL);
	CHECK(tail > q && tail < q + big);
	free(tail);
	free(q);
	free(guard);
}

static void test_trim_releases_free_chunks(void)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE), size = 3 * page + page / 2;
	unsigned char *p[16];
	int whole, resident = 0, wholes = 0;

	for (int i = 0; i < 16; i++) {
		p[i] = malloc(size);
		CHECK(p[i] != NULL);
		memset(p[i], 0x20 + i, size);
	}
	for (int i = 0; i < 16; i += 2)
		free(p[i]);
	malloc_trim(0);
	for (int i = 0; i < 16; i += 2) {
		int n = resident_pages_within((char *)p[i] + 64, (char *)p[i] + size, &whole);

		CHECK(n >= 0);
		resident += n;
		wholes += whole;
	}
	CHECK(wholes >= 8 * 2);
	CHECK_EQ(resident, 0);
	for (int i = 1; i < 16; i += 2) {
		CHECK_EQ(p[i][0], 0x20 + i);
		CHECK_EQ(p[i][size - 1], 0x20 + i);
		free(p[i]);
	}
}

static void test_aligned(void)
{
	void *p;

	CHECK_EQ(posix_memalign(&p, 3, 10), EINVAL);
	CHECK_EQ(posix_memalign(&p, 24, 10), EINVAL);
	for (size_t align = 8; align <= 4 * MiB; align *= 2) {
		size_t sizes[] = { 1, align / 2 + 1, align * 3 };

		for (int i = 0; i < 3; i++) {
			CHECK_EQ(posix_memalign(&p, align, sizes[i]), 0);
			CHECK(((uintptr_t)p & (align - 1)) == 0);
			memset(p, 1, sizes[i]);
			free(p);
			p = aligned_alloc(align, sizes[i]);
			CHECK(p && ((uintptr_t)p & (align - 1)) == 0);
			free(p);
			p = memalign(align, sizes[i]);
			CHECK(p && ((uintptr_t)p & (align - 1)) == 0);
			free(p);
		}
	}
	errno = 0;
	CHECK(aligned_alloc(48, 100) == NULL);
	CHECK_EQ(errno, EINVAL);
	p = valloc(100);
	CHECK(((uintptr_t)p & (sysconf(_SC_PAGESIZE) - 1)) == 0);
	free(p);
	p = pvalloc(100);
	CHECK(((uintptr_t)p & (sysconf(_SC_PAGESIZE) - 1)) == 0);
	CHECK(malloc_usable_size(p) >= (size_t)sysconf(_SC_PAGESIZE));
	free(p);
}

static void test_extras(void)
{
	struct mallinfo2 mi;
	void *big = keep(malloc(32 * MiB));

	memset(big, 1, 32 * MiB);
	mi = mallinfo2();
	CHECK(mi.arena > 0);
	CHECK(mi.hblkhd >= 32 * MiB);
	CHECK(mi.hblks >= 1);
	free(big);
	CHECK_EQ(mallopt(M_ARENA_MAX, 1), 1);
	CHECK_EQ(mallopt(12345, 1), 0);
	malloc_trim(0);
}

/* One of glibc's other names, as the program would find it: kmm's, when preloaded. */
static void *glibc_name(const char *name)
{
	void *fn = dlsym(RTLD_DEFAULT, name);

	CHECK(fn != NULL);
	return fn;
}

/*
 * glibc's other names for its allocator (__libc_malloc and the rest, cfree)
 * and C23's sized frees are kmm's too: a block from one family goes back
 * through the other.
 */
static void test_glibc_names(void)
{
	void *(*libc_malloc)(size_t) = (void *(*)(size_t))glibc_name("__libc_malloc");
	void (*libc_free)(void *) = (void (*)(void *))glibc_name("__libc_free");
	void *(*libc_calloc)(size_t, size_t) = (void *(*)(size_t, size_t))glibc_name("__libc_calloc");
	void *(*libc_realloc)(void *, size_t) = (void *(*)(void *, size_t))glibc_name("__libc_realloc");
	void *(*libc_memalign)(size_t, size_t) = (void *(*)(size_t, size_t))glibc_name("__libc_memalign");
	void *(*libc_valloc)(size_t) = (void *(*)(size_t))glibc_name("__libc_valloc");
	void *(*libc_pvalloc)(size_t) = (void *(*)(size_t))glibc_name("__libc_pvalloc");
	void (*cfree_fn)(void *) = (void (*)(void *))glibc_name("cfree");
	void (*sized)(void *, size_t) = (void (*)(void *, size_t))glibc_name("free_sized");
	void (*aligned_sized)(void *, size_t, size_t) =
		(void (*)(void *, size_t, size_t))glibc_name("free_aligned_sized");
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	unsigned char *p;

	p = libc_malloc(100);
	CHECK(kmm_owns(p));
	memset(p, 7, 100);
	p = libc_realloc(p, 5000);
	CHECK(kmm_owns(p));
	CHECK_EQ(p[99], 7);
	free(p);
	p = libc_calloc(10, 30);
	CHECK(kmm_owns(p));
	for (int i = 0; i < 300; i++)
		CHECK_EQ(p[i], 0);
	libc_free(p);
	p = libc_memalign(256, 1000);
	CHECK(kmm_owns(p) && (uintptr_t)p % 256 == 0);
	cfree_fn(p);
	p = libc_valloc(10);
	CHECK(kmm_owns(p) && (uintptr_t)p % page == 0);
	sized(p, 10);
	p = libc_pvalloc(page + 1);
	CHECK(kmm_owns(p) && (uintptr_t)p % page == 0);
	CHECK(malloc_usable_size(p) >= 2 * page);
	free(p);
	p = keep(malloc(64));
	libc_free(p);
	p = aligned_alloc(4096, 8192);
	CHECK(kmm_owns(p));
	aligned_sized(p, 4096, 8192);
	sized(NULL, 0);
}

/* glibc's XML layout, with kmm's figures; options other than 0 are EINVAL. */
static void test_malloc_info(void)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	void *big = keep(malloc(32 * MiB)); /* a vmalloc area, with 16 KiB pages too */
	unsigned long long mmap_size = 0;
	const char *at;

	CHECK(f != NULL);
	CHECK_EQ(malloc_info(0, f), 0);
	fclose(f);
	CHECK(strncmp(buf, "<malloc version=\"1\">\n<heap nr=\"0\">", 31) == 0);
	at = strstr(buf, "<total type=\"mmap\" count=\"");
	CHECK(at != NULL);
	CHECK(sscanf(at, "<total type=\"mmap\" count=\"%*u\" size=\"%llu\"/>", &mmap_size) == 1);
	CHECK(mmap_size >= 32 * MiB);
	CHECK(strstr(buf, "</malloc>\n") != NULL);
	free(buf);
	free(big);
	errno = 0;
	CHECK_EQ(malloc_info(1, stderr), -1);
	CHECK_EQ(errno, EINVAL);
}

static void stats_child(void *arg)
{
	(void)arg;
	malloc_stats();
}

static void test_malloc_stats(void)
{
	struct child_result res;

	run_in_child(stats_child, NULL, &res);
	CHECK_EQ(res.status, 0);
	CHECK(strstr(res.err, "Arena 0:\nsystem bytes     = ") != NULL);
	CHECK(strstr(res.err, "max mmap bytes   = ") < strstr(res.err, "resident KiB: slab "));
}

/* ---- fork while others allocate, read lines and flush stdio ---- */

static atomic_bool stop;
static FILE *shared_file;

static void *getline_loop(void *arg)
{
	char *line = NULL;
	size_t cap = 0;

	(void)arg;
	while (!atomic_load(&stop)) {
		rewind(shared_file);
		while (getline(&line, &cap, shared_file) > 0) {
			free(line); /* every line reallocates: malloc under the FILE lock */
			line = NULL;
			cap = 0;
		}
	}
	free(line);
	return NULL;
}

static void *flush_loop(void *arg)
{
	(void)arg;
	while (!atomic_load(&stop))
		fflush(NULL);
	return NULL;
}

static void *alloc_loop(void *arg)
{
	uint64_t seed = (uintptr_t)arg;

	while (!atomic_load(&stop)) {
		/* Up to three pages: slab objects and chunks of kmalloc's heap. */
		void *p = malloc(test_rand(&seed) % (3 * (size_t)sysconf(_SC_PAGESIZE)));

		free(p);
	}
	return NULL;
}

/*
 * Chunks of kmalloc's heap (one to three pages) and page runs (five to
 * twelve pages) only: their locks are taken most of the time.
 */
static void *heap_loop(void *arg)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	uint64_t seed = (uintptr_t)arg;

	while (!atomic_load(&stop)) {
		size_t size = test_rand(&seed) & 1 ? page + 16 + test_rand(&seed) % (2 * page)
						    : 4 * page + 1 + test_rand(&seed) % (8 * page);
		void *p = malloc(size);

		free(p);
	}
	return NULL;
}

/*
 * malloc_trim beside the forks and the other threads: it holds the heap's
 * and the runs' locks while it gives their free pages back. (Forks seldom
 * land inside: with the runs' atfork handlers removed, 3 runs still passed.)
 */
static void *trim_loop(void *arg)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);

	(void)arg;
	while (!atomic_load(&stop)) {
		char *run = malloc(40 * page), *chunk = malloc(3 * page - 100);

		memset(run, 1, 40 * page);
		memset(chunk, 1, 3 * page - 100);
		free(run);
		free(chunk);
		malloc_trim(0);
	}
	return NULL;
}

static void test_fork_stdio(void)
{
	pthread_t t[5];
	int forks = 300;

	shared_file = tmpfile();
	CHECK(shared_file != NULL);
	for (int i = 0; i < 200; i++)
		fprintf(shared_file, "line %d with some text to read back %0*d\n", i, i % 300, 0);
	fflush(shared_file);
	atomic_store(&stop, false);
	CHECK(pthread_create(&t[0], NULL, getline_loop, NULL) == 0);
	CHECK(pthread_create(&t[1], NULL, flush_loop, NULL) == 0);
	CHECK(pthread_create(&t[2], NULL, alloc_loop, (void *)7) == 0);
	CHECK(pthread_create(&t[3], NULL, heap_loop, (void *)11) == 0);
	CHECK(pthread_create(&t[4], NULL, trim_loop, NULL) == 0);
	alarm(120); /* a deadlock fails the test instead of hanging it */
	for (int i = 0; i < forks; i++) {
		int status;
		pid_t pid = fork();

		CHECK(pid >= 0);
		if (pid == 0) {
			char *p = malloc(1000);

			snprintf(p, 1000, "child %d", i);
			free(strdup(p));
			/* A heap chunk and a page run: their locks were taken over the fork. */
			free(malloc(2 * (size_t)sysconf(_SC_PAGESIZE) + 100 + (size_t)i));
			free(malloc(6 * (size_t)sysconf(_SC_PAGESIZE) + (size_t)i));
			_exit(0);
		}
		CHECK(waitpid(pid, &status, 0) == pid);
		CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	}
	alarm(0);
	atomic_store(&stop, true);
	for (int i = 0; i < 5; i++)
		pthread_join(t[i], NULL);
	fclose(shared_file);
}

/* ---- fork from a signal handler, single-threaded ---- */

static atomic_int handler_forks;

#define HANDLER_FORKS 30

/*
 * One-shot timer, re-armed by the handler once its fork is done: with a
 * periodic timer, a fork slower than the period (qemu-user) would leave the
 * next signal pending at every return, and the interrupted loop, whose
 * mallocs are the point of the test, would never run again.
 */
static void arm_fork_timer(void)
{
	struct itimerval once = { { 0, 0 }, { 0, 2000 } };

	setitimer(ITIMER_REAL, &once, NULL);
}

static void fork_in_handler(int sig)
{
	pid_t pid;
	int status;

	(void)sig;
	pid = fork();
	if (pid == 0)
		_exit(0);
	if (pid > 0 && waitpid(pid, &status, 0) == pid && WIFEXITED(status))
		atomic_fetch_add(&handler_forks, 1);
	if (atomic_load(&handler_forks) < HANDLER_FORKS)
		arm_fork_timer();
}

static void signal_fork_child(void *arg)
{
	uint64_t seed = 99;

	(void)arg;
	signal(SIGALRM, fork_in_handler);
	arm_fork_timer();
	while (atomic_load(&handler_forks) < HANDLER_FORKS) {
		void *p = malloc(test_rand(&seed) % 3000);

		free(p);
	}
	_exit(0);
}

static void test_fork_in_signal_handler(void)
{
	struct child_result res;

	/* In a child: this process has threads by now, the child has one. */
	run_in_child(signal_fork_child, NULL, &res);
	CHECK(!res.signaled);
	CHECK_EQ(res.status, 0);
}

/* ---- threads ---- */

static void *churn_thread(void *arg)
{
	void *p[64];

	(void)arg;
	for (int i = 0; i < 64; i++)
		p[i] = malloc(16 + i * 24);
	for (int i = 0; i < 64; i++)
		free(p[i]);
	return NULL;
}

static void test_thread_churn(void)
{
	size_t after_warmup = 0;

	for (int i = 0; i < 3000; i++) {
		pthread_t t;

		CHECK(pthread_create(&t, NULL, churn_thread, NULL) == 0);
		pthread_join(t, NULL);
		if (i == 100)
			after_warmup = mallinfo2().arena;
	}
	CHECK(mallinfo2().arena <= after_warmup + 8 * MiB);
}

#define HANDOFF 64

static _Atomic(unsigned char *) handoff[HANDOFF];

static void *remote_producer(void *arg)
{
	uint64_t seed = (uintptr_t)arg;

	for (int i = 0; i < 200000; i++) {
		size_t size = 1 + test_rand(&seed) % 600;
		unsigned char *p = malloc(size + 2);
		unsigned char *old;

		p[0] = (unsigned char)size;
		p[1] = (unsigned char)(size >> 8);
		memset(p + 2, (int)(size & 0xff), size);
		old = atomic_exchange(&handoff[test_rand(&seed) % HANDOFF], p);
		if (old) {
			size_t s = old[0] | (size_t)old[1] << 8;

			CHECK_EQ(old[s + 1], s & 0xff);
			free(old);
		}
	}
	return NULL;
}

static void test_cross_thread_free(void)
{
	pthread_t t[2];

	for (int i = 0; i < 2; i++)
		CHECK(pthread_create(&t[i], NULL, remote_producer, (void *)(uintptr_t)(i + 3)) == 0);
	for (int i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	for (int i = 0; i < HANDOFF; i++)
		free(atomic_exchange(&handoff[i], NULL));
}

/* ---- limits and bad pointers ---- */

static void limited_child(void *arg)
{
	struct rlimit lim;
	void *held[4096];
	size_t n = 0;
	FILE *f = fopen("/proc/self/statm", "r");
	unsigned long pages = 0;

	(void)arg;
	CHECK(f && fscanf(f, "%lu", &pages) == 1);
	fclose(f);
	lim.rlim_cur = lim.rlim_max = pages * (size_t)sysconf(_SC_PAGESIZE) + 128 * MiB;
	CHECK(setrlimit(RLIMIT_AS, &lim) == 0);
	errno = 0;
	if (malloc(1024 * MiB) != NULL)
		_exit(TEST_SKIP); /* not enforced (qemu-user) */
	CHECK_EQ(errno, ENOMEM);
	while (n < 4096 && (held[n] = malloc(MiB)) != NULL)
		memset(held[n++], 1, 4096);
	CHECK(n > 0 && n < 4096);
	CHECK_EQ(errno, ENOMEM);
	while (n)
		free(held[--n]);
	held[0] = malloc(10 * MiB);
	CHECK(held[0] != NULL);
	free(held[0]);
	_exit(0);
}

static void test_address_limit(void)
{
	struct child_result res;

	run_in_child(limited_child, NULL, &res);
	if (res.status == TEST_SKIP) {
		printf("RLIMIT_AS not enforced here: skipped\n");
		return;
	}
	if (res.signaled || res.status)
		fprintf(stderr, "%s\n", res.err);
	CHECK(!res.signaled);
	CHECK_EQ(res.status, 0);
}

static void free_stack(void *arg)
{
	char on_stack[32];

	sprintf(arg, "%p", (void *)on_stack);
	free(on_stack);
}

static void realloc_static(void *arg)
{
	static char not_heap[64];

	sprintf(arg, "%p", (void *)not_heap);
	free(realloc(not_heap, 100));
}

static void double_free_large(void *arg)
{
	char *p = malloc(200000);

	sprintf(arg, "%p", (void *)p);
	free(p);
	free(p);
}

static void double_free_small(void *arg)
{
	char *p = malloc(40);

	sprintf(arg, "%p", (void *)p);
	free(p);
	free(p);
}

/* An arena block freed twice is caught too. */
static void double_free_early(void *arg)
{
	sprintf(arg, "%p", early_block);
	free(early_block);
	free(early_block);
}

static void test_bad_pointers(void)
{
	static const struct {
		void (*fn)(void *);
		const char *expect;
	} cases[] = {
		{ free_stack, "kmm: BUG: free(" },
		{ realloc_static, "kmm: BUG: realloc(" },
		{ double_free_large, "kmm: BUG: free(" },
		{ double_free_small, "double free (the block is already free)" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		check_abort_report(cases[i].expect, cases[i].fn, cases[i].expect);
	if (early_block)
		check_abort_report("double free", double_free_early, "double free");
}

/* ---- no cancellation point inside the malloc family ---- */

static atomic_bool cancel_sent;
static atomic_int cancel_steps;

#define CANCEL_SMALL 160

/*
 * Spins until its cancel is pending (spinning is no cancellation point),
 * then goes through kmm's start-up and every kind of block with it pending.
 */
static void *pending_cancel_worker(void *arg)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	void *small[CANCEL_SMALL], *p, *q = NULL;

	(void)arg;
	while (!atomic_load(&cancel_sent))
		;
	for (int i = 0; i < CANCEL_SMALL; i++)	/* 640 KiB: past the boot arena */
		small[i] = keep(malloc(4000));
	atomic_store(&cancel_steps, 1);
	p = keep(calloc(1, 3 * page));		/* a chunk of kmalloc's heap */
	p = realloc(p, 40 * page);		/* a page run */
	p = realloc(p, 4 * MiB);		/* a vmalloc area */
	CHECK(posix_memalign(&q, 4096, 5000) == 0);
	atomic_store(&cancel_steps, 2);
	for (int i = 0; i < CANCEL_SMALL; i++)
		free(small[i]);
	free(p);
	free(q);
	malloc_trim(0);
	atomic_store(&cancel_steps, 3);
	pthread_testcancel();
	atomic_store(&cancel_steps, 4);
	return NULL;
}

static size_t file_size(const char *path)
{
	struct stat st;

	return path && stat(path, &st) == 0 ? (size_t)st.st_size : 0;
}

/*
 * POSIX makes none of malloc, free, realloc and the rest a cancellation
 * point, and glibc's are not: a thread cancelled inside one would unwind
 * with the allocator's locks held. kmm's start-up reads sysfs and may log
 * to a file (KMM_OPTIONS=log_load, set by meson for this run): with libc's
 * open, read and write, a pending cancel was acted on there. Run as
 * "test_malloc cancel", a process of its own, so that kmm starts inside
 * the worker: the log file is empty until then.
 */
static void test_no_cancellation_point(void)
{
	const char *log = getenv("KMM_CANCEL_LOG");
	pthread_t t;
	void *ret = NULL;
	void *after;
	int fd;

	if (log) {
		fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		CHECK(fd >= 0);
		close(fd);
	}
	CHECK_EQ(pthread_create(&t, NULL, pending_cancel_worker, NULL), 0);
	CHECK_EQ(pthread_cancel(t), 0);
	atomic_store(&cancel_sent, true);
	CHECK_EQ(pthread_join(t, &ret), 0);
	CHECK(ret == PTHREAD_CANCELED);
	CHECK_EQ(atomic_load(&cancel_steps), 3);
	if (log)
		CHECK(file_size(log) > 0); /* kmm started (in the worker) and logged */
	after = keep(malloc(4000));
	CHECK(kmm_owns(after));
	free(after);
}

/* ---- fork while another thread is in the boot arena or starting kmm ---- */

static atomic_bool boot_fork_go, boot_fork_done;
static atomic_int boot_fork_bad, boot_fork_count;

/* The child allocates at once: from what is left of the arena, then past it. */
static void boot_fork_child(void)
{
	static void *volatile sink[64];

	alarm(5); /* a child that inherited a lock held would hang: SIGALRM */
	for (int i = 0; i < 64; i++)
		sink[i] = malloc(2000 + (size_t)i * 16);
	for (int i = 0; i < 64; i++)
		free(sink[i]);
	_exit(sink[63] ? 0 : 1);
}

#define BOOT_FORKS 32

/* Forks back to back, so that some forks land while the main thread holds a lock; then reaps. */
static void *boot_forker(void *arg)
{
	pid_t pids[BOOT_FORKS];
	int n = 0;

	(void)arg;
	atomic_store(&boot_fork_go, true);
	while (n < BOOT_FORKS && (!atomic_load(&boot_fork_done) || n < 4)) {
		pids[n] = fork();
		if (pids[n] == 0)
			boot_fork_child();
		if (pids[n] < 0)
			break;
		n++;
	}
	for (int i = 0; i < n; i++) {
		int status;

		if (waitpid(pids[i], &status, 0) != pids[i] || !WIFEXITED(status) ||
		    WEXITSTATUS(status) != 0)
			atomic_fetch_add(&boot_fork_bad, 1);
	}
	atomic_store(&boot_fork_count, n);
	return NULL;
}

/*
 * A process's first blocks come from the boot arena, under its own lock,
 * and the block that does not fit starts kmm under its start-up locks. In
 * a process whose arena is still open, a thread forks again and again while
 * the main thread allocates through the arena and past it.
 */
static void boot_fork_scenario(void *arg)
{
	static void *volatile blocks[100];
	pthread_t t;

	(void)arg;
	CHECK_EQ(pthread_create(&t, NULL, boot_forker, NULL), 0);
	while (!atomic_load(&boot_fork_go))
		;
	usleep(200); /* the first fork under way */
	for (int round = 0; round < 3; round++) {
		for (int i = 0; i < 100; i++) /* 500 KiB a round: through the arena and past it */
			blocks[i] = malloc(5000 + (size_t)round * 100);
		usleep(1000);
	}
	atomic_store(&boot_fork_done, true);
	CHECK_EQ(pthread_join(t, NULL), 0);
	CHECK(atomic_load(&boot_fork_count) >= 4);
	CHECK_EQ(atomic_load(&boot_fork_bad), 0);
	CHECK(kmm_owns(blocks[99]));
}

/*
 * Every child of those forks must be able to allocate. Before the boot
 * arena's lock had fork handlers, a child forked while the main thread
 * carved a block hung at its first allocation: one scenario in five, so
 * this runs 16, each in a child of this process while it has one thread
 * and its arena is still open (run as "test_malloc fork-boot").
 */
static void test_fork_during_boot(void)
{
	struct child_result res;

	for (int i = 0; i < 16; i++) {
		run_in_child(boot_fork_scenario, NULL, &res);
		if (res.signaled || res.status != 0)
			fprintf(stderr, "scenario %d: %s\n", i, res.err);
		CHECK(!res.signaled);
		CHECK_EQ(res.status, 0);
	}
}

/*
 * Dead space closes the arena early: a program that frees each block once
 * it has made a bigger one (a table regrown by copying) leaves most of what
 * the arena carves dead, and kmm starts soon after the first 112 KiB
 * instead of at 496 KiB. Needs an arena still open: run as "test_malloc
 * boot-dead".
 */
static void test_boot_dead_space(void)
{
	char *prev = NULL;
	size_t carved = 0;
	int k;

	for (k = 0; k < 400; k++) {
		size_t size = 1100 + 16 * (size_t)k;	/* each bigger than every freed one */
		char *q = malloc(size);

		CHECK(q != NULL);
		if (kmm_owns(q)) {
			free(q);
			break;
		}
		memset(q, 'd', size);
		carved += size;
		free(prev);
		prev = q;
	}
	free(prev);
	CHECK(k < 400);
	CHECK(carved >= 64 * 1024);
	CHECK(carved <= 160 * 1024);
}

/*
 * The arena's pages above its carving go back when it closes: a 48 KiB
 * block, carved last, written and freed, takes the carving back down but
 * leaves its pages faulted in; a request for more than 16-byte alignment
 * closes the arena. The block's first 16 KiB may serve requests nested in
 * kmm's start-up; the rest must not be resident. Needs an arena still
 * open: run as "test_malloc boot-tail".
 */
static void test_boot_tail_released(void)
{
	size_t size = 48 * 1024;	/* below BOOT_LARGE_MIN: an arena block */
	char *last = malloc(size), *aligned;
	int whole;

	CHECK(last && !kmm_owns(last));
	memset(last, 't', size);
	CHECK_EQ(resident_pages_within(last + 16 * 1024, last + size, &whole), whole);
	CHECK(whole > 0);
	free(last);
	aligned = aligned_alloc(64, 64);
	CHECK(aligned && kmm_owns(aligned));
	CHECK_EQ(resident_pages_within(last + 16 * 1024, last + size, &whole), 0);
	free(aligned);
}

/*
 * Threads that allocate, check, realloc and free blocks of up to 4500 bytes
 * at once, from a process's start: through the arena's bins and splits, its
 * carving taken back and its in-place realloc while it is open, and past it.
 * Every block keeps its bytes, and calloc's are zero even where the arena
 * hands out space a second time. Needs an arena still open: run as
 * "test_malloc boot-threads".
 */
#define BOOT_THREAD_SLOTS 64

/*
 * A new size for a block of n bytes: 8 bytes more (a table regrown step by
 * step, mostly in place), half (a tail given back to the bins), or any up
 * to 4500 bytes (exact bins, coarse bins and blocks too big for a bin).
 */
static size_t boot_churn_resize(size_t n, unsigned int *seed)
{
	switch (rand_r(seed) % 4) {
	case 0:
		return n + 8;
	case 1:
		return n / 2 + 1;
	default:
		return (size_t)rand_r(seed) % 4500 + 1;
	}
}

static void *boot_churn(void *arg)
{
	unsigned int seed = (unsigned int)(uintptr_t)arg;
	unsigned char *p[BOOT_THREAD_SLOTS] = { 0 };
	size_t n[BOOT_THREAD_SLOTS] = { 0 };

	for (int round = 0; round < 4000; round++) {
		int i = rand_r(&seed) % BOOT_THREAD_SLOTS;
		unsigned char c = (unsigned char)(i * 7 + 1);

		if (p[i]) {
			size_t grow = boot_churn_resize(n[i], &seed);
			unsigned char *q;

			CHECK(block_holds(p[i], n[i], c));
			if (rand_r(&seed) % 2) {
				free(p[i]);
				p[i] = NULL;
				continue;
			}
			q = realloc(p[i], grow);
			CHECK(q != NULL);
			CHECK(block_holds(q, n[i] < grow ? n[i] : grow, c));
			p[i] = q;
			n[i] = grow;
			memset(q, c, grow);
			continue;
		}
		n[i] = rand_r(&seed) % 8 ? (size_t)rand_r(&seed) % 1500 : 0;
		if (rand_r(&seed) % 4 == 0) {
			p[i] = calloc(1, n[i]);
			CHECK(p[i] != NULL);
			CHECK(block_holds(p[i], n[i], 0));
		} else {
			p[i] = malloc(n[i]);
			CHECK(p[i] != NULL);
		}
		memset(p[i], c, n[i]);
	}
	for (int i = 0; i < BOOT_THREAD_SLOTS; i++)
		free(p[i]);
	return NULL;
}

static void test_boot_threads(void)
{
	pthread_t t[4];

	for (uintptr_t i = 0; i < 4; i++)
		CHECK_EQ(pthread_create(&t[i], NULL, boot_churn, (void *)(i + 1)), 0);
	boot_churn((void *)99);
	for (int i = 0; i < 4; i++)
		CHECK_EQ(pthread_join(t[i], NULL), 0);
}

int main(int argc, char **argv)
{
	/* Modes that need a process of their own (a fresh boot arena, a pending cancel). */
	static const struct {
		const char *mode, *name;
		void (*fn)(void);
	} alone[] = {
		{ "cancel", "test_no_cancellation_point", test_no_cancellation_point },
		{ "fork-boot", "test_fork_during_boot", test_fork_during_boot },
		{ "boot-dead", "test_boot_dead_space", test_boot_dead_space },
		{ "boot-tail", "test_boot_tail_released", test_boot_tail_released },
		{ "boot-threads", "test_boot_threads", test_boot_threads },
	};

	for (size_t i = 0; argc > 1 && i < sizeof(alone) / sizeof(alone[0]); i++) {
		if (strcmp(argv[1], alone[i].mode) == 0) {
			test_run(alone[i].name, alone[i].fn);
			return 0;
		}
	}
	RUN(test_boot_arena);
	RUN(test_kmm_is_malloc);
	RUN(test_basics);
	RUN(test_calloc);
	RUN(test_realloc);
	RUN(test_realloc_shrinks_run);
	RUN(test_trim_releases_free_chunks);
	RUN(test_realloc_shrinks_chunk);
	RUN(test_aligned);
	RUN(test_extras);
	RUN(test_malloc_stats);
	RUN(test_glibc_names);
	RUN(test_malloc_info);
	RUN(test_fork_in_signal_handler);
	RUN(test_fork_stdio);
	RUN(test_thread_churn);
	RUN(test_cross_thread_free);
	RUN(test_address_limit);
	RUN(test_bad_pointers);
	return 0;
}
