#!/usr/bin/env python3
"""Language-model training speed: the real ``lstmtext train lm`` loop against a plain PyTorch loop (issue 15).

Usage::

    python benchmarks/peer_lm_training.py [--peer-python /work/peervenv/bin/python] [--lines 2000]
        [--rounds 2] [--epochs 3] [--append]

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
benchmarks/RESULTS.md.
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
    parser.add_argument("--append", action="store_true")
    args = parser.parse_args()

    from lstmtext.lm.data import encode_lines
    from lstmtext.tokenizers import train_tokenizer

    lines = (args.data / "ptb.train.txt").read_text(encoding="utf-8").splitlines()[: args.lines]
    tok = train_tokenizer(lines, 0, "word")
    ids = np.asarray(encode_lines(lines, tok).ids, np.int32)
    speeds: dict[str, list[float]] = {"lstmtext": [], "PyTorch 1 thread": [], "PyTorch default threads": []}
    threads = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        (tmp / "train.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
        valid = (args.data / "ptb.valid.txt").read_text(encoding="utf-8").splitlines()[:200]
        (tmp / "valid.txt").write_text("\n".join(valid) + "\n", encoding="utf-8")
        np.save(tmp / "ids.npy", ids)
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", LSTMTEXT_LITE_PARTS="0")
        for _ in range(args.rounds):
            out = tmp / "run"
            subprocess.run([sys.executable, str(ROOT / "cli.py"), "train", "lm", "--train", str(tmp / "train.txt"),
                            "--valid", str(tmp / "valid.txt"), "--config", str(RECIPE), "--epochs",
                            str(args.epochs), "--output", str(out), "--overwrite", "--quiet", "--seed", "0"],
                           check=True, env=env, cwd=ROOT, stdout=subprocess.DEVNULL)
            history = json.loads((out / "model-last" / "history.json").read_text())
            speeds["lstmtext"] += [e["tokens_per_s"] for e in history[1:]]
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
        label = name if name == "lstmtext" else f"{name} ({threads[name]})"
        table.append(f"| {label} | {med[name]:,.0f} | {len(v)} | {med['lstmtext'] / med[name]:.2f}x |")
    report("LM training against PyTorch, shipped recipe", "peer_lm_training.py", lines_out, table, args.append)
    return 0


if __name__ == "__main__":
    sys.exit(main())
