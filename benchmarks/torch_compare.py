#!/usr/bin/env python3
"""Training speed of lstmtext against a plain PyTorch LSTM LM, timed in one run.

Both train the Zaremba "small" architecture (embedding 200, 2 x LSTM 200,
softmax over 10,000 words; batch 20, BPTT 20, SGD with global-norm clipping,
state carried across batches) on the same token stream. Rounds alternate
between the two so machine noise hits both alike; the script reports the
median tokens/s of each and their ratio (lstmtext / PyTorch), and appends the
result to benchmarks/RESULTS.md.

    pip install torch==2.13.0      # dev-only dependency
    python benchmarks/torch_compare.py [--rounds 5] [--steps 40]
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

V, B, T, H = 10_000, 20, 20, 200


def stream(n: int) -> np.ndarray:
    ptb = ROOT.parent / "shared" / "data" / "ptb" / "ptb.train.txt"
    if ptb.exists():
        from lstmtext.lm.data import encode_lines
        from lstmtext.tokenizers import train_tokenizer

        lines = ptb.read_text().splitlines()[:20000]
        tok = train_tokenizer(lines, V, "word")
        return encode_lines(lines, tok).ids[: n + 1] % V
    return np.random.default_rng(0).integers(4, V, n + 1).astype(np.int32)


def lstmtext_trainer(ids: np.ndarray):
    from lstmtext import config as config_io
    from lstmtext.lm.config import LMConfig
    from lstmtext.lm.data import batchify, windows
    from lstmtext.lm.network import build_lm, compile_lm

    cfg = config_io.resolve(LMConfig, ROOT / "benchmarks" / "recipes" / "ptb-small.toml")
    model = build_lm(cfg, V, B, T)
    compile_lm(model, cfg)
    x, y, _ = batchify(ids, B, pad=False)
    batches = list(windows((x, y), T, full_only=True))

    def run(steps: int, offset: int) -> float:
        t0 = time.perf_counter()
        for s in range(steps):
            xs, ys = batches[(offset + s) % len(batches)]
            model.train_on_batch(xs, ys)
        return steps * B * T / (time.perf_counter() - t0)

    return run


def torch_trainer(ids: np.ndarray):
    import torch
    from torch import nn

    torch.set_num_threads(os.cpu_count() or 1)
    torch.manual_seed(0)

    class LM(nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = nn.Embedding(V, H)
            self.lstm = nn.LSTM(H, H, num_layers=2, batch_first=True)
            self.out = nn.Linear(H, V)
            for p in self.parameters():
                nn.init.uniform_(p, -0.1, 0.1)

        def forward(self, x, state):
            h, state = self.lstm(self.emb(x), state)
            return self.out(h), state

    model = LM()
    opt = torch.optim.SGD(model.parameters(), lr=1.0)
    loss_fn = nn.CrossEntropyLoss()
    n = (ids.size - 1) // B * B
    x = torch.from_numpy(ids[:n].reshape(B, -1).astype(np.int64))
    y = torch.from_numpy(ids[1:n + 1].reshape(B, -1).astype(np.int64))
    windows = x.shape[1] // T
    state = None

    def run(steps: int, offset: int) -> float:
        nonlocal state
        t0 = time.perf_counter()
        for s in range(steps):
            w = (offset + s) % windows
            xs, ys = x[:, w * T:(w + 1) * T], y[:, w * T:(w + 1) * T]
            if state is not None:
                state = tuple(t.detach() for t in state)
            logits, state = model(xs, state)
            loss = loss_fn(logits.reshape(-1, V), ys.reshape(-1)) * T  # summed over time, as Zaremba
            opt.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 5.0)
            opt.step()
        return steps * B * T / (time.perf_counter() - t0)

    return run


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--no-append", action="store_true")
    args = parser.parse_args()
    ids = stream(B * T * args.steps * 4)
    runners = {"lstmtext": lstmtext_trainer(ids), "pytorch": torch_trainer(ids)}
    for run in runners.values():  # warm-up: graph tracing, allocator
        run(5, 0)
    speeds: dict[str, list[float]] = {k: [] for k in runners}
    for r in range(args.rounds):
        for name, run in runners.items():
            speeds[name].append(run(args.steps, r * args.steps))
    med = {k: statistics.median(v) for k, v in speeds.items()}
    ratio = med["lstmtext"] / med["pytorch"]
    import keras
    import torch

    lines = [
        f"\n## lm: training speed vs PyTorch ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())})\n",
        f"- command: `python benchmarks/torch_compare.py --rounds {args.rounds} --steps {args.steps}`",
        f"- {os.cpu_count()} cores; keras {keras.__version__} (TensorFlow backend), torch {torch.__version__}",
        "- model: 2 x LSTM 200, 10k softmax, batch 20, BPTT 20, SGD + clipping (Zaremba small)",
        f"- lstmtext median {med['lstmtext']:,.0f} tokens/s; PyTorch median {med['pytorch']:,.0f} tokens/s "
        f"(rounds: {', '.join(f'{s:,.0f}' for s in speeds['lstmtext'])} vs "
        f"{', '.join(f'{s:,.0f}' for s in speeds['pytorch'])})",
        f"- ratio lstmtext / PyTorch: **{ratio:.2f}**",
    ]
    print("\n".join(lines))
    if not args.no_append:
        with open(ROOT / "benchmarks" / "RESULTS.md", "a", encoding="utf-8") as fh:
            fh.write("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
