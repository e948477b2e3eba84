#!/usr/bin/env bash
# Instructions per allocation+free pair, counted exactly by callgrind, for
# kmm's kmalloc+kfree and kzalloc+kfree, kmm's malloc+free (LD_PRELOAD), and malloc+free in glibc and in every other
# allocator installed (jemalloc, mimalloc, tcmalloc). Repeatable on a noisy
# machine: same binary, same inputs, same count.
#
#   bench/instructions.sh [BUILD_DIR] [SIZE...]      (default: build, 16 64 256 1024)
#
# Under valgrind there is no rseq, so kmm runs its per-thread sheaves here;
# docs/slab.md counts the rseq fast path instruction by instruction.
set -euo pipefail
build=${1:-build}
shift || true
sizes=${*:-16 64 256 1024}
pairs=$build/bench/pairs
[ -x "$pairs" ] || { echo "build $pairs first (meson compile -C $build)" >&2; exit 1; }
command -v valgrind >/dev/null || { echo "valgrind is needed" >&2; exit 1; }

libdir=/usr/lib/$(gcc -print-multiarch 2>/dev/null || echo x86_64-linux-gnu)
declare -A preload=(
	[jemalloc]=$libdir/libjemalloc.so.2
	[mimalloc]=$libdir/libmimalloc.so.2
	[tcmalloc]=$libdir/libtcmalloc_minimal.so.4
)

count() { # [env VAR=...] pairs args: prints total instructions
	local envs=()
	if [ "$1" = env ]; then envs=("$1" "$2"); shift 2; fi
	"${envs[@]}" valgrind --tool=callgrind --callgrind-out-file=/dev/null "$@" 2>&1 |
		sed -n 's/.*Collected : *\([0-9]*\).*/\1/p'
}

per_pair() { # label kind size [LD_PRELOAD]
	local label=$1 kind=$2 size=$3 lib=${4:-} a b
	local envs=()
	[ -n "$lib" ] && envs=(env LD_PRELOAD="$lib")
	a=$(count "${envs[@]}" "$pairs" "$kind" "$size" 10000)
	b=$(count "${envs[@]}" "$pairs" "$kind" "$size" 30000)
	printf '%-10s %-15s %6s %8.1f\n' "$label" "$kind+free" "$size" "$(awk -v a="$a" -v b="$b" 'BEGIN { print (b - a) / 20000 }')"
}

printf '%-10s %-15s %6s %8s\n' allocator pair size instr
for size in $sizes; do
	per_pair kmm kmalloc "$size"
	per_pair kmm kzalloc "$size"
	[ -f "$build/libkmm.so" ] && per_pair kmm malloc "$size" "$PWD/$build/libkmm.so"
	per_pair glibc malloc "$size"
	for name in jemalloc mimalloc tcmalloc; do
		[ -f "${preload[$name]}" ] && per_pair "$name" malloc "$size" "${preload[$name]}"
	done
done
