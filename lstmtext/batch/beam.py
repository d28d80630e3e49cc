"""Batch inference with Apache Beam: a ``RunInference`` model handler for lstmtext bundles, and a pipeline.

:class:`LstmtextModelHandler` is a Beam ``ModelHandler`` for bundles of every
task. Each worker process loads the bundle once, as a
:class:`~lstmtext.batch.predictor.Predictor` on the LiteRT or NumPy runtime
(never TensorFlow), shared by the threads of that process through Beam's
per-process ``shared.Shared`` handle. Elements carry their key,
``(file, line)``, and come back with it::

    import apache_beam as beam
    from apache_beam.ml.inference.base import RunInference
    from lstmtext.batch.beam import LstmtextModelHandler

    handler = LstmtextModelHandler("models/ner-conll03")   # checks the bundle here, on the driver
    with beam.Pipeline() as p:
        (p | beam.Create([(("a.txt", 1), "Peter visited Paris ."), (("a.txt", 2), "Hi .")])
           | RunInference(handler)                           # batches of predict's window
           | beam.MapTuple(lambda key, pred: (key, [r.outputs or r.error for r in pred.inference])))

:func:`run` is the pipeline behind ``python -m lstmtext.batch --engine beam``
(also ``python -m lstmtext.batch.beam``): the driver checks the bundle and
plans the input files into chunks as the Ray path does
(:func:`lstmtext.batch.pipeline.prepare`), each chunk becomes one batch of
keyed records (``predict``'s window, so its results exactly), and the results
are grouped back by chunk and written by the Ray path's own shard, dead-letter
and manifest writer. Needs the ``beam`` extra: ``pip install 'lstmtext[beam]'``.
"""

from __future__ import annotations

import bisect
import contextlib
import io
import logging
import os
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable, NamedTuple, Optional, Sequence

from lstmtext.batch import files
from lstmtext.batch.pipeline import BatchOptions, Plan, finish, prepare, write_shard
from lstmtext.batch.predictor import MAX_CHARS, Predictor, Result
from lstmtext.errors import LstmtextError, UsageError
from lstmtext.tasks import PredictOptions


@contextlib.contextmanager
def quiet_beam():
    """Beam's warnings off while inside: its loggers below ERROR, and its root-logger warnings (some at import)
    swallowed unless the program configured logging itself (they would set up ``basicConfig`` otherwise)."""
    root, log = logging.getLogger(), logging.getLogger("apache_beam")
    added = logging.NullHandler() if not root.handlers else None
    if added:
        root.addHandler(added)
    level = log.level
    log.setLevel(logging.ERROR)
    try:
        yield
    finally:
        log.setLevel(level)
        if added:
            root.removeHandler(added)


with quiet_beam():  # "apitools not found ..." on import without the gcp extra
    try:
        import apache_beam as beam
        from apache_beam.ml.inference.base import ModelHandler, PredictionResult, RunInference
    except ImportError:  # pragma: no cover - the extra is not installed
        raise UsageError("batch inference on Apache Beam needs the beam extra: pip install 'lstmtext[beam]'") \
            from None

LOADS: dict[str, int] = {}  # bundles loaded by this process (path: count), for tests and metrics
DIRECT_RUNNERS = ("DirectRunner", "SwitchingDirectRunner")


class Record(NamedTuple):
    """One example: the input lines of one record, as :meth:`Predictor.run` takes them.

    Attributes:
        lines: ``(line number, text, read error)`` for each line: one for a text or JSONL line;
            a CoNLL sentence's lines with the blank line that ends it.
        input_format: ``text``, ``jsonl`` or ``conll`` (the tagger's input formats).
    """

    lines: tuple[tuple[int, Optional[str], Optional[str]], ...]
    input_format: str = "text"


Example = Any  # str (a text line), bytes (decoded with the options' encoding) or Record
Key = tuple  # (file name, line number)


class _Loaded:
    """A worker's predictor; one batch at a time, whatever the threads (the runtimes are not thread-safe)."""

    def __init__(self, predictor: Predictor):
        self.predictor = predictor
        self._lock = threading.Lock()

    def run(self, records, input_format: str, name: str) -> list[Result]:
        with self._lock:
            return self.predictor.run(records, input_format, name)


