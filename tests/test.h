/*
 * test.h - the test suite's harness: checks that name the failing line and
 * values, running a piece of code in a child to watch it crash, skips.
 * Tests exit 0 on success, 77 when skipped (meson's convention), 1 on failure.
 */
#ifndef KMM_TEST_H
#define KMM_TEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>

#define TEST_SKIP 77

void test_fail(const char *file, int line, const char *expr, const char *detail);
void test_fail_eq(const char *file, int line, const char *a_expr, const char *b_expr,
		  long long a, long long b);

#define CHECK(cond)                                                        \
	do {                                                               \
		if (!(cond))                                               \
			test_fail(__FILE__, __LINE__, #cond, NULL);        \
	} while (0)

#define CHECK_EQ(a, b)                                                     \
	do {                                                               \
		long long a_ = (long long)(a), b_ = (long long)(b);        \
		if (a_ != b_)                                              \
			test_fail_eq(__FILE__, __LINE__, #a, #b, a_, b_);  \
	} while (0)

/* Runs one test function, printing its name and result. */
#define RUN(fn) test_run(#fn, fn)
void test_run(const char *name, void (*fn)(void));

struct child_result {
	bool signaled;
	int signal;	/* when signaled */
	int status;	/* exit status otherwise */
	char err[8192];	/* what the child wrote to stderr */
};

/* Runs fn(arg) in a forked child, capturing its stderr and how it ended. */
void run_in_child(void (*fn)(void *), void *arg, struct child_result *res);

/*
 * A report kmm must make: runs provoke(addr) in a child, where addr is a
 * shared buffer in which provoke writes (with "%p") the address it misuses.
 * The child must die of SIGABRT, and its stderr must hold a "kmm: BUG"
 * report containing expect and that address. name labels the case in the output.
 */
void check_abort_report(const char *name, void (*provoke)(void *addr), const char *expect);

/* Resident set size of this process in bytes (VmRSS). */
size_t test_rss(void);

/* True when built with a sanitizer (address limits and RSS mean little). */
bool test_sanitized(void);

/*
 * True when transparent huge pages are "always" on: kmm's sections may then
 * be backed by 2 MiB pages, resident or not as a whole, and page-level
 * residency checks mean little.
 */
bool test_thp_always(void);

/* xorshift, so that runs are repeatable */
uint64_t test_rand(uint64_t *state);

#endif
