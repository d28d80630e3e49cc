"""The translator: learns a toy language pair, search is exact, save/load, data errors."""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import numpy as np
import pytest

from lstmtext import bundle as bundle_io
from lstmtext.errors import DataError, UsageError
from lstmtext.tasks import EvalOptions, PredictOptions, TrainOptions
from lstmtext.tokenizers import BOS_ID, EOS_ID
from lstmtext.training.auto import fill
from lstmtext.training.reporting import Reporter
from tests.toy_pair import corpus as toy_corpus

TINY_MT = ["tokenizer=word", "vocab_size=100", "embedding_dim=32", "encoder_units=32", "decoder_units=64",
           "batch_size=16", "dropout=0.0", "label_smoothing=0.0", "lr=0.01", "lr_schedule=constant",
           "patience=0", "early_stopping=loss", "decode_batch_size=16"]
TRAIN_PAIRS = 160
EPOCHS = 50  # about 500 steps: the toy pair is learned exactly after ~400


@pytest.fixture(scope="module")
def toy(tmp_path_factory) -> dict:
    d = tmp_path_factory.mktemp("toy")
    pairs = toy_corpus(TRAIN_PAIRS + 20, seed=5)
    (d / "train.tsv").write_text("".join(f"{s}\t{t}\n" for s, t in pairs[:TRAIN_PAIRS]), encoding="utf-8")
    (d / "valid.tsv").write_text("".join(f"{s}\t{t}\n" for s, t in pairs[TRAIN_PAIRS:]), encoding="utf-8")
    return {"dir": d, "train": pairs[:TRAIN_PAIRS], "train_tsv": d / "train.tsv", "valid_tsv": d / "valid.tsv"}


@pytest.fixture(scope="module")
def toy_model(toy) -> Path:
    from lstmtext.translate.api import train

    out = toy["dir"] / "out"
    metrics = train(TrainOptions(output=out, train=[toy["train_tsv"]], valid=[toy["valid_tsv"]],
                                 sets=TINY_MT, epochs=EPOCHS, seed=1), Reporter())
    assert metrics["epochs_run"] == EPOCHS
    return out


def test_learns_toy_pair_exactly_on_held_in_sentences(toy, toy_model):
    from lstmtext.translate.api import load_translator

    translator = load_translator(bundle_io.read(toy_model / "model-last"), runtime="keras")
    sample = toy["train"][:40]
    out = translator.translate([s for s, _ in sample], beam=1)
    wrong = [(s, t, o[0][0]) for (s, t), o in zip(sample, out) if o[0][0] != t]
    assert not wrong, wrong[:5]


@pytest.mark.parametrize("runtime", ["keras", "lite"])
def test_beam_one_equals_greedy(toy, toy_model, runtime):
    from lstmtext.translate.api import load_translator
    from lstmtext.translate.data import encode_source
    from lstmtext.translate.decoding import beam_search, greedy_search

    tr = load_translator(bundle_io.read(toy_model / "model-last"), runtime=runtime)
    lines = [s for s, _ in toy["train"][:8]] + ["the old dog", "cat cat cat cat"]
    ids = encode_source(tr.source_tokenizer, lines)
    src = np.zeros((len(ids), max(map(len, ids))), np.int32)
    for i, row in enumerate(ids):
        src[i, : len(row)] = row
    limits = np.full(len(ids), 12)
    greedy = greedy_search(tr.stepper, src, limits, alpha=0.6)
    beam = beam_search(tr.stepper, src, limits, beam=1, alpha=0.6)
    assert [g.tokens for g in greedy] == [b[0].tokens for b in beam]
    np.testing.assert_allclose([g.score for g in greedy], [b[0].score for b in beam], rtol=1e-5)


def test_empty_and_very_long_lines_translate(toy_model):
    from lstmtext.translate.api import predict

    b = bundle_io.read(toy_model)
    long_line = " ".join(["the big dog sees a cat"] * 200)
    out = list(predict(b, ["", long_line, "the cat likes a bird", "   "], PredictOptions(beam=3)))
    assert len(out) == 4 and all(isinstance(line, str) for line in out)
    assert out[0] == out[3] == ""  # nothing in, nothing out (not an invented sentence)
    assert out[1] and out[2]


