/*
 * percpu.h - what percpu_counter.c uses of percpu.c without going through
 * the exported this_cpu calls: resolve a per-CPU pointer once, then
 * operate on this CPU's copy (rseq sequences or atomics, as in percpu.c).
 */
#ifndef KMM_PERCPU_H_INTERNAL
#define KMM_PERCPU_H_INTERNAL

#include <stddef.h>
#include <stdint.h>

#include "lock.h"

#pragma GCC visibility push(hidden)

/* CPU 0's copy of a per-CPU allocation or registered static variable. */
char *pcpu_base(const void *pcp);
uint64_t pcpu_this_read(char *base, size_t size);
/* If this CPU's copy holds expect, it becomes newv; returns what it held. */
uint64_t pcpu_this_cmpxchg(char *base, uint64_t expect, uint64_t newv, size_t size);
/* Swaps in newv; returns the old value. */
uint64_t pcpu_this_xchg(char *base, uint64_t newv, size_t size);

/* percpu's one lock; fork.c's handlers take it too. */
extern struct kmm_lock pcpu_lock;

#pragma GCC visibility pop

#endif
