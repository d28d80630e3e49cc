"""Graceful interruption of training by Ctrl-C (SIGINT) or SIGTERM.

The first signal only sets a flag: the training loop finishes the step it is
running, writes a ``model-last`` checkpoint and raises
:class:`TrainingInterrupted`. A second signal gives up at once (it raises
``KeyboardInterrupt`` wherever the loop is); because checkpoints are written to
a temporary directory and renamed, the previous checkpoint is still intact.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType

from lstmtext.errors import TrainingError


class TrainingInterrupted(TrainingError):
    """Training stopped on request after saving a checkpoint it can resume from.

    Args:
        message: What happened and how to resume.
        signum: The signal received; the exit code is ``128 + signum`` as a
            shell reports for a process killed by that signal.
    """

    def __init__(self, message: str, signum: int = signal.SIGINT):
        super().__init__(message)
        self.signum = int(signum)
        self.exit_code = 128 + self.signum


class GracefulInterrupt:
    """Context manager that turns the first SIGINT/SIGTERM into a flag.

    Outside the main thread Python cannot install signal handlers; the
    manager then does nothing and the default behaviour stays.

    Attributes:
        signum: The first signal received, or ``None``.
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.signum: int | None = None
        self._previous: dict[int, object] = {}

    @property
    def requested(self) -> bool:
        """Whether a stop was requested."""
        return self.signum is not None

    @property
    def name(self) -> str:
        """Human name of the signal received (``SIGINT``, ``SIGTERM``)."""
        return signal.Signals(self.signum).name if self.signum is not None else ""

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.signum is not None:
            # Second request: the user does not want to wait for the checkpoint.
            self._restore()
            raise KeyboardInterrupt
        self.signum = signum

    def _restore(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()

    def __enter__(self) -> "GracefulInterrupt":
        if threading.current_thread() is threading.main_thread():
            for sig in self.SIGNALS:
                self._previous[sig] = signal.getsignal(sig)
                signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        self._restore()
