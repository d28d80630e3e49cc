"""Language-model API: train, evaluate, predict, generate, info.

Each function returns data; the command line formats it. ``predict`` and
``generate`` run on the numpy step runtime and never import TensorFlow.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from lstmtext import config as config_io
from lstmtext.bundle import Bundle, write_config, write_json
from lstmtext.errors import DataError, UsageError
from lstmtext.lm.config import LMConfig
from lstmtext.tasks import EvalOptions, PredictOptions, TrainOptions
from lstmtext.tokenizers import EOS_ID, PAD_ID, UNK_ID, Tokenizer, load_tokenizer

TASK = "lm"


# ---------------------------------------------------------------- training
class LMTrainTask:
    """Adapts the language model to :func:`lstmtext.training.loop.fit`."""

    monitor = "valid_perplexity"
    monitor_mode = "min"

    def __init__(self, config: LMConfig, tokenizer: Tokenizer, train, valid, data_summary: dict, dist=None,
                 history: list | None = None):
        from lstmtext.layers import sequence_lstm
        from lstmtext.lm import data
        from lstmtext.lm.network import build_lm, compile_lm
        from lstmtext.training.distribute import Distribution

        self.config, self.tokenizer = config, tokenizer
        self.valid, self.data_summary = valid, data_summary
        self.dist = dist or Distribution()
        # The stream is cut into the global batch of rows on every worker;
        # train_batches hands each replica its own rows (dist.local_batch).
        self.x, self.y, _ = data.batchify(train.ids, config.batch_size, pad=False)
        check_length(train.tokens, config, data_summary.get("train"))
        with self.dist.scope():
            self.model = build_lm(config, tokenizer.vocab_size, self.dist.per_replica_batch(config.batch_size),
                                  None if config.variable_bptt else config.bptt)
            compile_lm(self.model, config)
        # The LSTMs' whole-sequence kernel on a TensorFlow CPU (same function, fewer small products).
        sequence_lstm.install(self.model)
        self.dist.prepare(self.model)
        self.scorer = None
        # Validation perplexities of the epochs so far (NT-ASGD's trigger reads
        # them); a resumed run passes those of its history.
        self.perplexities = [m["valid_perplexity"] for m in history or [] if "valid_perplexity" in m]
        self._lengths: dict[int, list[int]] = {}
        self._epoch = 0

    def window_lengths(self, epoch: int) -> list[int]:
        """The epoch's BPTT window lengths: fixed, or drawn from a generator seeded by (seed, epoch)."""
        from lstmtext.lm import data

        if epoch not in self._lengths:
            total, bptt = self.x.shape[1], self.config.bptt
            if self.config.variable_bptt:
                rng = np.random.default_rng([self.config.seed, epoch])
                self._lengths = {epoch: data.variable_lengths(total, bptt, rng)}
            else:  # whole windows only, as before
                self._lengths = {epoch: [bptt] * (total // bptt)}
        return self._lengths[epoch]

    def steps_per_epoch(self) -> int:
        return len(self.window_lengths(self._epoch))

    def on_epoch_begin(self, epoch: int) -> None:
        from lstmtext.lm.network import reset_states

        self._epoch = epoch
        reset_states(self.model)

    def train_batches(self, epoch: int):
        from lstmtext.lm import data
        from lstmtext.training.loop import Batch

        if not self.config.variable_bptt:
            for xs, ys, _ in data.windows((self.x, self.y, self.y), self.config.bptt, full_only=True):
                x, y = self.dist.local_batch(xs, ys)
                yield Batch(x, y, int(xs.size))
            return
        for xs, ys in data.variable_windows((self.x, self.y), self.window_lengths(epoch)):
            x, y = self.dist.local_batch(xs, ys)
            yield Batch(x, y, int(xs.size), lr_factor=xs.shape[1] / self.config.bptt)

    def weights(self) -> dict[str, np.ndarray]:
        """The weights to validate and save: NT-ASGD's averages once it averages, else the model's."""
        from lstmtext.lm.asgd import model_weights

        return model_weights(self.model)

    def validate(self) -> dict:
        from lstmtext.lm.asgd import averaging_optimizer, should_trigger
        from lstmtext.weights import assign_model_weights

        if self.scorer is None:
            self.scorer = Scorer(self.config, self.tokenizer.vocab_size)
        assign_model_weights(self.scorer.model, self.weights())
        nll, _ = self.scorer.total_nll(self.valid.ids)
        metrics = {
            "valid_perplexity": math.exp(nll / (self.valid.words + self.valid.lines)),
            "valid_token_perplexity": math.exp(nll / self.valid.tokens),
        }
        optimizer = averaging_optimizer(self.model)
        if optimizer is not None:
            metrics["averaged_steps"] = optimizer.averaged_steps()
            self.perplexities.append(metrics["valid_perplexity"])
            if not optimizer.averaging and should_trigger(self.perplexities, self.config.nonmono):
                optimizer.start_averaging()
        return metrics

    def write_bundle(self, directory: Path, metrics: dict, history: list) -> None:
        from lstmtext.weights import save_arrays

        self.tokenizer.save(directory / "tokenizer")
        save_arrays(self.weights(), directory / "weights.h5", self.config.weights_dtype)
        write_config(directory, TASK, dataclasses.asdict(self.config),
                     tokenizer=self.tokenizer.describe(), data=self.data_summary,
                     parameters=int(self.model.count_params()), training=self.dist.describe())
        write_json(directory, "metrics.json", metrics)
        write_json(directory, "history.json", history)


def check_length(tokens: int, config: LMConfig, path=None) -> None:
    """Refuse a training stream too short for one BPTT window per stream.

    Raises:
        DataError: naming ``path``.
    """
    steps = tokens // config.batch_size
    if steps < config.bptt:
        raise DataError(f"training text too short: {tokens} tokens make {steps} steps per stream, fewer than "
                        f"one BPTT window ({config.bptt}); add text or lower bptt/batch_size", path)


class StepScorer:
    """:class:`Scorer`'s arithmetic over a step model (LiteRT part or NumPy runtime).

    The same streams and rows as the Keras scorer: a block of steps at once
    on the NumPy runtime (``score_block``), one step at a time on a LiteRT
    part, so quantised parts can be scored on the data the model card uses.
    With ``cache`` on (:mod:`lstmtext.lm.cache`), each row keeps a continuous
    cache of its recent top-layer outputs, applied every ``block`` steps.
    """

    def __init__(self, model, batch_size: int, cache=None, block: int = 256):
        self.model = model
        self.batch_size = batch_size
        self.cache = cache if cache is not None and cache.on else None
        self.block = block

    def _blocks(self, ids: np.ndarray, hidden: bool):
        """Per block of steps: ``(targets, log_probs (float64), mask, top-layer outputs or None)``."""
        from lstmtext.lm import data

        x, y, mask = data.batchify(ids, self.batch_size, pad=True)
        state = self.model.initial_state(self.batch_size)
        rows = np.arange(self.batch_size)
        whole = getattr(self.model, "score_block", None)  # the NumPy runtime: a block of steps at once
        for t0 in range(0, x.shape[1], self.block):
            span = range(t0, min(x.shape[1], t0 + self.block))
            if whole is not None:
                lp, top, state = whole(x[:, span.start:span.stop], y[:, span.start:span.stop], state)
                yield (y[:, span.start:span.stop], lp, mask[:, span.start:span.stop], top if hidden else None)
                continue
            picked, tops = [], []
            for t in span:
                log_probs, state = self.model.step(x[:, t], state)
                picked.append(log_probs[rows, y[:, t]])
                if hidden:
                    tops.append(np.asarray(state[-1][0], np.float32))  # the top layer's output
            yield (y[:, span.start:span.stop], np.stack(picked, axis=1).astype(np.float64),
                   mask[:, span.start:span.stop], np.stack(tops, axis=1) if hidden else None)

    def total_nll(self, ids: np.ndarray) -> tuple[float, int]:
        from lstmtext.lm.cache import ContinuousCache

        cache = ContinuousCache(self.batch_size, self.cache) if self.cache else None
        total, count = 0.0, 0
        for y, lp, m, tops in self._blocks(ids, hidden=cache is not None):
            if cache is not None:
                lp = cache.log_probs(tops, y, lp, m)
            total -= float((lp * m).sum())
            count += int(m.sum())
        return total, count

    def positions(self, ids: np.ndarray):
        """Every position's top-layer output, target, log-probability and mask (:class:`~lstmtext.lm.cache.Positions`)."""
        from lstmtext.lm.cache import Positions

        targets, log_probs, mask, hidden = (np.concatenate(part, axis=1)
                                            for part in zip(*self._blocks(ids, hidden=True)))
        return Positions(hidden, targets, log_probs, mask)


class Scorer:
    """Batched, compiled per-token negative log-likelihood of a token stream."""

    def __init__(self, config: LMConfig, vocab_size: int, batch_size: int | None = None):
        from lstmtext.lm.network import build_lm

        self.config = config
        self.batch_size = batch_size or config.eval_batch_size
        self.window = max(config.bptt, 35)
        self.model = build_lm(config, vocab_size, self.batch_size, self.window, score=True)
        self.model.compile(jit_compile=config.jit_compile)

    def total_nll(self, ids: np.ndarray) -> tuple[float, int]:
        """Sum of negative log-likelihoods over every predicted token of ``ids``."""
        from lstmtext.lm import data

        x, y, mask = data.batchify(ids, self.batch_size, pad=True)
        states = [np.zeros((self.batch_size, self.config.hidden_size), np.float32)
                  for _ in range(2 * self.config.num_layers)]
        total, count = 0.0, 0
        for xs, ys, ms in data.windows((x, y, mask), self.window, full_only=False):
            nll, *states = self.model.predict_on_batch([xs, ys, *states])
            total += float((np.asarray(nll, np.float64) * ms).sum())
            count += int(ms.sum())
        return total, count


def _make_tokenizer(config: LMConfig, options: TrainOptions, lines: list[str], warn=None) -> Tokenizer:
    given = options.extra.get("tokenizer")
    if given:
        return load_tokenizer(given)
    from lstmtext.tokenizers import train_tokenizer

    return train_tokenizer(lines, config.vocab_size, config.tokenizer, seed=config.seed, warn=warn)


def _read_data(options: TrainOptions) -> tuple[list[str], list[str], dict | None]:
    """Training and validation lines; without ``--valid``, a share of the training lines held out.

    Returns:
        ``(train lines, valid lines, hold-out record or None)`` (see
        :mod:`lstmtext.training.holdout`; blank lines stay in training).
    """
    from lstmtext.io import require_nonempty
    from lstmtext.training import holdout

    lines = require_nonempty(options.train[0], options.encoding)
    if options.valid:
        return lines, require_nonempty(options.valid[0], options.encoding), None
    return holdout.take(lines, options.train[0], "lines", counts=str.strip)


def _used_vocab(config: LMConfig, chosen: dict, tokenizer: Tokenizer, given: bool):
    """The config and auto choices with the tokenizer's real size (a given tokenizer, or a size it adjusted)."""
    from lstmtext.training.auto import Choice

    if tokenizer.vocab_size == config.vocab_size or (tokenizer.kind == "word" and config.vocab_size == 0):
        return config, chosen
    if "vocab_size" in chosen:
        reason = "the given tokenizer's size" if given else chosen["vocab_size"].reason
        chosen = {**chosen, "vocab_size": Choice(tokenizer.vocab_size, reason)}
    return dataclasses.replace(config, vocab_size=tokenizer.vocab_size), chosen


def resolve_config(options: TrainOptions, base: LMConfig | None = None) -> LMConfig:
    """Defaults, then the TOML file, then ``--set``, then ``--epochs``/``--seed``."""
    return config_io.resolve(LMConfig, options.config_file, options.sets,
                             extra={"epochs": options.epochs, "seed": options.seed}, base=base)


def train(options: TrainOptions, reporter=None) -> dict:
    """Train a language model; write ``model-best`` and ``model-last`` under ``options.output``.

    Returns:
        The best epoch's metrics.
    """
    from lstmtext.lm.data import encode_lines
    from lstmtext.training import auto, init_from, loop
    from lstmtext.training.reporting import LoggingReporter

    reporter = reporter or LoggingReporter()
    output = Path(options.output)
    if len(options.train) != 1 or len(options.valid) > 1:
        raise UsageError("train lm takes one --train file and at most one --valid file")
    dist, base = loop.start_training(options, LMConfig, TASK)
    config = resolve_config(options, base)
    init = init_from.read_init(options, TASK)
    if init is not None:  # the bundle's tokenizer and sizes; training keys stay as resolved
        if options.extra.get("tokenizer"):
            raise UsageError("--tokenizer and --init exclude each other (--init keeps the bundle's tokenizer)")
        config = init_from.init_config(config, init, options, TASK)
    train_lines, valid_lines, held_out = _read_data(options)
    # Auto keys follow the training text: the vocabulary size from its words, before the
    # tokenizer is trained; the rest once the text is tokenized (below).
    stats = auto.TextStats.from_lines(train_lines)
    config, chosen = auto.resolve(config, auto.lm_values(stats, config), keys=["tokenizer", "vocab_size"])
    # Only the chief writes into output; other workers write into a temporary copy.
    with dist.output(output, options.resume) as output, loop.output_lock(output):
        if options.resume:
            tokenizer = load_tokenizer(output / "model-last" / "tokenizer")
        elif init is not None:
            tokenizer = load_tokenizer(init.file("tokenizer"))
        else:
            tokenizer = _make_tokenizer(config, options, train_lines, reporter.message)
        given = bool(options.resume or init is not None or options.extra.get("tokenizer"))
        config, chosen = _used_vocab(config, chosen, tokenizer, given)
        loop.set_seed(config.seed)
        backward = config.direction == "backward"
        train_stream = encode_lines(train_lines, tokenizer, reverse=backward)
        valid_stream = encode_lines(valid_lines, tokenizer, reverse=backward)
        stats.tokens = train_stream.tokens
        config, more = auto.resolve(config, auto.lm_values(stats, config))
        chosen.update(more)
        check_length(train_stream.tokens, config, options.train[0])
        summary = {"train": str(options.train[0]),
                   "valid": str(options.valid[0]) if options.valid else "held out from train",
                   "train_lines": train_stream.lines, "train_words": train_stream.words,
                   "train_tokens": train_stream.tokens, "valid_tokens": valid_stream.tokens}
        notes = []
        if held_out is not None:
            summary["holdout"] = held_out
            notes.append(f"validation: {held_out['held_out']:,} of the {held_out['of']:,} lines held out "
                         f"(no --valid; {held_out['rule']})")
        notes.append(f"tokens: {train_stream.tokens:,} training, {valid_stream.tokens:,} validation "
                     f"({tokenizer.vocab_size:,}-piece {tokenizer.describe().get('model_type', tokenizer.kind)} "
                     "tokenizer)")
        def estimate(c):
            return auto.epoch_seconds("lm", c, train_stream.tokens, tokenizer.vocab_size,
                                      train_stream.tokens // (c.batch_size * c.bptt))

        config, chosen = auto.fit_options_budget("lm", config, chosen, estimate, options)
        per_epoch = estimate(config)
        reporter.message(auto.summary(stats, chosen, per_epoch, config.epochs, notes))
        if init is not None:
            ids = train_stream.ids
            init_from.check_coverage(init, int((ids == UNK_ID).sum()), int((ids != EOS_ID).sum()))
            summary["init"] = init_from.summary(init)
        dist.check_same("tokenizer and training data", [tokenizer.describe(), train_stream.ids])
        history = None
        if options.resume and (output / "model-last" / "history.json").is_file():
            history = json.loads((output / "model-last" / "history.json").read_text())
        task = LMTrainTask(config, tokenizer, train_stream, valid_stream, summary, dist, history)
        if init is not None:
            init_from.load_weights(task.model, init)
        from lstmtext.lm.network import lr_scale

        loop_config = loop.LoopConfig(
            epochs=config.epochs, lr=config.lr, lr_schedule=config.lr_schedule, lr_decay=config.lr_decay,
            lr_decay_start=config.lr_decay_start, min_lr=config.min_lr, patience=config.patience,
            seed=config.seed, lr_scale=lr_scale(config), budget=options.budget, budget_started=options.started,
        )
        with dist.failures(output):
            return loop.fit(task, output, loop_config, reporter, resume=options.resume)


# ---------------------------------------------------------------- loading
def load_config(bundle: Bundle) -> LMConfig:
    """The bundle's config as an :class:`LMConfig` (validated)."""
    return config_io.from_dict(LMConfig, bundle.config)


def load_numpy_model(bundle: Bundle):
    """``(numpy step model, tokenizer)`` for a bundle; no TensorFlow import."""
    return load_step_model(bundle, "numpy", forward_only=False)


def load_step_model(bundle: Bundle, runtime: str = "auto", forward_only: bool = True):
    """``(step model, tokenizer)``: the LiteRT step part or the NumPy runtime.

    ``auto`` and ``lite`` use the bundle's LiteRT part when it has one (``lite``
    says so when it falls back); ``numpy`` always uses the NumPy runtime.
    Neither imports TensorFlow.
    """
    from lstmtext.errors import BundleError
    from lstmtext.lite import lm as lite_lm, runtime as lite

    if runtime not in ("auto", "lite", "numpy"):
        raise UsageError(f"--runtime must be auto, lite or numpy for a language model, got '{runtime}'")
    config = load_config(bundle)
    if forward_only and config.direction == "backward":
        raise UsageError(f"{bundle.path} is a backward language model (it predicts the word before a text): "
                         "predict and generate need a forward one; evaluate scores it, and a tagger reads it "
                         "with --lm")
    tokenizer = load_tokenizer(bundle.file("tokenizer"))
    loaded = lite.choose(bundle, runtime, {"step": lite_lm.signature(config.num_layers)}, lite.note)
    if loaded is not None:
        model = lite_lm.LiteLanguageModel(bundle.config, loaded[0])
    else:
        from lstmtext.decoding.lstm_numpy import NumpyLSTMLanguageModel
        from lstmtext.weights import load_arrays

        model = NumpyLSTMLanguageModel(load_arrays(bundle.file("weights.h5")), config.num_layers,
                                       config.tie_weights)
    if model.vocab_size != tokenizer.vocab_size:
        raise BundleError(f"{bundle.path}: tokenizer and weights disagree on the vocabulary size")
    if list(model.units) != [config.hidden_size] * config.num_layers:
        raise BundleError(f"{bundle.path}: weights of {len(model.units)} x {model.units[0]} units do not fit its "
                          f"config ({config.num_layers} x {config.hidden_size})")
    return model, tokenizer


# ---------------------------------------------------------------- evaluate
def evaluate(bundle: Bundle, options: EvalOptions) -> dict:
    """Perplexity of the model on each file (and overall).

    ``perplexity`` is per word: the total negative log-likelihood over every
    token, divided by the number of whitespace words plus one end-of-line per
    line, whatever the tokenizer's pieces are. ``token_perplexity`` divides by
    the number of predicted tokens instead.

    Files are read in chunks of 50,000 lines (memory stays bounded); each
    chunk is scored as ``batch_size`` parallel streams that start from a zero
    state. ``options.extra["runtime"]``: ``numpy`` (default: the weights of
    ``weights.h5``, blocks of steps at once, no TensorFlow), ``lite`` (the
    LiteRT step part, e.g. quantised, one step at a time) or ``keras`` (the
    compiled network on the configured backend: the choice on a GPU); the
    same numbers to float rounding. With the bundle's continuous cache on
    (``cache_window`` > 0, or ``extra["cache_window"]``; see
    :mod:`lstmtext.lm.cache`) the result names the cache's settings.
    """
    from lstmtext.io import check_readable
    from lstmtext.lm.data import iter_streams
    from lstmtext.weights import assign_model_weights, load_arrays

    if not options.files:
        raise UsageError("evaluate needs a FILE")
    for f in options.files:
        check_readable(f)
    config = load_config(bundle)
    cache = cache_settings(config, options.extra or {})
    runtime = eval_runtime(cache, options.extra or {})
    t0 = time.perf_counter()
    if runtime == "keras":
        tokenizer = load_tokenizer(bundle.file("tokenizer"))
        scorer = Scorer(config, tokenizer.vocab_size, options.batch_size)
        assign_model_weights(scorer.model, load_arrays(bundle.file("weights.h5")), str(bundle.path))
    else:
        model, tokenizer = load_step_model(bundle, runtime, forward_only=False)
        scorer = StepScorer(model, options.batch_size or config.eval_batch_size, cache)
    nll = tokens = words = lines = 0
    for s in (s for f in options.files for s in iter_streams(f, tokenizer, options.encoding,
                                                                              reverse=config.direction == "backward")):
        n, c = scorer.total_nll(s.ids)
        nll += n
        tokens += c
        words += s.words
        lines += s.lines
    seconds = time.perf_counter() - t0
    return {
        "perplexity": math.exp(nll / (words + lines)),
        "token_perplexity": math.exp(nll / tokens),
        "nll": nll,
        "words": words,
        "lines": lines,
        "tokens": tokens,
        "tokens_per_s": tokens / max(seconds, 1e-9),
        **({"cache": dataclasses.asdict(cache)} if cache.on else {}),
    }


def cache_settings(config: LMConfig, extra: dict):
    """The continuous cache ``evaluate`` uses: the bundle's ``cache_*`` settings, each overridable in ``extra``."""
    from lstmtext.lm.cache import CacheSettings

    settings = CacheSettings(
        window=int(extra.get("cache_window", config.cache_window)),
        theta=float(extra.get("cache_theta", config.cache_theta)),
        lam=float(extra.get("cache_lambda", config.cache_lambda)))
    if settings.window < 0 or settings.theta < 0 or not 0.0 <= settings.lam <= 1.0:
        raise UsageError("need --cache-window >= 0, --cache-theta >= 0 and 0 <= --cache-lambda <= 1")
    return settings


def eval_runtime(cache, extra: dict) -> str:
    """``evaluate``'s runtime for ``cache`` (:func:`cache_settings`): the one asked for, else ``numpy``.

    On a CPU the NumPy runtime scores faster than the compiled Keras network
    (PTB's validation file with ``models/lm-ptb``: 21.0 s against 23.7 s end
    to end, 304 MB against 850 MB; benchmarks/RESULTS.md) and needs no
    TensorFlow. The cache reads each step's top-layer output, which only the
    step runtimes (NumPy, LiteRT part) give.
    """
    runtime = extra.get("runtime")
    if cache.on:
        if runtime == "keras":
            raise UsageError("--runtime keras scores without the cache: use --runtime numpy or lite, or "
                             "--cache-window 0")
        return runtime if runtime in ("lite", "numpy", "auto") else "numpy"
    return runtime or "numpy"


def tune_cache(bundle: Bundle, files: list, encoding: str = "utf-8", max_tokens: int = 200_000,
               runtime: str = "numpy") -> dict:
    """Choose the bundle's continuous cache on held-out text (:func:`lstmtext.lm.cache.tune`).

    The text (the files in turn, up to ``max_tokens`` tokens) is scored once
    as ``eval_batch_size`` streams (at least 2), as ``evaluate`` does; the
    settings are chosen on the first half of the streams and checked on the
    second. Nothing is written: see :func:`write_cache_settings`.

    Raises:
        DataError: a file is unreadable or the text too short.
    """
    from lstmtext.io import check_readable
    from lstmtext.lm.cache import tune
    from lstmtext.lm.data import iter_streams

    for f in files:
        check_readable(f)
    if max_tokens < 1000:
        raise UsageError(f"--max-tokens must be at least 1000, got {max_tokens}")
    config = load_config(bundle)
    model, tokenizer = load_step_model(bundle, runtime, forward_only=False)
    rows = max(2, config.eval_batch_size)
    parts = []
    for f in files:
        for s in iter_streams(f, tokenizer, encoding, reverse=config.direction == "backward"):
            parts.append(s.ids if not parts else s.ids[1:])  # each chunk starts with the end-of-line id
    ids = np.concatenate(parts)[: max_tokens + 1]
    if len(ids) - 1 < 20 * rows:
        raise DataError(f"{len(ids) - 1} tokens are too few to tune a cache on (need {20 * rows}); give more text",
                        files[0])
    t0 = time.perf_counter()
    report = tune(StepScorer(model, rows).positions(ids))
    return {**report, "tokens": int(len(ids) - 1), "rows": rows, "seconds": time.perf_counter() - t0}


def write_cache_settings(bundle: Bundle, settings, output=None) -> Path:
    """Store cache settings in ``bundle``'s ``config.json`` (replaced whole), or in a copy at ``output``.

    The copy leaves out training state, as ``export`` does; weights and LiteRT
    parts are copied unchanged. Returns the bundle directory written.
    """
    from lstmtext.export import copy_bundle
    from lstmtext.io import atomic_file

    def update(directory: Path) -> None:
        path = directory / "config.json"
        doc = json.loads(path.read_text(encoding="utf-8"))
        doc["config"].update(cache_window=int(settings.window), cache_theta=float(settings.theta),
                             cache_lambda=float(settings.lam))
        with atomic_file(path) as fh:
            fh.write(json.dumps(doc, indent=2) + "\n")

    if output is None:
        update(Path(bundle.path))
        return Path(bundle.path)
    return copy_bundle(bundle, output, update)


# ---------------------------------------------------------------- predict
def _prompt_ids(tokenizer: Tokenizer, text: str) -> list[int]:
    # The leading end-of-line id matches training, where every line follows one.
    return [EOS_ID] + tokenizer.encode(text)


def predict_records(bundle: Bundle, lines: Iterable[str], top_k: int = 5, runtime: str = "auto"
                    ) -> Iterator[dict]:
    """For each line: the ``top_k`` next words with probabilities."""
    from lstmtext.decoding.nextword import next_words

    model, tokenizer = load_step_model(bundle, runtime)
    for line in lines:
        log_probs, state = model.feed(_prompt_ids(tokenizer, line))
        words = next_words(model, log_probs[0], state, tokenizer, k=top_k)
        yield {"text": line, "next": [{"word": w, "prob": round(p, 6)} for w, p in words]}


def predict(bundle: Bundle, lines: Iterable[str], options: PredictOptions) -> Iterator[str]:
    """Output lines for ``lstmtext predict`` (``text`` or ``jsonl``)."""
    fmt = options.format or "text"
    if fmt not in ("text", "jsonl"):
        raise UsageError(f"--format {fmt} is not available for a language model (use text or jsonl)")
    for record in predict_records(bundle, lines, options.top_k, options.runtime):
        if fmt == "jsonl":
            yield json.dumps(record, ensure_ascii=False)
        else:
            yield "\t".join(f"{w['word']} {w['prob']:.4f}" for w in record["next"])


# ---------------------------------------------------------------- generate
def generate_stream(bundle: Bundle, prompt: str = "", max_words: int = 30, temperature: float = 1.0,
                    top_k: int = 0, top_p: float = 1.0, seed: int | None = None, runtime: str = "auto",
                    allow_unk: bool = False) -> Iterator[str]:
    """Sample a continuation of ``prompt``, yielding its text word by word as it is drawn.

    Each yielded chunk is one word with its leading space (none at the start
    of a line) or a newline for an end-of-line id; joined, they equal
    :func:`generate`'s result. At most ``max_words`` words; the unknown-word
    id is never drawn unless ``allow_unk``. Reproducible for a given ``seed``.
    """
    from lstmtext.decoding.sampling import sample
    from lstmtext.tokenizers import UNK_ID

    if temperature < 0 or not 0 < top_p <= 1 or top_k < 0 or max_words < 0:
        raise UsageError("need temperature >= 0, 0 < top-p <= 1, top-k >= 0, max-words >= 0")
    model, tokenizer = load_step_model(bundle, runtime)
    if max_words == 0:
        return
    rng = np.random.default_rng(seed)
    log_probs, state = model.feed(_prompt_ids(tokenizer, prompt))
    banned = np.array([PAD_ID, 2] + ([] if allow_unk else [UNK_ID]))
    word: list[int] = []  # pieces of the word being drawn: it is complete when the next word starts
    words, lines, line_start = 0, 0, True

    def flush() -> str:
        nonlocal line_start
        text = tokenizer.decode(word).strip()
        word.clear()
        if not text:
            return ""
        text, line_start = (text if line_start else " " + text), False
        return text

    while True:
        i = sample(log_probs[0], rng, temperature, top_k, top_p, banned)
        starts = i != EOS_ID and tokenizer.is_word_start(i)
        if (i == EOS_ID or starts) and word:
            yield flush()
        if starts:
            if words >= max_words:
                return
            words += 1
        if i == EOS_ID:
            lines += 1
            if lines > max_words:  # a model that only ends lines would never stop
                return
            yield "\n"
            line_start = True
        else:
            word.append(i)
            if tokenizer.kind == "word":  # every id is a whole word: no need to wait for the next
                yield flush()
                if words >= max_words:
                    return
        log_probs, state = model.step(np.asarray([i]), state)


def generate(bundle: Bundle, prompt: str = "", max_words: int = 30, temperature: float = 1.0,
             top_k: int = 0, top_p: float = 1.0, seed: int | None = None, runtime: str = "auto",
             allow_unk: bool = False) -> str:
    """Sample a continuation of ``prompt`` of at most ``max_words`` words (see :func:`generate_stream`)."""
    return "".join(generate_stream(bundle, prompt, max_words, temperature, top_k, top_p, seed, runtime,
                                   allow_unk)).strip("\n")


# ---------------------------------------------------------------- info
def info(bundle: Bundle) -> dict:
    """Task, architecture, parameters, tokenizer, data, metrics and versions."""
    c = bundle.config
    return {
        "task": TASK,
        "path": str(bundle.path),
        "architecture": (f"embedding {c['embedding_dim']} -> {c['num_layers']} x LSTM {c['hidden_size']} -> "
                         f"softmax{' (tied)' if c.get('tie_weights') else ''}"),
        "parameters": bundle.meta.get("parameters"),
        "tokenizer": bundle.meta.get("tokenizer"),
        "data": bundle.meta.get("data"),
        "metrics": bundle.json("metrics.json", {}),
        "versions": bundle.meta.get("versions"),
        "created": bundle.meta.get("created"),
        "config": c,
    }
