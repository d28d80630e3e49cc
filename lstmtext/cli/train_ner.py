"""``lstmtext train ner``."""

from __future__ import annotations

import time
from pathlib import Path
from typing import List, Optional

import typer

from lstmtext.cli.console import RichReporter, err, friendly
from lstmtext.cli.training_options import (BUDGET, CONFIG, ENCODING, EPOCHS, INIT, MIXED_PRECISION,
                                             OUTPUT, OVERWRITE, QUIET, RESUME, SEED, SET, STRATEGY)


def register(app: typer.Typer) -> None:
    @app.command("ner")
    @friendly
    def train_ner(
        train: List[Path] = typer.Option(..., "--train", help="Tagged training data: CoNLL columns or JSONL "
                                         "(repeat for several files)."),
        valid: Optional[List[Path]] = typer.Option(None, "--valid", help="Tagged validation data (selects the best "
                                                   "model; default: 10% of the training sentences, at most "
                                                   "2,000, held out and not trained on)."),
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
        scheme: Optional[str] = typer.Option(None, "--scheme", help="Tag scheme of the data: iob1, iob2 "
                                             "(bio) or bioes (default: detected)."),
        encoding: str = ENCODING,
        quiet: bool = QUIET,
        strategy: str = STRATEGY,
        mixed_precision: str = MIXED_PRECISION,
        budget: Optional[str] = BUDGET,
        init: Optional[Path] = INIT,
    ) -> None:
        """Train a BiLSTM-CRF named-entity tagger with character features."""
        started = time.monotonic()  # the budget's clock starts with the command
        from lstmtext.backend import load_keras
        from lstmtext.ner.api import train as run
        from lstmtext.ner.schemes import normalize_scheme
        from lstmtext.tasks import TrainOptions

        extra = {"embeddings": str(embeddings) if embeddings else None, "word_column": word_column,
                 "tag_column": tag_column, "scheme": normalize_scheme(scheme) if scheme else None,
                 "strategy": strategy, "mixed_precision": mixed_precision}
        options = TrainOptions(output=output, train=list(train), valid=list(valid or []), config_file=config,
                               sets=set_ or [], epochs=epochs, seed=seed, resume=resume, overwrite=overwrite,
                               encoding=encoding, budget=budget, init=init, started=started,
                               extra={k: v for k, v in extra.items() if v is not None})
        load_keras()  # quietly: TensorFlow's start-up chatter would bury the progress lines
        metrics = run(options, RichReporter(quiet))
        if metrics:
            err.print(f"best validation entity F1 {metrics.get('f1', float('nan')):.2f} "
                      f"(epoch {metrics.get('epoch')}); model in {output}/model-best")
