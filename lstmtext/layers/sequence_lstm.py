"""A faster CPU training path for ``keras.layers.LSTM`` on TensorFlow: the whole sequence as one kernel.

Keras runs an LSTM without cuDNN as a loop of its cell: every time step
multiplies the step's input by the input kernel, and the loop's gradient
multiplies and sums both kernels' gradients once per step. On a CPU those
many small products dominate a language model's training step. This path
computes the same function the way cuDNN and PyTorch's CPU LSTM do:

- the input projection of all time steps is one product before the loop
  (and its gradients, for the input kernel and for the inputs, are one
  product each after it);
- the loop carries only ``h @ recurrent_kernel`` and the gates, and keeps
  the gates and cells it needs for the gradient;
- the gradient runs the loop backwards for the gates' gradients only (one
  ``dz @ recurrent_kernel.T`` per step), and the recurrent kernel's gradient
  is one product over all steps.

The gates and their order (i, f, c, o), the carried state and every variable
are those of ``keras.layers.LSTM``; outputs and gradients agree with it to
float32 rounding (sums taken in another order), which the tests check.

Masks and ``go_backwards`` follow Keras' TensorFlow loop
(``keras.src.backend.tensorflow.rnn.rnn``), for any mask, not only right
padding:

- ``go_backwards`` reverses the inputs and the mask in time, and the outputs
  come back in that reversed order (``Bidirectional`` flips them back);
- at a masked step both states keep their previous values (the step's input
  has no effect and gets a zero gradient);
- a masked step's output is zero with ``zero_output_for_mask`` (which
  ``Bidirectional`` sets for ``return_sequences``), and otherwise the last
  output before it, zero before any unmasked step; that is the carried ``h``
  once a step was unmasked, so the loop keeps only the carried states and
  the outputs are one ``where`` over all steps;
- the last output (the result without ``return_sequences``) is the last
  step's masked output, and the returned states are the carried ones.

:func:`install` switches the path on for the plain LSTM layers of a model
(also those inside ``Bidirectional`` and other layers), per layer instance,
so the layers stay ``keras.layers.LSTM`` (config, saved weights and their
paths unchanged) and every case this path does not cover (another backend,
a GPU, where cuDNN is faster, a mask of another rank than ``(batch, time)``,
cell dropout, other activations, ``unroll``, a compute dtype other than
float32) takes Keras' own loop.
"""

from __future__ import annotations

import types

import keras


def install(model) -> int:
    """Use the sequence kernel in ``model``'s plain ``keras.layers.LSTM`` layers where it applies.

    Layers whose class overrides ``inner_loop`` (``WeightDropLSTM`` swaps
    the recurrent kernel there) are left alone.

    Returns:
        The number of layers switched (0 on a backend other than TensorFlow
        or with a GPU, where Keras' cuDNN path is used instead).
    """
    if keras.backend.backend() != "tensorflow" or _has_gpu():
        return 0
    count = 0
    for layer in _lstm_layers(model):
        if getattr(layer, "_sequence_kernel", False):
            continue
        original = layer.inner_loop
        layer.inner_loop = types.MethodType(_make_inner_loop(original), layer)
        layer._sequence_kernel = True
        count += 1
    return count


def _sublayers(model):
    """``model`` and every layer tracked below it: Bidirectional's two LSTMs, a CharEncoder's BiLSTM."""
    flatten = getattr(model, "_flatten_layers", None)  # Keras 3's own walk (private: a fallback below)
    if flatten is not None:
        yield from flatten(include_self=True, recursive=True)
        return
    seen, stack = set(), [model]
    while stack:
        layer = stack.pop()
        if id(layer) in seen:
            continue
        seen.add(id(layer))
        yield layer
        stack.extend(getattr(layer, "layers", None) or [])
        stack.extend(v for v in vars(layer).values() if isinstance(v, keras.layers.Layer))


