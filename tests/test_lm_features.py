"""Language-model features in the tagger (TagLM): per-word LM states, bundles that carry their LMs, bad --lm."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from lstmtext import bundle as bundle_io
from lstmtext.tasks import TrainOptions
from lstmtext.training.reporting import Reporter
from tests.conftest import TINY_LM
from tests.test_ner import TINY, make_sentences, write_conll

runner = CliRunner()


@pytest.fixture(scope="module")
def lm_setup(tmp_path_factory) -> dict[str, Path]:
    """Tagged data, plain text of the same kind, and a forward and a backward 1 x 16 subword LM trained on it."""
    from lstmtext.lm.api import train

    d = tmp_path_factory.mktemp("lmfeat")
    text = d / "text.txt"
    text.write_text("\n".join(" ".join(w for w, _ in s) for s in make_sentences(400, 11)) + "\n", encoding="utf-8")
    out = {"dir": d, "text": text, "train": write_conll(d / "train.conll", make_sentences(160, 1)),
           "valid": write_conll(d / "valid.conll", make_sentences(30, 2))}
    for direction in ("forward", "backward"):
        out[direction] = d / direction
        train(TrainOptions(output=out[direction], train=[text], valid=[text],
                           sets=TINY_LM + ["tokenizer=unigram", "vocab_size=70", f"direction={direction}"],
                           epochs=1, seed=4), Reporter())
    return out


def stepped_states(lm_bundle: Path, ids: list[int]) -> np.ndarray:
    """The top layer's output after each id, stepped one id at a time by the LM's own NumPy runtime."""
    from lstmtext.lm.api import load_numpy_model

    model, _ = load_numpy_model(bundle_io.read(lm_bundle))
    state, out = model.initial_state(1), []
    for i in ids:
        h, state = model.hidden(np.asarray([i]), state)
        out.append(h[0])
    return np.stack(out)


@pytest.mark.parametrize("direction", ["forward", "backward"])
def test_word_vectors_are_the_lm_states_at_the_word_edge(lm_setup, direction):
    """Forward: the state at a word's last piece; backward: at its first piece, reading right to left."""
    from lstmtext.ner.lm_features import LanguageModel
    from lstmtext.tokenizers import EOS_ID

    lm = LanguageModel.load(lm_setup[direction], dtype="float32")
    sentences = [["Angela", "Merkel", "visited", "Tokyo", "."], ["Siemens", "reported", "a", "profit", "."],
                 ["Rain"]]
    got = lm.vectors(sentences)
    for tokens, vectors in zip(sentences, got):
        pieces = [lm.tokenizer.encode(w) for w in tokens]
        assert any(len(p) > 1 for p in pieces) or len(tokens) == 1  # words of several pieces are covered
        if direction == "forward":
            ids = [EOS_ID] + [i for p in pieces for i in p]
            ends = np.cumsum([len(p) for p in pieces])  # index of each word's last piece (after EOS)
        else:
            ids = [EOS_ID] + [i for p in reversed(pieces) for i in reversed(p)]
            ends = len(ids) - 1 - (np.cumsum([0] + [len(p) for p in pieces[:-1]]))  # each word's first piece
        want = stepped_states(lm_setup[direction], ids)[ends]
        assert vectors.shape == (len(tokens), lm.dim)
        np.testing.assert_allclose(vectors, want, atol=1e-5)
    # A sentence gets the same vectors alone and in any batch.
    alone = [lm.vectors([s])[0] for s in sentences]
    for a, b in zip(alone, got):
        np.testing.assert_allclose(a, b, atol=1e-6)


@pytest.fixture(scope="module")
def lm_tagger(lm_setup) -> Path:
    from lstmtext.cli import app

    out = lm_setup["dir"] / "tagger"
    sets = [a for s in TINY for a in ("--set", s)]
    r = runner.invoke(app, ["train", "tag", "--train", str(lm_setup["train"]), "--valid", str(lm_setup["valid"]),
                            "--lm", str(lm_setup["forward"]), "--lm", str(lm_setup["backward"]),
                            "--output", str(out), "--epochs", "2", "--seed", "1", *sets])
    assert r.exit_code == 0, r.output
    assert "language models:" in r.output and "32 features per word" in r.output
    return out


