"""The BiLSTM-CRF network: a Keras model for training and a NumPy twin for tagging.

Architecture (Lample et al. 2016; Ma & Hovy 2016)::

    words    -> word embedding     --+
    casing   -> casing embedding    -+
    chars    -> char CNN/BiLSTM     -+-> dropout -> BiLSTM (x1-2, dropout) -> dense -> CRF
    features -> one embedding each --+   (extra CoNLL columns, e.g. POS for chunking)
    lm       -> LM states per word --+   (frozen language models, TagLM; lstmtext.ner.lm_features)

The language-model vectors join beside the word features (``lm_layer`` 0) or
after BiLSTM layer ``lm_layer`` (TagLM's choice: after the first of two).

With character input (``input = "chars"``) the "words" are single
characters and the casing and character features are off.

:func:`build_model` builds the Keras model (all layers named, so weights are
saved and loaded by variable path with either backend).
:class:`~lstmtext.ner.runtime_numpy.NumpyTagger` runs the same computation
from the saved arrays with NumPy alone, and
:mod:`lstmtext.ner.runtime_lite` exports it as a LiteRT part.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from lstmtext.errors import DataError
from lstmtext.ner.features import NUM_CASING, Vocab
# The network's NumPy twin lives in its own module; the name is kept here for older imports.
from lstmtext.ner.runtime_numpy import NumpyTagger  # noqa: F401

# ---------------------------------------------------------------------------
# Keras model
# ---------------------------------------------------------------------------


def build_model(config, vocab: Vocab, constraints: tuple | None, embeddings: np.ndarray | None = None,
                masked: bool = False, lm_dim: int = 0):
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
        lm_dim: Size of the language-model vectors of each word
            (:mod:`lstmtext.ner.lm_features`), an input ``"lm_vectors"``;
            0 without them.

    Returns:
        A compiled ``keras.Model`` mapping ``{"words", "casing", "chars"}``
        (``"feature_ids"`` with feature columns, ``"lm_vectors"`` with language
        models) to emission scores
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
    lm_layer = getattr(config, "lm_layer", 0)
    if lm_dim:
        inputs["lm_vectors"] = keras.Input((None, lm_dim), dtype="float32", name="lm_vectors")
        if lm_layer == 0:
            feats.append(inputs["lm_vectors"])
    x = feats[0] if len(feats) == 1 else keras.layers.Concatenate(name="features")(feats)
    x = keras.layers.Dropout(config.dropout, name="dropout_features")(x)
    # The mask is passed explicitly: Concatenate drops it at run time when only
    # some of its inputs carry one, and the backward LSTM must skip padding
    # for a sentence to be tagged the same alone and in any batch.
    mask = keras.ops.not_equal(words, 0)
    for i in range(config.num_layers + 1):
        if lm_dim and lm_layer and i == lm_layer:
            # Joined later (TagLM): the vectors get the same dropout as the word features.
            lm = keras.layers.Dropout(config.dropout, name="dropout_lm")(inputs["lm_vectors"])
            x = keras.layers.Concatenate(name="lm_join")([x, lm])
        if i == config.num_layers:
            break
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
