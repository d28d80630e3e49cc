"""``lstmtext train tag`` (also ``lstmtext train ner``): the sequence tagger."""

from __future__ import annotations

import time
from pathlib import Path
from typing import List, Optional

import typer

from lstmtext.cli.console import RichReporter, err, friendly
from lstmtext.cli.training_options import (BUDGET, CONFIG, ENCODING, EPOCHS, INIT, MIXED_PRECISION,
                                             OUTPUT, OVERWRITE, QUIET, RESUME, SEED, SET, STRATEGY)


def train_tag(
    train: List[Path] = typer.Option(..., "--train", help="Tagged training data: CoNLL columns or JSONL, or "
                                     "FASTA sequences with --labels (repeat for several files)."),
    valid: Optional[List[Path]] = typer.Option(None, "--valid", help="Tagged validation data (selects the best "
                                               "model; default: FASTA records marked VALIDATION=True, else 10% "
                                               "of the training sentences, at most 2,000, held out and not "
                                               "trained on)."),
    output: Path = OUTPUT,
    config: Optional[Path] = CONFIG,
    set_: Optional[List[str]] = SET,
    epochs: Optional[int] = EPOCHS,
    seed: Optional[int] = SEED,
    resume: bool = RESUME,
    overwrite: bool = OVERWRITE,
    embeddings: Optional[Path] = typer.Option(None, "--embeddings", help="GloVe/word2vec text file to "
                                              "initialise word vectors (set word_dim to its size)."),
    word_column: Optional[int] = typer.Option(None, "--word-column", help="Word column, 1-based "
                                              "(default: first)."),
    tag_column: Optional[int] = typer.Option(None, "--tag-column", help="Tag column, 1-based; negative "
                                             "counts from the end (default: last)."),
    feature_column: Optional[List[int]] = typer.Option(None, "--feature-column", help="Another column read "
                                                       "as an input feature, 1-based (repeatable; e.g. 2 for "
                                                       "the POS column of CoNLL-2000)."),
    label_kind: Optional[str] = typer.Option(None, "--label-kind", help="spans (entities, chunks: IOB1/IOB2/"
                                             "BIOES) or tokens (any label per token); default: detected."),
    input_: Optional[str] = typer.Option(None, "--input", help="words (default) or chars (every character "
                                         "a token: protein, DNA)."),
    labels: Optional[List[Path]] = typer.Option(None, "--labels", help="FASTA labels, one per residue, for "
                                                "each --train FASTA file (records matched by id)."),
    mask: Optional[List[Path]] = typer.Option(None, "--mask", help="FASTA masks (1 scored, 0 left out of "
                                              "loss and metrics) for each --train FASTA file."),
    valid_labels: Optional[List[Path]] = typer.Option(None, "--valid-labels", help="FASTA labels for each "
                                                      "--valid FASTA file."),
    valid_mask: Optional[List[Path]] = typer.Option(None, "--valid-mask", help="FASTA masks for each --valid "
                                                    "FASTA file."),
    scheme: Optional[str] = typer.Option(None, "--scheme", help="Tag scheme of span data: iob1, iob2 "
                                         "(bio) or bioes (default: detected)."),
    encoding: str = ENCODING,
    quiet: bool = QUIET,
    strategy: str = STRATEGY,
    mixed_precision: str = MIXED_PRECISION,
    budget: Optional[str] = BUDGET,
    init: Optional[Path] = INIT,
    lm: Optional[List[Path]] = typer.Option(None, "--lm", help="A language-model bundle (lstmtext train lm) "
                                            "whose states at each word become tagger features; repeat for a "
                                            "forward and a backward one (direction=backward). Frozen; stored "
                                            "in the tagger's bundle."),
) -> None:
    """Train a BiLSTM-CRF sequence tagger: entities or chunks (spans), part of speech or residue states (per-token labels)."""
    started = time.monotonic()  # the budget's clock starts with the command
    from lstmtext.backend import load_keras
    from lstmtext.ner.api import train as run
    from lstmtext.ner.schemes import normalize_scheme
    from lstmtext.tasks import TrainOptions

    extra = {"embeddings": str(embeddings) if embeddings else None, "word_column": word_column,
             "tag_column": tag_column, "scheme": normalize_scheme(scheme) if scheme else None,
             "label_kind": label_kind, "input": input_,
             "feature_columns": ",".join(map(str, feature_column)) if feature_column else None,
             "lm": ",".join(map(str, lm)) if lm else None,
             "labels": [str(p) for p in labels] if labels else None,
             "mask": [str(p) for p in mask] if mask else None,
             "valid_labels": [str(p) for p in valid_labels] if valid_labels else None,
             "valid_mask": [str(p) for p in valid_mask] if valid_mask else None,
             "strategy": strategy, "mixed_precision": mixed_precision}
    options = TrainOptions(output=output, train=list(train), valid=list(valid or []), config_file=config,
                           sets=set_ or [], epochs=epochs, seed=seed, resume=resume, overwrite=overwrite,
                           encoding=encoding, budget=budget, init=init, started=started,
                           extra={k: v for k, v in extra.items() if v is not None})
    load_keras()  # quietly: TensorFlow's start-up chatter would bury the progress lines
    metrics = run(options, RichReporter(quiet))
    if metrics:
        what, key = (("accuracy", "accuracy") if metrics.get("label_kind") == "tokens" else ("entity F1", "f1"))
        err.print(f"best validation {what} {metrics.get(key, float('nan')):.2f} "
                  f"(epoch {metrics.get('epoch')}); model in {output}/model-best")


def register(app: typer.Typer) -> None:
    command = friendly(train_tag)
    app.command("tag")(command)
    app.command("ner", help="Train a sequence tagger (the same command as 'train tag'; named-entity "
                "data trains as before).")(command)
