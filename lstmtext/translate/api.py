"""Translation API: train, evaluate, predict, info.

Each function returns data; the command line formats it. Training goes
through :func:`lstmtext.training.loop.fit`. Decoding runs either the model's
encoder and single decoder step as compiled functions (``runtime="keras"``,
see :mod:`lstmtext.translate.decoding`) or the numpy runtime over the stored
weights (``auto``/``lite``, see :mod:`lstmtext.translate.numpy_runtime`);
both drive the same search code.
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from lstmtext import config as config_io
from lstmtext.bundle import Bundle, write_config, write_json
from lstmtext.errors import BundleError, DataError, UsageError
from lstmtext.tasks import EvalOptions, PredictOptions, TrainOptions
from lstmtext.tokenizers import UNK_ID, Tokenizer, load_tokenizer
from lstmtext.translate.config import TranslateConfig

TASK = "translate"
# Sentences read and translated together by predict(): bounds memory on huge
# inputs while still letting the decoder sort by length.
PREDICT_CHUNK = 2048
# Validation BLEU during training uses at most this many sentences (greedy).
VALID_BLEU_SENTENCES = 2000


# ---------------------------------------------------------------- inference
class Translator:
    """A loaded (or training) translator: tokenizers, a stepper and decoding settings.

    Args:
        config: Hyperparameters (decoding defaults included).
        source_tokenizer: Source-side tokenizer.
        target_tokenizer: Target-side tokenizer.
        stepper: A :class:`~lstmtext.translate.decoding.Stepper` (compiled
            Keras models or the numpy runtime).
        parts: The Keras models behind a compiled stepper, if any.
    """

    def __init__(self, config: TranslateConfig, source_tokenizer: Tokenizer, target_tokenizer: Tokenizer, stepper,
                 parts=None):
        self.config = config
        self.source_tokenizer, self.target_tokenizer = source_tokenizer, target_tokenizer
        self.stepper = stepper
        self.parts = parts

    def translate(self, lines: list[str], beam: int | None = None, nbest: int = 1, batch_size: int | None = None):
        """Hypotheses (best first) for each line, in input order.

        An empty (or blank) line translates to an empty line with score 0
        without decoding: training never shows the model an empty source, so
        whatever it produced would be invented.

        Returns:
            A list with, for each line, a list of ``(text, score, ids)``.
        """
        from lstmtext.translate.data import encode_source
        from lstmtext.translate.decoding import translate_ids

        c = self.config
        beam = c.beam if beam is None else beam
        if beam < 1:
            raise UsageError(f"--beam must be at least 1, got {beam}")
        texts = [line.strip() for line in lines]
        todo = [i for i, text in enumerate(texts) if text]
        out: list[list] = [[("", 0.0, [])] for _ in texts]
        src = encode_source(self.source_tokenizer, [texts[i] for i in todo], c.max_source_pieces)
        for i, hyps in zip(todo, translate_ids(self.stepper, src, beam=beam, alpha=c.length_penalty,
                                               max_ratio=c.max_length_ratio, max_extra=c.max_length_extra,
                                               batch_size=batch_size or c.decode_batch_size, pad_multiple=16,
                                               nbest=nbest)):
            out[i] = [(self.target_tokenizer.decode(h.tokens), h.score, h.tokens) for h in hyps]
        return out


RUNTIMES = ("auto", "lite", "numpy", "keras")


def load_translator(bundle: Bundle, runtime: str = "auto") -> Translator:
    """Load a bundle for decoding.

    Args:
        bundle: A translate bundle.
        runtime: ``lite``: the bundle's LiteRT encoder and decoder step;
            ``numpy``: the NumPy runtime over the weights; ``auto``: the
            LiteRT parts for batches of up to
            :data:`~lstmtext.lite.runtime.LITE_MAX_BATCH` sentences when the
            bundle has them, else NumPy; none imports TensorFlow. ``keras``: the Keras network with compiled step
            functions on the active backend.
    """
    from lstmtext.lite import runtime as lite, translate as lite_mt
    from lstmtext.weights import load_arrays

    if runtime not in RUNTIMES:
        raise UsageError(f"runtime must be one of {', '.join(RUNTIMES)}, got {runtime!r}")
    config = config_io.from_dict(TranslateConfig, bundle.config)
    src_tok = load_tokenizer(bundle.file("tokenizer/source"))
    tgt_tok = load_tokenizer(bundle.file("tokenizer/target"))

    def weights() -> dict:
        path = bundle.file("weights.h5")
        if not path.is_file():
            raise BundleError(f"{bundle.path}: missing weights.h5")
        return load_arrays(path)

    def numpy_stepper():
        from lstmtext.translate.numpy_runtime import NumpyTranslator

        return NumpyTranslator(weights(), config)

    loaded = lite.choose(bundle, runtime, lite_mt.signatures(config), lite.note)
    if loaded is not None:
        stepper = lite_mt.LiteTranslator(config, loaded[0])
        if runtime == "auto":
            stepper = lite_mt.SmallBatchStepper(stepper, numpy_stepper, lite.LITE_MAX_BATCH)
        return Translator(config, src_tok, tgt_tok, stepper)
    if runtime != "keras":
        return Translator(config, src_tok, tgt_tok, numpy_stepper())
    arrays = weights()
    from lstmtext.translate.decoding import ModelStepper
    from lstmtext.translate.network import build_translator
    from lstmtext.weights import assign_model_weights

    parts = build_translator(config, src_tok.vocab_size, tgt_tok.vocab_size)
    assign_model_weights(parts.model, arrays, str(bundle.file("weights.h5")))
    return Translator(config, src_tok, tgt_tok, ModelStepper(parts.encoder, parts.step, config.jit_compile), parts)


def _bleu_chrf(hypotheses: list[str], references: list[str]) -> dict:
    from sacrebleu.metrics import BLEU, CHRF

    bleu, chrf = BLEU(), CHRF()
    b = bleu.corpus_score(hypotheses, [references])
    c = chrf.corpus_score(hypotheses, [references])
    return {"bleu": round(b.score, 2), "chrf": round(c.score, 2), "signature": str(bleu.get_signature()),
            "chrf_signature": str(chrf.get_signature()), "bleu_details": str(b)}


# ---------------------------------------------------------------- training
class TranslateTrainTask:
    """Adapts the translator to :func:`lstmtext.training.loop.fit`."""

    monitor_mode = "max"

    def __init__(self, config: TranslateConfig, src_tok: Tokenizer, tgt_tok: Tokenizer,
                 train_ids: tuple[list, list], valid_ids: tuple[list, list], valid_text: tuple[list, list],
                 summary: dict, dist=None):
        from lstmtext.training.distribute import Distribution
        from lstmtext.translate.network import build_translator, compile_translator

        self.config, self.src_tok, self.tgt_tok = config, src_tok, tgt_tok
        self.dist = dist or Distribution()
        self.train_src, self.train_tgt = train_ids
        self.valid_src, self.valid_tgt = valid_ids
        self.valid_sources, self.valid_refs = valid_text
        self.summary = summary
        self.monitor = "valid_bleu" if config.early_stopping == "bleu" else "valid_loss"
        self.monitor_mode = "max" if config.early_stopping == "bleu" else "min"
        self.dist.per_replica_batch(config.batch_size)  # the global batch must divide over the replicas
        with self.dist.scope():
            self.parts = build_translator(config, src_tok.vocab_size, tgt_tok.vocab_size)
            self.model = self.parts.model
            compile_translator(self.model, config)
        self.dist.prepare(self.model)
        from lstmtext.translate.decoding import ModelStepper

        self.translator = Translator(config, src_tok, tgt_tok,
                                     ModelStepper(self.parts.encoder, self.parts.step, config.jit_compile))

    def _epoch_pairs(self) -> int:
        n = len(self.train_src)
        return min(self.config.epoch_pairs, n) if self.config.epoch_pairs else n

    def steps_per_epoch(self) -> int:
        return -(-self._epoch_pairs() // self.config.batch_size)

    def on_epoch_begin(self, epoch: int) -> None:
        pass

    def _epoch_indices(self, epoch: int) -> np.ndarray:
        """Indices of ``epoch``'s pairs: a window of a stream of per-pass shuffles (resumable)."""
        n, size = len(self.train_src), self._epoch_pairs()
        start = epoch * size
        out = []
        while len(out) < size:
            p, offset = divmod(start + len(out), n)
            order = np.random.default_rng([self.config.seed, p]).permutation(n)
            out.extend(order[offset: offset + size - len(out)].tolist())
        return np.asarray(out)

    def train_batches(self, epoch: int):
        from lstmtext.training.loop import Batch
        from lstmtext.translate.data import batches

        idx = self._epoch_indices(epoch)
        rng = np.random.default_rng([self.config.seed, 1_000_000 + epoch])
        for b in batches([self.train_src[i] for i in idx], [self.train_tgt[i] for i in idx],
                         self.config.batch_size, self.config.pad_multiple, rng):
            # Every batch has batch_size rows; each replica takes its share.
            x, y = self.dist.local_batch([b.source, b.target_in], b.target_out)
            yield Batch(x=x, y=y, tokens=b.tokens)

    def validate(self) -> dict:
        from lstmtext.translate.data import batches

        total, tokens = 0.0, 0
        for b in batches(self.valid_src, self.valid_tgt, self.config.batch_size, self.config.pad_multiple):
            loss = self.model.test_on_batch([b.source, b.target_in], b.target_out, return_dict=True)["loss"]
            total += float(loss) * b.tokens
            tokens += b.tokens
        metrics = {"valid_loss": total / max(tokens, 1)}
        if self.config.early_stopping == "bleu":
            n = min(len(self.valid_sources), VALID_BLEU_SENTENCES)
            t0 = time.perf_counter()
            translator = self.translator
            if self.config.valid_runtime in ("numpy", "lite"):
                from lstmtext.translate.numpy_runtime import NumpyTranslator

                arrays = {v.path: np.asarray(v.numpy() if hasattr(v, "numpy") else v) for v in self.model.weights}
                translator = Translator(self.config, self.src_tok, self.tgt_tok, NumpyTranslator(arrays, self.config))
            hyps = [h[0][0] for h in translator.translate(self.valid_sources[:n], beam=1)]
            scores = _bleu_chrf(hyps, self.valid_refs[:n])
            metrics.update({"valid_bleu": scores["bleu"], "valid_chrf": scores["chrf"],
                            "valid_decode_seconds": time.perf_counter() - t0})
        return metrics

    def write_bundle(self, directory: Path, metrics: dict, history: list) -> None:
        write_bundle(directory, self.config, self.src_tok, self.tgt_tok, self.model, self.summary,
                     training=self.dist.describe())
        write_json(directory, "metrics.json", metrics)
        write_json(directory, "history.json", history)


