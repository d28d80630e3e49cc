"""An embedding whose matrix also serves as the output projection."""

from __future__ import annotations

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="lstmtext")
class ReversibleEmbedding(keras.layers.Embedding):
    """Embedding that can be called in reverse to produce vocabulary logits.

    Tying input and output weights (Press & Wolf 2017) saves a whole
    ``vocab x dim`` matrix and improves perplexity. ``call(ids)`` looks ids up;
    ``call(hidden, reverse=True)`` returns ``hidden @ embeddings.T + bias``.

    Args:
        input_dim: Vocabulary size.
        output_dim: Embedding size.
        **kwargs: Passed to ``keras.layers.Embedding``.

    Example:
        >>> emb = ReversibleEmbedding(100, 16)
        >>> logits = emb(emb(ops.ones((2, 3), "int32")), reverse=True)  # (2, 3, 100)
    """

    def build(self, input_shape=None):
        super().build(input_shape)
        self.output_bias = self.add_weight(name="output_bias", shape=(self.input_dim,), initializer="zeros")

    def call(self, inputs, reverse: bool = False):
        if reverse:
            logits = ops.matmul(inputs, ops.transpose(ops.cast(self.embeddings, inputs.dtype)))
            return logits + ops.cast(self.output_bias, logits.dtype)
        return super().call(inputs)

    def compute_output_shape(self, input_shape, reverse: bool = False):
        if reverse:
            return tuple(input_shape[:-1]) + (self.input_dim,)
        return super().compute_output_shape(input_shape)

    def compute_output_spec(self, inputs, reverse: bool = False):
        shape = self.compute_output_shape(inputs.shape, reverse=reverse)
        dtype = self.compute_dtype if reverse else self.compute_dtype
        return keras.KerasTensor(shape, dtype=dtype)