class LstmtextModelHandler(ModelHandler):
    """A Beam ``ModelHandler`` for lstmtext bundles of every task (``RunInference``'s model).

    Elements are ``((file, line), example)``: the key says where the record comes from (its line
    number is the one ``predict`` would report, and Moses n-best lists use it) and comes back
    with the prediction, ``((file, line), PredictionResult(example, inference=(Result, ...)))``.
    An example is a line of text (``str``; ``bytes`` are decoded, undecodable ones refused) or a
    :class:`Record` (JSONL lines, CoNLL sentences). Each :class:`~lstmtext.batch.predictor.Result`
    holds the output lines ``lstmtext predict`` writes for the record, or ``error``, the reason it
    was refused (a dead letter: invalid JSONL, an over-long line, a malformed sentence ...);
    a refused record never fails its batch.

    Constructing the handler (on the driver) loads the bundle and predicts one line, so a corrupt
    or mismatched bundle raises ``BundleError`` before a pipeline starts.

    Args:
        model: A bundle, a training output directory or an installed model's name. Workers load it
            from the resolved path, which must be readable there.
        options: ``lstmtext predict``'s options (``format``, ``top_k``, ``beam``, ``batch_size``,
            ``runtime``: auto, lite or numpy, ``encoding``, ``extra``).
        max_chars: Longer lines are refused.
        min_batch_size, max_batch_size: ``BatchElements`` bounds; default: ``predict``'s window
            for the task (tagger 4096 sentences, translator 2048 lines, LM 4096 lines).
        share_across_processes: One copy per machine, held by the first worker process that asks and
            used by the others through Beam's multi-process proxy (for a model too large for one copy per
            process; batches then cross a process boundary). Default: one copy per worker process,
            shared by its threads.
        model_copies: With ``share_across_processes``: copies per machine.
    """

    def __init__(self, model: str | Path, options: PredictOptions | None = None, max_chars: int = MAX_CHARS, *,
                 min_batch_size: int | None = None, max_batch_size: int | None = None,
                 share_across_processes: bool = False, model_copies: int | None = None,
                 _predictor: Predictor | None = None):
        options = options or PredictOptions()
        predictor = _predictor
        if predictor is None:
            predictor = Predictor(model, options, max_chars)  # BundleError / UsageError on the driver
            predictor.check()
        window = predictor.window
        max_batch_size = max_batch_size or window
        super().__init__(min_batch_size=min_batch_size or min(window, max_batch_size), max_batch_size=max_batch_size,
                         large_model=share_across_processes, model_copies=model_copies)
        self.model_path = str(predictor.bundle.path.resolve())
        self.task = predictor.task
        self.window = window
        self._predict = asdict(predictor.options)
        self._max_chars = predictor.max_chars
        self._share = share_across_processes or model_copies is not None
        self._copies = model_copies

    @classmethod
    def from_predictor(cls, predictor: Predictor, **kwargs) -> "LstmtextModelHandler":
        """A handler for a predictor the driver already loaded and checked (not loaded again)."""
        return cls(predictor.bundle.path, predictor.options, predictor.max_chars, _predictor=predictor, **kwargs)

    def load_model(self) -> _Loaded:
        """Load the bundle on the light runtime: once per worker process (RunInference shares it)."""
        predictor = Predictor(self.model_path, PredictOptions(**self._predict), self._max_chars)
        LOADS[self.model_path] = LOADS.get(self.model_path, 0) + 1
        return _Loaded(predictor)

    def run_inference(self, batch: Sequence[tuple[Key, Example]], model: _Loaded,
                      inference_args: Optional[dict[str, Any]] = None) -> Iterable[tuple[Key, PredictionResult]]:
        """Predict a batch of keyed examples; each comes back with its key and its results, in batch order."""
        encoding = self._predict.get("encoding", "utf-8")
        records = [as_record(key, example, encoding) for key, example in batch]
        groups: dict[tuple[str, str], list[int]] = {}
        for i, ((file, _), record) in enumerate(zip((key for key, _ in batch), records)):
            groups.setdefault((str(file), record.input_format), []).append(i)
        found: list[list[Result]] = [[] for _ in batch]
        for (file, input_format), members in groups.items():
            for run in _runs(members, records, input_format):
                owner = {number: i for i in run for number, _, _ in records[i].lines}
                lines = [line for i in run for line in records[i].lines]
                for result in model.run(lines, input_format, file):
                    found[owner[result.line]].append(result)
        return [(key, PredictionResult(example, tuple(results), self.model_path))
                for (key, example), results in zip(batch, found)]

    def get_num_bytes(self, batch: Sequence[tuple[Key, Example]]) -> int:
        size = 0
        for _, example in batch:
            if isinstance(example, Record):
                size += sum(len(text or "") for _, text, _ in example.lines)
            else:
                size += len(example)
        return size

    def get_metrics_namespace(self) -> str:
        return "lstmtext"

    def validate_inference_args(self, inference_args: Optional[dict[str, Any]]):
        if inference_args:
            raise UsageError("lstmtext models take no inference_args (set PredictOptions instead)")

    def share_model_across_processes(self) -> bool:
        """False by default: RunInference then keeps one model per worker process in Beam's ``shared.Shared``
        handle, which every thread of the process uses (memory does not grow with threads)."""
        return self._share

    def model_copies(self) -> int:
        return self._copies or 1


