"""The BiLSTM-CRF network: a Keras model for training and a NumPy twin for tagging.

Architecture (Lample et al. 2016; Ma & Hovy 2016)::

    words    -> word embedding     --+
    casing   -> casing embedding    -+
    chars    -> char CNN/BiLSTM     -+-> dropout -> BiLSTM (x1-2, dropout) -> dense -> CRF
    features -> one embedding each --+   (extra CoNLL columns, e.g. POS for chunking)

With character input (``input = "chars"``) the "words" are single
characters and the casing and character features are off.

:func:`build_model` builds the Keras model (all layers named, so weights are
saved and loaded by variable path with either backend).
:class:`NumpyTagger` runs the same computation from the saved arrays with
NumPy alone: tagging a file needs neither TensorFlow nor JAX, which makes
process start cheap and keeps inference deterministic.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from lstmtext.errors import BundleError, DataError
from lstmtext.ner.features import NUM_CASING, Vocab

# ---------------------------------------------------------------------------
# Keras model
# ---------------------------------------------------------------------------


def build_model(config, vocab: Vocab, constraints: tuple | None, embeddings: np.ndarray | None = None,
                masked: bool = False):
    """Build and compile the tagger.

    Args:
        config: A :class:`~lstmtext.ner.config.NERConfig` (or an object with
            the same attributes).
        vocab: Word, character and tag inventories.
        constraints: ``(pairs, starts, ends)`` allowed by the tag scheme, for
            the CRF; ``None`` allows everything.
        embeddings: Initial word vectors ``(len(vocab.words), word_dim)``.
        masked: The targets hold :data:`~lstmtext.ner.features.MASKED`
            positions (real tokens without a label): the CRF loss then sums
            over every label at those positions
            (:func:`~lstmtext.ner.heads.partial_crf_loss`).

    Returns:
        A compiled ``keras.Model`` mapping ``{"words", "casing", "chars"}``
        (and ``"feature_ids"`` with feature columns) to emission scores
        ``(batch, time, num_tags)``.
    """
    import keras

    from lstmtext.config import require_concrete

    require_concrete(config)

    from lstmtext.layers.char_encoder import CharEncoder
    from lstmtext.layers.crf import CRF

    words = keras.Input((None,), dtype="int32", name="words")
    casing = keras.Input((None,), dtype="int32", name="casing")
    chars = keras.Input((None, None), dtype="int32", name="chars")
    inputs = {"words": words, "casing": casing, "chars": chars}
    init = "uniform" if embeddings is None else keras.initializers.Constant(embeddings)
    feats = [keras.layers.Embedding(len(vocab.words), config.word_dim, mask_zero=True,
                                    embeddings_initializer=init, name="word_embedding")(words)]
    if config.casing_dim:
        feats.append(keras.layers.Embedding(NUM_CASING, config.casing_dim, name="casing_embedding")(casing))
    if config.char_encoder != "none":
        feats.append(CharEncoder(len(vocab.chars), config.char_dim, config.char_encoder,
                                 filters=config.char_filters, kernel_size=config.char_kernel,
                                 hidden_size=config.char_hidden, name="char_encoder")(chars))
    if vocab.features:
        inputs["feature_ids"] = keras.Input((None, len(vocab.features)), dtype="int32", name="feature_ids")
        for f, values in enumerate(vocab.features):
            feats.append(keras.layers.Embedding(len(values), config.feature_dim, name=f"feature_embedding_{f}")(
                inputs["feature_ids"][:, :, f]))
    x = feats[0] if len(feats) == 1 else keras.layers.Concatenate(name="features")(feats)
    x = keras.layers.Dropout(config.dropout, name="dropout_features")(x)
    # The mask is passed explicitly: Concatenate drops it at run time when only
    # some of its inputs carry one, and the backward LSTM must skip padding
    # for a sentence to be tagged the same alone and in any batch.
    mask = keras.ops.not_equal(words, 0)
    for i in range(config.num_layers):
        x = keras.layers.Bidirectional(
            keras.layers.LSTM(config.hidden_size, return_sequences=True, name=f"lstm_{i}"),
            name=f"bilstm_{i}")(x, mask=mask)
        x = keras.layers.Dropout(config.dropout, name=f"dropout_{i}")(x)
    num_tags = len(vocab.tags)
    emissions = keras.layers.Dense(num_tags, name="emissions")(x)
    # The scores and the loss stay float32 under a mixed-precision policy.
    if config.head == "crf":
        pairs, starts, ends = constraints if constraints is not None else (None, None, None)
        crf = CRF(num_tags, pairs, starts, ends, dtype="float32", name="crf")
        out = crf(emissions)
        per_sentence = crf.loss
        if masked:
            from lstmtext.ner.heads import partial_crf_loss

            per_sentence = partial_crf_loss(crf)
    else:
        from lstmtext.ner.heads import TokenScores, softmax_loss

        out = TokenScores(dtype="float32", name="token_scores")(emissions)
        per_sentence = softmax_loss
    model = keras.Model(inputs, out, name="tagger")
    if config.optimizer == "sgd":
        opt = keras.optimizers.SGD(config.lr, momentum=0.9, global_clipnorm=config.clip_norm or None)
    elif config.optimizer == "nadam":
        opt = keras.optimizers.Nadam(config.lr, global_clipnorm=config.clip_norm or None)
    else:
        opt = keras.optimizers.Adam(config.lr, global_clipnorm=config.clip_norm or None)
    # Without jit, JAX runs every op eagerly (about 100 times slower).
    jit = bool(config.jit_compile) or keras.backend.backend() == "jax"
    model.compile(optimizer=opt, loss=_mean_over_sentences(per_sentence), jit_compile=jit)
    return model


def _mean_over_sentences(per_sentence):
    """A Keras loss: the mean of ``per_sentence`` over the batch's real sentences.

    All-padding rows (tags all ``-1``; they complete a short last batch to
    the global batch size) change neither the loss nor the gradient, and N
    replicas train like one device with the global batch.
    """
    from keras import ops

    from lstmtext.training.distribute import mean_over_real

    def loss(y_true, y_pred):
        real = ops.any(ops.greater_equal(y_true, 0), axis=-1)
        return mean_over_real(per_sentence(y_true, y_pred), real)

    loss.__name__ = getattr(per_sentence, "__name__", "loss")
    return loss


def model_arrays(model) -> dict[str, np.ndarray]:
    """A model's variables as NumPy arrays keyed by variable path (as in ``weights.h5``)."""
    return {v.path: np.asarray(v.numpy()) for v in model.weights}


