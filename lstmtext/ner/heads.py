"""The softmax output head (kept for comparison with the CRF) and the CRF loss for partly labelled sequences."""

from __future__ import annotations

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="lstmtext")
class TokenScores(keras.layers.Layer):
    """Passes per-token scores through and drops the Keras mask.

    The loss reads padding from the targets (``-1``), and a mask on the output
    would make Keras weight the per-sentence loss per token a second time.
    """

    def call(self, inputs):
        # A new tensor: returning the input itself would carry its Keras mask along.
        return ops.add(inputs, 0.0)

    def compute_mask(self, inputs, mask=None):
        return None

    def compute_output_shape(self, input_shape):
        return input_shape


def softmax_loss(y_true, y_pred):
    """Per-sentence sum of token cross-entropies; ``y_true`` is ``-1`` at padding."""
    y_true = ops.cast(y_true, "int32")
    mask = ops.cast(ops.greater_equal(y_true, 0), "float32")
    logp = ops.log_softmax(ops.cast(y_pred, "float32"), axis=-1)
    picked = ops.take_along_axis(logp, ops.maximum(y_true, 0)[..., None], axis=-1)[..., 0]
    return -ops.sum(picked * mask, axis=-1)


def partial_crf_loss(crf):
    """A per-sentence CRF loss for sequences in which some real tokens have no label.

    ``y_true`` holds a tag id, ``-1`` at padding, or
    :data:`~lstmtext.ner.features.MASKED` at a real token without a label
    (an unresolved residue). The loss is ``log Z - log Z_observed``: the
    forward algorithm over all tag paths, minus the forward algorithm over the
    paths that agree with every observed label (masked positions free). The
    network still reads the masked tokens, their labels never enter the loss,
    and with no masked position it equals the CRF's negative log-likelihood.
    """
    from lstmtext.layers.crf import log_partition

    def loss(y_true, y_pred):
        y_true = ops.cast(y_true, "int32")
        emissions = ops.cast(y_pred, "float32")
        real = ops.not_equal(y_true, -1)
        observed = ops.greater_equal(y_true, 0)
        gold = ops.one_hot(ops.maximum(y_true, 0), ops.shape(emissions)[-1], dtype="bool")
        allowed = ops.logical_or(gold, ops.logical_not(observed)[..., None])
        # Far below any real score, yet finite: exp() of the gap is exactly 0 in float32.
        constrained = ops.where(allowed, emissions, ops.full_like(emissions, -1e4))
        trans, start, end = crf.potentials()
        return (log_partition(emissions, real, trans, start, end)
                - log_partition(constrained, real, trans, start, end))

    loss.__name__ = "partial_crf_loss"
    return loss
