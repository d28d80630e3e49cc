"""Sequence tagging API (entities, chunks, part of speech, residues): train, evaluate, predict, info.

Each function returns data; the command line formats it. A tagger's labels
are spans (entity F1) or per-token labels (accuracy, per-label scores and a
confusion table); see :mod:`lstmtext.ner.labels`. ``evaluate`` and
``predict`` run on the NumPy runtime by default and then never import
TensorFlow or JAX. Scores are percentages (0-100), as conlleval prints them.

Options read from ``EvalOptions.extra`` / ``PredictOptions.extra``:
``word_column`` and ``tag_column`` (1-based; negative from the end),
``scheme`` (evaluate: the file's scheme, default detected; predict: the
output scheme, default the training data's), ``input_format`` (predict:
``auto``, ``text``, ``conll`` or ``jsonl``), ``on_malformed`` (``error`` or
``warn``) and ``window`` (predict: sentences read ahead and sorted by length).
"""

from __future__ import annotations

import itertools
import json
import time
from pathlib import Path
from typing import Iterable, Iterator

from lstmtext.bundle import Bundle
from lstmtext.errors import DataError, UsageError
from lstmtext.ner import labels, schemes
from lstmtext.ner.data import (DOCSTART, Sentence, _Problems, check_scheme, detect_file_scheme, iter_conll,
                               iter_tagged, json_sentence, text_sentence)
from lstmtext.ner.metrics import EntityCounter, LabelCounter
from lstmtext.tasks import EvalOptions, PredictOptions, TrainOptions

TASK = "ner"
FORMATS = ("jsonl", "conll", "text")
INPUT_FORMATS = ("auto", "text", "conll", "jsonl")
WINDOW = 4096  # sentences read ahead when streaming: bounds memory, still sorts well


def train(options: TrainOptions, reporter=None) -> dict:
    """Train a BiLSTM-CRF tagger.

    ``options.extra`` may hold ``embeddings``, ``word_column``,
    ``tag_column`` and ``scheme`` (config keys set from the command line),
    and ``strategy`` and ``mixed_precision`` (see
    :mod:`lstmtext.training.distribute`; only the chief worker writes into
    ``options.output``).

    Returns:
        The best epoch's metrics (``f1``, ``precision``, ``recall``,
        ``accuracy`` on the validation data, 0-100), ``per_type``,
        ``epochs_run``, ``train_seconds`` and ``output``.
    """
    from lstmtext.ner.trainer import train as run
    from lstmtext.training.reporting import LoggingReporter

    return run(options, reporter or LoggingReporter())


def load(bundle: Bundle, runtime: str = "auto", batch_size: int | None = None):
    """A :class:`~lstmtext.ner.tagger.Tagger` for ``bundle`` (runtime: auto, lite, numpy or keras)."""
    from lstmtext.ner.tagger import Tagger

    return Tagger(bundle, runtime, batch_size)


