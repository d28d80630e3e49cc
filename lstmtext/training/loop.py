"""The training loop shared by every task.

A task supplies a compiled Keras model, its batches, a validation function and
a way to write its bundle (see :class:`TrainTask`). :func:`fit` runs epochs,
reports progress, keeps ``model-best`` and ``model-last`` bundles in the output
directory after every epoch, stops early, and resumes from ``model-last``
with the optimizer state, epoch, learning rate and early-stopping counters
intact.

Reliability (see docs/reliability.md): the first Ctrl-C or SIGTERM lets the
current step finish, writes ``model-last`` with the position inside the epoch
and raises :class:`~lstmtext.training.signals.TrainingInterrupted`; ``--resume``
then replays the epoch's batch order, skips the batches already trained on and
restores every variable (full precision, carried LSTM states, dropout seed
generators), the optimizer and the Python/NumPy random states, so the resumed
run ends with the metrics of an uninterrupted one. A failed save (disk full)
raises :class:`TrainingError` and leaves the previous checkpoint in place.

A wall-time budget (``LoopConfig.budget``, ``--budget``) plans the epochs
from the measured throughput and ends training in time, with ``model-best``
written, as a normal end; see :mod:`lstmtext.training.budget`.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import math
import os
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Protocol

import numpy as np

from lstmtext.errors import TrainingError, UsageError
from lstmtext.io import atomic_directory, recover_directory
from lstmtext.training.budget import LITE_RESERVE_SECONDS, BudgetPlanner, format_estimate
from lstmtext.training.reporting import LoggingReporter, Reporter
from lstmtext.training.schedule import epoch_learning_rate
from lstmtext.training.signals import GracefulInterrupt, TrainingInterrupted

TRAINER_STATE = "trainer.json"
OPTIMIZER_FILE = "optimizer.h5"
# Every model variable in full precision (weights.h5 may be float16) plus the
# state carried by stateful layers: what an exact resume needs besides weights.
VARIABLES_FILE = "variables.h5"


@dataclass
class Batch:
    """One training batch: model inputs, targets and the number of real tokens."""

    x: Any
    y: Any
    tokens: int
    lr_factor: float | None = None  # this batch's learning rate relative to the epoch's (None: 1, unchanged)


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
    budget: float | None = None  # wall-time budget in seconds (see lstmtext.training.budget)
    budget_started: float | None = None  # time.monotonic() when its clock started (None: when fit starts)


class TrainTask(Protocol):
    """What a task gives the loop."""

    model: Any
    monitor: str  # key of validate()'s dict used for best model / early stop
    monitor_mode: str  # "min" or "max"

    def train_batches(self, epoch: int) -> Iterator[Batch]:
        """The epoch's batches; the same sequence each time it is called for ``epoch``
        (shuffle with a generator seeded from the epoch, or from the global NumPy
        generator, whose state at the epoch's start the loop saves): an interrupted
        epoch is resumed by replaying it and skipping the batches already trained on."""

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
    # Position inside epoch ``epoch`` (0-based) when interrupted mid-epoch:
    # batches already trained on, and the running sums of that epoch.
    step: int = 0
    partial: dict = field(default_factory=dict)
    # Python and NumPy random states at the start of epoch ``epoch``: replaying
    # the epoch from there reproduces its data order.
    rng: dict | None = None
    interrupted: bool = False

    def to_json(self) -> dict:
        return self.__dict__.copy()

    @classmethod
    def from_json(cls, d: dict) -> "TrainerState":
        return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})


@contextlib.contextmanager
def _h5_writer(path: Path) -> Iterator[Any]:
    """An HDF5 file built in memory, then written by Python.

    A write failing inside HDF5 (disk full) can crash the process; written
    this way it is a plain OSError that the loop reports.
    """
    import io

    import h5py

    buffer = io.BytesIO()
    with h5py.File(buffer, "w") as f:
        yield f
    Path(path).write_bytes(buffer.getvalue())


def save_optimizer(optimizer, path: Path) -> None:
    """Save optimizer variables in order (their count and shapes are checked on load)."""
    with _h5_writer(path) as f:
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


def _rng_state() -> dict:
    """Python and NumPy global random states as JSON-able lists."""
    version, internal, gauss = random.getstate()
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    return {"python": [version, list(internal), gauss],
            "numpy": [kind, np.asarray(keys).tolist(), int(pos), int(has_gauss), float(cached)]}


def _set_rng_state(state: dict) -> None:
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))


def _stateful_variables(model) -> list:
    """Carried states of stateful layers (LSTM ``h``/``c``): not among ``model.variables``."""
    found, seen = [], set()

    def walk(layer):
        if id(layer) in seen:
            return
        seen.add(id(layer))
        if getattr(layer, "stateful", False) and getattr(layer, "states", None) is not None:
            found.extend(s for s in layer.states if hasattr(s, "assign"))
        for sub in getattr(layer, "layers", None) or []:
            walk(sub)

    walk(model)
    return found


def save_variables(model, path: Path) -> None:
    """Save all model variables (full precision) and carried states, in order."""
    with _h5_writer(path) as f:
        for group, variables in (("model", model.variables), ("states", _stateful_variables(model))):
            g = f.create_group(group)
            for i, v in enumerate(variables):
                g.create_dataset(f"{i:05d}", data=np.asarray(v))


def load_variables(path: Path) -> dict[str, list[np.ndarray]]:
    """Read a file written by :func:`save_variables`."""
    import h5py

    try:
        with h5py.File(path, "r") as f:
            return {group: [f[group][name][()] for name in sorted(f[group].keys())]
                    for group in ("model", "states")}
    except (OSError, KeyError) as exc:
        raise TrainingError(f"{path}: unreadable checkpoint ({exc})") from None


def assign_variables(model, arrays: dict[str, list[np.ndarray]], path: Path) -> None:
    """Assign arrays from :func:`load_variables`, checking count and shapes."""
    for group, variables in (("model", model.variables), ("states", _stateful_variables(model))):
        values = arrays[group]
        if len(values) != len(variables) or any(
                tuple(a.shape) != tuple(v.shape) for a, v in zip(values, variables)):
            raise TrainingError(
                f"{path}: checkpoint does not match this model (was the configuration changed "
                "since? resume with the same settings)")
        for a, v in zip(values, variables):
            v.assign(a)


@contextlib.contextmanager
def output_lock(output: Path) -> Iterator[None]:
    """Refuse a second training into the same output directory at once.

    A directory made here and left empty (the training stopped on bad input
    before writing anything) is removed again.
    """
    created = not output.exists()
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
        if created:
            with contextlib.suppress(OSError):
                output.rmdir()  # only when empty


def check_output(output: Path, resume: bool, overwrite: bool) -> None:
    """Protect an earlier training at ``output`` unless asked to resume or overwrite."""
    for name in ("model-best", "model-last"):
        recover_directory(output / name)  # a save killed between its two renames
    has_bundle = (output / "model-last").exists() or (output / "model-best").exists()
    if resume and not (output / "model-last" / TRAINER_STATE).is_file():
        raise UsageError(f"{output}: nothing to resume (no model-last checkpoint)")
    if has_bundle and not resume and not overwrite:
        raise UsageError(
            f"{output}: already holds a trained model; use --resume to continue it "
            "or --overwrite to replace it"
        )


def start_training(options, config_cls=None, task: str = ""):
    """The start every ``train`` command shares.

    Sets up the distribution strategy first (a multi-worker strategy must
    start before TensorFlow runs anything), then protects an earlier training
    in ``options.output`` (:func:`check_output`). With ``--resume`` and a
    ``config_cls``, the config stored in ``model-last`` comes back as the base
    that new ``--set`` values override.

    Returns:
        ``(distribution, base config or None)``.
    """
    from lstmtext import config as config_io
    from lstmtext.bundle import read
    from lstmtext.training import distribute

    if getattr(options, "init", None) and options.resume:
        raise UsageError("--init and --resume exclude each other (--resume continues OUTPUT/model-last)")
    extra = options.extra or {}
    dist = distribute.setup(extra.get("strategy") or "auto", extra.get("mixed_precision") or "off")
    output = Path(options.output)
    check_output(output, options.resume, options.overwrite)
    base = None
    if options.resume and config_cls is not None:
        base = config_io.from_dict(config_cls, read(output / "model-last", task).config)
    return dist, base


def _improved(value: float, best: float | None, mode: str) -> bool:
    if best is None:
        return True
    return value < best if mode == "min" else value > best


def _save_checkpoint(directory: Path, write) -> None:
    """Write a bundle atomically; turn a failed write into a clear error."""
    try:
        with atomic_directory(directory) as tmp:
            write(tmp)
    except OSError as exc:  # disk full, file too large, permission denied ...
        reason = exc.strerror or str(exc)
        raise TrainingError(
            f"could not write {directory} ({reason}); the previous checkpoint there, if any, is "
            "intact: free some space and resume with --resume"
        ) from None


def _restore(task: TrainTask, last: Path, reporter: Reporter) -> tuple[TrainerState, dict | None]:
    """Load weights, optimizer and trainer state from ``model-last``."""
    from lstmtext.weights import assign_model_weights, load_arrays

    model = task.model
    try:
        state = TrainerState.from_json(json.loads((last / TRAINER_STATE).read_text()))
    except (OSError, ValueError, TypeError) as exc:
        raise TrainingError(f"{last / TRAINER_STATE}: unreadable trainer state ({exc})") from None
    arrays = None
    if (last / VARIABLES_FILE).is_file():
        arrays = load_variables(last / VARIABLES_FILE)
        assign_variables(model, arrays, last / VARIABLES_FILE)
    else:  # a checkpoint written before variables.h5 existed
        assign_model_weights(model, load_arrays(last / "weights.h5"), str(last))
    load_optimizer(model.optimizer, model, last / OPTIMIZER_FILE)
    if state.rng is not None:
        _set_rng_state(state.rng)
    where = f"epoch {state.epoch + 1}, step {state.step}" if state.step else f"epoch {state.epoch}"
    reporter.message(f"resuming from {last} after {where}")
    return state, arrays


def fit(
    task: TrainTask,
    output: Path,
    loop: LoopConfig,
    reporter: Reporter | None = None,
    resume: bool = False,
) -> dict:
    """Train ``task`` and write ``output/model-best`` and ``output/model-last``.

    The first SIGINT/SIGTERM finishes the running step, writes ``model-last``
    and raises :class:`TrainingInterrupted`; ``resume=True`` continues from
    exactly that point. With ``loop.budget`` the epochs are planned to end
    within it (see :mod:`lstmtext.training.budget`): training stops before an
    epoch that would not fit, or after the step at which the budget runs out
    (``model-last`` then holds the position inside the epoch, as after a
    signal), and returns normally. ``task.train_batches(epoch)`` must yield the same
    batches each time it is called for an epoch, given the random state at
    the epoch's start (seed any shuffling from ``epoch`` or the global NumPy
    generator, which the loop saves and restores).

    Returns:
        The best epoch's metrics plus ``epochs_run`` and ``train_seconds``
        (and ``budget``: what the budget did, when there is one).

    Raises:
        TrainingInterrupted: after a signal, once the checkpoint is written.
        TrainingError: loss not finite, or a checkpoint could not be written.
        UsageError: the budget is shorter than one epoch (nothing written).
    """
    reporter = reporter or LoggingReporter()
    model = task.model
    state = TrainerState(lr=loop.lr)
    last = output / "model-last"
    saved = None
    if resume:
        state, saved = _restore(task, last, reporter)
        if state.epoch >= loop.epochs:
            reporter.message("training had already finished; raise --epochs to train further")
            return state.history[-1] if state.history else {}
    budget = _budget_planner(task, loop, reporter)
    reporter.train_begin(loop.epochs, state.epoch)
    started = time.perf_counter()
    guard = GracefulInterrupt()
    partial_best: dict = {}  # the first epoch's partial metrics when the budget ended it

    def write_last(tmp: Path, metrics: dict) -> None:
        task.write_bundle(tmp, metrics, state.history)
        save_optimizer(model.optimizer, tmp / OPTIMIZER_FILE)
        save_variables(model, tmp / VARIABLES_FILE)
        (tmp / TRAINER_STATE).write_text(json.dumps(state.to_json(), indent=1))

    def stop_now(epoch: int, step: int) -> TrainingInterrupted:
        at = f"epoch {epoch + 1}, step {step}" if step else f"the end of epoch {epoch}"
        text = (f"{guard.name}: training stopped at {at}; checkpoint saved in {last}. "
                "To continue, run the same command with --resume")
        return TrainingInterrupted(text, guard.signum)  # the command line prints it, once

    try:
        with guard:
            for epoch in range(state.epoch, loop.epochs):
                skip = state.step  # > 0: resuming inside this epoch
                if skip:
                    lr = state.lr  # decided when the epoch began
                else:
                    decay_start, decay = loop.lr_decay_start, loop.lr_decay
                    if budget is not None and loop.lr_schedule == "step":
                        decay_start, decay = budget.step_schedule(decay_start, decay)
                    lr = epoch_learning_rate(
                        loop.lr_schedule, loop.lr, epoch, decay, decay_start,
                        state.lr, plateau=not state.improved_last, min_lr=loop.min_lr,
                    ) if epoch > 0 or loop.lr_schedule != "plateau" else state.lr
                    state.lr = lr
                    state.rng = _rng_state()
                if state.rng is not None:
                    _set_rng_state(state.rng)  # the epoch replays from its start
                model.optimizer.learning_rate.assign(lr * loop.lr_scale)
                task.on_epoch_begin(epoch)
                reporter.epoch_begin(epoch, task.steps_per_epoch(), lr)
                if budget is not None:
                    budget.epoch_begin(epoch, task.steps_per_epoch(), skip)
                out_of_time = False
                sums = {"loss": 0.0, "tokens": 0, "seconds": 0.0}
                sums.update(state.partial if skip else {})
                t0 = time.perf_counter() - sums["seconds"]
                batches = iter(task.train_batches(epoch))
                if skip:
                    if sum(1 for _ in itertools.islice(batches, skip)) < skip:
                        raise TrainingError(
                            f"{last}: the checkpoint is at step {skip} of epoch {epoch + 1} but the "
                            "training data now has fewer batches; resume with the same data and settings")
                    if saved is not None:
                        # Carried LSTM states and seed generators as they were at the interruption.
                        assign_variables(model, saved, last / VARIABLES_FILE)
                for step, batch in enumerate(batches, start=skip):
                    if batch.lr_factor is not None:
                        model.optimizer.learning_rate.assign(lr * loop.lr_scale * batch.lr_factor)
                    logs = model.train_on_batch(batch.x, batch.y, return_dict=True)
                    loss = float(logs["loss"])
                    if not math.isfinite(loss):
                        raise TrainingError(
                            f"loss became {loss} at epoch {epoch + 1}, step {step + 1}; the last good "
                            f"checkpoint is {last} (try a lower learning rate or --set clip_norm=...)"
                        )
                    sums["loss"] += loss * batch.tokens
                    sums["tokens"] += batch.tokens
                    reporter.step(step, loss, batch.tokens)
                    if guard.requested:
                        sums["seconds"] = time.perf_counter() - t0
                        state.step, state.partial, state.interrupted = step + 1, dict(sums), True
                        partial = {"epoch": epoch + 1, "step": step + 1, "interrupted": True,
                                   "train_loss": sums["loss"] / max(sums["tokens"], 1)}
                        _save_checkpoint(last, lambda tmp: write_last(tmp, partial))
                        raise stop_now(epoch, step + 1)
                    if budget is not None and budget.step_done() == "deadline":
                        sums["seconds"] = time.perf_counter() - t0
                        state.step, state.partial, state.interrupted = step + 1, dict(sums), True
                        partial = {"epoch": epoch + 1, "step": step + 1, "interrupted": True, "lr": lr,
                                   "train_loss": sums["loss"] / max(sums["tokens"], 1)}
                        if state.best is None:
                            # No finished epoch to fall back on: the partly trained
                            # model is validated and kept as model-best.
                            partial.update(task.validate())
                            state.best = partial[task.monitor]
                            partial_best = partial
                            _save_checkpoint(output / "model-best",
                                             lambda tmp: task.write_bundle(tmp, partial, [partial]))
                        _save_checkpoint(last, lambda tmp: write_last(tmp, partial))
                        out_of_time = True
                        break
                if out_of_time:
                    reporter.message(_deadline_message(budget, epoch, step + 1, task.steps_per_epoch(),
                                                       state, task, output, bool(partial_best)))
                    break
                seconds = time.perf_counter() - t0
                total_loss, total_tokens = sums["loss"], sums["tokens"]
                metrics = {"epoch": epoch + 1, "lr": lr,
                           "train_loss": total_loss / max(total_tokens, 1),
                           "tokens_per_s": total_tokens / max(seconds, 1e-9),
                           "epoch_seconds": seconds}
                t_valid = time.perf_counter()
                metrics.update(task.validate())
                valid_seconds = time.perf_counter() - t_valid
                value = metrics[task.monitor]
                improved = _improved(value, state.best, task.monitor_mode)
                state.improved_last = improved
                if improved:
                    state.best = value
                    state.bad_epochs = 0
                else:
                    state.bad_epochs += 1
                state.epoch = epoch + 1
                state.step, state.partial, state.interrupted = 0, {}, False
                state.rng = _rng_state()  # the next epoch starts from here
                state.history.append(metrics)
                stop = bool(loop.patience) and state.bad_epochs >= loop.patience
                state.finished = stop or state.epoch >= loop.epochs
                t_save = time.perf_counter()
                if improved:
                    _save_checkpoint(output / "model-best",
                                     lambda tmp: task.write_bundle(tmp, metrics, state.history))
                t_last = time.perf_counter()
                _save_checkpoint(last, lambda tmp: write_last(tmp, metrics))
                t_saved = time.perf_counter()
                reporter.epoch_end(epoch, metrics)
                if stop:
                    reporter.message(
                        f"early stop: no improvement of {task.monitor} for {loop.patience} epochs"
                    )
                    break
                if guard.requested and not state.finished:
                    raise stop_now(state.epoch, 0)
                if budget is not None and not state.finished and not budget.epoch_end(
                        epoch, seconds, valid_seconds, t_saved - t_save, t_saved - t_last):
                    reporter.message(_plan_stop_message(budget, state, task, output))
                    break
    finally:
        reporter.train_end()
    _write_lite_parts(output / "model-best", reporter)
    best = dict(max(state.history, key=lambda m: m[task.monitor] * (1 if task.monitor_mode == "max" else -1))
                ) if state.history else dict(partial_best)
    best["epochs_run"] = state.epoch
    best["train_seconds"] = time.perf_counter() - started
    if budget is not None:
        best["budget"] = budget.summary()
    return best


def _budget_planner(task: TrainTask, loop: LoopConfig, reporter: Reporter) -> BudgetPlanner | None:
    """The planner for ``loop.budget``, or ``None`` without a budget."""
    if not loop.budget:
        return None
    if getattr(getattr(task, "dist", None), "name", "") == "multiworker":
        # Each worker would time itself and could plan another number of
        # epochs; the workers' collective steps would then wait forever.
        raise UsageError("--budget cannot be used with --strategy multiworker (give --epochs instead)")
    lite = os.environ.get("LSTMTEXT_LITE_PARTS", "1") != "0"
    return BudgetPlanner(loop.budget, loop.budget_started or time.monotonic(), loop.epochs, reporter,
                         reserve=LITE_RESERVE_SECONDS if lite else 0.0)


def _best_epoch(state: TrainerState, task: TrainTask) -> int | None:
    if not state.history:
        return None
    sign = 1 if task.monitor_mode == "max" else -1
    return max(state.history, key=lambda m: m[task.monitor] * sign)["epoch"]


def _plan_stop_message(budget: BudgetPlanner, state: TrainerState, task: TrainTask, output: Path) -> str:
    left = max(budget.deadline - time.monotonic(), 0.0)
    return (f"{budget.label}: stopped after epoch {state.epoch} (another takes ~"
            f"{format_estimate(budget.epoch_seconds or 0.0)}, {format_estimate(left)} left); best model "
            f"(epoch {_best_epoch(state, task)}) in {output / 'model-best'}")


def _deadline_message(budget: BudgetPlanner, epoch: int, step: int, steps: int | None, state: TrainerState,
                      task: TrainTask, output: Path, partial_best: bool) -> str:
    of = f" of {steps}" if steps else ""
    best = ("the partly trained model, validated, is model-best" if partial_best
            else f"model-best is epoch {_best_epoch(state, task)}'s")
    return (f"{budget.label} reached at epoch {epoch + 1}, step {step}{of}: stopped; {best}; "
            f"--resume continues from {output / 'model-last'}")


def _write_lite_parts(bundle: Path, reporter: Reporter) -> None:
    """Build the best model's LiteRT parts (fast start for predict; see :mod:`lstmtext.lite`).

    Skipped when ``LSTMTEXT_LITE_PARTS=0`` (the test suite's tiny models) or
    without a best model. A conversion failure costs the parts, not the
    training: the NumPy runtime still serves the bundle.
    """
    if os.environ.get("LSTMTEXT_LITE_PARTS", "1") == "0" or not (bundle / "config.json").is_file():
        return
    try:
        from lstmtext.lite.convert import write_parts  # needs TensorFlow: absent on a JAX-only machine

        manifest = write_parts(bundle)
    except Exception as exc:  # noqa: BLE001 -- report and keep the trained model
        reporter.message(f"note: LiteRT parts not written ({str(exc).splitlines()[0][:200]}); "
                         f"build them later with: lstmtext export {bundle} --format litert --output NEW")
        return
    size = sum(f["bytes"] for f in manifest["files"].values())
    reporter.message(f"wrote LiteRT parts ({manifest['quantize']}, {size / 1e6:.1f} MB) in {bundle}/lite")


def set_seed(seed: int, deterministic: bool = True) -> None:
    """Seed Python, NumPy and the backend; make TensorFlow ops deterministic."""
    import keras

    keras.utils.set_random_seed(seed)
    if deterministic:
        with contextlib.suppress(Exception):
            import tensorflow as tf

            tf.config.experimental.enable_op_determinism()
