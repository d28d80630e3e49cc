"""``lstmtext data check``: what stands between a user's data and a good model.

:func:`check` reads training (and optionally validation) files of a task
and returns a dict of statistics, warnings with counts, and the values the
``auto`` keys would take (:mod:`lstmtext.training.auto`). Nothing here
raises on a problem in the data, which is what it reports: an invalid UTF-8
byte, a byte-order mark, CRLF line ends, control characters, blank,
duplicate or over-long lines, too little data, validation words unknown to
the training data, and for the tagger the tag scheme and its violations.
Missing files and unknown tasks are still errors. It never imports
TensorFlow.
"""

from __future__ import annotations

import collections
import dataclasses
from pathlib import Path
from typing import Any, Iterable

from lstmtext.errors import UsageError
from lstmtext.io import bom_length, check_readable
from lstmtext.tasks import task_name

TASKS = ("lm", "ner", "translate")
# Below these sizes a model learns little: say so (AUTO_DEFAULTS.md shows the scores at each size).
LITTLE = {"lm": (50_000, "words"), "ner": (1_000, "sentences"), "translate": (10_000, "pairs")}
# A line this long is probably not line-broken text (a whole document on one line).
LONG_LINE_CHARS = {"lm": 20_000, "ner": 2_000, "translate": 2_000}
LONG_SENTENCE_TOKENS = 200  # a tagged "sentence" this long probably lacks blank lines between sentences
FEW_ENTITIES = 50  # an entity type with fewer training mentions is hard to learn
RATIO = 3.0  # translation pairs with one side this many times longer than the other
MAX_EXAMPLES = 3


@dataclasses.dataclass
class _Scan:
    """One file, decoded leniently, with what is odd about its bytes."""

    path: str
    lines: list[str]
    crlf: int = 0
    bom: bool = False
    invalid: list[str] = dataclasses.field(default_factory=list)
    invalid_lines: int = 0
    control_lines: int = 0
    control_first: str = ""
    blank: int = 0
    long_lines: int = 0
    long_first: str = ""

    def report(self) -> dict:
        return {"path": self.path, "lines": len(self.lines), "blank_lines": self.blank, "crlf_lines": self.crlf,
                "bom": self.bom, "invalid_utf8_lines": self.invalid_lines, "invalid_utf8_first": self.invalid,
                "control_char_lines": self.control_lines, "long_lines": self.long_lines}


def _scan(path: Path, encoding: str, long_chars: int) -> _Scan:
    """Read ``path`` line by line; bytes that do not decode become U+FFFD and are counted."""
    check_readable(path)
    scan = _Scan(str(path), [])
    offset = 0
    with open(path, "rb") as fh:
        for number, raw in enumerate(fh, start=1):
            if number == 1 and (skip := bom_length(raw, encoding)):
                scan.bom = True
                raw, offset = raw[skip:], skip
            if raw.endswith(b"\r\n"):
                scan.crlf += 1
            try:
                text = raw.decode(encoding)
            except UnicodeDecodeError as exc:
                scan.invalid_lines += 1
                if len(scan.invalid) < MAX_EXAMPLES:
                    scan.invalid.append(f"{path}:{number} (byte offset {offset + exc.start})")
                text = raw.decode(encoding, errors="replace")
            except LookupError:
                raise UsageError(f"unknown encoding '{encoding}'") from None
            offset += len(raw)
            text = text.rstrip("\r\n")
            if any(ch < " " and ch != "\t" for ch in text) or "\x7f" in text:
                scan.control_lines += 1
                scan.control_first = scan.control_first or f"{path}:{number}"
            if not text.strip():
                scan.blank += 1
            if len(text) > long_chars:
                scan.long_lines += 1
                scan.long_first = scan.long_first or f"{path}:{number}"
            scan.lines.append(text)
    return scan


def _file_warnings(scan: _Scan, task: str) -> list[str]:
    out = []
    n = len(scan.lines)
    if scan.invalid_lines:
        out.append(f"{scan.path}: {_n(scan.invalid_lines, 'line is', 'lines are')} not valid UTF-8, first at "
                   f"{', '.join(scan.invalid)} (training stops there; fix the bytes or pass --encoding)")
    if scan.bom:
        out.append(f"{scan.path}: starts with a UTF-8 byte-order mark (skipped when reading; other tools may "
                   "read it as part of the first word)")
    if scan.crlf:
        out.append(f"{scan.path}: {scan.crlf:,} of {_n(n, 'line')} end in CRLF (Windows line ends); they are read "
                   "like LF, but other tools may keep the CR")
    if scan.control_lines:
        out.append(f"{scan.path}: {_n(scan.control_lines, 'line holds', 'lines hold')} control characters, first at "
                   f"{scan.control_first}")
    if scan.long_lines:
        out.append(f"{scan.path}: {_n(scan.long_lines, 'line')} longer than {LONG_LINE_CHARS[task]:,} characters, "
                   f"first at {scan.long_first} (whole documents on one line?)")
    if task != "ner" and scan.lines and scan.blank == n:
        out.append(f"{scan.path}: every line is blank")
    return out


