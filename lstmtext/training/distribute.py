"""Training on several devices or machines with ``tf.distribute``, and mixed precision.

A task adopts this in a few lines::

    dist = distribute.setup(options.extra.get("strategy", "auto"),
                            options.extra.get("mixed_precision", "off"))
    with dist.scope():                        # variables mirrored, dtype policy set
        model = build(config, batch_size=dist.per_replica_batch(config.batch_size))
        compile(model, config)
    dist.prepare(model)                       # after compile
    ...
    x, y = dist.local_batch(x, y)             # each global batch -> this worker's replicas
    yield Batch(x, y, tokens)
    ...
    with dist.output(output, resume) as out, dist.failures(out):
        loop.fit(task, out, ...)

Every worker builds the same *global* batch (same data, same seed) and
:meth:`Distribution.local_batch` keeps this worker's rows, split into one part
per local replica. So the global batch is what the config says, each replica
gets ``global / replicas`` rows, and every worker runs the same number of steps
(collective ops need that). Only the chief writes into ``--output``; other
workers write their (identical) checkpoints into a temporary directory that is
deleted at the end.

``tf.distribute`` exists only on the TensorFlow backend; asking for a
distributed strategy under another backend is a :class:`UsageError`.
Mixed precision is a Keras dtype policy, not tied to ``tf.distribute``.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from lstmtext.errors import ConfigError, TrainingError, UsageError

STRATEGIES = ("auto", "one", "mirrored", "multiworker")
PRECISIONS = ("off", "float16", "bfloat16")
# Seconds a collective op (gradient all-reduce) waits for the other workers
# before failing: how long the survivors hang when a worker dies. It must
# exceed the chief's pause to validate and write a checkpoint each epoch.
TIMEOUT_ENV = "LSTMTEXT_WORKER_TIMEOUT"
DEFAULT_TIMEOUT_S = 600.0

# tf.distribute allows one multi-worker strategy per process (it configures the
# runtime's collective ops), so a second setup() in the same process reuses it.
_STRATEGY_CACHE: dict[tuple, Any] = {}


def _backend() -> str:
    import keras

    return keras.backend.backend()


@dataclass
class WorkerInfo:
    """This process's place in a ``TF_CONFIG`` cluster."""

    index: int  # 0 .. count-1; the chief is 0
    count: int
    is_chief: bool
    task: str  # e.g. "worker:1"


def parse_tf_config(text: str | None) -> WorkerInfo:
    """Read ``TF_CONFIG`` (cluster and task) and check it.

    The chief is the ``chief`` task if the cluster has one, else ``worker`` 0
    (the ``tf.distribute`` convention).

    Raises:
        UsageError: ``TF_CONFIG`` is missing, not JSON, or inconsistent.
    """
    if not text:
        raise UsageError(
            "--strategy multiworker needs the TF_CONFIG environment variable, e.g. "
            '{"cluster": {"worker": ["host1:12345", "host2:12345"]}, "task": {"type": "worker", "index": 0}}'
        )
    try:
        conf = json.loads(text)
        cluster, task = conf["cluster"], conf["task"]
        kind, index = str(task["type"]), int(task["index"])
    except (ValueError, KeyError, TypeError) as exc:
        raise UsageError(f"TF_CONFIG is not valid ({exc.__class__.__name__}: {exc}); it needs "
                         '"cluster" and "task": {"type", "index"}') from None
    chiefs = list(cluster.get("chief", []))
    workers = list(cluster.get("worker", []))
    if len(chiefs) > 1:
        raise UsageError("TF_CONFIG: at most one chief")
    members = {"chief": chiefs, "worker": workers}
    if kind not in members or not 0 <= index < len(members[kind]):
        raise UsageError(f"TF_CONFIG: task {kind}:{index} is not in the cluster "
                         f"({len(chiefs)} chief, {len(workers)} workers)")
    order = index + (len(chiefs) if kind == "worker" else 0)
    return WorkerInfo(index=order, count=len(chiefs) + len(workers), is_chief=order == 0,
                      task=f"{kind}:{index}")


