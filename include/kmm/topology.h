/*
 * <kmm/topology.h> - the machine as kmm sees it.
 *
 * At start-up kmm reads only what it needs, cheaply, from sysfs: the
 * possible CPUs (which size every per-CPU structure), the cache line and
 * the NUMA nodes. kmm_topology() adds what hwloc knows (cores, packages,
 * cache sizes), loading libhwloc on the first call; a process that never
 * asks never pays for it. KMM_OPTIONS=topology=1 prints it at start-up.
 */
#ifndef KMM_TOPOLOGY_H_PUBLIC
#define KMM_TOPOLOGY_H_PUBLIC

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

struct kmm_topology {
	unsigned int possible_cpus;	/* CPU ids run 0..possible_cpus-1 */
	unsigned int online_cpus;
	unsigned int cores;		/* 0 where unknown (no hwloc) */
	unsigned int packages;		/* 0 where unknown */
	unsigned int numa_nodes;
	unsigned int cache_line;	/* bytes, of the L1 data cache */
	size_t l1d_size, l2_size, l3_size;	/* bytes; 0 where unknown */
	const char *source;		/* "hwloc (API 2.8.0)" or "sysfs" */
};

/* Fills *topo; the first call may load libhwloc (not from a signal handler). */
void kmm_topology(struct kmm_topology *topo);

/* One line per fact, "key: value", written to fd. */
void kmm_show_topology(int fd);

#ifdef __cplusplus
}
#endif

#endif
