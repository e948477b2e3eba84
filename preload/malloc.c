/*
 * malloc.c - the C library's allocation functions on top of kmalloc, so that
 * LD_PRELOAD=libkmm.so (or linking -lkmm) replaces malloc in any program.
 *
 * malloc rounds sizes up to 16 bytes, so every block is aligned for
 * max_align_t and lands in a 16-byte multiple class; malloc(0) returns a
 * real 16-byte block. The common malloc and free are kmalloc's fast paths
 * (src/kmalloc.h): no lock, no call. Errors are glibc's: ENOMEM and NULL on
 * failure, EINVAL for a bad alignment, and a report and abort for a pointer
 * kmm never gave out.
 *
 * Bootstrap: kmm's start-up needs no constructor (the constructors only
 * register fork handlers). The first call of the process starts
 * it, and if kmm's start-up itself calls into libc and libc allocates,
 * that nested request is served from a static arena, so nothing
 * recurses.
 *
 * The same arena serves a process's first requests, up to BOOT_EARLY_LIMIT
 * bytes in all, before kmm's page and slab layers start: a process that
 * allocates little and exits (a shell running one command) never starts
 * them. Starting them touches some twenty pages of bookkeeping and first
 * slabs, where glibc's heap touches two or three; each new page costs a
 * page fault and a zeroed page, about 12 us on the virtual machines kmm is
 * measured on, which made `sh -c true` 1.18 times glibc's time (now 1.03).
 * Buffers of 64 KiB and more get vmalloc areas meanwhile, a few of them.
 * While the arena is open, freed blocks serve again (boot_reuse()). The
 * first request that does not fit, or that finds too much of the arena
 * dead, starts kmm; the arena's blocks stay where they are and their space
 * is not handed out again, but once kmm has started, the arena pages whose
 * blocks are all freed go back to the OS, in batches, and so do those
 * faulted in above the carving.
 * KMM_OPTIONS=boot_arena=0 starts kmm at the first call instead.
 */
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <kmm/mmzone.h>
#include <kmm/slab.h>
#include <kmm/vmalloc.h>

#include "../src/fork.h"
#include "../src/heap.h"
#include "../src/internal.h"
#include "../src/kmalloc.h"
#include "../src/lock.h"
#include "../src/options.h"
#include "../src/os.h"
#include "../src/runs.h"
#include "../src/slab.h"
#include "../src/vmalloc.h"

#define MALLOC_GFP (GFP_KERNEL | __GFP_NOWARN)
#define MALLOC_ALIGN 16

/* Rounds to 16 bytes; 0 when that overflows. malloc(0) is a 16-byte block. */
static inline size_t malloc_size(size_t size)
{
	return (size + (size == 0) + MALLOC_ALIGN - 1) & ~(size_t)(MALLOC_ALIGN - 1);
}

/* ---------------------------------------------------------------------------
 * The bootstrap arena
 */

#define BOOT_ARENA_SIZE (512 * 1024)
/* The rest is kept for requests nested inside kmm's start-up. */
#define BOOT_EARLY_LIMIT (496 * 1024)
#define BOOT_LARGE_MIN (64 * 1024)
#define BOOT_LARGE_MAX 16
/* What the arena faults in at a time (boot_populate()). */
#define BOOT_POPULATE_STEP (16 * 1024)
/* The arena's bookkeeping unit: the smallest page size (larger pages hold several). */
#define BOOT_CHUNK 4096

/*
 * The arena starts on a page boundary (boot_arena()), so that its pages lie
 * in the anonymous part of .bss and read back as zeros once released.
 * Blocks are carved upwards from boot_used. Aligned at run
 * time: an aligned attribute aligns this file's whole .bss, which left the
 * C runtime's one-byte flag before it on a page of its own, two more page
 * faults for every process (read, then written at exit).
 */
static unsigned char boot_arena_space[BOOT_ARENA_SIZE + BOOT_CHUNK];
/* Set once the early requests are done with the arena: full, or kmm started. */
static atomic_bool boot_early_closed;

/*
 * boot_lock guards boot_used, the live blocks per BOOT_CHUNK of the arena
 * and everything of its reuse (the bins, boot_written, boot_dead): a chunk
 * may be released only while nobody can be carving a block in it or taking
 * one off a bin, so those and releasing exclude each other.
 */
static struct kmm_lock boot_lock = KMM_LOCK_INIT;
static bool boot_fork_locked;	/* this fork's prepare handler took boot_lock */
static size_t boot_used;
/* The arena's first boot_populated bytes have been faulted in (boot_populate()). */
static size_t boot_populated;
static unsigned short boot_chunk_live[BOOT_ARENA_SIZE / BOOT_CHUNK];
/*
 * Chunks already given back, and chunks gone idle since the last release.
 * Idle pages go back in batches: a short process that frees its arena
 * blocks one by one after kmm started (the assembler `as`: 24 of them)
 * paid a madvise for each.
 */
static bool boot_chunk_released[BOOT_ARENA_SIZE / BOOT_CHUNK];
static unsigned int boot_idle_pending;
#define BOOT_RELEASE_BATCH 16

/* Each block is preceded by a header of MALLOC_ALIGN bytes, on 32-bit targets too. */
struct boot_header {
	uint64_t size;
	uint64_t state;	/* BOOT_LIVE while allocated, BOOT_FREED after */
};