@dataclass
class Distribution:
    """The strategy a training runs under and this process's place in it.

    Attributes:
        name: ``one``, ``mirrored`` or ``multiworker`` (``auto`` resolved).
        strategy: The ``tf.distribute.Strategy``, or None for plain Keras
            (the ``one`` strategy, and any non-TensorFlow backend).
        worker: This worker's index, the worker count and whether it is chief.
        replicas: Model replicas in sync over all workers.
        mixed_precision: ``off``, ``float16`` or ``bfloat16``.
    """

    name: str = "one"
    strategy: Any = None
    worker: WorkerInfo = field(default_factory=lambda: WorkerInfo(0, 1, True, "local"))
    replicas: int = 1
    mixed_precision: str = "off"
    _model: Any = field(default=None, repr=False)

    # ------------------------------------------------------------ who am I
    @property
    def is_chief(self) -> bool:
        """True for the one process that writes the output."""
        return self.worker.is_chief

    @property
    def worker_index(self) -> int:
        return self.worker.index

    @property
    def num_workers(self) -> int:
        return self.worker.count

    @property
    def local_replicas(self) -> int:
        """Replicas (devices) on this worker."""
        return self.replicas // self.worker.count

    @property
    def distributed(self) -> bool:
        return self.replicas > 1

    def describe(self) -> dict:
        """Settings to record in a bundle's metadata."""
        return {"strategy": self.name, "workers": self.num_workers, "replicas": self.replicas,
                "mixed_precision": self.mixed_precision}

    # ------------------------------------------------------------ building
    @contextlib.contextmanager
    def scope(self) -> Iterator[None]:
        """Build and compile the model in here.

        Variables become mirrored over the replicas, and layers take the
        mixed-precision policy (float16/bfloat16 compute, float32 variables).
        Layers that must stay float32 (logits, softmax, CRF) pass
        ``dtype="float32"`` themselves.
        """
        import keras

        previous = keras.config.dtype_policy()
        if self.mixed_precision != "off":
            keras.config.set_dtype_policy(f"mixed_{self.mixed_precision}")
        try:
            with (self.strategy.scope() if self.strategy is not None else contextlib.nullcontext()):
                yield
        finally:
            keras.config.set_dtype_policy(previous)

    def per_replica_batch(self, global_batch: int, key: str = "batch_size") -> int:
        """``global_batch / replicas``; the global batch must divide evenly."""
        if global_batch % self.replicas:
            raise ConfigError(f"{global_batch} does not divide over {self.replicas} replicas "
                              f"({self.num_workers} workers); use a multiple of {self.replicas}", key)
        return global_batch // self.replicas

    def prepare(self, model) -> None:
        """Ready a compiled model for ``train_on_batch`` under the strategy; call once after ``compile``.

        Keras clips each replica's gradient before summing them over replicas,
        so with clipping active N replicas would not train like one device
        with the same global batch: here clipping moves after the all-reduce,
        where it sees the global gradient. Under ``multiworker`` the step's
        logs are made reducible over workers (see :func:`_vector_logs`).
        """
        self._model = model
        if self.distributed:
            _check_loss_reduction(model, self.replicas)
        if self.name == "multiworker":
            _vector_logs(model)
        if not self.distributed or model.optimizer is None:
            return
        _clip_after_all_reduce(model.optimizer)

    # ------------------------------------------------------------ data
    def local_batch(self, x, y=None):
        """This worker's share of a global batch, one part per local replica.

        Args:
            x: Model inputs: a numpy array or a nest (tuple, list, dict) of
                arrays whose first axis is the global batch.
            y: Targets, the same way (or None).

        Every worker must pass the same global batch.

        Returns:
            ``(x, y)`` unchanged on one replica; otherwise this worker's rows,
            as per-replica values when the worker has several devices.
        """
        if not self.distributed:
            return x, y
        import keras

        rows = int(keras.tree.flatten(x)[0].shape[0])
        if rows < self.replicas:
            raise TrainingError(f"a batch of {rows} rows cannot be split over {self.replicas} replicas; "
                                "drop batches smaller than the replica count")
        # Contiguous rows, as even as possible: replica r of the cluster takes
        # part r (stateful streams need the same rows on the same replica).
        bounds = np.linspace(0, rows, self.replicas + 1).round().astype(int)
        first_replica = self.worker_index * self.local_replicas

        def part(r):
            return keras.tree.map_structure(lambda a: a[bounds[r]:bounds[r + 1]], (x, y))

        if self.local_replicas == 1:
            return part(first_replica)
        self._build_for_per_replica_values(part(first_replica))
        local = self.local_replicas
        values = self.strategy.experimental_distribute_values_from_function(
            lambda ctx: part(first_replica + ctx.replica_id_in_sync_group % local))
        return values

    def _build_for_per_replica_values(self, sample) -> None:
        # train_on_batch builds the compiled loss and metrics from the first
        # batch's shapes, which per-replica values lack: build them from one
        # replica's part instead (once).
        model = self._model
        if model is None or getattr(model, "_lstmtext_built_for_replicas", False):
            return
        if not hasattr(model, "_symbolic_build"):
            raise TrainingError("this Keras version cannot take per-replica batches; "
                                "use one device per worker")
        with self.strategy.scope():
            model._symbolic_build(data_batch=(*sample, None))
        model._lstmtext_built_for_replicas = True

    def shard(self, items: list) -> list:
        """Every ``num_workers``-th item, starting at this worker's index.

        For work that needs no collective ops and can be split by item
        (e.g. preprocessing). Batches for training use :meth:`local_batch`.
        """
        return items[self.worker_index::self.num_workers]

    def check_same(self, what: str, values) -> None:
        """Stop unless every worker holds the same ``values`` (e.g. data and vocabulary).

        Workers each read their own copy of the data and build their own
        tokenizer; if these differ the gradients mix different things.
        Cheap: one all-gather of an 8-byte digest.

        Raises:
            UsageError: Some worker's ``values`` differ from the chief's.
        """
        if self.name != "multiworker":
            return
        import hashlib

        import tensorflow as tf

        digest = hashlib.sha256()
        for value in values if isinstance(values, (list, tuple)) else [values]:
            if isinstance(value, np.ndarray):
                digest.update(str(value.dtype).encode() + str(value.shape).encode())
                digest.update(np.ascontiguousarray(value).tobytes())
            else:
                digest.update(json.dumps(value, sort_keys=True, default=str).encode())
        # Bytes as small floats: exact in float32, which every collective supports.
        mine = np.frombuffer(digest.digest()[:8], np.uint8).astype(np.float32)[None]
        strategy = self.strategy

        @tf.function(autograph=False)
        def gather():
            return strategy.gather(strategy.run(tf.constant, args=(mine,)), axis=0)

        gathered = gather().numpy()
        if not (gathered == mine).all():
            raise UsageError(f"{self.worker.task}: the workers do not have the same {what}; give every "
                             "worker identical files (and a shared --tokenizer for subword tokenizers)")

    # ------------------------------------------------------------ output
    @contextlib.contextmanager
    def output(self, output: Path, resume: bool = False) -> Iterator[Path]:
        """The directory this worker writes checkpoints into.

        The chief gets ``output``. Other workers get a temporary directory,
        deleted on exit, so they write nothing into ``output``; on ``resume``
        it starts as a copy of ``output/model-last``, which must therefore be
        readable on every machine (a shared filesystem, or copy it there).
        """
        output = Path(output)
        if self.is_chief:
            yield output
            return
        tmp = Path(tempfile.mkdtemp(prefix=f"lstmtext-worker{self.worker_index}-"))
        try:
            out = tmp / "output"
            out.mkdir()
            if resume:
                last = output / "model-last"
                if not last.is_dir():
                    raise UsageError(f"{self.worker.task}: --resume needs the chief's {last} on this "
                                     "machine too (a shared filesystem, or copy it here)")
                shutil.copytree(last, out / "model-last")
            yield out
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    @contextlib.contextmanager
    def failures(self, checkpoint_dir: Path | None = None) -> Iterator[None]:
        """Turn a lost worker (a failed or timed-out collective) into a TrainingError."""
        if self.name != "multiworker":
            yield
            return
        import tensorflow as tf

        lost = (tf.errors.UnavailableError, tf.errors.DeadlineExceededError, tf.errors.CancelledError,
                tf.errors.AbortedError)
        try:
            yield
        except tf.errors.OpError as exc:
            first = _reason(exc)
            if not isinstance(exc, lost) and not any(
                    k in first.lower() for k in ("collective", "unhealthy", "heartbeat")):
                raise  # a real error of this worker, not a lost peer
            where = f" from {Path(checkpoint_dir) / 'model-last'}" if checkpoint_dir else ""
            raise TrainingError(
                f"{self.worker.task}: lost contact with another worker ({first}); "
                f"restart every worker with --resume to continue{where}"
            ) from None


