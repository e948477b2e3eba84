#!/usr/bin/env bash
# libkmm.so's text layout (src/libkmm.ld): the hot text ends inside the
# first 64 KiB of the file, and a real program on kmm maps no more of the
# library's text than that first fault-around window.
#   tests/text_layout.sh PATH_TO_LIBKMM_SO
set -euo pipefail
lib=$(realpath "${1:?usage: text_layout.sh LIBKMM_SO}")
window=$((64 * 1024))

# [Nr] Name Type Address Off Size ...: the hot text's end, as a file offset.
read -r off size < <(readelf -SW "$lib" |
	awk '$2 == ".text.kmm_hot" {print $5, $6} $3 == ".text.kmm_hot" {print $6, $7}')
if [ -z "${off:-}" ]; then
	echo "$lib has no .text.kmm_hot section: was it linked with src/libkmm.ld?" >&2
	exit 1
fi
end=$((16#$off + 16#$size))
printf 'hot text ends at %d bytes into the file (window %d)\n' "$end" "$window"
if [ "$end" -gt "$window" ]; then
	echo "the hot text overflows the first 64 KiB: $((end - window)) bytes too many;" \
		"see docs/malloc.md#text-layout" >&2
	exit 1
fi

# python3 allocates through kmm for a while, then reads its own smaps: the
# resident part of libkmm.so's executable mapping, and where it starts.
# The first fault in the mapping (the dynamic loader reading the symbol
# table) maps its first 64 KiB; anything more was a function outside them.
read -r start rss < <(LD_PRELOAD="$lib" PYTHONMALLOC=malloc python3 - "$lib" <<'PY'
import json, sys, threading
data = [json.dumps({str(i): list(range(i % 50)) for i in range(2000)}) for _ in range(20)]
threads = [threading.Thread(target=lambda: sorted(json.loads(data[0]).items())) for _ in range(4)]
for t in threads:
    t.start()
for t in threads:
    t.join()
start = rss = None
for line in open('/proc/self/smaps'):
    f = line.split()
    if '-' in f[0] and len(f) >= 6 and f[1] == 'r-xp' and f[5] == sys.argv[1]:
        start = int(f[0].split('-')[0], 16)
    elif start is not None and rss is None and f[0] == 'Rss:':
        rss = int(f[1])
print(start, rss)
PY
)
echo "libkmm.so's text: mapped at $start, $rss KiB resident"
if [ "$start" = None ] || [ "$rss" = None ]; then
	echo "python3 found no executable mapping of $lib in its smaps" >&2
	exit 1
fi
# The kernel clamps a fault-around window to the end of a page table too:
# where the library's first 64 KiB cross one, they take two windows.
page=$(getconf PAGESIZE)
table=$((page / 8 * page))
if [ $((start % table + window)) -gt "$table" ]; then
	echo "SKIP: this time the library's first 64 KiB cross a page table's end"
	exit 77
fi
if [ "$rss" -gt $((window / 1024)) ]; then
	echo "python3 mapped $rss KiB of libkmm.so's text: a function it ran is not KMM_HOT_TEXT" >&2
	exit 1
fi