def evaluate(bundle: Bundle, options: EvalOptions) -> dict:
    """Scores of the tagger on CoNLL or JSONL files.

    Returns:
        Span labels: ``precision``, ``recall``, ``f1``, ``accuracy`` (0-100,
        identical to conlleval/seqeval on the same predictions),
        ``per_type``, counts, ``scheme`` and ``tokens_per_s``. Per-token
        labels: ``accuracy``, ``macro_f1``, ``per_label`` (precision, recall,
        F1, support), ``confusion`` (``{gold: {predicted: count}}``), counts
        and ``tokens_per_s``.

    Raises:
        DataError: a per-token label the model never saw in training, naming
            the file and line.
    """
    if not options.files:
        raise UsageError("give one or more tagged files to evaluate")
    extra = options.extra or {}
    config = bundle.config
    tagger = load(bundle, extra.get("runtime", "auto"), options.batch_size)
    word_column = int(extra.get("word_column") or config.get("word_column", 1))
    tag_column = int(extra.get("tag_column") or config.get("tag_column", -1))
    policy = extra.get("on_malformed", "error")
    window = int(extra.get("window") or WINDOW)
    spans = tagger.kind == labels.SPANS
    columns = tagger.feature_columns
    counter = EntityCounter() if spans else LabelCounter()
    schemes_used = []
    problems = _Problems(policy)
    t0 = time.perf_counter()
    if tagger.input == "chars":
        _score_fasta(tagger, options, counter, window)
    for path in options.files if tagger.input != "chars" else ():
        # Two streaming passes (detect the scheme, then tag in windows) keep
        # memory bounded whatever the file's size.
        scheme = None
        if spans:
            scheme = (schemes.normalize_scheme(extra["scheme"]) if extra.get("scheme")
                      else detect_file_scheme(path, word_column, tag_column, options.encoding))
            schemes_used.append(scheme)
        chunk: list = []

        def flush():
            found = tagger.tag([s.tokens for s in chunk], scheme, [s.features for s in chunk] if columns else None)
            for sent, tags in zip(chunk, found):
                counter.update(sent.tags, tags)
            chunk.clear()

        for sent in iter_tagged(path, word_column, tag_column, policy, options.encoding, problems,
                                check_tags=spans, feature_columns=columns):
            if spans:
                check_scheme([sent], scheme, problems)
            else:
                check_known(sent, tagger.vocab.tag_index, path)
            chunk.append(sent)
            if len(chunk) >= window:
                flush()
        flush()
    if not counter.sentences:
        raise DataError("no tagged sentences found", options.files[0])
    seconds = time.perf_counter() - t0
    result = counter.result()
    if spans:
        result["scheme"] = schemes_used[0] if len(set(schemes_used)) == 1 else schemes_used
    else:
        # Q3 (Q8) for three (eight) residue states: the field's name for per-residue accuracy.
        q = {f"q{len(tagger.vocab.tags)}": result["accuracy"]} if tagger.input == "chars" else {}
        result = {"label_kind": labels.TOKENS, **q, **result}
    result["scale"] = "percent (0-100)"
    result["tokens_per_s"] = result["tokens"] / max(seconds, 1e-9)
    if problems.count:
        result["malformed"] = problems.count
        result["malformed_examples"] = problems.messages
    return result


RECORDS = ("all", "validation", "train")


def _score_fasta(tagger, options: EvalOptions, counter: LabelCounter, window: int) -> None:
    """Score a character tagger on FASTA files with their ``labels`` (and ``mask``) files, matched by position.

    ``extra["records"]``: ``all`` (default), ``validation`` (headers marked
    ``VALIDATION=True``) or ``train`` (the others).
    """
    from lstmtext.ner import fasta

    extra = options.extra or {}
    label_files, mask_files = list(extra.get("labels") or []), list(extra.get("mask") or [])
    which = extra.get("records") or "all"
    if which not in RECORDS:
        raise UsageError(f"unknown --records '{which}' ({', '.join(RECORDS)})")
    if len(label_files) != len(options.files) or (mask_files and len(mask_files) != len(options.files)):
        raise UsageError("a character tagger scores FASTA sequences: give one --labels file (and optionally one "
                         "--mask file) for each sequence file")
    for k, path in enumerate(options.files):
        if not fasta.is_fasta(path):
            raise DataError("a character tagger scores FASTA sequences ('>ID' headers) with --labels", path)
        sentences, validation = fasta.read_labelled(path, label_files[k], mask_files[k] if mask_files else None,
                                                    options.encoding)
        chosen = [s for s, v in zip(sentences, validation) if which == "all" or v == (which == "validation")]
        for sent in chosen:
            check_known(sent, tagger.vocab.tag_index, label_files[k], record=True)
        for i in range(0, len(chosen), window):
            part = chosen[i: i + window]
            for sent, tags in zip(part, tagger.tag([s.tokens for s in part])):
                counter.update(sent.tags, tags)


def check_known(sent: Sentence, known: dict, path, record: bool = False) -> None:
    """Refuse a gold per-token label the model never saw in training (it could only be scored wrong)."""
    for i, tag in enumerate(sent.tags or ()):
        if tag is not None and tag not in known:
            line = (sent.line + i if sent.lines is not None else sent.line) if sent.line else None
            shown = ", ".join(list(known)[:20]) + (" ..." if len(known) > 20 else "")
            where = f"record '{sent.text}', residue {i + 1}: " if record else ""
            raise DataError(f"{where}label '{tag}' was never seen in training (the model knows {shown})", path,
                            None if record else line)