# ---------------------------------------------------------------------------
# Pretrained embeddings
# ---------------------------------------------------------------------------


def read_embeddings(path: str | Path, vocab: Vocab, dim: int, encoding: str = "utf-8",
                    seed: int = 0) -> tuple[np.ndarray, dict, set[int]]:
    """Initial word vectors from a GloVe or word2vec text file.

    A vocabulary word takes the vector of the file's word with the same
    normalised form, preferring an exact match (so ``Paris`` in a cased file
    fills ``paris`` only if the file lacks ``paris``). Words without a vector
    keep a small random one.

    Returns:
        ``(matrix, report, found)``: ``report`` has ``found``, ``vocab`` and
        ``coverage`` (fraction of vocabulary words found); ``found`` holds the
        ids of the words that got a vector.
    """
    from lstmtext.io import iter_lines

    rng = np.random.default_rng(seed)
    scale = np.sqrt(3.0 / dim)
    matrix = rng.uniform(-scale, scale, (len(vocab.words), dim)).astype(np.float32)
    matrix[0] = 0.0
    exact: set[int] = set()
    found: set[int] = set()
    for number, line in iter_lines(path, encoding):
        parts = line.rstrip().split(" ")
        if number == 1 and len(parts) == 2 and all(p.isdigit() for p in parts):
            continue  # word2vec header: "count dim"
        if len(parts) < 2:
            continue
        if len(parts) - 1 != dim:
            raise DataError(f"vector has {len(parts) - 1} dimensions, word_dim is {dim} "
                            f"(use --set word_dim={len(parts) - 1})", path, number)
        word = parts[0]
        key = vocab.normalize(word)
        idx = vocab.word_index.get(key)
        if idx is None or idx == 0 or idx in exact:
            continue
        try:
            vec = np.asarray(parts[1:], np.float32)
        except ValueError:
            raise DataError("vector holds a value that is not a number", path, number) from None
        matrix[idx] = vec
        found.add(idx)
        if word == key:
            exact.add(idx)
    total = len(vocab.words) - 2
    n = len(found - {0, 1})
    return matrix, {"found": n, "vocab": total, "coverage": n / max(total, 1)}, found