def write_bundle(directory: Path, config: TranslateConfig, src_tok: Tokenizer, tgt_tok: Tokenizer, model,
                 summary: dict, training: dict | None = None) -> None:
    """Write config, tokenizers and weights of a translator into ``directory``.

    ``training`` (the strategy it trained under, see
    :meth:`~lstmtext.training.distribute.Distribution.describe`) goes into ``config.json``.
    """
    from lstmtext.weights import save_model_weights

    src_tok.save(directory / "tokenizer" / "source")
    tgt_tok.save(directory / "tokenizer" / "target")
    save_model_weights(model, directory / "weights.h5", config.weights_dtype)
    cfg = dataclasses.asdict(config)
    # Given tokenizer files are copied into the bundle; their paths would not travel.
    cfg["source_tokenizer"] = cfg["target_tokenizer"] = ""
    write_config(directory, TASK, cfg,
                 tokenizer={"joint": config.joint_vocab, "source": src_tok.describe(),
                            "target": tgt_tok.describe()},
                 parameters=int(sum(int(np.prod(v.shape)) for v in model.weights)),
                 data=summary, **({"training": training} if training else {}))


def resolve_config(options: TrainOptions, base: TranslateConfig | None = None) -> TranslateConfig:
    """Defaults (or ``base``), then the TOML file, then ``--set``, then ``--epochs``/``--seed``."""
    return config_io.resolve(TranslateConfig, options.config_file, options.sets,
                             extra={"epochs": options.epochs, "seed": options.seed}, base=base)


