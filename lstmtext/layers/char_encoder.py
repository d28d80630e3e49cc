"""Character-level word features: a convolution with max pooling, or a BiLSTM."""

from __future__ import annotations

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="lstmtext")
class CharEncoder(keras.layers.Layer):
    """Turns the characters of each word into one vector per word.

    ``cnn`` (Ma & Hovy 2016) embeds characters, convolves them and takes the
    maximum over the word's real characters; ``lstm`` (Lample et al. 2016)
    runs a BiLSTM over the characters and concatenates its two final states.
    Character id 0 is padding.

    Args:
        num_chars: Character vocabulary size (padding included).
        char_dim: Character embedding size.
        kind: ``cnn`` or ``lstm``.
        filters: Convolution filters (``cnn``).
        kernel_size: Convolution width (``cnn``).
        hidden_size: LSTM units per direction (``lstm``).
        **kwargs: Passed to ``keras.layers.Layer``.

    Call arguments:
        chars: ``(batch, words, chars)`` int ids.

    Returns:
        ``(batch, words, output_dim)`` features; zeros for padding words.

    Example:
        >>> enc = CharEncoder(50, 16, "cnn", filters=32)
        >>> enc(ops.ones((2, 7, 5), "int32")).shape
        (2, 7, 32)
    """

    def __init__(self, num_chars: int, char_dim: int = 30, kind: str = "cnn", filters: int = 50,
                 kernel_size: int = 3, hidden_size: int = 25, **kwargs):
        super().__init__(**kwargs)
        if kind not in ("cnn", "lstm"):
            raise ValueError(f"kind must be 'cnn' or 'lstm', got {kind!r}")
        self.num_chars = int(num_chars)
        self.char_dim = int(char_dim)
        self.kind = kind
        self.filters = int(filters)
        self.kernel_size = int(kernel_size)
        self.hidden_size = int(hidden_size)
        self.embedding = keras.layers.Embedding(self.num_chars, self.char_dim, name="char_embedding")
        if kind == "cnn":
            self.conv = keras.layers.Conv1D(self.filters, self.kernel_size, padding="same",
                                            activation="tanh", name="char_conv")
        else:
            self.lstm = keras.layers.Bidirectional(
                keras.layers.LSTM(self.hidden_size, name="char_lstm"), name="char_bilstm")

    @property
    def output_dim(self) -> int:
        return self.filters if self.kind == "cnn" else 2 * self.hidden_size

    def build(self, input_shape):
        self.embedding.build((None, None))
        if self.kind == "cnn":
            self.conv.build((None, None, self.char_dim))
        else:
            self.lstm.build((None, None, self.char_dim))
        self.built = True

    def call(self, chars):
        shape = ops.shape(chars)
        flat = ops.reshape(chars, (-1, shape[2]))  # (batch*words, chars)
        char_mask = ops.not_equal(flat, 0)
        x = self.embedding(flat)
        if self.kind == "cnn":
            h = self.conv(x)
            # Padding characters must not win the max: push them far down, then
            # zero the words that have no character at all (padding words).
            neg = ops.cast(-1e4, h.dtype)
            h = ops.where(char_mask[:, :, None], h, neg)
            h = ops.max(h, axis=1)
            has_chars = ops.any(char_mask, axis=1)
            h = ops.where(has_chars[:, None], h, ops.zeros_like(h))
        else:
            h = self.lstm(x, mask=char_mask)
        return ops.reshape(h, (shape[0], shape[1], self.output_dim))

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[1], self.output_dim)

    def get_config(self):
        config = super().get_config()
        config.update({
            "num_chars": self.num_chars, "char_dim": self.char_dim, "kind": self.kind,
            "filters": self.filters, "kernel_size": self.kernel_size, "hidden_size": self.hidden_size,
        })
        return config
