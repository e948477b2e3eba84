/*
 * fork.h - what kmm's fork handlers (fork.c, and the boot arena's) share.
 *
 * Deadlock to avoid (jemalloc and tcmalloc both have it): if an allocator's
 * prepare handler takes its locks before fork() takes stdio's list lock,
 * thread A in fflush(NULL) holds the list lock and waits for a FILE whose
 * owner B is inside malloc waiting for the allocator lock the forking thread
 * holds. So kmm's prepare handlers take stdio's list lock first; it is
 * recursive, and glibc's fork takes it again after the handlers.
 *
 * In a single-threaded process nothing else can hold kmm's locks, but the
 * process may be forking from a signal handler that interrupted kmm itself;
 * taking the locks would deadlock on ourselves, so the handlers do nothing,
 * as glibc's malloc does.
 */
#ifndef KMM_FORK_H
#define KMM_FORK_H

#include <stdbool.h>
#include <sys/single_threaded.h>

#include "lock.h"

/* glibc exports these (GLIBC_2.2.5); weak, so another libc simply lacks them. */
extern void _IO_list_lock(void) __attribute__((weak));
extern void _IO_list_unlock(void) __attribute__((weak));

#pragma GCC visibility push(hidden)

/* Starts a prepare handler; false: do nothing in this fork. */
static inline bool fork_prepare_begin(void)
{
	if (__libc_single_threaded)
		return false;
	if (_IO_list_lock)
		_IO_list_lock();
	return true;
}

/* Ends the parent handler of a fork whose prepare handler returned true. */
static inline void fork_parent_end(void)
{
	if (_IO_list_unlock)
		_IO_list_unlock();
}

/* The child's list lock is reset by glibc itself. */

/*
 * For handlers that take one lock (the boot arena's, preload/malloc.c):
 * prepare returns whether it took the lock, which the parent and child
 * handlers are given back.
 */
static inline bool fork_lock_prepare(struct kmm_lock *lock)
{
	bool locked = fork_prepare_begin();

	if (locked)
		kmm_lock(lock);
	return locked;
}

static inline void fork_lock_parent(struct kmm_lock *lock, bool locked)
{
	if (!locked)
		return;
	kmm_unlock(lock);
	fork_parent_end();
}

static inline void fork_lock_child(struct kmm_lock *lock, bool locked)
{
	if (locked)
		kmm_lock_reset(lock);
}

/* Registers kmm's fork handlers (fork.c): once, while the process has one thread. */
void fork_register_handlers(void);

#pragma GCC visibility pop

#endif
