# workloads.sh - real programs as workloads, shared by the LD_PRELOAD tests
# (tests/programs/compare.sh) and the benchmark (bench/programs.sh).
#
# For each NAME: setup_NAME DIR prepares inputs in DIR once; run_NAME DIR runs
# the workload in DIR and prints a deterministic result on stdout; and
# WORKLOAD_EXE[NAME] names the executable that must have run on kmm (a
# regular expression matched against the end of its path).
# shellcheck shell=bash

WORKLOADS=(python sqlite gcc perl git make)
declare -A WORKLOAD_EXE=(
	[python]='/python3(\.[0-9]+)?'
	[sqlite]='/sqlite3'
	[gcc]='/cc1'
	[perl]='/perl'
	[git]='/git'
	[make]='/make'
)

setup_python() {
	cat >"$1/work.py" <<'PY'
import hashlib, json, threading

def build(seed, n):
    d = {}
    for i in range(n):
        k = "key-%d-%d" % (seed, i)
        d[k] = {"i": i, "s": k * (i % 7 + 1), "l": list(range(i % 50))}
    return d

results = [None] * 4
def worker(t):
    d = build(t, 15000)
    text = json.dumps(d, sort_keys=True)
    back = json.loads(text)
    results[t] = hashlib.sha256(json.dumps(back, sort_keys=True).encode()).hexdigest()

threads = [threading.Thread(target=worker, args=(t,)) for t in range(4)]
for t in threads: t.start()
for t in threads: t.join()
words = sorted(("".join(chr(97 + (i * j) % 26) for j in range(i % 40 + 1)) for i in range(60000)))
print(results)
print(len(words), hashlib.sha256("".join(words).encode()).hexdigest())
PY
}
run_python() { (cd "$1" && PYTHONMALLOC=malloc PYTHONHASHSEED=0 /usr/bin/python3 work.py); }

setup_sqlite() {
	cat >"$1/work.sql" <<'SQL'
CREATE TABLE t(id INTEGER PRIMARY KEY, grp INTEGER, name TEXT, val REAL);
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 200000)
INSERT INTO t SELECT i, i % 97, 'name-' || (i * 7919 % 100003), (i * 31 % 1000) / 10.0 FROM n;
CREATE INDEX t_name ON t(name);
SELECT grp, count(*), sum(val), min(name), max(name) FROM t GROUP BY grp ORDER BY grp LIMIT 20;
SELECT count(DISTINCT name) FROM t;
SELECT name, val FROM t WHERE name LIKE 'name-99%' ORDER BY val DESC, name LIMIT 10;
SQL
}
run_sqlite() { (cd "$1" && rm -f work.db && sqlite3 work.db <work.sql); }

setup_gcc() {
	local f="$1/big.c" i
	{
		echo '#include <string.h>'
		for i in $(seq 1 1000); do
			echo "struct s$i { int a[$((i % 13 + 1))]; char n[$((i % 31 + 1))]; };"
			echo "int f$i(int x, const char *p) { struct s$i v; memset(&v, 0, sizeof v);"
			echo "  for (int k = 0; k < $((i % 9 + 1)); k++) v.a[k % $((i % 13 + 1))] += x * k + (int)strlen(p);"
			echo "  return v.a[0] + (x > $i ? f$(( i > 1 ? i - 1 : 1 ))(x - 1, p) : $i); }"
		done
	} >"$f"
}
run_gcc() { (cd "$1" && gcc -O2 -c big.c -o big.o && sha256sum big.o); }

setup_perl() {
	cat >"$1/work.pl" <<'PL'
use strict; use warnings;
my %h; my @words;
for my $i (1 .. 200000) {
    my $w = join '', map { chr(97 + ($i * $_) % 26) } 1 .. ($i % 30 + 1);
    $h{$w} += $i; push @words, $w if $i % 3 == 0;
}
my @top = (sort { $h{$b} <=> $h{$a} || $a cmp $b } keys %h)[0 .. 9];
my $joined = join ',', sort @words;
(my $vowels = $joined) =~ s/[^aeiou]//g;
print scalar(keys %h), " ", length($joined), " ", length($vowels), "\n@top\n";
PL
}
run_perl() { (cd "$1" && perl work.pl); }

setup_git() {
	local d="$1/files" i
	mkdir -p "$d"
	for i in $(seq 1 300); do
		seq "$i" $((i * 40)) >"$d/file$i.txt"
	done
}
run_git() {
	(
		cd "$1" && rm -rf repo && mkdir repo && cp -r files repo/ && cd repo
		export GIT_AUTHOR_NAME=kmm GIT_AUTHOR_EMAIL=kmm@example.org GIT_COMMITTER_NAME=kmm
		export GIT_COMMITTER_EMAIL=kmm@example.org GIT_AUTHOR_DATE='2026-01-01T00:00:00Z'
		export GIT_COMMITTER_DATE='2026-01-01T00:00:00Z' GIT_CONFIG_NOSYSTEM=1 HOME="$1"
		git init -q -b main . && git add . && git commit -q -m first
		sed -i 's/7/seven/g' files/*.txt && git commit -qam second
		git log --stat --format='%H %s' | tail -n 5
		git diff --stat HEAD~1 | tail -n 1
		git gc -q && git count-objects -v | grep -E '^(count|in-pack)'
	)
}

setup_make() {
	local d="$1/proj" i
	mkdir -p "$d"
	for i in $(seq 1 120); do
		printf 'int part%d(int x) { int s = 0; for (int i = 0; i < x %% %d + 3; i++) s += i * %d; return s; }\n' \
			"$i" "$i" "$i" >"$d/part$i.c"
	done
	{
		printf '#include <stdio.h>\n'
		for i in $(seq 1 120); do printf 'int part%d(int);\n' "$i"; done
		printf 'int main(void) { long t = 0;\n'
		for i in $(seq 1 120); do printf '  t += part%d(%d);\n' "$i" "$i"; done
		printf '  printf("%%ld\\n", t); return 0; }\n'
	} >"$d/main.c"
	cat >"$d/Makefile" <<'MK'
SRCS := $(wildcard *.c)
OBJS := $(SRCS:.c=.o)
prog: $(OBJS)
	$(CC) -o $@ $(OBJS)
%.o: %.c
	$(CC) -O1 -c $< -o $@
MK
}
run_make() { (cd "$1/proj" && make -s clean-objs >/dev/null 2>&1; rm -f ./*.o prog && make -s -j2 && ./prog); }
