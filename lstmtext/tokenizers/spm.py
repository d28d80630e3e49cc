"""SentencePiece tokenizers (unigram, BPE, char, word models)."""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Callable, Iterable

from lstmtext.errors import DataError
from lstmtext.tokenizers.base import BOS_ID, EOS_ID, PAD_ID, UNK_ID, Tokenizer

FILENAME = "spm.model"
BOUNDARY = "\u2581"
# SentencePiece's own words for a size the text cannot support, either way.
_TOO_HIGH = re.compile(r"Vocabulary size too high \((\d+)\)\. Please set it to a value <= (\d+)")
_TOO_SMALL = re.compile(r"Vocabulary size is smaller than required_chars\. (\d+) vs (\d+)")
# The source location and failed check SentencePiece puts before its message:
# "INTERNAL: src/trainer_interface.cc(744) [(a) == (b)] " is not for users.
_INTERNALS = re.compile(r"^[A-Z_]+: \S+\.cc\(\d+\) \[.*?\] ")
MAX_RETRIES = 3


def clean_message(exc: Exception) -> str:
    """SentencePiece's error without its source location and internal check."""
    text = str(exc).strip().splitlines()[-1] if str(exc).strip() else "training failed"
    return _INTERNALS.sub("", text).strip()


class SentencePieceTokenizer(Tokenizer):
    """A wrapper around a trained ``sentencepiece`` model.

    Args:
        model_proto: The serialized SentencePiece model.
    """

    kind = "sentencepiece"

    def __init__(self, model_proto: bytes):
        import sentencepiece as spm

        self.proto = model_proto
        self.sp = spm.SentencePieceProcessor()
        try:
            self.sp.LoadFromSerializedProto(model_proto)
        except Exception as exc:  # sentencepiece raises plain RuntimeError/OSError
            raise DataError(f"not a SentencePiece model ({exc})") from None
        if (self.sp.pad_id(), self.sp.unk_id(), self.sp.bos_id(), self.sp.eos_id()) != (
            PAD_ID, UNK_ID, BOS_ID, EOS_ID,
        ):
            raise DataError(
                "SentencePiece model must use pad=0, unk=1, bos=2, eos=3 "
                "(train it with 'lstmtext tokenizer train')"
            )
        n = self.sp.GetPieceSize()
        self._word_start = [self.sp.IdToPiece(i).startswith(BOUNDARY) for i in range(n)]
        self.model_type = self._model_type()

    def _model_type(self) -> str:
        from sentencepiece import sentencepiece_model_pb2 as pb

        m = pb.ModelProto()
        m.ParseFromString(self.proto)
        return pb.TrainerSpec.ModelType.Name(m.trainer_spec.model_type).lower()

    @classmethod
    def train(
        cls,
        lines: Iterable[str],
        vocab_size: int,
        model_type: str = "unigram",
        character_coverage: float = 1.0,
        max_sentences: int = 2_000_000,
        seed: int = 0,
        warn: Callable[[str], None] | None = None,
    ) -> "SentencePieceTokenizer":
        """Train a model on ``lines`` (kept in memory; no temporary files).

        A ``vocab_size`` the text cannot support is adjusted rather than
        refused: above what the text's pieces allow, it is lowered to
        SentencePiece's bound; below the number of distinct characters (plus
        the four specials), it is raised to that. Either way ``warn`` gets one
        line naming the size used (default: a ``logging`` warning).

        Raises:
            DataError: if there is no text, or SentencePiece fails otherwise
                (its message, without its internals).
        """
        import sentencepiece as spm

        if warn is None:
            import logging

            warn = logging.getLogger("lstmtext").warning
        sentences = [line for line in lines if line.strip()]
        if not sentences:
            raise DataError("no text to train a tokenizer on")
        size = vocab_size
        for _ in range(MAX_RETRIES):
            model = io.BytesIO()
            try:
                spm.SentencePieceTrainer.train(
                    sentence_iterator=iter(sentences),
                    model_writer=model,
                    vocab_size=size,
                    model_type=model_type,
                    character_coverage=character_coverage,
                    pad_id=PAD_ID, unk_id=UNK_ID, bos_id=BOS_ID, eos_id=EOS_ID,
                    input_sentence_size=max_sentences,
                    shuffle_input_sentence=True,
                    hard_vocab_limit=model_type not in ("word", "char"),
                    user_defined_symbols=[],
                    minloglevel=2,
                    num_threads=2,
                )
            except RuntimeError as exc:
                message = clean_message(exc)
                high, low = _TOO_HIGH.search(message), _TOO_SMALL.search(message)
                if high and int(high.group(2)) < size:
                    size = int(high.group(2))
                    continue
                if low and int(low.group(2)) > size:
                    size = int(low.group(2))
                    continue
                raise DataError(f"cannot train a SentencePiece tokenizer: {message}") from None
            if size != vocab_size:
                why = ("more than this text supports" if size < vocab_size else
                       "too small for the text's characters and the 4 special pieces")
                warn(f"warning: vocab_size {vocab_size} is {why}; using vocab_size={size}")
            return cls(model.getvalue())
        raise DataError(f"cannot train a SentencePiece tokenizer of any size near {vocab_size} on this text")

    @property
    def vocab_size(self) -> int:
        return self.sp.GetPieceSize()

    def encode(self, text: str) -> list[int]:
        return self.sp.EncodeAsIds(text)

    def encode_batch(self, texts: list[str]) -> list[list[int]]:
        return self.sp.Encode(texts)

    def decode(self, ids: list[int]) -> str:
        return self.sp.DecodeIds([int(i) for i in ids if int(i) > 3 or int(i) == UNK_ID])

    def id_to_piece(self, i: int) -> str:
        return self.sp.IdToPiece(int(i))

    def is_word_start(self, i: int) -> bool:
        return self._word_start[int(i)]

    def piece_text(self, i: int) -> str:
        return self.sp.IdToPiece(int(i)).replace(BOUNDARY, "")

    def save(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        (directory / FILENAME).write_bytes(self.proto)

    def describe(self) -> dict:
        return {"kind": self.kind, "model_type": self.model_type, "vocab_size": self.vocab_size}

    @classmethod
    def load_file(cls, path: Path) -> "SentencePieceTokenizer":
        """Load a ``.model`` file."""
        try:
            proto = Path(path).read_bytes()
        except OSError as exc:
            raise DataError(f"cannot read tokenizer: {exc.strerror}", path) from None
        try:
            return cls(proto)
        except DataError as exc:
            raise DataError(exc.message, path) from None

