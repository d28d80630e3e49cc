"""``lstmtext train lm``."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from lstmtext.cli.console import RichReporter, err, friendly
from lstmtext.cli.training_options import (CONFIG, ENCODING, EPOCHS, MIXED_PRECISION, OUTPUT,
                                             OVERWRITE, QUIET, RESUME, SEED, SET, STRATEGY)


def register(app: typer.Typer) -> None:
    @app.command("lm")
    @friendly
    def train_lm(
        train: Path = typer.Option(..., "--train", help="Training text, one sentence or paragraph a line."),
        valid: Path = typer.Option(..., "--valid", help="Validation text."),
        output: Path = OUTPUT,
        config: Optional[Path] = CONFIG,
        set_: Optional[List[str]] = SET,
        epochs: Optional[int] = EPOCHS,
        seed: Optional[int] = SEED,
        tokenizer: Optional[Path] = typer.Option(None, "--tokenizer", help="Use this tokenizer file."),
        resume: bool = RESUME,
        overwrite: bool = OVERWRITE,
        encoding: str = ENCODING,
        quiet: bool = QUIET,
        strategy: str = STRATEGY,
        mixed_precision: str = MIXED_PRECISION,
    ) -> None:
        """Train an LSTM language model (next-word prediction)."""
        from lstmtext.backend import load_keras
        from lstmtext.lm.api import train as run
        from lstmtext.tasks import TrainOptions

        load_keras()
        options = TrainOptions(output=output, train=[train], valid=[valid], config_file=config,
                               sets=set_ or [], epochs=epochs, seed=seed, resume=resume,
                               overwrite=overwrite, encoding=encoding,
                               extra={"tokenizer": tokenizer, "strategy": strategy,
                                      "mixed_precision": mixed_precision})
        metrics = run(options, RichReporter(quiet))
        if metrics:
            err.print(f"best valid perplexity {metrics.get('valid_perplexity', float('nan')):.2f} "
                      f"(epoch {metrics.get('epoch')}); model in {output}/model-best")