def as_record(key: Key, example: Example, encoding: str = "utf-8") -> Record:
    """An element's example as a :class:`Record` (a ``str`` or ``bytes`` line takes the key's line number)."""
    if isinstance(example, Record):
        return example
    if not (isinstance(key, tuple) and len(key) == 2 and isinstance(key[1], int)):
        raise UsageError(f"lstmtext elements are ((file, line), example); got key {key!r}")
    if isinstance(example, bytes):
        try:
            return Record(((key[1], example.decode(encoding).rstrip("\r"), None),))
        except UnicodeDecodeError as exc:
            return Record(((key[1], None, f"invalid {encoding} byte at byte offset {exc.start} of the line"),))
    return Record(((key[1], str(example), None),))


def _runs(members: list[int], records: list[Record], input_format: str) -> list[list[int]]:
    """Split one file's records into calls of :meth:`Predictor.run`: in line order, no line number twice,
    and for CoNLL a call ends after any sentence that does not end with its blank line."""
    members = sorted(members, key=lambda i: records[i].lines[0][0] if records[i].lines else 0)
    runs: list[list[int]] = []
    current: list[int] = []
    seen: set[int] = set()
    for i in members:
        numbers = {number for number, _, _ in records[i].lines}
        if not numbers:
            continue
        if numbers & seen:
            runs.append(current)
            current, seen = [], set()
        current.append(i)
        seen |= numbers
        last = records[i].lines[-1][1]
        if input_format == "conll" and (last is None or last.strip()):
            runs.append(current)
            current, seen = [], set()
    if current:
        runs.append(current)
    return [r for r in runs if r]


# ---------------------------------------------------------------------------------------------- the pipeline


@dataclass
class BeamOptions(BatchOptions):
    """:class:`~lstmtext.batch.pipeline.BatchOptions` for Beam: ``workers`` sets the DirectRunner's processes.

    Attributes:
        runner: A Beam runner by name (``DirectRunner``, ``FlinkRunner``, ``SparkRunner``,
            ``DataflowRunner``, ``PortableRunner`` ...).
        pipeline_options: ``KEY=VALUE`` (or ``KEY`` for a flag) Beam pipeline options, e.g.
            ``flink_master=host:8081``, ``project=my-project``, ``direct_running_mode=in_memory``.
    """

    runner: str = "DirectRunner"
    pipeline_options: list[str] = field(default_factory=list)