def test_save_load_gives_identical_output(toy, toy_model, tmp_path):
    from lstmtext.translate.api import load_translator, write_bundle

    tr = load_translator(bundle_io.read(toy_model / "model-best"), runtime="keras")
    write_bundle(tmp_path, tr.config, tr.source_tokenizer, tr.target_tokenizer, tr.parts.model, {})
    again = load_translator(bundle_io.read(tmp_path), runtime="keras")
    lines = [s for s, _ in toy["train"][:10]] + ["", "a red bird follows the child"]
    assert tr.translate(lines, beam=4, nbest=2) == again.translate(lines, beam=4, nbest=2)


def test_numpy_runtime_agrees_with_compiled_keras_stepper(toy, toy_model):
    from lstmtext.translate.api import load_translator

    b = bundle_io.read(toy_model / "model-last")
    keras_tr, lite_tr = load_translator(b, runtime="keras"), load_translator(b, runtime="lite")
    lines = [s for s, _ in toy["train"][:12]] + ["", "the old dog", "a red bird follows the child"]
    for beam in (1, 3):
        a, c = keras_tr.translate(lines, beam=beam, nbest=2), lite_tr.translate(lines, beam=beam, nbest=2)
        assert [[h[2] for h in x] for x in a] == [[h[2] for h in x] for x in c]
        np.testing.assert_allclose([h[1] for x in a for h in x], [h[1] for x in c for h in x], rtol=1e-4, atol=1e-4)


def test_evaluate_and_predict_formats(toy, toy_model):
    import json

    from lstmtext.translate.api import evaluate, info, predict

    b = bundle_io.read(toy_model)
    result = evaluate(b, EvalOptions(files=[toy["train_tsv"]], extra={"beam": 2}))
    assert {"bleu", "chrf", "signature"} <= set(result) and "nrefs:1" in result["signature"]
    records = [json.loads(x) for x in predict(b, ["the cat likes a bird", "a dog"],
                                             PredictOptions(beam=3, format="jsonl", extra={"nbest": 2}))]
    assert [r["source"] for r in records] == ["the cat likes a bird", "a dog"]
    assert len(records[0]["nbest"]) == 2
    assert info(b)["task"] == "translate"
    with pytest.raises(UsageError):
        list(predict(b, ["x"], PredictOptions(beam=2, extra={"nbest": 3})))


