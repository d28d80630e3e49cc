"""Task registry: which module implements each task's API.

``predict``, ``evaluate``, ``info`` and ``export`` read the task from a
bundle's ``config.json`` and dispatch here; modules are imported lazily so
the command line stays light.

Each API module exposes::

    train(options: TrainOptions, reporter) -> dict           # metrics
    evaluate(bundle: Bundle, options: EvalOptions) -> dict
    predict(bundle: Bundle, lines: Iterable[str], options: PredictOptions) -> Iterator[str]
    info(bundle: Bundle) -> dict
"""

from __future__ import annotations

import importlib
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

API_MODULES = {
    "lm": "lstmtext.lm.api",
    "ner": "lstmtext.ner.api",
    "translate": "lstmtext.translate.api",
}

# Other names a user may give for a task (``lstmtext train tag`` trains the ``ner`` task).
TASK_ALIASES = {"tag": "ner"}


def task_name(name: str) -> str:
    """The task ``name`` means (an alias resolved); unknown names are returned as they are."""
    return TASK_ALIASES.get(name, name)


def api(task: str) -> ModuleType:
    """The API module of ``task``."""
    return importlib.import_module(API_MODULES[task])


@dataclass
class TrainOptions:
    """Options common to ``lstmtext train <task>``; ``extra`` holds task-specific ones."""

    output: Path
    train: list[Path] = field(default_factory=list)
    valid: list[Path] = field(default_factory=list)
    config_file: Path | None = None
    sets: list[str] = field(default_factory=list)
    epochs: int | None = None
    seed: int | None = None
    resume: bool = False
    overwrite: bool = False
    encoding: str = "utf-8"
    extra: dict = field(default_factory=dict)
    # Wall-time budget in seconds (``--budget``; a string such as "45m" is
    # parsed): the loop plans its epochs to fit (lstmtext.training.budget),
    # and auto defaults may read it to cap the model's size.
    budget: float | None = None
    # time.monotonic() when the budget's clock started: when these options were made.
    started: float = field(default_factory=time.monotonic)
    # A bundle of the same task to start from (``--init``): its weights and tokenizer.
    init: Path | None = None

    def __post_init__(self):
        if self.budget is not None:
            from lstmtext.training.budget import parse_duration

            self.budget = parse_duration(self.budget)


@dataclass
class EvalOptions:
    """Options of ``lstmtext evaluate``."""

    files: list[Path] = field(default_factory=list)
    encoding: str = "utf-8"
    batch_size: int | None = None
    extra: dict = field(default_factory=dict)


@dataclass
class PredictOptions:
    """Options of ``lstmtext predict``; each task reads the ones it knows."""

    format: str | None = None  # None: the task's default
    top_k: int = 5
    beam: int = 5
    batch_size: int | None = None
    runtime: str = "auto"
    encoding: str = "utf-8"
    extra: dict = field(default_factory=dict)
