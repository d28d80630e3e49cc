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
BUDGET = typer.Option(
    None, "--budget",
    help="Wall-time limit, e.g. 45m, 2h, 90s, 1h30m: epochs are planned from the speed measured in the "
         "first steps to end in time, with model-best written.")
INIT = typer.Option(
    None, "--init",
    help="Start from this bundle of the same task (its weights and tokenizer; a tagger adds new entity "
         "types); training keys (lr, epochs, dropout) come from the defaults, --config and --set.")

STRATEGY = typer.Option(
    "auto", "--strategy",
    help="auto, one, mirrored (every local GPU) or multiworker (the machines in TF_CONFIG); "
         "auto: mirrored when there is more than one GPU.")
MIXED_PRECISION = typer.Option(
    "off", "--mixed-precision", help="off, float16 or bfloat16 compute (float32 weights and softmax).")
