/*
 * <kmm/percpu.h> - per-CPU data: one copy of a variable for every possible
 * CPU, updated without locks and summed only when read.
 *
 * A per-CPU pointer is the address of CPU 0's copy; CPU c's copy lies
 * c * kmm_percpu_unit_size() bytes further (one "unit" per CPU, as in the
 * kernel's mm/percpu.c). Reach the copies only through the macros below.
 *
 * The this_cpu_* operations are exact under preemption and migration: on
 * x86-64 with rseq they are restartable sequences, elsewhere atomic
 * operations on the current CPU's copy. They work on 1, 2, 4 and 8 byte
 * integers and pointers.
 *
 * Static per-CPU variables (DEFINE_PER_CPU) live in the "kmm_percpu"
 * section of the object that defines them; on first use kmm copies that
 * section's contents, initializers included, into every CPU's unit. Use a
 * static per-CPU variable from the executable or shared object that
 * defines it (docs/percpu.md).
 */
#ifndef KMM_PERCPU_H
#define KMM_PERCPU_H

#include <stdbool.h>
#include <stddef.h>

#include <kmm/gfp.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Marks a pointer to per-CPU data, as the kernel's sparse annotation does. */
#define __percpu

/* The per-CPU allocator's state, like the Percpu line of /proc/meminfo. */
struct kmm_percpu_info {
	size_t unit_size;	/* bytes per CPU in each chunk */
	unsigned int nr_units;	/* possible CPUs: units per chunk */
	unsigned int nr_chunks;
	size_t used_bytes;	/* allocated, per CPU (areas round to 16 bytes) */
	bool rseq;		/* this_cpu ops are restartable sequences */
};

void kmm_percpu_info(struct kmm_percpu_info *info);
void *kmm___alloc_percpu_gfp(size_t size, size_t align, gfp_t gfp);
void kmm_free_percpu(void *ptr);
size_t kmm_percpu_unit_size(void);
unsigned int kmm_num_possible_cpus(void);
unsigned int kmm_raw_smp_processor_id(void);
void *kmm_per_cpu_ptr(void *ptr, unsigned int cpu);
void *kmm_percpu_static_base(const void *var, const char *start, const char *stop);

void kmm_this_cpu_read(const void *pcp, void *out, size_t size);
void kmm_this_cpu_write(void *pcp, const void *value, size_t size);
void kmm_this_cpu_add(void *pcp, const void *delta, size_t size);
void kmm_this_cpu_add_return(void *pcp, void *delta_then_result, size_t size);
void kmm_this_cpu_xchg(void *pcp, void *value_then_old, size_t size);
bool kmm_this_cpu_cmpxchg(void *pcp, void *expect_then_old, const void *newv, size_t size);

/*
 * The bounds of this object's static per-CPU section; weak, so that they
 * are NULL in an object that defines no per-CPU variable.
 */
extern char __start_kmm_percpu[] __attribute__((weak, visibility("hidden")));
extern char __stop_kmm_percpu[] __attribute__((weak, visibility("hidden")));

/* CPU 0's copy of a per-CPU variable or allocation. */
static inline void *kmm_percpu_base(const void *pcp)
{
	const char *p = (const char *)pcp;

	if (p >= __start_kmm_percpu && p < __stop_kmm_percpu)
		return kmm_percpu_static_base(pcp, __start_kmm_percpu, __stop_kmm_percpu);
	return (void *)pcp;
}

/* ---- allocation --------------------------------------------------------- */

static inline void *__alloc_percpu_gfp(size_t size, size_t align, gfp_t gfp)
{
	return kmm___alloc_percpu_gfp(size, align, gfp);
}

static inline void *__alloc_percpu(size_t size, size_t align)
{
	return kmm___alloc_percpu_gfp(size, align, GFP_KERNEL);
}

static inline void free_percpu(void *ptr)
{
	kmm_free_percpu(ptr);
}

#define alloc_percpu_gfp(type, gfp) \
	((__typeof__(type) *)__alloc_percpu_gfp(sizeof(type), __alignof__(type), gfp))
#define alloc_percpu(type) alloc_percpu_gfp(type, GFP_KERNEL)

