#!/usr/bin/env python3
"""Language-model training speed: the real ``lstmtext train lm`` loop against a plain PyTorch loop (issue 15).

Usage::

    python benchmarks/peer_lm_training.py [--peer-python /work/peervenv/bin/python] [--lines 2000]
        [--rounds 2] [--epochs 3] [--baseline /path/to/other/checkout] [--append]

Both train the shipped language model's recipe (benchmarks/recipes/ptb-medium-tied.toml:
embedding 600, 2 x LSTM 600 tied to the output, dropout 0.5 in three places,
SGD with clipping, batch 20, BPTT 35) on the first ``--lines`` lines of PTB
train, tokenised once by lstmtext's word tokenizer. lstmtext is
``cli.py train lm --config ptb-medium-tied.toml --epochs N`` as users run it
(its tokens/s per epoch from the bundle's history.json); PyTorch is
benchmarks/peers/torch_lm_worker.py in the peers' venv, on one thread and
on torch's default. The first epoch of each (graph compilation, allocator)
is left out; rounds alternate; medians of the remaining epochs' tokens/s and
the ratios lstmtext / PyTorch are printed and, with ``--append``, added to
benchmarks/RESULTS.md. ``--baseline`` adds a second lstmtext checkout (say
the code before a change) to the same alternation, so a before/after ratio
comes from one run on a busy machine.

history.json's tokens/s counts the training steps only: an epoch's clock
stops before validation and saving, as the PyTorch loop has neither.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from peers.run import peer_env, report  # noqa: E402
WORKER = ROOT / "benchmarks" / "peers" / "torch_lm_worker.py"
RECIPE = ROOT / "benchmarks" / "recipes" / "ptb-medium-tied.toml"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--peer-python", default="/work/peervenv/bin/python")
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "ptb")
    parser.add_argument("--lines", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--baseline", type=Path, help="another lstmtext checkout, run in the same rounds")
    parser.add_argument("--append", action="store_true")
    args = parser.parse_args()

    from lstmtext.lm.data import encode_lines
    from lstmtext.tokenizers import train_tokenizer

    lines = (args.data / "ptb.train.txt").read_text(encoding="utf-8").splitlines()[: args.lines]
    tok = train_tokenizer(lines, 0, "word")
    ids = np.asarray(encode_lines(lines, tok).ids, np.int32)
    roots = {"lstmtext": ROOT}
    if args.baseline:
        rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=args.baseline, capture_output=True,
                             text=True).stdout.strip() or "?"
        roots[f"lstmtext baseline ({rev})"] = args.baseline.resolve()
    speeds: dict[str, list[float]] = {name: [] for name in roots}
    speeds.update({"PyTorch 1 thread": [], "PyTorch default threads": []})
    threads = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        (tmp / "train.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
        valid = (args.data / "ptb.valid.txt").read_text(encoding="utf-8").splitlines()[:200]
        (tmp / "valid.txt").write_text("\n".join(valid) + "\n", encoding="utf-8")
        np.save(tmp / "ids.npy", ids)
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", LSTMTEXT_LITE_PARTS="0")
        for _ in range(args.rounds):
            for name, root in roots.items():
                out = tmp / "run"
                subprocess.run([sys.executable, str(root / "cli.py"), "train", "lm", "--train",
                                str(tmp / "train.txt"), "--valid", str(tmp / "valid.txt"), "--config", str(RECIPE),
                                "--epochs", str(args.epochs), "--output", str(out), "--overwrite", "--quiet",
                                "--seed", "0"], check=True, env=env, cwd=root, stdout=subprocess.DEVNULL)
                history = json.loads((out / "model-last" / "history.json").read_text())
                speeds[name] += [e["tokens_per_s"] for e in history[1:]]
            for name, n in (("PyTorch 1 thread", 1), ("PyTorch default threads", 0)):
                penv = peer_env(n)
                res = json.loads(subprocess.run(
                    [args.peer_python, str(WORKER), str(tmp / "ids.npy"), "--vocab", str(tok.vocab_size),
                     "--epochs", str(args.epochs), "--threads", str(n)], check=True, capture_output=True, text=True,
                    env=penv).stdout.strip().splitlines()[-1])
                speeds[name] += res["tokens_per_s"][1:]
                threads[name] = res["threads"]
                torch_version = res["torch"]
    med = {k: statistics.median(v) for k, v in speeds.items()}
    lines_out = [
        f"PTB train, first {args.lines:,} lines ({ids.size:,} tokens, {tok.vocab_size:,} words); "
        f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at the end; torch {torch_version}; "
        f"{args.rounds} rounds of {args.epochs} epochs each, alternating, first epoch of each left out",
        "recipe: benchmarks/recipes/ptb-medium-tied.toml (2 x 600 tied, dropout 0.5, batch 20, BPTT 35, SGD, clip 5)",
    ]
    table = ["| system | median tokens/s | epochs | lstmtext / it |", "| --- | ---: | ---: | ---: |"]
    for name, v in speeds.items():
        label = f"{name} ({threads[name]})" if name in threads else name
        table.append(f"| {label} | {med[name]:,.0f} | {len(v)} | {med['lstmtext'] / med[name]:.2f}x |")
    report("LM training against PyTorch, shipped recipe", "peer_lm_training.py", lines_out, table, args.append)
    return 0


if __name__ == "__main__":
    sys.exit(main())