# ---------------------------------------------------------------- search against brute force
class FakeStepper:
    """Log-probabilities that depend on (sentence, prefix) through a hash; ids 4.. are words."""

    def __init__(self, vocab: int = 6, seed: int = 0):
        self.vocab, self.seed = vocab, seed

    def log_probs(self, sentence: int, prefix: tuple) -> np.ndarray:
        rng = np.random.default_rng(abs(hash((self.seed, sentence, prefix))) % (2**32))
        logits = rng.normal(size=self.vocab) * 2.0
        logits[[0, 1, BOS_ID]] = -np.inf
        return logits - np.log(np.exp(logits[np.isfinite(logits)]).sum())

    def start(self, sources, copies):
        return [(i // copies, ()) for i in range(len(sources) * copies)]

    def step(self, tokens, parents, state, k, active=None):
        rows = []
        for tok, p in zip(tokens, parents):
            sent, prefix = state[p]
            rows.append((sent, prefix if tok == BOS_ID else prefix + (int(tok),)))
        lp = np.stack([self.log_probs(s, pre) for s, pre in rows])
        ids = np.argsort(-lp, axis=1, kind="stable")[:, :k]
        return np.take_along_axis(lp, ids, 1), ids, rows


def exhaustive(stepper: FakeStepper, sentence: int, max_len: int, alpha: float):
    from lstmtext.translate.decoding import length_penalty

    best = None
    words = range(4, stepper.vocab)
    for n in range(max_len + 1):
        for seq in itertools.product(words, repeat=n):
            logp = sum(stepper.log_probs(sentence, seq[:t])[seq[t]] for t in range(n))
            if n < max_len:
                logp += stepper.log_probs(sentence, seq)[EOS_ID]
                length = n + 1
            else:
                length = n
            score = logp / length_penalty(length, alpha)
            if best is None or score > best[0] + 1e-12:
                best = (score, list(seq))
    return best


@pytest.mark.parametrize("alpha", [0.0, 0.6, 1.5])
def test_beam_search_matches_exhaustive_search(alpha):
    from lstmtext.translate.decoding import beam_search

    stepper = FakeStepper(vocab=6, seed=3)
    max_len = 4
    sources = np.zeros((3, 1), np.int32)
    # A beam as wide as every possible prefix prunes nothing: it must find the optimum.
    results = beam_search(stepper, sources, np.full(3, max_len), beam=2 ** max_len + 1, alpha=alpha)
    for i, hyps in enumerate(results):
        score, seq = exhaustive(stepper, i, max_len, alpha)
        assert hyps[0].tokens == seq
        assert math.isclose(hyps[0].score, score, rel_tol=1e-9, abs_tol=1e-9)


@pytest.mark.parametrize("alpha,nbest", [(0.0, 1), (0.6, 1), (0.6, 3), (-0.5, 2)])
def test_stopping_once_no_hypothesis_can_improve_changes_no_output(alpha, nbest, monkeypatch):
    """The stop rule against search run until every sentence has its beam full of finished hypotheses."""
    from lstmtext.translate import decoding

    class Counting(FakeStepper):
        rows = 0

        def step(self, tokens, parents, state, k, active=None):
            Counting.rows += int(np.sum(active))
            return super().step(tokens, parents, state, k, active)

    sources, limits = np.zeros((6, 1), np.int32), np.array([3, 5, 7, 8, 8, 9])
    stepped = {}
    for stop in (True, False):
        Counting.rows = 0
        with monkeypatch.context() as m:
            m.setattr(decoding, "STOP_EARLY", stop)
            outputs = [decoding.beam_search(Counting(vocab=9, seed=seed), sources, limits, beam=4, alpha=alpha,
                                            nbest=nbest) for seed in range(4)]
        stepped[stop] = ([[[(h.tokens, h.score) for h in hs] for hs in out] for out in outputs], Counting.rows)
    assert stepped[True][0] == stepped[False][0]
    if nbest == 1:  # the rule does stop sentences early here
        assert stepped[True][1] < stepped[False][1]


def test_beam_nbest_is_sorted_and_distinct():
    from lstmtext.translate.decoding import beam_search

    hyps = beam_search(FakeStepper(vocab=7, seed=1), np.zeros((2, 1), np.int32), np.full(2, 5), beam=4,
                       alpha=0.6, nbest=4)
    for h in hyps:
        scores = [x.score for x in h]
        assert scores == sorted(scores, reverse=True)
        assert len({tuple(x.tokens) for x in h}) == len(h)


def test_only_fixed_shape_steppers_get_padded_batches():
    from lstmtext.translate.decoding import translate_ids

    def run(fixed: bool):
        shapes = []

        class Recording(FakeStepper):
            fixed_shapes = fixed

            def start(self, sources, copies):
                shapes.append(sources.shape)
                return super().start(sources, copies)

        out = list(translate_ids(Recording(vocab=7, seed=2), [[5, 6, 7], [5], [6, 6, 6, 6, 6]], beam=3,
                                 batch_size=8, pad_multiple=4))
        return shapes, [[(h.tokens, h.score) for h in hyps] for hyps in out]

    fixed_shapes, fixed_out = run(True)
    free_shapes, free_out = run(False)
    assert fixed_shapes == [(8, 8)]  # dummy rows, length padded to a multiple of 4
    assert free_shapes == [(3, 5)]  # the real sentences only
    assert free_out == fixed_out


# ---------------------------------------------------------------- data
def test_mismatched_files_and_bad_tsv_are_errors(tmp_path):
    from lstmtext.translate.data import read_parallel

    (tmp_path / "a.en").write_text("one\ntwo\nthree\n")
    (tmp_path / "a.de").write_text("eins\nzwei\n")
    with pytest.raises(DataError, match="line-aligned"):
        read_parallel(source=tmp_path / "a.en", target=tmp_path / "a.de")
    (tmp_path / "bad.tsv").write_text("a\tb\nno tab here\n")
    with pytest.raises(DataError) as err:
        read_parallel(tsv=tmp_path / "bad.tsv")
    assert err.value.line == 2


def test_empty_and_long_pairs_are_skipped_and_counted(tmp_path):
    from lstmtext.translate.data import read_parallel

    (tmp_path / "x.tsv").write_text("a\tb\n\tonly target\nonly source\t\n\n" + "w " * 50 + "\tz\nc\td\n")
    data = read_parallel(tsv=tmp_path / "x.tsv", max_line_chars=40)
    assert data.sources == ["a", "c"]
    assert data.skipped == {"empty": 3, "long_line": 1}


def test_batches_have_fixed_rows_and_mask_padding():
    from lstmtext.translate.data import batches

    src = [[5, 6, EOS_ID], [7, EOS_ID], [8, 9, 10, 11, EOS_ID]]
    tgt = [[BOS_ID, 4, EOS_ID], [BOS_ID, 4, 5, EOS_ID], [BOS_ID, EOS_ID]]
    out = batches(src, tgt, batch_size=4, pad_multiple=8)
    assert len(out) == 1 and out[0].source.shape == (4, 8) and out[0].target_in.shape == (4, 8)
    assert out[0].tokens == 2 + 3 + 1
    assert not out[0].source[3].any()  # filler row is all padding


# ---------------------------------------------------------------- layers
def test_attention_masks_padding_exactly_and_round_trips():
    import keras

    from lstmtext.layers.attention import BahdanauAttention, LuongAttention

    rng = np.random.default_rng(0)
    query = rng.normal(size=(2, 4)).astype("float32")
    memory = rng.normal(size=(2, 5, 6)).astype("float32")
    mask = np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], "float32")
    for layer in (LuongAttention(memory_dim=6), BahdanauAttention(memory_dim=6, units=3)):
        ctx, weights = layer(query, memory, mask)
        weights = np.asarray(weights)
        assert np.all(weights[0, 3:] == 0.0)
        np.testing.assert_allclose(weights.sum(-1), 1.0, rtol=1e-6)
        # Padding content does not leak into the context.
        memory2 = memory.copy()
        memory2[0, 3:] = 100.0
        np.testing.assert_allclose(np.asarray(layer(query, memory2, mask)[0]), np.asarray(ctx), rtol=1e-6)
        clone = type(layer).from_config(layer.get_config())
        assert clone.get_config() == layer.get_config()
        assert keras.saving.get_registered_object(
            keras.saving.get_registered_name(type(layer))) is type(layer)


