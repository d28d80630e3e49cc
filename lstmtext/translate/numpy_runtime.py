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
import os

import numpy as np

from lstmtext.errors import BundleError


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (np.tanh(0.5 * x) + 1.0)  # overflow-free form


def _lstm(z: np.ndarray, c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    i, f, g, o = np.split(z, 4, axis=-1)
    c = _sigmoid(f) * c + _sigmoid(i) * np.tanh(g)
    return _sigmoid(o) * np.tanh(c), c


def limit_blas_threads() -> None:
    """Use one BLAS thread unless the user chose a number (``OMP_NUM_THREADS``/``OPENBLAS_NUM_THREADS``).

    The decoder's matrices are small, and OpenBLAS threads spin-wait: on a
    2-core machine shared with other jobs, two threads decoded 10x slower
    than one (18.6 s against 1.9 s of CPU for 64 sentences). Needs the
    optional ``threadpoolctl``; without it the library default stays.
    """
    if _user_chose_threads():
        return
    with contextlib.suppress(ImportError):
        from threadpoolctl import threadpool_limits

        threadpool_limits(limits=1, user_api="blas")


# Steps over at least this many rows (sentences x beam) use every core: there
# the matrix products dominate (a beam-5 batch of 128 sentences: 640 rows).
WIDE_ROWS = 256


def _user_chose_threads() -> bool:
    return any(os.environ.get(v) for v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"))


def wide_blas(rows: int):
    """A context giving BLAS every core for a step of ``rows`` rows (at least :data:`WIDE_ROWS`).

    Decoding the 1,014 Multi30k validation sentences with beam 5 took 23.0 s
    with two threads and 27.4 s with one on a quiet 2-core machine; small
    steps stay on one thread (see :func:`limit_blas_threads`).
    """
    if rows < WIDE_ROWS or _user_chose_threads() or (os.cpu_count() or 1) < 2:
        return contextlib.nullcontext()
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return contextlib.nullcontext()
    return threadpool_limits(limits=os.cpu_count(), user_api="blas")


class NumpyTranslator:
    """A :class:`~lstmtext.translate.decoding.Stepper` over weights by variable path.

    Args:
        arrays: Weights (see :mod:`lstmtext.weights`).
        config: The bundle's :class:`~lstmtext.translate.config.TranslateConfig`.
    """

    def __init__(self, arrays: dict[str, np.ndarray], config):
        self.config = c = config
        limit_blas_threads()
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

    # ------------------------------------------------------------ encoder
    def _bilstm(self, x: np.ndarray, mask: np.ndarray, layer) -> tuple[np.ndarray, list]:
        n, s, _ = x.shape
        outs, finals = [], []
        for (w, u, b), backward in zip(layer, (False, True)):
            xw = x @ w + b  # all steps' input projections at once
            units = u.shape[0]
            h = np.zeros((n, units), np.float32)
            c = np.zeros((n, units), np.float32)
            out = np.zeros((n, s, units), np.float32)
            for t in (range(s - 1, -1, -1) if backward else range(s)):
                h_new, c_new = _lstm(xw[:, t] + h @ u, c)
                m = mask[:, t, None]
                # Padding leaves the state untouched, so the backward pass
                # effectively starts at each sentence's last real token.
                h, c = np.where(m, h_new, h), np.where(m, c_new, c)
                out[:, t] = np.where(m, h, 0.0)
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
    def _attend(self, query: np.ndarray, memory: np.ndarray, mask: np.ndarray, copies: int):
        """Attention of ``(n*copies, Q)`` queries over ``(n, S, M)`` memory."""
        n, s, m = memory.shape
        q = query.reshape(n, copies, -1)
        if self.config.attention == "luong":
            scores = (q @ self.att[0]) @ memory.transpose(0, 2, 1)  # (n, copies, S)
        else:
            wq, wm, b, v = self.att
            keys = memory @ wm  # (n, S, A)
            scores = np.tanh(keys[:, None] + (q @ wq + b)[:, :, None]) @ v
        scores = np.where(mask[:, None, :], scores, -1e9)
        scores = scores - scores.max(-1, keepdims=True)
        weights = np.exp(scores)
        weights /= weights.sum(-1, keepdims=True)
        return (weights @ memory).reshape(n * copies, m)

    def decode_step(self, tokens, states, memory, mask, copies: int):
        """Log-probabilities ``(R, V)`` and new states for rows ``R = n * copies``."""
        x = self.tgt_emb[tokens]
        feed = states[-1]
        new_states = []
        h = x
        for i, (w, u, b) in enumerate(self.dec):
            z = h @ w + b + states[2 * i] @ u
            if i == 0:
                z += feed @ self.feed_kernel
            h, c = _lstm(z, states[2 * i + 1])
            new_states += [h, c]
        context = self._attend(h, memory, mask, copies)
        out = np.tanh(np.concatenate([h, context], -1) @ self.combine)
        new_states.append(out)
        if self.projection is not None:
            out = out @ self.projection
        logits = out @ self.out_w + self.out_b
        logits -= logits.max(-1, keepdims=True)
        return logits - np.log(np.exp(logits).sum(-1, keepdims=True)), new_states

    # ------------------------------------------------------------ Stepper
    def start(self, sources: np.ndarray, copies: int):
        with wide_blas(len(sources)):  # the encoder runs once per sentence, before the copies
            memory, mask, states = self.encode(np.asarray(sources))
        states = [np.repeat(s, copies, axis=0) for s in states]
        return {"memory": memory, "mask": mask, "states": states, "copies": copies}

    def step(self, tokens, parents, state, k, active=None):
        copies = state["copies"]
        states = [s[parents] for s in state["states"]]
        rows = len(tokens)
        values = np.full((rows, k), -np.inf, np.float32)
        ids = np.full((rows, k), 3, np.int64)
        sentences = np.arange(rows // copies)
        if active is not None:  # skip sentences already decoded: whole groups of rows
            sentences = np.flatnonzero(np.asarray(active).reshape(-1, copies).any(1))
        if len(sentences):
            sel = (sentences[:, None] * copies + np.arange(copies)).reshape(-1)
            with wide_blas(len(sel)):
                log_probs, new = self.decode_step(np.asarray(tokens)[sel], [s[sel] for s in states],
                                                  state["memory"][sentences], state["mask"][sentences], copies)
            kk = min(k, log_probs.shape[1])
            top = np.argpartition(-log_probs, kk - 1, axis=1)[:, :kk]
            top_lp = np.take_along_axis(log_probs, top, 1)
            order = np.argsort(-top_lp, axis=1, kind="stable")
            values[sel, :kk] = np.take_along_axis(top_lp, order, 1)
            ids[sel, :kk] = np.take_along_axis(top, order, 1)
            for s, n in zip(states, new):
                s[sel] = n
        return values, ids, {**state, "states": states}
