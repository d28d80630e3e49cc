"""Token streams for the language model.

A file becomes one contiguous stream of ids: each line's pieces followed by
the end-of-line id. For truncated BPTT the stream is cut into ``batch_size``
parallel rows (Zaremba et al. 2014): batch ``i`` holds columns
``[i*bptt, (i+1)*bptt)`` of every row, so row ``r`` of one batch continues row
``r`` of the previous batch and LSTM states can be carried over.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from lstmtext.errors import DataError
from lstmtext.io import iter_lines
from lstmtext.tokenizers import EOS_ID, PAD_ID, Tokenizer


@dataclass
class Stream:
    """A file as ids, with counts for per-word perplexity."""

    ids: np.ndarray
    lines: int
    words: int

    @property
    def tokens(self) -> int:
        return int(self.ids.size) - 1  # predicted tokens (the leading end-of-line is context)


def encode_lines(lines: Iterable[str], tokenizer: Tokenizer, chunk: int = 10_000, reverse: bool = False) -> Stream:
    """Encode lines into one stream, appending the end-of-line id to each.

    With ``reverse`` each line's pieces are read right to left (a backward
    language model's stream); lines keep their order and each still ends
    with the end-of-line id.
    """
    parts: list[np.ndarray] = []
    n_lines = n_words = 0
    buf: list[str] = []

    def flush():
        nonlocal buf
        for ids in tokenizer.encode_batch(buf):
            if reverse:
                ids.reverse()
            ids.append(EOS_ID)
            parts.append(np.asarray(ids, dtype=np.int32))
        buf = []

    for line in lines:
        n_lines += 1
        n_words += len(line.split())
        buf.append(line)
        if len(buf) >= chunk:
            flush()
    flush()
    # A leading end-of-line makes the first word a prediction too, so a file
    # of W words and L lines yields exactly W + L predicted tokens.
    ids = np.concatenate([np.asarray([EOS_ID], np.int32)] + parts)
    return Stream(ids=ids, lines=n_lines, words=n_words)


def read_stream(path: str | Path, tokenizer: Tokenizer, encoding: str = "utf-8", reverse: bool = False) -> Stream:
    """Read and encode a text file; raise if it holds no text."""
    stream = encode_lines((text for _, text in iter_lines(path, encoding)), tokenizer, reverse=reverse)
    if stream.words == 0:
        raise DataError("file has no words", path)
    return stream


def iter_streams(path: str | Path, tokenizer: Tokenizer, encoding: str = "utf-8",
                 lines_per_chunk: int = 50_000, reverse: bool = False) -> Iterator[Stream]:
    """Read and encode a file in chunks of whole lines, for bounded memory.

    Every line ends with the end-of-line id, so starting each chunk with that
    id (as :func:`encode_lines` does) gives its first word exactly the context
    it has in the whole file.

    Raises:
        DataError: if the file holds no words.
    """
    buf: list[str] = []
    words = 0
    for _, text in iter_lines(path, encoding):
        buf.append(text)
        if len(buf) >= lines_per_chunk:
            stream = encode_lines(buf, tokenizer, reverse=reverse)
            words += stream.words
            buf = []
            yield stream
    if buf:
        stream = encode_lines(buf, tokenizer, reverse=reverse)
        words += stream.words
        yield stream
    if words == 0:
        raise DataError("file has no words", path)


def batchify(ids: np.ndarray, batch_size: int, pad: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cut a stream into ``batch_size`` rows of inputs and next-token targets.

    Args:
        ids: The stream.
        batch_size: Number of rows.
        pad: Keep every token (pad the rows; padded targets get id ``PAD_ID``
            and must be masked); otherwise drop the remainder.

    Returns:
        ``(inputs, targets, mask)``, each ``(batch_size, length)``; ``mask``
        is 1.0 where the target is real.
    """
    n = ids.size - 1  # number of (input, target) pairs
    if pad:
        length = -(-n // batch_size)
        x = np.full(batch_size * length, PAD_ID, np.int32)
        y = np.full(batch_size * length, PAD_ID, np.int32)
        x[:n] = ids[:-1]
        y[:n] = ids[1:]
        mask = np.zeros(batch_size * length, np.float32)
        mask[:n] = 1.0
    else:
        length = n // batch_size
        x = ids[: batch_size * length]
        y = ids[1: batch_size * length + 1]
        mask = np.ones(batch_size * length, np.float32)
    shape = (batch_size, length)
    return x.reshape(shape), y.reshape(shape), mask.reshape(shape)


def windows(arrays: tuple[np.ndarray, ...], bptt: int, full_only: bool) -> Iterator[tuple[np.ndarray, ...]]:
    """Yield BPTT windows of each array, zero-padding the last one to ``bptt`` columns."""
    length = arrays[0].shape[1]
    for start in range(0, length, bptt):
        parts = [a[:, start:start + bptt] for a in arrays]
        cols = parts[0].shape[1]
        if cols < bptt:
            if full_only:
                return
            parts = [np.pad(p, ((0, 0), (0, bptt - cols))) for p in parts]
        yield tuple(parts)


# Merity et al. (2017): a full window with probability 0.95, else half of one; then a
# length drawn around it with this standard deviation, never below MIN_BPTT.
FULL_WINDOW_P = 0.95
BPTT_STD = 5.0
MIN_BPTT = 5


def variable_lengths(total: int, bptt: int, rng: np.random.Generator) -> list[int]:
    """Window lengths that cover ``total`` columns, drawn as in AWD-LSTM.

    Each length is ``max(MIN_BPTT, int(N(b, BPTT_STD)))`` with ``b = bptt``
    with probability ``FULL_WINDOW_P`` and ``bptt / 2`` otherwise; the last
    window is cut to the columns left. Training scales the learning rate of
    each window by ``length / bptt`` so that long windows, which sum more
    tokens' gradients into their mean, are not under-weighted.

    Args:
        total: Columns of the batchified stream.
        bptt: The configured window.
        rng: Source of randomness (seed it for a reproducible epoch).
    """
    lengths, start = [], 0
    while start < total:
        base = bptt if rng.random() < FULL_WINDOW_P else bptt / 2
        length = min(max(MIN_BPTT, int(rng.normal(base, BPTT_STD))), total - start)
        lengths.append(length)
        start += length
    return lengths


def variable_windows(arrays: tuple[np.ndarray, ...], lengths: list[int]) -> Iterator[tuple[np.ndarray, ...]]:
    """Yield consecutive windows of each array, one per entry of ``lengths``."""
    start = 0
    for length in lengths:
        yield tuple(a[:, start:start + length] for a in arrays)
        start += length
