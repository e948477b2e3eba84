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
#include <stdbool.h>
#include <sys/rseq.h>

#include "internal.h"

#pragma GCC visibility push(hidden)

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


/*
 * Restartable sequences over per-CPU slot arrays (the slab layer's
 * sheaves). A slot array has one pointer per cache for each CPU, CPU c's at
 * slot0 + (c << SLOT_STRIDE_SHIFT) (a CPU's row of slots, then its
 * spares); NULL means no sheaf (empty for a pop, full for a push). A sheaf
 * is { u32 size, u32 capacity, next, objects[] } with objects at offset 16.
 *
 * Each sequence reads cpu_id_start, works on that CPU's slot and commits
 * with one final store. If the thread is preempted, migrated or signalled
 * inside it, the kernel restarts it at the abort handler, which retries.
 * Only x86-64 has these sequences today; elsewhere, and where glibc did not
 * register rseq, the slab layer runs on per-thread slots instead.
 */
#if defined(__x86_64__)
#define KMM_HAVE_RSEQ_OPS 1
#define SLOT_STRIDE_SHIFT 12
#define RSEQ_STR2(x) #x
#define RSEQ_STR(x) RSEQ_STR2(x)

/* __rseq_offset, copied at start-up: one load instead of two through the GOT. */
extern ptrdiff_t kmm_rseq_offset;

/* The critical-section descriptor (label 3), stored in the thread's rseq area. */
#define RSEQ_CS_TABLE                                                   \
	".pushsection __rseq_cs, \"aw\"\n\t"                            \
	".balign 32\n\t"                                                \
	"3:\n\t"                                                        \
	".long 0x0, 0x0\n\t"                                            \
	".quad 1f, (2f - 1f), 4f\n\t"                                   \
	".popsection\n\t"                                               \
	"leaq 3b(%%rip), %%rax\n\t"                                     \
	"movq %%rax, %%fs:8(%[off])\n\t"

/* The signed abort handler (label 4), which jumps where restart says. */
#define RSEQ_ABORT_JUMP(restart)                                        \
	".pushsection __rseq_failure, \"ax\"\n\t"                       \
	".byte 0x0f, 0xb9, 0x3d\n\t"                                    \
	".long 0x53053053\n\t"                                          \
	"4:\n\t"                                                        \
	"jmp " restart "\n\t"                                           \
	".popsection\n\t"

#define RSEQ_ABORT_HANDLER RSEQ_ABORT_JUMP("%l[restart]")

/*
 * Pops the top object of this CPU's sheaf; NULL if it is empty (sheaves
 * never hold NULL). A plain asm with a register output, not an asm goto:
 * GCC 12 under -fsanitize=address returned an asm goto output register's
 * stale value on the empty path, and passing the object out through memory
 * instead cost malloc a stack frame. So the abort handler restarts at the
 * asm's own first label (0), which sets up the critical section again.
 * The output is early-clobbered: the section's setup writes %rax before
 * the inputs are read.
 */
static inline void *rseq_sheaf_pop(uintptr_t slot0)
{
	void *obj;

	__asm__ volatile("0:\n\t"
			 RSEQ_CS_TABLE
			 "1:\n\t"
			 "movl %%fs:(%[off]), %%eax\n\t"
			 "shlq $" RSEQ_STR(SLOT_STRIDE_SHIFT) ", %%rax\n\t"
			 "movq (%[slot0], %%rax), %%rcx\n\t"
			 "xorl %%eax, %%eax\n\t"
			 "testq %%rcx, %%rcx\n\t"
			 "jz 2f\n\t"
			 "movl (%%rcx), %%edx\n\t"
			 "testl %%edx, %%edx\n\t"
			 "jz 2f\n\t"
			 "subl $1, %%edx\n\t"
			 "movq 16(%%rcx, %%rdx, 8), %%rax\n\t"
			 "movl %%edx, (%%rcx)\n\t"
			 "2:\n\t"
			 RSEQ_ABORT_JUMP("0b")
			 : "=&a"(obj)
			 : [off] "r"(kmm_rseq_offset), [slot0] "r"(slot0)
			 : "rcx", "rdx", "memory", "cc");
	return obj;
}

/*
 * Pushes obj onto this CPU's sheaf: 1. Full: 0. Already on top of the sheaf
 * (freed twice in a row): -1.
 */
static inline int rseq_sheaf_push(uintptr_t slot0, void *obj)
{
restart:
	__asm__ goto(RSEQ_CS_TABLE
		     "1:\n\t"
		     "movl %%fs:(%[off]), %%eax\n\t"
		     "shlq $" RSEQ_STR(SLOT_STRIDE_SHIFT) ", %%rax\n\t"
		     "movq (%[slot0], %%rax), %%rcx\n\t"
		     "testq %%rcx, %%rcx\n\t"
		     "jz %l[full]\n\t"
		     "movl (%%rcx), %%edx\n\t"
		     "cmpq %[obj], 8(%%rcx, %%rdx, 8)\n\t"
		     "je %l[twice]\n\t"
		     "cmpl 4(%%rcx), %%edx\n\t"
		     "jae %l[full]\n\t"
		     "movq %[obj], 16(%%rcx, %%rdx, 8)\n\t"
		     "addl $1, %%edx\n\t"
		     "movl %%edx, (%%rcx)\n\t"
		     "2:\n\t"
		     RSEQ_ABORT_HANDLER
		     :
		     : [off] "r"(kmm_rseq_offset), [slot0] "r"(slot0), [obj] "r"(obj)
		     : "rax", "rcx", "rdx", "memory", "cc"
		     : restart, full, twice);
	return 1;
full:
	return 0;
twice:
	return -1;
}

