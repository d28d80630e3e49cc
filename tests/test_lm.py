"""The language model: exact perplexity, runtimes agree, resume, save/load."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest

from lstmtext import bundle as bundle_io
from lstmtext.errors import ConfigError, DataError, UsageError
from lstmtext.tasks import EvalOptions, PredictOptions, TrainOptions
from lstmtext.training.reporting import Reporter
from tests.conftest import TINY_LM


def stepped_nll(model, tok, lines: list[str]) -> float:
    """Total NLL of ``lines`` stepped one token at a time through the numpy runtime (batch 1, no resets)."""
    stream = [3] + [i for line in lines for i in tok.encode(line) + [3]]
    state, nll = model.initial_state(1), 0.0
    for prev, nxt in zip(stream[:-1], stream[1:]):
        lp, state = model.step(np.array([prev]), state)
        nll -= lp[0, nxt]
    return nll


def test_numpy_runtime_matches_keras_network(tiny_lm: Path):
    from lstmtext.lm.api import load_config, load_numpy_model
    from lstmtext.lm.network import build_lm
    from lstmtext.weights import assign_model_weights, load_arrays

    b = bundle_io.read(tiny_lm)
    config = load_config(b)
    np_model, tok = load_numpy_model(b)
    ids = [3] + tok.encode("the cat sees the ball today")
    keras_model = build_lm(config, tok.vocab_size, 1, None, stateful=False)
    assign_model_weights(keras_model, load_arrays(b.file("weights.h5")))
    logits = np.asarray(keras_model.predict_on_batch(np.array([ids])))[0]
    expected = logits - np.log(np.exp(logits - logits.max(-1, keepdims=True)).sum(-1, keepdims=True)) \
        - logits.max(-1, keepdims=True)
    state = np_model.initial_state(1)
    for t, i in enumerate(ids):
        lp, state = np_model.step(np.array([i]), state)
        np.testing.assert_allclose(lp[0], expected[t], atol=1e-4)


def test_evaluate_perplexity_is_exact(tiny_lm: Path, corpus):
    """evaluate's perplexity equals exp(NLL / (words + lines)) stepped token by token in numpy.

    With one stream (batch 1) the state is never reset, so the two must agree exactly.
    """
    from lstmtext.lm.api import evaluate, load_numpy_model

    b = bundle_io.read(tiny_lm)
    result = evaluate(b, EvalOptions(files=[corpus["valid"]], batch_size=1))
    model, tok = load_numpy_model(b)
    lines = corpus["valid"].read_text().splitlines()
    nll = stepped_nll(model, tok, lines)
    words = sum(len(line.split()) for line in lines)
    assert result["words"] == words and result["lines"] == len(lines)
    assert result["tokens"] == words + len(lines)
    assert result["perplexity"] == pytest.approx(math.exp(nll / (words + len(lines))), rel=1e-4)


def test_uniform_model_scores_the_vocabulary_size(tiny_lm: Path, corpus, tmp_path: Path):
    """A model whose weights are all zero predicts uniformly: perplexity == vocabulary size."""
    import h5py

    from lstmtext.lm.api import evaluate

    uniform = tmp_path / "uniform"
    shutil.copytree(bundle_io.resolve_path(tiny_lm), uniform)
    with h5py.File(uniform / "weights.h5", "r+") as f:
        def zero(name, obj):
            if isinstance(obj, h5py.Dataset):
                obj[...] = 0
        f.visititems(zero)
    b = bundle_io.read(uniform)
    vocab = json.loads((uniform / "config.json").read_text())["tokenizer"]["vocab_size"]
    result = evaluate(b, EvalOptions(files=[corpus["valid"]]))
    assert result["perplexity"] == pytest.approx(vocab, rel=1e-5)
    assert result["token_perplexity"] == pytest.approx(vocab, rel=1e-5)


def test_subword_model_counts_words_not_pieces(corpus, tmp_path: Path):
    from lstmtext.lm.api import evaluate, predict_records, train

    out = tmp_path / "spm"
    train(TrainOptions(output=out, train=[corpus["train"]], valid=[corpus["valid"]],
                       sets=TINY_LM + ["tokenizer=unigram", "vocab_size=50"], epochs=1, seed=1), Reporter())
    b = bundle_io.read(out)
    result = evaluate(b, EvalOptions(files=[corpus["valid"]]))
    assert result["tokens"] > result["words"] + result["lines"]  # pieces outnumber words
    assert result["perplexity"] > result["token_perplexity"]
    (record,) = predict_records(b, ["the old"], top_k=4)
    words = [w["word"] for w in record["next"]]
    assert len(words) == 4 and all(w and " " not in w for w in words)
    assert sum(w["prob"] for w in record["next"]) <= 1.0 + 1e-6


def test_save_load_identical_predictions(tiny_lm: Path, tmp_path: Path):
    from lstmtext.lm.api import predict

    copy = tmp_path / "copy"
    shutil.copytree(bundle_io.resolve_path(tiny_lm), copy)
    opts = PredictOptions(format="jsonl", top_k=3)
    a = list(predict(bundle_io.read(tiny_lm), ["the cat", ""], opts))
    b = list(predict(bundle_io.read(copy), ["the cat", ""], opts))
    assert a == b and len(a) == 2


def test_generate_is_reproducible(tiny_lm: Path):
    from lstmtext.lm.api import generate

    b = bundle_io.read(tiny_lm)
    one = generate(b, "the dog", max_words=10, seed=7)
    assert one == generate(b, "the dog", max_words=10, seed=7)
    assert 0 < len(one.split()) <= 10
    greedy = generate(b, "the dog", max_words=5, temperature=0)
    assert greedy == generate(b, "the dog", max_words=5, temperature=0, seed=99)


def test_resume_ends_where_uninterrupted_training_ends(corpus, tmp_path: Path):
    from lstmtext.lm.api import train

    sets = TINY_LM + ["tokenizer=word", "vocab_size=0", "lr_schedule=step", "lr_decay_start=1"]
    full = train(TrainOptions(output=tmp_path / "full", train=[corpus["train"]], valid=[corpus["valid"]],
                              sets=sets, epochs=3, seed=5), Reporter())
    train(TrainOptions(output=tmp_path / "part", train=[corpus["train"]], valid=[corpus["valid"]],
                       sets=sets, epochs=1, seed=5), Reporter())
    resumed = train(TrainOptions(output=tmp_path / "part", train=[corpus["train"]], valid=[corpus["valid"]],
                                 sets=sets, epochs=3, seed=5, resume=True), Reporter())
    assert resumed["epoch"] == full["epoch"]
    assert resumed["valid_perplexity"] == pytest.approx(full["valid_perplexity"], rel=1e-5)
    assert resumed["lr"] == full["lr"]


def test_training_file_shorter_than_one_window(tmp_path: Path, corpus):
    from lstmtext.lm.api import train

    short = tmp_path / "short.txt"
    short.write_text("a b c\n")
    with pytest.raises(DataError, match="short.txt.*BPTT"):
        train(TrainOptions(output=tmp_path / "o", train=[short], valid=[corpus["valid"]],
                           sets=TINY_LM + ["tokenizer=word"]), Reporter())
    assert not (tmp_path / "o" / "model-best").exists()


def test_config_errors_name_the_key(corpus, tmp_path: Path):
    from lstmtext.lm.api import train

    for sets, key in ([["hiden_size=3"], "hiden_size"], [["hidden_size=big"], "hidden_size"],
                      [["dropout=1.5"], "dropout"],
                      [["tie_weights=true", "embedding_dim=8", "hidden_size=16"], "tie_weights"]):
        with pytest.raises(ConfigError, match=key):
            train(TrainOptions(output=tmp_path / "o", train=[corpus["train"]], valid=[corpus["valid"]],
                               sets=sets), Reporter())


def test_existing_output_is_protected(tiny_lm: Path, corpus):
    from lstmtext.lm.api import train

    before = (tiny_lm / "model-best" / "weights.h5").read_bytes()
    with pytest.raises(UsageError, match="--resume"):
        train(TrainOptions(output=tiny_lm, train=[corpus["train"]], valid=[corpus["valid"]], sets=TINY_LM),
              Reporter())
    assert (tiny_lm / "model-best" / "weights.h5").read_bytes() == before


def test_tied_model_trains_and_runtimes_agree(corpus, tmp_path: Path):
    from lstmtext.lm.api import evaluate, load_numpy_model, train

    out = tmp_path / "tied"
    train(TrainOptions(output=out, train=[corpus["train"]], valid=[corpus["valid"]],
                       sets=TINY_LM + ["tokenizer=word", "vocab_size=0", "tie_weights=true", "num_layers=2",
                                       "dropout=0.2", "dropout_embedding=0.1", "dropout_output=0.1"],
                       epochs=1, seed=2), Reporter())
    b = bundle_io.read(out)
    model, tok = load_numpy_model(b)
    lines = corpus["valid"].read_text().splitlines()
    nll = stepped_nll(model, tok, lines)
    result = evaluate(b, EvalOptions(files=[corpus["valid"]], batch_size=1))
    assert result["perplexity"] == pytest.approx(math.exp(nll / result["tokens"]), rel=1e-4)


def test_float16_export_keeps_perplexity(tiny_lm: Path, corpus, tmp_path: Path):
    from lstmtext.export import export_bundle
    from lstmtext.lm.api import evaluate

    r = export_bundle(tiny_lm, tmp_path / "half", "float16")
    assert r["output_bytes"] < r["source_bytes"]
    full = evaluate(bundle_io.read(tiny_lm), EvalOptions(files=[corpus["valid"]]))
    half = evaluate(bundle_io.read(tmp_path / "half"), EvalOptions(files=[corpus["valid"]]))
    assert half["perplexity"] == pytest.approx(full["perplexity"], rel=1e-3)
    assert not (tmp_path / "half" / "optimizer.h5").exists()
    # A plain re-export keeps float16 weights as float16.
    again = export_bundle(tmp_path / "half", tmp_path / "again")
    assert again["output_bytes"] == pytest.approx(again["source_bytes"], rel=0.01)
    assert bundle_io.read(tmp_path / "again").config["weights_dtype"] == "float16"


def test_average_is_the_mean_of_checkpoints_and_refuses_other_models(tiny_lm: Path, corpus, tmp_path: Path):
    """``lstmtext average``: weights equal the element-wise mean; a model of another vocabulary is named."""
    from typer.testing import CliRunner

    from lstmtext.cli import app
    from lstmtext.errors import BundleError
    from lstmtext.export import average_bundles, export_bundle
    from lstmtext.lm.api import evaluate
    from lstmtext.weights import load_arrays, save_arrays

    a, b = tmp_path / "a", tmp_path / "b"
    export_bundle(tiny_lm, a)
    export_bundle(tiny_lm, b)
    wa = load_arrays(a / "weights.h5")
    rng = np.random.default_rng(0)
    wb = {k: v + rng.normal(0, 0.05, v.shape).astype(np.float32) for k, v in wa.items()}
    save_arrays(wb, b / "weights.h5")
    r = CliRunner().invoke(app, ["average", str(a), str(b), "-o", str(tmp_path / "mean")])
    assert r.exit_code == 0, r.output
    mean = load_arrays(tmp_path / "mean" / "weights.h5")
    assert set(mean) == set(wa)
    for k in wa:
        np.testing.assert_allclose(mean[k], (wa[k] + wb[k]) / 2, rtol=1e-6, atol=1e-7)
    assert json.loads((tmp_path / "mean" / "config.json").read_text())["averaged_from"] == [str(a), str(b)]
    assert not (tmp_path / "mean" / "metrics.json").exists()  # it scored one checkpoint, not the mean
    # A model averaged with itself is that model.
    average_bundles([a, a], tmp_path / "self")
    ppl = evaluate(bundle_io.read(a), EvalOptions(files=[corpus["valid"]]))["perplexity"]
    assert evaluate(bundle_io.read(tmp_path / "self"), EvalOptions(files=[corpus["valid"]]))["perplexity"] == \
        pytest.approx(ppl, rel=1e-6)
    # Another vocabulary, or one model only: one line, nothing written.
    other = tmp_path / "other"
    shutil.copytree(a, other)
    vocab = next(f for f in sorted((other / "tokenizer").rglob("*")) if f.is_file())
    vocab.write_bytes(vocab.read_bytes() + b"\n")
    with pytest.raises(BundleError, match=f"{vocab.name} differs"):
        average_bundles([a, other], tmp_path / "bad")
    r = CliRunner().invoke(app, ["average", str(a), "-o", str(tmp_path / "bad")])
    assert r.exit_code != 0 and "two or more models" in r.output and "Traceback" not in r.output
    assert not (tmp_path / "bad").exists()


def test_backward_model_reads_each_line_right_to_left(corpus, tmp_path: Path):
    """A backward LM's perplexity is the stepped NLL of every line's pieces reversed; predict refuses it."""
    from lstmtext.lm.api import evaluate, load_numpy_model, predict_records, train

    out = tmp_path / "backward"
    train(TrainOptions(output=out, train=[corpus["train"]], valid=[corpus["valid"]],
                       sets=TINY_LM + ["tokenizer=word", "vocab_size=0", "direction=backward"], epochs=1, seed=2),
          Reporter())
    b = bundle_io.read(out)
    result = evaluate(b, EvalOptions(files=[corpus["valid"]], batch_size=1))
    model, tok = load_numpy_model(b)
    lines = corpus["valid"].read_text().splitlines()
    reversed_lines = [" ".join(reversed(line.split())) for line in lines]
    forward_nll = stepped_nll(model, tok, lines)
    backward_nll = stepped_nll(model, tok, reversed_lines)
    words = sum(len(line.split()) for line in lines)
    assert result["perplexity"] == pytest.approx(math.exp(backward_nll / (words + len(lines))), rel=1e-4)
    assert backward_nll != pytest.approx(forward_nll, rel=1e-3)
    with pytest.raises(UsageError, match="backward language model"):
        next(iter(predict_records(b, ["the old"])))


def _lstm_model(fast: bool, stateful: bool, return_sequences: bool):
    import keras

    from lstmtext.layers import sequence_lstm

    ids = keras.Input(batch_shape=(3, None, 5))
    model = keras.Model(ids, keras.layers.LSTM(4, return_sequences=return_sequences, stateful=stateful,
                                               name="lstm_0")(ids))
    if fast:
        assert sequence_lstm.install(model) == 1
    return model


@pytest.mark.parametrize("stateful", [True, False])
@pytest.mark.parametrize("return_sequences", [True, False])
def test_sequence_kernel_matches_keras_lstm(stateful: bool, return_sequences: bool):
    """The whole-sequence training path: Keras' outputs, gradients and carried state, to float32 rounding."""
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(1)
    plain = _lstm_model(False, stateful, return_sequences)
    fast = _lstm_model(True, stateful, return_sequences)
    fast.set_weights(plain.get_weights())
    assert type(fast.get_layer("lstm_0")) is keras.layers.LSTM
    x = np.random.default_rng(0).normal(size=(3, 7, 5)).astype("float32")
    results = []
    for model in (plain, fast):
        calls = []
        for length in (5, 7):  # the second call starts from the carried state when stateful
            with tf.GradientTape() as tape:
                y = model(x[:, :length], training=True)
                loss = tf.reduce_sum(y * tf.sin(y))
            grads = tape.gradient(loss, model.trainable_variables)
            calls.append([y.numpy(), *[g.numpy() for g in grads],
                          *[np.asarray(s) for s in (model.get_layer("lstm_0").states if stateful else [])]])
        results.append(calls)
    for a_call, b_call in zip(*results):
        for a, b in zip(a_call, b_call):
            np.testing.assert_allclose(a, b, atol=1e-6)


def test_sequence_kernel_trains_like_keras_and_skips_weight_drop():
    import keras

    from lstmtext.layers import sequence_lstm
    from lstmtext.layers.weight_drop_lstm import WeightDropLSTM

    x = np.random.default_rng(0).normal(size=(3, 7, 5)).astype("float32")
    losses = []
    for fast in (False, True):
        keras.utils.set_random_seed(2)
        model = _lstm_model(fast, True, True)
        model.compile(optimizer="sgd", loss="mse")
        losses.append([float(model.train_on_batch(x, np.zeros((3, 7, 4), "float32"))) for _ in range(3)])
    np.testing.assert_allclose(losses[0], losses[1], rtol=1e-5)
    ids = keras.Input(batch_shape=(3, 7, 5))
    model = keras.Model(ids, WeightDropLSTM(4, weight_drop=0.5, return_sequences=True)(ids))
    assert sequence_lstm.install(model) == 0
