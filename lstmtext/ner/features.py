"""Vocabularies and the NumPy arrays that feed the tagger.

Kept free of Keras so that the light inference path can encode text with
NumPy alone. A batch is three padded arrays: word ids ``(B, T)``, casing
classes ``(B, T)`` and character ids ``(B, T, C)``, plus ``feature_ids``
``(B, T, F)`` when the tagger reads F extra CoNLL columns; id 0 is padding
in all of them, so the word ids also define the mask. With character input
(``input = "chars"``) each token is one character and the "words" are the
characters.
"""

from __future__ import annotations

import collections
import dataclasses
import re
import threading
from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np

from lstmtext.errors import BundleError
from lstmtext.ner import labels, schemes
from lstmtext.ner.config import parse_columns

PAD, UNK = "<pad>", "<unk>"
PAD_ID, UNK_ID = 0, 1
# Target id of a real token without a label (a masked residue): the loss and
# the metrics skip it, the network still reads it; padding is -1.
MASKED = -2

# Casing classes (Reimers & Gurevych 2017): the word vectors are looked up
# lowercased, so the shape of the word is given back to the network here.
CASING = ("<pad>", "numeric", "mainly_numeric", "lower", "upper", "title", "has_digit", "mixed", "other")
NUM_CASING = len(CASING)
_DIGITS = re.compile(r"\d")


def casing_class(word: str) -> int:
    """Index into :data:`CASING` describing how ``word`` is written."""
    digits = sum(ch.isdigit() for ch in word)
    if word.isdigit():
        return 1
    if digits / max(len(word), 1) > 0.5:
        return 2
    if word.islower():
        return 3
    if word.isupper():
        return 4
    if word[:1].isupper() and (len(word) == 1 or word[1:].islower()):
        return 5
    if digits:
        return 6
    if any(ch.isalpha() for ch in word):
        return 7
    return 8


# Guards Vocab.token_rows' table, which batches tagged on threads share.
_TOKEN_TABLE_LOCK = threading.Lock()


