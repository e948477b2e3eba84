/*
 * fork.c - the core's fork handlers: one set, registered once (by
 * page_alloc.c's constructor) while the process has one thread, that takes
 * every lock of kmm's in lock order before fork, releases them in the
 * parent and resets them in the child, which thus starts with consistent
 * lists and can allocate at once.
 *
 * Registered lazily, by each layer as it started, handlers missed the forks
 * already under way: since glibc 2.36 a fork runs its prepare handlers
 * without holding the list's lock, so a layer could register, start and
 * take its lock while another thread's fork went past, and the child
 * inherited the lock held and hung at its first allocation
 * (tests/test_malloc.c's fork-boot run). Every step works before its layer
 * has started.
 *
 * The boot arena (preload/malloc.c) registers its own handlers before
 * these, so its lock, a leaf, is taken last.
 */
#include "fork.h"

#include <pthread.h>

#include "heap.h"
#include "options.h"
#include "page_alloc.h"
#include "percpu.h"
#include "runs.h"
#include "slab.h"
#include "topology.h"
#include "vmalloc.h"

static bool fork_locked;	/* this fork's prepare handler took the locks */

/*
 * The lock order: the hwloc lock (held while hwloc allocates), percpu's
 * (it calls kmalloc under it), the page runs', the chunk heap's, the slab
 * layer's, vmalloc's (it maps its registry with the page allocator under
 * it), the page allocator's, and the options' parse lock, a leaf first
 * taken wherever the options are first read.
 */
KMM_HOT_TEXT static void kmm_fork_prepare(void)
{
	fork_locked = fork_prepare_begin();
	if (!fork_locked)
		return;
	kmm_lock(&hwloc_lock);
	kmm_lock(&pcpu_lock);
	run_fork_lock();
	kmm_lock(&heap_lock);
	slab_fork_lock();
	kmm_lock(&vmap_lock);
	page_alloc_fork_lock();
	kmm_lock(&parse_lock);
}

KMM_HOT_TEXT static void kmm_fork_parent(void)
{
	if (!fork_locked)
		return;
	kmm_unlock(&parse_lock);
	page_alloc_fork_unlock();
	kmm_unlock(&vmap_lock);
	slab_fork_unlock();
	kmm_unlock(&heap_lock);
	run_fork_unlock();
	kmm_unlock(&pcpu_lock);
	kmm_unlock(&hwloc_lock);
	fork_parent_end();
}

KMM_HOT_TEXT static void kmm_fork_child(void)
{
	if (!fork_locked)
		return;
	kmm_lock_reset(&parse_lock);
	page_alloc_fork_reset();
	kmm_lock_reset(&vmap_lock);
	slab_fork_reset();
	kmm_lock_reset(&heap_lock);
	run_fork_reset();
	kmm_lock_reset(&pcpu_lock);
	kmm_lock_reset(&hwloc_lock);
}

KMM_HOT_TEXT void fork_register_handlers(void)
{
	pthread_atfork(kmm_fork_prepare, kmm_fork_parent, kmm_fork_child);
}
