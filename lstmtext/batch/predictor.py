"""A bundle loaded once for batch inference, turning numbered input lines into output lines.

:class:`Predictor` is the engine-neutral part of ``lstmtext.batch``: a worker
of any engine (Ray Data here; a Beam ``ModelHandler`` or a Spark UDF would
hold one the same way) loads it once and calls :meth:`Predictor.run` on
batches of ``(line number, text, read error)`` records. It runs on the light
runtimes only (LiteRT parts or NumPy), so a worker never imports TensorFlow,
and it writes exactly what ``lstmtext predict`` writes for the same lines:
it uses the same loaders, batching windows and renderers.

A record the task cannot take (an undecodable or over-long line, invalid
JSONL, a malformed CoNLL sentence) does not stop the batch: it comes back as
a :class:`Result` with an ``error`` and no output.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from lstmtext import bundle as bundle_io
from lstmtext.errors import BundleError, DataError, UsageError
from lstmtext.tasks import PredictOptions

RUNTIMES = ("auto", "lite", "numpy")  # the Keras runtime would import TensorFlow on every worker
FORMATS = {"lm": ("text", "jsonl"), "ner": ("jsonl", "conll", "text"), "translate": ("text", "jsonl")}
MAX_CHARS = 100_000  # a longer line is a dead letter: one pathological record must not exhaust a worker


@dataclass
class Result:
    """What one input record gave.

    Attributes:
        line: The record's 1-based line number (for a CoNLL sentence, its first line).
        outputs: Output lines, as ``lstmtext predict`` writes them (several for a CoNLL sentence).
        error: Why the record was refused (then ``outputs`` is empty).
        json: Whether ``outputs`` are JSON objects (``jsonl``), so keys can be added to them.
    """

    line: int
    outputs: list[str] = field(default_factory=list)
    error: str | None = None
    json: bool = False


class Predictor:
    """Loads a bundle of any task once and predicts batches of records.

    Args:
        model: A bundle, a training output directory or an installed model's name.
        options: ``lstmtext predict``'s options (``format``, ``top_k``, ``beam``,
            ``batch_size``, ``runtime``; ``extra``: ``nbest``, ``scheme``,
            ``word_column``).
        max_chars: Longer lines are refused (dead letters).

    Raises:
        BundleError: a corrupt or mismatched bundle (raised here, at load time).
        UsageError: options the task does not take.
    """

    def __init__(self, model: str | Path, options: PredictOptions, max_chars: int = MAX_CHARS):
        if options.runtime not in RUNTIMES:
            raise UsageError(f"--runtime must be {', '.join(RUNTIMES)} for batch inference (got "
                             f"'{options.runtime}'; the Keras runtime would import TensorFlow on every worker)")
        self.bundle = bundle_io.read(model, check_weights=False)  # weights are checked when read
        self.task = self.bundle.task
        if options.format is not None and options.format not in FORMATS[self.task]:
            raise UsageError(f"--format {options.format} is not available for a '{self.task}' model "
                             f"({', '.join(FORMATS[self.task])})")
        self.options = options
        self.max_chars = max_chars
        try:
            self._runner = {"lm": _LM, "ner": _NER, "translate": _Translate}[self.task](self.bundle, options)
        except BundleError as exc:  # name the bundle: the loaders' messages may name only a variable
            if str(self.bundle.path) in str(exc):
                raise
            raise BundleError(f"{self.bundle.path}: {exc}") from None

    @property
    def window(self) -> int:
        """Records that ``lstmtext predict`` batches together (and sorts by length): the default chunk size."""
        return self._runner.window

    def output_format(self, input_format: str = "text") -> str:
        """The format written for input of ``input_format`` (the task's default unless ``--format``)."""
        if self.options.format:
            return self.options.format
        return {"lm": "text", "translate": "text"}.get(self.task) or (
            "conll" if input_format == "conll" else "jsonl")

    def input_format(self, first_lines: list[str], path: str | None) -> str:
        """A file's input format: ``conll`` or ``jsonl`` for a tagger that detects them, else ``text``."""
        if self.task != "ner":
            return "text"
        from lstmtext.ner.api import _peek_format

        fmt = (self.options.extra or {}).get("input_format", "auto")
        return _peek_format(first_lines, path) if fmt == "auto" else fmt

    def check(self) -> None:
        """Predict one line, so that a bundle whose weights do not fit fails here, before a pipeline starts."""
        self.run([(1, "a", None)], "text", "<check>")

    def run(self, records: Sequence[tuple[int, str | None, str | None]], input_format: str = "text",
            name: str = "<input>") -> list[Result]:
        """Predict a batch of ``(line number, text, read error)`` records, in input order.

        Args:
            records: Consecutive lines; ``text`` is ``None`` when the line could not be
                read (``read error`` says why). For CoNLL input the batch must end at a
                sentence boundary.
            input_format: ``text``, ``jsonl`` or ``conll`` (the tagger's input formats).
            name: The file name used in messages.

        Returns:
            One :class:`Result` per record (per sentence or separator line for CoNLL),
            with outputs or an error.
        """
        good: list[tuple[int, str]] = []
        refused: dict[int, str] = {}
        for number, text, error in records:
            if error is None and text is not None and len(text) > self.max_chars:
                error = f"line of {len(text)} characters is longer than --max-chars {self.max_chars}"
            if error is not None:
                refused[number] = error
            else:
                good.append((number, text))
        fmt = self.output_format(input_format)
        if input_format == "conll":
            results = self._runner.conll(records, refused, fmt, name)
        else:
            results = self._runner.lines(good, input_format, fmt, name) if good else []
            results += [Result(number, error=why) for number, why in refused.items()]
            results.sort(key=lambda r: r.line)
        for r in results:
            r.json = fmt == "jsonl"
        return results


def with_key(output: str, file: str, line: int) -> str:
    """A JSONL output line with ``"file"`` and ``"line"`` first, so that it joins back to its input."""
    return json.dumps({"file": file, "line": line, **json.loads(output)}, ensure_ascii=False)


class _LM:
    """Next words: ``lstmtext predict`` of a language model."""

    def __init__(self, bundle, options: PredictOptions):
        from lstmtext.lm.api import load_step_model

        self.model, self.tokenizer = load_step_model(bundle, options.runtime)
        self.top_k = options.top_k
        self.window = 4096  # one line at a time: any chunk gives predict's results

    def lines(self, lines, input_format, fmt, name) -> list[Result]:
        from lstmtext.decoding.nextword import next_words
        from lstmtext.lm.api import _prompt_ids

        out = []
        for number, line in lines:
            log_probs, state = self.model.feed(_prompt_ids(self.tokenizer, line))
            words = next_words(self.model, log_probs[0], state, self.tokenizer, k=self.top_k)
            record = {"text": line, "next": [{"word": w, "prob": round(p, 6)} for w, p in words]}
            out.append(Result(number, [json.dumps(record, ensure_ascii=False) if fmt == "jsonl" else
                                       "\t".join(f"{w['word']} {w['prob']:.4f}" for w in record["next"])]))
        return out

    def conll(self, *args):
        raise UsageError("CoNLL input is for a tagger")


class _Translate:
    """Translations: ``lstmtext predict`` of a translator."""

    def __init__(self, bundle, options: PredictOptions):
        from lstmtext.translate.api import PREDICT_CHUNK, load_translator

        self.nbest = int((options.extra or {}).get("nbest") or 1)
        if self.nbest < 1 or self.nbest > max(options.beam, 1):
            raise UsageError(f"--nbest must be between 1 and the beam size ({options.beam})")
        self.translator = load_translator(bundle, options.runtime)
        self.beam, self.batch_size, self.window = options.beam, options.batch_size, PREDICT_CHUNK

    def lines(self, lines, input_format, fmt, name) -> list[Result]:
        out = []
        for k in range(0, len(lines), self.window):  # predict's streaming chunks
            chunk = lines[k: k + self.window]
            hyps_all = self.translator.translate([t for _, t in chunk], beam=self.beam, nbest=self.nbest,
                                                 batch_size=self.batch_size)
            for (number, source), hyps in zip(chunk, hyps_all):
                if fmt == "jsonl":
                    record = {"source": source, "translation": hyps[0][0], "score": round(hyps[0][1], 4)}
                    if self.nbest > 1:
                        record["nbest"] = [{"translation": t, "score": round(s, 4)} for t, s, _ in hyps]
                    lines_out = [json.dumps(record, ensure_ascii=False)]
                elif self.nbest > 1:  # Moses n-best lists: the index is the 0-based input line
                    lines_out = [f"{number - 1} ||| {text} ||| {score:.4f}" for text, score, _ in hyps]
                else:
                    lines_out = [hyps[0][0]]
                out.append(Result(number, lines_out))
        return out

    def conll(self, *args):
        raise UsageError("CoNLL input is for a tagger")


class _NER:
    """Entities: ``lstmtext predict`` of a tagger, on text, JSONL or CoNLL lines."""

    def __init__(self, bundle, options: PredictOptions):
        from lstmtext.ner import schemes
        from lstmtext.ner.api import WINDOW, load

        extra = options.extra or {}
        self.scheme = extra.get("scheme")
        if self.scheme:
            schemes.normalize_scheme(self.scheme)
        self.word_column = int(extra.get("word_column") or 1)
        self.tagger = load(bundle, options.runtime, options.batch_size)
        if self.tagger.input == "chars":
            raise UsageError("batch inference of character-sequence (FASTA) taggers is not supported yet: "
                             "use lstmtext predict")
        self.window = WINDOW

    def _parse(self, numbered, input_format, name):
        """``_items`` of ``lstmtext predict`` with the error policy: a bad record raises DataError."""
        from lstmtext.ner.api import _items
        from lstmtext.ner.data import _Problems

        return list(_items(iter(numbered), input_format, self.word_column, _Problems("error"), name,
                           self.tagger.feature_columns))

    def _tag(self, parsed: list[tuple[int, str, object]], fmt, input_format) -> list[Result]:
        from lstmtext.ner.api import _render

        out = []
        k = 0
        while k < len(parsed):  # predict's windows: `window` sentences, sorted by length inside
            end, count = k, 0
            while end < len(parsed) and count < self.window:
                count += parsed[end][1] == "sentence"
                end += 1
            chunk = parsed[k:end]
            sentences = [item for _, kind, item in chunk if kind == "sentence"]
            tagged = iter(self.tagger.tag([s.tokens for s in sentences], self.scheme,
                                          [s.features for s in sentences] if self.tagger.feature_columns else None))
            for number, kind, item in chunk:
                tags = next(tagged) if kind == "sentence" else None
                out.append(Result(number, list(_render(kind, item, tags, fmt, input_format, self.tagger.kind))))
            k = end
        return out

    def lines(self, lines, input_format, fmt, name) -> list[Result]:
        parsed, refused = [], []
        for number, line in lines:
            try:
                parsed += [(number, kind, item) for kind, item in self._parse([(number, line)], input_format, name)]
            except DataError as exc:
                refused.append(Result(number, error=exc.message))
        return self._tag(parsed, fmt, input_format) + refused

    def conll(self, records, refused: dict[int, str], fmt, name) -> list[Result]:
        """CoNLL lines: each sentence (lines up to a blank line) is one record; a bad line refuses its sentence."""
        blocks, block = [], []
        for number, text, _ in records:
            block.append((number, text))
            if text is not None and not text.strip():
                blocks.append(block)
                block = []
        if block:
            blocks.append(block)
        from lstmtext.ner.data import DOCSTART

        parsed, order = [], []  # order: an index into parsed, or a refused sentence's Result
        for block in blocks:
            bad = [n for n, _ in block if n in refused]
            try:
                if bad:
                    raise DataError(refused[bad[0]], name, bad[0])
                items = self._parse(block, "conll", name)
            except DataError as exc:
                order.append(Result(block[0][0], error=exc.message if exc.line is None
                                    else f"line {exc.line}: {exc.message}"))
                continue
            # Sentences know their first line; separators (blank, -DOCSTART-) take theirs in turn.
            raw_numbers = iter([n for n, t in block if not t.split() or t.split()[0] == DOCSTART])
            for kind, item in items:
                order.append(len(parsed))
                parsed.append((item.line if kind == "sentence" else next(raw_numbers), kind, item))
        tagged = self._tag(parsed, fmt, "conll")
        return [tagged[entry] if isinstance(entry, int) else entry for entry in order]
