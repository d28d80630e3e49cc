"""An LSTM decoder with attention and input feeding (Luong et al. 2015).

At each target step the previous attentional vector ``h~(t-1)`` is fed to the
first LSTM layer together with the previous target embedding ("input
feeding"), the top layer's state queries the encoder outputs, and
``h~(t) = tanh(W_c [h(t); context(t)])`` is the step's output. Because the
input depends on the previous output the whole decoder is one recurrence; it
runs as ``keras.ops.scan`` over time for training and as a single step for
decoding, with the same weights.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import layers, ops

from lstmtext.layers.attention import make_attention


@keras.saving.register_keras_serializable(package="lstmtext")
class AttentionDecoder(layers.Layer):
    """Stacked LSTM decoder with attention and input feeding.

    The recurrent state is the tuple ``(h_0, c_0, ..., h_{L-1}, c_{L-1},
    feed)``, each ``(B, units)``; ``feed`` is the previous attentional vector.

    Args:
        units: LSTM units per layer, also the size of the attentional vector.
        num_layers: Stacked LSTM layers.
        input_dim: Size of the target embeddings.
        memory_dim: Size of the encoder outputs.
        attention: ``luong`` or ``bahdanau``.
        attention_units: Hidden size of the Bahdanau scorer.
        **kwargs: Passed to ``keras.layers.Layer``.

    Call arguments:
        inputs: Target embeddings, ``(B, T, input_dim)`` for the whole
            sequence, or ``(B, input_dim)`` for a single step.
        memory: Encoder outputs ``(B, S, memory_dim)``.
        source_mask: ``(B, S)``, 1 at real source positions.
        states: The initial recurrent state tuple (list of tensors).

    Returns:
        ``[outputs, attention, *final_states]``: for a sequence the
        attentional vectors ``(B, T, units)`` and weights ``(B, T, S)``, for a
        single step ``(B, units)`` and ``(B, S)``.
    """

    def __init__(self, units: int, num_layers: int, input_dim: int, memory_dim: int,
                 attention: str = "luong", attention_units: int = 256, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.num_layers = num_layers
        self.input_dim = input_dim
        self.memory_dim = memory_dim
        self.attention_kind = attention
        self.attention_units = attention_units
        self.attention = make_attention(attention, memory_dim, attention_units, name="attention")
        self.combine = layers.Dense(units, activation="tanh", use_bias=False, name="combine")

    @property
    def state_size(self) -> int:
        """Number of state tensors."""
        return 2 * self.num_layers + 1

    def build(self, *args, **kwargs):
        u4 = 4 * self.units

        def bias_init(shape, dtype=None):
            # Forget-gate bias 1 (Jozefowicz et al. 2015), as unit_forget_bias does.
            value = np.zeros(shape, dtype="float32")
            value[self.units: 2 * self.units] = 1.0
            return ops.convert_to_tensor(value, dtype=dtype)

        self.kernels, self.recurrent_kernels, self.biases = [], [], []
        for i in range(self.num_layers):
            in_dim = self.input_dim if i == 0 else self.units
            self.kernels.append(self.add_weight(name=f"kernel_{i}", shape=(in_dim, u4),
                                                initializer="glorot_uniform"))
            self.recurrent_kernels.append(self.add_weight(name=f"recurrent_kernel_{i}", shape=(self.units, u4),
                                                          initializer="orthogonal"))
            self.biases.append(self.add_weight(name=f"bias_{i}", shape=(u4,), initializer=bias_init))
        self.feed_kernel = self.add_weight(name="feed_kernel", shape=(self.units, u4),
                                           initializer="glorot_uniform")
        self.attention.build((None, self.units), (None, None, self.memory_dim))
        self.combine.build((None, self.units + self.memory_dim))
        self.built = True

    def _lstm(self, z, c):
        i, f, g, o = ops.split(z, 4, axis=-1)
        c = ops.sigmoid(f) * c + ops.sigmoid(i) * ops.tanh(g)
        return ops.sigmoid(o) * ops.tanh(c), c

    def _params(self) -> dict:
        # Read every weight once, outside any loop: XLA cannot accumulate
        # gradients of variable reads made inside a while loop.
        t = ops.convert_to_tensor
        return {"kernels": [t(k) for k in self.kernels], "recurrent": [t(k) for k in self.recurrent_kernels],
                "biases": [t(b) for b in self.biases], "feed": t(self.feed_kernel),
                "attention": self.attention.params(), "combine": t(self.combine.kernel)}

    def _step(self, p, x_proj, states, memory, source_mask):
        """One step given the first layer's projected input ``x W_0 + b_0``."""
        feed = states[-1]
        new_states = []
        h = None
        for i in range(self.num_layers):
            h_prev, c_prev = states[2 * i], states[2 * i + 1]
            if i == 0:
                z = x_proj + ops.matmul(feed, p["feed"])
            else:
                z = ops.matmul(h, p["kernels"][i]) + p["biases"][i]
            z = z + ops.matmul(h_prev, p["recurrent"][i])
            h, c = self._lstm(z, c_prev)
            new_states += [h, c]
        context, weights = self.attention.attend(p["attention"], h, memory, source_mask)
        out = ops.tanh(ops.matmul(ops.concatenate([h, context], axis=-1), p["combine"]))
        return out, weights, new_states + [out]

    def call(self, inputs, memory, source_mask, states):
        states = list(states)
        p = self._params()
        # The input projection of every step is one large matmul outside the loop.
        x_proj = ops.matmul(inputs, p["kernels"][0]) + p["biases"][0]
        if len(inputs.shape) == 2:
            out, weights, new_states = self._step(p, x_proj, states, memory, source_mask)
            return [out, weights, *new_states]
        xs = ops.transpose(x_proj, (1, 0, 2))

        def body(carry, x):
            out, weights, new_states = self._step(p, x, list(carry[:-1]), memory, source_mask)
            new_carry = (*new_states, ops.cast(weights, carry[-1].dtype))
            # The TensorFlow scan wants per-step outputs shaped like the carry.
            return new_carry, new_carry

        initial = (*states, ops.zeros_like(ops.cast(source_mask, "float32")))
        final, outs = ops.scan(body, initial, xs)
        # Same output structure as a single step: Keras' functional graph
        # assumes every call of a shared layer returns the same structure.
        return [ops.transpose(outs[-2], (1, 0, 2)), ops.transpose(outs[-1], (1, 0, 2)), *final[:-1]]

    def compute_output_spec(self, inputs, memory, source_mask, states):
        b = inputs.shape[0]
        if len(inputs.shape) == 2:
            spec = [keras.KerasTensor((b, self.units), dtype=self.compute_dtype),
                    keras.KerasTensor((b, memory.shape[1]), dtype="float32")]
            return spec + [keras.KerasTensor((b, self.units), dtype=self.compute_dtype)
                           for _ in range(self.state_size)]
        t = inputs.shape[1]
        spec = [keras.KerasTensor((b, t, self.units), dtype=self.compute_dtype),
                keras.KerasTensor((b, t, memory.shape[1]), dtype="float32")]
        return spec + [keras.KerasTensor((b, self.units), dtype=self.compute_dtype)
                       for _ in range(self.state_size)]

    def get_config(self):
        return {**super().get_config(), "units": self.units, "num_layers": self.num_layers,
                "input_dim": self.input_dim, "memory_dim": self.memory_dim,
                "attention": self.attention_kind, "attention_units": self.attention_units}
