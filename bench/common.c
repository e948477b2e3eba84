/*
 * common.c - memory figures, the thread barrier and the CPU count for the
 * benchmarks. /proc is read with open/read, so reading it allocates nothing.
 */
#include "common.h"

#include <fcntl.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The value in kB of "Field:" in /proc/self/status, as bytes. */
static uint64_t status_field(const char *field)
{
	char buf[4096];
	ssize_t n;
	int fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	char *line = strstr(buf, field);
	if (!line)
		return 0;
	return strtoull(line + strlen(field), NULL, 10) * 1024;
}

uint64_t bench_rss(void)
{
	return status_field("VmRSS:");
}

uint64_t bench_peak_rss(void)
{
	return status_field("VmHWM:");
}

void bench_report_memory(gb_state *s)
{
	gb_counter(s, "peak_rss", (double)bench_peak_rss(), GB_COUNTER_AVG_THREADS);
	gb_counter(s, "rss", (double)bench_rss(), GB_COUNTER_AVG_THREADS);
}

static _Atomic unsigned barrier_arrived;
static _Atomic unsigned barrier_generation;

void bench_barrier(int n)
{
	unsigned generation = atomic_load(&barrier_generation);

	if (atomic_fetch_add(&barrier_arrived, 1) + 1 == (unsigned)n) {
		atomic_store(&barrier_arrived, 0);
		atomic_fetch_add(&barrier_generation, 1);
		return;
	}
	while (atomic_load(&barrier_generation) == generation)
		sched_yield();
}

int bench_cpus(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	return n > 0 ? (int)n : 1;
}