def _n(count: int, one: str, many: str | None = None) -> str:
    """``"1 line"``, ``"2,000 lines"``."""
    return f"{count:,} {one if count == 1 else many or one + 's'}"


def _duplicates(items: Iterable) -> int:
    counts = collections.Counter(items)
    return sum(c - 1 for c in counts.values() if c > 1)


def _share(part: int, whole: int) -> float:
    return round(part / whole, 4) if whole else 0.0


def _auto_report(chosen: dict) -> dict:
    return {key: {"value": c.value, "reason": c.reason} for key, c in chosen.items()}


# ---------------------------------------------------------------- language model
def _check_lm(train: list[_Scan], valid: list[_Scan], warnings: list[str]) -> dict:
    from lstmtext.lm.config import LMConfig
    from lstmtext.training import auto, holdout

    lines = [line for s in train for line in s.lines]
    text = [line for line in lines if line.strip()]
    stats = auto.TextStats.from_lines(text)
    report: dict[str, Any] = {"train": dataclasses.asdict(stats)}
    del report["train"]["tokens"]
    dup = _duplicates(text)
    report["train"]["duplicate_lines"] = dup
    if dup:
        warnings.append(f"training text: {_n(dup, 'duplicate line')} ({100 * dup / len(text):.1f}% of the non-blank "
                        "lines)")
    _little(warnings, "lm", stats.words)
    if valid:
        vtext = [line for s in valid for line in s.lines if line.strip()]
        known = _vocabulary(text)
        words = [w for line in vtext for w in line.split()]
        unknown = sum(1 for w in words if w not in known)
        overlap = len(set(vtext) & set(text))
        report["valid"] = {"lines": len(vtext), "words": len(words), "unknown_words": unknown,
                           "unknown_share": _share(unknown, len(words)), "lines_also_in_train": overlap}
        _unknown_warning(warnings, unknown, len(words), "validation words", _once_share(text))
        if overlap:
            warnings.append(f"{_n(overlap, 'validation line occurs', 'validation lines occur')} also in the "
                            "training text (validation scores will look better than they are)")
    else:
        report["valid"] = _holdout_report(len(text), "lines", holdout)
    config, chosen = auto.resolve(LMConfig(), auto.lm_values(stats, LMConfig()))
    report["auto"] = _auto_report(chosen)
    report["auto_note"] = "batch_size and epochs assume one token a word: a subword tokenizer makes more"
    return report


def _vocabulary(lines: Iterable[str]) -> set[str]:
    return {w for line in lines for w in line.split()}


def _once_share(lines: list[str]) -> float:
    """Share of the training words that occur only once: what unknown validation words are to expect."""
    counts = collections.Counter(w for line in lines for w in line.split())
    return _share(sum(1 for c in counts.values() if c == 1), sum(counts.values()))


def _unknown_warning(warnings: list[str], unknown: int, total: int, what: str, expected: float) -> None:
    share = _share(unknown, total)
    # Unknown validation words run at about the training text's own rate of words seen once;
    # far above it, the validation text is of another kind.
    if total and share > max(0.05, 2 * expected):
        warnings.append(f"{100 * share:.1f}% of the {what} ({unknown:,} of {total:,}) never occur in the training "
                        f"data (the training data's own share of words seen once is {100 * expected:.1f}%): is "
                        "it the same kind of text?")


def _little(warnings: list[str], task: str, size: int) -> None:
    limit, unit = LITTLE[task]
    if size < limit:
        warnings.append(f"little training data: {size:,} {unit} (under {limit:,}); expect a weak model, and "
                        "see the auto values below")


def _holdout_report(n: int, unit: str, holdout) -> dict:
    if n < holdout.MIN_ITEMS:
        return {"holdout": f"impossible: {n} {unit} (need at least {holdout.MIN_ITEMS}); give --valid"}
    return {"holdout": holdout.held_out_count(n), "of": n, "rule": holdout.RULE.format(unit=unit)}


