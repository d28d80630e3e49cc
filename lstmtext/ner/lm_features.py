"""Language-model features for the tagger: the hidden states of LMs trained on plain text, one vector per word.

TagLM (Peters et al. 2017): a forward and a backward language model, trained
by ``lstmtext train lm`` (``--set direction=backward`` for the second) on
unlabeled text, read every sentence the tagger sees; each word gets the top
LSTM layer's output of each model, concatenated, beside its word, casing and
character features. The models stay frozen: their vectors are computed once
per sentence with NumPy (no TensorFlow), in training, evaluation and
prediction alike.

Which state a word gets:

- **forward** model: it reads the end-of-line id, then the sentence's pieces
  left to right; a word's vector is the output at its **last** piece (the
  state that has read the whole word and everything before it);
- **backward** model: it reads the end-of-line id, then the pieces right to
  left; a word's vector is the output at its **first** piece (the last of
  the word it reads, having read everything after it).

Each word is encoded by the LM's tokenizer on its own (SentencePiece never
joins pieces across a space, so this equals encoding the sentence); a word
the tokenizer maps to no piece reads as the unknown piece.

A tagger bundle stores copies of its language models under ``lm/0``,
``lm/1``, ... (their ``config.json``, ``tokenizer/`` and ``weights.h5`` in
``lm_weights_dtype``), so it is tagged with nothing but itself; their size
counts toward the bundle's.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from lstmtext.errors import BundleError, UsageError

LM_DIR = "lm"
# A tagger's data whose words the LM's tokenizer reads as unknown this often is refused.
MAX_UNKNOWN_SHARE = 0.2


@dataclass
class LanguageModel:
    """One frozen language model: its tokenizer, LSTM weights and reading direction."""

    name: str
    direction: str
    tokenizer: object
    embeddings: np.ndarray
    cells: list[tuple[np.ndarray, np.ndarray, np.ndarray]]
    config_json: bytes  # the bundle's config.json, written again into the tagger's copy

    @property
    def dim(self) -> int:
        return int(self.cells[-1][1].shape[0])

    @classmethod
    def load(cls, path: str | Path, name: str | None = None, dtype: str | None = None) -> "LanguageModel":
        """A language-model bundle, checked; ``dtype`` rounds its weights as a bundle stored in it would.

        Raises:
            UsageError: the path is no bundle or not a language model (one line naming it).
        """
        from lstmtext import bundle as bundle_io
        from lstmtext.decoding.lstm_numpy import embedded_lstm_weights
        from lstmtext.errors import LstmtextError
        from lstmtext.tokenizers import load_tokenizer
        from lstmtext.weights import load_arrays

        label = name or str(path)
        try:
            b = bundle_io.read(path)
        except LstmtextError as exc:
            raise UsageError(f"--lm {label}: {exc}") from None
        if b.task != "lm":
            raise UsageError(f"--lm {label}: this is a '{b.task}' model, not a language model "
                             "(train one with lstmtext train lm)")
        layers = int(b.config.get("num_layers", 1))
        try:
            tokenizer = load_tokenizer(b.file("tokenizer"))
            embeddings, cells = embedded_lstm_weights(load_arrays(b.file("weights.h5")), layers)
        except LstmtextError as exc:
            raise UsageError(f"--lm {label}: {exc}") from None
        if embeddings.shape[0] != tokenizer.vocab_size:
            raise UsageError(f"--lm {label}: tokenizer and weights disagree on the vocabulary size")
        if dtype and dtype != "float32":
            embeddings = embeddings.astype(dtype).astype(np.float32)
            cells = [tuple(w.astype(dtype).astype(np.float32) for w in cell) for cell in cells]
        return cls(label, b.config.get("direction", "forward"), tokenizer, embeddings, cells,
                   b.file("config.json").read_bytes())

    def save(self, target: Path, dtype: str) -> None:
        """Write the parts a tagger reads (config, tokenizer, embedding and LSTM weights) into ``target``."""
        from lstmtext.weights import save_arrays

        target.mkdir(parents=True, exist_ok=True)
        (target / "config.json").write_bytes(self.config_json)
        self.tokenizer.save(target / "tokenizer")
        arrays = {"embedding/embeddings": self.embeddings}
        for i, (kernel, recurrent, bias) in enumerate(self.cells):
            arrays.update({f"lstm_{i}/lstm_cell/kernel": kernel, f"lstm_{i}/lstm_cell/recurrent_kernel": recurrent,
                           f"lstm_{i}/lstm_cell/bias": bias})
        save_arrays(arrays, target / "weights.h5", dtype)

    def pieces(self, word: str, cache: dict) -> list[int]:
        ids = cache.get(word)
        if ids is None:
            from lstmtext.tokenizers import UNK_ID

            ids = self.tokenizer.encode(word) or [UNK_ID]
            if len(cache) > 200_000:
                cache.clear()
            cache[word] = ids
        return ids

    def vectors(self, batch: Sequence[Sequence[str]]) -> list[np.ndarray]:
        """``(len(sentence), dim)`` float32 vectors for each sentence of ``batch`` (see the module)."""
        from lstmtext.decoding.lstm_numpy import lstm_sequences
        from lstmtext.tokenizers import EOS_ID

        cache = self.__dict__.setdefault("_cache", {})
        backward = self.direction == "backward"
        rows, where = [], []
        for tokens in batch:
            words = [self.pieces(w, cache) for w in tokens]
            if backward:
                words = [list(reversed(p)) for p in reversed(words)]
            ids = [EOS_ID]
            ends = []
            for p in words:
                ids.extend(p)
                ends.append(len(ids) - 1)  # position of the word's last piece read
            if backward:
                ends.reverse()
            rows.append(ids)
            where.append(ends)
        lengths = np.array([len(r) for r in rows])
        ids = np.zeros((len(rows), int(lengths.max(initial=1))), np.int64)
        for b, r in enumerate(rows):
            ids[b, : len(r)] = r
        table, fused = self._runtime()
        x = ids
        for i, (kernel, recurrent, bias) in enumerate(fused):
            x = lstm_sequences(x, lengths, kernel, recurrent, bias, fused=True, table=table(ids) if i == 0 else None)[0]
        return [x[b, ends] for b, ends in enumerate(where)]

    def _runtime(self):
        """The first layer's :class:`~lstmtext.decoding.lstm_numpy.InputTable` and every layer's fused weights."""
        if "_fused" not in self.__dict__:
            from lstmtext.decoding.lstm_numpy import InputTable, fused_gates

            fused = [fused_gates(*cell) for cell in self.cells]
            self._table = InputTable(self.embeddings, fused[0][0], fused[0][2])
            self._fused = fused  # last: another thread may test for it
        return self._table, self._fused

    def unknown_share(self, sentences: Sequence[Sequence[str]]) -> float:
        """Share of the words whose pieces include the unknown piece."""
        from lstmtext.tokenizers import UNK_ID

        cache = self.__dict__.setdefault("_cache", {})
        words = [w for s in sentences for w in s]
        return sum(UNK_ID in self.pieces(w, cache) for w in words) / max(len(words), 1)


class LMFeatures:
    """The tagger's language models together: one vector per word, their outputs concatenated.

    Args:
        models: The language models, in the order their vectors are concatenated.
    """

    def __init__(self, models: list[LanguageModel]):
        self.models = models
        self.dim = sum(m.dim for m in models)

    def __call__(self, batch: Sequence[Sequence[str]]) -> list[np.ndarray]:
        """``(len(sentence), dim)`` float32 vectors for each (non-empty) sentence."""
        parts = [m.vectors(batch) for m in self.models]
        return [np.concatenate([p[b] for p in parts], axis=-1) for b in range(len(batch))]

    def all_vectors(self, sentences: Sequence[Sequence[str]], batch_size: int = 64) -> list[np.ndarray]:
        """:meth:`__call__` over many sentences, in batches of similar length (empty sentences get none)."""
        order = sorted((i for i, s in enumerate(sentences) if len(s)), key=lambda i: len(sentences[i]))
        out: list[np.ndarray] = [np.zeros((0, self.dim), np.float32)] * len(sentences)
        for k in range(0, len(order), batch_size):
            idx = order[k: k + batch_size]
            for i, v in zip(idx, self([sentences[i] for i in idx])):
                out[i] = v
        return out

    def check_coverage(self, sentences: Sequence[Sequence[str]], path) -> None:
        """Refuse a model whose tokenizer reads too many of the tagger's words as unknown."""
        for m in self.models:
            share = m.unknown_share(sentences)
            if share > MAX_UNKNOWN_SHARE:
                raise UsageError(f"--lm {m.name}: its tokenizer reads {100 * share:.0f}% of the words of {path} "
                                 "as unknown; train the language model on text like the tagger's (same case "
                                 "and characters)")

    def save(self, directory: Path, dtype: str) -> None:
        """Store the models in a tagger bundle being written, as ``lm/0``, ``lm/1``, ..."""
        for i, m in enumerate(self.models):
            m.save(directory / LM_DIR / str(i), dtype)

    def describe(self) -> list[dict]:
        return [{"path": f"{LM_DIR}/{i}", "source": m.name, "direction": m.direction, "dim": m.dim}
                for i, m in enumerate(self.models)]

    @classmethod
    def from_paths(cls, paths: str, dtype: str) -> "LMFeatures":
        """The models of a config's ``lm`` value (comma-separated bundle paths)."""
        return cls([LanguageModel.load(p, dtype=dtype) for p in paths.split(",") if p.strip()])

    @classmethod
    def from_bundle(cls, bundle) -> "LMFeatures | None":
        """The language models stored in a tagger bundle, or ``None`` for a tagger without them.

        Raises:
            BundleError: a stored model is missing or broken.
        """
        entries = bundle.meta.get("lm_features")
        if not entries:
            return None
        models = []
        for entry in entries:
            path = bundle.file(str(entry.get("path", "")))
            try:
                model = LanguageModel.load(path, name=str(entry.get("source", path)))
            except UsageError as exc:
                raise BundleError(f"{bundle.path}: stored language model {entry.get('path')}: "
                                  f"{str(exc).split(': ', 1)[-1]}") from None
            if model.dim != entry.get("dim"):
                raise BundleError(f"{bundle.path}: stored language model {entry.get('path')} has {model.dim} "
                                  f"units, config.json says {entry.get('dim')}")
            models.append(model)
        return cls(models)
