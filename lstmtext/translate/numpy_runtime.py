"""A numpy runtime for translators: encoder and decoder step over the stored weights.

``predict`` and ``evaluate`` use it by default: it needs neither TensorFlow
nor JAX (whose import and per-shape compilation take longer than decoding a
small file), and it computes only the rows of sentences still being decoded.
The maths mirror :mod:`lstmtext.translate.network` (Keras LSTM gate order
i, f, c, o; masked bidirectional encoder; Luong or Bahdanau attention with
input feeding); a test checks agreement with the compiled Keras stepper.
"""

from __future__ import annotations

import contextlib
import threading

import numpy as np

from lstmtext.decoding import parallel
from lstmtext.decoding.lstm_numpy import fused_cell, fused_gates, lstm_sequences
from lstmtext.decoding.memory import keep_freed_memory
from lstmtext.errors import BundleError


def limit_blas_threads() -> None:
    """Use one BLAS thread unless the user chose a number (``OMP_NUM_THREADS``/``OPENBLAS_NUM_THREADS``).

    The decoder's matrices are small, and OpenBLAS threads spin-wait: on a
    2-core machine shared with other jobs, two threads decoded 10x slower
    than one (18.6 s against 1.9 s of CPU for 64 sentences). Cores are used
    by splitting a batch's sentences over threads instead
    (:mod:`lstmtext.decoding.parallel`). Needs the optional
    ``threadpoolctl``; without it the library default stays.
    """
    if parallel.user_chose_threads():
        return
    with contextlib.suppress(ImportError):
        from threadpoolctl import threadpool_limits

        threadpool_limits(limits=1, user_api="blas")


def top_k_ids(x: np.ndarray, k: int, groups: int = 16) -> tuple[np.ndarray, np.ndarray]:
    """Column ids of the ``k`` largest values of each row of ``x`` (in no particular order), and each row's maximum.

    Columns fall into ``V // groups`` classes of ``groups`` columns each
    (column ``g * classes + j`` is in class ``j``; the last ``V % groups``
    columns are candidates always). The ``k`` largest of a row lie in the
    ``k`` classes with the largest maxima, so one strided maximum over the
    row (contiguous, as fast as a sum) narrows the selection to
    ``k * groups`` candidates: about 4x faster than ``argpartition`` over an
    8,000-word vocabulary. The class maxima give the row maximum for free.
    Ties may pick other ids of equal value, as ``argpartition`` may.

    Returns:
        ``(ids (R, min(k, V)), row maxima (R, 1))``.
    """
    R, V = x.shape
    classes = V // groups
    if k >= V or classes <= 2 * k:
        ids = (np.broadcast_to(np.arange(V), (R, V)).copy() if k >= V
               else np.argpartition(x, V - k, axis=1)[:, V - k:])
        return ids, x.max(axis=1, keepdims=True)
    body = groups * classes
    maxima = x[:, :body].reshape(R, groups, classes).max(axis=1)  # (R, classes)
    best = np.argpartition(maxima, classes - k, axis=1)[:, -k:]
    cols = (best[:, :, None] + classes * np.arange(groups)).reshape(R, k * groups)
    peak = np.take_along_axis(maxima, best, 1).max(axis=1, keepdims=True)
    if V > body:  # the tail columns, candidates in every row
        cols = np.concatenate([cols, np.broadcast_to(np.arange(body, V), (R, V - body))], axis=1)
        peak = np.maximum(peak, x[:, body:].max(axis=1, keepdims=True))
    cand = np.take_along_axis(x, cols, 1)
    pick = np.argpartition(cand, cand.shape[1] - k, axis=1)[:, -k:]
    return np.take_along_axis(cols, pick, 1), peak


_TABLE_LOCK = threading.Lock()
GATE_BLOCK = 64  # target token ids per block of the decoder's embedded-gate table