def _reason(exc: Exception) -> str:
    """The informative line of a TensorFlow runtime error (not its graph-node stack)."""
    import re

    text = re.sub(r"\{\{[^}]*\}\}", "", str(getattr(exc, "message", exc)))
    lines = [line.strip() for line in text.splitlines()]
    lines = [line for line in lines if line and not line.startswith(("File ", "[[", "Detected at node"))
             and not line.endswith(("defined at (most recent call last):", "Graph execution error:"))]
    keys = ("abort", "unavailable", "unhealthy", "timed out", "timeout", "deadline", "heartbeat", "connect",
            "peer")
    for i, line in enumerate(lines):
        if any(k in line.lower() for k in keys):
            if line.endswith(":") and i + 1 < len(lines):  # e.g. "tasks are unhealthy ...:" then the task
                line = f"{line} {lines[i + 1]}"
            return line[:300]
    return (lines or [exc.__class__.__name__])[0][:300]


def _check_loss_reduction(model, replicas: int) -> None:
    """Refuse losses that Keras would not divide over the replicas.

    Keras scales a loss by ``1 / replicas`` only for mean reductions
    (``sum_over_batch_size``); with ``reduction="sum"`` the gradients of N
    replicas add up to N times the one-device gradient, silently.
    """
    import keras

    losses = model.loss if isinstance(model.loss, (list, tuple)) else (
        list(model.loss.values()) if isinstance(model.loss, dict) else [model.loss])
    for loss in losses:
        if isinstance(loss, keras.losses.Loss) and loss.reduction == "sum":
            raise TrainingError(
                f"loss '{loss.name}' uses reduction='sum', which Keras does not divide over the "
                f"{replicas} replicas; return per-element values whose mean is the loss and "
                "use reduction='sum_over_batch_size'")