def _lstm_layers(model):
    for layer in _sublayers(model):
        # Subclasses that keep Keras' inner loop (lstmtext.lm.network.StreamLSTM) qualify.
        if isinstance(layer, keras.layers.LSTM) and type(layer).inner_loop is keras.layers.LSTM.inner_loop:
            yield layer


def _has_gpu() -> bool:
    import tensorflow as tf

    return bool(tf.config.list_logical_devices("GPU"))


def applies(layer, mask, training) -> bool:
    """Whether the sequence kernel computes exactly what Keras' loop would for this call."""
    cell = layer.cell
    return ((mask is None or len(mask.shape) == 2) and not layer.unroll and cell.use_bias
            and cell.activation is keras.activations.tanh
            and cell.recurrent_activation is keras.activations.sigmoid
            and not (training and (cell.dropout or cell.recurrent_dropout))
            and cell.compute_dtype == "float32")


def _make_inner_loop(original):
    def inner_loop(self, sequences, initial_state, mask, training=False):
        if isinstance(mask, (list, tuple)):  # as keras.layers.LSTM.inner_loop
            mask = mask[0]
        if not applies(self, mask, training):
            return original(sequences, initial_state, mask, training=training)
        cell = self.cell
        outputs, h, c = lstm_sequence(sequences, initial_state[0], initial_state[1], cell.kernel,
                                      cell.recurrent_kernel, cell.bias, mask=mask,
                                      go_backwards=self.go_backwards,
                                      zero_output_for_mask=self.zero_output_for_mask)
        return (h if mask is None else outputs[:, -1]), outputs, [h, c]

    return inner_loop


def lstm_sequence(inputs, h0, c0, kernel, recurrent_kernel, bias, mask=None, go_backwards=False,
                  zero_output_for_mask=False):
    """An LSTM over a batch of sequences, as ``keras.layers.LSTM`` computes it (TensorFlow).

    Args:
        inputs: ``(batch, time, features)``.
        h0, c0: Initial states, ``(batch, units)``.
        kernel, recurrent_kernel, bias: The LSTM cell's weights (gates i, f, c, o).
        mask: ``(batch, time)``, true at the steps that count; ``None``: all do.
        go_backwards: Run from the last step to the first; the outputs are
            then in that order, as Keras returns them.
        zero_output_for_mask: A masked step outputs zeros rather than the
            output before it.

    Returns:
        ``(outputs (batch, time, units), h_T, c_T)``.
    """
    import tensorflow as tf

    kernel = tf.convert_to_tensor(kernel)
    features = tf.shape(inputs)[2]
    # Time-major before the projection: the transposes move the narrow inputs
    # and outputs rather than the four-gate-wide projections.
    x = tf.transpose(inputs, [1, 0, 2])
    if go_backwards:
        x = tf.reverse(x, [0])
    shape = tf.shape(x)
    projected = tf.reshape(tf.matmul(tf.reshape(x, [-1, features]), kernel),
                           tf.concat([shape[:2], [tf.shape(kernel)[1]]], 0))
    if mask is not None:
        mask = tf.transpose(tf.cast(mask, tf.bool))[:, :, None]  # (time, batch, 1)
        if go_backwards:
            mask = tf.reverse(mask, [0])
    # tf.identity snapshots the states: a stateful layer assigns its carried
    # state variables after this call, and the gradient must see the old values.
    outputs, h, c = _recurrence(projected, tf.identity(h0), tf.identity(c0),
                                tf.identity(recurrent_kernel), tf.identity(bias), mask)
    if mask is not None:
        # The loop returns the carried h of every step; a masked step's output
        # is zero, or (without zero_output_for_mask) the carried h once some
        # step was unmasked (the previous output, as Keras' loop keeps it).
        shown = mask if zero_output_for_mask else tf.cumsum(tf.cast(mask, tf.int32), axis=0) > 0
        outputs = tf.where(shown, outputs, tf.zeros_like(outputs))
    return tf.transpose(outputs, [1, 0, 2]), h, c


