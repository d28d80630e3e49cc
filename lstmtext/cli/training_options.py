"""Command-line options shared by every ``lstmtext train`` command.

Each is a ready ``typer.Option``: a train command declares
``strategy: str = STRATEGY`` and ``mixed_precision: str = MIXED_PRECISION``
and passes both on in ``TrainOptions.extra`` (see
:mod:`lstmtext.training.distribute`).
"""

from __future__ import annotations

import typer

STRATEGY = typer.Option(
    "auto", "--strategy",
    help="auto, one, mirrored (every local GPU) or multiworker (the machines in TF_CONFIG); "
         "auto: mirrored when there is more than one GPU.")
MIXED_PRECISION = typer.Option(
    "off", "--mixed-precision", help="off, float16 or bfloat16 compute (float32 weights and softmax).")
