/*
 * slab.h - the slab layer's structures and its inline fast paths, shared by
 * slub.c and kmalloc.c.
 *
 * Per-CPU (or, without rseq, per-thread) state is one pointer per cache:
 * slot[cpu][cache->index] points to the sheaf that CPU is using for that
 * cache. Allocation pops from it and free pushes onto it. An empty per-CPU
 * slot holds NULL, as mmap left it, and the rseq fast paths test for it:
 * setting every possible CPU's slots to a dummy at start-up touched 4 KiB
 * per CPU in every process. An empty per-thread slot points to
 * slab_dummy_sheaf, whose size and capacity are 0, so that fast path needs
 * no test: it finds the dummy "empty" for allocation and "full" for free.
 * Either way the slow path runs, and reads NULL as the dummy (load_slot()).
 * Index 0 belongs to no cache and never holds a sheaf: caches without
 * sheaves (the boot caches, debug caches) use it, so every one of their
 * operations takes the slow path.
 */
#ifndef KMM_SLAB_H_INTERNAL
#define KMM_SLAB_H_INTERNAL

#include <stdatomic.h>
#include <stdbool.h>

#include <kmm/slab.h>

#include "internal.h"

#include "list.h"
#include "lock.h"
#include "rseq.h"

#pragma GCC visibility push(hidden)

/*
 * Caches with sheaves, and so the length of each CPU's (or thread's) slot
 * row: 256 pointers are 2 KiB, so two CPUs' rows share a page that a short
 * process touches once. Caches made beyond it work without sheaves.
 */
#define SLAB_MAX_CACHES 256
#define SLAB_NO_SHEAVES 0
#define SHEAF_MAX_CAPACITY 64
#define SLAB_DEBUG_FLAGS (SLAB_POISON | SLAB_RED_ZONE)

struct slab_sheaf {
	unsigned int size;
	unsigned int capacity;
	struct slab_sheaf *next;	/* barn list */
	void *objects[];
};

enum slab_mode {
	SLAB_MODE_OFF,		/* not started: everything takes the slow path */
	SLAB_MODE_RSEQ,		/* per-CPU slots, restartable sequences */
	SLAB_MODE_THREAD,	/* per-thread slots */
};

/* Slabs of one cache on one node. */
struct kmem_cache_node {
	struct kmm_lock list_lock;
	struct list_head partial;	/* slabs with free objects */
	struct list_head full;		/* slabs without (kept for destroy's report) */
	unsigned long nr_partial;
	unsigned long nr_slabs;
	unsigned long total_objects;
	unsigned long inuse_objects;
};

/* Sheaves parked on a node: non-empty ones for allocation, empty for free. */
struct node_barn {
	struct kmm_lock lock;
	struct slab_sheaf *full;
	struct slab_sheaf *empty;
	unsigned int nr_full;
	unsigned int nr_empty;
	unsigned long full_objects;
	unsigned long full_used_ms;	/* last taking of a full sheaf, or first parking */
};

struct kmem_cache {
	uintptr_t cpu_slot0;		/* &slot[0][index] in the per-CPU slot area */
	unsigned int index;		/* slot index; SLAB_NO_SHEAVES without sheaves */
	unsigned int object_size;	/* what the user asked for */
	unsigned int size;		/* stride between objects in a slab */
	unsigned int align;
	unsigned int red_left_pad;	/* bytes before the object (SLAB_RED_ZONE) */
	unsigned int offset;		/* free pointer, from the start of the stride */
	unsigned int order;
	unsigned int objects;		/* per slab */
	unsigned int sheaf_capacity;
	bool spare;			/* a spare sheaf per CPU (slub.c) */
	/*
	 * rseq mode with one thread: the CPU whose slots this cache last
	 * used, plus one (0: none yet); see gather_stranded() in slub.c.
	 */
	_Atomic unsigned int last_cpu;
	slab_flags_t flags;
	void (*ctor)(void *);
	char name[32];
	struct list_head list;		/* slab_caches */
	struct node_barn barn;
	struct kmem_cache_node node;
};

extern _Atomic int slab_mode;
/* rseq mode: the slot rows, slot[cpu][index] (set before the mode is). */
extern struct slab_sheaf **slab_percpu_slots;
extern struct slab_sheaf slab_dummy_sheaf;
/* A cache with no sheaves, for tables that must point somewhere before start-up. */
extern struct kmem_cache slab_unready_cache;
extern __thread struct slab_sheaf **slab_thread_slots
	__attribute__((tls_model("initial-exec")));

