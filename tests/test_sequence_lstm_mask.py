"""The whole-sequence LSTM kernel (lstmtext.layers.sequence_lstm) with masks and go_backwards.

Each case runs ``keras.layers.LSTM`` through Keras' own loop and through the
kernel with the same weights, and compares outputs, final states and the
gradients with respect to the inputs and the three weights (float32 rounding).
"""

from __future__ import annotations

import numpy as np
import pytest

# Right padding with varied lengths, a row of all padding (the tagger pads a
# short last batch with empty rows) and a full row.
LENGTHS = (7, 4, 0, 1, 6)


def _right_padded(lengths=LENGTHS, steps=7):
    return np.arange(steps)[None, :] < np.asarray(lengths)[:, None]


def _holes():
    """A mask that is not right padding: gaps, leading padding, all padding, none."""
    return np.array([[1, 0, 1, 1, 0, 0, 1], [0, 0, 1, 1, 1, 1, 0], [0] * 7, [1] * 7, [0, 1, 0, 1, 0, 1, 0]], bool)


def _inputs(seed=0):
    return np.random.default_rng(seed).normal(size=(5, 7, 3)).astype("float32")


def _pair(make):
    """The same layer twice, the second with the kernel installed; equal weights."""
    import keras

    from lstmtext.layers import sequence_lstm

    keras.utils.set_random_seed(3)
    plain, fast = make(), make()
    x = np.zeros((5, 7, 3), "float32")
    plain(x), fast(x)
    # Bias away from Keras' ones/zeros initialisation, so every weight matters.
    fast.set_weights([w + np.random.default_rng(9).normal(scale=0.3, size=w.shape).astype("float32")
                      for w in plain.get_weights()])
    plain.set_weights(fast.get_weights())
    assert sequence_lstm.install(fast) == sum(
        isinstance(layer, keras.layers.LSTM) for layer in fast._flatten_layers())
    return plain, fast


def _run(layer, x, mask, initial_state=None):
    """Outputs (each returned tensor) and gradients w.r.t. the inputs and every weight."""
    import tensorflow as tf

    x = tf.constant(x)
    kwargs = {} if initial_state is None else {"initial_state": [tf.constant(s) for s in initial_state]}
    with tf.GradientTape() as tape:
        tape.watch(x)
        out = layer(x, mask=None if mask is None else tf.constant(mask), training=True, **kwargs)
        out = list(out) if isinstance(out, (list, tuple)) else [out]
        # Different weights per output and per position: no gradient is a plain sum.
        loss = sum(tf.reduce_sum(y * tf.sin(y + float(k)) * (1.0 + tf.range(y.shape[-1], dtype=y.dtype)))
                   for k, y in enumerate(out))
    grads = tape.gradient(loss, [x, *layer.trainable_variables])
    return [y.numpy() for y in out], [g.numpy() for g in grads]


def _assert_same(plain, fast, x, mask, initial_state=None):
    from lstmtext.layers import sequence_lstm

    out_a, grad_a = _run(plain, x, mask, initial_state)
    calls = []
    kernel = sequence_lstm.lstm_sequence
    sequence_lstm.lstm_sequence = lambda *a, **k: calls.append(k) or kernel(*a, **k)
    try:
        out_b, grad_b = _run(fast, x, mask, initial_state)
    finally:
        sequence_lstm.lstm_sequence = kernel
    assert calls and all((k["mask"] is None) == (mask is None) for k in calls)  # the kernel ran, not Keras' loop
    assert len(out_a) == len(out_b) and len(grad_a) == len(grad_b) == 1 + len(plain.trainable_variables)
    for a, b in zip(out_a, out_b):
        np.testing.assert_allclose(b, a, atol=2e-6, rtol=1e-5)
    for a, b in zip(grad_a, grad_b):
        np.testing.assert_allclose(b, a, atol=2e-5, rtol=1e-5)
    if mask is not None:
        # Padding takes no gradient: exactly zero input gradient at masked steps.
        assert not np.any(grad_b[0][~mask])
    return out_b, grad_b


def _lstm(**kwargs):
    import keras

    return lambda: keras.layers.LSTM(4, return_state=True, **kwargs)


@pytest.mark.parametrize("go_backwards", [False, True])
@pytest.mark.parametrize("return_sequences", [True, False])
@pytest.mark.parametrize("zero_output_for_mask", [False, True])
@pytest.mark.parametrize("mask", ["right", "holes"])
def test_masked_lstm_matches_keras(go_backwards, return_sequences, zero_output_for_mask, mask):
    plain, fast = _pair(_lstm(go_backwards=go_backwards, return_sequences=return_sequences,
                              zero_output_for_mask=zero_output_for_mask))
    mask = _right_padded() if mask == "right" else _holes()
    out, _ = _assert_same(plain, fast, _inputs(), mask)
    if return_sequences and zero_output_for_mask:
        order = mask[:, ::-1] if go_backwards else mask
        assert not np.any(out[0][~order])


@pytest.mark.parametrize("go_backwards", [False, True])
def test_masked_lstm_with_initial_state_matches_keras(go_backwards):
    """A nonzero initial state: carried through leading padding, yet those outputs stay zero."""
    plain, fast = _pair(_lstm(go_backwards=go_backwards, return_sequences=True))
    rng = np.random.default_rng(5)
    state = [rng.normal(size=(5, 4)).astype("float32") for _ in range(2)]
    _assert_same(plain, fast, _inputs(1), _holes(), state)
    _assert_same(plain, fast, _inputs(1), _right_padded(), state)


