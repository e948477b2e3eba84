/*
 * rseq.h - which CPU the calling thread runs on.
 *
 * glibc >= 2.35 registers an rseq area for every thread; the kernel keeps its
 * cpu_id field current, so reading it costs one load from the thread
 * pointer. Where rseq is missing (valgrind, qemu-user, old kernels) glibc
 * leaves __rseq_size at 0 and sched_getcpu() answers instead. The answer is a
 * hint: the thread may migrate right after, so users protect per-CPU data
 * with a lock or a restartable sequence.
 */
#ifndef KMM_RSEQ_H
#define KMM_RSEQ_H

#include <sched.h>
#include <sys/rseq.h>

#include "internal.h"

static inline struct rseq *rseq_area(void)
{
	return (struct rseq *)((char *)__builtin_thread_pointer() + __rseq_offset);
}

static inline unsigned int kmm_current_cpu(void)
{
	if (likely(__rseq_size > 0)) {
		int cpu = (int)__atomic_load_n(&rseq_area()->cpu_id, __ATOMIC_RELAXED);

		if (likely(cpu >= 0))
			return (unsigned int)cpu;
	}
	int cpu = sched_getcpu();

	return cpu < 0 ? 0 : (unsigned int)cpu;
}

#endif