def assert_runtimes_agree(best: Path, sentences: list[list[str]], tmp_path: Path) -> None:
    """numpy, Keras and LiteRT give the same emissions and tags, and the LM vectors change them."""
    from lstmtext.export import export_litert
    from lstmtext.ner.features import encode
    from lstmtext.ner.tagger import Tagger

    lite_dir = tmp_path / "lite"
    export_litert(best, lite_dir)
    b = bundle_io.read(lite_dir)
    numpy_t, keras_t, lite_t = Tagger(b, "numpy"), Tagger(b, "keras"), Tagger(b, "lite")
    assert lite_t.runtime == "lite"
    inputs = encode(numpy_t.vocab, sentences, lm_vectors=numpy_t.lm(sentences))
    mask = inputs["words"] != 0
    e_np = numpy_t.net.emissions(inputs)
    np.testing.assert_allclose(e_np[mask], np.asarray(keras_t.net.model.predict_on_batch(inputs))[mask], atol=1e-4)
    np.testing.assert_allclose(e_np[mask], lite_t.net.emissions(inputs)[mask], atol=1e-4)
    assert numpy_t.tag(sentences) == keras_t.tag(sentences) == lite_t.tag(sentences)
    # The vectors are read: other vectors, other scores.
    other = dict(inputs, lm_vectors=inputs["lm_vectors"][::-1].copy())
    assert not np.allclose(numpy_t.net.emissions(other)[mask], e_np[mask], atol=1e-3)


