"""Parallel corpora: reading, cleaning, encoding and length-bucketed batches.

Input is either one TSV file (``source<TAB>target`` per line) or two
line-aligned files. For training, lines with an empty side or more than
``max_line_chars`` characters, and pairs over ``max_length`` pieces, are
skipped and counted (the counts go into the bundle's ``config.json``); a
malformed TSV line or files of different lengths are errors naming the file
and line, because they mean the alignment itself is broken.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np

from lstmtext.errors import DataError
from lstmtext.io import check_readable, iter_lines
from lstmtext.tokenizers import BOS_ID, EOS_ID, PAD_ID


@dataclass
class ParallelText:
    """Sentence pairs and what was skipped while reading them."""

    sources: list[str] = field(default_factory=list)
    targets: list[str] = field(default_factory=list)
    skipped: dict[str, int] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.sources)


def iter_pairs(tsv: str | Path | None = None, source: str | Path | None = None, target: str | Path | None = None,
               encoding: str = "utf-8") -> Iterator[tuple[str, int, str, str]]:
    """Yield ``(path, line_number, source, target)`` from a TSV or two aligned files.

    Raises:
        DataError: a TSV line without exactly one tab, or files of different lengths.
    """
    if tsv is not None:
        for number, line in iter_lines(tsv, encoding):
            if not line.strip():
                yield str(tsv), number, "", ""
                continue
            parts = line.split("\t")
            if len(parts) != 2:
                raise DataError(f"expected 'source<TAB>target', found {len(parts) - 1} tabs", tsv, number)
            yield str(tsv), number, parts[0].strip(), parts[1].strip()
        return
    if source is None or target is None:
        raise DataError("give a TSV file or both a source and a target file")
    check_readable(source)
    check_readable(target)
    end = object()
    src_it, tgt_it = iter_lines(source, encoding), iter_lines(target, encoding)
    for s, t in itertools.zip_longest(src_it, tgt_it, fillvalue=end):
        if s is end or t is end:
            short, longer, number = (source, target, t[0]) if s is end else (target, source, s[0])
            raise DataError(f"has fewer lines than {longer} (line {number} has no partner); "
                            "source and target files must be line-aligned", short)
        yield str(source), s[0], s[1].strip(), t[1].strip()


def read_parallel(tsv=None, source=None, target=None, encoding: str = "utf-8",
                  max_line_chars: int | None = None, skip_empty: bool = True) -> ParallelText:
    """Read pairs, skipping (and counting) empty or over-long ones when asked.

    Args:
        tsv: A ``source<TAB>target`` file, or None.
        source: Source-side file (with ``target``), or None.
        target: Target-side file.
        encoding: Text encoding.
        max_line_chars: Skip pairs with a longer side (None: keep all).
        skip_empty: Skip pairs with an empty side (training); else keep them.
    """
    out = ParallelText(skipped={"empty": 0, "long_line": 0})
    for _, _, s, t in iter_pairs(tsv, source, target, encoding):
        if skip_empty and (not s or not t):
            out.skipped["empty"] += 1
            continue
        if max_line_chars is not None and max(len(s), len(t)) > max_line_chars:
            out.skipped["long_line"] += 1
            continue
        out.sources.append(s)
        out.targets.append(t)
    if not out.sources:
        raise DataError("no usable sentence pairs", tsv or source)
    return out


def encode_source(tokenizer, texts: list[str], max_pieces: int | None = None) -> list[list[int]]:
    """Source ids followed by end-of-sentence (so an empty line still has one position)."""
    ids = tokenizer.encode_batch(texts)
    if max_pieces is not None:
        ids = [x[: max_pieces - 1] for x in ids]
    return [list(x) + [EOS_ID] for x in ids]


def encode_target(tokenizer, texts: list[str]) -> list[list[int]]:
    """Target ids wrapped as ``<s> ... </s>``."""
    return [[BOS_ID, *x, EOS_ID] for x in tokenizer.encode_batch(texts)]


def filter_long(src: list[list[int]], tgt: list[list[int]], max_length: int) -> tuple[list, list, int]:
    """Drop pairs where either side has more than ``max_length`` pieces; return the count dropped."""
    keep = [i for i in range(len(src)) if len(src[i]) - 1 <= max_length and len(tgt[i]) - 2 <= max_length]
    return [src[i] for i in keep], [tgt[i] for i in keep], len(src) - len(keep)


def round_up(n: int, multiple: int) -> int:
    """``n`` rounded up to a multiple of ``multiple`` (at least ``multiple``)."""
    return max(multiple, -(-n // multiple) * multiple)


def pad(rows: list[list[int]], rows_total: int, multiple: int) -> np.ndarray:
    """Right-pad ``rows`` with ``PAD_ID`` into ``(rows_total, L)``, ``L`` a multiple of ``multiple``."""
    length = round_up(max((len(r) for r in rows), default=1), multiple)
    out = np.full((rows_total, length), PAD_ID, dtype=np.int32)
    for i, r in enumerate(rows):
        out[i, : len(r)] = r
    return out


@dataclass
class PairBatch:
    """A training batch: ``source``, ``target_in``, ``target_out`` and the real target token count."""

    source: np.ndarray
    target_in: np.ndarray
    target_out: np.ndarray
    tokens: int


def batches(src: list[list[int]], tgt: list[list[int]], batch_size: int, pad_multiple: int,
            rng: np.random.Generator | None = None, pool: int = 50) -> list[PairBatch]:
    """Length-bucketed batches of a fixed number of rows.

    Pairs are shuffled (when ``rng`` is given), sorted by length within pools
    of ``pool`` batches so each batch holds similar lengths, cut into batches
    and the batches shuffled. Every batch has ``batch_size`` rows (the last
    one is completed with all-padding rows, which carry no loss) and lengths
    rounded up to ``pad_multiple``, so a compiled step sees few shapes.
    """
    order = np.arange(len(src))
    if rng is not None:
        rng.shuffle(order)
    chunks = []
    span = batch_size * pool
    for start in range(0, len(order), span):
        part = sorted(order[start: start + span], key=lambda i: (len(src[i]), len(tgt[i])))
        chunks += [part[j: j + batch_size] for j in range(0, len(part), batch_size)]
    if rng is not None:
        rng.shuffle(chunks)
    out = []
    for idx in chunks:
        s = [src[i] for i in idx]
        t = [tgt[i] for i in idx]
        # Both sides share one padded length: far fewer distinct batch shapes
        # (each is compiled separately) for little extra padding.
        length = round_up(max(max(len(r) for r in s), max(len(r) - 1 for r in t)), pad_multiple)
        out.append(PairBatch(pad(s, batch_size, length), pad([r[:-1] for r in t], batch_size, length),
                             pad([r[1:] for r in t], batch_size, length), int(sum(len(r) - 1 for r in t))))
    return out
