"""Scores of a tagger: entity-level precision, recall and F1 (as conlleval and seqeval compute them)
for span labels, and accuracy, per-label scores and a confusion table for per-token labels.

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


class LabelCounter:
    """Per-token scores of any label set: accuracy, per-label precision/recall/F1, confusion.

    Positions whose mask is false (unresolved residues) are skipped: they
    count in neither the accuracy nor any table.
    """

    def __init__(self):
        self.confusion: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
        self.tokens = 0
        self.right = 0
        self.sentences = 0
        self.masked = 0

    def update(self, gold: Sequence[str | None], predicted: Sequence[str],
               mask: Sequence[bool] | None = None) -> None:
        """Add one sequence; a ``None`` gold label or a false ``mask`` entry leaves a position out."""
        if len(gold) != len(predicted) or (mask is not None and len(mask) != len(gold)):
            raise ValueError("a predicted sentence differs in length from its gold sentence")
        self.sentences += 1
        for i, (g, p) in enumerate(zip(gold, predicted)):
            if g is None or (mask is not None and not mask[i]):
                self.masked += 1
                continue
            self.tokens += 1
            self.right += g == p
            self.confusion[g][p] += 1

    def result(self) -> dict:
        """``accuracy`` (0-100), ``macro_f1``, ``per_label`` ``{label: {precision, recall, f1,
        support}}``, ``confusion`` ``{gold: {predicted: count}}`` (non-zero cells), ``tokens``
        (scored), ``masked`` (left out) and ``sentences``."""
        labels = sorted(set(self.confusion) | {p for row in self.confusion.values() for p in row})
        predicted = collections.Counter()
        for row in self.confusion.values():
            predicted.update(row)
        per_label = {}
        for label in labels:
            correct = self.confusion[label][label] if label in self.confusion else 0
            gold = sum(self.confusion[label].values()) if label in self.confusion else 0
            per_label[label] = {**_prf(correct, predicted[label], gold), "support": gold}
        scored = [row["f1"] for row in per_label.values() if row["support"]]
        return {
            "accuracy": 100.0 * self.right / self.tokens if self.tokens else 0.0,
            "macro_f1": sum(scored) / len(scored) if scored else 0.0,
            "per_label": per_label,
            "confusion": {g: dict(sorted(self.confusion[g].items())) for g in sorted(self.confusion)},
            "tokens": self.tokens,
            "masked": self.masked,
            "sentences": self.sentences,
        }


def label_scores(gold: Sequence[Sequence[str | None]], predicted: Sequence[Sequence[str]],
                 masks: Sequence[Sequence[bool] | None] | None = None) -> dict:
    """Per-token scores of ``predicted`` labels against ``gold`` (see :class:`LabelCounter`)."""
    if len(gold) != len(predicted):
        raise ValueError(f"{len(gold)} gold sentences but {len(predicted)} predicted")
    counter = LabelCounter()
    for i, (g, p) in enumerate(zip(gold, predicted)):
        counter.update(g, p, masks[i] if masks is not None else None)
    return counter.result()
