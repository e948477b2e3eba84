# allocators.sh - the allocators the shell benchmarks compare, shared by
# bench/programs.sh and bench/replay.sh; sourced with $build set.
#
# names: glibc, kmm ($build/libkmm.so), then jemalloc, mimalloc and
# tcmalloc where Debian's packages are installed. lib[NAME]: the library to
# put in LD_PRELOAD ("" for glibc). median: the median of stdin's numbers.
#
# ALLOCATORS="glibc kmm old=/path/to/libkmm.so ..." picks the list instead:
# the names above, or NAME=LIBRARY for any other build (an A/B run of two
# kmm libraries, say), in that order; it must name glibc, the base of the
# ratios its callers print.
# shellcheck shell=bash disable=SC2034 # names and lib are the callers'

libdir=/usr/lib/$(gcc -print-multiarch 2>/dev/null || echo x86_64-linux-gnu)
declare -A lib=([glibc]="" [kmm]=$(cd "$build" && pwd)/libkmm.so)
names=(glibc kmm)
for pair in jemalloc:libjemalloc.so.2 mimalloc:libmimalloc.so.2 tcmalloc:libtcmalloc_minimal.so.4; do
	if [ -f "$libdir/${pair#*:}" ]; then
		names+=("${pair%%:*}")
		lib[${pair%%:*}]=$libdir/${pair#*:}
	fi
done
if [ -n "${ALLOCATORS:-}" ]; then
	names=()
	for a in $ALLOCATORS; do
		if [[ $a == *=* ]]; then
			lib[${a%%=*}]=$(realpath "${a#*=}")
			a=${a%%=*}
		elif [ -z "${lib[$a]+set}" ]; then
			echo "allocators.sh: unknown allocator '$a' (not installed?)" >&2
			exit 2
		fi
		names+=("$a")
	done
fi
if [[ " ${names[*]} " != *" glibc "* ]]; then
	echo "${0##*/}: the allocators must include glibc, the base of the ratios" >&2
	exit 2
fi

median() { sort -g | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'; }
