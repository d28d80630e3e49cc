"""Learning-rate schedules decided once per epoch (so they resume exactly)."""

from __future__ import annotations

import math


def epoch_learning_rate(
    schedule: str,
    base_lr: float,
    epoch: int,
    decay: float,
    decay_start: int,
    current_lr: float,
    plateau: bool,
    min_lr: float = 0.0,
) -> float:
    """Learning rate for ``epoch`` (0-based).

    Args:
        schedule: ``constant``; ``step`` (Zaremba et al.: multiply by ``decay``
            each epoch from ``decay_start`` on); ``plateau`` (multiply by
            ``decay`` after an epoch whose validation score did not improve).
        base_lr: Initial learning rate.
        epoch: The epoch about to start.
        decay: Multiplicative factor.
        decay_start: First epoch (0-based) that is decayed, for ``step``.
        current_lr: The rate of the previous epoch (``plateau`` builds on it).
        plateau: Whether the previous epoch failed to improve.
        min_lr: Floor for the decayed rate. It never raises the rate above
            ``base_lr``: a run asked to train at a rate below the floor (a
            gentle fine-tune) trains at that rate.
    """
    if schedule == "constant":
        lr = base_lr
    elif schedule == "step":
        lr = base_lr * decay ** max(0, epoch - decay_start + 1)
    elif schedule == "plateau":
        lr = current_lr * decay if plateau else current_lr
    else:  # validated by the config classes
        raise ValueError(schedule)
    return max(lr, min(min_lr, base_lr)) if math.isfinite(lr) else base_lr
