#!/usr/bin/env python3
"""compare.py - runs kmm's benchmarks under every allocator and reports.

tools/kmm bench calls this after building; docs/benchmarks.md describes the
workloads, the method and every file it writes. In short:

- bench/workloads (plain malloc) runs once per workload, allocator and
  repetition, each time in a fresh process with the allocator in LD_PRELOAD
  (none for glibc). The order of the allocators rotates from one run to the
  next so that drift on a noisy machine hits all of them alike.
- Each run's JSON context names the library that served malloc; a run whose
  library is not the one asked for stops the comparison.
- Medians over the repetitions go into a table (throughput, peak RSS and
  RSS after free, each with its ratio to the best allocator, and a geometric
  mean row), a JSON file and gnuplot plots in the results folder.
- bench/layers (kmm's own API, kmm only) runs once and gets its own table.
- bench/counters (one counter under a spinlock, an atomic add, this_cpu_inc
  and a percpu_counter, 1 to 4x the CPUs) gets a table and a plot.
- The default mode ends with bench/instructions.sh: instructions per
  allocation+free pair for every allocator, counted by callgrind.
"""
import argparse
import datetime
import json
import math
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys

LIBRARIES = {
    "jemalloc": "libjemalloc.so.2",
    "mimalloc": "libmimalloc.so.2",
    "tcmalloc": "libtcmalloc_minimal.so.4",
}

# Workloads of the default comparison, in table order.
MAIN_WORKLOADS = [
    "fastpath/size:16", "fastpath/size:64", "fastpath/size:256",
    "fastpath/size:1024", "fastpath/size:4096", "working_set",
    "producer_consumer/real_time/threads:2", "larson/real_time/threads:{cpus}",
    "false_sharing/real_time/threads:{cpus}", "realloc_growth",
    "large/size:262144", "large/size:1048576", "large/size:2097152",
    "large/size:8388608",
    "large_mixed", "large_threads/size:24576/real_time/threads:{cpus}",
    "large_threads/size:65536/real_time/threads:{cpus}",
]
# The thread-scaling study: every thread count the binary registers.
SCALING_FAMILIES = ["scaling", "larson", "producer_consumer", "false_sharing"]
QUICK_WORKLOADS = [
    "fastpath/size:64", "working_set", "producer_consumer/real_time/threads:2",
    "larson/real_time/threads:2", "realloc_growth", "large/size:1048576",
]


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def find_library(soname):
    """The path of an installed shared library, from the loader's cache."""
    try:
        out = subprocess.run(["/sbin/ldconfig", "-p"], capture_output=True, text=True).stdout
    except OSError:
        return None
    for line in out.splitlines():
        parts = line.strip().split(" => ")
        if len(parts) == 2 and parts[0].split()[0] == soname and os.path.exists(parts[1]):
            return parts[1]
    return None


def allocators(build, wanted):
    found = {"glibc": None, "kmm": os.path.abspath(os.path.join(build, "libkmm.so"))}
    for name, soname in LIBRARIES.items():
        path = find_library(soname)
        if path:
            found[name] = path
        elif name == "jemalloc":
            sys.exit("compare.py: jemalloc (libjemalloc2) is the baseline and is not installed")
    if wanted:
        unknown = set(wanted) - set(found)
        if unknown:
            sys.exit(f"compare.py: not installed or unknown: {', '.join(sorted(unknown))}")
        found = {k: v for k, v in found.items() if k in wanted}
    return found


def expected_malloc(lib):
    """A substring of the path the run's 'malloc' context must contain."""
    return os.path.basename(lib) if lib else "libc.so"


def run_once(binary, name, alloc, lib, min_time):
    env = dict(os.environ)
    env.pop("LD_PRELOAD", None)
    if lib:
        env["LD_PRELOAD"] = lib
    cmd = [binary, f"--benchmark_filter=^{re.escape(name)}$",
           "--benchmark_format=json", f"--benchmark_min_time={min_time}"]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"compare.py: {alloc}: {name} failed (exit {proc.returncode}):\n{proc.stderr}")
    data = json.loads(proc.stdout)
    served_by = data["context"].get("malloc", "")
    if expected_malloc(lib) not in served_by:
        sys.exit(f"compare.py: {alloc}: malloc was served by '{served_by}', not {lib or 'glibc'}")
    runs = [b for b in data["benchmarks"] if b["name"] == name]
    if len(runs) != 1 or runs[0].get("error_occurred"):
        sys.exit(f"compare.py: {alloc}: {name}: {runs[0].get('error_message') if runs else 'no result'}")
    b = runs[0]
    return {"ops": b["items_per_second"], "peak_rss": b["peak_rss"], "rss": b["rss"]}