def _data_args(files: list, extra: dict, prefix: str) -> dict:
    """``tsv=`` or ``source=``/``target=`` keyword arguments for :func:`read_parallel`."""
    src, tgt = extra.get(f"{prefix}source"), extra.get(f"{prefix}target")
    if files and (src or tgt):
        opt = prefix.replace("_", "-")
        raise UsageError(f"give a TSV file or --{opt}source/--{opt}target files, not both")
    if files:
        if len(files) != 1:
            raise UsageError(f"expected one TSV file, got {len(files)}")
        return {"tsv": files[0]}
    if src and tgt:
        return {"source": src, "target": tgt}
    if src or tgt:
        raise UsageError("give both a source and a target file")
    return {}


def _make_tokenizers(config: TranslateConfig, sources: list[str], targets: list[str],
                     warn=None) -> tuple[Tokenizer, Tokenizer]:
    from lstmtext.tokenizers import train_tokenizer

    given_src = load_tokenizer(config.source_tokenizer) if config.source_tokenizer else None
    given_tgt = load_tokenizer(config.target_tokenizer) if config.target_tokenizer else None
    if config.joint_vocab and not (given_src or given_tgt):
        joint = train_tokenizer(sources + targets, config.vocab_size, config.tokenizer, seed=config.seed, warn=warn)
        return joint, joint
    src = given_src or train_tokenizer(sources, config.vocab_size, config.tokenizer, seed=config.seed, warn=warn)
    tgt = given_tgt or train_tokenizer(targets, config.vocab_size, config.tokenizer, seed=config.seed, warn=warn)
    return src, tgt


