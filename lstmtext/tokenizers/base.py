"""The tokenizer interface shared by every task."""

from __future__ import annotations

import abc
from pathlib import Path

PAD_ID = 0
UNK_ID = 1
BOS_ID = 2
EOS_ID = 3
PAD, UNK, BOS, EOS = "<pad>", "<unk>", "<s>", "</s>"


class Tokenizer(abc.ABC):
    """Maps text to integer ids and back.

    Every tokenizer reserves the same special ids: ``pad=0``, ``unk=1``,
    ``bos=2``, ``eos=3``. A *word start* piece begins a new whitespace word;
    next-word search over subword pieces relies on it.
    """

    kind: str = ""
    pad_id, unk_id, bos_id, eos_id = PAD_ID, UNK_ID, BOS_ID, EOS_ID

    @property
    @abc.abstractmethod
    def vocab_size(self) -> int:
        """Number of ids, specials included."""

    @abc.abstractmethod
    def encode(self, text: str) -> list[int]:
        """Ids of ``text`` (no bos/eos added)."""

    def encode_batch(self, texts: list[str]) -> list[list[int]]:
        """Ids of several texts."""
        return [self.encode(t) for t in texts]

    @abc.abstractmethod
    def decode(self, ids: list[int]) -> str:
        """Text of ``ids``; special ids are dropped."""

    @abc.abstractmethod
    def id_to_piece(self, i: int) -> str:
        """The piece string of id ``i``."""

    @abc.abstractmethod
    def is_word_start(self, i: int) -> bool:
        """Whether piece ``i`` starts a new word."""

    def piece_text(self, i: int) -> str:
        """Surface text of piece ``i`` without the word-boundary marker."""
        return self.id_to_piece(i)

    @abc.abstractmethod
    def save(self, directory: Path) -> None:
        """Write the tokenizer's files into ``directory``."""

    def describe(self) -> dict:
        """A short JSON-able summary for ``info`` and ``config.json``."""
        return {"kind": self.kind, "vocab_size": self.vocab_size}
