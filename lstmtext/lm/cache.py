"""A continuous cache over the language model's recent hidden states (Grave et al. 2017).

Scoring running text, the word to come has often just been seen. The cache
keeps the top LSTM layer's output ``h_i`` at each of the last ``window``
positions, paired with the word that followed it, and puts probability on
those words by how alike the current output is to theirs::

    p_cache(w | t) = sum over i in [t - window, t) with target_i == w of softmax_i(theta * h_t . h_i)
    p(w | t)       = (1 - lam) * p_model(w | t) + lam * p_cache(w | t)

The network is not retrained; ``window``, ``theta`` and ``lam`` are chosen
on held-out text (``benchmarks/lm_cache.py``). Merity et al. 2017 (AWD-LSTM)
report their best Penn Treebank figures with this cache. At the first
position of a stream the cache is empty and ``p`` is the model's alone.

:class:`ContinuousCache` scores a stream in blocks of time steps, one cache
per row of a batch; :func:`brute_force_log_probs` is the definition above
written out position by position, for tests.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class CacheSettings:
    """``window`` positions (0: no cache), similarity scale ``theta``, interpolation weight ``lam``."""

    window: int = 0
    theta: float = 0.3
    lam: float = 0.1

    @property
    def on(self) -> bool:
        return self.window > 0


class ContinuousCache:
    """The cache of ``rows`` independent streams, fed block by block.

    Args:
        rows: Streams scored side by side (the rows of a batch).
        settings: Window, theta and lambda (``settings.window`` > 0).
    """

    def __init__(self, rows: int, settings: CacheSettings):
        if settings.window <= 0 or not 0.0 <= settings.lam <= 1.0:
            raise ValueError("the cache needs window > 0 and 0 <= lam <= 1")
        self.rows, self.settings = rows, settings
        self.keys: np.ndarray | None = None          # (rows, k, units): the last k <= window outputs
        self.targets = np.zeros((rows, 0), np.int64)  # (rows, k): the word that followed each
        self.valid = np.zeros((rows, 0), bool)        # (rows, k): False for padding

    def log_probs(self, hidden: np.ndarray, targets: np.ndarray, model_log_probs: np.ndarray,
                  mask: np.ndarray | None = None) -> np.ndarray:
        """Mixed log-probabilities of ``targets`` for the next ``n`` positions; the cache then holds them.

        Args:
            hidden: ``(rows, n, units)`` top-layer outputs, the state each target is predicted from.
            targets: ``(rows, n)`` the words that came next.
            model_log_probs: ``(rows, n)`` the model's log-probability of each target.
            mask: ``(rows, n)``, 0 where a position is padding (never cached); default all real.

        Returns:
            ``(rows, n)`` float64 log-probabilities under the mixture.
        """
        w, theta, lam = self.settings.window, self.settings.theta, self.settings.lam
        hidden = np.asarray(hidden, np.float32)
        rows, n, _ = hidden.shape
        targets = np.asarray(targets, np.int64)
        real = np.ones((rows, n), bool) if mask is None else np.asarray(mask) > 0
        keys = hidden if self.keys is None else np.concatenate([self.keys, hidden], axis=1)
        key_targets = np.concatenate([self.targets, targets], axis=1)
        key_valid = np.concatenate([self.valid, real], axis=1)
        k0 = keys.shape[1] - n  # positions already cached before this block
        scores = theta * np.matmul(hidden, keys.transpose(0, 2, 1))  # (rows, n, k0 + n)
        t = k0 + np.arange(n)[:, None]
        i = np.arange(keys.shape[1])[None, :]
        allowed = (i < t) & (i >= t - w)                             # (n, k0 + n): strictly earlier, in the window
        allowed = allowed[None] & key_valid[:, None, :]
        scores = np.where(allowed, scores, -np.inf)
        top = scores.max(axis=2, keepdims=True)
        top = np.where(np.isfinite(top), top, 0.0)
        weights = np.exp(scores - top)
        total = weights.sum(axis=2)
        same = key_targets[:, None, :] == targets[:, :, None]
        p_cache = np.where(total > 0, (weights * same).sum(axis=2) / np.maximum(total, 1e-30), 0.0)
        p_model = np.exp(np.asarray(model_log_probs, np.float64))
        # With nothing cached yet, the mixture is the model alone (not (1 - lam) of it).
        mixed = np.where(total > 0, (1.0 - lam) * p_model + lam * p_cache, p_model)
        self.keys, self.targets, self.valid = keys[:, -w:], key_targets[:, -w:], key_valid[:, -w:]
        with np.errstate(divide="ignore"):
            return np.log(mixed)


def brute_force_log_probs(hidden: np.ndarray, targets: np.ndarray, model_log_probs: np.ndarray,
                          settings: CacheSettings) -> np.ndarray:
    """The module docstring's formula, one position of one stream at a time (``(T, units)`` in)."""
    out = np.zeros(len(targets))
    for t in range(len(targets)):
        p = float(np.exp(model_log_probs[t]))
        lo = max(0, t - settings.window)
        if t > lo:
            s = settings.theta * np.array([float(np.dot(hidden[t], hidden[i])) for i in range(lo, t)])
            a = np.exp(s - s.max())
            a /= a.sum()
            p_cache = sum(a[j] for j, i in enumerate(range(lo, t)) if targets[i] == targets[t])
            p = (1 - settings.lam) * p + settings.lam * p_cache
        out[t] = np.log(p)
    return out
