"""The LSTM language model network.

Embedding -> N stacked LSTMs -> softmax over the vocabulary, with optional
weight tying and dropout that uses one mask for all time steps of a sequence
(variational dropout, Gal & Ghahramani 2016) on embeddings, between layers and
on the output. Training runs stateful LSTMs over a contiguous token stream
(truncated BPTT with the state carried across batches, Zaremba et al. 2014).

AWD-LSTM's regularisers (Merity et al. 2017) are options of the config, all
off by default: embedding dropout (``dropout_words``), DropConnect on the
recurrent weights (``weight_drop``), AR/TAR penalties (``ar_alpha``,
``tar_beta``) and averaged SGD (``nonmono``, :mod:`lstmtext.lm.asgd`). They
act only while training and add no weights, so a model trained with them
saves the same variables as one trained without, and the inference runtimes
read it unchanged.

Layer names are fixed: weights are stored by variable path, and the numpy
step runtime (lstmtext.decoding.lstm_numpy) reads the same names.
"""

from __future__ import annotations

import keras
from keras import layers, ops

from lstmtext.config import require_concrete
from lstmtext.layers.activation_regularization import ActivationRegularization
from lstmtext.layers.embedding_dropout import EmbeddingDropout
from lstmtext.layers.reversible_embedding import ReversibleEmbedding
from lstmtext.layers.weight_drop_lstm import WeightDropLSTM
from lstmtext.lm.config import LMConfig


@keras.saving.register_keras_serializable(package="lstmtext")
class TokenNLL(layers.Layer):
    """Negative log-likelihood of each target id under ``logits``.

    Call arguments:
        inputs: ``(logits, targets)`` with shapes ``(B, T, V)`` and ``(B, T)``.

    Returns:
        ``(B, T)`` float32 negative log-probabilities.
    """

    def call(self, inputs):
        logits, targets = inputs
        logits = ops.cast(logits, "float32")
        picked = ops.take_along_axis(logits, ops.expand_dims(ops.cast(targets, "int32"), -1), axis=-1)
        return ops.logsumexp(logits, axis=-1) - ops.squeeze(picked, -1)


@keras.saving.register_keras_serializable(package="lstmtext")
class StreamLSTM(layers.LSTM):
    """A ``keras.layers.LSTM`` whose carried state (``stateful=True``) is local to each replica.

    Under ``tf.distribute`` every replica trains on its own rows of the token
    stream, so each must carry its own ``(h, c)``. Keras creates the state
    variables like weights (mirrored, written in sync); here they are
    sync-on-read variables instead, the kind ``tf.distribute`` keeps one
    independent copy of per replica (as for metrics). Without a strategy, and
    on other backends, this is exactly ``keras.layers.LSTM``; the weights and
    their paths are the same.
    """

    def _create_state_variables(self, batch_size):
        with keras.name_scope(self.name, caller=self):
            # Assigned outside Keras' tracking (as the base class does): the
            # state is not a weight and must stay out of saved weight files.
            object.__setattr__(self, "states", [
                keras.Variable(value, trainable=False, dtype=self.variable_dtype, name="rnn_state",
                               synchronization="on_read", aggregation="only_first_replica")
                for value in self.get_initial_state(batch_size)
            ])


