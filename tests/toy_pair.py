"""A rule-based toy language pair for translation tests.

Source sentences follow ``det [adj] noun verb det [adj] noun`` (English-like
SVO); the target drops determiners, puts adjectives after their noun and the
verb last (SOV), with every word mapped by a fixed dictionary, e.g.::

    the big dog sees a cat  ->  hund gross katze sehen

Run as a script to print ``source<TAB>target`` lines:
``python tests/toy_pair.py 300 > toy.tsv``.
"""

from __future__ import annotations

import random
import sys

NOUNS = {"dog": "hund", "cat": "katze", "bird": "vogel", "man": "mann", "woman": "frau", "child": "kind"}
ADJECTIVES = {"big": "gross", "small": "klein", "old": "alt", "young": "jung", "red": "rot"}
VERBS = {"sees": "sehen", "likes": "mogen", "finds": "finden", "calls": "rufen", "follows": "folgen"}
DETERMINERS = ("the", "a")


def _phrase(rng: random.Random) -> tuple[list[str], list[str]]:
    noun = rng.choice(sorted(NOUNS))
    src, tgt = [rng.choice(DETERMINERS)], [NOUNS[noun]]
    if rng.random() < 0.5:
        adj = rng.choice(sorted(ADJECTIVES))
        src.append(adj)
        tgt.append(ADJECTIVES[adj])
    src.append(noun)
    return src, tgt


def sentence(rng: random.Random) -> tuple[str, str]:
    """One ``(source, target)`` pair."""
    s1, t1 = _phrase(rng)
    verb = rng.choice(sorted(VERBS))
    s2, t2 = _phrase(rng)
    return " ".join(s1 + [verb] + s2), " ".join(t1 + t2 + [VERBS[verb]])


def corpus(n: int, seed: int = 0) -> list[tuple[str, str]]:
    """``n`` distinct pairs, deterministic for a seed."""
    rng = random.Random(seed)
    seen: dict[str, str] = {}
    while len(seen) < n:
        s, t = sentence(rng)
        seen.setdefault(s, t)
    return list(seen.items())


if __name__ == "__main__":
    for s, t in corpus(int(sys.argv[1]) if len(sys.argv) > 1 else 300):
        print(f"{s}\t{t}")
