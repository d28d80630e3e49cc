"""A whitespace word vocabulary, for pre-tokenised corpora such as PTB."""

from __future__ import annotations

import collections
from pathlib import Path
from typing import Iterable

from lstmtext.errors import DataError
from lstmtext.tokenizers.base import BOS, EOS, PAD, UNK, UNK_ID, Tokenizer

HEADER = "#lstmtext-word-vocab v1"
FILENAME = "vocab.txt"


class WordTokenizer(Tokenizer):
    """Splits on whitespace; words outside the vocabulary map to ``<unk>``.

    A literal ``<unk>`` in the text (as in the Mikolov PTB files) maps to the
    unknown id as well.

    Args:
        words: The vocabulary, most frequent first, without the specials.
    """

    kind = "word"

    def __init__(self, words: list[str]):
        self.pieces = [PAD, UNK, BOS, EOS] + [w for w in words if w not in (PAD, UNK, BOS, EOS)]
        self.index = {w: i for i, w in enumerate(self.pieces)}

    @classmethod
    def train(cls, lines: Iterable[str], vocab_size: int = 0, min_count: int = 1) -> "WordTokenizer":
        """Build a vocabulary from ``lines``.

        Args:
            lines: Training text.
            vocab_size: Largest vocabulary (specials included); 0 for no limit.
            min_count: Drop words seen fewer times.
        """
        counts = collections.Counter(w for line in lines for w in line.split())
        counts.pop(UNK, None)
        ranked = sorted((w for w, c in counts.items() if c >= min_count), key=lambda w: (-counts[w], w))
        if vocab_size:
            ranked = ranked[: max(0, vocab_size - 4)]
        return cls(ranked)

    @property
    def vocab_size(self) -> int:
        return len(self.pieces)

    def encode(self, text: str) -> list[int]:
        get = self.index.get
        return [get(w, UNK_ID) for w in text.split()]

    def decode(self, ids: list[int]) -> str:
        return " ".join(self.pieces[i] for i in ids if i > 3 or i == UNK_ID)

    def id_to_piece(self, i: int) -> str:
        return self.pieces[i]

    def is_word_start(self, i: int) -> bool:
        return True

    def save(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.save_file(directory / FILENAME)

    def save_file(self, path: Path) -> None:
        """Write the vocabulary as text, one word a line, after a header."""
        from lstmtext.io import atomic_file

        with atomic_file(path) as fh:
            fh.write(HEADER + "\n")
            for w in self.pieces[4:]:
                fh.write(w + "\n")

    @classmethod
    def load_file(cls, path: Path) -> "WordTokenizer":
        """Read a vocabulary written by :meth:`save_file`."""
        try:
            lines = Path(path).read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise DataError(f"cannot read word vocabulary: {exc}", path) from None
        if not lines or lines[0] != HEADER:
            raise DataError("not an lstmtext word vocabulary (bad header)", path, 1)
        return cls(lines[1:])
