"""The NumPy runtimes' fast paths give what the Keras layers give.

Each fast path (live rows only, fused gate activations, threads over rows,
character features by word length, top-k by blocks, the translator's
threaded steps) is checked against the Keras layer it replaces or against
the plain computation, on shapes small enough to run in a second; the
thread paths are forced on with a low row threshold.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

from lstmtext.decoding import parallel


@pytest.fixture
def many_threads(monkeypatch):
    """Split every batch over three threads, however small."""
    monkeypatch.setattr(parallel, "MIN_ROWS", 1)
    monkeypatch.setenv("LSTMTEXT_THREADS", "3")


def reference_lstm(x, lengths, kernel, recurrent, bias, reverse):
    """Keras' masked LSTM step by step: ``(outputs with the carried state at padding, h, c)``."""
    sig = lambda v: 1.0 / (1.0 + np.exp(-v))  # noqa: E731
    B, T, _ = x.shape
    H = recurrent.shape[0]
    h, c = np.zeros((B, H)), np.zeros((B, H))
    out = np.zeros((B, T, H))
    for t in (range(T - 1, -1, -1) if reverse else range(T)):
        z = x[:, t] @ kernel + h @ recurrent + bias
        i, f, g, o = np.split(z, 4, axis=-1)
        c_new = sig(f) * c + sig(i) * np.tanh(g)
        h_new = sig(o) * np.tanh(c_new)
        live = (t < lengths)[:, None]
        c, h = np.where(live, c_new, c), np.where(live, h_new, h)
        out[:, t] = h
    return out, h, c


@pytest.mark.parametrize("threads", [1, 3])
@pytest.mark.parametrize("reverse", [False, True])
def test_lstm_sequences_matches_masked_reference(threads, reverse):
    from lstmtext.decoding.lstm_numpy import lstm_sequences

    rng = np.random.default_rng(3)
    B, T, D, H = 7, 6, 5, 4
    x = rng.normal(size=(B, T, D)).astype(np.float32)
    lengths = np.array([6, 0, 3, 1, 6, 2, 5])
    kernel, recurrent = (rng.normal(size=s).astype(np.float32) for s in ((D, 4 * H), (H, 4 * H)))
    bias = rng.normal(size=4 * H).astype(np.float32) * 5  # saturated gates too (exp overflows to inf)
    want, wh, wc = reference_lstm(x.astype(np.float64), lengths, kernel, recurrent, bias, reverse)
    real = np.arange(T)[None, :] < lengths[:, None]
    for padding in ("carry", "zero", None):
        with np.errstate(all="raise"):  # no warning escapes (inf is handled)
            out, h, c = lstm_sequences(x, lengths, kernel, recurrent, bias, reverse=reverse, padding=padding,
                                       threads=threads)
        np.testing.assert_allclose(h, wh, atol=1e-5)
        np.testing.assert_allclose(c, wc, atol=1e-5)
        if padding is None:
            assert out is None
            continue
        np.testing.assert_allclose(out[real], want[real], atol=1e-5)
        if padding == "zero":
            assert not out[~real].any()
        elif not reverse:
            np.testing.assert_allclose(out[~real], want[~real], atol=1e-5)  # the carried state
        else:
            assert not out[~real].any()  # before a reversed sequence starts its state is zero


