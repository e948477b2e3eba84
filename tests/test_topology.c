/*
 * test_topology.c - <kmm/topology.h>: the cheap start-up view and the hwloc
 * view agree, hwloc is loaded only when asked, the printed form.
 */
#include <string.h>
#include <unistd.h>

#include <kmm/kmm.h>

#include "test.h"

static bool maps_mention(const char *what)
{
	char line[512];
	bool found = false;
	FILE *f = fopen("/proc/self/maps", "r");

	CHECK(f != NULL);
	while (fgets(line, sizeof(line), f))
		found |= strstr(line, what) != NULL;
	fclose(f);
	return found;
}

static void test_lazy_hwloc(void)
{
	/* The allocator runs, and sizes its per-CPU data, without hwloc. */
	kmm_kfree(kmm_kmalloc(64, GFP_KERNEL));
	CHECK(num_possible_cpus() >= 1);
	CHECK(!maps_mention("libhwloc"));
}

static void test_view(void)
{
	struct kmm_topology t;
	long conf = sysconf(_SC_NPROCESSORS_CONF);
	long online = sysconf(_SC_NPROCESSORS_ONLN);

	kmm_topology(&t);
	printf("source %s: %u possible, %u online, %u cores, %u packages, %u nodes, line %u\n",
	       t.source, t.possible_cpus, t.online_cpus, t.cores, t.packages, t.numa_nodes,
	       t.cache_line);
	CHECK_EQ(t.possible_cpus, num_possible_cpus());
	CHECK(t.possible_cpus >= (unsigned int)conf);
	CHECK_EQ(t.online_cpus, online);
	CHECK(t.numa_nodes >= 1);
	CHECK(t.cache_line >= 16 && (t.cache_line & (t.cache_line - 1)) == 0);
	if (strncmp(t.source, "hwloc", 5) == 0) {
		CHECK(maps_mention("libhwloc"));
		CHECK(t.cores >= 1 && t.cores <= t.online_cpus);
		CHECK(t.packages >= 1 && t.packages <= t.cores);
		CHECK(t.l1d_size > 0);
	} else {
		CHECK(strcmp(t.source, "sysfs") == 0);
		CHECK_EQ(t.cores, 0);
	}
	/* A second call gives the same view without loading anything again. */
	struct kmm_topology again;
	kmm_topology(&again);
	CHECK(memcmp(&t, &again, sizeof(t)) == 0);
}

static void test_show(void)
{
	int fds[2];
	char buf[1024], want[64];
	struct kmm_topology t;
	ssize_t n;

	kmm_topology(&t);
	CHECK(pipe(fds) == 0);
	kmm_show_topology(fds[1]);
	close(fds[1]);
	n = read(fds[0], buf, sizeof(buf) - 1);
	close(fds[0]);
	CHECK(n > 0);
	buf[n] = '\0';
	snprintf(want, sizeof(want), "possible_cpus: %u\n", t.possible_cpus);
	CHECK(strstr(buf, want) != NULL);
	snprintf(want, sizeof(want), "source: %s\n", t.source);
	CHECK(strstr(buf, want) != NULL);
	CHECK(strstr(buf, "cache_line: ") != NULL);
}

int main(void)
{
	RUN(test_lazy_hwloc);
	RUN(test_view);
	RUN(test_show);
	return 0;
}
