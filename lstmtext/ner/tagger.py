"""A trained tagger loaded from a bundle: picks a runtime and tags sentences of any length in batches.

The runtimes (:mod:`lstmtext.ner.runtime_numpy`, :mod:`lstmtext.ner.runtime_lite`,
or the Keras model of :mod:`lstmtext.ner.network`) all take the encoded
arrays of :func:`lstmtext.ner.features.encode` and return tag ids; this
module sorts sentences into batches, cuts long ones into windows and turns
ids back into tags in the requested scheme.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from lstmtext.bundle import Bundle
from lstmtext.decoding import parallel
from lstmtext.errors import BundleError, UsageError
from lstmtext.lite.runtime import LITE_MAX_CELLS
from lstmtext.ner import labels, schemes
from lstmtext.ner.features import Vocab, encode, load_vocab  # noqa: F401 (load_vocab: imported from here too)
from lstmtext.ner.labels import constraints_for

RUNTIMES = ("auto", "lite", "numpy", "keras")
# Padded tokens per tagging batch at most: a batch of long sequences holds fewer of them.
MAX_BATCH_TOKENS = 32_768


def windows(length: int, size: int) -> list[tuple[int, int, int, int]]:
    """Overlapping windows over a sequence of ``length`` tokens, for tagging at most ``size`` at once.

    Returns ``(start, end, keep_start, keep_end)`` per window: the window
    reads ``[start, end)`` and its labels are kept for ``[keep_start,
    keep_end)``. Windows overlap by half their length, so each kept label was
    tagged with at least ``size // 4`` tokens of context on both sides (fewer
    only at the sequence's ends); the kept ranges tile the sequence. A
    sequence of at most ``size`` tokens (or ``size`` 0) is one window.
    """
    if size <= 0 or length <= size:
        return [(0, length, 0, length)]
    context = size // 4
    step = size - 2 * context
    out = []
    start = 0
    while True:
        end = min(start + size, length)
        keep_start = 0 if start == 0 else start + context
        if end == length:
            out.append((start, end, keep_start, length))
            return out
        out.append((start, end, keep_start, end - context))
        start += step


def tag_in_windows(tag_batch, sentences: Sequence[Sequence[str]], features: Sequence | None,
                   batch_size: int, max_length: int, threads: int = 1) -> list[list[int]]:
    """Tag ids of every sentence, tagged by ``tag_batch(batch, features) -> ids`` in length-sorted batches.

    Sentences longer than ``max_length`` are cut into :func:`windows` and
    stitched back; a batch holds at most ``batch_size`` sequences and
    :data:`MAX_BATCH_TOKENS` padded tokens, which bounds memory whatever the
    input. Empty sentences get no ids. With ``threads`` above one, batches
    are tagged that many at a time, longest first, on threads when there
    are enough of them (:func:`lstmtext.decoding.parallel.map_in_threads`):
    ``tag_batch`` must then be safe to call concurrently.
    """
    # Each sentence as one or more windows: (sentence, start, end, keep_start, keep_end).
    pieces = [(i, *w) for i, s in enumerate(sentences) if len(s) for w in windows(len(s), max_length)]
    order = sorted(range(len(pieces)), key=lambda p: pieces[p][2] - pieces[p][1])
    batches: list[list[int]] = []
    k = 0
    while k < len(order):
        # Sorted by length, so the last piece taken is the longest.
        n = 1
        while (n < batch_size and k + n < len(order)
               and (n + 1) * (pieces[order[k + n]][2] - pieces[order[k + n]][1]) <= MAX_BATCH_TOKENS):
            n += 1
        batches.append(order[k: k + n])
        k += n
    batches.reverse()  # longest first: on threads, the shortest batches even out the end

    def run(b: int) -> list:
        idx = batches[b]
        batch = [sentences[pieces[p][0]][pieces[p][1]: pieces[p][2]] for p in idx]
        feats = None if features is None else [
            [column[pieces[p][1]: pieces[p][2]] for column in features[pieces[p][0]]] for p in idx]
        return tag_batch(batch, feats)

    found: dict[int, np.ndarray] = {}
    for idx, ids in zip(batches, parallel.map_in_threads(run, len(batches), threads)):
        found.update(zip(idx, ids))
    ids_of: list[list[int]] = [[] for _ in sentences]
    for p, (i, start, _, keep_start, keep_end) in enumerate(pieces):
        ids_of[i].extend(np.asarray(found[p][keep_start - start: keep_end - start]).tolist())
    return ids_of


class Tagger:
    """Tags tokenised sentences with a bundle's model.

    Args:
        bundle: A ``ner`` bundle.
        runtime: ``lite`` (the bundle's LiteRT emissions part), ``numpy``
            (the NumPy runtime over the weights), ``auto`` (the LiteRT part
            for batches of up to :data:`~lstmtext.lite.runtime.LITE_MAX_CELLS`
            padded tokens when the bundle has one, else NumPy) or ``keras`` (the
            Keras model on the configured backend). None but ``keras`` imports TensorFlow.
        batch_size: Sentences per batch (default: the bundle's ``eval_batch_size``).

    Attributes:
        kind: ``spans`` or ``tokens`` (:mod:`lstmtext.ner.labels`).
        scheme: The scheme of the training data, used for output by default (spans).
        types: Entity types the model knows (spans), or its labels (tokens).
        feature_columns: CoNLL columns the model reads as input features.
        max_length: Tokens tagged at once; longer sequences go in windows (:func:`windows`).
    """

    def __init__(self, bundle: Bundle, runtime: str = "auto", batch_size: int | None = None):
        if runtime not in RUNTIMES:
            raise UsageError(f"unknown runtime '{runtime}' for a tagger ({', '.join(RUNTIMES)})")
        self.bundle = bundle
        self.config = bundle.config
        self.vocab = load_vocab(bundle)
        self.kind = labels.kind_of(self.config)
        self.internal = self.config.get("tag_scheme", "bioes")
        self.scheme = bundle.meta.get("data_scheme", "iob2")
        from lstmtext.ner.config import parse_columns

        self.feature_columns = parse_columns(self.config.get("feature_columns", ""))
        self.max_length = int(self.config.get("max_length", 0))  # bundles from before windows: none
        self.input = self.config.get("input", "words")
        self.types = (list(self.vocab.tags) if self.kind == labels.TOKENS else
                      sorted({schemes.split_tag(t)[1] for t in self.vocab.tags if t != "O"}))
        self.batch_size = int(batch_size or self.config.get("eval_batch_size", 256))
        self.constraints = constraints_for(self.vocab, self.config)
        from lstmtext.ner.lm_features import LMFeatures

        self.lm = LMFeatures.from_bundle(bundle)
        if bool(self.config.get("lm")) != (self.lm is not None):
            raise BundleError(f"{bundle.path}: config.json names language models (lm) but lists none stored "
                              "(lm_features), or the reverse")
        from lstmtext.lite import runtime as lite
        from lstmtext.ner import runtime_lite as lite_ner

        self._weights_runner = None
        loaded = lite.choose(bundle, runtime, {"emissions": lite_ner.signature(self.config)}, lite.note)
        if loaded is not None:
            self.runtime = runtime  # "lite", or "auto": LiteRT for small batches
            self.net = lite_ner.LiteTaggerNet(bundle, self.config, loaded[0])
            return
        self.runtime = "keras" if runtime == "keras" else "numpy"
        self.net = self._weights_net()

    def _weights_net(self):
        """The NumPy (or Keras) runtime over ``weights.h5``, loaded once."""
        from lstmtext.ner.runtime_numpy import NumpyTagger
        from lstmtext.weights import load_arrays

        if self._weights_runner is None:
            weights = self.bundle.file("weights.h5")
            if not weights.is_file():
                raise BundleError(f"{self.bundle.path}: weights.h5 is missing")
            arrays = load_arrays(weights)
            if self.runtime == "keras":
                self._weights_runner = _KerasRunner(arrays, self.config, self.vocab, self.constraints, str(weights),
                                                    self.lm.dim if self.lm else 0)
            else:
                self._weights_runner = NumpyTagger(arrays, self.config, self.vocab, self.constraints)
        return self._weights_runner

    def tag_ids(self, batch: Sequence[Sequence[str]], features: Sequence | None = None) -> list[np.ndarray]:
        """Internal tag ids for one batch of non-empty sentences (``features[b][column][token]``)."""
        inputs = encode(self.vocab, batch, features=features, lm_vectors=self.lm(batch) if self.lm else None)
        cells = len(batch) * max(map(len, batch), default=0)
        net = self._weights_net() if self.runtime == "auto" and cells > LITE_MAX_CELLS else self.net
        return net.tag(inputs)

    def tag(self, sentences: Sequence[Sequence[str]], scheme: str | None = None,
            features: Sequence | None = None) -> list[list[str]]:
        """Tags for each sentence: span tags in ``scheme`` (default: the training data's), or labels.

        Sentences are sorted by length into batches (less padding) and the
        results returned in input order; empty sentences get no tags.
        Sequences longer than ``max_length`` are tagged in overlapping
        windows (:func:`windows`), so memory stays bounded by the batch size
        times ``max_length``.

        Args:
            sentences: Token lists (a string works as a sequence of characters).
            scheme: Output scheme for span labels.
            features: Each sentence's feature columns, ``[column][token]``,
                when the model reads feature columns.
        """
        target = schemes.normalize_scheme(scheme or self.scheme) if self.kind == labels.SPANS else None
        if self.feature_columns and features is None:
            raise UsageError(f"this tagger reads CoNLL column(s) {', '.join(map(str, self.feature_columns))} "
                             "as input features: give CoNLL input that has them")
        # Batches on a thread each (the Keras runtime keeps its own threads).
        threads = 1 if self.runtime == "keras" else parallel.workers(len(sentences), 1)
        ids_of = tag_in_windows(self.tag_ids, sentences, features, self.batch_size, self.max_length, threads)
        tags = self.vocab.tags
        out: list[list[str]] = []
        for ids in ids_of:
            seq = [tags[j] for j in ids]
            out.append(seq if target is None or target == self.internal or not seq
                       else schemes.convert(seq, target))
        return out


class _KerasRunner:
    """The Keras model as a tagging backend (same interface as ``NumpyTagger``)."""

    def __init__(self, arrays, config: dict, vocab: Vocab, constraints, source: str, lm_dim: int = 0):
        from lstmtext.ner.config import NERConfig
        from lstmtext.ner.network import build_model
        from lstmtext.ner.runtime_numpy import NumpyTagger
        from lstmtext.weights import assign_model_weights

        known = set(NERConfig.__dataclass_fields__)
        cfg = NERConfig(**{k: v for k, v in config.items() if k in known})
        self.model = build_model(cfg, vocab, constraints, lm_dim=lm_dim)
        assign_model_weights(self.model, arrays, source)
        # Viterbi over the emissions runs in NumPy either way: it is cheap and
        # keeps both runtimes' decoding identical.
        self.decoder = NumpyTagger(arrays, config, vocab, constraints)

    def tag(self, inputs: dict) -> list[np.ndarray]:
        emissions = np.asarray(self.model.predict_on_batch(inputs))
        return self.decoder.decode(emissions, (inputs["words"] != 0).sum(axis=1))
