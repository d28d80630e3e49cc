"""A continuous cache over the language model's recent hidden states (Grave et al. 2017).

Scoring running text, the word to come has often just been seen. The cache
keeps the top LSTM layer's output ``h_i`` at each of the last ``window``
positions, paired with the word that followed it, and puts probability on
those words by how alike the current output is to theirs::

    p_cache(w | t) = sum over i in [t - window, t) with target_i == w of softmax_i(theta * h_t . h_i)
    p(w | t)       = (1 - lam) * p_model(w | t) + lam * p_cache(w | t)

The network is not retrained; ``window``, ``theta`` and ``lam`` are chosen
on held-out text by :func:`tune` (``lstmtext tune-cache``). Merity et al. 2017 (AWD-LSTM)
report their best Penn Treebank figures with this cache. At the first
position of a stream the cache is empty and ``p`` is the model's alone.

:class:`ContinuousCache` scores a stream in blocks of time steps, one cache
per row of a batch; :func:`brute_force_log_probs` is the definition above
written out position by position, for tests. :func:`tune` searches a grid
of settings over :class:`Positions` recorded once from the network.
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

    def cache_probs(self, hidden: np.ndarray, targets: np.ndarray,
                    mask: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """``p_cache`` of ``targets`` for the next ``n`` positions, and where the cache held anything.

        Args:
            hidden: ``(rows, n, units)`` top-layer outputs, the state each target is predicted from.
            targets: ``(rows, n)`` the words that came next.
            mask: ``(rows, n)``, 0 where a position is padding (never cached); default all real.

        Returns:
            ``(p_cache, seen)``, both ``(rows, n)``: float64 probabilities, and
            False where the cache was empty (there ``p_cache`` is 0).
        """
        w, theta = self.settings.window, self.settings.theta
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
        seen = total > 0
        p_cache = np.where(seen, (weights * same).sum(axis=2) / np.maximum(total, 1e-30), 0.0)
        self.keys, self.targets, self.valid = keys[:, -w:], key_targets[:, -w:], key_valid[:, -w:]
        return p_cache.astype(np.float64), seen

    def log_probs(self, hidden: np.ndarray, targets: np.ndarray, model_log_probs: np.ndarray,
                  mask: np.ndarray | None = None) -> np.ndarray:
        """Mixed log-probabilities of ``targets`` for the next ``n`` positions; the cache then holds them.

        ``model_log_probs`` (``(rows, n)``) is the model's log-probability of
        each target; the other arguments are :meth:`cache_probs`'. Returns
        ``(rows, n)`` float64 log-probabilities under the mixture.
        """
        p_cache, seen = self.cache_probs(hidden, targets, mask)
        with np.errstate(divide="ignore"):  # lam = 1 and a word the cache never saw
            return np.log(mix(np.asarray(model_log_probs, np.float64), p_cache, seen, self.settings.lam))


def mix(model_log_probs: np.ndarray, p_cache: np.ndarray, seen: np.ndarray, lam: float) -> np.ndarray:
    """``(1 - lam) p_model + lam p_cache``; the model alone where the cache was empty (``seen`` False)."""
    p_model = np.exp(model_log_probs)
    return np.where(seen, (1.0 - lam) * p_model + lam * p_cache, p_model)


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


# The grid :func:`tune` searches. Grave et al. 2017 and Merity et al. 2017 used windows of 100-2000,
# theta near 0.3 and lambda near 0.1 on word-level PTB and WikiText; a subword model of news
# (models/lm-en-forward on CoNLL-2003 validation text) chose theta 1.0 and lambda 0.25.
WINDOWS = (100, 200, 500, 1000, 2000)
THETAS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.7, 1.0, 1.5, 2.0)
LAMBDAS = (0.05, 0.08, 0.1, 0.12, 0.15, 0.2, 0.25, 0.3)
BLOCK = 256  # positions scored at once


@dataclass
class Positions:
    """What the network gave at every position of ``rows`` streams of ``steps`` positions.

    ``hidden`` ``(rows, steps, units)`` top-layer outputs; ``targets`` the words
    that came next; ``log_probs`` (float64) the model's log-probability of
    each; ``mask`` 0 at padding.
    """

    hidden: np.ndarray
    targets: np.ndarray
    log_probs: np.ndarray
    mask: np.ndarray

    def rows(self, part: slice) -> "Positions":
        return Positions(self.hidden[part], self.targets[part], self.log_probs[part], self.mask[part])


def cache_probs(positions: Positions, window: int, theta: float) -> tuple[np.ndarray, np.ndarray]:
    """:meth:`ContinuousCache.cache_probs` over all of ``positions``, block by block."""
    cache = ContinuousCache(positions.hidden.shape[0], CacheSettings(window=window, theta=theta))
    parts = [cache.cache_probs(positions.hidden[:, t:t + BLOCK], positions.targets[:, t:t + BLOCK],
                               positions.mask[:, t:t + BLOCK]) for t in range(0, positions.hidden.shape[1], BLOCK)]
    return np.concatenate([p for p, _ in parts], axis=1), np.concatenate([s for _, s in parts], axis=1)


def _nll(positions: Positions, lam: float = 0.0, probs=None) -> tuple[float, int]:
    real = positions.mask > 0
    if probs is None or lam == 0.0:
        return float(-positions.log_probs[real].sum()), int(real.sum())
    with np.errstate(divide="ignore"):
        mixed = np.log(mix(positions.log_probs, *probs, lam))
    return float(-mixed[real].sum()), int(real.sum())


def tune(positions: Positions, windows=WINDOWS, thetas=THETAS, lambdas=LAMBDAS) -> dict:
    """The best setting on the first half of the rows, and how it does on the second.

    ``evaluate`` scores a text as rows that are contiguous stretches of it, so
    the first half of the rows is the first half of the text. The setting
    with the lowest perplexity there is then scored on the second half, which
    took no part in choosing it.

    Returns:
        ``settings`` (a :class:`CacheSettings`; window 0 when the best setting
        does not also lower the held-out half's perplexity), ``grid`` (every
        ``(perplexity, window, theta, lam)`` on the tuning half, best first)
        and token perplexities without and with the cache on the ``tuning``
        half, the ``held_out`` half and the ``whole`` text.
    """
    n = positions.hidden.shape[0]
    if n < 2:
        raise ValueError("tuning needs at least two rows (one to tune on, one to check)")
    first, second = positions.rows(slice(0, n // 2)), positions.rows(slice(n // 2, n))
    grid = []
    for window in windows:
        for theta in thetas:
            probs = cache_probs(first, window, theta)
            for lam in lambdas:
                nll, count = _nll(first, lam, probs)
                grid.append((float(np.exp(nll / count)), window, theta, lam))
    grid.sort()
    _, window, theta, lam = grid[0]
    best = CacheSettings(window=window, theta=theta, lam=lam)
    halves = {}
    for name, part, probs in (("tuning", first, cache_probs(first, window, theta)),
                              ("held_out", second, cache_probs(second, window, theta))):
        halves[name] = (_nll(part), _nll(part, lam, probs))
    whole = tuple(tuple(a + b for a, b in zip(halves["tuning"][k], halves["held_out"][k])) for k in range(2))
    halves["whole"] = whole
    report = {name: {"without": float(np.exp(off[0] / off[1])), "with": float(np.exp(on[0] / on[1]))}
              for name, (off, on) in halves.items()}
    helps = report["held_out"]["with"] < report["held_out"]["without"]
    return {"settings": best if helps else CacheSettings(window=0, theta=theta, lam=lam), "best": best,
            "helps": helps, "grid": grid, **report}
