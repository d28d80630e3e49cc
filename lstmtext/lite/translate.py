"""The translator's LiteRT parts: the encoder and one decoder step.

Signatures:

- ``encode``: ``sources`` (N, S) int32, right-padded with 0 -> ``memory``
  (N, S, M) and the decoder's initial states ``state_0`` ... ``state_{2L}``
  (h and c of each decoder layer, then the input-feeding vector).
- ``decode_step``: ``tokens`` (R,) int32, ``memory`` (N, S, M), ``mask``
  (N, S) float32, ``state_*`` (R, units) -> ``log_probs`` (R, V) and
  ``state_*_out``; ``R = N * copies`` rows, row ``n * copies + j`` attending
  to sentence ``n`` (beam search keeps ``copies`` hypotheses per sentence).

:class:`LiteTranslator` plugs them into the search of
:mod:`lstmtext.translate.decoding` through the NumPy runtime's ``Stepper``
methods, so greedy and beam search exist once.
"""

from __future__ import annotations

import numpy as np

from lstmtext.translate.numpy_runtime import NumpyTranslator, limit_blas_threads


def state_names(config) -> list[str]:
    return [f"state_{i}" for i in range(2 * int(config.decoder_layers) + 1)]


def signatures(config) -> dict[str, tuple[list[str], list[str]]]:
    states = state_names(config)
    return {"encode": (["sources"], ["memory", *states]),
            "decode_step": (["tokens", "memory", "mask", *states], ["log_probs", *(s + "_out" for s in states)])}


def build(arrays: dict[str, np.ndarray], config: dict, bundle=None):
    """``({"encode": fn, "decode_step": fn}, {})`` from a translator's weights.

    The weights are read through :class:`NumpyTranslator` (one place knows
    the variable names); the maths mirror its ``encode`` and ``decode_step``.
    """
    from lstmtext.config import from_dict
    from lstmtext.lite.convert import lstm_cell, lstm_sequence, tf
    from lstmtext.translate.config import TranslateConfig

    t = tf()
    cfg = from_dict(TranslateConfig, config)
    ref = NumpyTranslator(arrays, cfg)
    const = lambda x: t.constant(np.asarray(x, np.float32))  # noqa: E731
    src_emb, tgt_emb = const(ref.src_emb), const(ref.tgt_emb)
    encoder = [[tuple(const(w) for w in cell) for cell in layer] for layer in ref.encoder]
    bridge = [tuple(const(w) for w in b) for b in ref.bridge]
    dec = [tuple(const(w) for w in cell) for cell in ref.dec]
    feed_kernel, combine = const(ref.feed_kernel), const(ref.combine)
    att = tuple(const(w) for w in ref.att)
    projection = const(ref.projection) if ref.projection is not None else None
    # Tied output: the embedding (V, E) is the fully-connected weights as stored.
    tied = bool(cfg.tie_embeddings)
    out_w = tgt_emb if tied else const(ref.out_w)
    out_b = const(ref.out_b)
    names = state_names(cfg)
    units = int(cfg.decoder_units)
    memory_dim = int(ref.encoder[-1][0][1].shape[0]) * 2

    @t.function(input_signature=[t.TensorSpec([None, None], t.int32, name="sources")])
    def encode(sources):
        mask = sources != 0
        x = t.gather(src_emb, sources)
        for layer in encoder:
            outs, finals = [], []
            for (k, r, b), reverse in zip(layer, (False, True)):
                y, final = lstm_sequence(x, mask, k, r, b, reverse)
                outs.append(y)
                finals.append(final)
            x = t.concat(outs, axis=-1)
        (fh, fc), (bh, bc) = finals
        h_cat, c_cat = t.concat([fh, bh], -1), t.concat([fc, bc], -1)
        out = {"memory": x}
        for i, (wh, bh_, wc, bc_) in enumerate(bridge):
            out[names[2 * i]] = t.tanh(t.matmul(h_cat, wh) + bh_)
            out[names[2 * i + 1]] = t.matmul(c_cat, wc) + bc_
        out[names[-1]] = t.zeros([t.shape(sources)[0], units])
        return out

    state_specs = [t.TensorSpec([None, None], t.float32, name=n) for n in names]

    @t.function(input_signature=[t.TensorSpec([None], t.int32, name="tokens"),
                                 t.TensorSpec([None, None, memory_dim], t.float32, name="memory"),
                                 t.TensorSpec([None, None], t.float32, name="mask"), *state_specs])
    def decode_step(tokens, memory, mask, *states):
        h = t.gather(tgt_emb, tokens)
        out = {}
        for i, (w, u, b) in enumerate(dec):
            z_in = t.concat([h, states[-1]], -1) if i == 0 else h
            kernel = t.concat([w, feed_kernel], 0) if i == 0 else w
            h, c = lstm_cell(z_in, states[2 * i], states[2 * i + 1], kernel, u, b)
            out[names[2 * i] + "_out"], out[names[2 * i + 1] + "_out"] = h, c
        n = t.shape(memory)[0]
        q = t.reshape(h, [n, -1, t.shape(h)[-1]])  # (n, copies, Q)
        if cfg.attention == "luong":
            scores = t.matmul(t.einsum("ncq,qm->ncm", q, att[0]), memory, transpose_b=True)
        else:
            wq, wm, bias, v = att
            keys = t.einsum("nsm,ma->nsa", memory, wm)
            query = t.einsum("ncq,qa->nca", q, wq) + bias
            scores = t.einsum("ncsa,a->ncs", t.tanh(keys[:, None] + query[:, :, None]), v)
        scores = t.where(t.expand_dims(mask, 1) > 0.5, scores, -1e9 * t.ones_like(scores))
        context = t.reshape(t.matmul(t.nn.softmax(scores, -1), memory), [-1, memory_dim])
        feed = t.tanh(t.matmul(t.concat([h, context], -1), combine))
        out[names[-1] + "_out"] = feed
        y = t.matmul(feed, projection) if projection is not None else feed
        logits = (t.matmul(y, out_w, transpose_b=True) if tied else t.matmul(y, out_w)) + out_b
        out["log_probs"] = t.nn.log_softmax(logits)
        return out

    return {"encode": encode, "decode_step": decode_step}, {}


