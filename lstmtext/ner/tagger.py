"""A trained tagger loaded from a bundle, tagging batches of sentences."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from lstmtext.bundle import Bundle
from lstmtext.errors import BundleError, UsageError
from lstmtext.lite.runtime import LITE_MAX_BATCH
from lstmtext.ner import schemes
from lstmtext.ner.features import Vocab, encode

RUNTIMES = ("auto", "lite", "numpy", "keras")


def load_vocab(bundle: Bundle) -> Vocab:
    """The bundle's vocabulary (words, characters, tags), validated."""
    data = bundle.json("vocab.json")
    if not isinstance(data, dict) or not all(isinstance(data.get(k), list) for k in ("words", "chars", "tags")):
        raise BundleError(f"{bundle.path}: vocab.json is missing or malformed")
    vocab = Vocab.from_json(data, bundle.config)
    try:
        [schemes.split_tag(t) for t in vocab.tags]
    except ValueError as exc:
        raise BundleError(f"{bundle.path}: vocab.json: {exc}") from None
    return vocab


def constraints_for(vocab: Vocab, config: dict) -> tuple | None:
    """CRF constraints of a tagger's internal tag set."""
    if config.get("head", "crf") != "crf":
        return None
    return schemes.allowed(vocab.tags, config.get("tag_scheme", "bioes"))


class Tagger:
    """Tags tokenised sentences with a bundle's model.

    Args:
        bundle: A ``ner`` bundle.
        runtime: ``lite`` (the bundle's LiteRT emissions part), ``numpy``
            (the NumPy runtime over the weights), ``auto`` (the LiteRT part
            for batches of up to :data:`~lstmtext.lite.runtime.LITE_MAX_BATCH`
            sentences when the bundle has one, else NumPy) or ``keras`` (the
            Keras model on the configured backend). None but ``keras`` imports TensorFlow.
        batch_size: Sentences per batch (default: the bundle's ``eval_batch_size``).

    Attributes:
        scheme: The scheme of the training data, used for output by default.
        types: Entity types the model knows.
    """

    def __init__(self, bundle: Bundle, runtime: str = "auto", batch_size: int | None = None):
        if runtime not in RUNTIMES:
            raise UsageError(f"unknown runtime '{runtime}' for a tagger ({', '.join(RUNTIMES)})")
        self.bundle = bundle
        self.config = bundle.config
        self.vocab = load_vocab(bundle)
        self.internal = self.config.get("tag_scheme", "bioes")
        self.scheme = bundle.meta.get("data_scheme", "iob2")
        self.types = sorted({schemes.split_tag(t)[1] for t in self.vocab.tags if t != "O"})
        self.batch_size = int(batch_size or self.config.get("eval_batch_size", 256))
        self.constraints = constraints_for(self.vocab, self.config)
        from lstmtext.lite import ner as lite_ner, runtime as lite

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
        from lstmtext.ner.network import NumpyTagger
        from lstmtext.weights import load_arrays

        if self._weights_runner is None:
            weights = self.bundle.file("weights.h5")
            if not weights.is_file():
                raise BundleError(f"{self.bundle.path}: weights.h5 is missing")
            arrays = load_arrays(weights)
            if self.runtime == "keras":
                self._weights_runner = _KerasRunner(arrays, self.config, self.vocab, self.constraints, str(weights))
            else:
                self._weights_runner = NumpyTagger(arrays, self.config, self.vocab, self.constraints)
        return self._weights_runner

    def tag_ids(self, batch: Sequence[Sequence[str]]) -> list[np.ndarray]:
        """Internal tag ids for one batch of non-empty sentences."""
        inputs = encode(self.vocab, batch)
        net = self._weights_net() if self.runtime == "auto" and len(batch) > LITE_MAX_BATCH else self.net
        return net.tag(inputs)

    def tag(self, sentences: Sequence[Sequence[str]], scheme: str | None = None) -> list[list[str]]:
        """Tags for each sentence, in ``scheme`` (default: the training data's).

        Sentences are sorted by length into batches (less padding) and the
        results returned in input order; empty sentences get no tags.
        """
        target = schemes.normalize_scheme(scheme or self.scheme)
        out: list[list[str]] = [[] for _ in sentences]
        order = sorted((i for i, s in enumerate(sentences) if len(s)), key=lambda i: len(sentences[i]))
        tags = self.vocab.tags
        for k in range(0, len(order), self.batch_size):
            idx = order[k: k + self.batch_size]
            for i, ids in zip(idx, self.tag_ids([sentences[i] for i in idx])):
                seq = [tags[j] for j in ids]
                out[i] = seq if target == self.internal else schemes.convert(seq, target)
        return out


class _KerasRunner:
    """The Keras model as a tagging backend (same interface as ``NumpyTagger``)."""

    def __init__(self, arrays, config: dict, vocab: Vocab, constraints, source: str):
        from lstmtext.ner.config import NERConfig
        from lstmtext.ner.network import NumpyTagger, build_model
        from lstmtext.weights import assign_model_weights

        known = set(NERConfig.__dataclass_fields__)
        cfg = NERConfig(**{k: v for k, v in config.items() if k in known})
        self.model = build_model(cfg, vocab, constraints)
        assign_model_weights(self.model, arrays, source)
        # Viterbi over the emissions runs in NumPy either way: it is cheap and
        # keeps both runtimes' decoding identical.
        self.decoder = NumpyTagger(arrays, config, vocab, constraints)

    def tag(self, inputs: dict) -> list[np.ndarray]:
        emissions = np.asarray(self.model.predict_on_batch(inputs))
        return self.decoder.decode(emissions, (inputs["words"] != 0).sum(axis=1))