def list_workloads(binary):
    out = subprocess.run([binary, "--benchmark_list_tests"], capture_output=True,
                         text=True, check=True).stdout
    return out.split()


def select(mode, available, cpus):
    if mode == "quick":
        wanted = QUICK_WORKLOADS
    elif mode == "contention":
        wanted = [n for n in available if n.split("/")[0] in SCALING_FAMILIES]
    else:
        wanted = [w.format(cpus=cpus) for w in MAIN_WORKLOADS]
        wanted += [n for n in available if n.split("/")[0] == "scaling"]
    missing = [w for w in wanted if w not in available]
    if missing:
        sys.exit(f"compare.py: workloads not in the binary: {missing}")
    return wanted


def measure(binary, workloads, allocs, reps, min_time):
    """{workload: {allocator: [run, ...]}}, allocators interleaved run by run."""
    names = list(allocs)
    raw = {w: {a: [] for a in names} for w in workloads}
    total = len(workloads) * len(names) * reps
    done = 0
    for rep in range(reps):
        for i, w in enumerate(workloads):
            shift = (rep + i) % len(names)
            for a in names[shift:] + names[:shift]:
                raw[w][a].append(run_once(binary, w, a, allocs[a], min_time))
                done += 1
            log(f"  [{done}/{total}] {w}")
    return raw


def medians(raw):
    return {w: {a: {k: statistics.median(r[k] for r in runs) for k in runs[0]}
                for a, runs in per.items()} for w, per in raw.items()}


def short_name(workload):
    return workload.replace("/real_time", "").replace("threads:", "t").replace("size:", "")


def mib(x):
    return x / (1 << 20)


def mops(x):
    """Million operations per second, three significant digits at any scale."""
    return f"{x / 1e6:.3g}"


def table(med, allocs, key, higher_better, fmt, title):
    """Markdown: value (ratio to the best) per allocator, then the geomean ratio."""
    names = list(allocs)
    lines = [f"### {title}", "",
             "| workload | " + " | ".join(names) + " |",
             "|---" * (len(names) + 1) + "|"]
    logs = {a: [] for a in names}
    for w, per in med.items():
        values = {a: per[a][key] for a in names}
        best = max(values.values()) if higher_better else min(values.values())
        cells = []
        for a in names:
            ratio = values[a] / best if higher_better else best / values[a]
            logs[a].append(math.log(ratio))
            mark = "**" if values[a] == best else ""
            cells.append(f"{mark}{fmt(values[a])}{mark} ({ratio:.2f})")
        lines.append(f"| {short_name(w)} | " + " | ".join(cells) + " |")
    geo = [f"{math.exp(sum(v) / len(v)):.2f}" for v in logs.values()]
    lines.append("| **geomean of ratios** | " + " | ".join(geo) + " |")
    return "\n".join(lines) + "\n"


def report_tables(med, allocs):
    return "\n".join([
        table(med, allocs, "ops", True, mops,
              "Throughput, million operations per second (ratio to the best; higher is better)"),
        table(med, allocs, "peak_rss", False, lambda v: f"{mib(v):.1f}",
              "Peak RSS of the process, MiB (ratio to the best; lower is better)"),
        table(med, allocs, "rss", False, lambda v: f"{mib(v):.1f}",
              "RSS after everything is freed, MiB (ratio to the best; lower is better)"),
    ])


def run_layers(binary, min_time):
    out = subprocess.run([binary, "--benchmark_format=json", f"--benchmark_min_time={min_time}"],
                         capture_output=True, text=True, check=True).stdout
    rows = []
    for b in json.loads(out)["benchmarks"]:
        if b.get("error_occurred"):
            sys.exit(f"compare.py: layers: {b['name']}: {b.get('error_message')}")
        rows.append({"name": b["name"], "ns_per_op": 1e9 / b["items_per_second"],
                     "ops": b["items_per_second"]})
    return rows


def layers_table(rows):
    lines = ["### kmm's kernel API, layer by layer", "",
             "| benchmark | ns per operation | million operations/s |", "|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['name']} | {r['ns_per_op']:.4g} | {mops(r['ops'])} |")
    return "\n".join(lines) + "\n"


