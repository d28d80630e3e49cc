"""A linear-chain conditional random field written with ``keras.ops``.

The layer owns the transition scores; the network in front of it produces the
per-token emission scores. Training minimises the negative log-likelihood from
the forward algorithm; decoding is Viterbi. Both run on any Keras backend,
and :func:`~lstmtext.layers.viterbi.viterbi_numpy` decodes with NumPy alone for the
light inference path (it lives in its own module so that path never imports Keras).

Tag sequences that a tagging scheme forbids (``O`` followed by ``I-PER`` in
IOB2, say) are excluded with a fixed mask that adds a large negative score to
those transitions, so neither the loss nor Viterbi ever gives them weight.
"""

from __future__ import annotations

from typing import Sequence

import keras
import numpy as np
from keras import ops

from lstmtext.layers.viterbi import FORBIDDEN, constraint_matrices, viterbi_numpy  # noqa: F401

@keras.saving.register_keras_serializable(package="lstmtext")
class CRF(keras.layers.Layer):
    """Linear-chain CRF over ``num_tags`` tags.

    ``call(emissions)`` returns the emission scores unchanged (so a model's
    output is the per-token potentials) and drops the Keras mask, because the
    CRF loss is per sentence, not per token. Padding is marked in the targets
    with ``-1``; sequences must be padded on the right.

    Args:
        num_tags: Number of tags.
        allowed_transitions: ``[from, to]`` pairs that may follow each other;
            ``None`` allows every pair.
        allowed_start: Tags a sentence may start with; ``None``: any.
        allowed_end: Tags a sentence may end with; ``None``: any.
        **kwargs: Passed to ``keras.layers.Layer``.

    Call arguments:
        emissions: ``(batch, time, num_tags)`` float scores.

    Example:
        >>> crf = CRF(3, allowed_transitions=[[0, 0], [0, 1], [1, 2], [2, 0]])
        >>> e = keras.random.normal((2, 5, 3))
        >>> nll = crf.loss(ops.zeros((2, 5), "int32"), crf(e))  # (2,)
        >>> tags = crf.decode(e, ops.ones((2, 5), "bool"))     # (2, 5)
    """

    def __init__(
        self,
        num_tags: int,
        allowed_transitions: Sequence[Sequence[int]] | None = None,
        allowed_start: Sequence[int] | None = None,
        allowed_end: Sequence[int] | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.num_tags = int(num_tags)
        self.allowed_transitions = None if allowed_transitions is None else [
            [int(i), int(j)] for i, j in allowed_transitions]
        self.allowed_start = None if allowed_start is None else [int(i) for i in allowed_start]
        self.allowed_end = None if allowed_end is None else [int(i) for i in allowed_end]
        self.supports_masking = True
        # The penalties are constants, not variables: they are a function of
        # the tag set and must never be trained or saved as weights.
        self._penalties = constraint_matrices(
            self.num_tags, self.allowed_transitions, self.allowed_start, self.allowed_end)

    def build(self, input_shape=None):
        init = keras.initializers.RandomUniform(-0.1, 0.1)
        self.transitions = self.add_weight(
            name="transitions", shape=(self.num_tags, self.num_tags), initializer=init)
        self.start_transitions = self.add_weight(
            name="start_transitions", shape=(self.num_tags,), initializer=init)
        self.end_transitions = self.add_weight(
            name="end_transitions", shape=(self.num_tags,), initializer=init)
        self.built = True

    def call(self, emissions):
        # A new tensor: returning the input itself would carry its Keras mask along.
        return ops.add(emissions, 0.0)

    def compute_mask(self, inputs, mask=None):
        return None

    def compute_output_shape(self, input_shape):
        return input_shape

    # -- scores with the constraints applied ---------------------------------------------
    def potentials(self):
        """``(transitions, start, end)`` with forbidden moves penalised."""
        trans, start, end = self._penalties
        return (
            ops.convert_to_tensor(self.transitions) + trans,
            ops.convert_to_tensor(self.start_transitions) + start,
            ops.convert_to_tensor(self.end_transitions) + end,
        )

    def potentials_numpy(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The same as :meth:`potentials`, as NumPy arrays."""
        trans, start, end = self._penalties
        return (
            np.asarray(keras.ops.convert_to_numpy(self.transitions)) + trans,
            np.asarray(keras.ops.convert_to_numpy(self.start_transitions)) + start,
            np.asarray(keras.ops.convert_to_numpy(self.end_transitions)) + end,
        )

    # -- training ------------------------------------------------------------------------
    def log_likelihood(self, emissions, tags, mask):
        """Log-probability of ``tags`` under the CRF, per sentence.

        Args:
            emissions: ``(batch, time, num_tags)`` scores.
            tags: ``(batch, time)`` integer tags (any value where masked).
            mask: ``(batch, time)`` bool, true for real tokens, padded on the right.

        Returns:
            ``(batch,)`` log-likelihoods; 0 for an empty sentence.
        """
        emissions = ops.cast(emissions, "float32")
        trans, start, end = self.potentials()
        return sequence_score(emissions, tags, mask, trans, start, end) - log_partition(
            emissions, mask, trans, start, end)

    def loss(self, y_true, y_pred):
        """Negative log-likelihood per sentence; ``y_true`` is ``-1`` at padding.

        Usable directly as a Keras loss: ``model.compile(loss=crf.loss)``.
        """
        y_true = ops.cast(y_true, "int32")
        mask = ops.greater_equal(y_true, 0)
        tags = ops.maximum(y_true, 0)
        return -self.log_likelihood(y_pred, tags, mask)

    # -- decoding ------------------------------------------------------------------------
    def decode(self, emissions, mask):
        """Best tag sequences by Viterbi; ``-1`` at padding. Backend tensors in and out."""
        trans, start, end = self.potentials()
        return viterbi(ops.cast(emissions, "float32"), mask, trans, start, end)

    def get_config(self):
        config = super().get_config()
        config.update({
            "num_tags": self.num_tags,
            "allowed_transitions": self.allowed_transitions,
            "allowed_start": self.allowed_start,
            "allowed_end": self.allowed_end,
        })
        return config


def _time_major(emissions, mask):
    """Steps 1.. as one time-major tensor ``(T-1, B, K+1)``, the mask in the last channel.

    One tensor rather than a pair: Keras' TensorFlow ``scan`` fails on several
    inputs whose time length is unknown at trace time.
    """
    both = ops.concatenate([emissions, ops.cast(mask, emissions.dtype)[:, :, None]], axis=-1)
    return ops.transpose(both[:, 1:], (1, 0, 2))


def sequence_score(emissions, tags, mask, trans, start, end):
    """Unnormalised score of given tag sequences: ``(batch,)``."""
    mask_f = ops.cast(mask, emissions.dtype)
    num_tags = ops.shape(emissions)[-1]
    one_hot = ops.one_hot(tags, num_tags, dtype=emissions.dtype)  # (B, T, K)
    emit = ops.sum(ops.sum(emissions * one_hot, axis=-1) * mask_f, axis=-1)
    # Transition t-1 -> t counts where token t is real (right padding).
    prev = one_hot[:, :-1]
    nxt = one_hot[:, 1:]
    pair = ops.sum(ops.matmul(prev, trans) * nxt, axis=-1)  # (B, T-1)
    trans_score = ops.sum(pair * mask_f[:, 1:], axis=-1)
    lengths = ops.sum(ops.cast(mask, "int32"), axis=-1)
    first = one_hot[:, 0]
    last_index = ops.maximum(lengths - 1, 0)
    last = ops.take_along_axis(one_hot, last_index[:, None, None], axis=1)[:, 0]
    nonempty = ops.cast(lengths > 0, emissions.dtype)
    bounds = (ops.sum(first * start, axis=-1) + ops.sum(last * end, axis=-1)) * nonempty
    return emit + trans_score + bounds


def log_partition(emissions, mask, trans, start, end):
    """Log of the sum of exp(score) over all tag sequences (forward algorithm): ``(batch,)``."""
    lengths = ops.sum(ops.cast(mask, "int32"), axis=-1)
    alpha0 = start[None, :] + emissions[:, 0]
    xs = _time_major(emissions, mask)

    def step(alpha, x):
        emit_t, mask_t = x[:, :-1], x[:, -1] > 0.5
        nxt = ops.logsumexp(alpha[:, :, None] + trans[None], axis=1) + emit_t
        # Padded steps carry alpha through unchanged, so the result depends only
        # on the real tokens: tagging alone or in any batch gives the same value.
        alpha = ops.where(mask_t[:, None], nxt, alpha)
        return alpha, None

    alpha, _ = ops.scan(step, alpha0, xs)
    logz = ops.logsumexp(alpha + end[None, :], axis=-1)
    return ops.where(lengths > 0, logz, ops.zeros_like(logz))


def viterbi(emissions, mask, trans, start, end):
    """Viterbi decoding with ``keras.ops``: ``(batch, time)`` int32 tags, ``-1`` where masked."""
    num_tags = ops.shape(emissions)[-1]
    score0 = start[None, :] + emissions[:, 0]
    xs = _time_major(emissions, mask)
    identity = ops.arange(num_tags, dtype="int32")

    def forward(score, x):
        emit_t, mask_t = x[:, :-1], x[:, -1] > 0.5
        cand = score[:, :, None] + trans[None]  # (B, from, to)
        best_prev = ops.cast(ops.argmax(cand, axis=1), "int32")
        nxt = ops.max(cand, axis=1) + emit_t
        score = ops.where(mask_t[:, None], nxt, score)
        # At padding the back-pointer is the identity, so backtracking walks
        # through the padding unchanged to the sentence's real last tag.
        pointers = ops.where(mask_t[:, None], best_prev, identity[None, :])
        # Emitted as floats (exact for tag indices): Keras' TensorFlow scan
        # requires the per-step outputs to share the carry's dtype.
        return score, ops.cast(pointers, score.dtype)

    score, pointers = ops.scan(forward, score0, xs)  # pointers: (T-1, B, K)
    pointers = ops.cast(pointers, "int32")
    last = ops.cast(ops.argmax(score + end[None, :], axis=-1), "int32")

    def backward(tag, bp):
        prev = ops.take_along_axis(bp, tag[:, None], axis=1)[:, 0]
        return prev, prev

    _, earlier = ops.scan(backward, last, pointers, reverse=True)  # (T-1, B): tags 0..T-2
    tags = ops.concatenate([ops.transpose(earlier, (1, 0)), last[:, None]], axis=1)
    return ops.where(mask, tags, -ops.ones_like(tags))