def test_cli_train_translate_help_lists_options():
    from typer.testing import CliRunner

    from lstmtext.cli import app

    result = CliRunner().invoke(app, ["train", "translate", "--help"])
    assert result.exit_code == 0
    for opt in ("--train-source", "--valid-target", "--resume", "--set"):
        assert opt in result.output


def test_cli_train_translate_quiet_prints_only_the_result(toy, tmp_path):
    from typer.testing import CliRunner

    from lstmtext.cli import app

    sets = TINY_MT + ["decoder_units=16", "encoder_units=8", "embedding_dim=8"]
    result = CliRunner().invoke(app, ["train", "translate", "--train", str(toy["train_tsv"]), "--valid",
                                      str(toy["valid_tsv"]), "--output", str(tmp_path / "run"), "--epochs", "1",
                                      "--quiet", *[a for s in sets for a in ("--set", s)]])
    assert result.exit_code == 0, result.output
    lines = result.stderr.strip().splitlines()
    # One line however long the path (no wrapping at 80 columns off a terminal); the monitored score.
    assert len(lines) == 1 and lines[0].startswith("best valid loss") and "model-best" in lines[0], lines


def test_cli_predict_and_evaluate_on_a_translator(toy, toy_model, tmp_path):
    import json

    from typer.testing import CliRunner

    from lstmtext.cli import app

    src = tmp_path / "in.txt"
    src.write_text("the cat likes a bird\n\na red dog\n", encoding="utf-8")
    out = tmp_path / "out.txt"
    runner = CliRunner()
    result = runner.invoke(app, ["predict", str(toy_model), "--input", str(src), "--output", str(out),
                                 "--beam", "3"])
    assert result.exit_code == 0, result.output
    assert len(out.read_text(encoding="utf-8").splitlines()) == 3
    result = runner.invoke(app, ["evaluate", str(toy_model), str(toy["train_tsv"]), "--json", "--beam", "1"])
    assert result.exit_code == 0, result.output
    scores = json.loads(result.stdout.strip().splitlines()[-1])
    assert scores["bleu"] > 90.0 and "signature" in scores
    (tmp_path / "short.de").write_text("eins\n", encoding="utf-8")
    result = runner.invoke(app, ["evaluate", str(toy_model), "--source", str(src), "--target",
                                 str(tmp_path / "short.de")])
    assert result.exit_code != 0 and "line-aligned" in result.output


