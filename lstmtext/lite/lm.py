"""The language model's LiteRT part: one step with explicit states.

Signature ``step``: ``ids`` (B,) int32 and ``h0, c0, ..., h{L-1}, c{L-1}``
(B, units) float32 in; ``log_probs`` (B, V) and ``h0_out, c0_out, ...`` out.
"""

from __future__ import annotations

import numpy as np

from lstmtext.decoding.lstm_numpy import StepLanguageModel
from lstmtext.errors import BundleError


def signature(num_layers: int) -> tuple[list[str], list[str]]:
    states = [f"{k}{i}" for i in range(num_layers) for k in ("h", "c")]
    return ["ids", *states], ["log_probs", *(s + "_out" for s in states)]


def build(arrays: dict[str, np.ndarray], config: dict, bundle=None):
    """``({"step": tf.function}, {})`` for a language model's weights."""
    from lstmtext.lite.convert import constants, lstm_cell, tf

    t = tf()
    a = constants(arrays)
    layers = int(config["num_layers"])
    try:
        emb = a["embedding/embeddings"]
        cells = [tuple(a[f"lstm_{i}/lstm_cell/{n}"] for n in ("kernel", "recurrent_kernel", "bias"))
                 for i in range(layers)]
        # Tied: the embedding matrix (V, H) is already a fully-connected
        # layer's (units, inputs) weights, so it is stored once.
        out_w, out_b = ((emb, a["embedding/output_bias"]) if config.get("tie_weights")
                        else (t.transpose(a["output/kernel"]), a["output/bias"]))
    except KeyError as exc:
        raise BundleError(f"weights lack variable {exc}") from None
    units = [int(r.shape[0]) for _, r, _ in cells]
    specs = [t.TensorSpec([None], t.int32, name="ids")]
    for i, u in enumerate(units):
        specs += [t.TensorSpec([None, u], t.float32, name=f"h{i}"), t.TensorSpec([None, u], t.float32, name=f"c{i}")]

    @t.function(input_signature=specs)
    def step(ids, *states):
        x = t.gather(emb, ids)
        out = {}
        for i, (k, r, b) in enumerate(cells):
            h, c = lstm_cell(x, states[2 * i], states[2 * i + 1], k, r, b)
            out[f"h{i}_out"], out[f"c{i}_out"] = h, c
            x = h
        out["log_probs"] = t.nn.log_softmax(t.matmul(x, out_w, transpose_b=True) + out_b)
        return out

    return {"step": step}, {}


class LiteLanguageModel(StepLanguageModel):
    """The step interface over a bundle's LiteRT ``step`` part.

    Args:
        config: The bundle's configuration.
        parts: The opened parts (see :func:`lstmtext.lite.runtime.load_parts`).
    """

    def __init__(self, config: dict, parts: dict):
        self.fn = parts["step"]
        self.num_layers = int(config["num_layers"])
        self.units = [int(config["hidden_size"])] * self.num_layers
        out = self.fn(ids=np.zeros(1, np.int32), **self._flat(self.initial_state(1)))
        self.vocab_size = int(out["log_probs"].shape[-1])

    def _flat(self, state) -> dict[str, np.ndarray]:
        flat = {}
        for i, (h, c) in enumerate(state):
            flat[f"h{i}"], flat[f"c{i}"] = np.asarray(h, np.float32), np.asarray(c, np.float32)
        return flat

    def step(self, ids, state):
        out = self.fn(ids=np.asarray(ids, np.int32).reshape(-1), **self._flat(state))
        new = [(out[f"h{i}_out"], out[f"c{i}_out"]) for i in range(self.num_layers)]
        return out["log_probs"].astype(np.float64), new