@pytest.mark.parametrize("return_sequences", [True, False])
def test_go_backwards_without_mask_matches_keras(return_sequences):
    plain, fast = _pair(_lstm(go_backwards=True, return_sequences=return_sequences))
    _assert_same(plain, fast, _inputs(2), None)


def test_all_padding_batch_keeps_the_initial_state():
    plain, fast = _pair(_lstm(return_sequences=True, zero_output_for_mask=True))
    mask = np.zeros((5, 7), bool)
    out, grads = _assert_same(plain, fast, _inputs(3), mask)
    assert not np.any(out[0]) and not np.any(out[1]) and not np.any(out[2])
    assert not any(np.any(g) for g in grads[1:])


@pytest.mark.parametrize("return_sequences", [True, False])
def test_bidirectional_with_mask_matches_keras(return_sequences):
    import keras

    def make():
        return keras.layers.Bidirectional(keras.layers.LSTM(4, return_sequences=return_sequences,
                                                            return_state=True))

    plain, fast = _pair(make)
    assert fast.backward_layer.go_backwards and fast.backward_layer.zero_output_for_mask == return_sequences
    _assert_same(plain, fast, _inputs(4), _right_padded())
    _assert_same(plain, fast, _inputs(4), _holes())
    _assert_same(plain, fast, _inputs(4), None)


def test_compiled_step_matches_keras():
    """Inside tf.function (as model.fit runs it), for a mask and sequence length seen only at run time."""
    import keras
    import tensorflow as tf

    plain, fast = _pair(lambda: keras.layers.Bidirectional(keras.layers.LSTM(4, return_sequences=True)))
    results = []
    for layer in (plain, fast):
        @tf.function(input_signature=[tf.TensorSpec((None, None, 3)), tf.TensorSpec((None, None), tf.bool)])
        def step(x, mask, layer=layer):
            with tf.GradientTape() as tape:
                tape.watch(x)
                y = layer(x, mask=mask, training=True)
                loss = tf.reduce_sum(y * tf.sin(y))
            return [y, *tape.gradient(loss, [x, *layer.trainable_variables])]

        results.append([t.numpy() for t in step(tf.constant(_inputs(6)), tf.constant(_right_padded()))])
    for a, b in zip(*results):
        np.testing.assert_allclose(b, a, atol=2e-5, rtol=1e-5)


def test_install_covers_bidirectional_and_nested_layers_and_falls_back():
    import keras

    from lstmtext.layers import sequence_lstm
    from lstmtext.layers.char_encoder import CharEncoder

    chars = keras.Input((None, None), dtype="int32")
    x = CharEncoder(10, 3, "lstm", hidden_size=2)(chars)
    y = keras.layers.Bidirectional(keras.layers.LSTM(4, return_sequences=True))(x)
    model = keras.Model(chars, y)
    assert sequence_lstm.install(model) == 4
    assert sequence_lstm.install(model) == 0  # already switched
    layer = keras.layers.LSTM(4, unroll=True)
    assert sequence_lstm.install(layer) == 1
    assert not sequence_lstm.applies(layer, None, True)  # unroll: Keras' loop at call time
    mask3 = np.ones((2, 3, 1), bool)
    assert not sequence_lstm.applies(keras.layers.LSTM(4), keras.ops.convert_to_tensor(mask3), True)


def _tiny_tagger(char_encoder):
    from lstmtext.ner.config import NERConfig
    from lstmtext.ner.features import Vocab
    from lstmtext.training.auto import fill

    words = ["<pad>", "<unk>", "the", "cat", "sat", "on", "mat", "a", "dog"]
    chars = ["<pad>", "<unk>", *sorted(set("thecatsonmadog"))]
    vocab = Vocab(words=words, chars=chars, tags=["O", "B-X", "I-X"])
    config = fill(NERConfig(word_dim=6, casing_dim=2, char_dim=4, char_encoder=char_encoder, char_filters=5,
                            char_hidden=3, hidden_size=5, num_layers=2, dropout=0.0, optimizer="adam", lr=0.01,
                            batch_size=4, epochs=1))
    return config, vocab


def test_tagger_trains_the_same_with_the_kernel():
    """A tiny BiLSTM-CRF tagger (character BiLSTM too): a few training steps with and without the kernel
    give the same weights."""
    import keras

    from lstmtext.layers import sequence_lstm
    from lstmtext.ner.network import build_model

    config, vocab = _tiny_tagger("lstm")
    rng = np.random.default_rng(0)
    lengths = [6, 3, 1, 0]  # the last row is all padding, as in a padded short last batch
    words = np.zeros((4, 6), "int32")
    chars = np.zeros((4, 6, 4), "int32")
    for r, n in enumerate(lengths):
        words[r, :n] = rng.integers(1, len(vocab.words), n)
        for w in range(n):
            k = rng.integers(1, 5)
            chars[r, w, :k] = rng.integers(1, len(vocab.chars), k)
    x = {"words": words, "casing": np.where(words > 0, 1, 0).astype("int32"), "chars": chars}
    y = np.where(words > 0, rng.integers(0, 3, words.shape), -1).astype("int32")
    trained = []
    for fast in (False, True):
        keras.utils.set_random_seed(4)
        model = build_model(config, vocab, None)
        switched = sequence_lstm.install(model) if fast else 0
        assert switched == (2 * config.num_layers + 2 if fast else 0)  # word BiLSTMs and the character BiLSTM
        losses = [float(model.train_on_batch(x, y)) for _ in range(4)]
        trained.append((losses, [v.numpy() for v in model.trainable_variables]))
    np.testing.assert_allclose(trained[1][0], trained[0][0], rtol=1e-5)
    for a, b in zip(trained[0][1], trained[1][1]):
        np.testing.assert_allclose(b, a, atol=1e-5, rtol=1e-4)
