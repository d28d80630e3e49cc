"""The CRF layer against brute-force enumeration on tiny random potentials."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from lstmtext.layers.char_encoder import CharEncoder  # noqa: E402
from lstmtext.layers.crf import CRF, FORBIDDEN  # noqa: E402
from lstmtext.layers.viterbi import viterbi_numpy  # noqa: E402


def brute(emissions, length, trans, start, end):
    """All tag sequences of ``length`` with their scores."""
    K = emissions.shape[-1]
    out = []
    for seq in itertools.product(range(K), repeat=length):
        s = start[seq[0]] + end[seq[-1]] + sum(emissions[t, seq[t]] for t in range(length))
        s += sum(trans[seq[t - 1], seq[t]] for t in range(1, length))
        out.append((seq, s))
    return out


def make_crf(K, rng, constraints=(None, None, None)):
    crf = CRF(K, *constraints)
    crf.build((None, None, K))
    crf.transitions.assign(rng.normal(size=(K, K)).astype("float32"))
    crf.start_transitions.assign(rng.normal(size=(K,)).astype("float32"))
    crf.end_transitions.assign(rng.normal(size=(K,)).astype("float32"))
    return crf


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_viterbi_and_likelihood_match_brute_force(seed):
    rng = np.random.default_rng(seed)
    B, T, K = 4, 5, 3
    lengths = np.array([5, 3, 1, 4])
    emissions = rng.normal(size=(B, T, K)).astype("float32")
    mask = np.arange(T)[None, :] < lengths[:, None]
    crf = make_crf(K, rng)
    trans, start, end = crf.potentials_numpy()
    decoded = keras.ops.convert_to_numpy(crf.decode(emissions, mask))
    decoded_np = viterbi_numpy(emissions, lengths, trans, start, end)
    tags = rng.integers(0, K, size=(B, T))
    ll = keras.ops.convert_to_numpy(crf.log_likelihood(emissions, tags, mask))
    for b in range(B):
        n = lengths[b]
        scored = brute(emissions[b], n, trans, start, end)
        best = max(scored, key=lambda x: x[1])[0]
        assert tuple(decoded[b, :n]) == best
        assert (decoded[b, n:] == -1).all()
        assert tuple(decoded_np[b]) == best
        logz = np.logaddexp.reduce([s for _, s in scored])
        gold = dict(scored)[tuple(tags[b, :n])]
        assert ll[b] == pytest.approx(gold - logz, abs=1e-4)


def test_loss_reads_padding_from_targets():
    rng = np.random.default_rng(5)
    crf = make_crf(3, rng)
    emissions = rng.normal(size=(2, 4, 3)).astype("float32")
    y = np.array([[0, 1, 2, 1], [2, 0, -1, -1]])
    loss = keras.ops.convert_to_numpy(crf.loss(y, emissions))
    mask = y >= 0
    ll = keras.ops.convert_to_numpy(crf.log_likelihood(emissions, np.maximum(y, 0), mask))
    np.testing.assert_allclose(loss, -ll, rtol=1e-6)
    # A padded copy of a sentence scores exactly as the sentence alone.
    alone = keras.ops.convert_to_numpy(crf.loss(y[1:, :2], emissions[1:, :2]))
    assert loss[1] == pytest.approx(alone[0], abs=1e-5)


def test_constraints_forbid_sequences():
    rng = np.random.default_rng(3)
    K, T = 3, 4
    # 0 -> 2 and 2 -> 2 forbidden, may not start with 1 nor end with 0.
    pairs = [[i, j] for i in range(K) for j in range(K) if (i, j) not in ((0, 2), (2, 2))]
    crf = make_crf(K, rng, (pairs, [0, 2], [1, 2]))
    trans, start, end = crf.potentials_numpy()
    for trial in range(5):
        emissions = (rng.normal(size=(1, T, K)) * 5).astype("float32")
        decoded = tuple(viterbi_numpy(emissions, np.array([T]), trans, start, end)[0])
        assert decoded[0] != 1 and decoded[-1] != 0
        assert all((a, b) not in ((0, 2), (2, 2)) for a, b in zip(decoded, decoded[1:]))
        allowed = [(s, v) for s, v in brute(emissions[0], T, trans, start, end) if v > FORBIDDEN / 2]
        assert decoded == max(allowed, key=lambda x: x[1])[0]
        keras_tags = keras.ops.convert_to_numpy(crf.decode(emissions, np.ones((1, T), bool)))
        assert tuple(keras_tags[0]) == decoded
    # A forbidden sequence has (practically) zero probability.
    ll = keras.ops.convert_to_numpy(crf.log_likelihood(emissions, np.array([[0, 2, 1, 1]]), np.ones((1, T), bool)))
    assert ll[0] < -1000


def test_gradient_lowers_loss():
    rng = np.random.default_rng(7)
    K = 4
    inputs = keras.Input((None, K))
    crf = CRF(K, name="crf")
    model = keras.Model(inputs, crf(keras.layers.Dense(K, name="dense")(inputs)))
    model.compile(optimizer=keras.optimizers.Adam(0.05), loss=crf.loss)
    x = rng.normal(size=(8, 6, K)).astype("float32")
    y = np.argmax(x, axis=-1).astype("int32")
    y[:, 4:] = -1
    first = float(model.train_on_batch(x, y))
    for _ in range(30):
        last = float(model.train_on_batch(x, y))
    assert last < first / 2


def test_layers_serialize_round_trip():
    crf = CRF(5, [[0, 1], [1, 1]], [0], [1], name="crf")
    again = CRF.from_config(crf.get_config())
    assert again.get_config() == crf.get_config()
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(crf))
    assert isinstance(restored, CRF) and restored.allowed_transitions == [[0, 1], [1, 1]]
    enc = CharEncoder(20, 8, "lstm", hidden_size=6, name="chars")
    again = CharEncoder.from_config(enc.get_config())
    assert again.get_config() == enc.get_config()
    out = again(np.array([[[1, 2, 0], [0, 0, 0]]], "int32"))
    assert tuple(out.shape) == (1, 2, 12)
    assert np.allclose(keras.ops.convert_to_numpy(out)[0, 1], 0.0)


def test_marginals_and_marginal_decoding_equal_brute_force():
    from lstmtext.layers.viterbi import decode_tags, marginals_numpy

    rng = np.random.default_rng(11)
    K = 3
    trans, start, end = (rng.normal(size=s).astype("float32") * 2 for s in ((K, K), (K,), (K,)))
    emissions = rng.normal(size=(4, 5, K)).astype("float32") * 2
    lengths = np.array([5, 3, 1, 0])
    probs = marginals_numpy(emissions, lengths, trans, start, end)
    decoded = decode_tags(emissions, lengths, (trans, start, end), "marginal")
    for b, T in enumerate(lengths):
        assert probs[b].shape == (T, K) and len(decoded[b]) == T
        if T == 0:
            continue
        paths = brute(emissions[b], T, trans, start, end)
        scores = np.array([v for _, v in paths], np.float64)
        weights = np.exp(scores - scores.max())
        weights /= weights.sum()
        expected = np.zeros((T, K))
        for (seq, _), w in zip(paths, weights):
            expected[np.arange(T), list(seq)] += w
        np.testing.assert_allclose(probs[b], expected, atol=1e-5)
        assert list(decoded[b]) == list(expected.argmax(axis=1))
    # Viterbi through the same entry point; a softmax head takes each token's best score.
    viterbi = decode_tags(emissions, lengths, (trans, start, end), "viterbi")
    assert [list(v) for v in viterbi] == [list(v) for v in viterbi_numpy(emissions, lengths, trans, start, end)]
    plain = decode_tags(emissions, lengths, None)
    assert list(plain[0]) == list(emissions[0].argmax(-1)) and len(plain[3]) == 0


def test_per_token_labels_decode_by_marginals_and_spans_by_viterbi():
    from lstmtext.ner.labels import decoding_of

    assert decoding_of({"label_kind": "tokens"}) == "marginal"
    assert decoding_of({"label_kind": "tokens", "decode": "viterbi"}) == "viterbi"
    assert decoding_of({"label_kind": "spans", "decode": "marginal"}) == "viterbi"
    assert decoding_of({}) == "viterbi"  # bundles from before label kinds hold spans
