"""LiteRT parts and exports: agreement with the NumPy runtime, fallbacks, bad files, atomic export."""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from lstmtext import bundle as bundle_io
from lstmtext.errors import BundleError

pytest.importorskip("ai_edge_litert")
runner = CliRunner()


@pytest.fixture(scope="module")
def lite_lm(tiny_lm: Path, tmp_path_factory) -> Path:
    """The tiny LM exported with float32 LiteRT parts."""
    from lstmtext.export import export_litert

    out = tmp_path_factory.mktemp("lite") / "lm"
    manifest = export_litert(tiny_lm, out, "none")
    assert manifest["quantize"] == "none" and set(manifest["files"]) == {"step"}
    return out


def test_step_part_matches_numpy_runtime(lite_lm: Path):
    from lstmtext.lite.lm import LiteLanguageModel
    from lstmtext.lm.api import load_step_model

    b = bundle_io.read(lite_lm)
    lite, tok = load_step_model(b, "auto")
    plain, _ = load_step_model(b, "numpy")
    assert isinstance(lite, LiteLanguageModel)
    ids = [3] + tok.encode("the cat sees the")
    a, sa = lite.feed(ids)
    n, sn = plain.feed(ids)
    np.testing.assert_allclose(np.exp(a), np.exp(n), atol=1e-4)
    # A batch of three (beam search) from the prompt's state.
    rows = np.array([0, 0, 0])
    a, _ = lite.step(np.array([5, 6, 7]), lite.select(sa, rows))
    n, _ = plain.step(np.array([5, 6, 7]), plain.select(sn, rows))
    np.testing.assert_allclose(np.exp(a), np.exp(n), atol=1e-4)


def test_predict_and_generate_agree_across_runtimes(lite_lm: Path):
    from lstmtext.cli import app

    outs = {}
    for runtime in ("lite", "numpy"):
        r = runner.invoke(app, ["predict", str(lite_lm), "the cat", "a bird sees", "--format", "jsonl",
                                "--runtime", runtime])
        g = runner.invoke(app, ["generate", str(lite_lm), "the dog", "--seed", "3", "--max-words", "8",
                                "--runtime", runtime])
        assert r.exit_code == 0 and g.exit_code == 0, r.output + g.output
        outs[runtime] = ([json.loads(line) for line in r.stdout.splitlines()], g.stdout)
    (lite, lgen), (plain, pgen) = outs["lite"], outs["numpy"]
    for x, y in zip(lite, plain):
        assert [w["word"] for w in x["next"]] == [w["word"] for w in y["next"]]
        np.testing.assert_allclose([w["prob"] for w in x["next"]], [w["prob"] for w in y["next"]], atol=1e-4)
    assert lgen == pgen


