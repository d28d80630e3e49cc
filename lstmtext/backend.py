"""Importing Keras and TensorFlow quietly.

TensorFlow writes several lines to stderr while it starts (oneDNN notices,
"could not find cuda drivers", absl's pre-initialisation warning) that no
environment variable silences, because they are logged before logging is
configured. The command line imports Keras through :func:`load_keras`, which
points file descriptor 2 at /dev/null for the duration; real import errors
still surface as exceptions. :func:`quiet_logs` keeps TensorFlow's C++ log
lines of every level off the terminal for the rest of the run.
"""

from __future__ import annotations

import contextlib
import os
import sys
from typing import Iterator


def quiet_logs() -> None:
    """Hide TensorFlow's C++ log lines of all levels, unless ``TF_CPP_MIN_LOG_LEVEL`` is set.

    Level 3, not 2: while training, TensorFlow logs notices at ERROR level
    (``E0000 ... oneDNN supports DT_BOOL only on platforms with AVX-512``)
    that are not failures; real failures raise, and the command line
    reports them in its own words. Call before TensorFlow is imported.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


@contextlib.contextmanager
def silenced_stderr() -> Iterator[None]:
    try:
        saved = os.dup(2)
    except OSError:  # no stderr to silence
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        sys.stderr.flush()
        os.dup2(devnull, 2)
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def load_keras():
    """Import and return ``keras``; initialise TensorFlow's devices without the chatter."""
    if "keras" in sys.modules:
        return sys.modules["keras"]
    quiet_logs()
    with silenced_stderr():
        import keras

        if keras.backend.backend() == "tensorflow":
            import tensorflow as tf

            tf.config.list_physical_devices()
    return keras


def quiet_tensorflow():
    """Import and return ``tensorflow`` without its start-up chatter (for exporters)."""
    if "tensorflow" in sys.modules:
        return sys.modules["tensorflow"]
    quiet_logs()
    with silenced_stderr():
        import tensorflow as tf

        tf.config.list_physical_devices()
    return tf


def has_accelerator() -> bool:
    """Whether the Keras backend sees a GPU (or TPU); imports the backend, so call it from training only."""
    keras = load_keras()
    backend = keras.backend.backend()
    try:
        if backend == "tensorflow":
            import tensorflow as tf

            return bool(tf.config.list_physical_devices("GPU") or tf.config.list_physical_devices("TPU"))
        if backend == "jax":
            import jax

            return any(d.platform != "cpu" for d in jax.devices())
        if backend == "torch":
            import torch

            return bool(torch.cuda.is_available())
    except Exception:  # a backend that cannot list its devices trains on what it has: treat as CPU
        return False
    return False
