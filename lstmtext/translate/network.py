"""The translation network and its inference parts.

Source embedding -> 1-2 bidirectional LSTM layers (the "memory"); a bridge
maps the encoder's final states to the decoder's initial states; the
:class:`~lstmtext.layers.attention_decoder.AttentionDecoder` runs over the
target embeddings; a dense (or tied embedding) layer gives vocabulary logits.

:func:`build_translator` builds three models that share every layer (and so
every weight): ``model`` for training (teacher forcing), ``encoder`` mapping
source ids to ``(memory, source_mask, *initial_states)``, and ``step`` mapping
``(previous_token, memory, source_mask, *states)`` to ``(log_probs,
*new_states, attention)``. Decoding calls only the last two.

Layer names are fixed, since weights are stored by variable path and must
load into a model built by another process (or another Keras backend).
"""

from __future__ import annotations

from dataclasses import dataclass

import keras
from keras import layers, ops

from lstmtext.config import require_concrete
from lstmtext.layers.attention_decoder import AttentionDecoder
from lstmtext.layers.reversible_embedding import ReversibleEmbedding
from lstmtext.translate.config import TranslateConfig

PAD_ID = 0


@keras.saving.register_keras_serializable(package="lstmtext")
class PaddingMask(layers.Layer):
    """``1.0`` where ``ids`` is not the padding id, else ``0.0`` (float32)."""

    def call(self, ids):
        return ops.cast(ops.not_equal(ids, PAD_ID), "float32")

    def compute_output_shape(self, input_shape):
        return input_shape


@keras.saving.register_keras_serializable(package="lstmtext")
class ZeroState(layers.Layer):
    """A zero ``(B, units)`` tensor with the batch size of ``reference``.

    Args:
        units: Width of the output.
    """

    def __init__(self, units: int, **kwargs):
        super().__init__(**kwargs)
        self.units = units

    def call(self, reference):
        return ops.zeros((ops.shape(reference)[0], self.units), dtype=self.compute_dtype)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.units)

    def get_config(self):
        return {**super().get_config(), "units": self.units}


@keras.saving.register_keras_serializable(package="lstmtext")
class LogSoftmax(layers.Layer):
    """Log-probabilities over the last axis, in float32."""

    def call(self, logits):
        return ops.log_softmax(ops.cast(logits, "float32"), axis=-1)

    def compute_output_shape(self, input_shape):
        return input_shape


@keras.saving.register_keras_serializable(package="lstmtext")
class SmoothedCrossEntropy(keras.losses.Loss):
    """Label-smoothed cross-entropy, averaged over the real (non-padding) target tokens.

    The smoothing mass is spread uniformly over the vocabulary. The loss is the
    mean over the batch's real target tokens (see :func:`lstmtext.training.distribute.mean_over_real`), so
    a batch of short sentences weighs each token as much as one of long
    sentences, and the reduction is ``sum_over_batch_size``, which
    ``tf.distribute`` divides over replicas correctly.

    Args:
        smoothing: Probability mass moved from the reference token.
        name: Loss name.
    """

    def __init__(self, smoothing: float = 0.1, name: str = "smoothed_cross_entropy", **kwargs):
        kwargs.pop("reduction", None)
        super().__init__(name=name, reduction="sum_over_batch_size", **kwargs)
        self.smoothing = smoothing

    def call(self, y_true, y_pred):
        logp = ops.log_softmax(ops.cast(y_pred, "float32"), axis=-1)
        y = ops.cast(y_true, "int32")
        if len(y.shape) == len(logp.shape):
            y = ops.squeeze(y, -1)
        nll = -ops.squeeze(ops.take_along_axis(logp, ops.expand_dims(y, -1), axis=-1), -1)
        loss = (1.0 - self.smoothing) * nll - self.smoothing * ops.mean(logp, axis=-1)
        from lstmtext.training.distribute import mean_over_real

        return mean_over_real(loss, ops.not_equal(y, PAD_ID))

    def get_config(self):
        return {"name": self.name, "smoothing": self.smoothing}


@keras.saving.register_keras_serializable(package="lstmtext")
class TiedTargetEmbedding(ReversibleEmbedding):
    """:class:`ReversibleEmbedding` whose symbolic call also accepts ``reverse``.

    Keras routes symbolic calls through ``compute_output_spec``, which the
    parent (a plain ``Embedding``) defines without the ``reverse`` argument.
    """

    def compute_output_spec(self, inputs, reverse: bool = False):
        if reverse:
            return keras.KerasTensor(tuple(inputs.shape[:-1]) + (self.input_dim,), dtype=self.compute_dtype)
        return super().compute_output_spec(inputs)


@dataclass
class TranslatorParts:
    """The models built by :func:`build_translator` (they share weights).

    Attributes:
        model: ``[source_ids, target_in_ids] -> logits`` for training.
        encoder: ``source_ids -> [memory, source_mask, *initial_states]``.
        step: ``[prev_token, memory, source_mask, *states] -> [log_probs, *new_states, attention]``.
        num_states: Number of recurrent state tensors.
    """

    model: keras.Model
    encoder: keras.Model
    step: keras.Model
    num_states: int


