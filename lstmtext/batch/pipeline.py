"""Batch inference with Ray Data: ``python -m lstmtext.batch`` and :func:`run`.

The driver checks everything a worker would meet first (options, the
bundle, one prediction), plans the inputs into chunks (:mod:`.files`), and
runs one Ray Data ``map_batches`` stage over them with a pool of
:class:`ShardWorker` actors. Each actor is one worker process: it loads the
bundle once, on the LiteRT or NumPy runtime, and then predicts one chunk
per call and writes that chunk's shard; only small summaries come back to
the driver. Nothing here imports TensorFlow.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from lstmtext.batch import files
from lstmtext.batch.predictor import MAX_CHARS, Predictor, Result, with_key
from lstmtext.errors import LstmtextError, UsageError
from lstmtext.tasks import PredictOptions



@dataclass
class BatchOptions:
    """What :func:`run` does besides predicting.

    Attributes:
        inputs: File patterns (globs).
        output: Output prefix (``PREFIX-00000-00000.jsonl`` ...).
        predict: ``lstmtext predict``'s options (format, top_k, beam, runtime, extra ...).
        workers: Worker processes (actors); default: the cluster's CPUs.
        chunk_size: Records a chunk (and an output shard); default: ``predict``'s window for the task
            (its batches, so its results exactly).
        max_chars: Longer lines are dead letters.
        overwrite: Replace the outputs of an earlier run with the same prefix.
        address: A Ray cluster to run on (``auto``, ``ray://host:10001``); default: a local one.
        init: More ``ray.init`` keyword arguments (``runtime_env``, ``num_cpus`` ...).
    """

    inputs: list[str]
    output: str
    predict: PredictOptions = field(default_factory=PredictOptions)
    workers: int | None = None
    chunk_size: int | None = None
    max_chars: int = MAX_CHARS
    overwrite: bool = False
    address: str | None = None
    init: dict = field(default_factory=dict)


class ShardWorker:
    """A Ray Data actor: the bundle loaded once per worker process, one chunk predicted and written per row.

    Args:
        model: The bundle (a path every worker can read, or an installed model's name).
        predict: ``PredictOptions`` as a dict (options travel to the workers as plain data).
        output: The output prefix.
        max_chars: Longer lines are dead letters.
    """

    def __init__(self, model: str, predict: dict, output: str, max_chars: int = MAX_CHARS):
        self.predictor = Predictor(model, PredictOptions(**predict), max_chars)
        self.output = output
        self.encoding = predict.get("encoding", "utf-8")

    def __call__(self, batch: dict) -> dict:
        import resource

        import numpy as np

        names = [f.name for f in fields(files.Chunk)]
        rows = len(batch[names[0]])
        out: dict[str, list] = {}
        for i in range(rows):
            chunk = files.Chunk(**{k: (batch[k][i].item() if isinstance(batch[k][i], np.generic) else batch[k][i])
                                   for k in names})
            t0 = time.perf_counter()
            summary = self.process(chunk)
            summary.update(seconds=time.perf_counter() - t0, pid=os.getpid(),
                           peak_rss_kb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                           tensorflow="tensorflow" in sys.modules)
            for key, value in summary.items():
                out.setdefault(key, []).append(value)
        return out

    def process(self, chunk: files.Chunk) -> dict:
        """Predict one chunk and write its shard (and dead letters); return its counts."""
        results = self.predictor.run(files.read(chunk, self.encoding), chunk.input_format, chunk.file)
        return write_shard(self.output, chunk, self.predictor.output_format(chunk.input_format), results)


def write_shard(output: str, chunk: files.Chunk, fmt: str, results: list[Result]) -> dict:
    """Write a chunk's results (in input order) as its shard and dead letters; return its counts.

    Every engine writes its outputs through here, so Ray's and Beam's shards are the same files.
    """
    import json

    lines, dead = [], []
    for r in results:
        if r.error is not None:
            dead.append(r)
        elif r.json:
            lines += [with_key(o, chunk.file, r.line) for o in r.outputs]
        else:
            lines += r.outputs
    shard = files.shard_name(output, chunk, fmt)
    files.write_lines(shard, lines)
    dead_path = files.dead_name(output, chunk) if dead else ""
    if dead:
        files.write_lines(dead_path, [json.dumps({"file": chunk.file, "line": r.line, "reason": r.error},
                                                 ensure_ascii=False) for r in dead])
    return {"file": chunk.file, "file_index": chunk.file_index, "index": chunk.index,
            "first_line": chunk.first_line, "lines": chunk.lines, "records": len(results),
            "outputs": len(lines), "dead": len(dead), "shard": shard, "dead_letters": dead_path}


def _start_ray(options: BatchOptions):
    """``ray.init`` unless a Ray session is already up; quiet Ray Data's progress output."""
    try:
        import ray
        import ray.data
    except ImportError:
        raise UsageError("batch inference needs Ray Data: pip install 'lstmtext[ray]'") from None
    started = False
    if not ray.is_initialized():
        # Workers' output stays in Ray's session logs: a failing worker is reported in one line.
        kwargs = {"include_dashboard": False, "logging_level": logging.WARNING, "log_to_driver": False,
                  **options.init}
        if options.address:
            kwargs["address"] = options.address
        ray.init(**kwargs)
        started = True
    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False
    ctx.enable_operator_progress_bars = False
    ctx.enable_auto_log_stats = False
    ctx.verbose_stats_logs = False
    ctx.print_on_execution_start = False
    ctx.wait_for_min_actors_s = 600
    ctx.raise_original_map_exception = True  # a worker's LstmtextError reaches the driver as itself
    logging.getLogger("ray.data").setLevel(logging.CRITICAL)  # its errors are re-raised in one line
    return ray, started


def _worker_error(exc: BaseException) -> BaseException | None:
    """The worker's own exception behind a Ray exception (``RayTaskError.cause``), if Ray kept it."""
    seen = set()
    stack = [exc]
    while stack:
        e = stack.pop()
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        cause = getattr(e, "cause", None)
        if isinstance(cause, BaseException):
            stack.append(cause)
        elif isinstance(e, (LstmtextError, OSError)):
            return e
        stack += [e.__cause__, e.__context__]
    return None


def run(model: str | Path, options: BatchOptions) -> dict:
    """Predict every line of the input files on a Ray cluster (a local one by default).

    Before any worker starts, the driver loads the bundle on the runtime the
    workers will use and predicts one line, so a corrupt or mismatched
    bundle stops the run with one error and writes nothing.

    Returns:
        Counts (``files``, ``lines``, ``outputs``, ``dead``, ``shards``), the
        ``format``, ``workers``, ``seconds`` (``ray_start_s`` of them starting Ray), ``lines_per_s``, each worker's
        peak memory (``worker_peak_rss_mb``, by process id), whether any
        worker imported TensorFlow, and the ``manifest`` path.
    """
    t0 = time.perf_counter()
    opts = options.predict
    plan = prepare(model, options)
    model_path, chunks = plan.model_path, plan.chunks
    t_ray = time.perf_counter()
    ray, started = _start_ray(options)
    ray_start = time.perf_counter() - t_ray
    try:
        workers = options.workers or max(1, int(ray.cluster_resources().get("CPU", 1)))
        workers = min(workers, len(chunks))
        ds = ray.data.from_items([asdict(c) for c in chunks], override_num_blocks=len(chunks))
        # A fixed pool; at most two chunks queued per worker, and work starts when every worker has
        # loaded the model, so chunks spread over all of them from the first.
        pool = ray.data.ActorPoolStrategy(size=workers, max_tasks_in_flight_per_actor=2)
        rows = ds.map_batches(ShardWorker, batch_size=1, compute=pool, num_cpus=1,
                              fn_constructor_kwargs={"model": model_path, "predict": asdict(opts),
                                                     "output": options.output,
                                                     "max_chars": options.max_chars}).take_all()
    except Exception as exc:  # a worker failed: say why in one line (Ray's logs keep the traceback)
        cause = _worker_error(exc)
        if cause is not None:
            raise cause from None
        # A failed actor start keeps only the text: its last line is the worker's exception.
        last = [line.strip() for line in str(exc).splitlines() if line.strip()]
        raise LstmtextError(f"a worker failed: {last[-1] if last else type(exc).__name__}") from None
    finally:
        if started:
            ray.shutdown()
    procs: dict[int, dict] = {}
    for r in rows:  # a process's peak is its largest
        proc = procs.setdefault(int(r["pid"]), {"peak_rss_kb": 0, "tensorflow": False})
        proc["peak_rss_kb"] = max(proc["peak_rss_kb"], r["peak_rss_kb"])
        proc["tensorflow"] |= bool(r["tensorflow"])
    return finish(plan, options, rows, procs, workers, time.perf_counter() - t0,
                  {"ray_start_s": round(ray_start, 3)})


@dataclass
class Plan:
    """What the driver checked and planned before any worker starts."""

    predictor: Predictor
    model_path: str
    paths: list[str]
    chunks: list[files.Chunk]
    formats: set[str]


def prepare(model: str | Path, options: BatchOptions) -> Plan:
    """Check everything a worker would meet first, plan the chunks, and clear an earlier run's outputs.

    The bundle is loaded on the runtime the workers will use and predicts one line, so a corrupt
    or mismatched bundle raises here (``BundleError``), with nothing written and no worker started.
    """
    opts = options.predict
    if opts.runtime == "keras":
        raise UsageError("--runtime keras would import TensorFlow on every worker; use auto, lite or numpy")
    if options.workers is not None and options.workers < 1:
        raise UsageError("--workers must be at least 1")
    if options.max_chars < 1:
        raise UsageError("--max-chars must be at least 1")
    predictor = Predictor(model, opts, options.max_chars)  # BundleError / UsageError: nothing started yet
    predictor.check()
    model_path = str(predictor.bundle.path.resolve())  # workers need no installed-model lookup
    paths = files.expand(options.inputs)
    old = files.existing(options.output)
    if old and not options.overwrite:
        raise UsageError(f"{old[0]}: outputs of an earlier run have this prefix (use --overwrite or another "
                         f"--output)")
    chunks: list[files.Chunk] = []
    formats = set()
    for i, path in enumerate(paths):
        fmt_in = predictor.input_format(files.head(path, opts.encoding), path)
        if fmt_in == "conll" and predictor.task != "ner":
            raise UsageError("CoNLL input is for a tagger")
        formats.add(predictor.output_format(fmt_in))
        chunks += files.plan(path, i, options.chunk_size or predictor.window, fmt_in)
    for name in old:
        os.remove(name)
    Path(options.output).parent.mkdir(parents=True, exist_ok=True)
    return Plan(predictor, model_path, paths, chunks, formats)


def finish(plan: Plan, options: BatchOptions, rows: list[dict], procs: dict[int, dict], workers: int,
           seconds: float, extra: dict | None = None) -> dict:
    """The run's summary, also written as the manifest with every shard (``rows``: :func:`write_shard`'s counts).

    ``procs`` maps each worker's process id to its ``peak_rss_kb`` and whether it imported ``tensorflow``.
    """
    import json

    rows = sorted(rows, key=lambda r: (r["file_index"], r["index"]))
    shards = [{k: r[k] for k in ("shard", "file", "first_line", "lines", "outputs", "dead", "dead_letters")}
              for r in rows]
    lines = sum(r["lines"] for r in rows)
    formats = plan.formats
    summary = {
        "task": plan.predictor.task, "model": plan.model_path, "format": sorted(formats)[0] if len(formats) == 1
        else sorted(formats), "files": len(plan.paths), "lines": lines,
        "outputs": sum(r["outputs"] for r in rows), "dead": sum(r["dead"] for r in rows), "shards": len(rows),
        "workers": workers, "worker_pids": sorted(procs), "seconds": round(seconds, 3),
        **(extra or {}),
        "lines_per_s": round(lines / max(seconds, 1e-9), 1),
        "worker_peak_rss_mb": {str(k): round(v["peak_rss_kb"] / 1024, 1) for k, v in sorted(procs.items())},
        "tensorflow_on_workers": any(v["tensorflow"] for v in procs.values()),
        "manifest": files.manifest_name(options.output),
    }
    files.write_lines(summary["manifest"], [json.dumps({**summary, "shard_list": shards}, indent=1,
                                                       ensure_ascii=False)])
    return summary
