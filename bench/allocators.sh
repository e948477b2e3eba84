# allocators.sh - the allocators the shell benchmarks compare, shared by
# bench/programs.sh and bench/replay.sh; sourced with $build set.
#
# names: glibc, kmm ($build/libkmm.so), then jemalloc, mimalloc and
# tcmalloc where Debian's packages are installed. lib[NAME]: the library to
# put in LD_PRELOAD ("" for glibc). median: the median of stdin's numbers.
# shellcheck shell=bash disable=SC2034 # names and lib are the callers'

libdir=/usr/lib/$(gcc -print-multiarch 2>/dev/null || echo x86_64-linux-gnu)
names=(glibc kmm)
declare -A lib=([glibc]="" [kmm]=$(cd "$build" && pwd)/libkmm.so)
for pair in jemalloc:libjemalloc.so.2 mimalloc:libmimalloc.so.2 tcmalloc:libtcmalloc_minimal.so.4; do
	if [ -f "$libdir/${pair#*:}" ]; then
		names+=("${pair%%:*}")
		lib[${pair%%:*}]=$libdir/${pair#*:}
	fi
done

median() { sort -g | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'; }
