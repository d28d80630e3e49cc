"""The validation share held out of the training data when no ``--valid`` is given.

One rule for the three tasks; the items are a language model's non-blank
lines, a tagger's sentences or a translator's sentence pairs:

- :data:`SHARE` (10%) of the items are held out, rounded, at least one and at
  most :data:`MAX_ITEMS` (2,000: validation time stays bounded on large files);
- the items held out are those whose 0-based position has the smallest
  splitmix64 hash (ties cannot occur: the hash is a bijection), so the split
  depends only on the number of items, never on ``--seed``, the number of
  processes or the machine, and the same file always gives the same split;
- the other items are trained on, in their original order (a language
  model's stream keeps its line order);
- a file of fewer than :data:`MIN_ITEMS` items is refused: hold-out would
  leave too little on either side to be worth anything.

The bundle records the split (:func:`describe`) in ``config.json``'s data
summary. Importing this module is cheap (NumPy only).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from lstmtext.errors import DataError

SHARE = 0.1
MAX_ITEMS = 2000
MIN_ITEMS = 10
RULE = (f"{SHARE:.0%} of the {{unit}} (at least 1, at most {MAX_ITEMS}) whose 0-based index has the "
        "smallest splitmix64 hash; the rest trained on, in order")


def _splitmix64(x: np.ndarray) -> np.ndarray:
    """The splitmix64 finaliser (a bijection of 64-bit integers), vectorised."""
    z = x.astype(np.uint64) + np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def held_out_count(n: int) -> int:
    """How many of ``n`` items the rule holds out."""
    return max(1, min(MAX_ITEMS, round(n * SHARE)))


def split(n: int, path: str | Path | None = None, unit: str = "lines") -> tuple[list[int], list[int]]:
    """Indices ``(train, held_out)`` of ``n`` items, each in increasing order.

    Args:
        n: Number of items.
        path: The training file, named in the error.
        unit: What an item is (``lines``, ``sentences``, ``pairs``), for the error.

    Raises:
        DataError: fewer than :data:`MIN_ITEMS` items.
    """
    if n < MIN_ITEMS:
        counted = f"{n} {unit[:-1] if n == 1 and unit.endswith('s') else unit}"
        raise DataError(f"only {counted}: too few to hold out validation data (need at least {MIN_ITEMS}); "
                        "give --valid or more training data", path)
    k = held_out_count(n)
    with np.errstate(over="ignore"):  # the hash multiplies modulo 2**64 on purpose
        hashes = _splitmix64(np.arange(n, dtype=np.uint64))
    # The k smallest hashes; no ties (a bijection), so the choice is unique.
    valid = np.sort(np.argpartition(hashes, k - 1)[:k]) if k < n else np.arange(n)
    mask = np.ones(n, bool)
    mask[valid] = False
    return np.flatnonzero(mask).tolist(), valid.tolist()


def describe(path: str | Path | list, n: int, held_out: int, unit: str) -> dict:
    """The split's record for the bundle's data summary."""
    return {"from": str(path) if not isinstance(path, list) else [str(p) for p in path],
            "held_out": held_out, "of": n, "unit": unit, "rule": RULE.format(unit=unit)}


def take(items: list, path: str | Path | list, unit: str, counts=None) -> tuple[list, list, dict]:
    """Split ``items`` by the rule: ``(train items, held-out items, record for the bundle)``.

    Args:
        items: The training items, in file order.
        path: The training file(s), for the error and the record.
        unit: What an item is (``lines``, ``sentences``, ``pairs``).
        counts: Whether an item may be held out (default: all); the others
            (a language model's blank lines) always stay in training, in place.
    """
    eligible = [i for i, item in enumerate(items) if counts is None or counts(item)]
    _, held = split(len(eligible), path if not isinstance(path, list) else path[0], unit)
    chosen = {eligible[i] for i in held}
    train = [item for i, item in enumerate(items) if i not in chosen]
    valid = [items[i] for i in sorted(chosen)]
    return train, valid, describe(path, len(eligible), len(valid), unit)