#define BOOT_LIVE 0x6b6d6d2d6c697665ULL
#define BOOT_FREED 0x6b6d6d2d66726565ULL

_Static_assert(sizeof(struct boot_header) == MALLOC_ALIGN, "the header keeps blocks aligned");

/*
 * Reuse while the arena is open. A freed block of up to BOOT_BIN_MAX bytes
 * (its header included) waits on the bin of its size (of its 64 bytes of
 * sizes above BOOT_EXACT_MAX), linked through its first payload bytes; the
 * block carved last goes back to the carving instead, and realloc grows or
 * shrinks it where it lies. A request takes a block of its own size, or
 * else splits one from the first bin whose blocks all leave at least
 * BOOT_SPLIT_MIN bytes over, and the rest goes on its own bin
 * (boot_bin_take()). A block that stays where it is under realloc
 * gives back its tail the same way. Without reuse, a program's early frees
 * left dead space, and it went through the arena sooner; with exact sizes
 * only, cc1's table regrown by 8 bytes at a time left a dead block of
 * every size from 128 to 1800 bytes (91 KiB). boot_release() empties the
 * bins: a released page reads as zeros, links included. Space below
 * boot_written was handed out before, so a block carved there again is
 * cleared for calloc like a block from a bin.
 */
#define BOOT_EXACT_MAX 1040	/* a bin for each size up to here */
#define BOOT_COARSE_STEP 64	/* then a bin for each 64 bytes */
#define BOOT_BIN_MAX 4112
#define BOOT_NR_EXACT (BOOT_EXACT_MAX / MALLOC_ALIGN - 1)
#define BOOT_NR_BINS (BOOT_NR_EXACT + (BOOT_BIN_MAX - BOOT_EXACT_MAX) / BOOT_COARSE_STEP)
#define BOOT_SPLIT_MIN (2 * MALLOC_ALIGN)	/* a header and the smallest payload */
#define BOOT_BIN_WORDS ((BOOT_NR_BINS + 63) / 64)
static struct boot_header *boot_bins[BOOT_NR_BINS];
static uint64_t boot_bin_mask[BOOT_BIN_WORDS];	/* bit i: boot_bins[i] is not empty */
static size_t boot_written;

/*
 * Early requests may carve up to BOOT_EARLY_LIMIT bytes of the arena, but
 * past BOOT_EARLY_MIN only while at most 1 / BOOT_DEAD_RATIO of what they
 * carved is dead: freed and not carved again (boot_dead, the bins
 * included). A program that frees and allocates new sizes as it goes (a
 * compiler's tables, regrown by realloc) then starts kmm, whose slabs and
 * chunks reuse freed memory, instead of filling the arena with dead blocks:
 * cc1 on a small file left 45% of 496 KiB dead. One that keeps what it
 * allocates (the assembler `as`: 360 KB) never starts kmm at all. The rule
 * is checked only where carving needs pages not yet faulted in: a program
 * that frees its blocks at exit and then allocates a little (`as` does)
 * should not start kmm for that.
 */
#define BOOT_EARLY_MIN (112 * 1024)
#define BOOT_DEAD_RATIO 4
static size_t boot_dead;

static unsigned char *boot_arena(void)
{
	uintptr_t space = (uintptr_t)boot_arena_space;

	return (unsigned char *)((space + BOOT_CHUNK - 1) & ~(uintptr_t)(BOOT_CHUNK - 1));
}

static bool is_boot(const void *p)
{
	return (const unsigned char *)p >= boot_arena() &&
	       (const unsigned char *)p < boot_arena() + BOOT_ARENA_SIZE;
}

static struct boot_header *boot_header_of(const void *p)
{
	return (struct boot_header *)((uintptr_t)p - MALLOC_ALIGN);
}

/*
 * boot_lock held: adds delta to the live count of every chunk [at, at + len)
 * touches, counting the chunks that go idle.
 */
KMM_HOT_TEXT static void boot_count(size_t at, size_t len, int delta)
{
	for (size_t c = at / BOOT_CHUNK; c <= (at + len - 1) / BOOT_CHUNK; c++) {
		boot_chunk_live[c] = (unsigned short)(boot_chunk_live[c] + delta);
		boot_idle_pending += !boot_chunk_live[c];
	}
}

/*
 * A block's bytes in the arena, its header included. malloc(0) gets 16
 * bytes too, room for a bin's link (boot_reuse()).
 */
static size_t boot_need(size_t size)
{
	return MALLOC_ALIGN + malloc_size(size);
}

/*
 * boot_lock held: faults in the arena's pages up to end and on to the next
 * multiple of BOOT_POPULATE_STEP (not past limit), in one system call: a
 * process that carves one page of the arena carves the next ones too, and
 * a page fault costs more than the page (os_populate()). A process that
 * stops allocating holds at most a step it did not touch.
 */
static void boot_populate(size_t end, size_t limit)
{
	size_t to;

	if (end <= boot_populated)
		return;
	to = (end + BOOT_POPULATE_STEP - 1) / BOOT_POPULATE_STEP * BOOT_POPULATE_STEP;
	if (to > limit)
		to = limit;
	os_init();
	os_populate(boot_arena() + boot_populated, to - boot_populated);
	boot_populated = to;
}

