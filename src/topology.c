/*
 * topology.c - possible CPUs (see topology.h). Read once, lazily; sysconf
 * reads /sys without allocating, so it is safe during allocator start-up.
 */
#include "topology.h"

#include <stdatomic.h>
#include <unistd.h>

static atomic_uint nr_possible;

unsigned int topology_nr_possible_cpus(void)
{
	unsigned int n = atomic_load_explicit(&nr_possible, memory_order_relaxed);
	long conf;

	if (n)
		return n;
	conf = sysconf(_SC_NPROCESSORS_CONF);
	n = conf > 0 ? (unsigned int)conf : 1;
	atomic_store_explicit(&nr_possible, n, memory_order_relaxed);
	return n;
}
