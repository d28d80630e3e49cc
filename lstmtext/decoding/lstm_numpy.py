"""A numpy runtime for stacked-LSTM language models.

Loading a bundle's weights with h5py and stepping them in numpy avoids the
seconds that importing TensorFlow costs, which dominates the latency of a
one-prompt ``predict`` or ``generate``. The maths mirror ``keras.layers.LSTM``
(gate order i, f, c, o; sigmoid recurrent activation; tanh activation), and a
test checks agreement with the Keras network.
"""

from __future__ import annotations

import numpy as np

from lstmtext.errors import BundleError


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (np.tanh(0.5 * x) + 1.0)  # overflow-free form


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


class NumpyLSTMLanguageModel(StepLanguageModel):
    """Step a trained language model with explicit ``(h, c)`` states.

    Args:
        arrays: Weights by variable path (see :mod:`lstmtext.weights`).
        num_layers: Stacked LSTM layers.
        tie_weights: Whether the output projection is the embedding matrix.
    """

    def __init__(self, arrays: dict[str, np.ndarray], num_layers: int, tie_weights: bool):
        try:
            self.embeddings = arrays["embedding/embeddings"]
            self.cells = [
                (arrays[f"lstm_{i}/lstm_cell/kernel"], arrays[f"lstm_{i}/lstm_cell/recurrent_kernel"],
                 arrays[f"lstm_{i}/lstm_cell/bias"])
                for i in range(num_layers)
            ]
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
            z = x @ w + h @ u + b
            i, f, g, o = np.split(z, 4, axis=-1)
            c = _sigmoid(f) * c + _sigmoid(i) * np.tanh(g)
            h = _sigmoid(o) * np.tanh(c)
            new_state.append((h, c))
            x = h
        return x, new_state

    def step(self, ids, state):
        """``(log_probs (B, V), new_state)`` after feeding ``ids`` (B,)."""
        h, state = self.hidden(np.asarray(ids, np.int64), state)
        return log_softmax(h @ self.out_w + self.out_b), state

    def advance(self, ids, state):
        return self.hidden(np.asarray(ids, np.int64), state)[1]
