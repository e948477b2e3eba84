#!/usr/bin/env bash
# Peak memory of one program's allocations under each allocator, from a
# recorded trace (bench/alloc_trace.c, bench/replay.c); see
# docs/benchmarks.md#replaying-a-programs-allocations.
#
#   bench/replay.sh BUILD_DIR TRACE [RUNS [LO:HI]]   (default RUNS: 3)
#
# LO:HI replays only the blocks of more than LO and at most HI bytes.
# Prepares TRACE once, then replays it RUNS times under each allocator,
# pinned to one CPU (per-CPU caches make an unpinned replay vary), and
# prints the median peak RSS above the replayer's start, and the ratio to
# glibc's. Allocators: glibc, kmm (BUILD_DIR/libkmm.so), and jemalloc,
# mimalloc, tcmalloc where Debian's packages are installed; or the list in
# ALLOCATORS (see allocators.sh), which must name glibc.
set -euo pipefail
build=${1:?usage: bench/replay.sh BUILD_DIR TRACE [RUNS]}
trace=${2:?usage: bench/replay.sh BUILD_DIR TRACE [RUNS]}
runs=${3:-3}
sizes=()
[ -n "${4:-}" ] && sizes=(--sizes "$4")
replay=$build/bench/replay

# shellcheck source=allocators.sh
. "$(dirname "${BASH_SOURCE[0]}")/allocators.sh"
pin=()
command -v taskset >/dev/null && pin=(taskset -c 0)

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$replay" --prepare "$trace" "$work/replay" >&2

printf '%-9s %12s %13s %9s\n' allocator peak_live_KiB peak_rss_KiB rss/glibc
for a in "${names[@]}"; do
	for ((r = 0; r < runs; r++)); do
		env ${lib[$a]:+LD_PRELOAD=${lib[$a]}} "${pin[@]}" "$replay" "${sizes[@]}" "$work/replay" \
			>>"$work/$a"
	done
done
base=$(awk '{print $6}' "$work/glibc" | median)
for a in "${names[@]}"; do
	live=$(awk '{print $4}' "$work/$a" | median)
	rss=$(awk '{print $6}' "$work/$a" | median)
	printf '%-9s %12s %13s %9.2f\n' "$a" "$live" "$rss" "$(echo "$rss / $base" | bc -l)"
done
