"""Attention over encoder outputs: Luong "general" and Bahdanau (additive) scores.

Both layers take one decoder query per sentence (the current decoder state),
the encoder outputs ("memory") and the source padding mask, and return the
context vector and the attention weights. Padding is masked exactly: masked
scores are replaced by a large negative number before the softmax, so their
weights underflow to exactly 0.0 in float32 (``-inf`` would turn a row with
no real position, such as a dummy row padding a fixed-size batch, into NaN).
"""

from __future__ import annotations

import keras
from keras import layers, ops

# exp(-1e9 - max) is exactly 0 in float32 and float16-safe after the cast below.
_MASKED = -1e9


def masked_softmax(scores, mask):
    """Softmax of ``scores`` (B, S) over positions where ``mask`` is true."""
    scores = ops.cast(scores, "float32")
    if mask is not None:
        scores = ops.where(ops.cast(mask, "bool"), scores, ops.full_like(scores, _MASKED))
    return ops.softmax(scores, axis=-1)


def weighted_context(scores, memory, mask):
    """``(context, weights)`` from raw ``(B, S)`` scores over ``(B, S, M)`` memory."""
    weights = masked_softmax(scores, mask)
    context = ops.squeeze(ops.matmul(ops.expand_dims(ops.cast(weights, memory.dtype), 1), memory), 1)
    return context, weights


class _Attention(layers.Layer):
    """Shared shape logic and config of the attention layers."""

    def __init__(self, memory_dim: int, **kwargs):
        super().__init__(**kwargs)
        self.memory_dim = memory_dim

    def call(self, query, memory, mask=None):
        return self.attend(self.params(), query, memory, mask)

    def compute_output_shape(self, query_shape, memory_shape, mask_shape=None):
        return (query_shape[0], self.memory_dim), (query_shape[0], memory_shape[1])

    def get_config(self):
        return {**super().get_config(), "memory_dim": self.memory_dim}


@keras.saving.register_keras_serializable(package="lstmtext")
class LuongAttention(_Attention):
    """Luong et al. (2015) "general" attention: ``score(h, m) = h W m``.

    Args:
        memory_dim: Size of each encoder output vector (needed to build ``W``
            before the first call).
        **kwargs: Passed to ``keras.layers.Layer``.

    Call arguments:
        query: ``(B, Q)`` decoder states.
        memory: ``(B, S, memory_dim)`` encoder outputs.
        mask: ``(B, S)`` true (or 1) at real source positions.

    Returns:
        ``(context, weights)`` of shapes ``(B, memory_dim)`` and ``(B, S)``.

    Example:
        >>> att = LuongAttention(memory_dim=8)
        >>> ctx, w = att(ops.ones((2, 4)), ops.ones((2, 5, 8)), ops.ones((2, 5)))
    """

    def build(self, query_shape, memory_shape=None, mask_shape=None):
        self.kernel = self.add_weight(name="kernel", shape=(query_shape[-1], self.memory_dim),
                                      initializer="glorot_uniform")

    def params(self) -> tuple:
        """The weights as tensors, read once outside a recurrence (see :meth:`attend`)."""
        return (ops.convert_to_tensor(self.kernel),)

    @staticmethod
    def attend(params, query, memory, mask=None):
        """Attention with weights given as tensors.

        A ``while`` loop compiled by XLA cannot accumulate gradients of
        variable reads made inside it, so a recurrent caller reads the weights
        once (:meth:`params`) and passes them in.
        """
        (kernel,) = params
        # Project the query once (B, M) instead of the whole memory (B, S, M).
        q = ops.matmul(query, kernel)
        return weighted_context(ops.squeeze(ops.matmul(memory, ops.expand_dims(q, -1)), -1), memory, mask)


@keras.saving.register_keras_serializable(package="lstmtext")
class BahdanauAttention(_Attention):
    """Additive attention (Bahdanau et al. 2015): ``score = v . tanh(W h + U m)``.

    Used with the current decoder state as query (Luong's "concat" placement),
    so both scores share one decoder.

    Args:
        memory_dim: Size of each encoder output vector.
        units: Size of the hidden scoring layer.
        **kwargs: Passed to ``keras.layers.Layer``.

    Call arguments:
        query: ``(B, Q)`` decoder states.
        memory: ``(B, S, memory_dim)`` encoder outputs.
        mask: ``(B, S)`` true (or 1) at real source positions.

    Returns:
        ``(context, weights)`` of shapes ``(B, memory_dim)`` and ``(B, S)``.
    """

    def __init__(self, memory_dim: int, units: int = 256, **kwargs):
        super().__init__(memory_dim, **kwargs)
        self.units = units

    def build(self, query_shape, memory_shape=None, mask_shape=None):
        self.query_kernel = self.add_weight(name="query_kernel", shape=(query_shape[-1], self.units),
                                            initializer="glorot_uniform")
        self.memory_kernel = self.add_weight(name="memory_kernel", shape=(self.memory_dim, self.units),
                                             initializer="glorot_uniform")
        self.bias = self.add_weight(name="bias", shape=(self.units,), initializer="zeros")
        self.v = self.add_weight(name="v", shape=(self.units,),
                                 initializer=keras.initializers.RandomUniform(-0.1, 0.1))

    def params(self) -> tuple:
        """The weights as tensors, read once outside a recurrence (see :meth:`attend`)."""
        return tuple(ops.convert_to_tensor(w) for w in (self.query_kernel, self.memory_kernel, self.bias, self.v))

    @staticmethod
    def attend(params, query, memory, mask=None):
        """Attention with weights given as tensors (see ``LuongAttention.attend``)."""
        query_kernel, memory_kernel, bias, v = params
        keys = ops.matmul(memory, memory_kernel)  # (B, S, A)
        q = ops.expand_dims(ops.matmul(query, query_kernel) + bias, 1)  # (B, 1, A)
        return weighted_context(ops.sum(ops.tanh(keys + q) * v, axis=-1), memory, mask)

    def get_config(self):
        return {**super().get_config(), "units": self.units}


ATTENTION_TYPES = {"luong": LuongAttention, "bahdanau": BahdanauAttention}


def make_attention(kind: str, memory_dim: int, units: int, name: str = "attention") -> layers.Layer:
    """An attention layer by name (``luong`` or ``bahdanau``)."""
    if kind == "luong":
        return LuongAttention(memory_dim, name=name)
    return BahdanauAttention(memory_dim, units=units, name=name)