/*
 * The bin of a block of need bytes, at least BOOT_SPLIT_MIN and at most
 * BOOT_BIN_MAX. The bins are small enough to share a page with the arena's
 * other variables, which every process that allocates touches.
 */
static size_t boot_bin_index(size_t need)
{
	if (need <= BOOT_EXACT_MAX)
		return need / MALLOC_ALIGN - 2;
	return BOOT_NR_EXACT + (need - BOOT_EXACT_MAX - 1) / BOOT_COARSE_STEP;
}

/* The first bin whose blocks all have need bytes or more. */
static size_t boot_bin_above(size_t need)
{
	if (need <= BOOT_EXACT_MAX)
		return boot_bin_index(need);
	return BOOT_NR_EXACT + (need - BOOT_EXACT_MAX - 1 + BOOT_COARSE_STEP - 1) / BOOT_COARSE_STEP;
}

/*
 * boot_lock held: the free block of need bytes at h goes on its bin, or
 * stays dead if it is too big for one. Its header says so: a double free
 * of it is caught, and boot_bin_take() splits it by its size.
 */
static void boot_bin_push(struct boot_header *h, size_t need)
{
	size_t i = boot_bin_index(need);

	h->size = need - MALLOC_ALIGN;
	h->state = BOOT_FREED;
	if (need > BOOT_BIN_MAX)
		return;
	memcpy(h + 1, &boot_bins[i], sizeof(boot_bins[i]));
	boot_bins[i] = h;
	boot_bin_mask[i / 64] |= 1ULL << (i % 64);
}

/* boot_lock held: the first non-empty bin from index i on, or BOOT_NR_BINS. */
static size_t boot_bin_next(size_t i)
{
	for (size_t w = i / 64; w < BOOT_BIN_WORDS; w++) {
		uint64_t bits = boot_bin_mask[w] & (~0ULL << (w == i / 64 ? i % 64 : 0));

		if (bits)
			return w * 64 + (size_t)__builtin_ctzll(bits);
	}
	return BOOT_NR_BINS;
}

/* boot_lock held: the bytes of h from need up to have become a free block of their own. */
static void boot_give_tail(struct boot_header *h, size_t need, size_t have)
{
	boot_bin_push((struct boot_header *)((unsigned char *)h + need), have - need);
}

/*
 * boot_lock held: a freed block for need bytes, or NULL. Its own size if a
 * bin has one; else one from the first bin whose blocks all leave
 * BOOT_SPLIT_MIN bytes over, split, the rest binned again. Either way the
 * block is need bytes long.
 */
static struct boot_header *boot_bin_take(size_t need)
{
	size_t i = BOOT_NR_BINS, have;
	struct boot_header *h;

	if (need <= BOOT_EXACT_MAX && boot_bins[boot_bin_index(need)])
		i = boot_bin_index(need);
	else if (need + BOOT_SPLIT_MIN <= BOOT_BIN_MAX)
		i = boot_bin_next(boot_bin_above(need + BOOT_SPLIT_MIN));
	if (i >= BOOT_NR_BINS)
		return NULL;
	h = boot_bins[i];
	memcpy(&boot_bins[i], h + 1, sizeof(boot_bins[i]));
	if (!boot_bins[i])
		boot_bin_mask[i / 64] &= ~(1ULL << (i % 64));
	have = boot_need((size_t)h->size);
	if (have > need)
		boot_give_tail(h, need, have);
	return h;
}

/* boot_lock held: the arena is carved up to used now, which limit bounds. */
KMM_HOT_TEXT static void boot_set_used(size_t used, size_t limit)
{
	boot_used = used;
	boot_populate(used, limit);
	if (used > boot_written)
		boot_written = used;
}

/*
 * boot_lock held: carves need bytes at boot_used into *at, for an early
 * request or one nested in kmm's start-up; false if they do not fit.
 * *dirty: whether that space was handed out before (and given back).
 */
static bool boot_carve(size_t need, bool early, size_t *at, bool *dirty)
{
	size_t limit = early ? BOOT_EARLY_LIMIT : BOOT_ARENA_SIZE;

	*at = boot_used;
	if (need > limit || *at > limit - need)
		return false;
	if (early && *at + need > BOOT_EARLY_MIN && *at + need > boot_populated &&
	    boot_dead > *at / BOOT_DEAD_RATIO)
		return false;
	*dirty = *at < boot_written;
	boot_set_used(*at + need, limit);
	return true;
}

/*
 * A block from a bin or carved (boot_carve()), cleared if zero asks it and
 * it may not be; NULL if it does not fit (errno left alone: the caller
 * decides what a miss means).
 */
KMM_HOT_TEXT static void *boot_alloc(size_t size, bool early, bool zero)
{
	size_t need = boot_need(size), at;
	struct boot_header *h;
	bool dirty = true;

	if (size > BOOT_ARENA_SIZE)
		return NULL;
	kmm_lock(&boot_lock);
	h = boot_bin_take(need);
	if (h) {
		boot_dead -= need;
		at = (size_t)((unsigned char *)h - boot_arena());
	} else if (!boot_carve(need, early, &at, &dirty)) {
		kmm_unlock(&boot_lock);
		return NULL;
	}
	boot_count(at, need, 1);
	h = (struct boot_header *)(boot_arena() + at);
	h->size = size;
	h->state = BOOT_LIVE;
	kmm_unlock(&boot_lock);
	if (zero && dirty)
		memset(h + 1, 0, size);
	return h + 1;
}

