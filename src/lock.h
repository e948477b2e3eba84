/*
 * lock.h - the one lock kmm uses: a futex mutex (0 = free, 1 = held,
 * 2 = held with possible sleepers) with a short spin before sleeping.
 *
 * kmm_lock_spin() takes the same lock without ever sleeping: GFP_ATOMIC and
 * GFP_NOWAIT callers use it, as the kernel's atomic allocations spin on the
 * zone lock. A lock is reset to free in the child after fork (see
 * fork.c's handlers), so it must stay a plain word.
 *
 * While the process has one thread (glibc's __libc_single_threaded, which
 * pthread_create clears before the new thread runs and never sets again),
 * the lock is taken and dropped with plain loads and stores: nobody else
 * can hold it, and a locked instruction costs more than the critical
 * sections of the page allocator's common paths (12 ns a lock/unlock pair
 * on the 2-core EPYC VM, against 0.3 ns). glibc's malloc skips its arena
 * lock the same way. A signal handler that interrupts a holder and takes
 * the lock hangs either way, as with glibc.
 */
#ifndef KMM_LOCK_H
#define KMM_LOCK_H

#include <stdatomic.h>
#include <stdbool.h>

#include <kmm/gfp.h>

#include "internal.h"

#pragma GCC visibility push(hidden)

struct kmm_lock {
	atomic_int state;
};

#define KMM_LOCK_INIT { 0 }

void kmm_lock_slow(struct kmm_lock *lock);
void kmm_unlock_wake(struct kmm_lock *lock);

static inline bool kmm_trylock(struct kmm_lock *lock)
{
	int expected = 0;

	if (__libc_single_threaded) {
		if (atomic_load_explicit(&lock->state, memory_order_relaxed))
			return false;
		atomic_store_explicit(&lock->state, 1, memory_order_relaxed);
		return true;
	}
	return atomic_compare_exchange_strong_explicit(&lock->state, &expected, 1,
						       memory_order_acquire,
						       memory_order_relaxed);
}

static inline void kmm_lock(struct kmm_lock *lock)
{
	if (unlikely(!kmm_trylock(lock)))
		kmm_lock_slow(lock);
}

static inline void kmm_lock_spin(struct kmm_lock *lock)
{
	while (!kmm_trylock(lock)) {
		while (atomic_load_explicit(&lock->state, memory_order_relaxed))
			cpu_relax();
	}
}

/* As the kernel's locks under an allocation: a caller that may not sleep spins. */
static inline void kmm_lock_for(struct kmm_lock *lock, gfp_t gfp)
{
	if (gfp & __GFP_DIRECT_RECLAIM)
		kmm_lock(lock);
	else
		kmm_lock_spin(lock);
}

static inline void kmm_unlock(struct kmm_lock *lock)
{
	if (__libc_single_threaded) {
		atomic_store_explicit(&lock->state, 0, memory_order_relaxed);
		return;
	}
	if (unlikely(atomic_exchange_explicit(&lock->state, 0, memory_order_release) == 2))
		kmm_unlock_wake(lock);
}

/* Only for the child after fork, where the holder no longer exists. */
static inline void kmm_lock_reset(struct kmm_lock *lock)
{
	atomic_store_explicit(&lock->state, 0, memory_order_relaxed);
}

#pragma GCC visibility pop

#endif