# ---------------------------------------------------------------- tagger
def _read_tagged(scan: _Scan, word_column: int, tag_column: int) -> tuple[list, list[str], str]:
    """Sentences of a CoNLL or JSONL file read with ``on_malformed=warn``: ``(sentences, messages, scheme)``.

    ``scheme`` is ``"tokens"`` for per-token labels (no span scheme to check).
    """
    from lstmtext.errors import DataError
    from lstmtext.ner import labels, schemes
    from lstmtext.ner.data import _Problems, is_jsonl, iter_conll, json_sentence

    problems = _Problems("warn")
    sentences = []
    numbered = list(enumerate(scan.lines, start=1))
    try:
        if is_jsonl(scan.path):
            import json

            for number, line in numbered:
                if not line.strip():
                    continue
                try:
                    obj = json.loads(line)
                except ValueError:
                    problems.report("not a JSON object", scan.path, number)
                    continue
                s = json_sentence(obj, scan.path, number, problems)
                if s is not None:
                    sentences.append(s)
        else:
            # Per-token labels (part of speech) are any strings: read without the span check first,
            # and check spans only where the labels are spans (as training decides, labels.detect).
            loose = [item for kind, item in iter_conll(numbered, scan.path, word_column, tag_column, "warn",
                                                       _Problems("warn"), False) if kind == "sentence"]
            try:
                kind = labels.detect([s for s in loose if s.tags], scan.path) if loose else labels.SPANS
            except DataError:  # mostly spans with some tags that do not parse: report those lines
                kind = labels.SPANS
            if kind == labels.TOKENS:
                return loose, [], labels.TOKENS
            sentences = [item for kind, item in iter_conll(numbered, scan.path, word_column, tag_column, "warn",
                                                           problems) if kind == "sentence"]
    except DataError as exc:  # a column that does not exist: nothing else can be read
        return [], [str(exc)], ""
    tagged = [s.tags for s in sentences if s.tags]
    scheme = schemes.detect(tagged) if tagged else ""
    return sentences, [_n(problems.count, "malformed line")] * bool(problems.count) + problems.messages, scheme


