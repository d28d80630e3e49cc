"""An LSTM with DropConnect on its recurrent weights (AWD-LSTM's weight drop)."""

from __future__ import annotations

import contextlib

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="lstmtext")
class WeightDropLSTM(keras.layers.LSTM):
    """``keras.layers.LSTM`` whose hidden-to-hidden matrix is DropConnected while training.

    Each training call draws one Bernoulli mask over the recurrent kernel
    (``units x 4 units``), scaled by ``1 / (1 - weight_drop)``, and uses that
    one dropped matrix at every time step of every sequence of the batch
    (Wan et al. 2013; Merity et al. 2017). Dropping weights rather than
    activations leaves the recurrence itself untouched, so the fused and
    cuDNN LSTM kernels still apply. At inference the layer is exactly
    ``keras.layers.LSTM``, and its variables (and their paths) are the same:
    weights trained with it load into a plain LSTM.

    Args:
        units: Hidden units.
        weight_drop: Probability of dropping each recurrent weight, in [0, 1).
        seed: Seed of the mask generator.
        **kwargs: Passed to ``keras.layers.LSTM``.

    Call arguments:
        As ``keras.layers.LSTM``; the mask is drawn only when ``training``.

    Example:
        >>> lstm = WeightDropLSTM(8, weight_drop=0.5, return_sequences=True)
        >>> y = lstm(keras.ops.ones((2, 5, 4)), training=True)  # (2, 5, 8)
    """

    def __init__(self, units, weight_drop: float = 0.0, seed=None, **kwargs):
        super().__init__(units, seed=seed, **kwargs)
        if not 0.0 <= weight_drop < 1.0:
            raise ValueError(f"weight_drop must be in [0, 1), got {weight_drop}")
        self.weight_drop = weight_drop
        self.weight_drop_seed = seed
        self.weight_drop_generator = keras.random.SeedGenerator(seed)

    def dropped_recurrent_kernel(self):
        """The recurrent kernel with one fresh DropConnect mask applied (a tensor)."""
        kernel = ops.cast(self.cell.recurrent_kernel, self.cell.compute_dtype)
        return keras.random.dropout(kernel, self.weight_drop, seed=self.weight_drop_generator)

    @contextlib.contextmanager
    def _dropped(self):
        # The cell (and the cuDNN path of keras' LSTM) read
        # ``cell.recurrent_kernel`` once per step: pointing that attribute at
        # the dropped tensor for the duration of one call applies the same
        # mask everywhere, and gradients flow through it to the variable.
        # object.__setattr__ keeps Keras' tracking (and the variable lists,
        # hence the saved weights) as they are.
        cell = self.cell
        variable = cell.recurrent_kernel
        object.__setattr__(cell, "recurrent_kernel", self.dropped_recurrent_kernel())
        try:
            yield
        finally:
            object.__setattr__(cell, "recurrent_kernel", variable)

    def inner_loop(self, sequences, initial_state, mask, training=False):
        if not (training and self.weight_drop):
            return super().inner_loop(sequences, initial_state, mask, training=training)
        with self._dropped():
            return super().inner_loop(sequences, initial_state, mask, training=training)

    def get_config(self):
        config = super().get_config()
        config.update({"weight_drop": self.weight_drop, "seed": self.weight_drop_seed})
        return config