def _vector_logs(model) -> None:
    """Let Keras average per-replica losses and metrics over workers.

    Under the multi-worker strategy Keras (3.15) reduces each log value with
    ``strategy.reduce("MEAN", value, axis=0)``, which fails for the scalars a
    train step returns. As length-1 vectors they reduce to the mean over all
    replicas, and ``train_on_batch`` still returns plain floats.
    """
    from keras import ops, tree

    for name in ("train_step", "test_step"):
        step = getattr(model, name)

        def vector_step(data, step=step):
            return tree.map_structure(lambda t: ops.reshape(t, (1,)), step(data))

        setattr(model, name, vector_step)


def _clip_after_all_reduce(optimizer) -> None:
    """Move gradient clipping after the cross-replica gradient sum (TensorFlow optimizers).

    The optimizer's own clipping code runs on the summed gradient, so norms
    and sparse (embedding) gradients are treated exactly as on one device.
    """
    inner = getattr(optimizer, "inner_optimizer", optimizer)  # under a LossScaleOptimizer
    if not (inner.global_clipnorm or inner.clipnorm or inner.clipvalue):
        return
    if getattr(inner, "_lstmtext_clip_after_all_reduce", False):
        return
    if not hasattr(inner, "_all_reduce_sum_gradients") or not hasattr(inner, "_clip_gradients"):
        raise TrainingError("this Keras version's optimizer cannot clip the all-reduced gradient; "
                            "train on one replica or set clip_norm=0")
    all_reduce = inner._all_reduce_sum_gradients
    clip = type(inner)._clip_gradients.__get__(inner)  # the class's own, one-device clipping

    def reduce_then_clip(grads_and_vars):
        reduced = list(all_reduce(grads_and_vars))
        grads = clip([g for g, _ in reduced])
        return list(zip(grads, [v for _, v in reduced]))

    # Instance attributes shadow the class methods: the per-replica clip
    # becomes a no-op and the all-reduce clips the summed gradient.
    inner._clip_gradients = lambda grads: grads
    inner._all_reduce_sum_gradients = reduce_then_clip
    inner._lstmtext_clip_after_all_reduce = True


def _timeout_s() -> float:
    value = os.environ.get(TIMEOUT_ENV)
    if value is None:
        return DEFAULT_TIMEOUT_S
    try:
        timeout = float(value)
    except ValueError:
        raise UsageError(f"{TIMEOUT_ENV} must be a number of seconds, got {value!r}") from None
    if timeout <= 0:
        raise UsageError(f"{TIMEOUT_ENV} must be positive, got {value!r}")
    return timeout


