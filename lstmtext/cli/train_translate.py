"""``lstmtext train translate``."""

from __future__ import annotations

import time
from pathlib import Path
from typing import List, Optional

import typer

from lstmtext.cli.console import RichReporter, err, friendly
from lstmtext.cli.training_options import (BUDGET, CONFIG, ENCODING, EPOCHS, INIT, MIXED_PRECISION,
                                             OUTPUT, OVERWRITE, QUIET, RESUME, SEED, SET, STRATEGY)


def register(app: typer.Typer) -> None:
    @app.command("translate")
    @friendly
    def train_translate(
        train: Optional[Path] = typer.Option(None, "--train", help="Training pairs: source<TAB>target per line."),
        train_source: Optional[Path] = typer.Option(None, "--train-source", help="Training source side."),
        train_target: Optional[Path] = typer.Option(None, "--train-target", help="Training target side "
                                                    "(line-aligned with --train-source)."),
        valid: Optional[Path] = typer.Option(None, "--valid", help="Validation pairs (TSV; default, without "
                                             "--valid-source/--valid-target: 10% of the training pairs, at most "
                                             "2,000, held out and not trained on)."),
        valid_source: Optional[Path] = typer.Option(None, "--valid-source", help="Validation source side."),
        valid_target: Optional[Path] = typer.Option(None, "--valid-target", help="Validation target side."),
        output: Path = OUTPUT,
        config: Optional[Path] = CONFIG,
        set_: Optional[List[str]] = SET,
        epochs: Optional[int] = EPOCHS,
        seed: Optional[int] = SEED,
        resume: bool = RESUME,
        overwrite: bool = OVERWRITE,
        encoding: str = ENCODING,
        quiet: bool = QUIET,
        strategy: str = STRATEGY,
        mixed_precision: str = MIXED_PRECISION,
        budget: Optional[str] = BUDGET,
        init: Optional[Path] = INIT,
    ) -> None:
        """Train a translator: BiLSTM encoder, attention LSTM decoder (validation BLEU picks the best)."""
        started = time.monotonic()  # the budget's clock starts with the command
        from lstmtext.backend import load_keras
        from lstmtext.tasks import TrainOptions
        from lstmtext.translate.api import train as run

        load_keras()  # quietly: TensorFlow's start-up chatter would bury the progress lines
        options = TrainOptions(
            output=output, train=[train] if train else [], valid=[valid] if valid else [],
            config_file=config, sets=set_ or [], epochs=epochs, seed=seed, resume=resume,
            overwrite=overwrite, encoding=encoding, budget=budget, init=init, started=started,
            extra={"train_source": train_source, "train_target": train_target,
                   "valid_source": valid_source, "valid_target": valid_target,
                   "strategy": strategy, "mixed_precision": mixed_precision},
        )
        metrics = run(options, RichReporter(quiet))
        if metrics:  # the result, also under --quiet (no progress), as train lm and tag print it
            epoch = metrics.get("epoch")
            score = (f"BLEU {metrics['valid_bleu']:.2f} (greedy, epoch {epoch})" if "valid_bleu" in metrics
                     else f"loss {metrics.get('valid_loss', float('nan')):.4f} (epoch {epoch})")  # early_stopping=loss
            err.print(f"best valid {score}; model in {output}/model-best")
