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

The CPU's own limit is measured in the same run: the matrix products one
training step of the recipe needs (forward and backward: each LSTM layer's
input projection over all steps, its 35 recurrent products of a batch, their
gradients; the tied output layer and its two gradients), timed with NumPy's
BLAS on all cores, give a products-only ceiling in tokens/s. Each system's
share of that ceiling is printed beside its speed.
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
BATCH, BPTT = 20, 35  # the recipe's batch_size and bptt: the ceiling's step shape


def products_ceiling(vocab: int, batch: int = BATCH, bptt: int = BPTT, units: int = 600, layers: int = 2,
                     repeats: int = 5) -> tuple[float, float]:
    """``(tokens/s, GFLOP a step, GFLOP/s)``: a training step of the recipe as its matrix products alone (NumPy BLAS).

    The last is the rate of the largest product (the input projection), the
    CPU's practical float32 peak: no step runs faster than
    ``GFLOP a step / peak``.

    The products are those of the whole-sequence LSTM kernel
    (lstmtext/layers/sequence_lstm.py) and of a tied softmax output; the
    fastest of ``repeats`` timings counts.
    """
    import time

    rng = np.random.default_rng(0)
    rows = batch * bptt
    m = lambda *shape: rng.standard_normal(shape, dtype=np.float32)  # noqa: E731
    x, w, u = m(rows, units), m(units, 4 * units), m(units, 4 * units)
    dz, h, small_dz = m(rows, 4 * units), m(batch, units), m(batch, 4 * units)
    emb, out, dlogits = m(vocab, units), m(rows, units), m(rows, vocab)
    flops = layers * (6 * 2 * rows * units * 4 * units) + 3 * 2 * rows * units * vocab  # 6 LSTM products a layer

    def step():
        for _ in range(layers):
            x @ w                      # input projection, all steps
            for _ in range(bptt):
                h @ u                  # recurrent product, step by step
            for _ in range(bptt):
                small_dz @ u.T         # its gradient, step by step backwards
            dz @ w.T                   # gradient of the inputs
            x.T @ dz                   # of the input kernel
            x.T @ dz                   # of the recurrent kernel (h_prev.T @ dz, the same shape)
        out @ emb.T                    # logits (tied)
        dlogits @ emb                  # gradient of the top LSTM's outputs
        dlogits.T @ out                # of the tied embedding

    def fastest(fn):
        fn()
        best = float("inf")
        for _ in range(repeats):
            t0 = time.perf_counter()
            fn()
            best = min(best, time.perf_counter() - t0)
        return best

    peak = 2 * rows * units * 4 * units / fastest(lambda: [x @ w for _ in range(10)]) * 10 / 1e9
    return rows / fastest(step), flops / 1e9, peak


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
    ceiling, gflop, peak = products_ceiling(tok.vocab_size)
    lines_out = [
        f"PTB train, first {args.lines:,} lines ({ids.size:,} tokens, {tok.vocab_size:,} words); "
        f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at the end; torch {torch_version}; "
        f"{args.rounds} rounds of {args.epochs} epochs each, alternating, first epoch of each left out",
        "recipe: benchmarks/recipes/ptb-medium-tied.toml (2 x 600 tied, dropout 0.5, batch 20, BPTT 35, SGD, clip 5)",
        f"ceiling: a step's matrix products alone ({gflop:.1f} GFLOP for {BATCH * BPTT} tokens) timed with NumPy's "
        f"BLAS on {os.cpu_count()} cores, best of 5, after the rounds: {ceiling:,.0f} tokens/s "
        f"({gflop * ceiling / (BATCH * BPTT):.0f} GFLOP/s); every product at the large products' rate "
        f"({peak:.0f} GFLOP/s): {peak / gflop * BATCH * BPTT:,.0f} tokens/s",
    ]
    table = ["| system | median tokens/s | epochs | lstmtext / it | share of the ceiling |",
             "| --- | ---: | ---: | ---: | ---: |"]
    for name, v in speeds.items():
        label = f"{name} ({threads[name]})" if name in threads else name
        table.append(f"| {label} | {med[name]:,.0f} | {len(v)} | {med['lstmtext'] / med[name]:.2f}x "
                     f"| {med[name] / ceiling:.0%} |")
    report("LM training against PyTorch, shipped recipe", "peer_lm_training.py", lines_out, table, args.append)
    return 0


if __name__ == "__main__":
    sys.exit(main())