class NumpyTranslator:
    """A :class:`~lstmtext.translate.decoding.Stepper` over weights by variable path.

    Args:
        arrays: Weights (see :mod:`lstmtext.weights`).
        config: The bundle's :class:`~lstmtext.translate.config.TranslateConfig`.
    """

    parallel_steps = True  # steps may split their sentences over threads
    parallel_batches = True  # batches may be decoded at once, on threads (translate_ids)

    def __init__(self, arrays: dict[str, np.ndarray], config):
        self.config = c = config
        limit_blas_threads()
        keep_freed_memory()
        try:
            self.src_emb = arrays["source_embedding/embeddings"]
            self.encoder = []
            for i in range(c.encoder_layers):
                layer = []
                for d in ("forward", "backward"):
                    p = f"encoder_{i}/{d}_lstm_{i}/lstm_cell/"
                    layer.append((arrays[p + "kernel"], arrays[p + "recurrent_kernel"], arrays[p + "bias"]))
                self.encoder.append(layer)
            self.bridge = [(arrays[f"bridge_h_{i}/kernel"], arrays[f"bridge_h_{i}/bias"],
                            arrays[f"bridge_c_{i}/kernel"], arrays[f"bridge_c_{i}/bias"])
                           for i in range(c.decoder_layers)]
            self.dec = [(arrays[f"decoder/kernel_{i}"], arrays[f"decoder/recurrent_kernel_{i}"],
                         arrays[f"decoder/bias_{i}"]) for i in range(c.decoder_layers)]
            self.feed_kernel = arrays["decoder/feed_kernel"]
            self.combine = arrays["decoder/combine/kernel"]
            if c.attention == "luong":
                self.att = (arrays["decoder/attention/kernel"],)
            else:
                self.att = tuple(arrays[f"decoder/attention/{n}"]
                                 for n in ("query_kernel", "memory_kernel", "bias", "v"))
            self.tgt_emb = arrays["target_embedding/embeddings"]
            if c.tie_embeddings:
                self.projection = arrays.get("output_projection/kernel")
                self.out_w = np.ascontiguousarray(self.tgt_emb.T)
                self.out_b = arrays["target_embedding/output_bias"]
            else:
                self.projection = None
                self.out_w, self.out_b = arrays["output/kernel"], arrays["output/bias"]
        except KeyError as exc:
            raise BundleError(f"weights file lacks variable {exc}") from None
        self._gate_table = None  # (table, block filled): see _embedded_gates
        # Each decoder layer's kernels stacked (input, feed, recurrent) with
        # the gates laid out for fused_cell.
        self._cells = []
        for i, (w, u, b) in enumerate(self.dec):
            stacked = np.concatenate([w, self.feed_kernel, u] if i == 0 else [w, u])
            kernel, _, bias = fused_gates(stacked, u, b)
            self._cells.append((kernel, bias))

    # ------------------------------------------------------------ encoder
    def _bilstm(self, x: np.ndarray, mask: np.ndarray, layer) -> tuple[np.ndarray, list]:
        lengths = mask.sum(axis=1)
        outs, finals = [], []
        for (w, u, b), backward in zip(layer, (False, True)):
            # Padding leaves the state untouched, so the backward pass
            # effectively starts at each sentence's last real token.
            out, h, c = lstm_sequences(x, lengths, w, u, b, reverse=backward, padding="zero")
            outs.append(out)
            finals.append((h, c))
        (fh, fc), (bh, bc) = finals
        return np.concatenate(outs, -1), [fh, fc, bh, bc]

    def encode(self, sources: np.ndarray):
        """``(memory, mask, states)`` for ``(N, S)`` source ids."""
        mask = sources != 0
        x = self.src_emb[sources]
        for layer in self.encoder:
            x, final = self._bilstm(x, mask, layer)
        fh, fc, bh, bc = final
        h_cat, c_cat = np.concatenate([fh, bh], -1), np.concatenate([fc, bc], -1)
        states = []
        for wh, bh_, wc, bc_ in self.bridge:
            states += [np.tanh(h_cat @ wh + bh_), c_cat @ wc + bc_]
        states.append(np.zeros((len(sources), self.config.decoder_units), np.float32))
        return x, mask, states

    # ------------------------------------------------------------ decoder
    def prepare(self, memory: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The memory's products with the decoder's weights, once per batch: ``(keys, values)``, each ``(n, S, .)``.

        Attention and the combine layer are linear in the memory, so their
        weights are applied to it once rather than to every step's query
        and context (the same sums, associated the other way; equal to
        float32 rounding):

        - ``keys``: Luong's ``(q W) . m = q . (m W^T)``: ``memory @ W^T``;
          Bahdanau's ``memory @ W_m``;
        - ``values``: the context's part of the combine layer,
          ``(a @ memory) @ C_ctx = a @ (memory @ C_ctx)``.
        """
        n, s, m = memory.shape
        flat = memory.reshape(n * s, m)
        units = self.config.decoder_units
        values = (flat @ self.combine[units:]).reshape(n, s, -1)
        keys = flat @ (self.att[0].T if self.config.attention == "luong" else self.att[1])
        return keys.reshape(n, s, -1), values

    def _attend(self, query: np.ndarray, prepared: tuple, mask: np.ndarray, copies: int):
        """Attention of ``(n*copies, Q)`` queries over the prepared memory: the weighted ``values``, ``(n*copies, U)``."""
        keys, values = prepared
        n = keys.shape[0]
        if self.config.attention == "luong":
            scores = query.reshape(n, copies, -1) @ keys.transpose(0, 2, 1)  # (n, copies, S)
        else:
            wq, _, b, v = self.att
            # The query's product over all rows at once: a stacked (n, copies, Q)
            # operand would make one small product per sentence.
            scores = np.tanh(keys[:, None] + (query @ wq + b).reshape(n, copies, 1, -1)) @ v
        scores = np.where(mask[:, None, :], scores, -1e9)
        scores = scores - scores.max(-1, keepdims=True)
        weights = np.exp(scores)
        weights /= weights.sum(-1, keepdims=True)
        return (weights @ values).reshape(n * copies, -1)

    def _embedded_gates(self, tokens: np.ndarray) -> np.ndarray:
        """``(R, 4 units)``: the tokens' embeddings times the first decoder layer's input kernel, from a table.

        The table (a row per target token: 8,000 x 2,048 floats for the
        shipped translator) is filled in blocks of :data:`GATE_BLOCK` token
        ids as tokens first occur, so a one-line translation touches a few
        blocks and a file the tokens it emits; each block is one product of
        the same shape, so a row's value does not depend on which tokens
        came first (threads fill blocks in any order).
        """
        if self._gate_table is None:
            with _TABLE_LOCK:
                if self._gate_table is None:
                    self._gate_table = (np.empty((len(self.tgt_emb), self._cells[0][0].shape[1]), np.float32),
                                        np.zeros(-(-len(self.tgt_emb) // GATE_BLOCK), bool))
        table, filled = self._gate_table
        blocks = tokens // GATE_BLOCK
        if not filled[blocks].all():
            with _TABLE_LOCK:
                dim = self.tgt_emb.shape[1]
                for b in np.unique(blocks[~filled[blocks]]):
                    if not filled[b]:
                        rows = slice(b * GATE_BLOCK, (b + 1) * GATE_BLOCK)
                        emb = self.tgt_emb[rows]
                        if len(emb) < GATE_BLOCK:  # the last block, padded to the same product shape
                            emb = np.concatenate([emb, np.zeros((GATE_BLOCK - len(emb), dim), emb.dtype)])
                        table[rows] = (emb @ self._cells[0][0][:dim])[: len(table[rows])]
                        filled[b] = True
        return table[tokens]

    def _hidden(self, tokens, states, prepared, mask, copies: int):
        """The decoder's output vector (before the vocabulary layer) and new states for rows ``R = n * copies``."""
        feed = states[-1]
        new_states = []
        h = None
        with np.errstate(over="ignore"):  # see fused_cell
            for i, (kernel, bias) in enumerate(self._cells):
                if i == 0:  # the token's rows of the table, then attention feed and previous output in one product
                    dim = self.tgt_emb.shape[1]
                    z = np.concatenate([feed, states[0]], -1) @ kernel[dim:]
                    z += self._embedded_gates(tokens)
                else:
                    z = np.concatenate([h, states[2 * i]], -1) @ kernel
                z += bias
                c = states[2 * i + 1].copy()
                h = np.empty_like(c)
                fused_cell(z, c, h, np.empty_like(c))
                new_states += [h, c]
        units = self.config.decoder_units
        out = h @ self.combine[:units]
        out += self._attend(h, prepared, mask, copies)
        np.tanh(out, out=out)
        new_states.append(out)
        if self.projection is not None:
            out = out @ self.projection
        return out, new_states

    def decode_step(self, tokens, states, memory, mask, copies: int):
        """Log-probabilities ``(R, V)`` and new states for rows ``R = n * copies``."""
        out, new_states = self._hidden(tokens, states, self.prepare(memory), mask, copies)
        logits = out @ self.out_w + self.out_b
        logits -= logits.max(-1, keepdims=True)
        return logits - np.log(np.exp(logits).sum(-1, keepdims=True)), new_states

    def best_step(self, tokens, states, memory, mask, copies: int, k: int, prepared: tuple | None = None):
        """:meth:`decode_step` reduced to the ``k`` best ``(log_probs, ids)`` per row, best first, and new states.

        ``prepared``: :meth:`prepare` of ``memory``, when the caller keeps it across steps.
        """
        out, new_states = self._hidden(tokens, states, prepared or self.prepare(memory), mask, copies)
        return (*self._best(out, k), new_states)

    def _best(self, out: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` best ``(log_probs, ids)`` per row, best first, without the full log-softmax array.

        The values equal those of :meth:`decode_step` (same operations on
        the chosen entries); only the normaliser needs every logit.
        """
        logits = out @ self.out_w
        logits += self.out_b
        k = min(k, logits.shape[1])
        if k == 1:
            top = logits.argmax(1)[:, None]
            peak = np.take_along_axis(logits, top, 1)
        else:
            top, peak = top_k_ids(logits, k)
        chosen = np.take_along_axis(logits, top, 1) - peak
        logits -= peak
        np.exp(logits, out=logits)
        chosen -= np.log(logits.sum(-1, keepdims=True))
        order = np.argsort(-chosen, axis=1, kind="stable")
        return np.take_along_axis(chosen, order, 1), np.take_along_axis(top, order, 1)

    # ------------------------------------------------------------ Stepper
    def start(self, sources: np.ndarray, copies: int):
        memory, mask, states = self.encode(np.asarray(sources))  # once per sentence, before the copies
        states = [np.repeat(s, copies, axis=0) for s in states]
        return {"memory": memory, "prepared": self.prepare(memory), "mask": mask, "states": states,
                "copies": copies}

    def step(self, tokens, parents, state, k, active=None):
        copies = state["copies"]
        states = [s[parents] for s in state["states"]]
        tokens = np.asarray(tokens)
        rows = len(tokens)
        values = np.full((rows, k), -np.inf, np.float32)
        ids = np.full((rows, k), 3, np.int64)
        sentences = np.arange(rows // copies)
        live = copies  # rows computed per sentence
        if active is not None:  # skip sentences already decoded: whole groups of rows
            by_sentence = np.asarray(active).reshape(-1, copies)
            sentences = np.flatnonzero(by_sentence.any(1))
            if copies > 1 and not by_sentence[:, 1:].any():
                live = 1  # a beam's first step: its copies are one hypothesis

        def run(group: np.ndarray) -> None:
            # A run of consecutive sentences is sliced (views), others gathered.
            if group[-1] - group[0] + 1 == len(group):
                sents = slice(int(group[0]), int(group[-1]) + 1)
                sel = slice(sents.start * copies, sents.stop * copies, copies // live)
            else:
                sents = group
                sel = (group[:, None] * copies + np.arange(live)).reshape(-1)
            prepared = state["prepared"] and tuple(p[sents] for p in state["prepared"])
            v, i, new = self.best_step(tokens[sel], [s[sel] for s in states], state["memory"][sents],
                                       state["mask"][sents], live, k, prepared)
            values[sel, : v.shape[1]] = v
            ids[sel, : i.shape[1]] = i
            for s, n in zip(states, new):
                s[sel] = n

        # Sentences split over threads, each with one BLAS thread (see lstmtext.decoding.parallel).
        n = parallel.workers(len(sentences) * live) if self.parallel_steps else 1
        groups = np.array_split(sentences, n)
        parallel.run_parallel(run, groups)
        return values, ids, {**state, "states": states}