def _check_ner(train: list[_Scan], valid: list[_Scan], warnings: list[str], word_column: int,
               tag_column: int) -> dict:
    from lstmtext.ner import schemes
    from lstmtext.ner.config import NERConfig
    from lstmtext.training import auto, holdout

    report: dict[str, Any] = {}
    kinds: dict[str, bool] = {}
    all_train = []
    for role, scans in (("train", train), ("valid", valid)):
        sentences_all = []
        for scan in scans:
            sentences, messages, scheme = _read_tagged(scan, word_column, tag_column)
            sentences_all += sentences
            for m in messages[:MAX_EXAMPLES + 1]:
                warnings.append(f"{scan.path}: {m}" if not m.startswith(scan.path) else m)
            if not sentences:
                warnings.append(f"{scan.path}: no tagged sentences read")
                continue
            report.setdefault("schemes", {})[scan.path] = scheme
            if scheme == "tokens":  # per-token labels: no spans, no scheme
                kinds["tokens"] = True
                continue
            bad = [(s, p) for s in sentences if s.tags for p in schemes.violations(s.tags, scheme)]
            # Entities opened by I- (after O or another type) are IOB1's way; in a file whose
            # entities mostly open with B- they are IOB2 errors (conlleval reads them as starts).
            i_starts = [(s, i) for s in sentences if s.tags for i, tag in enumerate(s.tags)
                        if tag.startswith("I-") and (i == 0 or s.tags[i - 1][2:] != tag[2:])]
            b_starts = sum(1 for s in sentences if s.tags for tag in s.tags if tag.startswith("B-"))
            report.setdefault("schemes", {})[scan.path] = scheme
            report.setdefault("entities_opened_by_i", {})[scan.path] = len(i_starts)
            if i_starts and b_starts > len(i_starts):
                s, i = i_starts[0]
                warnings.append(f"{scan.path}: {_n(len(i_starts), 'entity opens', 'entities open')} with I- after O "
                                f"or another type, first at {scan.path}:{(s.line or 0) + i}, while "
                                f"{_n(b_starts, 'entity opens', 'entities open')} with B-: IOB2 (BIO) with errors? "
                                "Training reads the file as IOB1; fix those tags or pass --scheme")
            if bad:
                s, p = bad[0]
                where = f"{scan.path}:{(s.line or 0) + min(p, len(s.tags) - 1)}" if s.line else scan.path
                warnings.append(f"{scan.path}: {_n(len(bad), 'tag')} that {scheme.upper()} forbids, first at {where}")
            long = [s for s in sentences if len(s.tokens) > LONG_SENTENCE_TOKENS]
            if long:
                warnings.append(f"{scan.path}: {_n(len(long), 'sentence')} of more than {LONG_SENTENCE_TOKENS} tokens, "
                                f"first at {scan.path}:{long[0].line} (missing blank lines between sentences?)")
        if role == "train":
            all_train = sentences_all
        pairs = [(s.tokens, s.tags or ["O"] * len(s.tokens)) for s in sentences_all]
        stats = auto.TaggedStats.from_sentences(pairs)
        per_type = collections.Counter() if stats.labels else collections.Counter(
            etype for _, tags in pairs for etype, _, _ in schemes.spans(tags))
        entry = dataclasses.asdict(stats)
        entry["entities_per_type"] = dict(sorted(per_type.items()))
        entry["duplicate_sentences"] = _duplicates(tuple(s.tokens) for s in sentences_all)
        if scans:
            report[role] = entry
    train_stats = auto.TaggedStats.from_sentences((s.tokens, s.tags or []) for s in all_train)
    _little(warnings, "ner", train_stats.sentences)
    train_types = report.get("train", {}).get("entities_per_type", {})
    few = [f"{t} ({n})" for t, n in train_types.items() if n < FEW_ENTITIES]
    if few:
        warnings.append(f"entity types with fewer than {FEW_ENTITIES} training mentions: {', '.join(few)}")
    if kinds.get("tokens"):
        counts = collections.Counter(t for s in all_train for t in s.tags or ())
        report["label_kind"] = "tokens"
        report["labels"] = dict(counts.most_common())
    elif train and not train_types and all_train:
        warnings.append("the training data has no entities")
    if valid and "valid" in report:
        new = sorted(set(report["valid"]["entities_per_type"]) - set(train_types))
        if new:
            warnings.append(f"entity types in the validation data but not in training: {', '.join(new)}")
        known = {w.lower() for s in all_train for w in s.tokens}
        vwords = [w.lower() for scan in valid for s in _read_tagged(scan, word_column, tag_column)[0]
                  for w in s.tokens]
        unknown = sum(1 for w in vwords if w not in known)
        report["valid"]["unknown_words"] = unknown
        report["valid"]["unknown_share"] = _share(unknown, len(vwords))
        _unknown_warning(warnings, unknown, len(vwords), "validation words",
                         _once_share([" ".join(w.lower() for w in s.tokens) for s in all_train]))
    elif not valid:
        report["valid"] = _holdout_report(len(all_train), "sentences", holdout)
    if all_train:
        _, chosen = auto.resolve(NERConfig(), auto.ner_values(train_stats, NERConfig()))
        report["auto"] = _auto_report(chosen)
    return report


# ---------------------------------------------------------------- translator
def _pairs(scans: list[_Scan], warnings: list[str]) -> list[tuple[str, str]]:
    """Pairs of a TSV file or of two line-aligned files (with a warning when they do not align)."""
    if len(scans) == 1:
        out, bad = [], []
        for number, line in enumerate(scans[0].lines, start=1):
            if not line.strip():
                out.append(("", ""))
                continue
            parts = line.split("\t")
            if len(parts) != 2:
                bad.append(number)
                continue
            out.append((parts[0].strip(), parts[1].strip()))
        if bad:
            warnings.append(f"{scans[0].path}: {_n(len(bad), 'line')} without exactly one tab, first at "
                            f"{scans[0].path}:{bad[0]} (training stops there)")
        return out
    source, target = scans
    if len(source.lines) != len(target.lines):
        warnings.append(f"{source.path} has {len(source.lines):,} lines and {target.path} {len(target.lines):,}: "
                        "the files are not line-aligned (training stops)")
    return [(s.strip(), t.strip()) for s, t in zip(source.lines, target.lines)]