/*
 * A child forked while another thread held boot_lock (carving a block, or
 * faulting in the arena's next pages) hung at its first allocation. The
 * handlers are registered by a constructor, before the core's (src/fork.c):
 * prepare handlers run in reverse order, so this one runs last, after the
 * core's has taken init_lock, which start-up holds while its nested
 * requests take boot_lock. boot_lock is a leaf: nothing else is locked
 * under it.
 */
KMM_HOT_TEXT static void boot_atfork_prepare(void)
{
	boot_fork_locked = fork_lock_prepare(&boot_lock);
}

KMM_HOT_TEXT static void boot_atfork_parent(void)
{
	fork_lock_parent(&boot_lock, boot_fork_locked);
}

KMM_HOT_TEXT static void boot_atfork_child(void)
{
	fork_lock_child(&boot_lock, boot_fork_locked);
}

KMM_HOT_TEXT __attribute__((constructor(KMM_CTOR_BOOT_FORK))) static void boot_register_atfork(void)
{
	pthread_atfork(boot_atfork_prepare, boot_atfork_parent, boot_atfork_child);
}

/*
 * boot_lock held: the state of the block p heads (BOOT_LIVE, BOOT_FREED),
 * or 0 if p cannot head one: misaligned, or beyond what was carved.
 */
static uint64_t boot_state(const void *p)
{
	size_t at = (size_t)((const unsigned char *)p - MALLOC_ALIGN - boot_arena());

	return !((uintptr_t)p % MALLOC_ALIGN) && at < boot_used ? boot_header_of(p)->state : 0;
}

static size_t boot_size(const void *p)
{
	return (size_t)boot_header_of(p)->size;
}

/* Whether the OS page at a is to go back: idle, not yet released, below boot_used. */
static bool boot_page_idle(uintptr_t a, uintptr_t page)
{
	uintptr_t base = (uintptr_t)boot_arena();
	bool released = true;

	if (a < base || a + page > base + boot_used)
		return false;
	for (uintptr_t c = a; c < a + page; c += BOOT_CHUNK) {
		if (boot_chunk_live[(c - base) / BOOT_CHUNK])
			return false;
		released = released && boot_chunk_released[(c - base) / BOOT_CHUNK];
	}
	return !released;
}

/*
 * boot_lock held, arena closed: the pages faulted in above the carving
 * (populated ahead of it, or carved for the last blocks and freed since,
 * which took boot_used back down) go back too. Only a request nested in
 * kmm's start-up carves there again, and it populates them anew. cc1 on
 * a small file ends with 14 pages of kmm's .bss fewer resident (113).
 */
static void boot_release_tail(void)
{
	uintptr_t base = (uintptr_t)boot_arena(), page = os_page_size;
	uintptr_t from = (base + boot_used + page - 1) & ~(page - 1);
	uintptr_t to = (base + boot_populated) & ~(page - 1);

	if (to <= from)
		return;
	os_release((void *)from, to - from);
	boot_populated = from - base;
}

/*
 * boot_lock held, arena closed: releases every OS page of the arena that
 * no live block is on and that lies wholly below boot_used, where no block
 * will be carved again; neighbours go in one call. Then the tail above
 * boot_used.
 */
KMM_HOT_TEXT static void boot_release(void)
{
	uintptr_t base = (uintptr_t)boot_arena(), page, run = 0;

	memset(boot_bins, 0, sizeof(boot_bins));
	memset(boot_bin_mask, 0, sizeof(boot_bin_mask));
	os_init();
	page = os_page_size;
	for (uintptr_t a = base & ~(page - 1); a <= base + BOOT_ARENA_SIZE; a += page) {
		bool idle = a < base + BOOT_ARENA_SIZE && boot_page_idle(a, page);

		if (idle && !run)
			run = a;
		if (idle || !run)
			continue;
		os_release((void *)run, a - run);
		for (uintptr_t c = run; c < a; c += BOOT_CHUNK)
			boot_chunk_released[(c - base) / BOOT_CHUNK] = true;
		run = 0;
	}
	boot_idle_pending = 0;
	boot_release_tail();
}

/*
 * boot_lock held, arena open: a freed block's space serves again, the last
 * block's by the carving, a small one's from its bin.
 */
static void boot_reuse(struct boot_header *h, size_t at, size_t need)
{
	if (at + need == boot_used) {
		boot_used = at;
		return;
	}
	boot_dead += need;
	boot_bin_push(h, need);
}

/*
 * Frees an arena block. While the arena is open its space serves again
 * (boot_reuse()); once the arena is closed, its pages go back to the OS
 * when nothing on them is live, each time BOOT_RELEASE_BATCH chunks have
 * gone idle, and all of them on malloc_trim.
 */