def test_tagger_with_lm_features_saves_loads_and_tags_alike_on_every_runtime(lm_setup, lm_tagger, tmp_path):
    from lstmtext.cli import app
    from lstmtext.ner.lm_features import LMFeatures

    best = lm_tagger / "model-best"
    meta = json.loads((best / "config.json").read_text())
    assert [e["direction"] for e in meta["lm_features"]] == ["forward", "backward"]
    assert (best / "lm" / "0" / "weights.h5").is_file() and (best / "lm" / "1" / "tokenizer").is_dir()
    # The stored copies give the vectors training used (weights rounded to float16 in both).
    stored = LMFeatures.from_bundle(bundle_io.read(best))
    given = LMFeatures.from_paths(f"{lm_setup['forward']},{lm_setup['backward']}", "float16")
    sentences = [[w for w, _ in s] for s in make_sentences(25, 9)] + [["Lima"]]
    for a, b in zip(stored.all_vectors(sentences), given.all_vectors(sentences)):
        np.testing.assert_array_equal(a, b)

    assert_runtimes_agree(best, sentences, tmp_path)
    # predict and evaluate from the command line, on the light runtime.
    r = runner.invoke(app, ["predict", str(best), "Maria Lopez visited Berlin .", "--format", "jsonl"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["text"] == "Maria Lopez visited Berlin ."
    r = runner.invoke(app, ["evaluate", str(best), str(lm_setup["valid"]), "--json"])
    assert r.exit_code == 0, r.output
    assert 0.0 <= json.loads(r.stdout)["f1"] <= 100.0


def test_resume_reads_the_stored_language_models(lm_setup, tmp_path):
    from lstmtext.cli import app

    out = tmp_path / "run"
    common = ["--train", str(lm_setup["train"]), "--valid", str(lm_setup["valid"]), "--output", str(out),
              "--seed", "1", *[a for s in TINY for a in ("--set", s)]]
    r = runner.invoke(app, ["train", "tag", "--lm", str(lm_setup["forward"]), "--epochs", "1", *common])
    assert r.exit_code == 0, r.output
    moved = tmp_path / "moved"
    lm_setup["forward"].rename(moved)  # the source is gone: resume must use the bundle's copy
    try:
        r = runner.invoke(app, ["train", "tag", "--resume", "--epochs", "2", *common])
    finally:
        moved.rename(lm_setup["forward"])
    assert r.exit_code == 0, r.output
    history = json.loads((out / "model-last" / "history.json").read_text())
    assert len(history) == 2 and (out / "model-last" / "lm" / "0" / "weights.h5").is_file()


def test_init_from_a_tagger_with_language_models_keeps_them(lm_setup, lm_tagger, tmp_path):
    """--init continues a TagLM tagger: its stored LMs (the sources may be gone), its weights as the start."""
    from lstmtext.cli import app
    from lstmtext.ner.tagger import Tagger

    best = lm_tagger / "model-best"
    out = tmp_path / "ft"
    common = ["--train", str(lm_setup["train"]), "--valid", str(lm_setup["valid"]), "--seed", "1",
              *[a for s in TINY for a in ("--set", s)]]
    moved = tmp_path / "moved"
    lm_setup["forward"].rename(moved)
    try:
        r = runner.invoke(app, ["train", "tag", "--init", str(best), "--output", str(out), "--epochs", "1",
                                *common, "--set", "lr=1e-9"])
    finally:
        moved.rename(lm_setup["forward"])
    assert r.exit_code == 0, r.output
    assert "language models:" in r.output and "32 features per word" in r.output
    meta = json.loads((out / "model-best" / "config.json").read_text())
    assert [e["direction"] for e in meta["lm_features"]] == ["forward", "backward"]
    # With a learning rate near 0 the weights are the init bundle's: the same tags, the same scores.
    sentences = [[w for w, _ in s] for s in make_sentences(20, 9)]
    a, b = Tagger(bundle_io.read(best), "numpy"), Tagger(bundle_io.read(out / "model-best"), "numpy")
    assert a.tag(sentences) == b.tag(sentences)
    # --lm beside --init: one line, nothing written.
    out2 = tmp_path / "ft2"
    r = runner.invoke(app, ["train", "tag", "--init", str(best), "--lm", str(lm_setup["forward"]),
                            "--output", str(out2), "--epochs", "1", *common])
    assert r.exit_code != 0 and "--init and --lm exclude each other" in r.output and "Traceback" not in r.output
    assert not (out2 / "model-best").exists()


def test_bad_lm_gets_one_line(lm_setup, lm_tagger, tiny_lm, tmp_path):
    from lstmtext.cli import app

    common = ["--train", str(lm_setup["train"]), "--valid", str(lm_setup["valid"]), "--epochs", "1",
              *[a for s in TINY for a in ("--set", s)]]
    cases = [
        (lm_tagger / "model-best", "not a language model"),  # a tagger bundle
        (tmp_path / "missing", "--lm"),  # no bundle there
        (tiny_lm, "as unknown"),  # a word LM of other text: its vocabulary knows none of these words
    ]
    for path, message in cases:
        out = tmp_path / f"out-{path.name}"
        r = runner.invoke(app, ["train", "tag", "--lm", str(path), "--output", str(out), *common])
        assert r.exit_code != 0, r.output
        assert message in r.output and str(path) in r.output and "Traceback" not in r.output
        assert not (out / "model-best").exists()


@pytest.mark.parametrize("layers,lm_layer", [(2, 1), (1, 1)])
def test_lm_vectors_join_after_a_bilstm_layer(lm_setup, tmp_path, layers, lm_layer):
    """lm_layer k: the vectors skip the first k BiLSTMs and join the next layer's input (TagLM)."""
    from lstmtext.cli import app

    out = tmp_path / "run"
    r = runner.invoke(app, ["train", "tag", "--train", str(lm_setup["train"]), "--valid", str(lm_setup["valid"]),
                            "--lm", str(lm_setup["forward"]), "--lm", str(lm_setup["backward"]),
                            "--output", str(out), "--epochs", "1", "--seed", "1",
                            *[a for s in TINY for a in ("--set", s)],
                            "--set", f"num_layers={layers}", "--set", f"lm_layer={lm_layer}"])
    assert r.exit_code == 0, r.output
    best = out / "model-best"
    assert json.loads((best / "config.json").read_text())["config"]["lm_layer"] == lm_layer
    from lstmtext.weights import load_arrays

    shapes = load_arrays(best / "weights.h5")
    # bilstm_0 reads words (16), casing (4) and characters (8) only; the joined layer 2 x 16 + 32 LM features.
    assert shapes["bilstm_0/forward_lstm_0/lstm_cell/kernel"].shape[0] == 16 + 4 + 8
    joined = (f"bilstm_{lm_layer}/forward_lstm_{lm_layer}/lstm_cell/kernel" if lm_layer < layers
              else "emissions/kernel")
    assert shapes[joined].shape[0] == 2 * 16 + 32
    sentences = [[w for w, _ in s] for s in make_sentences(15, 9)]
    assert_runtimes_agree(best, sentences, tmp_path)


def test_lm_layer_beyond_the_network_is_refused(lm_setup, tmp_path):
    from lstmtext.cli import app

    out = tmp_path / "run"
    r = runner.invoke(app, ["train", "tag", "--train", str(lm_setup["train"]), "--valid", str(lm_setup["valid"]),
                            "--lm", str(lm_setup["forward"]), "--output", str(out), "--epochs", "1",
                            *[a for s in TINY for a in ("--set", s)],
                            "--set", "num_layers=1", "--set", "lm_layer=2"])
    assert r.exit_code != 0 and "lm_layer" in r.output and "Traceback" not in r.output
    assert not (out / "model-best").exists()