def _peek_format(first: list[str], input_path: str | None) -> str:
    """Guess the input format from a file name or the first lines."""
    if input_path and input_path != "-":
        suffix = Path(input_path).suffix.lower()
        if suffix in (".jsonl", ".ndjson"):
            return "jsonl"
        if suffix in (".conll", ".conllu", ".bio", ".iob", ".bioes", ".tsv"):
            return "conll"
    body = [line for line in first if line.strip()]
    if not body:
        return "text"
    if body[0].lstrip().startswith("{"):
        return "jsonl"
    if body[0].split()[0] == DOCSTART:
        return "conll"
    widths = {len(line.split()) for line in body}
    blank_between = any(not line.strip() for line in first[first.index(body[0]):])
    # Column files have lines of one width and blank lines between sentences;
    # plain text (one sentence a line) rarely looks like that for long.
    if len(widths) == 1 and blank_between and len(body) >= 3:
        return "conll"
    return "text"


def _items(lines: Iterator[tuple[int, str]], fmt: str, word_column: int, problems: _Problems,
           name: str, feature_columns=()) -> Iterator[tuple[str, object]]:
    """Input as a stream of ``("sentence", Sentence)`` and ``("raw", line)`` items."""
    if fmt == "conll":
        yield from iter_conll(lines, name, word_column, None, problems.policy, problems,
                              feature_columns=feature_columns)
        return
    if feature_columns and fmt != "jsonl":
        raise UsageError(f"this tagger reads column(s) {', '.join(map(str, feature_columns))} as input "
                         f"features: give CoNLL input that has them, or JSONL 'tokens' records with "
                         f"'features' (this input reads as {fmt})")
    for number, line in lines:
        if fmt == "jsonl":
            if not line.strip():
                yield "raw", line
                continue
            try:
                obj = json.loads(line)
            except (ValueError, RecursionError) as exc:  # absurdly nested JSON recurses
                problems.report(f"invalid JSON ({exc.args[0] if exc.args else exc})", name, number)
                continue
            sent = json_sentence(obj, name, number, problems, need_tags=False, feature_columns=feature_columns)
            if sent is not None:
                yield "sentence", sent
        else:
            yield "sentence", text_sentence(line, number, name)


def _entities(sent: Sentence, tags: list[str]) -> list[dict]:
    found = []
    for etype, start, end in schemes.spans(tags):
        if sent.offsets is not None and sent.text is not None:
            s, e = sent.offsets[start][0], sent.offsets[end - 1][1]
            found.append({"text": sent.text[s:e], "type": etype, "start": s, "end": e})
        else:
            found.append({"text": " ".join(sent.tokens[start:end]), "type": etype,
                          "start": start, "end": end, "unit": "token"})
    return found


def _markup(sent: Sentence, tags: list[str]) -> str:
    spans = schemes.spans(tags)
    if sent.offsets is not None and sent.text is not None:
        text, out, pos = sent.text, [], 0
        for etype, start, end in spans:
            s, e = sent.offsets[start][0], sent.offsets[end - 1][1]
            out.append(text[pos:s] + f"[{etype} " + text[s:e] + "]")
            pos = e
        return "".join(out) + text[pos:]
    words = list(sent.tokens)
    for etype, start, end in reversed(spans):
        words[start:end] = [f"[{etype} " + " ".join(words[start:end]) + "]"]
    return " ".join(words)


