"""Sampling the next id from log-probabilities: temperature, top-k, top-p."""

from __future__ import annotations

import numpy as np


def sample(
    log_probs: np.ndarray,
    rng: np.random.Generator,
    temperature: float = 1.0,
    top_k: int = 0,
    top_p: float = 1.0,
    banned: np.ndarray | None = None,
) -> int:
    """Draw one id from a ``(V,)`` log-probability vector.

    Args:
        log_probs: Log-probabilities of the next id.
        rng: Source of randomness (seeded by the caller for reproducibility).
        temperature: Divides the log-probabilities; 0 picks the most likely id.
        top_k: Keep only the ``top_k`` most likely ids (0: all).
        top_p: Keep the smallest set of ids whose probability reaches ``top_p``
            (nucleus sampling, Holtzman et al. 2020).
        banned: Ids never to draw (e.g. padding).
    """
    z = np.array(log_probs, dtype=np.float64)
    if banned is not None:
        z[banned] = -np.inf
    if temperature <= 0:
        return int(np.argmax(z))
    z = z / temperature
    if top_k and top_k < z.size:
        kth = np.partition(z, -top_k)[-top_k]
        z[z < kth] = -np.inf
    z -= z.max()
    p = np.exp(z)
    p /= p.sum()
    if top_p < 1.0:
        order = np.argsort(-p)
        cum = np.cumsum(p[order])
        keep = order[: int(np.searchsorted(cum, top_p)) + 1]
        mask = np.zeros_like(p)
        mask[keep] = p[keep]
        p = mask / mask.sum()
    return int(rng.choice(p.size, p=p))
