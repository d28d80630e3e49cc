#!/usr/bin/env python3
"""One-input latency of ``lstmtext predict``, process start to output, per runtime.

Usage::

    python benchmarks/latency.py [--repeats 7] [--lm models/lm-ptb] [--ner models/ner-conll03]
        [--mt runs/mt-multi30k] [--runtimes lite numpy] [--append-results]

For each model and runtime it starts ``cli.py predict MODEL TEXT --runtime R``
as its own process ``--repeats`` times, interleaving the runtimes (a busy
moment then hits both), and reports the median wall time from process start
until the process has written its answer and exited, and the median peak
resident memory (``ru_maxrss`` of the child). Targets (issue 5): language model
<= 0.5 s and <= 150 MB; one tagged sentence <= 0.7 s; one translated sentence
with beam 5 <= 1.0 s. The machine's load average is printed beside the
figures because the machine is shared. ``--append-results`` appends a section
to benchmarks/RESULTS.md.

The children run as on a user's machine: Python may write its bytecode cache
(``PYTHONDONTWRITEBYTECODE`` is dropped from their environment; this sandbox
sets it, which made every start compile lstmtext from source, about 0.25 s),
and one untimed run per model and runtime comes first.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
INPUTS = {"lm": "the company said", "ner": "Angela Merkel visited Paris on Monday .",
          "mt": "A man in a blue shirt is riding a bike down the street ."}


def cpu_reference() -> float:
    """Seconds for a fixed pure-Python loop (10 million additions): how fast the shared CPU is right now."""
    t0 = time.perf_counter()
    total = 0
    for i in range(10_000_000):
        total += i
    return time.perf_counter() - t0


def run_once(model: Path, text: str, runtime: str, extra: list[str]) -> tuple[float, float, str]:
    """Wall seconds, peak RSS (MB) and stdout of one predict process."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, str(ROOT / "cli.py"), "predict", str(model), text,
                             "--runtime", runtime, *extra], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=env, cwd=ROOT)
    out = proc.stdout.read().decode()
    err = proc.stderr.read().decode()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"{model} --runtime {runtime}: {err.strip()}")
    return wall, usage.ru_maxrss / 1024, out.strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--lm", type=Path, default=ROOT / "models" / "lm-ptb")
    parser.add_argument("--ner", type=Path, default=ROOT / "models" / "ner-conll03")
    parser.add_argument("--mt", type=Path, default=ROOT / "models" / "mt-multi30k-en-de")
    parser.add_argument("--runtimes", nargs="+", default=["lite", "numpy"])
    parser.add_argument("--append-results", action="store_true")
    args = parser.parse_args()
    models = {"lm": (args.lm, []), "ner": (args.ner, ["--format", "text"]), "mt": (args.mt, ["--beam", "5"])}
    rows = []
    load = os.getloadavg()[0]
    reference = [cpu_reference()]
    for task, (model, extra) in models.items():
        if not (model / "config.json").is_file() and not (model / "model-best" / "config.json").is_file():
            print(f"{task}: {model} not found, skipped")
            continue
        times: dict[str, list] = {r: [] for r in args.runtimes}
        mem: dict[str, list] = {r: [] for r in args.runtimes}
        answers = {}
        for runtime in args.runtimes:  # warm-up: bytecode cache, file cache
            run_once(model, INPUTS[task], runtime, extra)
        for _ in range(args.repeats):
            for runtime in args.runtimes:
                wall, rss, out = run_once(model, INPUTS[task], runtime, extra)
                times[runtime].append(wall)
                mem[runtime].append(rss)
                answers[runtime] = out
        for runtime in args.runtimes:
            rows.append((task, str(model.relative_to(ROOT) if model.is_relative_to(ROOT) else model), runtime,
                         statistics.median(times[runtime]), min(times[runtime]), max(times[runtime]),
                         statistics.median(mem[runtime]), answers[runtime].splitlines()[0][:70]))
    load = (load + os.getloadavg()[0]) / 2
    reference.append(cpu_reference())
    ref = f"CPU reference (10M-addition Python loop, before/after): {reference[0]:.2f} / {reference[1]:.2f} s"
    header = (f"{'task':4} {'model':22} {'runtime':8} {'median s':>8} {'min':>6} {'max':>6} {'peak MB':>8}  "
              "answer")
    lines = [header] + [f"{t:4} {m:22} {r:8} {med:8.3f} {lo:6.3f} {hi:6.3f} {rss:8.0f}  {a}"
                        for t, m, r, med, lo, hi, rss, a in rows]
    print("\n".join(lines))
    print(f"load average (1 min, mean of start and end): {load:.2f}")
    print(ref)
    if args.append_results:
        cpu = platform.processor() or platform.machine()
        section = [f"\n## One-input latency, process start to output ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())})\n",
                   f"- machine: {os.cpu_count()} cores, {cpu}; load average {load:.2f}; {ref}",
                   f"- command: `python benchmarks/latency.py --repeats {args.repeats} --runtimes "
                   f"{' '.join(args.runtimes)}`", "",
                   "| task | model | runtime | median s | min | max | peak MB |", "|---|---|---|---|---|---|---|"]
        section += [f"| {t} | {m} | {r} | {med:.3f} | {lo:.3f} | {hi:.3f} | {rss:.0f} |"
                    for t, m, r, med, lo, hi, rss, _ in rows]
        with open(ROOT / "benchmarks" / "RESULTS.md", "a", encoding="utf-8") as fh:
            fh.write("\n".join(section) + "\n")


if __name__ == "__main__":
    main()
