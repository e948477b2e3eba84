/*
 * lock.c - the sleeping half of struct kmm_lock (see lock.h).
 */
#include "lock.h"

#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#define LOCK_SPINS 100

static void futex(atomic_int *word, int op, int val)
{
	syscall(SYS_futex, word, op | FUTEX_PRIVATE_FLAG, val, NULL, NULL, 0);
}

KMM_HOT_TEXT void kmm_lock_slow(struct kmm_lock *lock)
{
	int c;

	for (int i = 0; i < LOCK_SPINS; i++) {
		if (atomic_load_explicit(&lock->state, memory_order_relaxed) == 0 &&
		    kmm_trylock(lock))
			return;
		cpu_relax();
	}
	c = atomic_exchange_explicit(&lock->state, 2, memory_order_acquire);
	while (c != 0) {
		futex(&lock->state, FUTEX_WAIT, 2);
		c = atomic_exchange_explicit(&lock->state, 2, memory_order_acquire);
	}
}

KMM_HOT_TEXT void kmm_unlock_wake(struct kmm_lock *lock)
{
	futex(&lock->state, FUTEX_WAKE, 1);
}