def test_encoder_and_step_ignore_padding_and_match_teacher_forcing():
    import keras

    from lstmtext.translate.config import TranslateConfig
    from lstmtext.translate.network import build_translator

    c = fill(TranslateConfig(embedding_dim=8, encoder_units=6, decoder_units=8, encoder_layers=2, decoder_layers=2,
                             dropout=0.2))
    parts = build_translator(c, 20, 21)
    rng = np.random.default_rng(0)
    src = rng.integers(4, 20, (3, 5)).astype("int32")
    src[0, 2:] = 0
    tin = rng.integers(4, 21, (3, 4)).astype("int32")
    enc = [np.asarray(x) for x in parts.encoder(src)]
    enc_padded = [np.asarray(x) for x in parts.encoder(np.pad(src, ((0, 0), (0, 3))))]
    np.testing.assert_allclose(enc[0][0, :2], enc_padded[0][0, :2], atol=1e-6)
    for a, b in zip(enc[2:], enc_padded[2:]):
        np.testing.assert_allclose(a, b, atol=1e-6)
    logits = np.asarray(parts.model([src, tin], training=False))
    expected = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    states = enc[2:]
    for t in range(tin.shape[1]):
        inputs = [tin[:, t], enc[0], enc[1], *states]
        out = parts.step([keras.ops.convert_to_tensor(x) for x in inputs], training=False)
        states = [np.asarray(s) for s in out[1:-1]]
        np.testing.assert_allclose(np.asarray(out[0]), expected[:, t], atol=1e-5)
        assert np.all(np.asarray(out[-1])[0, 2:] == 0.0)  # no attention on padding


def test_resume_continues_training(toy, tmp_path):
    from lstmtext.translate.api import train

    out = tmp_path / "run"
    sets = TINY_MT + ["decoder_units=16", "encoder_units=8", "embedding_dim=8", "early_stopping=bleu"]
    options = TrainOptions(output=out, train=[toy["train_tsv"]], valid=[toy["valid_tsv"]], sets=sets, epochs=1)
    train(options, Reporter())
    with pytest.raises(UsageError):
        train(options, Reporter())  # would overwrite without --resume/--overwrite
    options.resume, options.epochs = True, 2
    metrics = train(options, Reporter())
    assert metrics["epochs_run"] == 2
    history = bundle_io.read(out / "model-last").json("history.json")
    assert [h["epoch"] for h in history] == [1, 2] and all("valid_bleu" in h for h in history)


