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


def _logsumexp(a: np.ndarray, axis: int) -> np.ndarray:
    top = a.max(axis=axis, keepdims=True)
    return np.squeeze(top, axis) + np.log(np.exp(a - top).sum(axis=axis))


def marginals_numpy(
    emissions: np.ndarray,
    lengths: np.ndarray,
    trans: np.ndarray,
    start: np.ndarray,
    end: np.ndarray,
) -> list[np.ndarray]:
    """Each token's label probabilities under the CRF (forward-backward with NumPy), batched.

    Args: as :func:`viterbi_numpy`.

    Returns:
        One ``(length, num_tags)`` float32 array per sentence; each row sums to 1.
    """
    e = np.asarray(emissions, np.float64)
    batch, time, num_tags = e.shape
    lengths = np.asarray(lengths)
    if time == 0:
        return [np.zeros((0, num_tags), np.float32) for _ in range(batch)]
    trans = np.asarray(trans, np.float64)[None]
    end = np.asarray(end, np.float64)
    alpha = np.empty((time, batch, num_tags))
    alpha[0] = np.asarray(start, np.float64)[None] + e[:, 0]
    for t in range(1, time):
        alpha[t] = _logsumexp(alpha[t - 1][:, :, None] + trans, 1) + e[:, t]
    # beta[t]: log-sum of the scores after token t, given its label; `end` at each sentence's last token.
    beta = np.broadcast_to(end, (batch, num_tags)).copy()
    post = np.empty((batch, time, num_tags))
    post[:, time - 1] = alpha[time - 1] + beta
    for t in range(time - 2, -1, -1):
        inner = _logsumexp(trans + (e[:, t + 1] + beta)[:, None, :], 2)
        beta = np.where((t + 1 < lengths)[:, None], inner, end[None])
        post[:, t] = alpha[t] + beta
    post -= post.max(axis=-1, keepdims=True)
    prob = np.exp(post)
    prob /= prob.sum(axis=-1, keepdims=True)
    return [prob[b, : lengths[b]].astype(np.float32) for b in range(batch)]


DECODINGS = ("viterbi", "marginal")


def decode_tags(
    emissions: np.ndarray,
    lengths: Sequence[int],
    potentials: tuple[np.ndarray, np.ndarray, np.ndarray] | None,
    mode: str = "viterbi",
) -> list[np.ndarray]:
    """Tag ids per sentence from ``(batch, time, tags)`` scores, the one decoder of every tagger runtime.

    Args:
        emissions: Scores, padded on the right.
        lengths: Real lengths.
        potentials: The CRF's ``(transitions, start, end)`` with constraints
            applied; ``None`` for a softmax head (each token's best score).
        mode: ``viterbi``: the best sequence; ``marginal`` (posterior
            decoding): each token's most probable label, which maximises the
            expected number of correct tokens (the measure of per-token
            labels); Viterbi keeps span tags well formed.
    """
    lengths = np.asarray(lengths)
    if potentials is None:
        best = np.asarray(emissions).argmax(axis=-1)
        return [best[b, : lengths[b]] for b in range(len(lengths))]
    trans, start, end = potentials
    if mode == "viterbi":
        return viterbi_numpy(emissions, lengths, trans, start, end)
    if mode != "marginal":
        raise ValueError(f"unknown CRF decoding {mode!r} (expected one of {', '.join(DECODINGS)})")
    return [p.argmax(axis=-1).astype(np.int64) for p in marginals_numpy(emissions, lengths, trans, start, end)]
