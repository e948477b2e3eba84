/*
 * internal.h - what every kmm source file shares: visibility, branch hints,
 * the cache-line size used to keep per-CPU data apart, and the fatal-report
 * helpers.
 *
 * Reports never use stdio or malloc: they format into a stack buffer and
 * write(2) it to stderr, so they are safe inside malloc and after a heap
 * corruption.
 */
#ifndef KMM_INTERNAL_H
#define KMM_INTERNAL_H

#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/single_threaded.h>

#define KMM_API __attribute__((visibility("default")))

/*
 * Constructor priorities: the boot arena's fork handlers register before
 * the other layers' (page_alloc.c), so that its prepare handler runs last.
 */
#define KMM_CTOR_BOOT_FORK 101
#define KMM_CTOR_FORK 102

#define likely(x) __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/*
 * Per-CPU structures are aligned to this many bytes so that two CPUs never
 * share a line. 128 covers the adjacent-line prefetcher of x86 and the
 * 128-byte lines of some arm64 cores; topology.c knows the real size.
 */
#define KMM_CACHELINE 128
#define ____cacheline_aligned __attribute__((aligned(KMM_CACHELINE)))

#define container_of(ptr, type, member) \
	((type *)((char *)(ptr) - offsetof(type, member)))

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__) || defined(__arm__)
	__asm__ __volatile__("yield" ::: "memory");
#endif
}

/*
 * ThreadSanitizer cannot see the ordering restartable sequences give (two
 * threads on one CPU never overlap inside one), so hand-offs through per-CPU
 * slots are annotated: the giver releases, the taker acquires.
 */
#ifdef __SANITIZE_THREAD__
void __tsan_acquire(void *addr);
void __tsan_release(void *addr);
#define tsan_acquire(p) __tsan_acquire((void *)(p))
#define tsan_release(p) __tsan_release((void *)(p))
#else
#define tsan_acquire(p) ((void)(p))
#define tsan_release(p) ((void)(p))
#endif

/*
 * Adds v (or, wrapping, subtracts) to a counter shared by all threads. While
 * the process has one thread (glibc clears __libc_single_threaded before a
 * second one runs, and never sets it again) a plain add does: a locked one
 * costs 6 ns on the 2-core EPYC VM, more than a page run's free path.
 */
static inline void kmm_counter_add(atomic_ulong *counter, unsigned long v)
{
	if (__libc_single_threaded)
		atomic_store_explicit(counter,
				      atomic_load_explicit(counter, memory_order_relaxed) + v,
				      memory_order_relaxed);
	else
		atomic_fetch_add_explicit(counter, v, memory_order_relaxed);
}

#pragma GCC visibility push(hidden)

/*
 * For the few variables that every process reads or writes, started or
 * not: they go into .data, whose pages the dynamic loader writes anyway
 * (relocations, and zeroing the .bss part of its last page). In .bss, they
 * were three more pages, faulted in by a process that never leaves the
 * boot arena (`ls`, a shell, the gcc driver); see docs/malloc.md.
 */
#define KMM_HOT_DATA __attribute__((section(".data.kmm_hot")))

/*
 * For the functions that a process running on kmm executes: the malloc
 * family's paths, start-up, decay, fork and exit; not the kernel API's
 * other calls, statistics, debugging or error reports. src/libkmm.ld puts
 * them right after the headers and read-only data, in the first 64 KiB of
 * the file, which the kernel maps at the dynamic loader's first touch of
 * the headers; the rest of the text is mapped only by a process that runs
 * it. The set was measured (gcov over the real-program workloads; see
 * docs/malloc.md#text-layout); a test checks that it fits the window.
 */
#define KMM_HOT_TEXT __attribute__((section(".text.hot.kmm")))

/*
 * kmm_report() formats a line (a subset of printf: %s %c %d %u %x %p %%,
 * with the 'l' and 'z' length modifiers, the '#' flag, a field width, and
 * %.*s)
 * prefixed with "kmm: " and writes it to stderr.
 */
void kmm_report(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void kmm_vreport(const char *fmt, va_list ap);

/* The same formatting, no prefix, no newline, to any fd (at most 511 bytes). */
void kmm_dprint(int fd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void kmm_write_all(int fd, const char *buf, size_t len);
/* Into buf (always terminated); returns the length written. */
size_t kmm_snprint(char *buf, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* kmm_bug() reports a broken invariant or a bad call and aborts. */
_Noreturn void kmm_bug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/*
 * Non-zero while this thread is inside kmm's start-up. An allocation made
 * from there (a libc call that mallocs) must not re-enter kmm: the malloc
 * family serves it from a small static arena.
 */
extern __thread int kmm_init_depth __attribute__((tls_model("initial-exec")));

/* Monotonic milliseconds, cheap (coarse clock, vDSO). */
unsigned long kmm_now_ms(void);

#pragma GCC visibility pop

#endif