def _check_translate(train: list[_Scan], valid: list[_Scan], warnings: list[str]) -> dict:
    from lstmtext.training import auto, holdout
    from lstmtext.translate.config import TranslateConfig

    if len(train) not in (1, 2) or len(valid) not in (0, 1, 2):
        raise UsageError("translate takes one TSV file or two line-aligned files (source, target), and the "
                         "same for --valid")
    report: dict[str, Any] = {}
    pairs = _pairs(train, warnings)
    empty = sum(1 for s, t in pairs if not s or not t)
    usable = [(s, t) for s, t in pairs if s and t]
    dup = _duplicates(usable)
    ratio = sum(1 for s, t in usable
                if max(len(s.split()), len(t.split())) > RATIO * max(1, min(len(s.split()), len(t.split()))))
    long = sum(1 for s, t in usable if max(len(s), len(t)) > TranslateConfig().max_line_chars)
    stats = auto.ParallelStats.from_pairs([s for s, _ in usable], [t for _, t in usable])
    report["train"] = {"pairs": len(pairs), "usable_pairs": len(usable), "empty_side": empty,
                       "duplicate_pairs": dup, "length_ratio_over_3": ratio, "over_long": long,
                       "source": _text(stats.source), "target": _text(stats.target)}
    if empty:
        warnings.append(f"{_n(empty, 'training pair')} with an empty side (skipped in training)")
    if dup:
        warnings.append(f"{_n(dup, 'duplicate training pair')} ({100 * dup / max(len(usable), 1):.1f}%)")
    if ratio:
        warnings.append(f"{_n(ratio, 'training pair')} where one side has over {RATIO:.0f} times the words of the "
                        "other (misaligned lines?)")
    if long:
        warnings.append(f"{_n(long, 'training pair')} longer than max_line_chars={TranslateConfig().max_line_chars} "
                        "(skipped in training)")
    _little(warnings, "translate", len(usable))
    if valid:
        vpairs = [(s, t) for s, t in _pairs(valid, warnings) if s and t]
        known = _vocabulary(s for s, _ in usable)
        words = [w for s, _ in vpairs for w in s.split()]
        unknown = sum(1 for w in words if w not in known)
        overlap = len(set(vpairs) & set(usable))
        report["valid"] = {"pairs": len(vpairs), "source_unknown_words": unknown,
                           "source_unknown_share": _share(unknown, len(words)), "pairs_also_in_train": overlap}
        _unknown_warning(warnings, unknown, len(words), "validation source words",
                         _once_share([s for s, _ in usable]))
        if overlap:
            warnings.append(f"{_n(overlap, 'validation pair occurs', 'validation pairs occur')} also in the "
                            "training data")
    else:
        report["valid"] = _holdout_report(len(usable), "pairs", holdout)
    if usable:
        _, chosen = auto.resolve(TranslateConfig(), auto.translate_values(stats, TranslateConfig()))
        report["auto"] = _auto_report(chosen)
    return report


def _text(stats) -> dict:
    out = dataclasses.asdict(stats)
    out.pop("tokens", None)
    return out


# ---------------------------------------------------------------- entry point
def check(task: str, files: list[str | Path], valid: list[str | Path] | None = None, encoding: str = "utf-8",
          word_column: int = 1, tag_column: int = -1) -> dict:
    """Statistics, warnings and auto values for a task's training (and validation) files.

    Args:
        task: ``lm``, ``ner`` or ``translate``.
        files: Training files: one text file (lm); CoNLL or JSONL files (ner);
            one TSV file or two line-aligned files, source then target (translate).
        valid: Validation files, in the same form; without them the report
            says what would be held out.
        encoding: Text encoding of the files.
        word_column: CoNLL word column (ner).
        tag_column: CoNLL tag column (ner).

    Returns:
        ``{"task", "files", "train", "valid", "auto", "warnings"}`` (plus
        task-specific entries); ``warnings`` lists each problem with counts
        and the first place it occurs.

    Raises:
        UsageError: an unknown task or a wrong number of files.
        DataError: a file that does not exist or cannot be read.
    """
    task = task_name(task)
    if task not in TASKS:
        raise UsageError(f"unknown task '{task}' (lm, ner, tag or translate)")
    if not files:
        raise UsageError("give the training file(s) to check")
    if task == "lm" and (len(files) != 1 or len(valid or []) > 1):
        raise UsageError("lm takes one training file (and at most one --valid file)")
    train = [_scan(Path(f), encoding, LONG_LINE_CHARS[task]) for f in files]
    valid_scans = [_scan(Path(f), encoding, LONG_LINE_CHARS[task]) for f in valid or []]
    warnings: list[str] = []
    for scan in train + valid_scans:
        warnings += _file_warnings(scan, task)
    if task == "lm":
        body = _check_lm(train, valid_scans, warnings)
    elif task == "ner":
        body = _check_ner(train, valid_scans, warnings, word_column, tag_column)
    else:
        body = _check_translate(train, valid_scans, warnings)
    return {"task": task, "files": [s.report() for s in train + valid_scans], **body, "warnings": warnings}
