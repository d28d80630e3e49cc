"""Shared fixtures: a tiny corpus written for the project and a tiny trained LM."""

from __future__ import annotations

import os
import random
import tempfile
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
# Training ends by building LiteRT parts (seconds each); the suite's many tiny
# trainings skip that, and tests/test_lite.py turns it back on where it checks it.
os.environ.setdefault("LSTMTEXT_LITE_PARTS", "0")
# Remembered file digests (lstmtext.lite.runtime.file_digest) go to a private cache.
os.environ["XDG_CACHE_HOME"] = tempfile.mkdtemp(prefix="lstmtext-test-cache-")

ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = ROOT.parent / "shared" / "data"

SUBJECTS = ["the cat", "the dog", "a bird", "my friend", "the teacher", "our neighbour", "the old man"]
VERBS = ["sees", "likes", "follows", "feeds", "watches", "calls"]
OBJECTS = ["the ball", "a small house", "the red car", "the garden", "a quiet river", "the market"]
TAILS = ["", "today", "every morning", "in the park", "again"]


def tiny_sentences(n: int, seed: int) -> list[str]:
    """Deterministic sentences from a small grammar (subject verb object [tail])."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        words = [rng.choice(SUBJECTS), rng.choice(VERBS), rng.choice(OBJECTS), rng.choice(TAILS)]
        out.append(" ".join(w for w in words if w))
    return out


@pytest.fixture(scope="session")
def corpus(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("corpus")
    train, valid = d / "train.txt", d / "valid.txt"
    train.write_text("\n".join(tiny_sentences(300, 1)) + "\n", encoding="utf-8")
    valid.write_text("\n".join(tiny_sentences(40, 2)) + "\n", encoding="utf-8")
    return {"train": train, "valid": valid, "dir": d}


TINY_LM = ["embedding_dim=16", "hidden_size=16", "num_layers=1", "batch_size=4", "bptt=8",
           "jit_compile=false", "eval_batch_size=2", "lr=1.0", "lr_decay_start=2", "patience=0"]


@pytest.fixture(scope="session")
def tiny_lm(corpus, tmp_path_factory) -> Path:
    """A 1 x 16 word-level LM trained for 2 epochs on the tiny corpus."""
    from lstmtext.lm.api import train
    from lstmtext.tasks import TrainOptions
    from lstmtext.training.reporting import Reporter

    out = tmp_path_factory.mktemp("lm") / "out"
    train(TrainOptions(output=out, train=[corpus["train"]], valid=[corpus["valid"]],
                       sets=TINY_LM + ["tokenizer=word", "vocab_size=0"], epochs=2, seed=3), Reporter())
    return out


def needs_shared(*parts: str) -> Path:
    """Path under ../shared/data, or skip the test when it is absent."""
    p = SHARED_DATA.joinpath(*parts)
    if not p.exists():
        pytest.skip(f"benchmark data not available ({p})")
    return p
