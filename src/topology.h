/*
 * topology.h - the machine as the allocator sees it at start-up: possible
 * CPUs, cache line, NUMA nodes, read from sysfs without allocating. The
 * richer view from hwloc is <kmm/topology.h>'s kmm_topology().
 */
#ifndef KMM_TOPOLOGY_H
#define KMM_TOPOLOGY_H

#include "lock.h"

#pragma GCC visibility push(hidden)

unsigned int topology_nr_possible_cpus(void);
unsigned int topology_cache_line(void);
unsigned int topology_nr_nodes(void);

/* Held while hwloc loads (kmm_topology()); fork.c's handlers take it too. */
extern struct kmm_lock hwloc_lock;

#pragma GCC visibility pop

#endif