def _render(kind: str, item, tags: list[str] | None, fmt: str, in_fmt: str,
            label_kind: str = labels.SPANS) -> Iterator[str]:
    """Output lines of one input item (``label_kind``: the tagger's, :mod:`lstmtext.ner.labels`)."""
    if kind == "raw":  # a blank line, a -DOCSTART- line, or a blank JSONL line
        line = item
        if fmt == "conll":
            is_doc = bool(line.split()) and line.split()[0] == DOCSTART
            # -DOCSTART- gets a tag column too, so every token line keeps the same width.
            yield line + ("\t" if "\t" in line else " ") + "O" if is_doc else line
        elif in_fmt != "conll":
            # Line-based input keeps one output line per input line; CoNLL
            # input gives one line per sentence, so its separators vanish.
            yield json.dumps({"text": line, "entities": []}, ensure_ascii=False) if fmt == "jsonl" else line
        return
    sent: Sentence = item
    tags = tags or []
    if fmt == "conll":
        if sent.lines is not None:
            for line, tag in zip(sent.lines, tags):
                yield line + ("\t" if "\t" in line else " ") + tag
        else:
            for tok, tag in zip(sent.tokens, tags):
                yield f"{tok} {tag}"
            yield ""
    elif label_kind == labels.TOKENS:
        if fmt == "jsonl":
            record = {"text": sent.text} if sent.text is not None else {}
            yield json.dumps({**record, "tokens": sent.tokens, "tags": tags}, ensure_ascii=False)
        else:
            yield " ".join(f"{tok}/{tag}" for tok, tag in zip(sent.tokens, tags))
    elif fmt == "jsonl":
        if sent.text is not None:
            yield json.dumps({"text": sent.text, "entities": _entities(sent, tags)}, ensure_ascii=False)
        else:
            yield json.dumps({"tokens": sent.tokens, "tags": tags,
                              "entities": _entities(sent, tags)}, ensure_ascii=False)
    else:
        yield _markup(sent, tags)


def predict(bundle: Bundle, lines: Iterable[str], options: PredictOptions) -> Iterator[str]:
    """Tag text and yield output lines.

    Input: plain text (one sentence a line), CoNLL columns, or JSONL
    (``{"text": ...}`` or ``{"tokens": [...]}``), detected from the file name
    or the first lines unless ``extra["input_format"]`` says. Output formats:
    ``jsonl`` (default for text: ``{"text", "entities": [{text, type, start,
    end}]}`` with character offsets into the line; for tokenised input
    ``{"tokens", "tags", "entities"}`` with token offsets and ``"unit":
    "token"``), ``conll`` (default for
    CoNLL: the input lines with the predicted tag appended) and ``text``
    (inline markup: ``[PER Angela Merkel] visited [LOC Paris]``). A tagger of
    per-token labels writes ``{"text", "tokens", "tags"}`` (``jsonl``) and
    ``word/TAG`` pairs (``text``).

    The input is read in windows of sentences, tagged in length-sorted
    batches and written in input order, so memory stays bounded.
    """
    extra = options.extra or {}
    fmt_in = extra.get("input_format", "auto")
    if fmt_in not in INPUT_FORMATS:
        raise UsageError(f"unknown input format '{fmt_in}' (auto, text, conll or jsonl)")
    if options.format is not None and options.format not in FORMATS:
        raise UsageError(f"unknown output format '{options.format}' for a tagger (jsonl, conll or text)")
    out_scheme = extra.get("scheme")
    if out_scheme:
        schemes.normalize_scheme(out_scheme)
    tagger = load(bundle, options.runtime, options.batch_size)
    name = str(extra.get("input_path") or "<input>")
    numbered = ((i, line.rstrip("\r\n")) for i, line in enumerate(lines, start=1))
    if tagger.input == "chars":
        yield from _predict_sequences(tagger, numbered, options, name)
        return
    head = list(itertools.islice(numbered, 200))
    if fmt_in == "auto":
        fmt_in = _peek_format([line for _, line in head], extra.get("input_path"))
    fmt = options.format or ("conll" if fmt_in == "conll" else "jsonl")
    problems = _Problems(extra.get("on_malformed", "error"))
    word_column = int(extra.get("word_column") or 1)
    items = _items(itertools.chain(head, numbered), fmt_in, word_column, problems, name, tagger.feature_columns)
    window = int(extra.get("window") or WINDOW)
    while True:
        chunk = []
        count = 0
        for kind, item in items:
            chunk.append((kind, item))
            if kind == "sentence":
                count += 1
                if count >= window:
                    break
        if not chunk:
            break
        sentences = [item for kind, item in chunk if kind == "sentence"]
        tagged = iter(tagger.tag([s.tokens for s in sentences], out_scheme,
                                 [s.features for s in sentences] if tagger.feature_columns else None))
        for kind, item in chunk:
            yield from _render(kind, item, next(tagged) if kind == "sentence" else None, fmt, fmt_in, tagger.kind)


