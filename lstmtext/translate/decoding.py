"""Greedy and beam search over a small step interface, and the compiled Keras stepper.

Search code only sees a :class:`Stepper`: ``start(sources, copies)`` encodes a
batch and ``step(tokens, parents, state, k)`` reorders the recurrent state by
``parents``, feeds one token per row and returns the ``k`` best
log-probabilities and ids per row. The real stepper (:class:`ModelStepper`)
runs the model's encoder and single decoder step as compiled functions
(``tf.function`` with XLA, or ``jax.jit``) over fixed shapes, keeping the
state on the device; the top-k is taken inside the compiled function, so only
``(rows, k)`` numbers come back per token. Tests drive the same search with a
fake stepper over a tiny vocabulary.

Beam search follows the usual design (GNMT, fairseq): per sentence ``beam``
hypotheses stay alive; an end-of-sentence candidate ranked among the top
``beam`` candidates becomes a finished hypothesis and leaves the beam (so no
score accumulates after it); a sentence is done when it has ``beam`` finished
hypotheses or its length limit is reached (alive hypotheses are then finished
as they are). Hypotheses are ranked by ``log_prob / lp`` with the GNMT length
penalty ``lp = ((5 + length) / 6) ** alpha``; ``length`` counts the
end-of-sentence token when there is one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Iterator, Protocol

import numpy as np

from lstmtext.tokenizers import BOS_ID, EOS_ID, PAD_ID


# Stop a sentence once no alive hypothesis can reach its nbest-th finished
# score (exact; off only in the test that checks it changes no output).
STOP_EARLY = True


class Stepper(Protocol):
    """What the search needs from a model."""

    def start(self, sources: np.ndarray, copies: int) -> Any:
        """Encode ``(N, S)`` source ids; the state has ``N * copies`` rows (row ``n * copies + j``)."""

    def step(self, tokens: np.ndarray, parents: np.ndarray, state: Any, k: int,
             active: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, Any]:
        """Take state rows ``parents``, feed ``tokens``; return top-``k`` ``(log_probs, ids, new_state)``.

        ``active`` (bool per row) marks the rows whose results are used; a
        stepper may skip the others (their values are then ``-inf``).
        """


@dataclass
class Hypothesis:
    """A finished output: ids without specials, its log-probability and ranking score."""

    tokens: list[int]
    log_prob: float
    score: float


def length_penalty(length: int, alpha: float) -> float:
    """GNMT length penalty (Wu et al. 2016): ``((5 + length) / 6) ** alpha``."""
    return ((5.0 + length) / 6.0) ** alpha


def greedy_search(stepper: Stepper, sources: np.ndarray, max_lengths: np.ndarray,
                  alpha: float = 0.0) -> list[Hypothesis]:
    """Pick the most probable token at each step, for every sentence at once.

    Args:
        stepper: The model.
        sources: ``(N, S)`` padded source ids.
        max_lengths: ``(N,)`` most output tokens (end-of-sentence excluded).
        alpha: Length penalty used for the reported score only.
    """
    n = len(sources)
    state = stepper.start(sources, 1)
    tokens = np.full(n, BOS_ID, dtype=np.int32)
    parents = np.arange(n, dtype=np.int32)
    outputs: list[list[int]] = [[] for _ in range(n)]
    log_probs = np.zeros(n)
    ended = np.zeros(n, dtype=bool)  # by end-of-sentence
    done = np.zeros(n, dtype=bool)
    for _ in range(int(max(max_lengths, default=0))):
        scores, ids, state = stepper.step(tokens, parents, state, 1, ~done)
        tok, sc = ids[:, 0].astype(np.int32), scores[:, 0]
        for i in np.flatnonzero(~done):
            log_probs[i] += sc[i]
            if tok[i] == EOS_ID:
                ended[i] = done[i] = True
            else:
                outputs[i].append(int(tok[i]))
                done[i] = len(outputs[i]) >= max_lengths[i]
        if done.all():
            break
        tokens = tok
    return [Hypothesis(outputs[i], float(log_probs[i]),
                       float(log_probs[i] / length_penalty(len(outputs[i]) + int(ended[i]), alpha)))
            for i in range(n)]


def beam_search(stepper: Stepper, sources: np.ndarray, max_lengths: np.ndarray, beam: int,
                alpha: float = 0.6, nbest: int = 1) -> list[list[Hypothesis]]:
    """Beam search for every sentence at once (see the module docstring).

    Returns:
        For each sentence, up to ``nbest`` hypotheses, best first.
    """
    n, k = len(sources), beam
    nbest = max(1, min(nbest, k))
    state = stepper.start(sources, k)
    alive = np.full((n, k), -np.inf)
    alive[:, 0] = 0.0  # all beams start identical: keep only one
    tokens = np.full(n * k, BOS_ID, dtype=np.int32)
    parents = np.arange(n * k, dtype=np.int32)
    hist_tok: list[np.ndarray] = []
    hist_par: list[np.ndarray] = []
    finished: list[list[Hypothesis]] = [[] for _ in range(n)]
    done = np.zeros(n, dtype=bool)
    rows = np.arange(n)[:, None]

    def backtrack(i: int, j: int, t: int) -> list[int]:
        out = []
        for s in range(t, -1, -1):
            out.append(int(hist_tok[s][i, j]))
            j = int(hist_par[s][i, j])
        return out[::-1]

    def finish(i: int, toks: list[int], logp: float, length: int) -> None:
        finished[i].append(Hypothesis(toks, float(logp), float(logp / length_penalty(length, alpha))))

    def cannot_improve(i: int, t: int) -> bool:
        # A log-probability only falls as a hypothesis grows, so an alive
        # one's best possible score is its log-probability over the length
        # penalty at one end of its remaining lengths (t + 2 .. the limit).
        # When that is below the nbest-th finished score for every alive
        # hypothesis, the nbest best are final: stopping changes no output.
        live = alive[i][np.isfinite(alive[i])]
        if not len(live):
            return True
        best = float(live.max())
        bound = max(best / length_penalty(t + 2, alpha), best / length_penalty(int(max_lengths[i]), alpha))
        kept = sorted((h.score for h in finished[i]), reverse=True)[nbest - 1]
        return bound < kept

    for t in range(int(max(max_lengths, default=0))):
        # One extra candidate per row: at most one of a row's candidates is
        # end-of-sentence, so k+1 per row always hold the k best others.
        # Rows of hypotheses alive (at the first step, one per sentence).
        scores, ids, state = stepper.step(tokens, parents, state, k + 1,
                                          np.repeat(~done, k) & np.isfinite(alive).reshape(-1))
        c = scores.shape[1]
        flat = (alive[:, :, None] + scores.reshape(n, k, c)).reshape(n, k * c)
        flat_ids = ids.reshape(n, k * c)
        order = np.argsort(-flat, axis=1, kind="stable")
        s_sorted = np.take_along_axis(flat, order, 1)
        tok_sorted = np.take_along_axis(flat_ids, order, 1)
        par_sorted = order // c
        is_eos = tok_sorted == EOS_ID
        for i in np.flatnonzero(~done):
            for j in np.flatnonzero(is_eos[i, :k] & np.isfinite(s_sorted[i, :k])):
                prefix = backtrack(i, int(par_sorted[i, j]), t - 1) if t > 0 else []
                finish(i, prefix, s_sorted[i, j], t + 1)
        pick = np.argsort(is_eos, axis=1, kind="stable")[:, :k]  # best k that are not end-of-sentence
        alive = np.take_along_axis(s_sorted, pick, 1)
        alive[np.take_along_axis(is_eos, pick, 1)] = -np.inf  # too few candidates (tiny vocabularies)
        new_tok = np.take_along_axis(tok_sorted, pick, 1).astype(np.int32)
        hist_tok.append(new_tok)
        hist_par.append(np.take_along_axis(par_sorted, pick, 1))
        for i in np.flatnonzero(~done):
            if len(finished[i]) >= k:
                done[i] = True
            elif t + 1 >= max_lengths[i]:
                for j in np.flatnonzero(np.isfinite(alive[i])):
                    finish(i, backtrack(i, int(j), t), alive[i, j], t + 1)
                done[i] = True
            elif STOP_EARLY and len(finished[i]) >= nbest and cannot_improve(i, t):
                done[i] = True
        if done.all():
            break
        tokens = new_tok.reshape(-1)
        parents = (rows * k + hist_par[-1]).reshape(-1).astype(np.int32)
    results = []
    for i in range(n):
        hyps = sorted(finished[i], key=lambda h: -h.score)[:nbest]
        results.append(hyps or [Hypothesis([], 0.0, 0.0)])
    return results


def compile_function(fn, variables: list, jit: bool = True):
    """Compile ``fn`` for the active Keras backend.

    TensorFlow: a ``tf.function`` (XLA when ``jit``) reading the variables'
    current values. JAX: ``jax.jit`` of a stateless version that takes the
    variables' values as arguments, so the compiled function always sees the
    latest weights (training updates them between validation passes).
    """
    import keras

    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        return tf.function(fn, jit_compile=jit)
    if backend == "jax":
        import jax

        def pure(values, *args):
            with keras.StatelessScope(state_mapping=list(zip(variables, values))):
                return fn(*args)

        jitted = jax.jit(pure)
        return lambda *args: jitted([v.value for v in variables], *args)
    return fn


class ModelStepper:
    """A :class:`Stepper` over a translator's encoder and decoder-step models.

    Args:
        encoder: ``source_ids -> [memory, source_mask, *states]``.
        step: ``[prev_token, memory, source_mask, *states] -> [log_probs, *states, attention]``.
        jit: Compile with XLA.
    """

    fixed_shapes = True  # a new shape would recompile: see translate_ids

    def __init__(self, encoder, step, jit: bool = True):
        self.encoder, self.step_model, self.jit = encoder, step, jit
        self._encoders: dict[int, Any] = {}
        self._steps: dict[int, Any] = {}

    def _compiled_encoder(self, copies: int):
        if copies not in self._encoders:
            from keras import ops

            def encode(source):
                memory, mask, *states = self.encoder(source, training=False)
                out = (memory, mask, *states)
                if copies > 1:
                    out = tuple(ops.repeat(x, copies, axis=0) for x in out)
                return out

            self._encoders[copies] = compile_function(encode, self.encoder.weights, self.jit)
        return self._encoders[copies]

    def _compiled_step(self, k: int):
        if k not in self._steps:
            from keras import ops

            def step(tokens, parents, memory, mask, *states):
                # Rows keep their sentence, so memory and mask never move;
                # only the recurrent states follow the surviving hypotheses.
                states = [ops.take(s, parents, axis=0) for s in states]
                log_probs, *rest = self.step_model([tokens, memory, mask, *states], training=False)
                values, ids = ops.top_k(log_probs, min(k, log_probs.shape[-1]))
                return values, ids, tuple(rest[:-1])

            self._steps[k] = compile_function(step, self.step_model.weights, self.jit)
        return self._steps[k]

    def start(self, sources: np.ndarray, copies: int):
        memory, mask, *states = self._compiled_encoder(copies)(np.asarray(sources, dtype=np.int32))
        return memory, mask, tuple(states)

    def step(self, tokens, parents, state, k, active=None):
        # Fixed shapes: every row is computed (a new shape would recompile).
        memory, mask, states = state
        values, ids, states = self._compiled_step(k)(
            np.asarray(tokens, np.int32), np.asarray(parents, np.int32), memory, mask, *states)
        return np.asarray(values), np.asarray(ids), (memory, mask, states)


def translate_ids(stepper: Stepper, sources: list[list[int]], beam: int = 5, alpha: float = 0.6,
                  max_ratio: float = 2.0, max_extra: int = 10, batch_size: int = 64, pad_multiple: int = 16,
                  nbest: int = 1, max_output: int = 1024) -> Iterator[list[Hypothesis]]:
    """Translate source id lists, yielding results in input order.

    Sentences are sorted by length and decoded ``batch_size`` at a time. For
    a stepper with ``fixed_shapes`` (compiled functions) batches are completed
    with one-token dummy rows and lengths padded to ``pad_multiple``, so it
    sees few distinct shapes; other steppers get only the real sentences,
    padded to the longest of them. A stepper with ``parallel_batches`` (the
    NumPy runtime) decodes several batches at once, a thread each, when there
    are enough of them to keep the threads busy; its steps are then not split
    again.
    """
    from lstmtext.decoding import parallel

    fixed = getattr(stepper, "fixed_shapes", False)
    order = sorted(range(len(sources)), key=lambda i: len(sources[i]))
    # Longest first: on threads, the shortest batches even out the end.
    batches = [order[start: start + batch_size] for start in range(0, len(order), batch_size)][::-1]

    def run(b: int) -> list[list[Hypothesis]]:
        idx = batches[b]
        rows = [sources[i] for i in idx]
        longest = max(1, max(len(r) for r in rows))
        if fixed:
            rows += [[EOS_ID]] * (batch_size - len(idx))
            longest = max(pad_multiple, -(-longest // pad_multiple) * pad_multiple)
        src = np.full((len(rows), longest), PAD_ID, dtype=np.int32)
        for r, ids in enumerate(rows):
            src[r, : len(ids)] = ids
        limits = np.array([min(max_output, max(1, int(math.floor(max_ratio * len(r) + max_extra)))) for r in rows])
        limits[len(idx):] = 1  # dummy rows stop at once
        if beam <= 1:
            return [[h] for h in greedy_search(stepper, src, limits, alpha)]
        return beam_search(stepper, src, limits, beam, alpha, nbest)

    threads = parallel.workers(len(batches), 1) if getattr(stepper, "parallel_batches", False) else 1
    results: dict[int, list[Hypothesis]] = {}
    for idx, hyps in zip(batches, parallel.map_in_threads(run, len(batches), threads)):
        results.update(zip(idx, hyps))
    for i in range(len(sources)):
        yield results.pop(i)
