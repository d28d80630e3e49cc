"""Inputs cut into chunks of whole lines, and sharded outputs named so that they sort into input order.

A chunk is a byte range of one input file holding ``--chunk-size`` records
(lines; CoNLL sentences, ending at a blank line, so a sentence is never cut). The
driver plans the chunks in one pass over the files; a worker reads its
chunk by seeking, predicts it and writes one output shard::

    PREFIX-FFFFF-CCCCC.EXT          outputs of chunk CCCCC of input file FFFFF (files sorted by name)
    PREFIX.dead-FFFFF-CCCCC.jsonl   refused records of that chunk, with the reason (only if any)
    PREFIX.manifest.json            every shard with its input file, first line and counts

so ``cat PREFIX-*.EXT`` is the output of ``lstmtext predict`` on the files
concatenated in name order. Shards are written to a temporary name and
renamed, so a retried chunk replaces its shard whole.
"""

from __future__ import annotations

import glob
import os
from dataclasses import dataclass
from pathlib import Path

from lstmtext.errors import DataError, UsageError
from lstmtext.io import bom_length

EXTENSIONS = {"jsonl": "jsonl", "text": "txt", "conll": "conll"}
HEAD_LINES = 200  # lines read to detect a tagger's input format, as ``lstmtext predict`` does


@dataclass(frozen=True)
class Chunk:
    """A byte range of whole lines of one input file."""

    file: str
    file_index: int
    index: int
    start: int
    end: int
    first_line: int
    lines: int
    input_format: str = "text"


def expand(patterns: list[str]) -> list[str]:
    """The files that the ``--input`` patterns match (globs, ``**`` included), sorted and without repeats.

    Raises:
        DataError: for a pattern that matches no file.
    """
    found: dict[str, None] = {}
    for pattern in patterns:
        matches = sorted(p for p in glob.glob(pattern, recursive=True) if os.path.isfile(p))
        if not matches:
            raise DataError("no input file matches this pattern", pattern)
        found.update(dict.fromkeys(matches))
    return sorted(found)


def head(path: str, encoding: str) -> list[str]:
    """The first lines of a file (undecodable bytes replaced), to detect its format."""
    out = []
    with open(path, "rb") as fh:
        for raw in fh:
            if not out:
                raw = raw[bom_length(raw, encoding):]
            out.append(raw.decode(encoding, errors="replace").rstrip("\r\n"))
            if len(out) >= HEAD_LINES:
                break
    return out


def plan(path: str, file_index: int, size: int, input_format: str = "text") -> list[Chunk]:
    """Cut one file into chunks of ``size`` records, counted as ``lstmtext predict`` counts its windows.

    A record is a line of text, a non-blank JSONL line, or a CoNLL sentence (a chunk then ends at
    the blank line after its last sentence). Chunks of ``predict``'s window (or a multiple) give
    its batches exactly, so its results to the last bit.
    """
    if size < 1:
        raise UsageError("--chunk-size must be at least 1")
    chunks: list[Chunk] = []
    start = offset = 0
    first = number = 0
    records = 0
    in_sentence = False
    with open(path, "rb") as fh:
        for raw in fh:
            number += 1
            offset += len(raw)
            blank = not raw.strip()
            if input_format == "conll":
                separator = blank or raw.split()[0] == b"-DOCSTART-"
                if separator and in_sentence:
                    records += 1
                in_sentence = not separator
                cut = records >= size and blank
            else:
                records += input_format != "jsonl" or not blank
                cut = records >= size
            if cut:
                chunks.append(Chunk(path, file_index, len(chunks), start, offset, first + 1, number - first,
                                    input_format))
                start, first, records = offset, number, 0
    if number > first or not chunks:  # the rest, or an empty file's one empty chunk
        chunks.append(Chunk(path, file_index, len(chunks), start, offset, first + 1, number - first, input_format))
    return chunks


def read(chunk: Chunk, encoding: str = "utf-8") -> list[tuple[int, str | None, str | None]]:
    """A chunk's lines as ``(line number, text, None)``, or ``(line number, None, reason)`` if undecodable."""
    with open(chunk.file, "rb") as fh:
        fh.seek(chunk.start)
        data = fh.read(chunk.end - chunk.start)
    pieces = data.split(b"\n")
    if pieces and pieces[-1] == b"":
        pieces.pop()  # the final newline ends the last line; it starts none
    out = []
    offset = chunk.start
    if chunk.start == 0 and pieces and (skip := bom_length(pieces[0], encoding)):
        pieces[0], offset = pieces[0][skip:], skip
    for number, raw in enumerate(pieces, start=chunk.first_line):
        try:
            out.append((number, raw.decode(encoding).rstrip("\r"), None))
        except UnicodeDecodeError as exc:
            out.append((number, None, f"invalid {encoding} byte at byte offset {offset + exc.start}"))
        offset += len(raw) + 1
    return out


def shard_name(prefix: str, chunk: Chunk, fmt: str) -> str:
    """The output shard of a chunk."""
    return f"{prefix}-{chunk.file_index:05d}-{chunk.index:05d}.{EXTENSIONS[fmt]}"


def dead_name(prefix: str, chunk: Chunk) -> str:
    """The dead-letter shard of a chunk."""
    return f"{prefix}.dead-{chunk.file_index:05d}-{chunk.index:05d}.jsonl"


def manifest_name(prefix: str) -> str:
    return f"{prefix}.manifest.json"


def existing(prefix: str) -> list[str]:
    """Outputs of an earlier run with this prefix."""
    names = glob.glob(glob.escape(prefix) + "-[0-9]*") + glob.glob(glob.escape(prefix) + ".dead-*")
    return sorted(names + [p for p in [manifest_name(prefix)] if os.path.exists(p)])


def write_lines(path: str, lines: list[str]) -> None:
    """Write lines to ``path`` through a temporary file renamed into place."""
    target = Path(path)
    tmp = target.with_name(f".{target.name}.tmp{os.getpid()}")
    try:
        with open(tmp, "w", encoding="utf-8", newline="\n") as fh:
            fh.writelines(line + "\n" for line in lines)
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()
