"""A numpy runtime for stacked-LSTM language models.

Loading a bundle's weights with h5py and stepping them in numpy avoids the
seconds that importing TensorFlow costs, which dominates the latency of a
one-prompt ``predict`` or ``generate``. The maths mirror ``keras.layers.LSTM``
(gate order i, f, c, o; sigmoid recurrent activation; tanh activation), and a
test checks agreement with the Keras network.
"""

from __future__ import annotations

import numpy as np

from lstmtext.decoding import parallel
from lstmtext.decoding.memory import keep_freed_memory
from lstmtext.errors import BundleError


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (np.tanh(0.5 * x) + 1.0)  # overflow-free form


def _cell(z: np.ndarray, c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A Keras LSTM cell's ``(h, c)`` from its pre-activations ``z`` (gates i, f, c, o) and the previous cell."""
    i, f, g, o = np.split(z, 4, axis=-1)
    c = _sigmoid(f) * c + _sigmoid(i) * np.tanh(g)
    return _sigmoid(o) * np.tanh(c), c


def fused_gates(kernel: np.ndarray, recurrent: np.ndarray, bias: np.ndarray):
    """A Keras LSTM's weights arranged so that one ``exp`` gives all four gate activations.

    Gates are reordered to (i, f, o, c), the sigmoid gates' columns negated
    and the cell gate's multiplied by -2 (both exact in floating point), so
    that for the pre-activations ``z`` of these weights ``r = 1 / (1 +
    exp(z))`` is ``sigmoid`` of the i, f, o gates and ``2 r - 1`` is ``tanh``
    of the cell gate. NumPy's float32 ``exp`` costs about half its ``tanh``,
    and the activations agree with Keras' to float32 rounding.
    """
    H = recurrent.shape[0]
    order = np.r_[0: 2 * H, 3 * H: 4 * H, 2 * H: 3 * H]
    scale = np.full(4 * H, -1.0, np.float32)
    scale[3 * H:] = -2.0
    return ((np.asarray(kernel, np.float32)[:, order] * scale), (np.asarray(recurrent, np.float32)[:, order] * scale),
            (np.asarray(bias, np.float32)[order] * scale))


def lstm_sequences(x: np.ndarray, lengths: np.ndarray, kernel: np.ndarray, recurrent: np.ndarray,
                   bias: np.ndarray, reverse: bool = False, padding: str | None = "carry",
                   fused: bool = False, threads: int | None = None, table: np.ndarray | None = None):
    """A masked Keras LSTM over right-padded sequences: ``(outputs, h, c)``.

    Padded steps leave the state unchanged, as Keras' masking does (the
    reverse direction starts at each sequence's own last token). Only live
    rows are computed: the rows are sorted by length, so at every step the
    sequences still running are a prefix and padding costs nothing, and
    all input projections are one product over the real tokens. Large
    batches are split across threads (interleaved in length order, so each
    gets an equal share of every length), each with one BLAS thread: the
    per-step products are small, and NumPy releases the GIL inside them.

    Args:
        x: ``(B, T, D)`` inputs, or ``(B, T)`` integer ids with ``table``.
        lengths: ``(B,)`` real lengths.
        kernel, recurrent, bias: Keras LSTM cell weights (gates i, f, c, o),
            or, with ``fused``, the output of :func:`fused_gates`.
        reverse: Run right to left.
        padding: Outputs at padded steps: ``"carry"`` (the state, unchanged
            since the last real step, as Keras returns), ``"zero"``, or None
            for no output sequence at all.
        threads: Worker threads (default: :func:`lstmtext.decoding.parallel.workers`).
        table: ``(V, 4H)`` input projections by id, bias included, in
            :func:`fused_gates` order (an :class:`InputTable`'s rows): the
            inputs ``x`` are ids, ``kernel`` and ``bias`` are not used and
            ``fused`` must be set. An LSTM over an embedding layer then
            costs no input product per token.

    Returns:
        ``(outputs (B, T, H) or None, h (B, H), c (B, H))``.
    """
    if not fused:
        if table is not None:
            raise ValueError("an input table is in fused gate order: give fused weights (fused=True)")
        kernel, recurrent, bias = fused_gates(kernel, recurrent, bias)
    B, T = x.shape[:2]
    H = recurrent.shape[0]
    lengths = np.minimum(np.asarray(lengths, np.int64).reshape(B), T)
    order = np.argsort(-lengths, kind="stable")
    out = np.zeros((B, T, H), np.float32) if padding is not None else None
    h = np.zeros((B, H), np.float32)
    c = np.zeros((B, H), np.float32)

    def run(rows: np.ndarray) -> None:
        o, hh, cc = _lstm_sorted(x[rows], lengths[rows], kernel, recurrent, bias, reverse, out is not None, table)
        if out is not None:
            out[rows] = o
        h[rows], c[rows] = hh, cc

    n = parallel.workers(B) if threads is None else max(1, min(int(threads), B))
    parallel.run_parallel(run, parallel.interleaved(order, n))
    if out is not None and padding == "carry" and not reverse:
        pad = np.arange(T)[None, :] >= lengths[:, None]
        if pad.any():
            out[pad] = np.broadcast_to(h[:, None, :], out.shape)[pad]
    return out, h, c


def _lstm_sorted(x, lengths, kernel, recurrent, bias, reverse, sequences, table=None):
    """:func:`lstm_sequences` for rows sorted by decreasing length (fused weights); zeros at padding."""
    B, T = x.shape[:2]
    H = recurrent.shape[0]
    live = np.searchsorted(-lengths, -np.arange(T), side="left")  # rows running at step t: a prefix
    # Time-major order of the real tokens: step t's rows are live[t] consecutive rows.
    mask = np.arange(T)[:, None] < lengths[None, :]
    if table is not None:
        proj = table[x.T[mask]]
    else:
        proj = x.transpose(1, 0, 2)[mask] @ kernel
        proj += bias
    offsets = np.concatenate([[0], np.cumsum(live)])
    out = np.zeros((T, B, H), np.float32) if sequences else None
    h = np.zeros((B, H), np.float32)
    c = np.zeros((B, H), np.float32)
    z = np.empty((B, 4 * H), np.float32)
    tmp = np.empty((B, H), np.float32)
    with np.errstate(over="ignore"):  # exp(z) = inf is the activation's limit (0, or -1 for tanh)
        for t in (range(T - 1, -1, -1) if reverse else range(T)):
            n = int(live[t])
            if n == 0:
                continue
            zn, hn = z[:n], h[:n]
            np.matmul(hn, recurrent, out=zn)
            zn += proj[offsets[t]: offsets[t] + n]
            fused_cell(zn, c[:n], hn, tmp[:n])
            if out is not None:
                out[t, :n] = hn
    return (out.transpose(1, 0, 2) if out is not None else None), h, c


class InputTable:
    """The input projections of an LSTM over an embedding layer, by id, each computed once when first needed.

    Row ``k`` is ``embeddings[k] @ kernel + bias`` in :func:`fused_gates`
    order, for :func:`lstm_sequences`' ``table``: over many batches a
    vocabulary's few thousand rows replace one product per token.
    """

    def __init__(self, embeddings: np.ndarray, kernel: np.ndarray, bias: np.ndarray):
        self.embeddings = embeddings
        self.kernel, self.bias = kernel, bias  # fused
        self.rows = np.zeros((embeddings.shape[0], kernel.shape[1]), np.float32)
        self.ready = np.zeros(embeddings.shape[0], bool)

    def __call__(self, ids: np.ndarray) -> np.ndarray:
        """The table, with the rows of ``ids`` filled in."""
        need = np.unique(ids)
        missing = need[~self.ready[need]]
        if missing.size:
            self.rows[missing] = self.embeddings[missing] @ self.kernel + self.bias
            self.ready[missing] = True
        return self.rows


def fused_cell(z: np.ndarray, c: np.ndarray, h: np.ndarray, tmp: np.ndarray) -> None:
    """One LSTM step in place from pre-activations ``z`` of :func:`fused_gates` weights.

    Overwrites ``z``, updates the cell ``c`` and writes the output to ``h``
    (``tmp`` is scratch of ``h``'s shape). Call under ``np.errstate(over="ignore")``:
    ``exp`` may overflow to ``inf``, whose activation is the exact limit.
    """
    H = c.shape[1]
    np.exp(z, out=z)
    z += 1.0
    np.reciprocal(z, out=z)                       # i, f, o: sigmoid; last H: (tanh(g) + 1) / 2
    i, f, o, r = z[:, :H], z[:, H: 2 * H], z[:, 2 * H: 3 * H], z[:, 3 * H:]
    np.multiply(i, r, out=tmp)                    # i * tanh(g) = 2 i r - i
    tmp *= 2.0
    tmp -= i
    c *= f
    c += tmp
    np.tanh(c, out=tmp)
    np.multiply(o, tmp, out=h)


def log_softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise log-softmax in float64 for stable small probabilities."""
    z = logits.astype(np.float64)
    z -= z.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


class StepLanguageModel:
    """What the next-word search and sampling drive: one step over explicit states.

    Subclasses provide ``units`` (per layer), ``vocab_size`` and ``step``;
    the state is a list of ``(h, c)`` pairs, one per layer.
    """

    units: list[int]
    vocab_size: int

    def step(self, ids, state):
        """``(log_probs (B, V), new_state)`` after feeding ``ids`` (B,)."""
        raise NotImplementedError

    def advance(self, ids, state):
        """The state after feeding ``ids`` (no distribution needed)."""
        return self.step(ids, state)[1]

    def initial_state(self, batch: int = 1) -> list[tuple[np.ndarray, np.ndarray]]:
        """Zero states for ``batch`` sequences."""
        return [(np.zeros((batch, u), np.float32), np.zeros((batch, u), np.float32)) for u in self.units]

    def feed(self, ids: list[int], state=None):
        """Run a prompt (one sequence, at least one id) once.

        Returns:
            ``(log_probs (1, V), state)`` after the last id. Later tokens step
            from this state, so generation never re-runs the prefix.
        """
        state = state or self.initial_state(1)
        for i in ids[:-1]:
            state = self.advance(np.asarray([i]), state)
        return self.step(np.asarray([ids[-1]]), state)

    @staticmethod
    def select(state, index) -> list[tuple[np.ndarray, np.ndarray]]:
        """Rows ``index`` of every state array (beam reordering)."""
        return [(h[index], c[index]) for h, c in state]


def embedded_lstm_weights(arrays: dict[str, np.ndarray], num_layers: int):
    """A language model's embedding matrix and its LSTM layers' ``(kernel, recurrent, bias)``, by variable path.

    Raises:
        BundleError: a variable is missing.
    """
    try:
        return arrays["embedding/embeddings"], [
            (arrays[f"lstm_{i}/lstm_cell/kernel"], arrays[f"lstm_{i}/lstm_cell/recurrent_kernel"],
             arrays[f"lstm_{i}/lstm_cell/bias"])
            for i in range(num_layers)]
    except KeyError as exc:
        raise BundleError(f"weights lack variable {exc}") from None


class NumpyLSTMLanguageModel(StepLanguageModel):
    """Step a trained language model with explicit ``(h, c)`` states.

    Args:
        arrays: Weights by variable path (see :mod:`lstmtext.weights`).
        num_layers: Stacked LSTM layers.
        tie_weights: Whether the output projection is the embedding matrix.
    """

    def __init__(self, arrays: dict[str, np.ndarray], num_layers: int, tie_weights: bool):
        keep_freed_memory()
        self.embeddings, self.cells = embedded_lstm_weights(arrays, num_layers)
        try:
            if tie_weights:
                self.out_w = np.ascontiguousarray(self.embeddings.T)
                self.out_b = arrays["embedding/output_bias"]
            else:
                self.out_w, self.out_b = arrays["output/kernel"], arrays["output/bias"]
        except KeyError as exc:
            raise BundleError(f"weights lack variable {exc}") from None
        self.units = [u.shape[0] for _, u, _ in self.cells]
        self.vocab_size = self.out_w.shape[1]

    def hidden(self, ids: np.ndarray, state):
        """Advance one step; return the top layer's output and the new state."""
        x = self.embeddings[ids]
        new_state = []
        for (w, u, b), (h, c) in zip(self.cells, state):
            h, c = _cell(x @ w + h @ u + b, c)
            new_state.append((h, c))
            x = h
        return x, new_state

    def step(self, ids, state):
        """``(log_probs (B, V), new_state)`` after feeding ``ids`` (B,)."""
        h, state = self.hidden(np.asarray(ids, np.int64), state)
        return log_softmax(h @ self.out_w + self.out_b), state

    def advance(self, ids, state):
        return self.hidden(np.asarray(ids, np.int64), state)[1]

    def score_block(self, ids: np.ndarray, targets: np.ndarray, state, chunk: int = 1024):
        """``n`` steps of ``B`` streams at once, for scoring: what ``n`` calls of :meth:`step` give, reduced.

        Each layer's input products for all ``n`` steps are one product, and so
        is the vocabulary layer over every position (in chunks of ``chunk``
        rows); only the recurrent products go step by step.

        Args:
            ids: ``(B, n)`` inputs.
            targets: ``(B, n)`` the id whose log-probability is wanted at each position.
            state: The state before the first step.

        Returns:
            ``(log_probs (B, n) float64 of targets, top-layer outputs (B, n, H), state after the last step)``.
        """
        ids = np.asarray(ids, np.int64)
        B, n = ids.shape
        x = self.embeddings[ids]
        new_state = []
        for (w, u, b), (h, c) in zip(self.cells, state):
            proj = (x.reshape(B * n, -1) @ w + b).reshape(B, n, -1)
            out = np.empty((B, n, u.shape[0]), np.float32)
            for t in range(n):
                h, c = _cell(proj[:, t] + h @ u, c)
                out[:, t] = h
            new_state.append((h, c))
            x = out
        flat, want = x.reshape(B * n, -1), np.asarray(targets, np.int64).reshape(-1)
        picked = np.empty(B * n, np.float64)
        for r0 in range(0, B * n, chunk):
            logits = flat[r0: r0 + chunk] @ self.out_w + self.out_b
            rows = np.arange(len(logits))
            peak = logits.max(axis=1, keepdims=True)
            logits -= peak
            # As log_softmax: the normaliser summed in float64.
            norm = np.log(np.exp(logits).sum(axis=1, dtype=np.float64))
            picked[r0: r0 + chunk] = logits[rows, want[r0: r0 + chunk]].astype(np.float64) - norm
        return picked.reshape(B, n), x, new_state
