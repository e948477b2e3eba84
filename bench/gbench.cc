// gbench.cc - the C API of gbench.h, implemented on Google Benchmark.
//
// A gb_bench is a benchmark::Benchmark and a gb_state is a benchmark::State:
// the casts below are the whole binding, so nothing is copied or re-timed.
#include "gbench.h"

#include <benchmark/benchmark.h>

namespace {

benchmark::internal::Benchmark *bench(gb_bench *b)
{
	return reinterpret_cast<benchmark::internal::Benchmark *>(b);
}

gb_bench *handle(benchmark::internal::Benchmark *b)
{
	return reinterpret_cast<gb_bench *>(b);
}

benchmark::State &state(gb_state *s)
{
	return *reinterpret_cast<benchmark::State *>(s);
}

const benchmark::State &state(const gb_state *s)
{
	return *reinterpret_cast<const benchmark::State *>(s);
}

benchmark::Counter::Flags counter_flags(enum gb_counter_kind kind)
{
	switch (kind) {
	case GB_COUNTER_AVG_THREADS:
		return benchmark::Counter::kAvgThreads;
	case GB_COUNTER_RATE:
		return benchmark::Counter::kIsRate;
	case GB_COUNTER_SUM:
		break;
	}
	return benchmark::Counter::kDefaults;
}

} // namespace

extern "C" {

gb_bench *gb_register(const char *name, gb_fn fn)
{
	return handle(benchmark::RegisterBenchmark(name, [fn](benchmark::State &st) {
		fn(reinterpret_cast<gb_state *>(&st));
	}));
}

gb_bench *gb_arg(gb_bench *b, int64_t arg)
{
	bench(b)->Arg(arg);
	return b;
}

gb_bench *gb_arg_name(gb_bench *b, const char *name)
{
	bench(b)->ArgName(name);
	return b;
}

gb_bench *gb_threads(gb_bench *b, int threads)
{
	bench(b)->Threads(threads);
	return b;
}

gb_bench *gb_use_real_time(gb_bench *b)
{
	bench(b)->UseRealTime();
	return b;
}

bool gb_loop(gb_state *s)
{
	return state(s).KeepRunning();
}

bool gb_loop_batch(gb_state *s, int64_t n)
{
	return state(s).KeepRunningBatch(n);
}

void gb_pause(gb_state *s)
{
	state(s).PauseTiming();
}

void gb_resume(gb_state *s)
{
	state(s).ResumeTiming();
}

void gb_skip_with_error(gb_state *s, const char *message)
{
	state(s).SkipWithError(message);
}

int64_t gb_arg_value(const gb_state *s, int index)
{
	return state(s).range(index);
}

int gb_thread_index(const gb_state *s)
{
	return state(s).thread_index();
}

int gb_thread_count(const gb_state *s)
{
	return state(s).threads();
}

int64_t gb_iterations(const gb_state *s)
{
	return state(s).iterations();
}

void gb_set_items_processed(gb_state *s, int64_t items)
{
	state(s).SetItemsProcessed(items);
}

void gb_set_bytes_processed(gb_state *s, int64_t bytes)
{
	state(s).SetBytesProcessed(bytes);
}

void gb_counter(gb_state *s, const char *name, double value, enum gb_counter_kind kind)
{
	state(s).counters[name] = benchmark::Counter(value, counter_flags(kind));
}

void gb_add_context(const char *key, const char *value)
{
	benchmark::AddCustomContext(key, value);
}

int gb_main(int argc, char **argv)
{
	benchmark::Initialize(&argc, argv);
	if (benchmark::ReportUnrecognizedArguments(argc, argv))
		return 1;
	benchmark::RunSpecifiedBenchmarks();
	benchmark::Shutdown();
	return 0;
}

} // extern "C"
