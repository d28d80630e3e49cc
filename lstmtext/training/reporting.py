"""Progress reporting. Library code reports through this interface; the CLI
plugs in a rich progress bar, the Python API a logging reporter."""

from __future__ import annotations

import logging

log = logging.getLogger("lstmtext")


class Reporter:
    """Receives training events. Every method is optional to override."""

    def train_begin(self, epochs: int, start_epoch: int) -> None:
        """Training starts (``start_epoch`` > 0 when resuming)."""

    def epoch_begin(self, epoch: int, steps: int | None, lr: float) -> None:
        """An epoch starts; ``steps`` is the number of batches, if known."""

    def step(self, step: int, loss: float, tokens: int) -> None:
        """A batch was trained on; ``tokens`` counts the batch's real tokens."""

    def epoch_end(self, epoch: int, metrics: dict) -> None:
        """An epoch ended; ``metrics`` has training and validation figures."""

    def message(self, text: str) -> None:
        """A one-line note for the user."""

    def train_end(self) -> None:
        """Training ended (normally or not)."""


class LoggingReporter(Reporter):
    """Writes one log line per epoch."""

    def epoch_end(self, epoch: int, metrics: dict) -> None:
        log.info("epoch %d %s", epoch + 1, format_metrics(metrics))

    def message(self, text: str) -> None:
        log.info(text)


def format_metrics(metrics: dict) -> str:
    """``key=value`` pairs, numbers rounded for reading."""
    parts = []
    for key, value in metrics.items():
        if isinstance(value, float):
            parts.append(f"{key}={value:.4g}" if abs(value) < 1e4 else f"{key}={value:.0f}")
        else:
            parts.append(f"{key}={value}")
    return " ".join(parts)