def _recurrence(projected, h0, c0, recurrent_kernel, bias, mask=None):
    """The loop over time on time-major input projections ``(time, batch, 4 units)``, with its own gradient.

    ``mask`` (``(time, batch, 1)`` booleans, or ``None``) keeps both states
    through the masked steps; the outputs are the carried ``h`` of every step.
    The mask is read from the enclosing scope: it takes no gradient.
    """
    import tensorflow as tf

    @tf.custom_gradient
    def run(projected, h0, c0, recurrent_kernel, bias):
        steps = tf.shape(projected)[0]
        units = tf.shape(recurrent_kernel)[0]
        dtype = projected.dtype
        inputs = tf.TensorArray(dtype, size=steps).unstack(projected)

        def step(t, h, c, hs, cs, gates):
            z = inputs.read(t) + tf.matmul(h, recurrent_kernel)  # Keras' order: x W + h U + b
            z = z + bias
            i, f, g, o = tf.split(z, 4, axis=1)
            i, f, g, o = tf.sigmoid(i), tf.sigmoid(f), tf.tanh(g), tf.sigmoid(o)
            new_c = f * c + i * g
            new_h = o * tf.tanh(new_c)
            if mask is None:
                h, c = new_h, new_c
            else:
                h, c = tf.where(mask[t], new_h, h), tf.where(mask[t], new_c, c)
            return t + 1, h, c, hs.write(t, h), cs.write(t, c), gates.write(t, tf.concat([i, f, g, o], 1))

        arrays = [tf.TensorArray(dtype, size=steps) for _ in range(3)]
        _, h, c, hs, cs, gates = tf.while_loop(lambda t, *_: t < steps, step, (0, h0, c0, *arrays))
        hs, cs, gates = hs.stack(), cs.stack(), gates.stack()

        def grad(d_outputs, d_h, d_c):
            c_prev = tf.concat([c0[None], cs[:-1]], 0)
            transposed = tf.transpose(recurrent_kernel)

            def back(t, dh, dc, dz_all):
                i, f, g, o = tf.split(gates[t], 4, axis=1)
                tanh_c = tf.tanh(cs[t])
                dh = dh + d_outputs[t]
                carried_dc = dc
                dc = dc + dh * o * (1.0 - tanh_c * tanh_c)
                dz = tf.concat([dc * g * i * (1.0 - i), dc * c_prev[t] * f * (1.0 - f),
                                dc * i * (1.0 - g * g), dh * tanh_c * o * (1.0 - o)], 1)
                if mask is None:
                    return t - 1, tf.matmul(dz, transposed), dc * f, dz_all.write(t, dz)
                # A masked step passes both states' gradients through untouched.
                dz = tf.where(mask[t], dz, tf.zeros_like(dz))
                return (t - 1, tf.where(mask[t], tf.matmul(dz, transposed), dh),
                        tf.where(mask[t], dc * f, carried_dc), dz_all.write(t, dz))

            d_outputs = tf.zeros_like(hs) if d_outputs is None else d_outputs
            d_h = tf.zeros_like(h0) if d_h is None else d_h
            d_c = tf.zeros_like(c0) if d_c is None else d_c
            _, dh0, dc0, dz_all = tf.while_loop(lambda t, *_: t >= 0, back,
                                                (steps - 1, d_h, d_c, tf.TensorArray(dtype, size=steps)))
            dz_all = dz_all.stack()
            flat_dz = tf.reshape(dz_all, [-1, 4 * units])
            h_prev = tf.reshape(tf.concat([h0[None], hs[:-1]], 0), [-1, units])
            d_recurrent = tf.matmul(h_prev, flat_dz, transpose_a=True)
            return dz_all, dh0, dc0, d_recurrent, tf.reduce_sum(flat_dz, 0)

        return (hs, h, c), grad

    return run(projected, h0, c0, recurrent_kernel, bias)
