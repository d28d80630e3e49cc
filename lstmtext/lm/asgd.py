"""Non-monotonically triggered averaged SGD (NT-ASGD, Merity et al. 2017).

Training runs plain SGD until validation perplexity stops improving: when an
epoch's perplexity is worse than the best of all epochs before the last
``nonmono`` ones, averaging starts. From then on the optimizer keeps the
running mean of the weights after every step (Polyak & Juditsky 1992; with
PyTorch's ``ASGD(t0=0, lambd=0)``, as in the AWD-LSTM code, this is what the
averaged copy ``ax`` holds); training itself continues from the raw weights,
while validation and the saved bundles use the averages.

The averages and the step at which they started are optimizer variables, so
they are saved in ``optimizer.h5`` with the rest of the optimizer's state and
``--resume`` continues them exactly.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops


@keras.saving.register_keras_serializable(package="lstmtext")
class AveragedSGD(keras.optimizers.SGD):
    """``keras.optimizers.SGD`` that can also keep the running mean of the weights.

    Averaging is off until :meth:`start_averaging`; from then on, after each
    step ``k`` (``k = 1, 2, ...`` since the start), ``average += (w - average) / k``.

    Args:
        **kwargs: Passed to ``keras.optimizers.SGD``.
    """

    def build(self, variables):
        if self.built:
            return
        super().build(variables)
        # Iteration at which averaging started; -1: not started.
        self.average_start = self.add_variable((), initializer=keras.initializers.Constant(-1),
                                               dtype="int64", name="average_start")
        self.averages = self.add_optimizer_variables(variables, "average")

    def update_step(self, gradient, variable, learning_rate):
        super().update_step(gradient, variable, learning_rate)
        average = self.averages[self._get_variable_index(variable)]
        # ``iterations`` counts the steps before this one.
        since = ops.cast(self.iterations, "int64") - ops.cast(self.average_start, "int64")
        active = ops.logical_and(ops.greater_equal(self.average_start, 0), ops.greater_equal(since, 0))
        weight = ops.where(active, 1.0 / (ops.cast(since, "float32") + 1.0), 0.0)
        self.assign_add(average, ops.multiply(ops.subtract(variable, average), ops.cast(weight, average.dtype)))

    def start_averaging(self) -> None:
        """Average the weights from the next step on."""
        self.average_start.assign(int(self.iterations.numpy()))

    @property
    def averaging(self) -> bool:
        """Whether averaging has started."""
        return self.built and int(self.average_start.numpy()) >= 0

    def averaged_steps(self) -> int:
        """Steps averaged so far (0 before the start)."""
        if not self.averaging:
            return 0
        return max(int(self.iterations.numpy()) - int(self.average_start.numpy()), 0)

    def average_of(self, variable) -> np.ndarray:
        """The running mean of ``variable`` (a trainable variable of the model)."""
        return np.asarray(self.averages[self._get_variable_index(variable)].numpy())


def averaging_optimizer(model) -> AveragedSGD | None:
    """The model's :class:`AveragedSGD`, inside a loss-scale wrapper or not; None if it has none."""
    optimizer = getattr(model, "optimizer", None)
    optimizer = getattr(optimizer, "inner_optimizer", optimizer)
    return optimizer if isinstance(optimizer, AveragedSGD) else None


def should_trigger(perplexities: list[float], nonmono: int) -> bool:
    """Merity et al.'s trigger: the last epoch is worse than the best epoch before the ``nonmono`` preceding it.

    With ``nonmono = 5`` averaging starts at the first epoch that is worse
    than the best of the epochs older than the five before it (and only once more than
    five epochs precede it).

    Args:
        perplexities: Validation perplexity of every epoch so far, the latest last.
        nonmono: How many recent epochs are left out of the comparison (> 0).
    """
    previous = perplexities[:-1]
    if nonmono <= 0 or len(previous) <= nonmono:
        return False
    return perplexities[-1] > min(previous[:-nonmono])


def model_weights(model) -> dict[str, np.ndarray]:
    """Every weight of ``model`` by path, trainable ones averaged once averaging has steps.

    Before averaging (or with a plain optimizer) these are the raw weights.
    """
    optimizer = averaging_optimizer(model)
    use_average = optimizer is not None and optimizer.averaged_steps() > 0
    trainable = {id(v) for v in model.trainable_weights}
    return {v.path: (optimizer.average_of(v) if use_average and id(v) in trainable else np.asarray(v.numpy()))
            for v in model.weights}