def pipeline_options(options: BeamOptions):
    """Beam ``PipelineOptions`` for the run, and the DirectRunner's workers (None on other runners).

    Raises:
        UsageError: an unknown runner or option, a malformed ``KEY=VALUE``, ``--workers`` on another runner.
    """
    from apache_beam.options.pipeline_options import DirectOptions, PipelineOptions, WorkerOptions
    from apache_beam.runners import create_runner

    try:
        create_runner(options.runner)
    except ValueError:
        raise UsageError(f"--runner {options.runner}: not a Beam runner (DirectRunner, FlinkRunner, SparkRunner, "
                         f"DataflowRunner, PortableRunner ..., or a runner class's full name)") from None
    flags = [f"--runner={options.runner}"]
    for pair in options.pipeline_options:
        key, sep, value = pair.partition("=")
        key = key.strip().lstrip("-")
        if not key:
            raise UsageError(f"--pipeline-option takes KEY=VALUE, got '{pair}'")
        flags.append(f"--{key}={value}" if sep else f"--{key}")
    said = io.StringIO()
    try:  # Beam's "Discarding unparseable args" would repeat the error below; argparse's usage is pages long
        with quiet_beam(), contextlib.redirect_stderr(said):
            popts = PipelineOptions(flags)
            known = popts.get_all_options()
            unknown = sorted(set(popts.get_all_options(retain_unknown_options=True)) - set(known))
    except SystemExit:  # argparse refused a value, e.g. one given to a flag
        why = [line for line in said.getvalue().splitlines() if "error: " in line]
        raise UsageError(f"--pipeline-option: {why[-1].split('error: ', 1)[1] if why else 'refused by Beam'} "
                         f"(a flag takes no value: --pipeline-option KEY)") from None
    if unknown:
        raise UsageError(f"--pipeline-option {unknown[0]}: not a Beam pipeline option")
    given = {f.partition("=")[0] for f in flags}
    if "--default_sdk_harness_log_level" not in given:  # workers' warnings: errors reach the driver anyway
        popts.view_as(WorkerOptions).default_sdk_harness_log_level = "ERROR"
    direct = options.runner in DIRECT_RUNNERS
    if options.workers is not None and not direct:
        raise UsageError(f"--workers is for the DirectRunner; set {options.runner}'s own option instead "
                         f"(e.g. --pipeline-option num_workers=N on Dataflow, parallelism=N on Flink)")
    if not direct:
        return popts, None
    d = popts.view_as(DirectOptions)
    if options.workers is not None and "--direct_num_workers" in given:
        raise UsageError("give --workers or --pipeline-option direct_num_workers, not both")
    if "--direct_num_workers" not in given:
        d.direct_num_workers = options.workers or os.cpu_count() or 1
    if "--direct_running_mode" not in given:
        d.direct_running_mode = "multi_processing"  # worker processes, as on a cluster
    return popts, d.direct_num_workers if d.direct_running_mode != "in_memory" else 1


