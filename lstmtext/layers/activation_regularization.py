"""Activation and temporal activation regularisation of an RNN's outputs (AR/TAR)."""

from __future__ import annotations

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="lstmtext")
class ActivationRegularization(keras.layers.Layer):
    """Add Merity et al. (2017)'s AR and TAR penalties to the training loss.

    AR, ``alpha * mean(dropped ** 2)``, keeps the (dropped-out) outputs of
    the last LSTM small; TAR, ``beta * mean((h[:, t] - h[:, t - 1]) ** 2)``
    over the raw outputs ``h`` of the same layer, keeps them from jumping
    between time steps. Means run over every element, as in their code. The
    penalties are added only while training; the layer returns ``dropped``
    unchanged and has no weights.

    Args:
        alpha: AR weight (0: off).
        beta: TAR weight (0: off).
        **kwargs: Passed to ``keras.layers.Layer``.

    Call arguments:
        inputs: ``(raw, dropped)``, both ``(B, T, H)``: the layer's outputs
            before and after dropout.
        training: Add the penalties only when true.

    Example:
        >>> reg = ActivationRegularization(alpha=2.0, beta=1.0)
        >>> y = reg([keras.ops.ones((2, 5, 8)), keras.ops.ones((2, 5, 8))])
    """

    def __init__(self, alpha: float = 0.0, beta: float = 0.0, **kwargs):
        super().__init__(**kwargs)
        if alpha < 0 or beta < 0:
            raise ValueError(f"alpha and beta must be >= 0, got {alpha} and {beta}")
        self.alpha = alpha
        self.beta = beta

    def penalty(self, raw, dropped):
        """``alpha * AR + beta * TAR`` for ``(B, T, H)`` outputs, in float32."""
        raw, dropped = ops.cast(raw, "float32"), ops.cast(dropped, "float32")
        total = ops.convert_to_tensor(0.0, "float32")
        if self.alpha:
            total = total + self.alpha * ops.mean(ops.square(dropped))
        if self.beta:
            # A one-step window (the last of a variable-length epoch can be) has no
            # differences: its TAR is 0, not the NaN of an empty mean.
            steps = ops.square(raw[:, 1:] - raw[:, :-1])
            count = ops.cast(ops.shape(raw)[0] * (ops.shape(raw)[1] - 1) * ops.shape(raw)[2], "float32")
            total = total + self.beta * ops.sum(steps) / ops.maximum(count, 1.0)
        return total

    def call(self, inputs, training=False):
        raw, dropped = inputs
        if training and (self.alpha or self.beta):
            self.add_loss(self.penalty(raw, dropped))
        return dropped

    def compute_output_shape(self, input_shape):
        return input_shape[1]

    def get_config(self):
        config = super().get_config()
        config.update({"alpha": self.alpha, "beta": self.beta})
        return config
