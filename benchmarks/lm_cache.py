#!/usr/bin/env python3
"""Tune a language model's continuous cache on one half of a file, score it on the other.

Usage::

    python benchmarks/lm_cache.py models/lm-ptb ../shared/data/ptb/ptb.valid.txt [--append-results]

The search is ``lstmtext tune-cache MODEL FILE --dry-run`` (:func:`lstmtext.lm.api.tune_cache`):
``evaluate`` scores a file as ``eval_batch_size`` streams side by side, each a
contiguous stretch of it; the bundle runs once over the file on the NumPy
runtime, keeping every position's top-layer output and the model's
log-probability of the word that came next, and the cache
(:mod:`lstmtext.lm.cache`) is scored from those for every window, theta and
lambda of the grid on the first half of the streams (the first half of the
file). The best setting is scored on the second half, which took no part in
choosing it, and on the whole file, where it must equal ``cli.py evaluate
MODEL FILE --cache-window W --cache-theta T --cache-lambda L`` (checked
here). Nothing is written to the bundle.

Perplexities here are per token (words and ends of line), as ``evaluate``
reports them for word-level bundles.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> None:
    from lstmtext import bundle as bundle_io
    from lstmtext.lm.api import tune_cache
    from lstmtext.lm.cache import LAMBDAS, THETAS, WINDOWS

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("model", type=Path)
    parser.add_argument("data", type=Path)
    parser.add_argument("--append-results", action="store_true")
    args = parser.parse_args()

    report = tune_cache(bundle_io.read(args.model), [str(args.data)])
    best, rows = report["best"], report["rows"]
    window, theta, lam = best.window, best.theta, best.lam
    print(f"{report['tokens']} positions, {report['seconds']:.0f} s (one NumPy pass and the grid)")
    for name in ("tuning", "held_out", "whole"):
        print(f"  {name:9s} without {report[name]['without']:.2f}  with {report[name]['with']:.2f}")
    print(f"chosen on the first half: window {window} theta {theta} lambda {lam}"
          + ("" if report["helps"] else " (it does not help the held-out half)"))

    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    t0 = time.perf_counter()
    r = subprocess.run([sys.executable, str(ROOT / "cli.py"), "evaluate", str(args.model), str(args.data), "--json",
                        "--cache-window", str(window), "--cache-theta", str(theta), "--cache-lambda", str(lam)],
                       capture_output=True, text=True, env=env, cwd=ROOT)
    if r.returncode != 0:
        sys.exit(f"cli.py evaluate: {r.stderr.strip()}")
    cli_ppl = json.loads(r.stdout)["token_perplexity"]
    seconds_cli = time.perf_counter() - t0
    print(f"cli.py evaluate with these settings: perplexity {cli_ppl:.3f} ({seconds_cli:.0f} s)")
    whole_ppl = report["whole"]["with"]
    if abs(cli_ppl - whole_ppl) > 1e-3 * whole_ppl:
        sys.exit(f"cli.py evaluate gave {cli_ppl:.3f}, the tuner {whole_ppl:.3f}: they must agree")

    if args.append_results:
        top = report["grid"][:5]
        lines = [
            "",
            f"## Continuous cache for `{args.model}` ({time.strftime('%Y-%m-%d')})",
            "",
            f"`python benchmarks/lm_cache.py {args.model} {args.data} --append-results`: the network is unchanged;",
            f"window, theta and lambda chosen on the first half of `{args.data.name}` ({rows // 2} of the {rows} "
            f"evaluation streams), over windows {list(WINDOWS)}, thetas {list(THETAS)}, lambdas {list(LAMBDAS)}.",
            "",
            "| | no cache | with the cache |",
            "|---|---:|---:|",
            *(f"| {label} | {report[key]['without']:.2f} | {report[key]['with']:.2f} |" for key, label in
              (("tuning", "first half (tuning)"), ("held_out", "second half (held out)"), ("whole", "whole file"))),
            "",
            f"Chosen: window {window}, theta {theta}, lambda {lam} ({report['seconds']:.0f} s to tune). `cli.py "
            f"evaluate {args.model} {args.data} --cache-window {window} --cache-theta {theta} --cache-lambda {lam}` "
            f"gives {cli_ppl:.3f} ({seconds_cli:.0f} s on the NumPy runtime; the cache needs the step runtimes). "
            "Next best on the tuning half: " + "; ".join(f"{w}/{t}/{la} {p:.2f}" for p, w, t, la in top[1:]) + ".",
        ]
        with open(ROOT / "benchmarks" / "RESULTS.md", "a", encoding="utf-8") as fh:
            fh.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
