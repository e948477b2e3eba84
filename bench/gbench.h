/*
 * gbench.h - a small C API over Google Benchmark.
 *
 * kmm's benchmarks are written in C; this header is all they see of the
 * C++ library. gbench.cc implements it in one file. Registration mirrors
 * benchmark::RegisterBenchmark and its builder calls; the state calls
 * mirror benchmark::State. Google Benchmark's own command-line flags
 * (--benchmark_filter, --benchmark_format=json, --benchmark_min_time, ...)
 * keep working because gb_main() hands argv to benchmark::Initialize.
 */
#ifndef KMM_BENCH_GBENCH_H
#define KMM_BENCH_GBENCH_H

#include <stdbool.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct gb_bench gb_bench;	/* benchmark::Benchmark */
typedef struct gb_state gb_state;	/* benchmark::State */
typedef void (*gb_fn)(gb_state *state);

/* How a counter is combined and shown (benchmark::Counter flags). */
enum gb_counter_kind {
	GB_COUNTER_SUM,		/* summed over threads */
	GB_COUNTER_AVG_THREADS,	/* averaged over threads: a process-wide figure */
	GB_COUNTER_RATE,	/* per second */
};

/* Registration: each builder call returns its first argument. */
gb_bench *gb_register(const char *name, gb_fn fn);
gb_bench *gb_arg(gb_bench *b, int64_t arg);
gb_bench *gb_arg_name(gb_bench *b, const char *name);
gb_bench *gb_threads(gb_bench *b, int threads);
gb_bench *gb_use_real_time(gb_bench *b);

/* The measured loop: while (gb_loop(s)) { one operation } */
bool gb_loop(gb_state *s);
/* Counts n iterations per call, for operations too short to pay a call each. */
bool gb_loop_batch(gb_state *s, int64_t n);
void gb_pause(gb_state *s);
void gb_resume(gb_state *s);
void gb_skip_with_error(gb_state *s, const char *message);

int64_t gb_arg_value(const gb_state *s, int index);
int gb_thread_index(const gb_state *s);
int gb_thread_count(const gb_state *s);
int64_t gb_iterations(const gb_state *s);

void gb_set_items_processed(gb_state *s, int64_t items);
void gb_set_bytes_processed(gb_state *s, int64_t bytes);
void gb_counter(gb_state *s, const char *name, double value, enum gb_counter_kind kind);

/* A key/value pair for the run's context (printed, and in the JSON). */
void gb_add_context(const char *key, const char *value);

/* Initializes the library from argv, runs what the flags select. */
int gb_main(int argc, char **argv);

/* Keeps the compiler from dropping a computation whose result is unused. */
static inline void gb_do_not_optimize(const void *p)
{
	__asm__ volatile("" : : "r"(p) : "memory");
}

#ifdef __cplusplus
}
#endif

#endif
