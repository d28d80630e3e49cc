"""``lstmtext train lm``."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from lstmtext.cli.console import RichReporter, err, friendly
from lstmtext.cli.training_options import MIXED_PRECISION, STRATEGY


def register(app: typer.Typer) -> None:
    @app.command("lm")
    @friendly
    def train_lm(
        train: Path = typer.Option(..., "--train", help="Training text, one sentence or paragraph a line."),
        valid: Path = typer.Option(..., "--valid", help="Validation text."),
        output: Path = typer.Option(..., "--output", "-o", help="Output directory (model-best, model-last)."),
        config: Optional[Path] = typer.Option(None, "--config", "-c", help="TOML config file."),
        set_: Optional[List[str]] = typer.Option(None, "--set", help="Override a config key: KEY=VALUE."),
        epochs: Optional[int] = typer.Option(None, "--epochs", help="Maximum epochs."),
        seed: Optional[int] = typer.Option(None, "--seed", help="Random seed."),
        tokenizer: Optional[Path] = typer.Option(None, "--tokenizer", help="Use this tokenizer file."),
        resume: bool = typer.Option(False, "--resume", help="Continue from OUTPUT/model-last."),
        overwrite: bool = typer.Option(False, "--overwrite", help="Replace a model already at OUTPUT."),
        encoding: str = typer.Option("utf-8", "--encoding", help="Encoding of the text files."),
        quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress output."),
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
