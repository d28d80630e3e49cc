"""Viterbi decoding with NumPy alone, for inference without a deep-learning framework.

Kept apart from :mod:`lstmtext.layers.crf` so that tagging with the light
runtime never imports Keras or TensorFlow.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

# Large but finite: -inf would turn logsumexp over an all-forbidden row into NaN.
FORBIDDEN = -10000.0


def constraint_matrices(
    num_tags: int,
    allowed_transitions: Sequence[Sequence[int]] | None,
    allowed_start: Sequence[int] | None,
    allowed_end: Sequence[int] | None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Additive penalty matrices (0 allowed, ``FORBIDDEN`` not) for transitions, start and end."""
    trans = np.zeros((num_tags, num_tags), np.float32)
    if allowed_transitions is not None:
        trans[:] = FORBIDDEN
        for i, j in allowed_transitions:
            trans[i, j] = 0.0
    start = np.zeros((num_tags,), np.float32)
    if allowed_start is not None:
        start[:] = FORBIDDEN
        start[list(allowed_start)] = 0.0
    end = np.zeros((num_tags,), np.float32)
    if allowed_end is not None:
        end[:] = FORBIDDEN
        end[list(allowed_end)] = 0.0
    return trans, start, end


def viterbi_numpy(
    emissions: np.ndarray,
    lengths: np.ndarray,
    trans: np.ndarray,
    start: np.ndarray,
    end: np.ndarray,
) -> list[np.ndarray]:
    """Viterbi with NumPy, batched: one int array of tags per sentence.

    Args:
        emissions: ``(batch, time, num_tags)`` scores, padded on the right.
        lengths: ``(batch,)`` real lengths (0 allowed).
        trans, start, end: Potentials with constraints applied
            (:meth:`CRF.potentials_numpy`).
    """
    emissions = np.asarray(emissions, np.float32)
    batch, time, num_tags = emissions.shape
    lengths = np.asarray(lengths)
    if time == 0:
        return [np.zeros((0,), np.int64) for _ in range(batch)]
    score = start[None, :] + emissions[:, 0]
    pointers = np.empty((max(time - 1, 0), batch, num_tags), np.int64)
    identity = np.arange(num_tags)
    for t in range(1, time):
        cand = score[:, :, None] + trans[None]
        best_prev = cand.argmax(axis=1)
        nxt = np.take_along_axis(cand, best_prev[:, None, :], axis=1)[:, 0] + emissions[:, t]
        live = (t < lengths)[:, None]
        score = np.where(live, nxt, score)
        pointers[t - 1] = np.where(live, best_prev, identity[None, :])
    tag = (score + end[None, :]).argmax(axis=-1)
    out = np.empty((batch, time), np.int64)
    out[:, time - 1] = tag
    rows = np.arange(batch)
    for t in range(time - 2, -1, -1):
        tag = pointers[t][rows, tag]
        out[:, t] = tag
    return [out[b, : lengths[b]] for b in range(batch)]
