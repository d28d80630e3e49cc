"""FASTA sequences with per-residue labels and masks, as protein secondary-structure data comes.

Three files describe one data set, the same records in the same order:

* sequences (``>ID ...`` then the residues, on one line or several);
* labels: one label character per residue (``H``/``E``/``C``, say); the
  header may carry ``KEY=VALUE`` flags, and ``VALIDATION=True`` marks a
  validation record (FLIP's splits of NetSurfP-2.0 write them so);
* an optional mask: ``1`` for a residue to learn and score, ``0`` for one to
  leave out (an unresolved residue); its label is then never read.

Records are matched by position and must have the same id in every file.
Every problem stops with one line naming the file, the record and its line:
different record counts, another id, a label or mask string of another
length than its sequence, an empty sequence, a character that is not a
residue letter, a mask character other than 0 or 1.

A masked residue is a real token (the network reads it) whose tag is
``None``: the loss (:func:`lstmtext.ner.heads.partial_crf_loss`) and the
metrics (:class:`lstmtext.ner.metrics.LabelCounter`) skip it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

from lstmtext.errors import DataError
from lstmtext.io import iter_lines
from lstmtext.ner.data import Sentence, sniff

SUFFIXES = (".fasta", ".fa", ".faa", ".fas", ".fna")
# Residue letters: the 20 amino acids, the ambiguity codes (B, J, O, U, X, Z), nucleotides;
# '*' (stop) and '-' (gap) as aligned files write them.
RESIDUE_EXTRA = "*-"


@dataclass
class Record:
    """One FASTA record: its id, the header after the id, the sequence and the header's line number."""

    id: str
    description: str
    sequence: str
    line: int

    @property
    def flags(self) -> dict[str, str]:
        """``KEY=VALUE`` words of the header: ``{"SET": "train", "VALIDATION": "True"}``."""
        return dict(word.split("=", 1) for word in self.description.split() if "=" in word)

    @property
    def validation(self) -> bool:
        return self.flags.get("VALIDATION", "").lower() == "true"


def is_fasta(path: str | Path) -> bool:
    """Whether a file is FASTA: by its extension, else by a first non-blank character ``>``."""
    return sniff(path, SUFFIXES, b">")


def iter_records(lines: Iterable[tuple[int, str]], name: str) -> Iterator[Record]:
    """Records of FASTA ``(line number, text)`` pairs; whitespace inside a sequence is dropped."""
    current: Record | None = None
    parts: list[str] = []
    for number, line in lines:
        text = line.strip()
        if text.startswith(">"):
            if current is not None:
                current.sequence = "".join(parts)
                yield current
            head = text[1:].split(None, 1)
            if not head:
                raise DataError("a FASTA header without an id", name, number)
            current = Record(head[0], head[1] if len(head) > 1 else "", "", number)
            parts = []
        elif text:
            if current is None:
                raise DataError("text before the first FASTA header ('>ID')", name, number)
            parts.append("".join(text.split()))
    if current is not None:
        current.sequence = "".join(parts)
        yield current


def read_records(path: str | Path, encoding: str = "utf-8") -> list[Record]:
    """Every record of a FASTA file."""
    from lstmtext.io import check_readable

    check_readable(path)
    records = list(iter_records(iter_lines(path, encoding), str(path)))
    if not records:
        raise DataError("no FASTA records found", path)
    return records


def check_sequence(record: Record, name: str) -> None:
    """Refuse an empty sequence or one holding a character that is no residue letter."""
    if not record.sequence:
        raise DataError(f"record '{record.id}' has an empty sequence", name, record.line)
    for i, ch in enumerate(record.sequence):
        if not (ch.isascii() and ch.isalpha()) and ch not in RESIDUE_EXTRA:
            raise DataError(f"record '{record.id}': character {ch!r} at residue {i + 1} is not a residue letter",
                            name, record.line)


def _matched(base: list[Record], other: list[Record], base_name: str, name: str, what: str) -> None:
    if len(other) != len(base):
        raise DataError(f"{len(other):,} records, but {base_name} has {len(base):,} (the files must hold the "
                        "same records in the same order)", name)
    for a, b in zip(base, other):
        if a.id != b.id:
            raise DataError(f"record '{b.id}' stands where {base_name} has '{a.id}' (the files must hold the "
                            "same records in the same order)", name, b.line)
        if len(b.sequence) != len(a.sequence):
            raise DataError(f"record '{b.id}' has {len(b.sequence):,} {what} for a sequence of "
                            f"{len(a.sequence):,} residues", name, b.line)


def read_labelled(sequences: str | Path, labels: str | Path | None = None, mask: str | Path | None = None,
                  encoding: str = "utf-8") -> tuple[list[Sentence], list[bool]]:
    """Sequences as sentences of residues, with their labels (masked ones ``None``) and validation flags.

    Args:
        sequences: FASTA residues.
        labels: FASTA labels, one character per residue (``None``: untagged).
        mask: FASTA mask, ``1`` or ``0`` per residue (``None``: every residue counts).

    Returns:
        ``(sentences, validation)``: one sentence per record (``tokens`` the
        residues, ``tags`` the labels, ``text`` the record id, ``source`` and
        ``line`` the sequence file and its header line), and whether the
        labels' header marks it ``VALIDATION=True``.

    Raises:
        DataError: naming the file and record of the first problem.
    """
    seq_name = str(sequences)
    records = read_records(sequences, encoding)
    for r in records:
        check_sequence(r, seq_name)
    tags = read_records(labels, encoding) if labels is not None else None
    if tags is not None:
        _matched(records, tags, Path(seq_name).name, str(labels), "labels")
        for t in tags:
            if any(ch.isspace() for ch in t.sequence):
                raise DataError(f"record '{t.id}' holds whitespace among its labels", labels, t.line)
    masks = read_records(mask, encoding) if mask is not None else None
    if masks is not None:
        _matched(records, masks, Path(seq_name).name, str(mask), "mask values")
        for m in masks:
            wrong = next((ch for ch in m.sequence if ch not in "01"), None)
            if wrong is not None:
                raise DataError(f"record '{m.id}': mask character {wrong!r} (expected 0 or 1)", mask, m.line)
    sentences, validation = [], []
    for k, r in enumerate(records):
        sent = Sentence(list(r.sequence), source=seq_name, line=r.line, text=r.id)
        if tags is not None:
            keep = masks[k].sequence if masks is not None else None
            sent.tags = [t if keep is None or keep[i] == "1" else None for i, t in enumerate(tags[k].sequence)]
            validation.append(tags[k].validation)
        else:
            validation.append(r.validation)
        sentences.append(sent)
    return sentences, validation


def format_record(record_id: str, labels: str, width: int = 0) -> list[str]:
    """A FASTA record's lines: the header and the labels (on one line, or lines of ``width``)."""
    if width <= 0 or not labels:
        return [f">{record_id}", labels]
    return [f">{record_id}"] + [labels[i: i + width] for i in range(0, len(labels), width)]