class LiteTranslator(NumpyTranslator):
    """A :class:`~lstmtext.translate.decoding.Stepper` over the LiteRT parts."""

    parallel_steps = parallel_batches = False  # one interpreter: calls must not overlap

    def __init__(self, config, parts: dict):  # noqa: D107 -- no arrays: the parts hold the weights
        self.config = config
        self.parts = parts
        self.names = state_names(config)
        limit_blas_threads()

    def encode(self, sources: np.ndarray):
        sources = np.asarray(sources, np.int32)
        out = self.parts["encode"](sources=sources)
        return out["memory"], sources != 0, [out[n] for n in self.names]

    def decode_step(self, tokens, states, memory, mask, copies: int):
        out = self.parts["decode_step"](
            tokens=np.asarray(tokens, np.int32), memory=np.asarray(memory, np.float32),
            mask=np.asarray(mask, np.float32), **{n: np.asarray(s, np.float32) for n, s in zip(self.names, states)})
        return out["log_probs"], [out[n + "_out"] for n in self.names]

    def prepare(self, memory: np.ndarray) -> None:
        return None  # the parts take the memory itself

    def best_step(self, tokens, states, memory, mask, copies: int, k: int, prepared=None):
        log_probs, new_states = self.decode_step(tokens, states, memory, mask, copies)
        log_probs = np.asarray(log_probs)
        k = min(k, log_probs.shape[1])
        top = np.argpartition(-log_probs, k - 1, axis=1)[:, :k]
        top_lp = np.take_along_axis(log_probs, top, 1)
        order = np.argsort(-top_lp, axis=1, kind="stable")
        return np.take_along_axis(top_lp, order, 1), np.take_along_axis(top, order, 1), new_states


class SmallBatchStepper:
    """``--runtime auto``: the LiteRT parts for batches of at most ``limit`` sentences, else NumPy.

    The LiteRT parts start fastest (no h5py import, no weights to read);
    the NumPy runtime decodes whole files faster (it computes only the rows
    still being decoded). The NumPy runtime is loaded on first need.
    """

    def __init__(self, lite: LiteTranslator, load_numpy, limit: int):
        self.lite, self.load_numpy, self.limit = lite, load_numpy, limit
        self.numpy = None

    def start(self, sources: np.ndarray, copies: int):
        impl = self.lite
        if len(sources) > self.limit:
            self.numpy = self.numpy or self.load_numpy()
            impl = self.numpy
        return impl, impl.start(sources, copies)

    def step(self, tokens, parents, state, k, active=None):
        impl, inner = state
        values, ids, new = impl.step(tokens, parents, inner, k, active)
        return values, ids, (impl, new)
