#!/usr/bin/env bash
# bench/replay on a hand-made trace: the peak of live bytes for the whole
# trace and for size ranges, with a realloc that crosses a range's bound.
#   tests/replay_sizes.sh PATH_TO_REPLAY
set -euo pipefail
replay=${1:?usage: replay_sizes.sh REPLAY}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# A 200000, B 300000, B moved to C and grown to 600000, D 1000.
cat >"$work/trace" <<'TRACE'
m 7f0000001000 200000
m 7f0000100000 300000
r 7f0000200000 600000 7f0000100000
f 7f0000001000
m 7f0000300000 1000
f 7f0000200000
f 7f0000300000
TRACE
"$replay" --prepare "$work/trace" "$work/replay" >/dev/null

fail=0
check() {	# expected peak_live_kib, then replay's arguments
	local want=$1 got
	shift
	got=$("$replay" "$@" "$work/replay" | awk '{print $4}')
	if [ "$got" != "$want" ]; then
		echo "replay $*: peak_live_kib $got, want $want" >&2
		fail=1
	fi
}
check 781		# A and C: 800000 bytes
check 195 --sizes 0:250000	# A only
check 585 --sizes 250000:700000	# B, then C in its place
check 488 --sizes 0:400000	# A and B; the realloc frees B (C is out)
check 0 --sizes 0:1000	# D alone
# The call count at the peak, the --stop that ends there: after the realloc
# (a pair of calls), or after A alone.
at=$("$replay" "$work/replay" | awk '{print $10}')
at_a=$("$replay" --sizes 0:250000 "$work/replay" | awk '{print $10}')
if [ "$at" != 4 ] || [ "$at_a" != 1 ]; then
	echo "replay: peak_live_at $at and $at_a, want 4 and 1" >&2
	fail=1
fi
# A stays allocated at exit, on purpose (the allocator's statistics at exit
# describe the moment of the stop): no leak report for it.
ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0 check 195 --stop 1
if "$replay" --sizes 5:3 "$work/replay" 2>/dev/null; then
	echo "replay accepted --sizes 5:3" >&2
	fail=1
fi
exit $fail
