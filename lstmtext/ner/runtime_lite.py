"""The tagger's LiteRT runtime: the emissions part it exports, and tagging with it.

Built by ``lstmtext export`` and at the end of training (the part registry,
:mod:`lstmtext.lite.convert`, finds it as ``lstmtext.lite.ner``, which
re-exports this module); TensorFlow is needed to build it, never to run it.

Signature ``emissions``: ``words`` (B, T), ``casing`` (B, T) when the model
has a casing feature, ``chars`` (B, T, C) when it has character features,
``feature_ids`` (B, T, F) when it reads F feature columns, all int32,
right-padded with 0, and ``lm_vectors`` (B, T, D) float32 when it reads
language models (computed in NumPy, :mod:`lstmtext.ner.lm_features`); out ``emissions`` (B, T, tags). The CRF's
transitions (constraints of the tag scheme included) are stored as plain
arrays in ``lite/crf.npz``; decoding (Viterbi, or marginals for per-token labels) runs in NumPy
(:func:`lstmtext.layers.viterbi.decode_tags`), as for the other runtimes.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from lstmtext.errors import BundleError
from lstmtext.layers.viterbi import decode_tags
from lstmtext.lite.runtime import load_arrays
from lstmtext.ner import labels
from lstmtext.ner.features import load_vocab
from lstmtext.ner.labels import constraints_for
from lstmtext.ner.runtime_numpy import NumpyTagger


def signature(config: dict) -> tuple[list[str], list[str]]:
    inputs = ["words"]
    if int(config.get("casing_dim", 0)):
        inputs.append("casing")
    if config.get("char_encoder", "cnn") != "none":
        inputs.append("chars")
    if config.get("feature_columns"):
        inputs.append("feature_ids")
    if config.get("lm"):
        inputs.append("lm_vectors")
    return inputs, ["emissions"]


def build(arrays: dict[str, np.ndarray], config: dict, bundle=None, vocab=None):
    """``({"emissions": tf.function}, {"crf": arrays})`` for a tagger's weights.

    The vocabulary (for the tag scheme's CRF constraints) comes from
    ``bundle`` unless given.
    """
    from lstmtext.lite.convert import constants, lstm_sequence, tf

    t = tf()
    vocab = vocab if vocab is not None else load_vocab(bundle)
    numpy_tagger = NumpyTagger(arrays, config, vocab, constraints_for(vocab, config))
    a = constants(numpy_tagger.a)  # variable paths without the model's name
    char_encoder = config.get("char_encoder", "cnn")
    layers = int(config.get("num_layers", 1))
    names, _ = signature(config)
    lm_dim = numpy_tagger.lm_dim()
    lm_layer = int(config.get("lm_layer", 0))
    specs = {"words": t.TensorSpec([None, None], t.int32, name="words"),
             "casing": t.TensorSpec([None, None], t.int32, name="casing"),
             "chars": t.TensorSpec([None, None, None], t.int32, name="chars"),
             "feature_ids": t.TensorSpec([None, None, len(vocab.features)], t.int32, name="feature_ids"),
             "lm_vectors": t.TensorSpec([None, None, lm_dim], t.float32, name="lm_vectors")}

    def char_features(chars):
        batch, steps, width = t.shape(chars)[0], t.shape(chars)[1], t.shape(chars)[2]
        flat = t.reshape(chars, [-1, width])
        mask = flat != 0
        x = t.gather(a["char_encoder/char_embedding/embeddings"], flat)
        if char_encoder == "cnn":
            h = t.tanh(t.nn.conv1d(x, a["char_encoder/char_conv/kernel"], 1, "SAME")
                       + a["char_encoder/char_conv/bias"])
            h = t.reduce_max(t.where(t.expand_dims(mask, -1), h, -1e4 * t.ones_like(h)), axis=1)
        else:
            finals = []
            for direction, reverse in (("forward", False), ("backward", True)):
                p = f"char_encoder/char_bilstm/{direction}_char_lstm/lstm_cell/"
                _, (h, _) = lstm_sequence(x, mask, a[p + "kernel"], a[p + "recurrent_kernel"], a[p + "bias"],
                                          reverse)
                finals.append(h)
            h = t.concat(finals, axis=-1)
        h = t.where(t.expand_dims(flat[:, 0] != 0, -1), h, t.zeros_like(h))  # padding words: zeros
        return t.reshape(h, [batch, steps, -1])

    @t.function(input_signature=[specs[n] for n in names])
    def emissions(*inputs):
        given = dict(zip(names, inputs))
        words = given["words"]
        mask = words != 0
        feats = [t.gather(a["word_embedding/embeddings"], words)]
        if "casing" in given:
            feats.append(t.gather(a["casing_embedding/embeddings"], given["casing"]))
        if "chars" in given:
            feats.append(char_features(given["chars"]))
        for f in range(len(vocab.features)):
            feats.append(t.gather(a[f"feature_embedding_{f}/embeddings"], given["feature_ids"][:, :, f]))
        if "lm_vectors" in given and lm_layer == 0:
            feats.append(given["lm_vectors"])
        x = t.concat(feats, axis=-1)
        for i in range(layers + 1):
            if "lm_vectors" in given and lm_layer and i == lm_layer:
                x = t.concat([x, given["lm_vectors"]], axis=-1)
            if i == layers:
                break
            outs = []
            for direction, reverse in (("forward", False), ("backward", True)):
                p = f"bilstm_{i}/{direction}_lstm_{i}/lstm_cell/"
                if p + "kernel" not in a:
                    raise BundleError(f"weights lack variable '{p}kernel'")
                y, _ = lstm_sequence(x, mask, a[p + "kernel"], a[p + "recurrent_kernel"], a[p + "bias"], reverse)
                outs.append(y)
            x = t.concat(outs, axis=-1)
        return {"emissions": t.einsum("bth,hk->btk", x, a["emissions/kernel"]) + a["emissions/bias"]}

    extra = {}
    if numpy_tagger.head == "crf":
        extra["crf"] = {"transitions": numpy_tagger.trans, "start": numpy_tagger.start, "end": numpy_tagger.end}
    return {"emissions": emissions}, extra


class LiteTaggerNet:
    """Tags encoded batches with the LiteRT emissions part and NumPy Viterbi.

    Same interface as :class:`lstmtext.ner.runtime_numpy.NumpyTagger` (``tag``).
    """

    def __init__(self, bundle, config: dict, parts: dict):
        self.fn = parts["emissions"]
        self.names = signature(config)[0]
        self.crf = None
        if config.get("head", "crf") == "crf":
            crf = load_arrays(bundle, "crf")
            if set(crf) != {"transitions", "start", "end"}:
                raise BundleError(f"{bundle.path}/lite/crf.npz: expected transitions, start and end")
            self.crf = crf
        self.decoding = labels.decoding_of(config)

    def emissions(self, inputs: dict[str, np.ndarray]) -> np.ndarray:
        return self.fn(**{n: np.asarray(inputs[n], np.float32 if n == "lm_vectors" else np.int32)
                          for n in self.names})["emissions"]

    def decode(self, emissions: np.ndarray, lengths: Sequence[int]) -> list[np.ndarray]:
        crf = (self.crf["transitions"], self.crf["start"], self.crf["end"]) if self.crf is not None else None
        return decode_tags(emissions, lengths, crf, self.decoding)

    def tag(self, inputs: dict[str, np.ndarray]) -> list[np.ndarray]:
        return self.decode(self.emissions(inputs), (inputs["words"] != 0).sum(axis=1))