@dataclass
class Vocab:
    """Word, character and tag inventories of a tagger.

    Attributes:
        words: Word strings by id (``<pad>``, ``<unk>`` first), normalised.
        chars: Characters by id (``<pad>``, ``<unk>`` first).
        tags: Internal tags by id.
        lowercase: Whether words are looked up lowercased.
        normalize_digits: Whether digits are mapped to ``0`` before look-up.
        max_word_length: Characters kept per word.
        features: One inventory per feature column (``<pad>``, ``<unk>`` first).
    """

    words: list[str]
    chars: list[str]
    tags: list[str]
    lowercase: bool = True
    normalize_digits: bool = True
    max_word_length: int = 30
    features: list[list[str]] = dataclasses.field(default_factory=list)

    def __post_init__(self):
        self.word_index = {w: i for i, w in enumerate(self.words)}
        self.char_index = {c: i for i, c in enumerate(self.chars)}
        self.tag_index = {t: i for i, t in enumerate(self.tags)}
        self.feature_index = [{v: i for i, v in enumerate(values)} for values in self.features]

    def feature_ids(self, columns: Sequence[Sequence[str]]) -> np.ndarray:
        """``(T, F)`` ids of one sentence's feature columns (``columns[f][t]``); unseen values are ``<unk>``."""
        out = np.zeros((len(columns[0]) if columns else 0, len(self.features)), np.int32)
        for f, (index, values) in enumerate(zip(self.feature_index, columns)):
            out[:, f] = [index.get(v, UNK_ID) for v in values]
        return out

    def normalize(self, word: str) -> str:
        """The key a word is looked up under."""
        if self.lowercase:
            word = word.lower()
        if self.normalize_digits:
            word = _DIGITS.sub("0", word)
        return word

    @classmethod
    def build(cls, sentences: Iterable[Sequence[str]], tags: Sequence[str], min_count: int = 1,
              lowercase: bool = True, normalize_digits: bool = True, max_word_length: int = 30,
              extra_words: Iterable[str] = (), features: Iterable[Sequence[Sequence[str]]] = ()) -> "Vocab":
        """Vocabulary of training sentences (plus ``extra_words``, already normalised).

        ``features``: each training sentence's feature columns (``[column][token]``),
        whose values make the feature inventories (most frequent first).
        """
        counts: list[collections.Counter] = []
        for columns in features:
            while len(counts) < len(columns):
                counts.append(collections.Counter())
            for counter, values in zip(counts, columns):
                counter.update(values)
        inventories = [[PAD, UNK] + sorted(c, key=lambda v, c=c: (-c[v], v)) for c in counts]
        probe = cls([PAD, UNK], [PAD, UNK], list(tags), lowercase, normalize_digits, max_word_length)
        words: collections.Counter = collections.Counter()
        chars: collections.Counter = collections.Counter()
        for tokens in sentences:
            for tok in tokens:
                words[probe.normalize(tok)] += 1
                chars.update(tok[:max_word_length])
        kept = sorted((w for w, c in words.items() if c >= min_count), key=lambda w: (-words[w], w))
        seen = set(kept)
        kept += sorted(w for w in set(extra_words) if w not in seen)
        char_list = sorted(chars, key=lambda c: (-chars[c], c))
        return cls([PAD, UNK] + kept, [PAD, UNK] + char_list, list(tags), lowercase, normalize_digits,
                   max_word_length, inventories)

    # Tokens remembered by token_rows before the table starts over (bounds memory).
    TOKEN_CACHE = 200_000

    def token_rows(self, tokens: Sequence[str]) -> np.ndarray:
        """Each token's row of the token table: ``[word id, casing class, characters kept, character ids...]``.

        Returns ``(len(tokens), 3 + max_word_length)`` int32 rows, character
        ids zero-padded. Text repeats its words, so each distinct token is
        looked up once and kept (the table starts over past
        :attr:`TOKEN_CACHE` tokens); a batch is then one gather.
        """
        with _TOKEN_TABLE_LOCK:  # taggers tag batches on several threads
            slots = self.__dict__.get("_slots")
            if slots is None or len(slots) + len(tokens) > max(self.TOKEN_CACHE, len(tokens)):
                slots = self.__dict__["_slots"] = {}
                self.__dict__["_table"] = np.zeros((1024, 3 + self.max_word_length), np.int32)
            get = slots.get
            index = [get(t, -1) for t in tokens]
            if -1 in index:
                table = self.__dict__["_table"]
                cget, maxw = self.char_index.get, self.max_word_length
                for k, tok in enumerate(tokens):
                    if index[k] >= 0:
                        continue
                    slot = slots.get(tok)
                    if slot is None:
                        slot = slots[tok] = len(slots)
                        if slot >= len(table):
                            table = np.concatenate([table, np.zeros_like(table)])
                        chars = [cget(ch, UNK_ID) for ch in tok[:maxw]]
                        table[slot, 0] = self.word_index.get(self.normalize(tok), UNK_ID)
                        table[slot, 1] = casing_class(tok)
                        table[slot, 2] = len(chars)
                        table[slot, 3: 3 + len(chars)] = chars
                    index[k] = slot
                self.__dict__["_table"] = table
            return self.__dict__["_table"][np.asarray(index, np.intp)]

    def token_features(self, token: str) -> tuple[int, int, np.ndarray]:
        """``(word id, casing class, character ids)`` of one token."""
        row = self.token_rows([token])[0]
        return int(row[0]), int(row[1]), row[3: 3 + row[2]].copy()

    def word_ids(self, tokens: Sequence[str]) -> list[int]:
        get = self.word_index.get
        return [get(self.normalize(t), UNK_ID) for t in tokens]

    def to_json(self) -> dict:
        out = {"words": self.words, "chars": self.chars, "tags": self.tags}
        if self.features:  # absent otherwise: bundles without features keep their old vocab.json
            out["features"] = self.features
        return out

    @classmethod
    def from_json(cls, data: dict, config: dict) -> "Vocab":
        return cls(list(data["words"]), list(data["chars"]), list(data["tags"]),
                   bool(config.get("lowercase", True)), bool(config.get("normalize_digits", True)),
                   int(config.get("max_word_length", 30)), [list(v) for v in data.get("features", [])])