def build_lm(config: LMConfig, vocab_size: int, batch_size: int | None, seq_len: int | None,
             stateful: bool = True, score: bool = False) -> keras.Model:
    """Build the language model.

    Args:
        config: Hyperparameters.
        vocab_size: Tokenizer vocabulary size.
        batch_size: Fixed number of streams (stateful layers need it).
        seq_len: Time steps per batch (the BPTT window), or None.
        stateful: Carry LSTM states from one batch to the next inside the
            layers (training).
        score: Build the scoring model instead: inputs ``(ids, targets,
            h_0, c_0, h_1, c_1, ...)``, outputs ``(nll, h_0', c_0', ...)``,
            with the per-token negative log-likelihood and explicit states
            that the caller carries from window to window. Explicit states
            behave the same on every backend (a stateful layer's state is not
            carried between ``predict`` calls on JAX).

    Returns:
        An uncompiled ``keras.Model``.
    """
    require_concrete(config)
    init = keras.initializers.RandomUniform(-config.init_scale, config.init_scale, seed=config.seed)
    ids = keras.Input(batch_shape=(batch_size, seq_len), dtype="int32", name="ids")
    if config.tie_weights:
        embedding = ReversibleEmbedding(vocab_size, config.embedding_dim, embeddings_initializer=init,
                                        name="embedding")
    else:
        embedding = layers.Embedding(vocab_size, config.embedding_dim, embeddings_initializer=init,
                                     name="embedding")
    x = embedding(ids)
    if config.dropout_words:
        x = EmbeddingDropout(vocab_size, config.dropout_words, seed=config.seed + 1, name="dropout_words")([x, ids])

    def time_locked_dropout(rate: float, name: str):
        # Locked: noise_shape (B, 1, D), one mask per sequence shared across time steps.
        noise_shape = (batch_size, 1, None) if config.locked_dropout else None
        return layers.Dropout(rate, noise_shape=noise_shape, seed=config.seed, name=name)

    state_inputs, state_outputs = [], []
    if config.dropout_embedding:
        x = time_locked_dropout(config.dropout_embedding, "dropout_embedding")(x)
    for i in range(config.num_layers):
        # The same variables either way; WeightDropLSTM differs only while training.
        lstm_class, extra = layers.LSTM, {}
        if config.weight_drop:
            lstm_class, extra = WeightDropLSTM, {"weight_drop": config.weight_drop, "seed": config.seed + 2 + i}
        lstm = lstm_class(
            config.hidden_size, return_sequences=True, stateful=stateful and not score,
            return_state=score, kernel_initializer=init, recurrent_initializer=init,
            unit_forget_bias=False, name=f"lstm_{i}", **extra,
        )
        if score:
            h0 = keras.Input(batch_shape=(batch_size, config.hidden_size), name=f"h_{i}")
            c0 = keras.Input(batch_shape=(batch_size, config.hidden_size), name=f"c_{i}")
            x, h, c = lstm(x, initial_state=[h0, c0])
            state_inputs += [h0, c0]
            state_outputs += [h, c]
        else:
            x = lstm(x)
        raw = x
        rate = config.dropout if i < config.num_layers - 1 else config.dropout_output
        if rate:
            x = time_locked_dropout(rate, f"dropout_{i}")(x)
    if config.ar_alpha or config.tar_beta:
        x = ActivationRegularization(config.ar_alpha, config.tar_beta, name="activation_regularization")([raw, x])
    if config.tie_weights:
        logits = embedding(x, reverse=True)
    else:
        logits = layers.Dense(vocab_size, kernel_initializer=init, name="output")(x)
    logits = layers.Activation("linear", dtype="float32", name="logits")(logits)
    if not score:
        return keras.Model(ids, logits, name="lm")
    targets = keras.Input(batch_shape=(batch_size, seq_len), dtype="int32", name="targets")
    nll = TokenNLL(name="nll")([logits, targets])
    return keras.Model([ids, targets, *state_inputs], [nll, *state_outputs], name="lm_score")


def reset_states(model: keras.Model) -> None:
    """Zero the carried state of every stateful layer."""
    for layer in model.layers:
        if getattr(layer, "stateful", False):
            layer.reset_states()


def compile_lm(model: keras.Model, config: LMConfig) -> None:
    """Attach optimizer and loss.

    With ``sum_over_time`` the loss behaves as the sum over the BPTT window
    (Zaremba et al.), implemented by scaling the learning rate and the clip
    norm of a per-token mean loss: for SGD this is exactly equivalent, and
    the reported loss stays per token.
    """
    scale = lr_scale(config)
    clip = (config.clip_norm / scale) if config.clip_norm else None
    if config.optimizer == "sgd" and config.nonmono:
        from lstmtext.lm.asgd import AveragedSGD

        opt = AveragedSGD(learning_rate=config.lr * scale, global_clipnorm=clip)
    elif config.optimizer == "sgd":
        opt = keras.optimizers.SGD(learning_rate=config.lr * scale, global_clipnorm=clip)
    else:
        opt = keras.optimizers.Adam(learning_rate=config.lr, global_clipnorm=clip)
    model.compile(optimizer=opt, loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  jit_compile=config.jit_compile)


def lr_scale(config: LMConfig) -> float:
    """Factor between the configured learning rate and the optimizer's."""
    return float(config.bptt) if (config.sum_over_time and config.optimizer == "sgd") else 1.0
