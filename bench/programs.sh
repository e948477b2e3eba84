#!/usr/bin/env bash
# Real programs (the workloads of tests/programs/) under each allocator:
# wall time and peak RSS, medians of N interleaved runs, as ratios to glibc
# measured in the same run; before them, the start-up cost of short
# processes (bench/startup.c).
#
#   bench/programs.sh [BUILD_DIR] [N] [WORKLOAD...]    (default: build 3 all)
#
# Allocators: glibc, kmm (BUILD_DIR/libkmm.so), and jemalloc, mimalloc,
# tcmalloc where Debian's packages are installed; or the list in
# ALLOCATORS (see allocators.sh), which must name glibc, the base of the
# ratios.
set -euo pipefail
build=${1:-build}
runs=${2:-3}
shift 2 || shift $#
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=../tests/programs/workloads.sh
. "$root/tests/programs/workloads.sh"
[ $# -gt 0 ] && WORKLOADS=("$@")

# shellcheck source=allocators.sh
. "$(dirname "${BASH_SOURCE[0]}")/allocators.sh"

# Start-up first: what each allocator adds to processes that do almost
# nothing, timed per process by bench/startup (100 runs per run asked for).
if [ -x "$build/bench/startup" ]; then
	spec=()
	for a in "${names[@]}"; do spec+=("$a=${lib[$a]}"); done
	for cmd in /bin/true "sh -c true" "ls /"; do
		echo "start-up: $cmd"
		# shellcheck disable=SC2086 # the command is meant to split
		"$build/bench/startup" -n $((runs * 100)) "${spec[@]}" -- $cmd
	done
	echo
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
printf '%-8s %-9s %9s %9s %10s %9s\n' workload allocator time_s time/glibc peak_MiB rss/glibc
for w in "${WORKLOADS[@]}"; do
	mkdir -p "$work/$w"
	"setup_$w" "$work/$w"
	for ((r = 0; r < runs; r++)); do
		# Each round starts with the next allocator, so that a slow spell
		# of the machine (a neighbour on its host) does not always fall
		# on the same ones.
		for ((i = 0; i < ${#names[@]}; i++)); do
			a=${names[(r + i) % ${#names[@]}]}
			# Elapsed seconds from bash's microsecond clock (GNU time's %e
			# has hundredths: sqlite's 0.23 s came out as 0.23 or 0.24), and
			# the peak RSS (KiB) of the largest single process in the tree
			# (wait4's ru_maxrss, as GNU time reports it).
			start=$EPOCHREALTIME
			/usr/bin/time -f '%M' -o "$work/t" env ${lib[$a]:+LD_PRELOAD=${lib[$a]}} \
				bash -c "$(declare -f "run_$w"); run_$w '$work/$w'" >/dev/null 2>&1
			echo "$(echo "$EPOCHREALTIME - $start" | bc -l) $(cat "$work/t")" >>"$work/$w.$a"
		done
	done
	base_t=$(cut -d' ' -f1 "$work/$w.glibc" | median)
	base_m=$(cut -d' ' -f2 "$work/$w.glibc" | median)
	for a in "${names[@]}"; do
		t=$(cut -d' ' -f1 "$work/$w.$a" | median)
		m=$(cut -d' ' -f2 "$work/$w.$a" | median)
		printf '%-8s %-9s %9.3f %9.2f %10.1f %9.2f\n' "$w" "$a" "$t" \
			"$(echo "$t / $base_t" | bc -l)" "$(echo "$m / 1024" | bc -l)" "$(echo "$m / $base_m" | bc -l)"
	done
done