/*
 * If the thread still runs on cpu and *slot still holds expect, replaces
 * it with newv and returns true: the caller then owns expect.
 */
static inline bool rseq_slot_replace(void **slot, unsigned int cpu, void *expect, void *newv)
{
restart:
	__asm__ goto(RSEQ_CS_TABLE
		     "1:\n\t"
		     "cmpl %[cpu], %%fs:(%[off])\n\t"
		     "jnz %l[fail]\n\t"
		     "cmpq %[expect], (%[slot])\n\t"
		     "jnz %l[fail]\n\t"
		     "movq %[newv], (%[slot])\n\t"
		     "2:\n\t"
		     RSEQ_ABORT_HANDLER
		     :
		     : [off] "r"(kmm_rseq_offset), [slot] "r"(slot), [cpu] "r"(cpu),
		       [expect] "r"(expect), [newv] "r"(newv)
		     : "rax", "memory", "cc"
		     : restart, fail);
	return true;
fail:
	return false;
}

/*
 * Per-CPU variables (percpu.c): CPU c's copy of a variable whose CPU 0 copy
 * is at base lies at base + c * stride. Each sequence locates the copy of
 * the CPU it runs on and commits with its one store to that copy.
 */
static inline uint64_t rseq_percpu_add_return_u64(char *base, size_t stride, uint64_t delta)
{
	uint64_t v;

restart:
	__asm__ goto(RSEQ_CS_TABLE
		     "1:\n\t"
		     "movl %%fs:(%[off]), %%eax\n\t"
		     "imulq %[stride], %%rax\n\t"
		     "addq %[base], %%rax\n\t"
		     "movq (%%rax), %[v]\n\t"
		     "addq %[delta], %[v]\n\t"
		     "movq %[v], (%%rax)\n\t"
		     "2:\n\t"
		     RSEQ_ABORT_HANDLER
		     : [v] "=&r"(v)
		     : [off] "r"(kmm_rseq_offset), [base] "r"(base), [stride] "r"(stride),
		       [delta] "r"(delta)
		     : "rax", "memory", "cc"
		     : restart);
	return v;
}

static inline uint32_t rseq_percpu_add_return_u32(char *base, size_t stride, uint32_t delta)
{
	uint32_t v;

restart:
	__asm__ goto(RSEQ_CS_TABLE
		     "1:\n\t"
		     "movl %%fs:(%[off]), %%eax\n\t"
		     "imulq %[stride], %%rax\n\t"
		     "addq %[base], %%rax\n\t"
		     "movl (%%rax), %[v]\n\t"
		     "addl %[delta], %[v]\n\t"
		     "movl %[v], (%%rax)\n\t"
		     "2:\n\t"
		     RSEQ_ABORT_HANDLER
		     : [v] "=&r"(v)
		     : [off] "r"(kmm_rseq_offset), [base] "r"(base), [stride] "r"(stride),
		       [delta] "r"(delta)
		     : "rax", "memory", "cc"
		     : restart);
	return v;
}

/* Stores newv if this CPU's copy holds expect; returns the value it held. */
static inline uint64_t rseq_percpu_cmpxchg_u64(char *base, size_t stride, uint64_t expect,
					       uint64_t newv)
{
	uint64_t old;

restart:
	__asm__ goto(RSEQ_CS_TABLE
		     "1:\n\t"
		     "movl %%fs:(%[off]), %%eax\n\t"
		     "imulq %[stride], %%rax\n\t"
		     "addq %[base], %%rax\n\t"
		     "movq (%%rax), %[old]\n\t"
		     "cmpq %[old], %[expect]\n\t"
		     "jne 2f\n\t"
		     "movq %[newv], (%%rax)\n\t"
		     "2:\n\t"
		     RSEQ_ABORT_HANDLER
		     : [old] "=&r"(old)
		     : [off] "r"(kmm_rseq_offset), [base] "r"(base), [stride] "r"(stride),
		       [expect] "r"(expect), [newv] "r"(newv)
		     : "rax", "memory", "cc"
		     : restart);
	return old;
}

static inline uint32_t rseq_percpu_cmpxchg_u32(char *base, size_t stride, uint32_t expect,
					       uint32_t newv)
{
	uint32_t old;

restart:
	__asm__ goto(RSEQ_CS_TABLE
		     "1:\n\t"
		     "movl %%fs:(%[off]), %%eax\n\t"
		     "imulq %[stride], %%rax\n\t"
		     "addq %[base], %%rax\n\t"
		     "movl (%%rax), %[old]\n\t"
		     "cmpl %[old], %[expect]\n\t"
		     "jne 2f\n\t"
		     "movl %[newv], (%%rax)\n\t"
		     "2:\n\t"
		     RSEQ_ABORT_HANDLER
		     : [old] "=&r"(old)
		     : [off] "r"(kmm_rseq_offset), [base] "r"(base), [stride] "r"(stride),
		       [expect] "r"(expect), [newv] "r"(newv)
		     : "rax", "memory", "cc"
		     : restart);
	return old;
}

/* The CPU the sequences above would use right now. */
static inline unsigned int rseq_cpu_start(void)
{
	return __atomic_load_n(&rseq_area()->cpu_id_start, __ATOMIC_RELAXED);
}
#endif

#pragma GCC visibility pop

#endif