bool slab_init(void);
bool slab_is_ready(void);
void slab_setup_lock(void);
void slab_setup_unlock(void);
/* kmalloc.c: sets up the size classes during slab_init(). */
bool kmalloc_init(void);
void *slab_alloc_slow(struct kmem_cache *s, gfp_t gfp);
/* After slab_free_fast() returned fast (0 or -1). */
void slab_free_slow(struct kmem_cache *s, void *obj, int fast);
struct kmem_cache *slab_create_cache(const char *name, unsigned int size, unsigned int align,
				     slab_flags_t flags, void (*ctor)(void *));
_Noreturn void slab_bad_free(const void *obj, const char *why);

/*
 * The acquire load of slab_mode pairs with slab_init()'s release: a thread
 * that sees the mode on also sees the caches and tables set up before it.
 */

/*
 * Pops an object from this CPU's (or thread's) sheaf of the cache whose
 * CPU-0 slot is *cpu_slot0 (rseq mode) and whose slot index is *index
 * (per-thread mode); NULL: take the slow path. Each mode reads only its
 * own field.
 */
static inline void *slab_alloc_fast_at(const uintptr_t *cpu_slot0, const unsigned int *index)
{
	int mode = atomic_load_explicit(&slab_mode, memory_order_acquire);

#ifdef KMM_HAVE_RSEQ_OPS
	if (likely(mode == SLAB_MODE_RSEQ)) {
		void *obj = rseq_sheaf_pop(__atomic_load_n(cpu_slot0, __ATOMIC_RELAXED));

		if (obj)
			tsan_acquire(obj);
		return obj;
	}
#else
	(void)mode;
#endif
	/* Per-thread mode, and before start-up, when every slot is the dummy. */
	{
		struct slab_sheaf *sheaf = slab_thread_slots[__atomic_load_n(index, __ATOMIC_RELAXED)];
		void *obj;

		if (!likely(sheaf->size))
			return NULL;
		obj = sheaf->objects[--sheaf->size];
		if (!obj)
			__builtin_unreachable();
		return obj;
	}
}

static inline void *slab_alloc_fast(struct kmem_cache *s)
{
	return slab_alloc_fast_at(&s->cpu_slot0, &s->index);
}

/*
 * Pushes obj onto this CPU's (or thread's) sheaf of the cache whose CPU-0
 * slot is cpu_slot0 (rseq mode) and slot index is index (per-thread mode),
 * as slab_alloc_fast_at() pops: 1. Otherwise the slow path
 * runs: 0 (no room), or -1 when obj is already on top of the sheaf, freed
 * twice in a row (slab_free_slow() reports it). Reporting here would give
 * every caller a stack frame.
 */
static inline int slab_free_fast_at(uintptr_t cpu_slot0, unsigned int index, void *obj)
{
	int mode = atomic_load_explicit(&slab_mode, memory_order_acquire);

#ifdef KMM_HAVE_RSEQ_OPS
	if (likely(mode == SLAB_MODE_RSEQ)) {
		tsan_release(obj);
		return rseq_sheaf_push(cpu_slot0, obj);
	}
#else
	(void)mode;
#endif
	{
		struct slab_sheaf *sheaf = slab_thread_slots[index];

		/*
		 * The word below objects[size] is the top object, or for an empty
		 * sheaf its next field, which never holds an object. Checked
		 * before the room, so that a full sheaf catches it too.
		 */
		if (unlikely(((void **)&sheaf->objects[sheaf->size])[-1] == obj))
			return -1;
		if (!likely(sheaf->size < sheaf->capacity))
			return 0;
		sheaf->objects[sheaf->size++] = obj;
		return 1;
	}
}

static inline int slab_free_fast(struct kmem_cache *s, void *obj)
{
	return slab_free_fast_at(s->cpu_slot0, s->index, obj);
}

/*
 * The same knowing only the cache's slot index (kfree): its CPU-0 slot is
 * computed, as an integer since the rows exist only in rseq mode.
 */
static inline int slab_free_fast_index(unsigned int index, void *obj)
{
	return slab_free_fast_at((uintptr_t)slab_percpu_slots + index * sizeof(void *), index, obj);
}

/* fork.c's handlers: every lock of the slab layer, released, reset in the child. */
void slab_fork_lock(void);
void slab_fork_unlock(void);
void slab_fork_reset(void);

#pragma GCC visibility pop

#endif
