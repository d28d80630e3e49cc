"""Entity-level precision, recall and F1, as conlleval and seqeval compute them.

Entities are read from each sentence's tags with conlleval's chunk rules
(:func:`lstmtext.ner.schemes.spans`), which are also seqeval's default
(non-strict) mode; an entity counts as correct when its type, start and end
all match. Scores are percentages (0-100), as conlleval prints them.
"""

from __future__ import annotations

import collections
from typing import Sequence

from lstmtext.ner.schemes import spans


def _prf(correct: int, predicted: int, gold: int) -> dict[str, float]:
    p = 100.0 * correct / predicted if predicted else 0.0
    r = 100.0 * correct / gold if gold else 0.0
    f = 2 * p * r / (p + r) if p + r else 0.0
    return {"precision": p, "recall": r, "f1": f}


class EntityCounter:
    """Accumulates entity and token counts sentence by sentence (for streaming evaluation)."""

    def __init__(self):
        self.counts: dict[str, list[int]] = collections.defaultdict(lambda: [0, 0, 0])  # correct, pred, gold
        self.tokens = 0
        self.right = 0
        self.sentences = 0

    def update(self, gold: Sequence[str], predicted: Sequence[str]) -> None:
        """Add one sentence's gold and predicted tags."""
        if len(gold) != len(predicted):
            raise ValueError("a predicted sentence differs in length from its gold sentence")
        self.sentences += 1
        self.tokens += len(gold)
        self.right += sum(a == b for a, b in zip(gold, predicted))
        gs, ps = set(spans(gold)), set(spans(predicted))
        for etype, _, _ in gs:
            self.counts[etype][2] += 1
        for etype, _, _ in ps:
            self.counts[etype][1] += 1
        for etype, _, _ in gs & ps:
            self.counts[etype][0] += 1

    def result(self) -> dict:
        """The scores so far; see :func:`entity_scores`."""
        counts = self.counts
        correct = sum(c[0] for c in counts.values())
        npred = sum(c[1] for c in counts.values())
        ngold = sum(c[2] for c in counts.values())
        out: dict = _prf(correct, npred, ngold)
        out["accuracy"] = 100.0 * self.right / self.tokens if self.tokens else 0.0
        out["per_type"] = {t: {**_prf(*counts[t]), "support": counts[t][2]} for t in sorted(counts)}
        out["entities"] = ngold
        out["predicted_entities"] = npred
        out["tokens"] = self.tokens
        out["sentences"] = self.sentences
        return out


def entity_scores(gold: Sequence[Sequence[str]], predicted: Sequence[Sequence[str]]) -> dict:
    """Scores of ``predicted`` tag sequences against ``gold``.

    Args:
        gold: Gold tags per sentence.
        predicted: Predicted tags per sentence (same lengths).

    Returns:
        ``precision``, ``recall``, ``f1`` (0-100), ``accuracy`` (token
        accuracy, 0-100), ``per_type`` (``{type: {precision, recall, f1,
        support}}``), ``entities`` (gold count), ``predicted_entities``,
        ``tokens`` and ``sentences``.
    """
    if len(gold) != len(predicted):
        raise ValueError(f"{len(gold)} gold sentences but {len(predicted)} predicted")
    counter = EntityCounter()
    for g, p in zip(gold, predicted):
        counter.update(g, p)
    return counter.result()
