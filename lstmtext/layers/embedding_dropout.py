"""Embedding dropout: whole words dropped from the vocabulary for one batch."""

from __future__ import annotations

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="lstmtext")
class EmbeddingDropout(keras.layers.Layer):
    """Zero every occurrence of randomly chosen word types in a batch of embeddings.

    While training, each id of the vocabulary is dropped with probability
    ``rate`` for the whole batch and the kept rows are scaled by
    ``1 / (1 - rate)``: the same as dropping rows of the embedding matrix
    before the lookup (Gal & Ghahramani 2016; Merity et al. 2017's
    ``dropoute``), without copying the matrix. A dropped word is dropped at
    every position where it occurs, so the model cannot lean on one
    occurrence of a word to read the others. At inference the layer passes
    embeddings through. It has no weights.

    Args:
        vocab_size: Number of ids.
        rate: Probability of dropping a word type, in [0, 1).
        seed: Seed of the mask generator.
        **kwargs: Passed to ``keras.layers.Layer``.

    Call arguments:
        inputs: ``(embedded, ids)``: ``(B, T, D)`` embeddings of ``(B, T)`` ids.
        training: Drop words only when true.

    Example:
        >>> drop = EmbeddingDropout(100, 0.1)
        >>> y = drop([keras.ops.ones((2, 5, 8)), keras.ops.ones((2, 5), "int32")], training=True)
    """

    def __init__(self, vocab_size: int, rate: float, seed=None, **kwargs):
        super().__init__(**kwargs)
        if not 0.0 <= rate < 1.0:
            raise ValueError(f"rate must be in [0, 1), got {rate}")
        self.vocab_size = vocab_size
        self.rate = rate
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, inputs, training=False):
        embedded, ids = inputs
        if not (training and self.rate):
            return embedded
        keep = ops.cast(keras.random.uniform((self.vocab_size,), seed=self.seed_generator) >= self.rate,
                        embedded.dtype) / ops.cast(1.0 - self.rate, embedded.dtype)
        return embedded * ops.expand_dims(ops.take(keep, ops.cast(ids, "int32")), -1)

    def compute_output_shape(self, input_shape):
        return input_shape[0]

    def get_config(self):
        config = super().get_config()
        config.update({"vocab_size": self.vocab_size, "rate": self.rate, "seed": self.seed})
        return config
