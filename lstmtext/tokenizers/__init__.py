"""Tokenizers: SentencePiece (default) and a whitespace word vocabulary."""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterable

from lstmtext.errors import DataError
from lstmtext.tokenizers.base import BOS_ID, EOS_ID, PAD_ID, UNK_ID, Tokenizer

TYPES = ("unigram", "bpe", "char", "word")

__all__ = ["Tokenizer", "TYPES", "train_tokenizer", "load_tokenizer", "save_tokenizer",
           "PAD_ID", "UNK_ID", "BOS_ID", "EOS_ID"]


def train_tokenizer(lines: Iterable[str], vocab_size: int, kind: str = "unigram", seed: int = 0,
                    warn: Callable[[str], None] | None = None) -> Tokenizer:
    """Train a tokenizer of type ``kind`` (one of :data:`TYPES`).

    ``word`` builds a whitespace vocabulary (``vocab_size`` 0 keeps every
    word); the others train a SentencePiece model of that type, adjusting a
    size the text cannot support with one line to ``warn`` (see
    :meth:`~lstmtext.tokenizers.spm.SentencePieceTokenizer.train`).
    """
    if kind == "word":
        from lstmtext.tokenizers.word import WordTokenizer

        return WordTokenizer.train(lines, vocab_size)
    if kind not in TYPES:
        raise DataError(f"unknown tokenizer type '{kind}' (choose from {', '.join(TYPES)})")
    from lstmtext.tokenizers.spm import SentencePieceTokenizer

    return SentencePieceTokenizer.train(lines, vocab_size, model_type=kind, seed=seed, warn=warn)


def save_tokenizer(tok: Tokenizer, path: Path) -> None:
    """Write a tokenizer to a single file (``.model`` for SentencePiece, text vocab for words)."""
    from lstmtext.io import atomic_file
    from lstmtext.tokenizers.word import WordTokenizer

    if isinstance(tok, WordTokenizer):
        tok.save_file(Path(path))
    else:
        with atomic_file(path, "wb") as fh:
            fh.write(tok.proto)


def load_tokenizer(path: str | Path) -> Tokenizer:
    """Load a tokenizer from a file or a bundle's ``tokenizer/`` directory."""
    from lstmtext.tokenizers import spm, word

    p = Path(path)
    if p.is_dir():
        if (p / spm.FILENAME).is_file():
            return spm.SentencePieceTokenizer.load_file(p / spm.FILENAME)
        if (p / word.FILENAME).is_file():
            return word.WordTokenizer.load_file(p / word.FILENAME)
        raise DataError("no tokenizer found in directory", p)
    if not p.is_file():
        raise DataError("tokenizer file not found", p)
    with open(p, "rb") as fh:
        head = fh.read(len(word.HEADER))
    if head == word.HEADER.encode():
        return word.WordTokenizer.load_file(p)
    return spm.SentencePieceTokenizer.load_file(p)