KMM_HOT_TEXT static void boot_free(void *p, const char *who)
{
	struct boot_header *h = boot_header_of(p);
	size_t at = (size_t)((unsigned char *)h - boot_arena()), need;
	uint64_t state;

	kmm_lock(&boot_lock);
	state = boot_state(p);
	if (state != BOOT_LIVE) {
		kmm_unlock(&boot_lock);
		/* A released page reads as zeros: its blocks' headers are gone. */
		kmm_bug("BUG: %s(%p): %s", who, p, state == BOOT_FREED ?
			"double free (the block is already free)" :
			"not the start of a block kmm gave out, or a double free");
	}
	h->state = BOOT_FREED;
	need = boot_need((size_t)h->size);
	boot_count(at, need, -1);
	if (!atomic_load_explicit(&boot_early_closed, memory_order_acquire))
		boot_reuse(h, at, need);
	else if (boot_idle_pending >= BOOT_RELEASE_BATCH)
		boot_release();
	kmm_unlock(&boot_lock);
}

/* Closing the arena (and malloc_trim): its idle pages go back now. */
static void boot_close_release(void)
{
	kmm_lock(&boot_lock);
	boot_release();
	kmm_unlock(&boot_lock);
}

/*
 * An early big buffer: one that kfree kept (vmalloc's recycle cache) when it
 * fits, so that a program looping on a big buffer from its start does not
 * map and fault it in anew each time.
 */
static void *boot_vmalloc(size_t size, size_t align, gfp_t gfp)
{
	void *caller = __builtin_return_address(0);

	os_init();
	/* Areas are page aligned: one that kfree kept fits any smaller alignment. */
	if (align <= os_page_size)
		return vmalloc_recycled(size, gfp, caller);
	return vmalloc_caller(size, gfp, align, caller);
}

/*
 * An early request: from the arena, or for a buffer of BOOT_LARGE_MIN bytes
 * or more (grep's 100 KiB, cat's 128 KiB) a vmalloc area, which needs only
 * the page size, neither the page allocator nor the slab layer (page
 * aligned, as coreutils ask for theirs). NULL once the arena is
 * closed to early requests: when one does not fit or wants more than 16-byte
 * alignment, or after BOOT_LARGE_MAX areas, so that a program looping on big
 * buffers soon gets page runs.
 */
KMM_HOT_TEXT static void *boot_alloc_early(size_t size, size_t align, gfp_t gfp)
{
	static atomic_uint large;
	void *p = NULL;

	if (atomic_load_explicit(&boot_early_closed, memory_order_relaxed))
		return NULL;
	if (!slab_is_ready() && !kmm_options()->no_boot_arena) {
		if (size >= BOOT_LARGE_MIN &&
		    atomic_fetch_add_explicit(&large, 1, memory_order_relaxed) < BOOT_LARGE_MAX)
			return boot_vmalloc(size, align, gfp);
		if (size < BOOT_LARGE_MIN && align <= MALLOC_ALIGN)
			p = boot_alloc(size, true, gfp & __GFP_ZERO);
	}
	/*
	 * Closing: from now on page runs serve what early areas served, so the
	 * areas the recycle cache keeps would only hold memory beside them.
	 */
	if (!p && !atomic_exchange_explicit(&boot_early_closed, true, memory_order_acq_rel)) {
		vmalloc_recycle_drain();
		boot_close_release();
	}
	return p;
}

/* ---------------------------------------------------------------------------
 * malloc and free
 */

KMM_HOT_TEXT static void *__attribute__((noinline)) malloc_slow(size_t size, gfp_t gfp)
{
	size_t rounded = malloc_size(size);
	void *p;

	if (unlikely(kmm_init_depth)) {
		p = boot_alloc(size, false, gfp & __GFP_ZERO);
		if (!p)
			errno = ENOMEM;
		return p;
	}
	if (unlikely(rounded < size)) {
		errno = ENOMEM;
		return NULL;
	}
	p = boot_alloc_early(size, MALLOC_ALIGN, gfp);
	return p ? p : kmalloc_slow(rounded, gfp);
}

KMM_HOT_TEXT KMM_API void *malloc(size_t size)
{
	void *p = kmalloc_fast_any(malloc_size(size));

	return likely(p) ? p : malloc_slow(size, MALLOC_GFP);
}

KMM_HOT_TEXT static void __attribute__((noinline)) free_slow(void *p, const char *who)
{
	if (is_boot(p)) {
		boot_free(p, who);
		return;
	}
	kfree_slow(p, who);
}

/*
 * Whether p lies in the arena's space, alignment slack included: one
 * subtraction and compare, no load. is_boot() says whether it is a block.
 */
static inline bool in_boot_space(const void *p)
{
	return (uintptr_t)p - (uintptr_t)boot_arena_space < sizeof(boot_arena_space);
}

KMM_HOT_TEXT KMM_API void free(void *p)
{
	/*
	 * NULL and the arena's blocks before the lookup: kfree_fast() reads the
	 * section table's entries for the address, and for these no other
	 * call reads them. In a process that never leaves the arena they were
	 * five or six pages of .bss faulted in for nothing (sed, ls).
	 */
	if (unlikely(!p))
		return;
	if (likely(!in_boot_space(p)) && likely(kfree_fast(p)))
		return;
	free_slow(p, "free");
}