# ---------------------------------------------------------------------------
# NumPy inference
# ---------------------------------------------------------------------------


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (np.tanh(0.5 * x) + 1.0)  # stable for large |x|


def lstm_numpy(x: np.ndarray, lengths: np.ndarray, kernel: np.ndarray, recurrent: np.ndarray,
               bias: np.ndarray, reverse: bool = False, return_sequences: bool = True) -> np.ndarray:
    """A Keras LSTM (gates i, f, c, o; sigmoid and tanh) over right-padded sequences.

    Padded steps leave the state unchanged, as Keras' masking does; the
    reverse direction therefore starts at each sentence's own last token.
    """
    B, T, _ = x.shape
    H = recurrent.shape[0]
    proj = (x.reshape(B * T, -1) @ kernel + bias).reshape(B, T, 4 * H)
    h = np.zeros((B, H), np.float32)
    c = np.zeros((B, H), np.float32)
    out = np.zeros((B, T, H), np.float32) if return_sequences else None
    steps = range(T - 1, -1, -1) if reverse else range(T)
    for t in steps:
        live = (t < lengths)[:, None]
        z = proj[:, t] + h @ recurrent
        i = _sigmoid(z[:, :H])
        f = _sigmoid(z[:, H: 2 * H])
        g = np.tanh(z[:, 2 * H: 3 * H])
        o = _sigmoid(z[:, 3 * H:])
        c_new = f * c + i * g
        h_new = o * np.tanh(c_new)
        c = np.where(live, c_new, c)
        h = np.where(live, h_new, h)
        if out is not None:
            out[:, t] = h
    return out if return_sequences else h


def one_blas_thread(active: bool = True):
    """Limit NumPy's BLAS to one thread while tagging, when threadpoolctl is installed.

    The LSTM's per-step products are small; on a busy machine a second BLAS
    thread that waits for a core made them ten times slower in our
    measurements, and one thread lost little on an idle machine.
    """
    import contextlib

    if not active:
        return contextlib.nullcontext()
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api="blas")