SEQUENCE_FORMATS = ("fasta", "jsonl", "text")


def _predict_sequences(tagger, numbered: Iterator[tuple[int, str]], options: PredictOptions,
                       name: str) -> Iterator[str]:
    """A character tagger's predictions: FASTA in (``>ID`` headers) or one sequence a line.

    Output ``fasta`` (the default for FASTA input: each record's id and its
    labels, one per residue) or ``jsonl`` (the default for lines:
    ``{"id", "sequence", "labels"}``, ``id`` the FASTA id or the line number)
    or ``text`` (the labels alone, a line per sequence).
    A blank input line gives an empty record; an empty FASTA record, or a
    character that is no residue letter, stops with its record and line.
    Records are tagged ``window`` at a time, each in windows of
    ``max_length`` residues, so memory stays bounded.
    """
    from lstmtext.ner import fasta

    if options.format is not None and options.format not in SEQUENCE_FORMATS:
        raise UsageError(f"unknown output format '{options.format}' for a character tagger (fasta, jsonl or text)")
    head = list(itertools.islice(numbered, 50))
    lines = itertools.chain(head, numbered)
    is_fasta = next((line for _, line in head if line.strip()), "").lstrip().startswith(">")
    fmt = options.format or ("fasta" if is_fasta else "jsonl")
    if is_fasta:
        records = fasta.iter_records(lines, name)
    else:
        records = (fasta.Record(str(n), "", "".join(line.split()), n) for n, line in lines)
    window = int((options.extra or {}).get("window") or WINDOW)
    while True:
        chunk = list(itertools.islice(records, window))
        if not chunk:
            return
        for r in chunk:
            if r.sequence or is_fasta:
                fasta.check_sequence(r, name)
        found = tagger.tag([r.sequence for r in chunk])
        for r, tags in zip(chunk, found):
            labels_ = "".join(tags)
            if fmt == "fasta":
                yield from fasta.format_record(f"{r.id} {r.description}".rstrip(), labels_)
            elif fmt == "text":
                yield labels_
            else:
                yield json.dumps({"id": r.id, "sequence": r.sequence, "labels": labels_}, ensure_ascii=False)


def info(bundle: Bundle) -> dict:
    """What a tagger bundle holds: task, entity types, schemes, sizes, scores."""
    meta = bundle.meta
    vocab = bundle.json("vocab.json") or {}
    metrics = bundle.json("metrics.json") or {}
    config = bundle.config
    weights = bundle.file("weights.h5")
    return {
        "task": TASK,
        "path": str(bundle.path),
        "label_kind": labels.kind_of(config),
        "input": config.get("input", "words"),
        "feature_columns": config.get("feature_columns", ""),
        "entity_types": meta.get("entity_types", []),
        "labels": meta.get("labels", []),
        "data_scheme": meta.get("data_scheme"),
        "internal_scheme": config.get("tag_scheme"),
        "head": config.get("head"),
        "char_encoder": config.get("char_encoder"),
        "layers": config.get("num_layers"),
        "hidden_size": config.get("hidden_size"),
        "words": len(vocab.get("words", [])),
        "chars": len(vocab.get("chars", [])),
        "tags": len(vocab.get("tags", [])),
        "parameters": _parameters(weights),
        "weights_bytes": weights.stat().st_size if weights.is_file() else 0,
        "valid_f1": metrics.get("f1"),
        "valid_accuracy": metrics.get("accuracy"),
        "valid_per_type": {k: v.get("f1") for k, v in (metrics.get("per_type") or {}).items()},
        "epoch": metrics.get("epoch"),
        "embeddings": meta.get("embeddings"),
        "train_data": meta.get("train_data"),
        "versions": meta.get("versions"),
        "created": meta.get("created"),
    }


def _parameters(weights: Path) -> int:
    """Number of stored weights, read from the HDF5 headers without loading them."""
    if not weights.is_file():
        return 0
    import h5py

    total = 0
    with h5py.File(weights, "r") as f:
        def visit(_, obj):
            nonlocal total
            if isinstance(obj, h5py.Dataset):
                total += int(obj.size)
        f.visititems(visit)
    return total