def test_light_path_imports_neither_tensorflow_nor_h5py(lite_lm: Path):
    import subprocess

    code = ("import sys; from lstmtext.cli.app import main; sys.argv = ['lstmtext', 'predict', sys.argv[1], "
            "'the cat']\ntry:\n    main()\nexcept SystemExit:\n    pass\n"
            "print(sorted(m for m in ('tensorflow', 'keras', 'h5py') if m in sys.modules))")
    r = subprocess.run([sys.executable, "-c", code, str(lite_lm)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().splitlines()[-1] == "[]"


def test_quantized_parts_score_close_to_float(lite_lm: Path, corpus, tmp_path: Path):
    from lstmtext.export import export_litert
    from lstmtext.lm.api import evaluate
    from lstmtext.tasks import EvalOptions

    q = export_litert(lite_lm, tmp_path / "q", "dynamic")
    assert q["quantize"] == "dynamic"
    assert q["files"]["step"]["bytes"] < json.loads((lite_lm / "lite" / "manifest.json").read_text()
                                                    )["files"]["step"]["bytes"]
    opts = lambda runtime: EvalOptions(files=[corpus["valid"]], extra={"runtime": runtime})  # noqa: E731
    base = evaluate(bundle_io.read(lite_lm), opts("keras"))["perplexity"]
    stepped = evaluate(bundle_io.read(lite_lm), opts("lite"))["perplexity"]
    quant = evaluate(bundle_io.read(tmp_path / "q"), opts("lite"))["perplexity"]
    assert stepped == pytest.approx(base, rel=1e-4)  # the step part scores exactly like Keras
    assert quant == pytest.approx(base, rel=0.05)


def test_mismatched_and_corrupt_parts_are_named(lite_lm: Path, tmp_path: Path):
    from lstmtext.cli import app

    changed = tmp_path / "changed"
    shutil.copytree(lite_lm, changed)
    with open(changed / "weights.h5", "ab") as fh:
        fh.write(b"\0")  # other weights than the parts were built from
    r = runner.invoke(app, ["predict", str(changed), "the cat"])
    assert r.exit_code != 0 and "built from other weights" in r.output and "Traceback" not in r.output
    corrupt = tmp_path / "corrupt"
    shutil.copytree(lite_lm, corrupt)
    (corrupt / "lite" / "step.tflite").write_bytes(b"not a model")
    r = runner.invoke(app, ["predict", str(corrupt), "the cat"])
    assert r.exit_code != 0 and "step.tflite" in r.output and "Traceback" not in r.output
    # A truncated file with a matching digest is still refused by the runtime.
    manifest = json.loads((corrupt / "lite" / "manifest.json").read_text())
    from lstmtext.lite.runtime import file_digest

    manifest["files"]["step"]["sha256"] = file_digest(corrupt / "lite" / "step.tflite")
    (corrupt / "lite" / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match="step.tflite"):
        from lstmtext.lm.api import load_step_model

        load_step_model(bundle_io.read(corrupt), "lite")


def test_failed_export_leaves_existing_output(tiny_lm: Path, tmp_path: Path, monkeypatch):
    from lstmtext.cli import app
    from lstmtext.lite import convert

    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("old")

    def boom(*args, **kwargs):
        raise RuntimeError("converter failed")

    monkeypatch.setattr(convert, "to_tflite", boom)
    r = runner.invoke(app, ["export", str(tiny_lm), "--format", "litert", "--output", str(out)])
    assert r.exit_code != 0
    assert (out / "keep.txt").read_text() == "old" and not list(tmp_path.glob(".out.tmp-*"))
    r = runner.invoke(app, ["export", str(tiny_lm), "--format", "litert", "--quantize", "int3", "--output",
                            str(tmp_path / "x")])
    assert r.exit_code != 0 and "--quantize" in r.output


def test_savedmodel_serves_the_step_signature(tiny_lm: Path, tmp_path: Path):
    from lstmtext.export import export_savedmodel
    from lstmtext.lm.api import load_step_model
    from lstmtext.lite.convert import tf

    r = export_savedmodel(tiny_lm, tmp_path / "sm")
    assert r["signatures"] == ["step"]
    assert (tmp_path / "sm" / "assets.extra" / "tokenizer").is_dir()
    served = tf().saved_model.load(str(tmp_path / "sm")).signatures["step"]
    plain, tok = load_step_model(bundle_io.read(tiny_lm), "numpy")
    state = plain.initial_state(2)
    ids = np.array([5, 9], np.int32)
    flat = {f"{k}{i}": v for i, (h, c) in enumerate(state) for k, v in (("h", h), ("c", c))}
    out = served(ids=tf().constant(ids), **{k: tf().constant(v) for k, v in flat.items()})
    want, _ = plain.step(ids, state)
    np.testing.assert_allclose(out["log_probs"].numpy(), want, atol=1e-5)


def test_training_writes_lite_parts(corpus, tmp_path: Path, monkeypatch):
    from lstmtext.lm.api import train
    from lstmtext.tasks import TrainOptions
    from lstmtext.training.reporting import Reporter

    monkeypatch.setenv("LSTMTEXT_LITE_PARTS", "1")
    sets = ["embedding_dim=8", "hidden_size=8", "num_layers=1", "batch_size=4", "bptt=5", "vocab_size=0",
            "tokenizer=word"]
    train(TrainOptions(output=tmp_path / "o", train=[corpus["train"]], valid=[corpus["valid"]], sets=sets,
                       epochs=1, seed=1), Reporter())
    manifest = json.loads((tmp_path / "o" / "model-best" / "lite" / "manifest.json").read_text())
    assert manifest["task"] == "lm" and (tmp_path / "o" / "model-best" / "lite" / "step.tflite").is_file()


def test_file_digests_are_remembered_until_the_file_changes(tmp_path, monkeypatch):
    from lstmtext.lite import runtime

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    hashed = []
    real = runtime.sha256_file
    monkeypatch.setattr(runtime, "sha256_file", lambda p: hashed.append(p) or real(p))
    f = tmp_path / "part.bin"
    f.write_bytes(b"a" * 1000)
    os.utime(f, (1_000_000_000, 1_000_000_000))  # settled long ago
    first = runtime.file_digest(f)
    assert runtime.file_digest(f) == first and len(hashed) == 1  # second call: remembered
    f.write_bytes(b"b" * 1000)  # same size, new content
    os.utime(f, (1_000_000_500, 1_000_000_500))
    assert runtime.file_digest(f) != first and len(hashed) == 2
    g = tmp_path / "fresh.bin"
    g.write_bytes(b"c")  # just written: never remembered
    runtime.file_digest(g)
    runtime.file_digest(g)
    assert hashed.count(g) == 2
    (tmp_path / "cache" / "lstmtext" / "digests.json").write_text("not json")
    assert runtime.file_digest(f) == real(f)  # a broken cache costs only the re-hash