class NumpyTagger:
    """The tagger's forward pass and Viterbi decoding over saved arrays.

    Args:
        arrays: Variables by path, as read from ``weights.h5``.
        config: The bundle's configuration dict.
        vocab: The bundle's vocabulary.
        constraints: ``(pairs, starts, ends)`` for the CRF penalties.
    """

    def __init__(self, arrays: dict[str, np.ndarray], config: dict, vocab: Vocab,
                 constraints: tuple | None = None):
        self.config = config
        self.vocab = vocab
        self.a = {self._short(k): v for k, v in arrays.items()}
        self.head = config.get("head", "crf")
        self.num_layers = int(config.get("num_layers", 1))
        self.char_encoder = config.get("char_encoder", "cnn")
        need = ["word_embedding/embeddings", "emissions/kernel", "emissions/bias"]
        if self.head == "crf":
            need += ["crf/transitions", "crf/start_transitions", "crf/end_transitions"]
        for key in need:
            if key not in self.a:
                raise BundleError(f"weights lack variable '{key}'")
        if self.head == "crf":
            from lstmtext.layers.viterbi import constraint_matrices

            pairs, starts, ends = constraints if constraints is not None else (None, None, None)
            pt, ps, pe = constraint_matrices(len(vocab.tags), pairs, starts, ends)
            self.trans = self.a["crf/transitions"] + pt
            self.start = self.a["crf/start_transitions"] + ps
            self.end = self.a["crf/end_transitions"] + pe

    @staticmethod
    def _short(path: str) -> str:
        # Variable paths start with the model's name ("tagger/..."); sub-layer
        # names below it are fixed by build_model.
        parts = path.split("/")
        return "/".join(parts[1:]) if parts[0] == "tagger" else path

    def _chars(self, chars: np.ndarray) -> np.ndarray:
        B, T, C = chars.shape
        flat = chars.reshape(B * T, C)
        real = flat[:, 0] != 0
        # Each distinct spelling once: text repeats its words, and padding
        # words need no features (they are zeros, as in the Keras layer).
        uniq, inverse = np.unique(flat[real], axis=0, return_inverse=True)
        out = np.zeros((B * T, self._char_dim()), np.float32)
        if len(uniq):
            out[real] = self._char_features(uniq)[inverse.reshape(-1)]
        return out.reshape(B, T, -1)

    def _char_dim(self) -> int:
        if self.char_encoder == "cnn":
            return self.a["char_encoder/char_conv/bias"].shape[0]
        return 2 * self.a["char_encoder/char_bilstm/forward_char_lstm/lstm_cell/recurrent_kernel"].shape[0]

    def _char_features(self, flat: np.ndarray) -> np.ndarray:
        C = flat.shape[1]
        mask = flat != 0
        table = self.a["char_encoder/char_embedding/embeddings"]
        if self.char_encoder == "cnn":
            kernel = self.a["char_encoder/char_conv/kernel"]  # (k, E, F)
            bias = self.a["char_encoder/char_conv/bias"]
            k = kernel.shape[0]
            left = (k - 1) // 2
            # Convolution as table look-ups: embedding @ kernel[j] for every
            # character, then shifted sums ("same" padding reads zeros).
            proj = np.einsum("ve,kef->kvf", table, kernel)  # (k, V, F)
            padded = np.pad(flat, ((0, 0), (left, k - 1 - left)), constant_values=-1)
            h = np.zeros((flat.shape[0], C, kernel.shape[2]), np.float32) + bias
            for j in range(k):
                ids = padded[:, j: j + C]
                h += np.where((ids >= 0)[:, :, None], proj[j][np.maximum(ids, 0)], 0.0)
            h = np.tanh(h)
            h = np.where(mask[:, :, None], h, -1e4).max(axis=1)
        else:
            emb = table[flat]
            lengths = mask.sum(axis=1)
            parts = []
            for direction, rev in (("forward", False), ("backward", True)):
                p = f"char_encoder/char_bilstm/{direction}_char_lstm/lstm_cell/"
                parts.append(lstm_numpy(emb, lengths, self.a[p + "kernel"], self.a[p + "recurrent_kernel"],
                                        self.a[p + "bias"], reverse=rev, return_sequences=False))
            h = np.concatenate(parts, axis=-1)
        return h.astype(np.float32)

    def emissions(self, inputs: dict[str, np.ndarray]) -> np.ndarray:
        """Emission scores ``(B, T, num_tags)`` for encoded inputs."""
        words = inputs["words"]
        lengths = (words != 0).sum(axis=1)
        feats = [self.a["word_embedding/embeddings"][words]]
        if int(self.config.get("casing_dim", 0)):
            feats.append(self.a["casing_embedding/embeddings"][inputs["casing"]])
        if self.char_encoder != "none":
            feats.append(self._chars(inputs["chars"]))
        for f in range(len(self.vocab.features)):
            feats.append(self.a[f"feature_embedding_{f}/embeddings"][inputs["feature_ids"][:, :, f]])
        x = np.concatenate(feats, axis=-1).astype(np.float32)
        for i in range(self.num_layers):
            outs = []
            for direction, rev in (("forward", False), ("backward", True)):
                p = f"bilstm_{i}/{direction}_lstm_{i}/lstm_cell/"
                outs.append(lstm_numpy(x, lengths, self.a[p + "kernel"], self.a[p + "recurrent_kernel"],
                                       self.a[p + "bias"], reverse=rev))
            x = np.concatenate(outs, axis=-1)
        return x @ self.a["emissions/kernel"] + self.a["emissions/bias"]

    def decode(self, emissions: np.ndarray, lengths: Sequence[int]) -> list[np.ndarray]:
        """Best tag ids per sentence."""
        lengths = np.asarray(lengths)
        if self.head == "crf":
            from lstmtext.layers.viterbi import viterbi_numpy

            return viterbi_numpy(emissions, lengths, self.trans, self.start, self.end)
        best = emissions.argmax(axis=-1)
        return [best[b, : lengths[b]] for b in range(len(lengths))]

    def tag(self, inputs: dict[str, np.ndarray]) -> list[np.ndarray]:
        """Tag ids for each sentence of an encoded batch."""
        lengths = (inputs["words"] != 0).sum(axis=1)
        with one_blas_thread():
            return self.decode(self.emissions(inputs), lengths)
