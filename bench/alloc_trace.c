/*
 * alloc_trace.c - records a program's allocations, for bench/replay.
 *
 *   KMM_TRACE_DIR=DIR LD_PRELOAD=build/bench/alloc_trace.so PROGRAM...
 *
 * Each process writes DIR/alloc.PID.trace (DIR defaults to /tmp), one line
 * per call, addresses in hex and sizes in decimal:
 *   m PTR SIZE        malloc, calloc, the aligned allocators
 *   r NEW SIZE OLD    realloc (NEW 0: it failed, or freed OLD with SIZE 0)
 *   f PTR             free of a non-NULL pointer
 * The calls go on to glibc's allocator (__libc_malloc and the rest), so the
 * trace is of the program, not of any allocator's choices. One lock orders
 * the lines of all threads. The buffer is written out when full and at exit;
 * what a process holds when it calls exec is lost, and a forked child starts
 * a file of its own.
 */
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <pthread.h>

extern void *__libc_malloc(size_t size);
extern void *__libc_calloc(size_t n, size_t size);
extern void *__libc_realloc(void *p, size_t size);
extern void *__libc_memalign(size_t align, size_t size);
extern void __libc_free(void *p);

#define BUF_SIZE (1 << 16)
#define LINE_MAX_LEN 64

static char buf[BUF_SIZE];
static size_t used;
static int fd = -1;
static int lock;

static void lock_trace(void)
{
	while (__atomic_exchange_n(&lock, 1, __ATOMIC_ACQUIRE))
		;
}

static void unlock_trace(void)
{
	__atomic_store_n(&lock, 0, __ATOMIC_RELEASE);
}

/* Lock held. */
static void flush_trace(void)
{
	size_t off = 0;

	while (fd >= 0 && off < used) {
		ssize_t n = write(fd, buf + off, used - off);

		if (n <= 0)
			break;
		off += (size_t)n;
	}
	used = 0;
}

static size_t put_number(char *out, uintptr_t v, unsigned int base)
{
	char digits[24];
	size_t n = 0;

	do {
		digits[n++] = "0123456789abcdef"[v % base];
		v /= base;
	} while (v);
	for (size_t i = 0; i < n; i++)
		out[i] = digits[n - 1 - i];
	return n;
}

/* Lock held: opens this process's file (no allocation: no stdio). */
static void open_trace(void)
{
	const char *dir = getenv("KMM_TRACE_DIR");
	char path[512];
	size_t n;

	if (!dir || !*dir)
		dir = "/tmp";
	n = strnlen(dir, 400);
	memcpy(path, dir, n);
	memcpy(path + n, "/alloc.", 7);
	n += 7;
	n += put_number(path + n, (uintptr_t)getpid(), 10);
	memcpy(path + n, ".trace", 7);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		fd = -2; /* do not try again */
}

static void record(char op, const void *p, size_t size, const void *old, int fields)
{
	char *line;
	size_t n = 0;

	lock_trace();
	if (fd == -1)
		open_trace();
	if (used + LINE_MAX_LEN > BUF_SIZE)
		flush_trace();
	line = buf + used;
	line[n++] = op;
	line[n++] = ' ';
	n += put_number(line + n, (uintptr_t)p, 16);
	if (fields > 1) {
		line[n++] = ' ';
		n += put_number(line + n, size, 10);
	}
	if (fields > 2) {
		line[n++] = ' ';
		n += put_number(line + n, (uintptr_t)old, 16);
	}
	line[n++] = '\n';
	used += n;
	unlock_trace();
}

static void child_after_fork(void)
{
	/* The parent's lines stay the parent's; the child writes its own file. */
	used = 0;
	fd = -1;
	lock = 0;
}

__attribute__((constructor)) static void trace_init(void)
{
	pthread_atfork(NULL, NULL, child_after_fork);
}

__attribute__((destructor)) static void trace_fini(void)
{
	lock_trace();
	flush_trace();
	unlock_trace();
}

void *malloc(size_t size)
{
	void *p = __libc_malloc(size);

	if (p)
		record('m', p, size, NULL, 2);
	return p;
}

void *calloc(size_t n, size_t size)
{
	void *p = __libc_calloc(n, size);

	if (p)
		record('m', p, n * size, NULL, 2);
	return p;
}

void *realloc(void *old, size_t size)
{
	void *p = __libc_realloc(old, size);

	record('r', p, size, old, 3);
	return p;
}

void free(void *p)
{
	if (p)
		record('f', p, 0, NULL, 1);
	__libc_free(p);
}

static void *aligned(size_t align, size_t size)
{
	void *p = __libc_memalign(align, size);

	if (p)
		record('m', p, size, NULL, 2);
	return p;
}

void *memalign(size_t align, size_t size)
{
	return aligned(align, size);
}

void *aligned_alloc(size_t align, size_t size)
{
	return aligned(align, size);
}

int posix_memalign(void **out, size_t align, size_t size)
{
	void *p = aligned(align, size);

	if (!p)
		return ENOMEM;
	*out = p;
	return 0;
}

void *valloc(size_t size)
{
	return aligned((size_t)sysconf(_SC_PAGESIZE), size);
}