KMM_HOT_TEXT KMM_API void *calloc(size_t n, size_t size)
{
	size_t bytes;
	void *p;

	if (__builtin_mul_overflow(n, size, &bytes)) {
		errno = ENOMEM;
		return NULL;
	}
	/*
	 * A slab object, from the fast path like malloc's, and cleared: perl
	 * callocs small blocks 750,000 times a run, and the slow path cost
	 * each some 100 instructions (callgrind).
	 */
	if (likely(bytes - 1 < KMALLOC_TABLE_MAX)) {
		size_t rounded = malloc_size(bytes);

		p = kmalloc_fast(rounded);
		if (likely(p))
			return memset(p, 0, rounded);
	}
	/*
	 * Boot arena blocks never handed out before are zero. Page runs
	 * and vmalloc areas known to be zero are not cleared again either.
	 */
	return malloc_slow(bytes, MALLOC_GFP | __GFP_ZERO);
}

/* Usable bytes of a block, for realloc and malloc_usable_size. */
KMM_HOT_TEXT static size_t usable_size(const void *p, const char *who)
{
	return is_boot(p) ? boot_size(p) : kmalloc_usable_size(p, who);
}

/* boot_lock held: the block at at, old bytes long, now has need: its chunks' live counts follow. */
static void boot_recount(size_t at, size_t old, size_t need)
{
	boot_count(at, old, -1);
	boot_count(at, need, 1);
}

/*
 * boot_lock held: the live block at h (old bytes, need now) stays where it
 * is. While the arena is open a tail of BOOT_SPLIT_MIN bytes or more goes
 * on a bin; else the block keeps its bytes and the larger of its sizes.
 */
static void boot_fit(struct boot_header *h, size_t at, size_t old, size_t need, size_t size)
{
	if (need + BOOT_SPLIT_MIN <= old &&
	    !atomic_load_explicit(&boot_early_closed, memory_order_acquire)) {
		boot_recount(at, old, need);
		h->size = size;
		boot_dead += old - need;
		boot_give_tail(h, need, old);
		return;
	}
	if (size > h->size)
		h->size = size;
}

/*
 * realloc of an arena block where it lies. The block the open arena carved
 * last grows or shrinks, so that a buffer doubling at start-up leaves no
 * dead copies behind; any block stays while the size fits it (cc1 regrows
 * a table 8 bytes at a time: each other step fits). False if p is not a
 * live block or has to move.
 */
static bool boot_resize(void *p, size_t size)
{
	struct boot_header *h = boot_header_of(p);
	size_t at = (size_t)((unsigned char *)h - boot_arena()), need = boot_need(size), old = 0;
	bool ok;

	if (size > BOOT_EARLY_LIMIT)
		return false;
	kmm_lock(&boot_lock);
	if (boot_state(p) == BOOT_LIVE)
		old = boot_need((size_t)h->size);
	ok = old && at + old == boot_used && need <= BOOT_EARLY_LIMIT &&
	     at <= BOOT_EARLY_LIMIT - need &&
	     !atomic_load_explicit(&boot_early_closed, memory_order_acquire);
	if (ok) {
		boot_recount(at, old, need);
		boot_set_used(at + need, BOOT_EARLY_LIMIT);
		h->size = size;
	} else if (old && need <= old) {
		boot_fit(h, at, old, need, size);
		ok = true;
	}
	kmm_unlock(&boot_lock);
	return ok;
}

KMM_HOT_TEXT static void *realloc_move(void *p, size_t old, size_t size)
{
	void *n = malloc(size);

	if (!n)
		return NULL; /* errno is ENOMEM; p is untouched */
	memcpy(n, p, old < size ? old : size);
	if (is_boot(p))
		boot_free(p, "realloc");
	else
		kfree_moved(p, "realloc");
	return n;
}

KMM_HOT_TEXT KMM_API void *realloc(void *p, size_t size)
{
	size_t old, rounded;

	if (!p)
		return malloc(size);
	if (size == 0) {
		free(p);
		return NULL;
	}
	rounded = malloc_size(size);
	if (unlikely(rounded < size)) {
		errno = ENOMEM;
		return NULL;
	}
	if (is_boot(p))
		return boot_resize(p, size) ? p : realloc_move(p, boot_size(p), size);
	old = kmalloc_usable_size(p, "realloc");
	/*
	 * A chunk of kmalloc's heap (one to four pages) gives back a tail it no
	 * longer needs, and a page run its whole pages beyond the new size. The
	 * size tests first: blocks that still fit as they are, a growing
	 * buffer's common case, skip a second lookup.
	 */
	if (rounded < old && old > os_page_size &&
	    (old <= 4 * os_page_size || old - rounded >= os_page_size) &&
	    kmalloc_shrink_in_place(p, rounded))
		return p;
	/*
	 * Fits: stay, unless a block above four pages that did not shrink above
	 * (a vmalloc area, or a run shrunk to a heap or slab size) would keep
	 * more than twice what it needs.
	 */
	if (rounded <= old && (old <= 4 * os_page_size || rounded > old / 2))
		return p;
	/* vmalloc areas grow and shrink by mremap, page runs into the free pages after them: no copy. */
	if (!addr_to_page(p)) {
		void *n = kmm_vrealloc(p, rounded, MALLOC_GFP);

		if (!n)
			errno = ENOMEM;
		return n;
	}
	if (rounded > old && kmalloc_grow_in_place(p, rounded))
		return p;
	return realloc_move(p, old, size);
}