def _make_strategy(name: str):
    import tensorflow as tf

    key = (name, _timeout_s() if name == "multiworker" else None)
    if key in _STRATEGY_CACHE:
        return _STRATEGY_CACHE[key]
    if name == "mirrored":
        strategy = tf.distribute.MirroredStrategy()
    else:
        options = tf.distribute.experimental.CommunicationOptions(timeout_seconds=key[1])
        try:
            strategy = tf.distribute.MultiWorkerMirroredStrategy(communication_options=options)
        except (RuntimeError, ValueError) as exc:
            raise UsageError(f"cannot start the multi-worker strategy ({exc}); it must be set up "
                             "before TensorFlow runs anything in this process") from None
    _STRATEGY_CACHE[key] = strategy
    return strategy


def setup(strategy: str = "auto", mixed_precision: str = "off") -> Distribution:
    """Resolve ``--strategy`` and ``--mixed-precision`` into a :class:`Distribution`.

    Call it before anything else runs TensorFlow ops in the process (the
    multi-worker strategy configures the runtime when it starts).

    Args:
        strategy: ``auto`` (mirrored over this machine's GPUs when it has
            more than one, else one device), ``one`` (plain Keras, no
            ``tf.distribute``), ``mirrored`` (every local GPU, or the CPU) or
            ``multiworker`` (the machines listed in ``TF_CONFIG``).
        mixed_precision: ``off``, ``float16`` or ``bfloat16`` compute with
            float32 variables.

    Raises:
        UsageError: An unknown value, a distributed strategy on a backend
            other than TensorFlow, or a bad ``TF_CONFIG``.
    """
    if strategy not in STRATEGIES:
        raise UsageError(f"--strategy must be one of {', '.join(STRATEGIES)}, got {strategy!r}")
    if mixed_precision not in PRECISIONS:
        raise UsageError(f"--mixed-precision must be one of {', '.join(PRECISIONS)}, got {mixed_precision!r}")
    backend = _backend()
    if backend != "tensorflow":
        if strategy in ("mirrored", "multiworker"):
            raise UsageError(f"--strategy {strategy} uses tf.distribute and needs the TensorFlow backend "
                             f"(KERAS_BACKEND is {backend}); use --strategy one")
        return Distribution(name="one", mixed_precision=mixed_precision)
    if strategy == "auto":
        import tensorflow as tf

        strategy = "mirrored" if len(tf.config.list_physical_devices("GPU")) > 1 else "one"
    if strategy == "one":
        return Distribution(name="one", mixed_precision=mixed_precision)
    worker = WorkerInfo(0, 1, True, "local")
    if strategy == "multiworker":
        worker = parse_tf_config(os.environ.get("TF_CONFIG"))
    tf_strategy = _make_strategy(strategy)
    replicas = int(tf_strategy.num_replicas_in_sync)
    if replicas % worker.count:
        raise UsageError(f"{replicas} replicas over {worker.count} workers: every worker needs the same "
                         "number of devices")
    return Distribution(name=strategy, strategy=tf_strategy, worker=worker, replicas=replicas,
                        mixed_precision=mixed_precision)


# ------------------------------------------------------------------ losses
def replica_sum(value):
    """``value`` summed over the replicas of a ``tf.distribute`` training step; itself elsewhere."""
    import keras

    if keras.backend.backend() != "tensorflow":
        return value
    import tensorflow as tf

    context = tf.distribute.get_replica_context()  # None while building, outside a step
    if context is None or context.num_replicas_in_sync == 1:
        return value
    return context.all_reduce(tf.distribute.ReduceOp.SUM, value)


def mean_over_real(values, real):
    """Scale per-element losses so Keras' ``sum_over_batch_size`` mean is their mean over the real elements.

    Keras divides a loss's sum by its element count on each replica, and
    the replicas' shares (equal parts of the global batch) add up. Scaled
    here by ``elements / real elements`` of the whole global batch (summed
    over the replicas), the result is the mean over the batch's real
    elements: N replicas train exactly like one device with the global
    batch, and padding (``real`` 0) changes nothing.

    Args:
        values: Per-element losses (float32).
        real: 1.0 for real elements, 0.0 for padding; the shape of ``values``.
    """
    from keras import ops

    real = ops.cast(real, "float32")
    counts = replica_sum(ops.stack([ops.cast(ops.size(real), "float32"), ops.sum(real)]))
    return values * real * ops.stop_gradient(counts[0] / ops.maximum(counts[1], 1.0))
