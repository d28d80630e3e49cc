#!/usr/bin/env python3
"""Tune a language model's continuous cache on one half of a file, score it on the other.

Usage::

    python benchmarks/lm_cache.py models/lm-ptb ../shared/data/ptb/ptb.valid.txt [--append-results]

``lstmtext evaluate`` scores a file as ``eval_batch_size`` streams side by
side, each a contiguous stretch of it. This script runs the bundle once over
the file on the NumPy runtime and keeps, per position, the top layer's output
and the model's log-probability of the word that came next. The cache
(:mod:`lstmtext.lm.cache`) is then scored from those arrays for every window,
theta and lambda of a grid, on the first half of the streams (the first half
of the file); the best setting is scored on the second half, which took no
part in choosing it, and on the whole file, where it must equal ``cli.py
evaluate MODEL FILE --cache-window W --cache-theta T --cache-lambda L``
(checked at the end).

Perplexities here are per token (words and ends of line), as ``evaluate``
reports them for word-level bundles.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

WINDOWS = (100, 200, 500, 1000, 2000)
THETAS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.7)
LAMBDAS = (0.05, 0.08, 0.1, 0.12, 0.15, 0.2)


def collect(model_dir: Path, data: Path):
    """``(hidden (R, T, d), targets (R, T), log_probs (R, T), mask (R, T))`` over the file's streams."""
    from lstmtext import bundle as bundle_io
    from lstmtext.lm import data as lm_data
    from lstmtext.lm.api import load_config, load_step_model

    b = bundle_io.read(model_dir)
    rows = load_config(b).eval_batch_size
    model, tokenizer = load_step_model(b, "numpy", forward_only=False)
    streams = list(lm_data.iter_streams(data, tokenizer))
    if len(streams) != 1:
        sys.exit(f"{data}: {len(streams)} chunks; this script scores files of one chunk (50,000 lines)")
    x, y, mask = lm_data.batchify(streams[0].ids, rows, pad=True)
    state, hs, lps = model.initial_state(rows), [], []
    for t in range(x.shape[1]):
        log_probs, state = model.step(x[:, t], state)
        lps.append(log_probs[np.arange(rows), y[:, t]])
        hs.append(np.asarray(state[-1][0], np.float32))
    return np.stack(hs, 1), y, np.stack(lps, 1).astype(np.float64), mask


def cache_probs(h, y, lp, mask, window: int, theta: float) -> np.ndarray:
    """``p_cache`` at every position (``lam=1``); the first position of each row has none (the model's)."""
    from lstmtext.lm.cache import CacheSettings, ContinuousCache

    cache = ContinuousCache(h.shape[0], CacheSettings(window=window, theta=theta, lam=1.0))
    return np.concatenate([np.exp(cache.log_probs(h[:, t:t + 256], y[:, t:t + 256], lp[:, t:t + 256],
                                                  mask[:, t:t + 256])) for t in range(0, h.shape[1], 256)], axis=1)


def perplexity(lp, mask, pc, lam: float, rows: slice) -> float:
    p = np.exp(lp[rows])
    mixed = (1 - lam) * p + lam * pc[rows]
    mixed[:, 0] = p[:, 0]  # an empty cache: the model alone
    m = mask[rows] > 0
    return math.exp(-np.log(mixed[m]).mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("model", type=Path)
    parser.add_argument("data", type=Path)
    parser.add_argument("--append-results", action="store_true")
    args = parser.parse_args()

    t0 = time.perf_counter()
    h, y, lp, mask = collect(args.model, args.data)
    seconds_collect = time.perf_counter() - t0
    rows = h.shape[0]
    tune, held, whole = slice(0, rows // 2), slice(rows // 2, rows), slice(0, rows)
    base = {name: math.exp(-lp[s][mask[s] > 0].mean()) for name, s in
            (("tune", tune), ("held", held), ("whole", whole))}
    print(f"collected {int(mask.sum())} positions in {seconds_collect:.1f} s; no cache: tune {base['tune']:.2f} "
          f"held-out {base['held']:.2f} whole {base['whole']:.2f}")
    grid = []
    for window, theta in itertools.product(WINDOWS, THETAS):
        pc = cache_probs(h[tune], y[tune], lp[tune], mask[tune], window, theta)
        for lam in LAMBDAS:
            grid.append((perplexity(lp[tune], mask[tune], pc, lam, slice(None)), window, theta, lam))
        best_here = min(g for g in grid if g[1:3] == (window, theta))
        print(f"  window {window:5d} theta {theta:.2f}: best lambda {best_here[3]:.2f} -> tune {best_here[0]:.2f}")
    tuned, window, theta, lam = min(grid)
    pc = cache_probs(h, y, lp, mask, window, theta)
    held_ppl = perplexity(lp, mask, pc, lam, held)
    whole_ppl = perplexity(lp, mask, pc, lam, whole)
    print(f"chosen on the first half: window {window} theta {theta} lambda {lam}")
    print(f"  tune half {base['tune']:.2f} -> {tuned:.2f}; held-out half {base['held']:.2f} -> {held_ppl:.2f}; "
          f"whole file {base['whole']:.2f} -> {whole_ppl:.2f}")

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
    if abs(cli_ppl - whole_ppl) > 1e-3 * whole_ppl:
        sys.exit(f"cli.py evaluate gave {cli_ppl:.3f}, this script {whole_ppl:.3f}: they must agree")

    if args.append_results:
        top = sorted(grid)[:5]
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
            f"| first half (tuning) | {base['tune']:.2f} | {tuned:.2f} |",
            f"| second half (held out) | {base['held']:.2f} | {held_ppl:.2f} |",
            f"| whole file | {base['whole']:.2f} | {whole_ppl:.2f} |",
            "",
            f"Chosen: window {window}, theta {theta}, lambda {lam}. `cli.py evaluate {args.model} {args.data} "
            f"--cache-window {window} --cache-theta {theta} --cache-lambda {lam}` gives {cli_ppl:.3f} "
            f"({seconds_cli:.0f} s on the NumPy runtime; the cache needs the step runtimes). Next best on the tuning "
            "half: " + "; ".join(f"{w}/{t}/{la} {p:.2f}" for p, w, t, la in top[1:]) + ".",
        ]
        with open(ROOT / "benchmarks" / "RESULTS.md", "a", encoding="utf-8") as fh:
            fh.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