KMM_HOT_TEXT KMM_API void *reallocarray(void *p, size_t n, size_t size)
{
	size_t bytes;

	if (__builtin_mul_overflow(n, size, &bytes)) {
		errno = ENOMEM;
		return NULL;
	}
	return realloc(p, bytes);
}

/* ---------------------------------------------------------------------------
 * Aligned allocation
 */

KMM_HOT_TEXT static void *aligned(size_t align, size_t size)
{
	size_t rounded = malloc_size(size);
	void *p;

	if (align <= MALLOC_ALIGN)
		return malloc(size);
	if (unlikely(rounded < size)) {
		errno = ENOMEM;
		return NULL;
	}
	if (unlikely(kmm_init_depth)) {
		errno = ENOMEM;
		return NULL;
	}
	p = boot_alloc_early(size, align, MALLOC_GFP);
	return p ? p : kmalloc_aligned(rounded, align, MALLOC_GFP);
}

static bool power_of_two(size_t n)
{
	return n && !(n & (n - 1));
}

KMM_HOT_TEXT KMM_API int posix_memalign(void **memptr, size_t align, size_t size)
{
	int saved = errno;
	void *p;

	if (!power_of_two(align) || align % sizeof(void *))
		return EINVAL;
	p = aligned(align, size);
	if (!p) {
		errno = saved;
		return ENOMEM;
	}
	*memptr = p;
	return 0;
}

KMM_HOT_TEXT KMM_API void *aligned_alloc(size_t align, size_t size)
{
	if (!power_of_two(align)) {
		errno = EINVAL;
		return NULL;
	}
	return aligned(align, size);
}

/* As glibc: an alignment that is no power of two is rounded up to one. */
KMM_HOT_TEXT KMM_API void *memalign(size_t align, size_t size)
{
	size_t pow2 = MALLOC_ALIGN;

	if (align > SIZE_MAX / 2 + 1) {
		errno = EINVAL;
		return NULL;
	}
	while (pow2 < align)
		pow2 <<= 1;
	return aligned(pow2, size);
}

KMM_API void *valloc(size_t size)
{
	return aligned(kmm_page_size(), size);
}

KMM_API void *pvalloc(size_t size)
{
	size_t page = kmm_page_size();
	size_t rounded = (size + page - 1) & ~(page - 1);

	if (rounded < size) {
		errno = ENOMEM;
		return NULL;
	}
	return aligned(page, rounded ? rounded : page);
}

KMM_HOT_TEXT KMM_API size_t malloc_usable_size(void *p)
{
	return p ? usable_size(p, "malloc_usable_size") : 0;
}

/* ---------------------------------------------------------------------------
 * glibc's extras: trimming, statistics, tuning
 */

KMM_API int malloc_trim(size_t pad)
{
	(void)pad;
	if (atomic_load_explicit(&boot_early_closed, memory_order_acquire))
		boot_close_release();
	return kmalloc_trim() > 0;
}

/*
 * kmm's figures in glibc's fields: arena is what the page allocator maps,
 * uordblks the bytes in blocks handed out (slab objects count whole,
 * including those cached in sheaves), fordblks the rest of arena, hblks and
 * hblkhd the vmalloc areas.
 */
KMM_API struct mallinfo2 mallinfo2(void)
{
	struct mallinfo2 mi;
	struct kmm_buddyinfo bi;
	struct kmm_slabinfo si[128];
	struct heap_stats hs;
	struct run_stats rs;
	size_t page = kmm_page_size(), idle = 0, arena, used;
	int n = kmm_slabinfo(si, 128);

	memset(&mi, 0, sizeof(mi));
	kmm_buddyinfo(&bi);
	heap_stats(&hs);
	run_stats(&rs);
	/* Free slab objects, the heap's free chunks and free extents between runs lie in allocated pages. */
	for (int i = 0; i < n && i < 128; i++)
		idle += (si[i].num_objs - si[i].active_objs) * si[i].stride;
	idle += hs.free_bytes + rs.free_pages * page;
	arena = bi.managed_pages * page;
	used = (bi.managed_pages - bi.free_pages - bi.pcp_pages) * page;
	used = used > idle ? used - idle : 0;
	mi.arena = arena;
	mi.uordblks = used;
	mi.fordblks = arena - used;
	for (int o = 0; o < NR_PAGE_ORDERS; o++)
		mi.ordblks += bi.nr_free[o];
	vmalloc_totals(&mi.hblks, &mi.hblkhd);
	return mi;
}

static int clamp_int(size_t v)
{
	return v > INT32_MAX ? INT32_MAX : (int)v;
}

KMM_API struct mallinfo mallinfo(void)
{
	struct mallinfo2 m2 = mallinfo2();
	struct mallinfo m;

	memset(&m, 0, sizeof(m));
	m.arena = clamp_int(m2.arena);
	m.ordblks = clamp_int(m2.ordblks);
	m.hblks = clamp_int(m2.hblks);
	m.hblkhd = clamp_int(m2.hblkhd);
	m.uordblks = clamp_int(m2.uordblks);
	m.fordblks = clamp_int(m2.fordblks);
	return m;
}

/*
 * glibc's parameters are accepted and have no effect: kmm has no arenas,
 * no top chunk and no mmap threshold. Unknown parameters fail, as in glibc.
 */
