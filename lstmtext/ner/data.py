"""Reading tagged and untagged text: CoNLL columns, JSONL and plain text.

CoNLL column files
    One token per line, columns separated by spaces or tabs, a blank line
    between sentences; ``-DOCSTART-`` lines are skipped (they also end a
    sentence). Columns count from 1 (negative numbers from the end); the
    word column defaults to the first and the tag column to the last; every token line of a file must have the same number of columns.

JSONL
    One sentence per line, either ``{"tokens": [...], "tags": [...]}`` or
    ``{"text": "...", "entities": [{"start": s, "end": e, "type": "PER"}]}``
    (character offsets, end exclusive; the text is split with
    :func:`tokenize` and each token inside an entity gets its type).
    A tagger trained with feature columns (``--feature-column 2``) reads them
    from ``tokens`` records as ``"features": {"2": ["NNP", ...]}`` (keyed by
    the column number, one value per token) or as a list of such lists in the
    order the columns were given.

Plain text (prediction only)
    One sentence or passage per line, split by :func:`tokenize`.

Malformed input policy (``on_malformed``):
    ``error`` (default) raises :class:`~lstmtext.errors.DataError` naming the
    file and line of the first problem. ``warn`` counts problems instead,
    keeps the first few messages (with file and line) in the returned
    :class:`Corpus`, drops sentences holding a line with the wrong number of
    columns or an unreadable tag, and keeps tags that the scheme forbids (such
    as ``I-PER`` after ``O`` in IOB2), which are then read as conlleval reads
    them (the ``I-`` starts an entity).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator, Sequence

from lstmtext.errors import DataError, UsageError
from lstmtext.io import iter_lines
from lstmtext.ner import labels, schemes

DOCSTART = "-DOCSTART-"
MAX_MESSAGES = 10


@dataclass
class Sentence:
    """One sentence.

    Attributes:
        tokens: The words.
        tags: Gold tags, if the input had them.
        lines: The original CoNLL lines (CoNLL output appends a column to them).
        text: The original text line (plain-text and JSONL-text input).
        offsets: ``(start, end)`` character offsets of each token in ``text``.
        source: File the sentence came from.
        line: 1-based line number of its first token.
        features: Values of the feature columns, ``features[column][token]``.
    """

    tokens: list[str]
    tags: list[str] | None = None
    lines: list[str] | None = None
    text: str | None = None
    offsets: list[tuple[int, int]] | None = None
    source: str | None = None
    line: int | None = None
    features: list[list[str]] | None = None


@dataclass
class Corpus:
    """Sentences read from one file, with what the reader noticed."""

    sentences: list[Sentence]
    scheme: str  # "" for per-token labels
    problems: int = 0
    messages: list[str] = field(default_factory=list)
    path: str = ""
    kind: str = "spans"  # or "tokens" (lstmtext.ner.labels)
    held: list[Sentence] = field(default_factory=list)  # sentences the file marks for validation (FASTA)

    @property
    def tokens(self) -> int:
        return sum(len(s.tokens) for s in self.sentences)


class _Problems:
    """Applies the malformed-input policy."""

    def __init__(self, policy: str):
        if policy not in ("error", "warn"):
            raise UsageError(f"unknown malformed-input policy '{policy}' (error or warn)")
        self.policy = policy
        self.count = 0
        self.messages: list[str] = []

    def report(self, message: str, path: str, line: int | None) -> None:
        if self.policy == "error":
            raise DataError(message, path, line)
        self.count += 1
        if len(self.messages) < MAX_MESSAGES:
            self.messages.append(f"{path}:{line}: {message}" if line else f"{path}: {message}")


# ---------------------------------------------------------------------------
# Plain-text tokenizer
# ---------------------------------------------------------------------------

_TITLES = ("Mr|Mrs|Ms|Dr|Prof|St|Jr|Sr|Inc|Corp|Ltd|Co|Gen|Sen|Rep|Gov|Lt|Col|Maj|Capt|Sgt|Rev|"
           "Mt|Ft|No|vs|Jan|Feb|Mar|Apr|Aug|Sept|Sep|Oct|Nov|Dec")
_TOKEN = re.compile(
    r"""
    (?:https?://|www\.)\S+[^\W_]              # URLs, up to their last letter or digit
    | (?:[^\W\d_]\.){2,}                       # abbreviations written with dots: U.S., e.g.
    | (?:%s)\.(?=\s|$)                         # titles and month abbreviations: Mr. Jan.
    | \d+(?:[.,:/-]\d+)*                       # numbers, dates, times: 3.5  1,000  1996-08-22
    | [^\W_]+?(?=n't\b)                        # the "do" of "don't" (the n't follows)
    | n't\b                                    # negation clitic, as in the Penn Treebank
    | ['’](?i:s|re|ll|ve|d|m)\b                # clitics: 's 're 'll 've 'd 'm
    | [^\W_]+(?:-[^\W_]+|['’](?!(?i:s|re|ll|ve|d|m)\b)[^\W_]+)*
                                               # words, inner hyphens/apostrophes: O'Neill, e-mail
    | \S                                       # anything else: one character (punctuation, symbols)
    """ % _TITLES,
    re.VERBOSE,
)


def tokenize(text: str) -> list[tuple[str, int, int]]:
    """Split a line into words, keeping character offsets.

    Rules, tried in this order at each position (the first that matches wins):

    1. URLs (``http://``, ``https://``, ``www.``) up to whitespace;
    2. abbreviations written with dots (``U.S.``, ``e.g.``);
    3. common titles and month abbreviations with their dot (``Mr.``, ``Jan.``);
    4. numbers with inner ``. , : / -`` (``3.5``, ``1,000``, ``1996-08-22``);
    5. Penn-Treebank clitics split off: ``don't`` -> ``do n't``, ``Germany's`` -> ``Germany 's``;
    6. words of letters and digits with inner hyphens or apostrophes (``O'Neill``);
    7. any other non-space character on its own (punctuation, symbols).

    This matches the CoNLL-2003 tokenisation closely enough for tagging news
    text. Returns ``(token, start, end)`` with ``text[start:end] == token``.
    """
    return [(m.group(), m.start(), m.end()) for m in _TOKEN.finditer(text)]


def text_sentence(text: str, line: int | None = None, source: str | None = None) -> Sentence:
    """A plain-text line as a sentence."""
    toks = tokenize(text)
    return Sentence([t for t, _, _ in toks], text=text, offsets=[(s, e) for _, s, e in toks],
                    source=source, line=line)


# ---------------------------------------------------------------------------
# CoNLL
# ---------------------------------------------------------------------------


def _column(index: int, width: int) -> int | None:
    # Columns count from 1, as in ``cut -f``; negative ones from the end.
    i = index - 1 if index > 0 else width + index if index < 0 else -1
    return i if 0 <= i < width else None


def iter_conll(
    lines: Iterable[tuple[int, str]],
    path: str,
    word_column: int = 1,
    tag_column: int | None = -1,
    on_malformed: str = "error",
    problems: _Problems | None = None,
    check_tags: bool = True,
    feature_columns: Sequence[int] = (),
) -> Iterator[tuple[str, object]]:
    """Read CoNLL lines as a stream of items, keeping everything needed to write them back.

    Yields ``("sentence", Sentence)`` for each sentence and ``("raw", line)``
    for blank and ``-DOCSTART-`` lines (in input order), so that CoNLL
    output can reproduce the input's layout.

    Args:
        lines: ``(line_number, text)`` pairs.
        path: Name used in messages.
        word_column: Column of the words (1-based; negative: from the end).
        tag_column: Column of the tags (likewise), or ``None`` for untagged input.
        on_malformed: ``error`` or ``warn`` (see the module docstring).
        problems: Shared problem counter (created if absent).
        check_tags: Require span tags (``O`` or ``B-/I-/E-/S-`` plus a type);
            ``False`` for per-token labels of any set.
        feature_columns: Further columns to keep as the sentence's ``features``.
    """
    problems = problems or _Problems(on_malformed)
    width: int | None = None
    tokens: list[str] = []
    tags: list[str] = []
    feats: list[list[str]] = [[] for _ in feature_columns]
    fis: list[int] = []
    raw: list[str] = []
    first = 0
    bad = False

    def flush():
        nonlocal tokens, tags, raw, bad, feats
        item = None
        if tokens and not bad:
            item = Sentence(tokens, tags if tag_column is not None else None, raw, source=path, line=first,
                            features=feats if feature_columns else None)
        tokens, tags, raw, bad, feats = [], [], [], False, [[] for _ in feature_columns]
        return item

    for number, line in lines:
        cols = line.split()
        if not cols or cols[0] == DOCSTART:
            item = flush()
            if item is not None:
                yield "sentence", item
            yield "raw", line
            continue
        if not tokens and not bad:
            first = number
        if width is None:
            width = len(cols)
            wi, ti = _column(word_column, width), (_column(tag_column, width) if tag_column is not None else None)
            if wi is None:
                raise DataError(f"word column {word_column} does not exist: the line has {width} "
                                "columns (use --word-column)", path, number)
            if tag_column is not None and ti is None:
                raise DataError(f"tag column {tag_column} does not exist: the line has {width} "
                                "columns (use --tag-column)", path, number)
            if tag_column is not None and wi == ti:
                raise DataError(f"the word and tag columns are the same ({wi + 1}); a tagged file needs "
                                "at least two columns (use --word-column/--tag-column)", path, number)
            fis = [_column(c, width) for c in feature_columns]
            for c, fi in zip(feature_columns, fis):
                if fi is None:
                    raise DataError(f"feature column {c} does not exist: the line has {width} columns (the "
                                    "tagger reads it as an input feature, so the input must carry it)",
                                    path, number)
        raw.append(line)
        if len(cols) != width:
            problems.report(f"expected {width} columns, found {len(cols)}", path, number)
            bad = True
            continue
        tokens.append(cols[wi])
        for values, fi in zip(feats, fis):
            values.append(cols[fi])
        if ti is not None:
            tag = cols[ti]
            if check_tags:
                try:
                    schemes.split_tag(tag)
                except ValueError as exc:
                    problems.report(str(exc), path, number)
                    bad = True
                    continue
            tags.append(tag)
    item = flush()
    if item is not None:
        yield "sentence", item


def check_scheme(sentences: list[Sentence], scheme: str, problems: _Problems) -> None:
    """Report tags that ``scheme`` forbids, with the file and line of each."""
    for s in sentences:
        if not s.tags:
            continue
        for pos in schemes.violations(s.tags, scheme):
            line = (s.line or 0) + min(pos, len(s.tags) - 1) if s.line else None
            if s.lines is None and s.line is not None:
                line = s.line  # JSONL: one line per sentence
            what = (f"sentence ends inside an entity ('{s.tags[-1]}')" if pos == len(s.tags)
                    else f"tag '{s.tags[pos]}' cannot follow "
                         f"'{s.tags[pos - 1] if pos else 'the sentence start'}' in {scheme.upper()}")
            problems.report(what + " (fix the data, pass --scheme, or set on_malformed=warn)",
                            s.source or "", line)


def _finish(sentences: list[Sentence], path: str, scheme: str, problems: _Problems,
            label_kind: str = labels.SPANS) -> Corpus:
    if not sentences:
        raise DataError("no tagged sentences found", path)
    kind = labels.detect(sentences, path) if label_kind == "auto" else label_kind
    if kind == labels.TOKENS:
        return Corpus(sentences, "", problems.count, problems.messages, path, labels.TOKENS)
    tagged = [s.tags for s in sentences if s.tags is not None]
    found = schemes.detect(tagged) if scheme == "auto" else schemes.normalize_scheme(scheme)
    check_scheme(sentences, found, problems)
    return Corpus(sentences, found, problems.count, problems.messages, path)


def read_conll(path: str | Path, word_column: int = 1, tag_column: int = -1, scheme: str = "auto",
               on_malformed: str = "error", encoding: str = "utf-8", label_kind: str = labels.SPANS,
               feature_columns: Sequence[int] = ()) -> Corpus:
    """Read a tagged CoNLL file (see the module docstring).

    ``label_kind``: ``spans`` (tags must parse), ``tokens`` (any labels) or
    ``auto`` (decided from the file, :func:`lstmtext.ner.labels.detect`).
    """
    problems = _Problems(on_malformed)
    name = str(path)
    sentences = [item for kind, item in iter_conll(iter_lines(path, encoding), name, word_column,
                                                    tag_column, on_malformed, problems,
                                                    label_kind == labels.SPANS, feature_columns)
                 if kind == "sentence"]
    return _finish(sentences, name, scheme, problems, label_kind)


# ---------------------------------------------------------------------------
# JSONL
# ---------------------------------------------------------------------------


def _json_features(obj: dict, n: int, feature_columns: Sequence[int], path: str, number: int,
                   problems: _Problems) -> list[list[str]] | None:
    """The ``features`` of a ``tokens`` record, one list per feature column in the tagger's order.

    ``features`` is an object keyed by the column numbers the tagger was trained
    with (``{"2": ["NNP", ...]}``) or a list of lists in that order; every list
    is as long as ``tokens``.
    """
    wanted = ", ".join(map(str, feature_columns))
    given = obj.get("features")
    if isinstance(given, dict):
        missing = [c for c in feature_columns if str(c) not in given]
        if missing:
            problems.report(f"'features' lacks column(s) {', '.join(map(str, missing))} (the tagger reads "
                            f"column(s) {wanted} as input features)", path, number)
            return None
        values = [given[str(c)] for c in feature_columns]
    elif isinstance(given, list) and len(given) == len(feature_columns):
        values = given
    else:
        problems.report(f"this tagger reads column(s) {wanted} as input features: the record needs "
                        f"'features', an object keyed by column ({{\"{feature_columns[0]}\": [...]}}) or "
                        f"a list of {len(feature_columns)} list(s), one value per token", path, number)
        return None
    for c, vals in zip(feature_columns, values):
        if not isinstance(vals, list) or len(vals) != n or not all(isinstance(v, str) and v for v in vals):
            problems.report(f"feature column {c} must be a list of {n} non-empty string(s), one per token",
                            path, number)
            return None
    return [list(v) for v in values]


def json_sentence(obj: object, path: str, number: int, problems: _Problems,
                  need_tags: bool = True, check_tags: bool = True,
                  feature_columns: Sequence[int] = ()) -> Sentence | None:
    """One JSONL record as a sentence; problems go through the policy.

    ``check_tags``: ``tags`` must be span tags (``False``: any strings).
    ``feature_columns``: the tagger's input feature columns; the record must be
    a ``tokens`` record carrying them (see :func:`_json_features`).
    """
    if not isinstance(obj, dict):
        problems.report("expected a JSON object", path, number)
        return None
    if feature_columns and "tokens" not in obj:
        problems.report(f"this tagger reads column(s) {', '.join(map(str, feature_columns))} as input features: "
                        "give 'tokens' records with 'features' (a 'text' record has no values to give)",
                        path, number)
        return None
    if "tokens" in obj:
        tokens = obj["tokens"]
        tags = obj.get("tags")
        if not isinstance(tokens, list) or not all(isinstance(t, str) and t and not any(c.isspace() for c in t)
                                                   for t in tokens):
            problems.report("'tokens' must be a list of non-empty strings without spaces", path, number)
            return None
        feats = None
        if feature_columns:
            feats = _json_features(obj, len(tokens), feature_columns, path, number, problems)
            if feats is None:
                return None
        if tags is None:
            if need_tags:
                problems.report("record has 'tokens' but no 'tags'", path, number)
                return None
            return Sentence(list(tokens), source=path, line=number, features=feats)
        if not isinstance(tags, list) or len(tags) != len(tokens):
            problems.report(f"'tags' must be a list as long as 'tokens' ({len(tokens)})", path, number)
            return None
        for tag in tags if check_tags else ():
            try:
                schemes.split_tag(str(tag))
            except ValueError as exc:
                problems.report(str(exc), path, number)
                return None
        return Sentence(list(tokens), [str(t) for t in tags], source=path, line=number, features=feats)
    if "text" in obj:
        text = obj["text"]
        if not isinstance(text, str):
            problems.report("'text' must be a string", path, number)
            return None
        sent = text_sentence(text, number, path)
        entities = obj.get("entities")
        if entities is None:
            if need_tags:
                problems.report("record has 'text' but no 'entities'", path, number)
                return None
            return sent
        spans = []
        for ent in entities if isinstance(entities, list) else [None]:
            try:
                start, end, etype = int(ent["start"]), int(ent["end"]), str(ent["type"])
            except (TypeError, KeyError, ValueError):
                problems.report("each entity needs integer 'start', 'end' and a 'type'", path, number)
                return None
            if not 0 <= start < end <= len(text) or not etype or any(c.isspace() for c in etype):
                problems.report(f"entity [{start}, {end}) '{etype}' is outside the text or badly typed",
                                path, number)
                return None
            inside = [i for i, (s, e) in enumerate(sent.offsets or []) if s < end and e > start]
            cut = [i for i in inside if sent.offsets[i][0] < start or sent.offsets[i][1] > end]
            if not inside or cut:
                problems.report(f"entity [{start}, {end}) '{text[start:end]}' does not fall on token "
                                "boundaries", path, number)
                return None
            spans.append((etype, inside[0], inside[-1] + 1))
        spans.sort(key=lambda s: s[1])
        if any(a[2] > b[1] for a, b in zip(spans, spans[1:])):
            problems.report("entities overlap", path, number)
            return None
        sent.tags = schemes.from_spans(spans, len(sent.tokens), "iob2")
        return sent
    problems.report("expected a 'tokens' or a 'text' field", path, number)
    return None


def _iter_jsonl(path: str | Path, problems: _Problems, encoding: str,
                check_tags: bool = True, feature_columns: Sequence[int] = ()) -> Iterator[Sentence]:
    name = str(path)
    for number, line in iter_lines(path, encoding):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except (ValueError, RecursionError) as exc:  # absurdly nested JSON recurses
            problems.report(f"invalid JSON ({exc.args[0] if exc.args else exc})", name, number)
            continue
        sent = json_sentence(obj, name, number, problems, check_tags=check_tags, feature_columns=feature_columns)
        if sent is not None and sent.tokens:
            yield sent


def read_jsonl(path: str | Path, scheme: str = "auto", on_malformed: str = "error",
               encoding: str = "utf-8", label_kind: str = labels.SPANS,
               feature_columns: Sequence[int] = ()) -> Corpus:
    """Read a tagged JSONL file (see the module docstring); empty sentences are skipped."""
    problems = _Problems(on_malformed)
    sentences = list(_iter_jsonl(path, problems, encoding, label_kind == labels.SPANS, feature_columns))
    return _finish(sentences, str(path), scheme, problems, label_kind)


def sniff(path: str | Path, suffixes: tuple[str, ...], first: bytes) -> bool:
    """Whether a file is of a format: by its extension, else by its first non-blank bytes."""
    p = Path(path)
    if p.suffix.lower() in suffixes:
        return True
    try:
        with open(p, "rb") as fh:
            head = fh.read(4096).lstrip()
    except OSError:
        return False
    return head.startswith(first)


def is_jsonl(path: str | Path) -> bool:
    """Whether a file is JSONL: by its extension, else by its first non-blank character."""
    return sniff(path, (".jsonl", ".json", ".ndjson"), b"{")


def read_tagged(path: str | Path, word_column: int = 1, tag_column: int = -1, scheme: str = "auto",
                on_malformed: str = "error", encoding: str = "utf-8", label_kind: str = labels.SPANS,
                feature_columns: Sequence[int] = ()) -> Corpus:
    """Read a tagged file, CoNLL or JSONL (see :func:`is_jsonl`); ``label_kind`` as in :func:`read_conll`."""
    from lstmtext.io import check_readable

    check_readable(path)
    if is_jsonl(path):
        return read_jsonl(path, scheme, on_malformed, encoding, label_kind, feature_columns)
    return read_conll(path, word_column, tag_column, scheme, on_malformed, encoding, label_kind, feature_columns)


def iter_tagged(path: str | Path, word_column: int = 1, tag_column: int = -1, on_malformed: str = "error",
                encoding: str = "utf-8", problems: _Problems | None = None, check_tags: bool = True,
                feature_columns: Sequence[int] = ()) -> Iterator[Sentence]:
    """Stream the tagged sentences of a CoNLL or JSONL file, holding one sentence at a time.

    Tags are not checked against a scheme here (see :func:`check_scheme`).
    """
    from lstmtext.io import check_readable

    check_readable(path)
    problems = problems or _Problems(on_malformed)
    if is_jsonl(path):
        yield from _iter_jsonl(path, problems, encoding, check_tags, feature_columns)
        return
    for kind, item in iter_conll(iter_lines(path, encoding), str(path), word_column, tag_column,
                                 on_malformed, problems, check_tags, feature_columns):
        if kind == "sentence":
            yield item


def detect_file_scheme(path: str | Path, word_column: int = 1, tag_column: int = -1,
                       encoding: str = "utf-8") -> str:
    """The tag scheme of a file, detected in one streaming pass (see :func:`schemes.detect`)."""
    return schemes.detect(s.tags for s in iter_tagged(path, word_column, tag_column, "warn", encoding)
                          if s.tags)