def build_translator(config: TranslateConfig, source_vocab: int, target_vocab: int) -> TranslatorParts:
    """Build the training model and the inference parts.

    Args:
        config: Hyperparameters.
        source_vocab: Source tokenizer vocabulary size.
        target_vocab: Target tokenizer vocabulary size.
    """
    require_concrete(config)
    c = config
    source = keras.Input(shape=(None,), dtype="int32", name="source")
    target_in = keras.Input(shape=(None,), dtype="int32", name="target_in")

    # --- encoder
    source_embedding = layers.Embedding(source_vocab, c.embedding_dim, name="source_embedding")
    source_mask = PaddingMask(name="source_mask")(source)
    x = source_embedding(source)
    if c.dropout:
        x = layers.Dropout(c.dropout, seed=c.seed, name="source_dropout")(x)
    bool_mask = ops.cast(source_mask, "bool")
    final = None
    for i in range(c.encoder_layers):
        lstm = layers.LSTM(c.encoder_units, return_sequences=True, return_state=True, name=f"lstm_{i}")
        bi = layers.Bidirectional(lstm, merge_mode="concat", name=f"encoder_{i}")
        x, fh, fc, bh, bc = bi(x, mask=bool_mask)
        final = (fh, fc, bh, bc)
        if c.dropout:
            x = layers.Dropout(c.dropout, seed=c.seed + 1 + i, name=f"encoder_dropout_{i}")(x)
    memory = x
    fh, fc, bh, bc = final
    h_cat = layers.Concatenate(name="final_h")([fh, bh])
    c_cat = layers.Concatenate(name="final_c")([fc, bc])
    initial = []
    for i in range(c.decoder_layers):
        initial.append(layers.Dense(c.decoder_units, activation="tanh", name=f"bridge_h_{i}")(h_cat))
        initial.append(layers.Dense(c.decoder_units, name=f"bridge_c_{i}")(c_cat))
    initial.append(ZeroState(c.decoder_units, name="initial_feed")(h_cat))
    encoder = keras.Model(source, [memory, source_mask, *initial], name="encoder")

    # --- decoder
    decoder = AttentionDecoder(
        c.decoder_units, c.decoder_layers, input_dim=c.embedding_dim, memory_dim=2 * c.encoder_units,
        attention=c.attention, attention_units=c.attention_units, name="decoder",
    )
    if c.tie_embeddings:
        target_embedding = TiedTargetEmbedding(target_vocab, c.embedding_dim, name="target_embedding")
        projection = (layers.Dense(c.embedding_dim, use_bias=False, name="output_projection")
                      if c.embedding_dim != c.decoder_units else None)

        def output_layer(h):
            return target_embedding(projection(h) if projection is not None else h, reverse=True)
    else:
        target_embedding = layers.Embedding(target_vocab, c.embedding_dim, name="target_embedding")
        output_layer = layers.Dense(target_vocab, name="output")

    y = target_embedding(target_in)
    if c.dropout:
        y = layers.Dropout(c.dropout, seed=c.seed + 10, name="target_dropout")(y)
    h = decoder(y, memory, source_mask, initial)[0]
    if c.dropout:
        h = layers.Dropout(c.dropout, seed=c.seed + 11, name="output_dropout")(h)
    logits = layers.Activation("linear", dtype="float32", name="logits")(output_layer(h))
    model = keras.Model([source, target_in], logits, name="translator")

    # --- single decoder step
    prev = keras.Input(shape=(), dtype="int32", name="prev_token")
    memory_in = keras.Input(shape=(None, 2 * c.encoder_units), name="memory")
    mask_in = keras.Input(shape=(None,), name="source_mask_in")
    state_in = [keras.Input(shape=(c.decoder_units,), name=f"state_{i}") for i in range(decoder.state_size)]
    out, attention, *new_states = decoder(target_embedding(prev), memory_in, mask_in, state_in)
    log_probs = LogSoftmax(dtype="float32", name="log_probs")(output_layer(out))
    step = keras.Model([prev, memory_in, mask_in, *state_in], [log_probs, *new_states, attention],
                       name="decoder_step")
    return TranslatorParts(model=model, encoder=encoder, step=step, num_states=decoder.state_size)


def compile_translator(model: keras.Model, config: TranslateConfig) -> None:
    """Attach the optimizer and the label-smoothed loss."""
    clip = config.clip_norm or None
    if config.optimizer == "sgd":
        optimizer = keras.optimizers.SGD(learning_rate=config.lr, global_clipnorm=clip)
    else:
        optimizer = keras.optimizers.Adam(learning_rate=config.lr, global_clipnorm=clip)
    # TensorFlow cannot XLA-compile gradients through keras.ops.scan (its
    # while loop has no iteration bound), so that backend trains in graph mode.
    jit = config.jit_compile and keras.backend.backend() != "tensorflow"
    model.compile(optimizer=optimizer, loss=SmoothedCrossEntropy(config.label_smoothing), jit_compile=jit)
