#!/usr/bin/env python3
"""The PyTorch side of benchmarks/peer_lm_training.py; runs in the peers' venv (see benchmarks/peers/README.md).

    python torch_lm_worker.py IDS.npy --vocab V [--epochs 3] [--threads 0]

A plain PyTorch training loop with the architecture of
benchmarks/recipes/ptb-medium-tied.toml (the shipped models/lm-ptb recipe):
embedding 600, 2 x LSTM 600, dropout 0.5 on the embeddings, between the
layers and on the output, output layer tied to the embedding (with a bias),
uniform init 0.05, SGD lr 1 with global-norm clipping 5, batch 20, BPTT 35,
state carried across windows, loss summed over time. Trains ``--epochs``
passes over the ids and prints one JSON line with the tokens/s of each.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch
from torch import nn

B, T, H = 20, 35, 600


class LM(nn.Module):
    def __init__(self, vocab: int):
        super().__init__()
        self.emb = nn.Embedding(vocab, H)
        self.drop = nn.Dropout(0.5)
        self.lstm = nn.LSTM(H, H, num_layers=2, batch_first=True, dropout=0.5)
        self.out = nn.Linear(H, vocab)
        for p in self.parameters():
            nn.init.uniform_(p, -0.05, 0.05)
        self.out.weight = self.emb.weight  # tied

    def forward(self, x, state):
        h, state = self.lstm(self.drop(self.emb(x)), state)
        return self.out(self.drop(h)), state


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("ids")
    p.add_argument("--vocab", type=int, required=True)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--threads", type=int, default=0)
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    ids = np.load(args.ids).astype(np.int64)
    n = (ids.size - 1) // B * B
    x = torch.from_numpy(ids[:n].reshape(B, -1))
    y = torch.from_numpy(ids[1:n + 1].reshape(B, -1))
    model = LM(args.vocab)
    opt = torch.optim.SGD(model.parameters(), lr=1.0)
    loss_fn = nn.CrossEntropyLoss(reduction="sum")
    speeds = []
    for _ in range(args.epochs):
        model.train()
        state = None
        t0, tokens = time.perf_counter(), 0
        for w in range(x.shape[1] // T):
            xs, ys = x[:, w * T:(w + 1) * T], y[:, w * T:(w + 1) * T]
            if state is not None:
                state = tuple(s.detach() for s in state)
            logits, state = model(xs, state)
            loss = loss_fn(logits.reshape(-1, args.vocab), ys.reshape(-1)) / B  # summed over time, mean over batch
            opt.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 5.0)
            opt.step()
            tokens += B * T
        speeds.append(tokens / (time.perf_counter() - t0))
    print(json.dumps({"tokens_per_s": speeds, "threads": torch.get_num_threads(), "torch": torch.__version__}))


if __name__ == "__main__":
    main()