def run_counters(binary, reps, min_time):
    """{method: {threads: median increments per second}} over reps processes."""
    samples = {}
    for _ in range(reps):
        out = subprocess.run([binary, "--benchmark_format=json",
                              f"--benchmark_min_time={min_time}"],
                             capture_output=True, text=True, check=True).stdout
        for b in json.loads(out)["benchmarks"]:
            if b.get("error_occurred"):
                sys.exit(f"compare.py: counters: {b['name']}: {b.get('error_message')}")
            method = b["name"].split("/")[1]
            samples.setdefault(method, {}).setdefault(b["threads"], []).append(
                b["items_per_second"])
    return {m: {t: statistics.median(v) for t, v in per.items()} for m, per in samples.items()}


def counters_table(counters):
    methods = list(counters)
    threads = sorted(next(iter(counters.values())))
    lines = ["### One counter, many threads: million increments per second", "",
             "| threads | " + " | ".join(methods) + " |", "|---" * (len(methods) + 1) + "|"]
    for t in threads:
        lines.append(f"| {t} | " + " | ".join(mops(counters[m][t]) for m in methods) + " |")
    return "\n".join(lines) + "\n"


def counters_plot(counters, out):
    methods = list(counters)
    threads = sorted(next(iter(counters.values())))
    with open(os.path.join(out, "counters.dat"), "w") as f:
        f.write("# threads " + " ".join(methods) + "\n")
        for t in threads:
            f.write(f"{t} " + " ".join(f"{counters[m][t] / 1e6:.4f}" for m in methods) + "\n")
    return gnuplot(out, "counters", "700,450", f"""
set title "One counter incremented by many threads"
set ylabel "million increments per second"
set xlabel "threads"
set logscale x 2
set grid
set key top left
{lines("counters.dat", methods)}
""")


def lines(dat, names):
    """A gnuplot plot command: column 1 against each named column, as lines."""
    return "plot " + " , ".join(f"'{dat}' using 1:{i + 2} with linespoints title '{n}'"
                                for i, n in enumerate(names))


def run_instructions(build, sizes=(16, 64, 256, 1024)):
    """bench/instructions.sh's rows: {(allocator, pair): {size: instructions}}."""
    if not shutil.which("valgrind"):
        log("compare.py: valgrind is not installed; no instruction counts")
        return {}
    script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "instructions.sh")
    out = subprocess.run([script, build] + [str(n) for n in sizes], capture_output=True,
                         text=True, check=True).stdout
    rows = {}
    for line in out.splitlines()[1:]:
        alloc, pair, size, instr = line.split()
        rows.setdefault(f"{alloc} {pair}", {})[int(size)] = float(instr)
    return rows


def instructions_table(rows):
    sizes = sorted({n for per in rows.values() for n in per})
    lines = ["### Instructions per allocation+free pair (callgrind; kmm's per-thread path)", "",
             "| allocator, pair | " + " | ".join(f"{n} B" for n in sizes) + " |",
             "|---" * (len(sizes) + 1) + "|"]
    for name, per in rows.items():
        lines.append(f"| {name} | " + " | ".join(f"{per.get(n, 0):g}" for n in sizes) + " |")
    return "\n".join(lines) + "\n"


def gnuplot(out, stem, size, body):
    """Renders body to stem.png and stem.svg in out; False without gnuplot."""
    if not shutil.which("gnuplot"):
        log("compare.py: gnuplot is not installed; no plots")
        return False
    script = "".join(f"reset\nset terminal {term} size {size} noenhanced\n"
                     f"set output '{stem}.{ext}'\n{body}\n"
                     for term, ext in (("pngcairo", "png"), ("svg", "svg")))
    subprocess.run(["gnuplot"], input=script, text=True, cwd=out, check=True)
    return True


def bar_plot(med, allocs, key, higher_better, out, stem, title, ylabel):
    names = list(allocs)
    with open(os.path.join(out, f"{stem}.dat"), "w") as f:
        f.write("# workload " + " ".join(names) + "\n")
        for w, per in med.items():
            values = [per[a][key] for a in names]
            best = max(values) if higher_better else min(values)
            ratios = [v / best if higher_better else best / v for v in values]
            f.write(short_name(w).replace(" ", "_") + " " +
                    " ".join(f"{r:.4f}" for r in ratios) + "\n")
    cols = " , ".join(f"'{stem}.dat' using {i + 2}:xtic(1) title '{n}'"
                      for i, n in enumerate(names))
    return gnuplot(out, stem, "1400,600", f"""
set title "{title}"
set ylabel "{ylabel}"
set style data histogram
set style histogram clustered gap 1
set style fill solid 0.9 border -1
set yrange [0:1.05]
set key outside right
set xtics rotate by -40
set grid ytics
plot {cols}
""")


