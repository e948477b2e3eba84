#!/usr/bin/env bash
# compare.sh LIBKMM WORKLOAD: runs a real program under glibc malloc and under
# kmm (LD_PRELOAD), fails unless the outputs are identical and kmm was really
# loaded in the process that matters (KMM_OPTIONS=log_load records every
# process that starts kmm).
set -euo pipefail
lib=$1 name=$2
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=workloads.sh
. "$here/workloads.sh"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"setup_$name" "$work"

"run_$name" "$work" >"$work/out.glibc" 2>&1 || { echo "$name failed under glibc:"; cat "$work/out.glibc"; exit 1; }
LD_PRELOAD=$lib KMM_OPTIONS="log_load=$work/loaded.log" "run_$name" "$work" >"$work/out.kmm" 2>&1 ||
	{ echo "$name failed under kmm:"; cat "$work/out.kmm"; exit 1; }

if ! diff -u "$work/out.glibc" "$work/out.kmm"; then
	echo "$name: output under kmm differs from glibc's"
	exit 1
fi
if ! grep -Eq "${WORKLOAD_EXE[$name]}\$" "$work/loaded.log"; then
	echo "$name: kmm was not loaded in ${WORKLOAD_EXE[$name]}; processes that loaded it:"
	cat "$work/loaded.log"
	exit 1
fi
echo "$name: same output under glibc and kmm; kmm ran in $(grep -Ec . "$work/loaded.log") processes"
head -n 3 "$work/out.kmm"
