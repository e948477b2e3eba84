/*
 * topology.h - the machine as kmm sees it: how many CPUs may ever run the
 * process. The cheap answer comes from sysconf; hwloc refines it later.
 */
#ifndef KMM_TOPOLOGY_H
#define KMM_TOPOLOGY_H

#pragma GCC visibility push(hidden)

unsigned int topology_nr_possible_cpus(void);

#pragma GCC visibility pop

#endif