def scaling_plot(med, allocs, out):
    families = sorted({w.split("/")[0] for w in med if "threads:" in w})
    names = list(allocs)
    present = []
    for fam in families:
        rows = sorted((int(w.rsplit(":", 1)[1]), w) for w in med if w.split("/")[0] == fam)
        if len(rows) < 2:
            continue
        present.append(fam)
        with open(os.path.join(out, f"scaling-{fam}.dat"), "w") as f:
            f.write("# threads " + " ".join(names) + "\n")
            for threads, w in rows:
                f.write(f"{threads} " + " ".join(f"{med[w][a]['ops'] / 1e6:.4f}"
                                                  for a in names) + "\n")
    if not present:
        return False
    panels = "".join(f"set title '{fam}'\n{lines(f'scaling-{fam}.dat', names)}\n"
                     for fam in present)
    return gnuplot(out, "scaling", f"{450 * len(present)},450", f"""
set multiplot layout 1,{len(present)} title "Thread scaling: million operations per second"
set logscale x 2
set xlabel "threads"
set grid
set key top left
{panels}unset multiplot
""")


def machine():
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith(("model name", "Model")):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {"date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "cpu": cpu, "cpus": os.cpu_count(), "arch": platform.machine(),
            "kernel": platform.release(), "libc": " ".join(platform.libc_ver())}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--mode", choices=["default", "quick", "contention"], default="default")
    ap.add_argument("--reps", type=int)
    ap.add_argument("--min-time", type=float)
    ap.add_argument("--allocators", help="comma-separated subset, e.g. glibc,jemalloc,kmm")
    args = ap.parse_args()

    quick = args.mode == "quick"
    reps = args.reps or (1 if quick else 5)
    min_time = args.min_time or (0.01 if quick else 0.1)
    workloads_bin = os.path.join(args.build, "bench", "workloads")
    layers_bin = os.path.join(args.build, "bench", "layers")
    counters_bin = os.path.join(args.build, "bench", "counters")
    for b in (workloads_bin, layers_bin, counters_bin):
        if not os.access(b, os.X_OK):
            sys.exit(f"compare.py: {b} is not built (needs g++ and libbenchmark-dev)")
    allocs = allocators(args.build, args.allocators.split(",") if args.allocators else None)
    os.makedirs(args.out, exist_ok=True)
    info = machine()
    info.update(mode=args.mode, reps=reps, min_time=min_time, allocators=allocs)

    workloads = select(args.mode, list_workloads(workloads_bin), info["cpus"])
    log(f"== {len(workloads)} workloads x {len(allocs)} allocators x {reps} runs "
        f"({', '.join(allocs)})")
    raw = measure(workloads_bin, workloads, allocs, reps, min_time)
    med = medians(raw)

    header = (f"{info['date']}, {info['cpu']}, {info['cpus']} CPUs, {info['arch']}, "
              f"Linux {info['kernel']}, {info['libc']}; median of {reps} runs, "
              f"--benchmark_min_time={min_time}\n\n")
    text = header
    if args.mode != "contention":
        text += report_tables(med, allocs)
    else:
        text += table(med, allocs, "ops", True, mops,
                      "Thread scaling, million operations per second (ratio to the best)")
    layers = []
    if args.mode != "contention":
        layers = run_layers(layers_bin, min_time)
        text += "\n" + layers_table(layers)
    log("== per-CPU counters")
    counters = run_counters(counters_bin, reps, min_time)
    text += "\n" + counters_table(counters)
    instructions = {}
    if args.mode == "default":
        log("== instructions per pair (callgrind)")
        instructions = run_instructions(args.build)
        if instructions:
            text += "\n" + instructions_table(instructions)

    plots = []
    if args.mode != "contention":
        if bar_plot(med, allocs, "ops", True, args.out, "throughput",
                    "Throughput relative to the fastest allocator (higher is better)",
                    "ratio to best"):
            plots.append("throughput")
        if bar_plot(med, allocs, "peak_rss", False, args.out, "memory",
                    "Peak RSS relative to the leanest allocator (higher is better)",
                    "best / this"):
            plots.append("memory")
    if scaling_plot(med, allocs, args.out):
        plots.append("scaling")
    if counters_plot(counters, args.out):
        plots.append("counters")

    with open(os.path.join(args.out, "table.md"), "w") as f:
        f.write(text)
    with open(os.path.join(args.out, "results.json"), "w") as f:
        json.dump({"machine": info, "medians": med, "runs": raw, "layers": layers,
                   "counters": counters,
                   "instructions": instructions}, f, indent=1)
    print(text)
    print(f"results: {args.out}/ (table.md, results.json"
          + "".join(f", {p}.png, {p}.svg" for p in plots) + ")")


if __name__ == "__main__":
    main()
