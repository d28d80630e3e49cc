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
    counts: dict[str, list[int]] = collections.defaultdict(lambda: [0, 0, 0])  # correct, pred, gold
    tokens = right = 0
    for g, p in zip(gold, predicted):
        if len(g) != len(p):
            raise ValueError("a predicted sentence differs in length from its gold sentence")
        tokens += len(g)
        right += sum(a == b for a, b in zip(g, p))
        gs, ps = set(spans(g)), set(spans(p))
        for etype, _, _ in gs:
            counts[etype][2] += 1
        for etype, _, _ in ps:
            counts[etype][1] += 1
        for etype, _, _ in gs & ps:
            counts[etype][0] += 1
    correct = sum(c[0] for c in counts.values())
    npred = sum(c[1] for c in counts.values())
    ngold = sum(c[2] for c in counts.values())
    out: dict = _prf(correct, npred, ngold)
    out["accuracy"] = 100.0 * right / tokens if tokens else 0.0
    out["per_type"] = {
        t: {**_prf(*counts[t]), "support": counts[t][2]} for t in sorted(counts)
    }
    out["entities"] = ngold
    out["predicted_entities"] = npred
    out["tokens"] = tokens
    out["sentences"] = len(gold)
    return out
