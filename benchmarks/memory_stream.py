#!/usr/bin/env python3
"""Peak resident memory of ``predict`` and ``evaluate`` on 100,000 vs 1,000,000 input lines.

Usage::

    python benchmarks/memory_stream.py [--model BUNDLE] [--lines 100000 1000000]
        [--commands predict evaluate] [--append-results]

Streaming commands should need the same memory whatever the input length: the
target is a peak RSS on the large input within 10% of that on the small one.
Each command runs as its own process (``cli.py``, as a user runs it); its peak
RSS is the kernel's ``ru_maxrss`` for that process, read with ``os.wait4``.
Without ``--model`` a tiny word-level language model is trained first (the
figure measures the streaming, not the model). Inputs are generated sentences
written for this benchmark. ``--append-results`` appends a section with the
exact commands and the measured figures to benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CLI = [sys.executable, str(ROOT / "cli.py")]
WORDS = ("the a my our cat dog bird friend teacher neighbour man sees likes follows feeds watches calls "
         "ball house car garden river market today again in park every morning").split()


def write_lines(path: Path, n: int, seed: int = 0) -> None:
    """``n`` generated sentences of 3 to 9 words."""
    rng = random.Random(seed)
    with open(path, "w", encoding="utf-8") as fh:
        for _ in range(n):
            fh.write(" ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 9))) + "\n")


def run(args: list[str]) -> tuple[float, float, int]:
    """Run a command; return (peak RSS in MB, seconds, exit code)."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    t0 = time.perf_counter()
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, cwd=ROOT)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - t0
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        sys.stderr.write(proc.stderr.read().decode(errors="replace"))
    proc.returncode = code
    return usage.ru_maxrss / 1024, seconds, code


def train_tiny(directory: Path) -> Path:
    data = directory / "train.txt"
    write_lines(data, 2000, seed=1)
    out = directory / "lm"
    sets = ["tokenizer=word", "vocab_size=0", "embedding_dim=32", "hidden_size=32", "num_layers=1",
            "batch_size=8", "bptt=16", "jit_compile=false"]
    args = CLI + ["train", "lm", "--train", str(data), "--valid", str(data), "--output", str(out),
                  "--epochs", "1", "--quiet"] + [a for s in sets for a in ("--set", s)]
    _, _, code = run(args)
    if code:
        raise SystemExit("training the tiny model failed")
    return out / "model-best"


def command(name: str, model: Path, data: Path) -> list[str]:
    if name == "predict":
        return CLI + ["predict", str(model), "--input", str(data), "--output", os.devnull, "--top-k", "1"]
    return CLI + ["evaluate", str(model), str(data), "--json"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, help="bundle to run (default: train a tiny LM)")
    parser.add_argument("--lines", type=int, nargs=2, default=[100_000, 1_000_000])
    parser.add_argument("--commands", nargs="+", default=["predict", "evaluate"])
    parser.add_argument("--append-results", action="store_true")
    opts = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="memory-stream-") as tmp:
        tmp_path = Path(tmp)
        model = opts.model or train_tiny(tmp_path)
        inputs = {}
        for n in opts.lines:
            inputs[n] = tmp_path / f"in-{n}.txt"
            write_lines(inputs[n], n, seed=2)
        rows = []
        for name in opts.commands:
            measured = {}
            for n in opts.lines:
                rss, seconds, code = run(command(name, model, inputs[n]))
                measured[n] = rss
                print(f"{name:9s} {n:>9,d} lines: peak RSS {rss:8.1f} MB, {seconds:7.1f} s, exit {code}",
                      flush=True)
                rows.append((name, n, rss, seconds, code))
            small, large = measured[opts.lines[0]], measured[opts.lines[1]]
            growth = (large - small) / small * 100
            verdict = "within 10%" if growth <= 10 else "OVER the 10% target"
            print(f"{name}: {opts.lines[1]:,d} vs {opts.lines[0]:,d} lines: {growth:+.1f}% ({verdict})", flush=True)
            rows.append((name, "growth", growth, verdict, None))

    if opts.append_results:
        cmdline = "python benchmarks/memory_stream.py " + " ".join(sys.argv[1:])
        lines = ["", "## Streaming memory: predict and evaluate (issue 6)", "",
                 f"{time.strftime('%Y-%m-%d %H:%M')} on {platform.machine()} "
                 f"({os.cpu_count()} CPUs, shared), model: {'tiny 1x32 word LM trained by the script' if not opts.model else opts.model}.",
                 f"Command: `{cmdline.replace(' --append-results', '').strip()}`; each row is one `cli.py` process, "
                 "peak RSS from `os.wait4`.", "",
                 "| command | input lines | peak RSS (MB) | seconds | exit |", "|---|---:|---:|---:|---:|"]
        for name, n, rss, seconds, code in rows:
            if n == "growth":
                lines.append(f"| {name} | growth 1M vs 100k | {rss:+.1f}% | {seconds} | |")
            else:
                lines.append(f"| {name} | {n:,d} | {rss:.1f} | {seconds:.1f} | {code} |")
        with open(ROOT / "benchmarks" / "RESULTS.md", "a", encoding="utf-8") as fh:
            fh.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
