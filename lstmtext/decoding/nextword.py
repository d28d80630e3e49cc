"""Next *word* prediction over a subword vocabulary.

With SentencePiece pieces a word is complete only when the following piece
starts a new word (or the line ends). The probability of a word ``w`` spelled
by pieces ``p1..pn`` is ``P(p1..pn) * P(boundary | p1..pn)``. A beam search over
piece continuations collects complete words until no open hypothesis can still
beat the k-th best word found (extensions only lower a score).
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from lstmtext.tokenizers import BOS_ID, EOS_ID, PAD_ID, UNK_ID, Tokenizer

SPECIALS = np.array([PAD_ID, UNK_ID, BOS_ID, EOS_ID])


class StepModel(Protocol):
    def step(self, ids, state): ...

    @staticmethod
    def select(state, index): ...


def _logsumexp(x: np.ndarray, axis=-1) -> np.ndarray:
    m = np.max(x, axis=axis, keepdims=True)
    m = np.where(np.isfinite(m), m, 0.0)
    return np.squeeze(m, axis) + np.log(np.sum(np.exp(x - m), axis=axis))


def next_words(
    model: StepModel,
    log_probs: np.ndarray,
    state,
    tokenizer: Tokenizer,
    k: int = 5,
    beam: int | None = None,
    max_pieces: int = 8,
) -> list[tuple[str, float]]:
    """The ``k`` most likely next words with their probabilities.

    Args:
        model: Step runtime.
        log_probs: ``(V,)`` distribution of the next piece after the prompt.
        state: The model state after the prompt (batch of one).
        tokenizer: Maps pieces to text and tells word starts.
        k: How many words.
        beam: Open hypotheses kept per step (default ``max(2k, 10)``).
        max_pieces: Longest word, in pieces.
    """
    V = log_probs.shape[-1]
    allowed = np.ones(V, bool)
    allowed[SPECIALS[SPECIALS < V]] = False
    if tokenizer.kind == "word":
        order = np.argsort(-np.where(allowed, log_probs, -np.inf))[:k]
        return [(tokenizer.id_to_piece(int(i)), float(np.exp(log_probs[i]))) for i in order]
    starts = np.array([tokenizer.is_word_start(i) for i in range(V)])
    boundary = starts.copy()
    boundary[EOS_ID] = True
    beam = beam or max(2 * k, 10)
    first = np.where(starts & allowed, log_probs, -np.inf)
    order = np.argsort(-first)[:beam]
    partials = [(float(first[i]), [int(i)], 0) for i in order if np.isfinite(first[i])]
    states = model.select(state, np.zeros(len(partials), np.int64))
    finished: dict[str, float] = {}
    for _ in range(max_pieces):
        if not partials:
            break
        ids = np.array([p[1][-1] for p in partials])
        lp, new_states = model.step(ids, states)
        end = _logsumexp(np.where(boundary, lp, -np.inf))
        candidates = []
        for j, (score, pieces, _) in enumerate(partials):
            text = "".join(tokenizer.piece_text(i) for i in pieces).strip()
            if text:
                total = score + end[j]
                finished[text] = float(np.logaddexp(finished[text], total)) if text in finished else float(total)
            cont = np.where(boundary | ~allowed, -np.inf, lp[j])
            for i in np.argsort(-cont)[:beam]:
                if np.isfinite(cont[i]):
                    candidates.append((score + float(cont[i]), pieces + [int(i)], j))
        bar = sorted(finished.values(), reverse=True)[k - 1] if len(finished) >= k else -np.inf
        candidates = [c for c in candidates if c[0] > bar]
        candidates.sort(key=lambda c: -c[0])
        partials = candidates[:beam]
        if partials:
            states = model.select(new_states, np.array([c[2] for c in partials]))
    best = sorted(finished.items(), key=lambda kv: -kv[1])[:k]
    return [(w, float(np.exp(s))) for w, s in best]
