"""The training loop shared by every task.

A task supplies a compiled Keras model, its batches, a validation function and
a way to write its bundle (see :class:`TrainTask`). :func:`fit` runs epochs,
reports progress, keeps ``model-best`` and ``model-last`` bundles in the output
directory after every epoch, stops early, and resumes from ``model-last``
with the optimizer state, epoch, learning rate and early-stopping counters
intact.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Protocol

import numpy as np

from lstmtext.errors import TrainingError, UsageError
from lstmtext.io import atomic_directory
from lstmtext.training.reporting import LoggingReporter, Reporter
from lstmtext.training.schedule import epoch_learning_rate

TRAINER_STATE = "trainer.json"
OPTIMIZER_FILE = "optimizer.h5"


@dataclass
class Batch:
    """One training batch: model inputs, targets and the number of real tokens."""

    x: Any
    y: Any
    tokens: int


@dataclass
class LoopConfig:
    """The loop's settings, taken from a task's config."""

    epochs: int
    lr: float
    lr_schedule: str = "constant"
    lr_decay: float = 0.5
    lr_decay_start: int = 0
    min_lr: float = 0.0
    patience: int = 0  # 0: never stop early
    seed: int = 0
    lr_scale: float = 1.0  # optimizer rate = schedule rate * lr_scale


class TrainTask(Protocol):
    """What a task gives the loop."""

    model: Any
    monitor: str  # key of validate()'s dict used for best model / early stop
    monitor_mode: str  # "min" or "max"

    def train_batches(self, epoch: int) -> Iterator[Batch]: ...

    def steps_per_epoch(self) -> int | None: ...

    def on_epoch_begin(self, epoch: int) -> None: ...

    def validate(self) -> dict[str, float]: ...

    def write_bundle(self, directory: Path, metrics: dict, history: list) -> None: ...


@dataclass
class TrainerState:
    """Everything besides weights that ``--resume`` restores."""

    epoch: int = 0  # epochs completed
    lr: float = 0.0
    best: float | None = None
    bad_epochs: int = 0
    improved_last: bool = True
    history: list = field(default_factory=list)
    finished: bool = False

    def to_json(self) -> dict:
        return self.__dict__.copy()

    @classmethod
    def from_json(cls, d: dict) -> "TrainerState":
        return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})


def save_optimizer(optimizer, path: Path) -> None:
    """Save optimizer variables in order (their count and shapes are checked on load)."""
    import h5py

    with h5py.File(path, "w") as f:
        for i, v in enumerate(optimizer.variables):
            f.create_dataset(f"{i:05d}", data=np.asarray(v.numpy()))


def load_optimizer(optimizer, model, path: Path) -> None:
    """Restore variables written by :func:`save_optimizer` into a fresh optimizer."""
    import h5py

    optimizer.build(model.trainable_variables)
    with h5py.File(path, "r") as f:
        names = sorted(f.keys())
        if len(names) != len(optimizer.variables):
            raise TrainingError(f"{path}: optimizer state does not match this model")
        for name, v in zip(names, optimizer.variables):
            value = f[name][()]
            if tuple(value.shape) != tuple(v.shape):
                raise TrainingError(f"{path}: optimizer state does not match this model")
            v.assign(value)


@contextlib.contextmanager
def output_lock(output: Path) -> Iterator[None]:
    """Refuse a second training into the same output directory at once."""
    output.mkdir(parents=True, exist_ok=True)
    lock = output / ".lock"
    try:
        fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        pid = lock.read_text().strip() if lock.exists() else "?"
        alive = False
        with contextlib.suppress(ValueError, ProcessLookupError, PermissionError):
            os.kill(int(pid), 0)
            alive = True
        if alive:
            raise UsageError(f"{output}: another training (pid {pid}) is writing here") from None
        lock.unlink(missing_ok=True)  # stale lock of a dead process
        fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    os.write(fd, str(os.getpid()).encode())
    os.close(fd)
    try:
        yield
    finally:
        lock.unlink(missing_ok=True)


def check_output(output: Path, resume: bool, overwrite: bool) -> None:
    """Protect an earlier training at ``output`` unless asked to resume or overwrite."""
    has_bundle = (output / "model-last").exists() or (output / "model-best").exists()
    if resume and not (output / "model-last" / TRAINER_STATE).is_file():
        raise UsageError(f"{output}: nothing to resume (no model-last checkpoint)")
    if has_bundle and not resume and not overwrite:
        raise UsageError(
            f"{output}: already holds a trained model; use --resume to continue it "
            "or --overwrite to replace it"
        )


def _improved(value: float, best: float | None, mode: str) -> bool:
    if best is None:
        return True
    return value < best if mode == "min" else value > best


def fit(
    task: TrainTask,
    output: Path,
    loop: LoopConfig,
    reporter: Reporter | None = None,
    resume: bool = False,
) -> dict:
    """Train ``task`` and write ``output/model-best`` and ``output/model-last``.

    Returns:
        The best epoch's metrics plus ``epochs_run`` and ``train_seconds``.
    """
    reporter = reporter or LoggingReporter()
    model = task.model
    state = TrainerState(lr=loop.lr)
    last = output / "model-last"
    if resume:
        from lstmtext.weights import assign_model_weights, load_arrays

        state = TrainerState.from_json(json.loads((last / TRAINER_STATE).read_text()))
        assign_model_weights(model, load_arrays(last / "weights.h5"), str(last))
        load_optimizer(model.optimizer, model, last / OPTIMIZER_FILE)
        reporter.message(f"resuming from {last} after epoch {state.epoch}")
        if state.epoch >= loop.epochs:
            reporter.message("training had already finished; raise --epochs to train further")
            return state.history[-1] if state.history else {}
    reporter.train_begin(loop.epochs, state.epoch)
    started = time.perf_counter()
    try:
        for epoch in range(state.epoch, loop.epochs):
            lr = epoch_learning_rate(
                loop.lr_schedule, loop.lr, epoch, loop.lr_decay, loop.lr_decay_start,
                state.lr, plateau=not state.improved_last, min_lr=loop.min_lr,
            ) if epoch > 0 or loop.lr_schedule != "plateau" else state.lr
            state.lr = lr
            model.optimizer.learning_rate.assign(lr * loop.lr_scale)
            task.on_epoch_begin(epoch)
            reporter.epoch_begin(epoch, task.steps_per_epoch(), lr)
            t0 = time.perf_counter()
            total_loss, total_tokens, n = 0.0, 0, 0
            for step, batch in enumerate(task.train_batches(epoch)):
                logs = model.train_on_batch(batch.x, batch.y, return_dict=True)
                loss = float(logs["loss"])
                if not math.isfinite(loss):
                    raise TrainingError(
                        f"loss became {loss} at epoch {epoch + 1}, step {step + 1}; the last good "
                        f"checkpoint is {last} (try a lower learning rate or --set clip_norm=...)"
                    )
                total_loss += loss * batch.tokens
                total_tokens += batch.tokens
                n += 1
                reporter.step(step, loss, batch.tokens)
            seconds = time.perf_counter() - t0
            metrics = {"epoch": epoch + 1, "lr": lr,
                       "train_loss": total_loss / max(total_tokens, 1),
                       "tokens_per_s": total_tokens / max(seconds, 1e-9),
                       "epoch_seconds": seconds}
            metrics.update(task.validate())
            value = metrics[task.monitor]
            improved = _improved(value, state.best, task.monitor_mode)
            state.improved_last = improved
            if improved:
                state.best = value
                state.bad_epochs = 0
            else:
                state.bad_epochs += 1
            state.epoch = epoch + 1
            state.history.append(metrics)
            stop = bool(loop.patience) and state.bad_epochs >= loop.patience
            state.finished = stop or state.epoch >= loop.epochs
            if improved:
                with atomic_directory(output / "model-best") as tmp:
                    task.write_bundle(tmp, metrics, state.history)
            with atomic_directory(last) as tmp:
                task.write_bundle(tmp, metrics, state.history)
                save_optimizer(model.optimizer, tmp / OPTIMIZER_FILE)
                (tmp / TRAINER_STATE).write_text(json.dumps(state.to_json(), indent=1))
            reporter.epoch_end(epoch, metrics)
            if stop:
                reporter.message(
                    f"early stop: no improvement of {task.monitor} for {loop.patience} epochs"
                )
                break
    finally:
        reporter.train_end()
    best = dict(max(state.history, key=lambda m: m[task.monitor] * (1 if task.monitor_mode == "max" else -1))
                ) if state.history else {}
    best["epochs_run"] = state.epoch
    best["train_seconds"] = time.perf_counter() - started
    return best


def set_seed(seed: int, deterministic: bool = True) -> None:
    """Seed Python, NumPy and the backend; make TensorFlow ops deterministic."""
    import keras

    keras.utils.set_random_seed(seed)
    if deterministic:
        with contextlib.suppress(Exception):
            import tensorflow as tf

            tf.config.experimental.enable_op_determinism()
