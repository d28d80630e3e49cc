#!/usr/bin/env python3
"""Tagger training speed with and without the whole-sequence LSTM kernel, in one process.

Builds a recipe's tagger twice with the project's trainer pieces (corpus
reading, vocabulary, ``build_model``, ``NERTask.train_batches``) and the same
initial weights; the second model has ``sequence_lstm.install``. Both are
warmed up on every batch (each batch shape is traced once), then they train
in alternating rounds (plain, kernel, plain, kernel, ...) of ``--steps``
``train_on_batch`` calls on the same real batches. Tokens/s counts the real
tokens of the batches (padding excluded); the ratio is the median of the
per-round ratios (kernel / plain), so drifting machine load cancels.

    python benchmarks/tag_train_speed.py conll03        # CoNLL-2003 NER (recipe ner-conll03)
    python benchmarks/tag_train_speed.py protein        # protein SS, pieces of 512, batch 16, 2x256
    python benchmarks/tag_train_speed.py conll03 --set hidden_size=256 --set num_layers=2
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import types
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
DATA = ROOT.parent / "shared" / "data"
WORKLOADS = {
    "conll03": ("ner-conll03.toml", [DATA / "conll2003" / "train.txt"], None, None),
    "protein": ("protein-flip-sampled.toml", [DATA / "protein_ss" / "sequences.fasta"],
                [DATA / "protein_ss" / "sampled.fasta"], [DATA / "protein_ss" / "mask.fasta"]),
}


def task_and_models(workload: str, sets: list[str], batches: int):
    """The recipe's config, ``batches`` real training batches and two equal models (plain, kernel)."""
    import keras

    from lstmtext import config as config_io
    from lstmtext.layers import sequence_lstm
    from lstmtext.ner import labels, trainer
    from lstmtext.ner.config import NERConfig
    from lstmtext.ner.labels import constraints_for
    from lstmtext.ner.network import build_model
    from lstmtext.training import auto

    recipe, train, label_files, mask_files = WORKLOADS[workload]
    config = config_io.resolve(NERConfig, ROOT / "benchmarks" / "recipes" / recipe, sets, {})
    config, _ = trainer._input_settings(config)
    quiet = types.SimpleNamespace(message=lambda *_: None)
    corpora = trainer.read_corpora([str(p) for p in train], config, "utf-8", quiet,
                                   label_files and [str(p) for p in label_files],
                                   mask_files and [str(p) for p in mask_files])
    kind = corpora[0].kind
    if config.label_kind == "auto":
        import dataclasses

        config = dataclasses.replace(config, label_kind=kind)
    sentences = [s for c in corpora for s in c.sentences]
    internal = config.tag_scheme if kind == labels.SPANS else None
    data, features = trainer._pieces(sentences, config, internal)
    stats = auto.TaggedStats.from_sentences(data if kind == labels.SPANS else [(t, ["O"] * len(t)) for t, _ in data])
    config, _ = auto.resolve(config, auto.ner_values(stats, config, None))
    options = types.SimpleNamespace(train=[str(p) for p in train], valid=[], encoding="utf-8")
    vocab, meta, _ = trainer._new_vocabulary(config, options, data, [], corpora[0].scheme, quiet, features)
    masked = any(t is None for _, tags in data for t in tags)
    models = []
    for fast in (False, True):
        keras.utils.set_random_seed(config.seed)
        model = build_model(config, vocab, constraints_for(vocab, vars(config)), masked=masked)
        switched = sequence_lstm.install(model) if fast else 0
        models.append((model, switched))
    models[1][0].set_weights(models[0][0].get_weights())
    task = trainer.NERTask(config, vocab, models[0][0], data, [], "", meta, fixed_chars=False,
                           train_features=features)
    chosen = []
    for batch in task.train_batches(0):
        chosen.append(batch)
        if len(chosen) == batches:
            break
    return config, chosen, models


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("workload", choices=sorted(WORKLOADS))
    parser.add_argument("--set", dest="sets", action="append", default=[], help="config key=value")
    parser.add_argument("--batches", type=int, default=8, help="distinct real batches")
    parser.add_argument("--steps", type=int, default=8, help="train steps per round")
    parser.add_argument("--rounds", type=int, default=5, help="rounds of each model, alternating")
    args = parser.parse_args()

    import keras

    config, batches, models = task_and_models(args.workload, args.sets, args.batches)
    shapes = sorted({b.x["words"].shape for b in batches})
    print(f"{args.workload}: hidden_size={config.hidden_size} num_layers={config.num_layers} "
          f"batch_size={config.batch_size} char_encoder={config.char_encoder}; batch shapes {shapes}; "
          f"layers switched to the kernel: {models[1][1]}; keras {keras.__version__}, {os.cpu_count()} cores",
          flush=True)
    for model, _ in models:  # trace every shape before timing
        for b in batches:
            model.train_on_batch(b.x, b.y)
    speeds: list[list[float]] = [[], []]
    for r in range(args.rounds):
        for k, (model, _) in enumerate(models):
            tokens = 0
            t0 = time.perf_counter()
            for s in range(args.steps):
                b = batches[(r * args.steps + s) % len(batches)]
                model.train_on_batch(b.x, b.y)
                tokens += b.tokens
            speeds[k].append(tokens / (time.perf_counter() - t0))
        print(f"round {r + 1}: plain {speeds[0][-1]:,.0f} tokens/s, kernel {speeds[1][-1]:,.0f} tokens/s",
              flush=True)
    ratios = [b / a for a, b in zip(*speeds)]
    print(f"median: plain {statistics.median(speeds[0]):,.0f} tokens/s, kernel {statistics.median(speeds[1]):,.0f} "
          f"tokens/s, ratio kernel/plain {statistics.median(ratios):.2f}x "
          f"(per round {', '.join(f'{x:.2f}' for x in ratios)}); load average {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