def test_bundle_decodes_under_the_other_backend(toy_model):
    """A bundle trained with TensorFlow decodes with JAX (weights are stored by variable path)."""
    import json
    import os
    import subprocess
    import sys

    pytest.importorskip("jax")
    from lstmtext.translate.api import load_translator

    lines = ["the cat likes a bird", "a red dog sees the old man"]
    here = [h[0][2] for h in load_translator(bundle_io.read(toy_model), runtime="keras").translate(lines, beam=2)]
    code = ("import json,sys; from lstmtext import bundle; from lstmtext.translate.api import load_translator; "
            "t = load_translator(bundle.read(sys.argv[1]), runtime='keras'); "
            "print(json.dumps([h[0][2] for h in t.translate(json.loads(sys.argv[2]), beam=2)]))")
    env = {**os.environ, "KERAS_BACKEND": "jax", "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    proc = subprocess.run([sys.executable, "-c", code, str(toy_model), json.dumps(lines)], env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == here


def test_epoch_pairs_walk_through_the_data():
    from lstmtext.translate.api import TranslateTrainTask

    task = object.__new__(TranslateTrainTask)
    task.train_src = [[4]] * 10
    from lstmtext.translate.config import TranslateConfig

    task.config = TranslateConfig(epoch_pairs=4, batch_size=2)
    first = np.concatenate([task._epoch_indices(e) for e in range(5)])  # 20 = two passes
    assert sorted(first[:10].tolist()) == list(range(10)) and sorted(first[10:].tolist()) == list(range(10))
    assert task.steps_per_epoch() == 2


@pytest.mark.parametrize("attention,tie,layers", [("luong", False, 2), ("bahdanau", True, 1), ("bahdanau", False, 2)])
def test_numpy_runtime_matches_network_for_each_architecture(attention, tie, layers):
    import keras

    from lstmtext.translate.config import TranslateConfig
    from lstmtext.translate.network import build_translator
    from lstmtext.translate.numpy_runtime import NumpyTranslator

    c = fill(TranslateConfig(embedding_dim=8, encoder_units=6, decoder_units=10, encoder_layers=layers,
                             decoder_layers=layers, attention=attention, attention_units=5, tie_embeddings=tie))
    parts = build_translator(c, 20, 23)
    lite = NumpyTranslator({v.path: np.asarray(v.numpy()) for v in parts.model.weights}, c)
    rng = np.random.default_rng(1)
    src = rng.integers(4, 20, (3, 6)).astype("int32")
    src[1, 3:] = 0
    memory, mask, states = lite.encode(src)
    enc = [np.asarray(x) for x in parts.encoder(src)]
    np.testing.assert_allclose(memory[1, :3], enc[0][1, :3], atol=1e-5)
    for a, b in zip(states, enc[2:]):
        np.testing.assert_allclose(a, b, atol=1e-5)
    tokens = np.array([2, 7, 9], np.int32)
    for _ in range(3):
        log_probs, states = lite.decode_step(tokens, states, memory, mask, 1)
        out = parts.step([keras.ops.convert_to_tensor(x) for x in [tokens, enc[0], enc[1], *enc[2:]]])
        enc[2:] = [np.asarray(s) for s in out[1:-1]]
        np.testing.assert_allclose(log_probs, np.asarray(out[0]), atol=1e-4)
        tokens = log_probs.argmax(-1).astype(np.int32)


@pytest.mark.parametrize("attention,tie,layers", [("luong", False, 2), ("bahdanau", True, 1)])
def test_lite_graph_matches_numpy_runtime(attention, tie, layers):
    """The TensorFlow functions the LiteRT parts are converted from step like the NumPy runtime."""
    from lstmtext.lite.translate import build, state_names
    from lstmtext.translate.config import TranslateConfig
    from lstmtext.translate.network import build_translator
    from lstmtext.translate.numpy_runtime import NumpyTranslator

    c = fill(TranslateConfig(embedding_dim=8, encoder_units=6, decoder_units=10, encoder_layers=layers,
                             decoder_layers=layers, attention=attention, attention_units=5, tie_embeddings=tie))
    arrays = {v.path: np.asarray(v.numpy()) for v in build_translator(c, 20, 23).model.weights}
    ref = NumpyTranslator(arrays, c)
    functions, _ = build(arrays, dict(c.__dict__))
    names = state_names(c)
    rng = np.random.default_rng(2)
    src = rng.integers(4, 20, (2, 5)).astype("int32")
    src[0, 2:] = 0
    memory, mask, states = ref.encode(src)
    enc = {k: np.asarray(v) for k, v in functions["encode"](src).items()}
    np.testing.assert_allclose(enc["memory"][mask], memory[mask], atol=1e-5)
    for n, s in zip(names, states):
        np.testing.assert_allclose(enc[n], s, atol=1e-5)
    copies = 2  # two hypotheses per sentence, as in beam search
    states = [np.repeat(s, copies, 0) for s in states]
    tokens = np.array([2, 2, 7, 9], np.int32)
    for _ in range(3):
        want, new = ref.decode_step(tokens, states, memory, mask, copies)
        out = functions["decode_step"](tokens, memory, mask.astype(np.float32), *states)
        np.testing.assert_allclose(np.asarray(out["log_probs"]), want, atol=1e-4)
        states = [np.asarray(out[n + "_out"]) for n in names]
        tokens = want.argmax(-1).astype(np.int32)


def test_lite_parts_translate_like_numpy(toy, toy_model, tmp_path):
    from lstmtext.export import export_litert
    from lstmtext.lite.translate import LiteTranslator
    from lstmtext.translate.api import load_translator

    out = tmp_path / "lite"
    export_litert(toy_model, out)
    b = bundle_io.read(out)
    lite, plain = load_translator(b, "lite"), load_translator(b, "numpy")
    assert isinstance(lite.stepper, LiteTranslator)
    lines = [s for s, _ in toy["train"][:12]]
    best = lambda tr, beam, n: [(h[0][0], h[0][2]) for h in tr.translate(lines[:n], beam=beam)]  # noqa: E731
    for beam in (1, 3):
        assert best(lite, beam, 12) == best(plain, beam, 12)
    auto = load_translator(b, "auto")  # LiteRT for small batches, NumPy for large ones
    assert best(auto, 3, 2) == best(plain, 3, 2) and best(auto, 3, 12) == best(plain, 3, 12)