@pytest.mark.parametrize("threads", [1, 3])
def test_lstm_over_an_input_table_matches_embedded_inputs(threads):
    """Ids through an :class:`InputTable` (rows filled as first seen) equal the embedded vectors through the kernel."""
    from lstmtext.decoding.lstm_numpy import InputTable, fused_gates, lstm_sequences

    rng = np.random.default_rng(5)
    V, B, T, D, H = 11, 6, 5, 4, 3
    emb = rng.normal(size=(V, D)).astype(np.float32)
    kernel, recurrent = (rng.normal(size=s).astype(np.float32) for s in ((D, 4 * H), (H, 4 * H)))
    bias = rng.normal(size=4 * H).astype(np.float32)
    lengths = np.array([5, 2, 0, 4, 1, 5])
    fk, fr, fb = fused_gates(kernel, recurrent, bias)
    table = InputTable(emb, fk, fb)
    for seed in (0, 1):  # the second batch reuses some rows and fills others
        ids = np.random.default_rng(seed).integers(0, V if seed else V // 2, size=(B, T))
        want, wh, _ = lstm_sequences(emb[ids], lengths, kernel, recurrent, bias, threads=threads)
        got, h, _ = lstm_sequences(ids, lengths, None, fr, None, fused=True, threads=threads, table=table(ids))
        np.testing.assert_allclose(got, want, atol=1e-6)
        np.testing.assert_allclose(h, wh, atol=1e-6)
        assert table.ready[np.unique(ids)].all()
        if seed == 0:
            assert not table.ready[V // 2:].any()  # only the rows asked for are computed
    with pytest.raises(ValueError):
        lstm_sequences(ids, lengths, kernel, recurrent, bias, table=table(ids))


def test_lstm_sequences_empty_shapes():
    from lstmtext.decoding.lstm_numpy import lstm_sequences

    w = np.zeros((3, 8), np.float32), np.zeros((2, 8), np.float32), np.zeros(8, np.float32)
    out, h, _ = lstm_sequences(np.zeros((2, 0, 3), np.float32), np.zeros(2, int), *w)
    assert out.shape == (2, 0, 2) and h.shape == (2, 2)
    out, h, _ = lstm_sequences(np.zeros((0, 4, 3), np.float32), np.zeros(0, int), *w)
    assert out.shape == (0, 4, 2) and h.shape == (0, 2)


@pytest.mark.parametrize("go_backwards", [False, True])
def test_tagger_lstm_numpy_matches_keras_on_threads(many_threads, go_backwards):
    import keras

    from lstmtext.ner.runtime_numpy import lstm_numpy

    rng = np.random.default_rng(0)
    x = rng.normal(size=(9, 7, 5)).astype(np.float32)
    lengths = rng.integers(1, 8, size=9)
    mask = np.arange(7)[None, :] < lengths[:, None]
    layer = keras.layers.LSTM(6, return_sequences=True, go_backwards=False)
    layer.build((None, None, 5))
    for v in layer.weights:
        v.assign(rng.normal(size=v.shape).astype(np.float32) * 0.7)
    if go_backwards:  # Keras' reversed direction over masked input: reverse each sentence, run forward
        flipped = np.zeros_like(x)
        for b, n in enumerate(lengths):
            flipped[b, :n] = x[b, :n][::-1]
        keras_out = np.asarray(layer(flipped, mask=mask))
        want = np.zeros_like(keras_out)
        for b, n in enumerate(lengths):
            want[b, :n] = keras_out[b, :n][::-1]
    else:
        want = np.asarray(layer(x, mask=mask))
    kernel, recurrent, bias = (np.asarray(v) for v in layer.weights)
    got = lstm_numpy(x, lengths, kernel, recurrent, bias, reverse=go_backwards)
    np.testing.assert_allclose(got[mask], want[mask], atol=1e-5)
    last = lstm_numpy(x, lengths, kernel, recurrent, bias, reverse=go_backwards, return_sequences=False)
    ends = [want[b, 0 if go_backwards else n - 1] for b, n in enumerate(lengths)]
    np.testing.assert_allclose(last, np.stack(ends), atol=1e-5)


def char_tagger(encoder):
    """A NumpyTagger holding only a Keras CharEncoder's arrays (what ``_chars`` reads)."""
    from lstmtext.ner.runtime_numpy import NumpyTagger

    net = object.__new__(NumpyTagger)
    net.char_encoder = encoder.kind
    names = {"cnn": ["char_embedding/embeddings", "char_conv/kernel", "char_conv/bias"],
             "lstm": ["char_embedding/embeddings"] + [f"char_bilstm/{d}_char_lstm/lstm_cell/{n}"
                                                       for d in ("forward", "backward")
                                                       for n in ("kernel", "recurrent_kernel", "bias")]}
    net.a = {"char_encoder/" + n: np.asarray(v) for n, v in zip(names[encoder.kind], encoder.weights)}
    return net


@pytest.mark.parametrize("kind", ["cnn", "lstm"])
def test_char_features_match_the_keras_char_encoder(kind):
    from lstmtext.layers.char_encoder import CharEncoder

    rng = np.random.default_rng(5)
    encoder = CharEncoder(12, char_dim=4, kind=kind, filters=6, kernel_size=3, hidden_size=3, name="char_encoder")
    encoder.build((None, None, None))
    for v in encoder.weights:  # the padding character's embedding too: the convolution reads it
        v.assign(rng.normal(size=v.shape).astype(np.float32))
    chars = np.zeros((3, 5, 6), np.int32)
    words = [[1, 2, 3], [4, 5, 6, 7, 8, 9], [2], [1, 2, 3], [11, 10, 1, 1], [3, 3, 3, 3, 3, 3], [7, 7]]
    slots = [(0, 0), (0, 1), (0, 2), (1, 0), (1, 3), (2, 1), (2, 4)]  # repeats, one of full width, padding words
    for (b, t), w in zip(slots, words):
        chars[b, t, : len(w)] = w
    want = np.asarray(encoder(chars))
    np.testing.assert_allclose(char_tagger(encoder)._chars(chars), want, atol=1e-5)
    if kind == "cnn":  # a padding character inside a word: read as the Keras layer reads it
        chars[1, 3, 1] = 0
        np.testing.assert_allclose(char_tagger(encoder)._chars(chars), np.asarray(encoder(chars)), atol=1e-5)


def test_batch_encoding_equals_token_by_token_look_ups(monkeypatch):
    """encode's one-gather path (the token table) gives each token's own ids, across table growth and restarts."""
    from lstmtext.ner.features import UNK_ID, Vocab, casing_class, encode

    vocab = Vocab(["<pad>", "<unk>", "the", "0000", "paris"], ["<pad>", "<unk>", "t", "h", "e", "P", "a"],
                  ["O", "S-LOC"], max_word_length=4)
    monkeypatch.setattr(Vocab, "TOKEN_CACHE", 1500)  # restarts within this test
    rng = np.random.default_rng(3)
    pool = ["the", "The", "Paris", "1999", "", "x" * 9, "théâtre"] + [f"w{i}" for i in range(1400)]
    for width in (None, 2, 7):
        for _ in range(4):
            batch = [[pool[k] for k in rng.integers(0, len(pool), size=n)] for n in rng.integers(1, 9, size=300)]
            got = encode(vocab, batch, char_width=width)
            C = width or max(min(len(t), 4) for s in batch for t in s) or 1
            assert got["chars"].shape == (300, max(map(len, batch)), C)
            for b, sentence in enumerate(batch):
                for i, tok in enumerate(sentence):
                    assert got["words"][b, i] == vocab.word_index.get(vocab.normalize(tok), UNK_ID)
                    assert got["casing"][b, i] == casing_class(tok)
                    ids = [vocab.char_index.get(ch, UNK_ID) for ch in tok[:4]][:C]
                    assert got["chars"][b, i].tolist() == ids + [0] * (C - len(ids))
                assert not got["words"][b, len(sentence):].any() and not got["chars"][b, len(sentence):].any()
    ids = [[1] * len(s) for s in batch]
    lengths = np.array([len(s) for s in batch])
    real = np.arange(lengths.max())[None, :] < lengths[:, None]
    np.testing.assert_array_equal(encode(vocab, batch, word_ids=ids)["words"], real.astype(np.int32))


def test_run_concurrently_keeps_order_and_raises_a_task_error(many_threads):
    seen = []
    assert parallel.run_concurrently([lambda k=k: seen.append(k) or k * k for k in range(4)]) == [0, 1, 4, 9]
    assert sorted(seen) == [0, 1, 2, 3]

    def fails():
        raise ValueError("task 2")

    with pytest.raises(ValueError, match="task 2"):
        parallel.run_concurrently([lambda: 1, fails, lambda: 3])


def test_map_in_threads_keeps_order_shares_the_work_and_raises(many_threads):
    import threading

    names = {}
    first_three = threading.Barrier(3, timeout=30)  # items 0-2 held until three threads hold one each

    def square(i):
        names[i] = threading.get_ident()
        if i < 3:
            first_three.wait()
        assert parallel.workers(10_000) == 1  # work inside is not split again
        return i * i

    assert parallel.map_in_threads(square, 40, 3) == [i * i for i in range(40)]
    assert sorted(names) == list(range(40)) and len(set(names.values())) == 3
    assert parallel.workers(10_000) == 3  # outside again
    assert parallel.map_in_threads(lambda i: i, 5, 1) == [0, 1, 2, 3, 4] and parallel.map_in_threads(square, 0, 3) == []

    def fails(i):
        if i == 7:
            raise ValueError("item 7")
        return i

    with pytest.raises(ValueError, match="item 7"):
        parallel.map_in_threads(fails, 40, 3)


def test_token_table_from_threads_equals_look_ups_one_by_one(monkeypatch):
    """Vocab.token_rows called from threads at once (as batches tagged on threads do) keeps every token's row."""
    from lstmtext.ner.features import Vocab

    vocab = Vocab(["<pad>", "<unk>"] + [f"w{i}" for i in range(500)], ["<pad>", "<unk>", "w", "1", "2"], ["O"])
    monkeypatch.setattr(Vocab, "TOKEN_CACHE", 3000)  # the table grows and starts over meanwhile
    rng = np.random.default_rng(4)
    batches = [[f"w{k}" for k in rng.integers(0, 800, size=200)] for _ in range(60)]
    got = parallel.map_in_threads(lambda i: vocab.token_rows(batches[i]), len(batches), 4)
    fresh = Vocab(vocab.words, vocab.chars, vocab.tags)
    for batch, rows in zip(batches, got):
        np.testing.assert_array_equal(rows, np.stack([fresh.token_rows([t])[0] for t in batch]))


def test_allocator_settings_apply_once_on_glibc_and_yield_to_the_users():
    import platform
    import subprocess
    import sys

    code = "from lstmtext.decoding.memory import keep_freed_memory as k; print(k(), k())"
    glibc = platform.libc_ver()[0] == "glibc"
    for env, want in [({}, glibc), ({"LSTMTEXT_MALLOC": "0"}, False), ({"MALLOC_ARENA_MAX": "2"}, False)]:
        base = {k: v for k, v in os.environ.items() if not k.startswith(("MALLOC_", "LSTMTEXT_MALLOC"))}
        out = subprocess.run([sys.executable, "-c", code], env={**base, **env}, capture_output=True, text=True,
                             check=True).stdout.split()
        assert out == [str(want)] * 2, env


def test_top_k_ids_selects_what_argpartition_selects():
    from lstmtext.translate.numpy_runtime import top_k_ids

    rng = np.random.default_rng(2)
    for V, k in [(8000, 6), (1000, 1), (1003, 6), (1003, 2), (100, 6), (7, 6), (5, 6)]:
        x = rng.normal(size=(9, V)).astype(np.float32)
        x[0, -1] = 50.0  # the best in the tail columns
        x[1, :min(6, V)] = 40.0 + np.arange(min(6, V))  # the best all in one block of columns
        x[2, ::V // 16 or 1] = 30.0 + np.arange(len(x[2, ::V // 16 or 1]))  # the best all in one class of columns
        got, peak = top_k_ids(x, k)
        kk = min(k, V)
        assert got.shape == (9, kk)
        np.testing.assert_array_equal(peak[:, 0], x.max(axis=1))
        want = np.sort(np.argpartition(-x, kk - 1, axis=1)[:, :kk], axis=1) if kk < V else np.tile(np.arange(V), (9, 1))
        np.testing.assert_array_equal(np.sort(got, axis=1), want)


@pytest.mark.parametrize("attention", ["luong", "bahdanau"])
def test_translator_steps_on_threads_equal_one_thread_and_decode_step(monkeypatch, attention):
    from lstmtext.translate.config import TranslateConfig
    from lstmtext.translate.network import build_translator
    from lstmtext.translate.numpy_runtime import NumpyTranslator
    from tests.test_translate import fill

    c = fill(TranslateConfig(embedding_dim=8, encoder_units=6, decoder_units=10, encoder_layers=2,
                             decoder_layers=2, attention=attention, attention_units=5, tie_embeddings=False))
    parts = build_translator(c, 20, 300)
    net = NumpyTranslator({v.path: np.asarray(v.numpy()) for v in parts.model.weights}, c)
    rng = np.random.default_rng(4)
    src = rng.integers(4, 20, (5, 6)).astype("int32")
    src[1, 3:] = 0
    copies, k = 3, 4
    tokens = rng.integers(4, 300, 15).astype(np.int32)
    parents = rng.permutation(15).astype(np.int32)
    active = np.repeat([True, False, True, True, True], copies)

    def run(threads):
        monkeypatch.setattr(parallel, "MIN_ROWS", 1)
        monkeypatch.setenv("LSTMTEXT_THREADS", str(threads))
        state = net.start(src, copies)
        return net.step(tokens, parents, state, k, active), state

    (v1, i1, s1), state = run(1)
    (v3, i3, s3), _ = run(3)
    np.testing.assert_array_equal(i1, i3)
    np.testing.assert_allclose(v1, v3, atol=1e-6)
    for a, b in zip(s1["states"], s3["states"]):
        np.testing.assert_allclose(a, b, atol=1e-6)
    # The k best of the full log-softmax, in order; skipped sentences get (-inf, end-of-sentence).
    states = [s[parents] for s in state["states"]]
    log_probs, _ = net.decode_step(tokens, states, state["memory"].repeat(1, 0), state["mask"], copies)
    order = np.argsort(-log_probs, axis=1, kind="stable")[:, :k]
    # Compared by score: the untrained network's weights are random, and two logits a rounding error apart
    # may come out in either order from the two computations.
    picked = np.take_along_axis(log_probs, i1, 1)
    np.testing.assert_allclose(picked[active], np.take_along_axis(log_probs, order, 1)[active], atol=1e-5)
    np.testing.assert_allclose(v1[active], picked[active], atol=1e-5)
    assert all(len(set(row)) == k for row in i1[active])
    assert np.isneginf(v1[~active]).all() and (i1[~active] == 3).all()


def test_translator_gate_table_fills_blocks_the_same_in_any_order(monkeypatch):
    from lstmtext.translate import numpy_runtime
    from lstmtext.translate.config import TranslateConfig
    from lstmtext.translate.network import build_translator
    from lstmtext.translate.numpy_runtime import NumpyTranslator
    from tests.test_translate import fill

    monkeypatch.setattr(numpy_runtime, "GATE_BLOCK", 8)
    c = fill(TranslateConfig(embedding_dim=8, encoder_units=6, decoder_units=10, encoder_layers=1,
                             decoder_layers=1, attention="luong", tie_embeddings=True))
    parts = build_translator(c, 20, 61)  # 61 target ids: the last block is short
    arrays = {v.path: np.asarray(v.numpy()) for v in parts.model.weights}
    want = NumpyTranslator(arrays, c)
    dim = want.tgt_emb.shape[1]
    full = want.tgt_emb @ want._cells[0][0][:dim]
    first, second = NumpyTranslator(arrays, c), NumpyTranslator(arrays, c)
    tokens = np.array([60, 3, 17, 59, 3, 40], np.int32)
    got = first._embedded_gates(tokens)
    np.testing.assert_allclose(got, full[tokens], rtol=1e-5, atol=1e-6)
    for t in (np.array([40]), np.array([59, 17]), np.array([3, 60])):  # other tokens first, one at a time
        second._embedded_gates(t.astype(np.int32))
    np.testing.assert_array_equal(second._embedded_gates(tokens), got)
    assert not first._gate_table[1][[1, 3, 4]].any()  # blocks of no token stay unfilled


@pytest.mark.parametrize("beam", [1, 4])
def test_translator_batches_on_threads_equal_one_batch_at_a_time(monkeypatch, beam):
    from lstmtext.translate.config import TranslateConfig
    from lstmtext.translate.decoding import translate_ids
    from lstmtext.translate.network import build_translator
    from lstmtext.translate.numpy_runtime import NumpyTranslator
    from tests.test_translate import fill

    c = fill(TranslateConfig(embedding_dim=8, encoder_units=6, decoder_units=10, attention_units=5))
    parts = build_translator(c, 20, 40)
    net = NumpyTranslator({v.path: np.asarray(v.numpy()) for v in parts.model.weights}, c)
    rng = np.random.default_rng(6)
    sources = [rng.integers(4, 20, int(n)).tolist() for n in rng.integers(1, 9, 45)]
    used = []
    real = parallel.map_in_threads
    monkeypatch.setattr(parallel, "map_in_threads", lambda fn, n, threads: used.append(threads) or real(fn, n, threads))

    def run(threads):
        monkeypatch.setenv("LSTMTEXT_THREADS", str(threads))
        return [[(h.tokens, h.score) for h in hyps]
                for hyps in translate_ids(net, sources, beam=beam, batch_size=4, max_extra=3, nbest=min(beam, 2))]

    assert run(3) == run(1)
    assert used == [3, 1]


def test_int8_lite_parts_skip_the_xnnpack_delegate(tmp_path, monkeypatch):
    import json

    from lstmtext.lite import runtime

    made = {}
    monkeypatch.setattr(runtime, "available", lambda: True)
    monkeypatch.setattr(runtime, "LiteFunction", lambda path, i, o, delegate: made.setdefault(path.name, delegate))
    (tmp_path / "lite").mkdir()
    (tmp_path / "lite" / "step.tflite").write_bytes(b"part")

    class Bundle:
        task = "lm"
        file = staticmethod(lambda rel: tmp_path / rel)
        json = staticmethod(lambda rel: json.loads((tmp_path / rel).read_text()))

    for quantize, delegate in (("float16", True), ("dynamic", False)):
        manifest = {"format": runtime.FORMAT, "version": 1, "task": "lm", "quantize": quantize,
                    "files": {"step": {"file": "step.tflite",
                                       "sha256": runtime.file_digest(tmp_path / "lite" / "step.tflite")}}}
        (tmp_path / "lite" / "manifest.json").write_text(json.dumps(manifest))
        made.clear()
        runtime.load_parts(Bundle, {"step": ([], [])})
        assert made == {"step.tflite": delegate}