def run(model: str | Path, options: BeamOptions) -> dict:
    """Predict every line of the input files with a Beam pipeline (the DirectRunner's processes by default).

    The driver checks the options and the runner, loads the bundle on the workers' runtime and
    predicts one line before the pipeline is built, so a corrupt or mismatched bundle stops the
    run with one error and writes nothing.

    Returns:
        :func:`lstmtext.batch.pipeline.run`'s summary (counts, ``format``, ``workers``, ``seconds``,
        ``lines_per_s``, ``worker_peak_rss_mb`` by process id, ``tensorflow_on_workers``,
        ``manifest``), with the ``runner``.
    """
    t0 = time.perf_counter()
    if options.address or options.init:
        raise UsageError("--address and --ray-option are for --engine ray (Beam: --runner, --pipeline-option)")
    if options.workers is not None and options.workers < 1:
        raise UsageError("--workers must be at least 1")
    with quiet_beam():  # Beam's options call logging.basicConfig(); the runner logs progress, workers warnings
        popts, workers = pipeline_options(options)
        plan = prepare(model, options)
        if workers is not None and workers > 1:  # no idle worker processes for a small input
            from apache_beam.options.pipeline_options import DirectOptions

            workers = min(workers, max(1, len(plan.chunks)))
            popts.view_as(DirectOptions).direct_num_workers = workers
        handler = LstmtextModelHandler.from_predictor(plan.predictor)
        formats = {c.input_format: plan.predictor.output_format(c.input_format) for c in plan.chunks}
        index: dict[str, tuple[int, list[int]]] = {}
        for c in plan.chunks:
            index.setdefault(c.file, (c.file_index, []))[1].append(c.first_line)
        raw = files.manifest_name(options.output)
        try:
            with beam.Pipeline(options=popts) as p:
                _build(p, plan, handler, index, formats, options.output, options.predict.encoding, raw)
        except LstmtextError:
            raise
        except Exception as exc:  # a worker failed: its own last line (the runner's logs keep the rest)
            last = [line.strip() for line in str(exc).splitlines() if line.strip()]
            raise LstmtextError(f"the pipeline failed: {last[-1] if last else type(exc).__name__}") from None
    import json

    try:
        done = json.loads(Path(raw).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise LstmtextError(f"{raw}: the pipeline ended without writing its manifest (outputs on a file system "
                            f"the driver cannot read?)") from None
    procs: dict[int, dict] = {}
    for s in done["stats"]:
        proc = procs.setdefault(int(s["pid"]), {"peak_rss_kb": 0, "tensorflow": False})
        proc["peak_rss_kb"] = max(proc["peak_rss_kb"], s["peak_rss_kb"])
        proc["tensorflow"] |= bool(s["tensorflow"])
    return finish(plan, options, done["rows"], procs, workers or len(procs), time.perf_counter() - t0,
                  {"runner": options.runner})


def _build(p, plan: Plan, handler: LstmtextModelHandler, index, formats, output, encoding, raw) -> None:
    """chunks -> one batch of keyed records each -> RunInference -> grouped by chunk -> shards, manifest."""
    chunks = p | "Chunks" >> beam.Create(plan.chunks)  # Create reshuffles: chunks spread over the workers
    batches = chunks | "Read" >> beam.FlatMap(read_chunk, encoding)
    results, dlq = (batches | "Predict" >> RunInference(handler.with_no_batching()).with_exception_handling())
    tagged = results | "ByChunk" >> beam.ParDo(_ByChunk(index)).with_outputs("stats", main="results")
    failed = dlq.failed_inferences | "Failed" >> beam.FlatMap(_failed, index, encoding)
    marks = chunks | "Marks" >> beam.Map(lambda c: ((c.file_index, c.index), c))
    rows = ((tagged.results, failed, marks) | "All" >> beam.Flatten() | "Group" >> beam.GroupByKey()
            | "Write" >> beam.Map(_write, output, formats))
    stats = tagged.stats | "Stats" >> beam.combiners.ToList()
    _ = (rows | "Rows" >> beam.combiners.ToList()
         | "Manifest" >> beam.Map(_write_raw_manifest, beam.pvalue.AsSingleton(stats), raw))


def read_chunk(chunk: files.Chunk, encoding: str = "utf-8") -> Iterable[list[tuple[Key, Record]]]:
    """A chunk's records as one batch of ``((file, line), Record)``: lines, or CoNLL sentences with their blank line."""
    lines = files.read(chunk, encoding)
    if not lines:
        return
    if chunk.input_format != "conll":
        yield [((chunk.file, n), Record(((n, t, e),), chunk.input_format)) for n, t, e in lines]
        return
    batch, block = [], []
    for line in lines:
        block.append(line)
        if line[1] is not None and not line[1].strip():
            batch.append(((chunk.file, block[0][0]), Record(tuple(block), "conll")))
            block = []
    if block:
        batch.append(((chunk.file, block[0][0]), Record(tuple(block), "conll")))
    yield batch


def _chunk_key(index, file: str, line: int) -> tuple[int, int]:
    file_index, firsts = index[file]
    return file_index, max(0, bisect.bisect_right(firsts, line) - 1)


class _ByChunk(beam.DoFn):
    """Each result keyed by its chunk; once a bundle, this worker process's pid and peak memory ('stats')."""

    def __init__(self, index):
        self.index = index

    def process(self, element):
        key, prediction = element
        for result in prediction.inference:
            yield _chunk_key(self.index, key[0], result.line), result

    def finish_bundle(self):
        import resource

        from apache_beam.transforms.window import GlobalWindows

        stats = {"pid": os.getpid(), "peak_rss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                 "tensorflow": "tensorflow" in sys.modules}
        yield beam.pvalue.TaggedOutput("stats", GlobalWindows.windowed_value(stats))


def _failed(element, index, encoding):
    """A batch whose inference raised: each of its records is a dead letter with the exception as reason."""
    batch, exc = element
    reason = f"inference failed: {type(exc).__name__}: {exc}" if isinstance(exc, BaseException) else \
        f"inference failed: {exc}"
    for key, example in batch:
        for number, _, _ in as_record(key, example, encoding).lines:
            yield _chunk_key(index, key[0], number), Result(number, error=reason)


def _write(element, output, formats) -> dict:
    """Write one chunk's shard (and dead letters) with the Ray path's writer."""
    _, values = element
    chunk = next(v for v in values if isinstance(v, files.Chunk))
    results = sorted((v for v in values if isinstance(v, Result)), key=lambda r: r.line)
    return write_shard(output, chunk, formats[chunk.input_format], results)


def _write_raw_manifest(rows, stats, path) -> None:
    """Every shard's counts and every worker's stats; the driver completes the manifest from them."""
    import json

    files.write_lines(path, [json.dumps({"rows": rows, "stats": stats}, ensure_ascii=False)])


if __name__ == "__main__":  # python -m lstmtext.batch.beam ...: the batch command with --engine beam
    from lstmtext.batch.__main__ import main

    sys.argv[1:1] = ["--engine", "beam"]
    main()
