"""Command-line options shared by every ``lstmtext train`` command.

Each is a ready ``typer.Option``, declared once so every train command
spells and documents them alike: ``output: Path = OUTPUT`` and so on. The
strategy options travel in ``TrainOptions.extra`` (see
:mod:`lstmtext.training.distribute`).
"""

from __future__ import annotations

import typer

OUTPUT = typer.Option(..., "--output", "-o", help="Output directory (model-best, model-last).")
CONFIG = typer.Option(None, "--config", "-c", help="TOML config file.")
SET = typer.Option(None, "--set", help="Override a config key: KEY=VALUE.")
EPOCHS = typer.Option(None, "--epochs", help="Maximum epochs.")
SEED = typer.Option(None, "--seed", help="Random seed.")
RESUME = typer.Option(False, "--resume", help="Continue from OUTPUT/model-last.")
OVERWRITE = typer.Option(False, "--overwrite", help="Replace a model already at OUTPUT.")
ENCODING = typer.Option("utf-8", "--encoding", help="Encoding of the data files.")
QUIET = typer.Option(False, "--quiet", "-q", help="No progress output.")

STRATEGY = typer.Option(
    "auto", "--strategy",
    help="auto, one, mirrored (every local GPU) or multiworker (the machines in TF_CONFIG); "
         "auto: mirrored when there is more than one GPU.")
MIXED_PRECISION = typer.Option(
    "off", "--mixed-precision", help="off, float16 or bfloat16 compute (float32 weights and softmax).")