/* ---- CPUs ----------------------------------------------------------------- */

static inline unsigned int num_possible_cpus(void)
{
	return kmm_num_possible_cpus();
}

/* The CPU the caller runs on now; it may migrate right after. */
static inline unsigned int raw_smp_processor_id(void)
{
	return kmm_raw_smp_processor_id();
}

#define smp_processor_id() raw_smp_processor_id()

#define for_each_possible_cpu(cpu) \
	for ((cpu) = 0; (cpu) < kmm_num_possible_cpus(); (cpu)++)

/* ---- addresses of the copies --------------------------------------------- */

#define per_cpu_ptr(ptr, cpu) \
	((__typeof__(ptr))kmm_per_cpu_ptr(kmm_percpu_base(ptr), (cpu)))
#define per_cpu(var, cpu) (*per_cpu_ptr(&(var), (cpu)))

/*
 * The copy of the CPU the caller runs on now. User space cannot disable
 * preemption, so nothing stops another thread from using the same copy:
 * update through these pointers with atomics, or use this_cpu_*().
 */
#define raw_cpu_ptr(ptr) per_cpu_ptr(ptr, raw_smp_processor_id())
#define this_cpu_ptr(ptr) raw_cpu_ptr(ptr)
#define get_cpu_ptr(ptr) raw_cpu_ptr(ptr)
#define put_cpu_ptr(ptr) ((void)(ptr))

/* ---- static per-CPU variables --------------------------------------------- */

#define DECLARE_PER_CPU(type, name) extern __typeof__(type) name
#define DEFINE_PER_CPU(type, name) \
	__attribute__((section("kmm_percpu"))) __typeof__(type) name

/* ---- operations on this CPU's copy ---------------------------------------- */

#define this_cpu_read(pcp) ({                                            \
	__typeof__(pcp) kmm_v_;                                          \
	kmm_this_cpu_read(kmm_percpu_base(&(pcp)), &kmm_v_, sizeof(kmm_v_)); \
	kmm_v_; })

#define this_cpu_write(pcp, val) ({                                      \
	__typeof__(pcp) kmm_v_ = (val);                                  \
	kmm_this_cpu_write(kmm_percpu_base(&(pcp)), &kmm_v_, sizeof(kmm_v_)); })

#define this_cpu_add(pcp, val) ({                                        \
	__typeof__(pcp) kmm_v_ = (val);                                  \
	kmm_this_cpu_add(kmm_percpu_base(&(pcp)), &kmm_v_, sizeof(kmm_v_)); })

#define this_cpu_add_return(pcp, val) ({                                 \
	__typeof__(pcp) kmm_v_ = (val);                                  \
	kmm_this_cpu_add_return(kmm_percpu_base(&(pcp)), &kmm_v_, sizeof(kmm_v_)); \
	kmm_v_; })

#define this_cpu_xchg(pcp, val) ({                                       \
	__typeof__(pcp) kmm_v_ = (val);                                  \
	kmm_this_cpu_xchg(kmm_percpu_base(&(pcp)), &kmm_v_, sizeof(kmm_v_)); \
	kmm_v_; })

/* Returns the value found; the store happened if it equals oval. */
#define this_cpu_cmpxchg(pcp, oval, nval) ({                             \
	__typeof__(pcp) kmm_o_ = (oval), kmm_n_ = (nval);                \
	kmm_this_cpu_cmpxchg(kmm_percpu_base(&(pcp)), &kmm_o_, &kmm_n_, sizeof(kmm_o_)); \
	kmm_o_; })

#define this_cpu_sub(pcp, val) this_cpu_add(pcp, -(__typeof__(pcp))(val))
#define this_cpu_inc(pcp) this_cpu_add(pcp, 1)
#define this_cpu_dec(pcp) this_cpu_sub(pcp, 1)
#define this_cpu_sub_return(pcp, val) this_cpu_add_return(pcp, -(__typeof__(pcp))(val))
#define this_cpu_inc_return(pcp) this_cpu_add_return(pcp, 1)
#define this_cpu_dec_return(pcp) this_cpu_sub_return(pcp, 1)

#ifdef __cplusplus
}
#endif

#endif
