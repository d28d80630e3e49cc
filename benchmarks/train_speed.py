#!/usr/bin/env python3
"""Training throughput of an LM recipe on this machine, and the time its full run needs.

Builds the recipe's network with the TensorFlow backend, trains ``--rounds``
rounds of ``--steps`` batches on PTB-sized ids, and reports the median
tokens/s and the projected wall time of all the recipe's epochs on the 929,589
PTB training tokens (validation passes excluded). Appends to RESULTS.md.

    python benchmarks/train_speed.py benchmarks/recipes/ptb-cpu90.toml [--rounds 5 --steps 30]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
PTB_TRAIN_TOKENS = 929_589
PTB_VOCAB = 10_002


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("recipe", type=Path)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--no-append", action="store_true")
    args = parser.parse_args()

    from lstmtext import config as config_io
    from lstmtext.backend import load_keras
    from lstmtext.lm.config import LMConfig
    from lstmtext.lm.network import build_lm, compile_lm

    keras = load_keras()
    cfg = config_io.resolve(LMConfig, args.recipe)
    model = build_lm(cfg, PTB_VOCAB, cfg.batch_size, cfg.bptt)
    compile_lm(model, cfg)
    rng = np.random.default_rng(0)
    shape = (cfg.batch_size, cfg.bptt)
    batches = [(rng.integers(4, PTB_VOCAB, shape).astype(np.int32),
                rng.integers(4, PTB_VOCAB, shape).astype(np.int32)) for _ in range(8)]
    for x, y in batches[:3]:
        model.train_on_batch(x, y)
    speeds = []
    for _ in range(args.rounds):
        t0 = time.perf_counter()
        for s in range(args.steps):
            model.train_on_batch(*batches[s % len(batches)])
        speeds.append(args.steps * cfg.batch_size * cfg.bptt / (time.perf_counter() - t0))
    tps = statistics.median(speeds)
    epoch_min = PTB_TRAIN_TOKENS / tps / 60
    load = os.getloadavg()[0]
    lines = [
        f"\n## lm: CPU training speed of {args.recipe.stem} ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())})\n",
        f"- command: `python benchmarks/train_speed.py {os.path.relpath(args.recipe, ROOT)} "
        f"--rounds {args.rounds} --steps {args.steps}`",
        f"- {os.cpu_count()} cores, keras {keras.__version__} (TensorFlow backend); load average at the end {load:.1f}",
        f"- median {tps:,.0f} tokens/s (rounds: {', '.join(f'{s:,.0f}' for s in speeds)})",
        f"- projected: {epoch_min:.1f} min per PTB epoch, {cfg.epochs * epoch_min:.0f} min for the recipe's "
        f"{cfg.epochs} epochs (validation passes excluded)",
    ]
    print("\n".join(lines))
    if not args.no_append:
        with open(ROOT / "benchmarks" / "RESULTS.md", "a", encoding="utf-8") as fh:
            fh.write("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