def round_up(n: int, multiple: int) -> int:
    """``n`` rounded up to a multiple of ``multiple`` (at least ``multiple``)."""
    return max(multiple, -(-n // multiple) * multiple)


def encode(vocab: Vocab, batch: Sequence[Sequence[str]], length_multiple: int = 1,
           char_width: int | None = None, word_ids: Sequence[Sequence[int]] | None = None,
           features: Sequence[Sequence[Sequence[str]]] | None = None,
           lm_vectors: Sequence[np.ndarray] | None = None) -> dict[str, np.ndarray]:
    """Padded model inputs for a batch of token lists.

    Args:
        vocab: The tagger's vocabulary.
        batch: Sentences as token lists (none empty).
        length_multiple: Pad the time axis to a multiple of this.
        char_width: Fixed character axis (default: the batch's longest word).
        word_ids: Precomputed word ids (training substitutes ``<unk>`` here).
        features: Each sentence's feature columns (``[column][token]``), when
            the vocabulary has feature inventories.
        lm_vectors: Each sentence's language-model vectors ``(tokens, D)``
            (:mod:`lstmtext.ner.lm_features`), for a tagger that reads them.

    Returns:
        ``{"words": (B, T), "casing": (B, T), "chars": (B, T, C)}`` int32
        arrays, ``"feature_ids": (B, T, F)`` with F feature columns and
        ``"lm_vectors": (B, T, D)`` float32 (zeros at padding) with language models.
    """
    longest = max((len(s) for s in batch), default=1)
    T = round_up(longest, length_multiple) if length_multiple > 1 else max(longest, 1)
    B = len(batch)
    lengths = np.fromiter((len(s) for s in batch), np.intp, B)
    rows = vocab.token_rows([tok for tokens in batch for tok in tokens])
    C = char_width or max(int(rows[:, 2].max(initial=0)), 1)
    # Token k of the batch (sentences in order) sits at (b, i): one scatter per array.
    b_of = np.repeat(np.arange(B), lengths)
    i_of = np.arange(len(rows)) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    words = np.zeros((B, T), np.int32)
    casing = np.zeros((B, T), np.int32)
    chars = np.zeros((B, T, C), np.int32)
    words[b_of, i_of] = rows[:, 0] if word_ids is None else np.fromiter(
        (w for ids in word_ids for w in ids), np.int32, len(rows))
    casing[b_of, i_of] = rows[:, 1]
    width = min(C, rows.shape[1] - 3)
    chars[b_of, i_of, :width] = rows[:, 3: 3 + width]
    out = {"words": words, "casing": casing, "chars": chars}
    if vocab.features:
        if features is None:
            raise ValueError("this tagger reads feature columns: encode needs them")
        feats = np.zeros((len(batch), T, len(vocab.features)), np.int32)
        for b, columns in enumerate(features):
            feats[b, : len(batch[b])] = vocab.feature_ids(columns)
        out["feature_ids"] = feats
    if lm_vectors is not None:
        dim = lm_vectors[0].shape[-1] if len(lm_vectors) else 0
        vectors = np.zeros((len(batch), T, dim), np.float32)
        for b, v in enumerate(lm_vectors):
            vectors[b, : len(v)] = v
        out["lm_vectors"] = vectors
    return out


def encode_tags(vocab: Vocab, batch: Sequence[Sequence[str]], T: int) -> np.ndarray:
    """Padded tag ids: ``-1`` at padding, :data:`MASKED` where a tag is ``None`` (an unresolved residue)."""
    out = np.full((len(batch), T), -1, np.int32)
    for b, tags in enumerate(batch):
        out[b, : len(tags)] = [MASKED if t is None else vocab.tag_index[t] for t in tags]
    return out


def load_vocab(bundle) -> Vocab:
    """The bundle's vocabulary (words, characters, tags), validated."""
    data = bundle.json("vocab.json")
    if not isinstance(data, dict) or not all(isinstance(data.get(k), list) for k in ("words", "chars", "tags")):
        raise BundleError(f"{bundle.path}: vocab.json is missing or malformed")
    features = data.get("features", [])
    if not isinstance(features, list) or not all(isinstance(v, list) for v in features):
        raise BundleError(f"{bundle.path}: vocab.json: 'features' must be a list of lists")
    if len(features) != len(parse_columns(bundle.config.get("feature_columns", ""))):
        raise BundleError(f"{bundle.path}: vocab.json has {len(features)} feature inventories, config.json "
                          f"names feature_columns {bundle.config.get('feature_columns', '')!r}")
    vocab = Vocab.from_json(data, bundle.config)
    if labels.kind_of(bundle.config) == labels.SPANS:
        try:
            [schemes.split_tag(t) for t in vocab.tags]
        except ValueError as exc:
            raise BundleError(f"{bundle.path}: vocab.json: {exc}") from None
    return vocab