def _split_pairs(train_text, train_args: dict):
    """``(train, held-out validation, record)`` of the training pairs (:mod:`lstmtext.training.holdout`)."""
    from lstmtext.training import holdout
    from lstmtext.translate.data import ParallelText

    path = [str(v) for v in train_args.values()]
    pairs = list(zip(train_text.sources, train_text.targets))
    train, valid, record = holdout.take(pairs, path if len(path) > 1 else path[0], "pairs")
    return (ParallelText([s for s, _ in train], [t for _, t in train], train_text.skipped),
            ParallelText([s for s, _ in valid], [t for _, t in valid], {}), record)


def train(options: TrainOptions, reporter=None) -> dict:
    """Train a translator; write ``model-best`` and ``model-last`` under ``options.output``.

    Training data is ``options.train`` (one TSV file) or
    ``options.extra["train_source"]``/``["train_target"]``; validation likewise
    with ``valid``. Without validation data a share of the training pairs is
    held out (:mod:`lstmtext.training.holdout`). ``options.extra["strategy"]`` and
    ``["mixed_precision"]`` choose how it trains (see
    :mod:`lstmtext.training.distribute`; only the chief worker writes into
    ``options.output``).

    Returns:
        The best epoch's metrics.
    """
    from lstmtext.translate.data import encode_source, encode_target, filter_long, read_parallel
    from lstmtext.training import auto, init_from, loop
    from lstmtext.training.reporting import LoggingReporter

    reporter = reporter or LoggingReporter()
    output = Path(options.output)
    train_args = _data_args(options.train, options.extra, "train_")
    valid_args = _data_args(options.valid, options.extra, "valid_")
    if not train_args:
        raise UsageError("give --train FILE.tsv or --train-source and --train-target")
    dist, base = loop.start_training(options, TranslateConfig, TASK)
    config = resolve_config(options, base)
    init = init_from.read_init(options, TASK)
    if init is not None:  # the bundle's tokenizers and sizes; training keys stay as resolved
        if config.source_tokenizer or config.target_tokenizer:
            raise UsageError("source_tokenizer/target_tokenizer and --init exclude each other "
                             "(--init keeps the bundle's tokenizers)")
        config = init_from.init_config(config, init, options, TASK)
    train_text = read_parallel(**train_args, encoding=options.encoding, max_line_chars=config.max_line_chars)
    held_out = None
    if valid_args:
        valid_text = read_parallel(**valid_args, encoding=options.encoding, max_line_chars=None)
    else:
        train_text, valid_text, held_out = _split_pairs(train_text, train_args)
    # Auto keys follow the training pairs: the vocabulary size before the tokenizers are trained, the rest below.
    stats = auto.ParallelStats.from_pairs(train_text.sources, train_text.targets)
    config, chosen = auto.resolve(config, auto.translate_values(stats, config), keys=["vocab_size"])
    # Only the chief writes into output; other workers write into a temporary copy.
    with dist.output(output, options.resume) as output, loop.output_lock(output):
        if options.resume:
            src_tok = load_tokenizer(output / "model-last" / "tokenizer" / "source")
            tgt_tok = load_tokenizer(output / "model-last" / "tokenizer" / "target")
        elif init is not None:
            src_tok = load_tokenizer(init.file("tokenizer/source"))
            tgt_tok = load_tokenizer(init.file("tokenizer/target"))
        else:
            src_tok, tgt_tok = _make_tokenizers(config, train_text.sources, train_text.targets, reporter.message)
        if "vocab_size" in chosen and max(src_tok.vocab_size, tgt_tok.vocab_size) != config.vocab_size:
            used = max(src_tok.vocab_size, tgt_tok.vocab_size)  # lowered to what the text supports
            chosen["vocab_size"] = auto.Choice(used, chosen["vocab_size"].reason)
            config = dataclasses.replace(config, vocab_size=used)
        config, more = auto.resolve(config, auto.translate_values(stats, config))
        chosen.update(more)
        loop.set_seed(config.seed)
        train_src, train_tgt, long_skipped = filter_long(
            encode_source(src_tok, train_text.sources), encode_target(tgt_tok, train_text.targets),
            config.max_length)
        if not train_src:
            raise DataError(f"every training pair is longer than max_length={config.max_length} pieces")
        valid_src = encode_source(src_tok, valid_text.sources, config.max_source_pieces)
        valid_tgt = encode_target(tgt_tok, valid_text.targets)
        summary = {"train": {k: str(v) for k, v in train_args.items()},
                   "valid": {k: str(v) for k, v in valid_args.items()} or "held out from train",
                   "train_pairs": len(train_src), "valid_pairs": len(valid_src),
                   "skipped_empty": train_text.skipped.get("empty", 0),
                   "skipped_long_line": train_text.skipped.get("long_line", 0),
                   "skipped_long": long_skipped}
        notes = [f"{len(train_src):,} training pairs used ({summary['skipped_empty']} empty, "
                 f"{summary['skipped_long_line'] + long_skipped} too long skipped); "
                 f"vocabulary {src_tok.vocab_size:,}/{tgt_tok.vocab_size:,}"]
        if held_out is not None:
            summary["holdout"] = held_out
            notes.append(f"validation: {held_out['held_out']:,} of the {held_out['of']:,} pairs held out "
                         f"(no --valid; {held_out['rule']})")
        target_tokens = sum(len(t) - 1 for t in train_tgt)
        source_tokens = sum(len(x) for x in train_src)
        def estimate(c):
            return auto.epoch_seconds(
                "translate", c, target_tokens, tgt_tok.vocab_size, -(-len(train_src) // c.batch_size),
                {"source_tokens": source_tokens, "source_length": source_tokens / max(len(train_src), 1)})

        config, chosen = auto.fit_options_budget("translate", config, chosen, estimate, options)
        per_epoch = estimate(config)
        reporter.message(auto.summary(stats, chosen, per_epoch, config.epochs, notes))
        if init is not None:
            # Pieces only: each row also holds an end (source) or a start and an end (target).
            for side, ids, marks in (("source", train_src, 1), ("target", train_tgt, 2)):
                init_from.check_coverage(init, sum(row.count(UNK_ID) for row in ids),
                                         sum(len(row) - marks for row in ids), f"{side} tokens")
            summary["init"] = init_from.summary(init)
        dist.check_same("tokenizers and training data",
                        [src_tok.describe(), tgt_tok.describe(), train_src, train_tgt])
        task = TranslateTrainTask(config, src_tok, tgt_tok, (train_src, train_tgt), (valid_src, valid_tgt),
                                  (valid_text.sources, valid_text.targets), summary, dist)
        if init is not None:
            init_from.load_weights(task.model, init)
        loop_config = loop.LoopConfig(
            epochs=config.epochs, lr=config.lr, lr_schedule=config.lr_schedule, lr_decay=config.lr_decay,
            lr_decay_start=config.lr_decay_start, min_lr=config.min_lr, patience=config.patience,
            seed=config.seed, budget=options.budget, budget_started=options.started,
        )
        with dist.failures(output):
            return loop.fit(task, output, loop_config, reporter, resume=options.resume)


# ---------------------------------------------------------------- evaluate / predict / info
def evaluate(bundle: Bundle, options: EvalOptions) -> dict:
    """sacreBLEU BLEU and chrF of the model's translations (detokenised) against references.

    Data: ``options.files`` (one TSV file) or ``options.extra["source"]`` and
    ``["target"]``. ``options.extra["beam"]`` sets the beam (default: the
    bundle's ``beam``), ``options.extra["runtime"]`` the runtime (see
    :func:`load_translator`).
    """
    from lstmtext.translate.data import read_parallel

    args = _data_args(options.files, options.extra, "")
    if not args:
        raise UsageError("give a TSV file or --source and --target files")
    data = read_parallel(**args, encoding=options.encoding, skip_empty=False)
    translator = load_translator(bundle, options.extra.get("runtime", "auto"))
    beam = int(options.extra.get("beam") or translator.config.beam)
    t0 = time.perf_counter()
    hyps = [h[0][0] for h in translator.translate(data.sources, beam=beam, batch_size=options.batch_size)]
    seconds = time.perf_counter() - t0
    result = _bleu_chrf(hyps, data.targets)
    result.update({"sentences": len(hyps), "beam": beam, "seconds": round(seconds, 2),
                   "sentences_per_s": round(len(hyps) / max(seconds, 1e-9), 1)})
    return result


def predict(bundle: Bundle, lines: Iterable[str], options: PredictOptions) -> Iterator[str]:
    """Translate each input line, in order, reading and writing in chunks (streaming).

    Formats: ``text`` (one translation a line; with ``extra["nbest"]`` > 1,
    ``index ||| translation ||| score`` lines) or ``jsonl`` (one object a
    line with ``source``, ``translation``, ``score`` and, for n-best,
    ``nbest``).
    """
    fmt = options.format or "text"
    if fmt not in ("text", "jsonl"):
        raise UsageError(f"translate predicts --format text or jsonl, not {fmt!r}")
    nbest = int(options.extra.get("nbest") or 1)
    if nbest < 1 or nbest > max(options.beam, 1):
        raise UsageError(f"--nbest must be between 1 and the beam size ({options.beam})")
    translator = load_translator(bundle, options.runtime)
    index = 0
    chunk: list[str] = []

    def flush() -> Iterator[str]:
        nonlocal index
        for source, hyps in zip(chunk, translator.translate(chunk, beam=options.beam, nbest=nbest,
                                                            batch_size=options.batch_size)):
            if fmt == "jsonl":
                record = {"source": source, "translation": hyps[0][0], "score": round(hyps[0][1], 4)}
                if nbest > 1:
                    record["nbest"] = [{"translation": t, "score": round(s, 4)} for t, s, _ in hyps]
                yield json.dumps(record, ensure_ascii=False)
            elif nbest > 1:
                for text, score, _ in hyps:
                    yield f"{index} ||| {text} ||| {score:.4f}"
            else:
                yield hyps[0][0]
            index += 1
        chunk.clear()

    for line in lines:
        chunk.append(line)
        if len(chunk) >= int(options.extra.get("window") or PREDICT_CHUNK):
            yield from flush()
    if chunk:
        yield from flush()


def info(bundle: Bundle) -> dict:
    """Task, architecture, parameters, tokenizers, data, metrics and versions."""
    c = bundle.config
    return {
        "task": TASK,
        "path": str(bundle.path),
        "architecture": (f"embedding {c['embedding_dim']} -> {c['encoder_layers']} x BiLSTM "
                         f"{c['encoder_units']}x2 -> {c['decoder_layers']} x LSTM {c['decoder_units']} "
                         f"with {c['attention']} attention and input feeding -> softmax"
                         f"{' (tied)' if c.get('tie_embeddings') else ''}"),
        "parameters": bundle.meta.get("parameters"),
        "tokenizer": bundle.meta.get("tokenizer"),
        "data": bundle.meta.get("data"),
        "metrics": bundle.json("metrics.json", {}),
        "decoding": {"beam": c.get("beam"), "length_penalty": c.get("length_penalty"),
                     "max_length_ratio": c.get("max_length_ratio")},
        "versions": bundle.meta.get("versions"),
        "created": bundle.meta.get("created"),
        "config": c,
    }