KMM_API int mallopt(int param, int value)
{
	(void)value;
	switch (param) {
	case M_MXFAST:
	case M_TRIM_THRESHOLD:
	case M_TOP_PAD:
	case M_MMAP_THRESHOLD:
	case M_MMAP_MAX:
	case M_CHECK_ACTION:
	case M_PERTURB:
	case M_ARENA_TEST:
	case M_ARENA_MAX:
		return 1;
	default:
		return 0;
	}
}

/* glibc's layout, kmm's figures, on stderr; then where the resident memory is. */
KMM_API void malloc_stats(void)
{
	struct mallinfo2 mi = mallinfo2();

	kmm_dprint(2, "Arena 0:\nsystem bytes     = %10zu\nin use bytes     = %10zu\n",
		   mi.arena, mi.uordblks);
	kmm_dprint(2, "Total (incl. mmap):\nsystem bytes     = %10zu\nin use bytes     = %10zu\n",
		   mi.arena + mi.hblkhd, mi.uordblks + mi.hblkhd);
	kmm_dprint(2, "max mmap regions = %10zu\nmax mmap bytes   = %10zu\n", mi.hblks, mi.hblkhd);
	/* kmm's own line last, where a parser of glibc's layout stops reading. */
	kmm_show_resident(2);
}

/*
 * glibc's XML, with kmm's figures (those of mallinfo2()) where glibc has
 * them: one heap; no fast bins; "rest" the free buddy blocks; "mmap" the
 * vmalloc areas. No "max" element: kmm keeps no peak.
 */
KMM_API int malloc_info(int options, FILE *fp)
{
	struct mallinfo2 mi;

	if (options != 0) {
		errno = EINVAL;
		return -1;
	}
	mi = mallinfo2();
	fputs("<malloc version=\"1\">\n<heap nr=\"0\">\n<sizes>\n</sizes>\n", fp);
	fprintf(fp, "<total type=\"fast\" count=\"0\" size=\"0\"/>\n"
		    "<total type=\"rest\" count=\"%zu\" size=\"%zu\"/>\n"
		    "<system type=\"current\" size=\"%zu\"/>\n"
		    "<aspace type=\"total\" size=\"%zu\"/>\n</heap>\n",
		mi.ordblks, mi.fordblks, mi.arena, mi.arena);
	fprintf(fp, "<total type=\"fast\" count=\"0\" size=\"0\"/>\n"
		    "<total type=\"rest\" count=\"%zu\" size=\"%zu\"/>\n"
		    "<total type=\"mmap\" count=\"%zu\" size=\"%zu\"/>\n"
		    "<system type=\"current\" size=\"%zu\"/>\n"
		    "<aspace type=\"total\" size=\"%zu\"/>\n</malloc>\n",
		mi.ordblks, mi.fordblks, mi.hblks, mi.hblkhd, mi.arena + mi.hblkhd,
		mi.arena + mi.hblkhd);
	return 0;
}

/* ---------------------------------------------------------------------------
 * Other names for the same functions
 */

/*
 * C23's sized frees, which newer C libraries export: a program built
 * against one must reach kmm's free through them too. kmm knows each
 * block's size and alignment, so the hints change nothing.
 */
void free_sized(void *p, size_t size);
void free_aligned_sized(void *p, size_t align, size_t size);

KMM_API void free_sized(void *p, size_t size)
{
	(void)size;
	free(p);
}

KMM_API void free_aligned_sized(void *p, size_t align, size_t size)
{
	(void)align;
	(void)size;
	free(p);
}

/*
 * glibc exports its allocator under these names too. A program or library
 * that calls them, commonly a malloc wrapper asking for "the real one",
 * would otherwise get glibc's heap, and kmm would then be handed its blocks
 * (and glibc kmm's). cfree is an old alias of free, kept by glibc for
 * binaries linked long ago.
 */
void *__libc_malloc(size_t size);
void __libc_free(void *p);
void *__libc_calloc(size_t n, size_t size);
void *__libc_realloc(void *p, size_t size);
void *__libc_memalign(size_t align, size_t size);
void *__libc_valloc(size_t size);
void *__libc_pvalloc(size_t size);
void cfree(void *p);

KMM_API void *__libc_malloc(size_t size)
{
	return malloc(size);
}

KMM_API void __libc_free(void *p)
{
	free(p);
}

KMM_API void *__libc_calloc(size_t n, size_t size)
{
	return calloc(n, size);
}

KMM_API void *__libc_realloc(void *p, size_t size)
{
	return realloc(p, size);
}

KMM_API void *__libc_memalign(size_t align, size_t size)
{
	return memalign(align, size);
}

KMM_API void *__libc_valloc(size_t size)
{
	return valloc(size);
}

KMM_API void *__libc_pvalloc(size_t size)
{
	return pvalloc(size);
}

KMM_API void cfree(void *p)
{
	free(p);
}

/* KMM_OPTIONS=stats=1: the allocator's tables on stderr when the program ends. */
KMM_HOT_TEXT __attribute__((destructor)) static void malloc_exit_stats(void)
{
	if (!kmm_options()->stats)
		return;
	kmm_dprint(2, "kmm: statistics at exit (pid %d)\n", (int)getpid());
	kmm_show_buddyinfo(2);
	kmm_show_resident(2);
	kmm_show_slabinfo(2);
	heap_show(2);
	run_show(2);
	kmm_show_vmallocinfo(2);
}
