#!/usr/bin/env python3
"""Throughput of ``python -m lstmtext.batch`` (Ray Data or Apache Beam) with 1 and 2 workers against ``predict``.

Usage::

    python benchmarks/batch_speed.py [--model models/ner-conll03]
        [--data ../shared/data/conll2003/train.txt] [--workers 1 2] [--engine ray|beam] [--append-results]

The default file (14,041 sentences) makes four chunks of predict's window
(4,096 sentences), so two workers share them. Each command runs as its own process on the same file, timed from process
start until its outputs are written (for the pipeline: starting a local Ray
instance, checking the bundle, planning, the workers' start and model load,
tagging, writing shards). tokens/s = token lines of the CoNLL file / wall
seconds. Peak memory: ``predict``'s process, and each pipeline worker's own
peak (its ``ru_maxrss``, reported in the run's summary). The shards,
concatenated in name order, are checked to equal ``predict``'s output.
Needs the ray extra (``pip install -e ".[ray]"``), or for ``--engine beam`` the beam extra
(``pip install -c constraints-beam.txt -e ".[beam]"``: the Beam pipeline on the DirectRunner's
``multi_processing`` workers, whose start is part of the wall time); run it on an idle machine.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def timed(cmd: list[str]) -> tuple[float, float, str]:
    """Wall seconds, peak memory (MB) of the children so far, and stdout (predict runs first: its own peak)."""
    import resource

    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    if proc.returncode:
        sys.exit(f"{' '.join(cmd)} failed:\n{proc.stderr}")
    return seconds, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, proc.stdout


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="models/ner-conll03")
    ap.add_argument("--data", default=str(ROOT.parent / "shared/data/conll2003/train.txt"))
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--runtime", default="auto")
    ap.add_argument("--engine", choices=["ray", "beam"], default="ray")
    ap.add_argument("--append-results", action="store_true")
    args = ap.parse_args()
    data = Path(args.data).resolve()
    tokens = sum(1 for line in data.read_text(encoding="utf-8").splitlines()
                 if line.split() and line.split()[0] != "-DOCSTART-")
    work = Path(tempfile.mkdtemp(prefix="batch-speed-"))
    load = os.getloadavg()[0]
    rows = []
    seconds, peak, _ = timed([sys.executable, "cli.py", "predict", args.model, "--input", str(data),
                              "--output", str(work / "predict.conll"), "--runtime", args.runtime])
    rows.append(("lstmtext predict", seconds, 0.0, f"{peak:.0f}"))
    expected = (work / "predict.conll").read_text(encoding="utf-8")
    for w in args.workers:
        prefix = work / f"w{w}" / "pred"
        seconds, _, out = timed([sys.executable, "-m", "lstmtext.batch", args.model, "--input", str(data),
                                 "--output", str(prefix), "--workers", str(w), "--json",
                                 "--runtime", args.runtime, "--engine", args.engine])
        summary = json.loads(out)
        got = "".join(Path(p).read_text(encoding="utf-8") for p in sorted(glob.glob(f"{prefix}-*.conll")))
        assert got == expected, "pipeline output differs from lstmtext predict"
        peaks = "/".join(f"{v:.0f}" for v in summary["worker_peak_rss_mb"].values())
        rows.append((f"batch --engine {args.engine}, {w} worker{'s' * (w > 1)}", seconds,
                     summary.get("ray_start_s", 0.0), peaks))
    base = rows[0][1]
    if args.engine == "ray":
        lines = ["| run | wall s | of it Ray start s | tokens/s | vs predict | tokens/s without Ray start | "
                 "peak MB per process |", "|---|---|---|---|---|---|---|"]
        for name, seconds, ray_start, peak in rows:
            lines.append(f"| {name} | {seconds:.1f} | {ray_start:.1f} | {tokens / seconds:,.0f} | "
                         f"{base / seconds:.2f}x | {tokens / (seconds - ray_start):,.0f} | {peak} |")
    else:  # the runner's and its workers' start are part of the wall time, not timed apart
        lines = ["| run | wall s | tokens/s | vs predict | peak MB per process |", "|---|---|---|---|---|"]
        for name, seconds, _, peak in rows:
            lines.append(f"| {name} | {seconds:.1f} | {tokens / seconds:,.0f} | {base / seconds:.2f}x | {peak} |")
    cmd = "python benchmarks/batch_speed.py " + " ".join(a for a in sys.argv[1:] if a != "--append-results")
    report = "\n".join([
        f"## ner: batch inference with {'Ray Data' if args.engine == 'ray' else 'Apache Beam (DirectRunner)'} "
        f"against predict ({datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC)",
        "",
        f"- {args.model} on {data.name} ({tokens:,} tokens, CoNLL in and out, runtime {args.runtime}), "
        f"load average {load:.1f} at start;"
        f" outputs identical; command: `{cmd.strip()}`",
        "",
        *lines,
        "",
    ])
    print(report)
    if args.append_results:
        with open(ROOT / "benchmarks" / "RESULTS.md", "a", encoding="utf-8") as fh:
            fh.write("\n" + report)


if __name__ == "__main__":
    main()
