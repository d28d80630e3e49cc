"""``lstmtext train lm``."""

from __future__ import annotations

import time
from pathlib import Path
from typing import List, Optional

import typer

from lstmtext.cli.console import RichReporter, err, friendly
from lstmtext.cli.training_options import (BUDGET, CONFIG, ENCODING, EPOCHS, INIT, MIXED_PRECISION,
                                             OUTPUT, OVERWRITE, QUIET, RESUME, SEED, SET, STRATEGY)


def register(app: typer.Typer) -> None:
    @app.command("lm")
    @friendly
    def train_lm(
        train: Path = typer.Option(..., "--train", help="Training text, one sentence or paragraph a line."),
        valid: Optional[Path] = typer.Option(None, "--valid", help="Validation text (default: 10% of the "
                                             "training lines, at most 2,000, held out and not trained on)."),
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
        budget: Optional[str] = BUDGET,
        init: Optional[Path] = INIT,
    ) -> None:
        """Train an LSTM language model (next-word prediction)."""
        started = time.monotonic()  # the budget's clock starts with the command
        from lstmtext.backend import load_keras
        from lstmtext.lm.api import train as run
        from lstmtext.tasks import TrainOptions

        load_keras()
        options = TrainOptions(output=output, train=[train], valid=[valid] if valid else [], config_file=config,
                               sets=set_ or [], epochs=epochs, seed=seed, resume=resume,
                               overwrite=overwrite, encoding=encoding, budget=budget, init=init, started=started,
                               extra={"tokenizer": tokenizer, "strategy": strategy,
                                      "mixed_precision": mixed_precision})
        metrics = run(options, RichReporter(quiet))
        if metrics:
            err.print(f"best valid perplexity {metrics.get('valid_perplexity', float('nan')):.2f} "
                      f"(epoch {metrics.get('epoch')}); model in {output}/model-best")
            if not quiet:
                err.print(f"for running text, `lstmtext tune-cache {output}/model-best HELD-OUT.txt` adds a continuous "
                          "cache that can lower evaluate's perplexity")
