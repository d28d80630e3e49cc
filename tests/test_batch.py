"""Batch inference with Ray Data (``python -m lstmtext.batch``): equals ``predict``, dead letters, bad bundles.

Runs on a local Ray instance with two worker processes; skipped without the
``ray`` extra (``pip install -e ".[test,ray]"``).
"""

from __future__ import annotations

import glob
import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

pytest.importorskip("ray.data")

from lstmtext.batch.pipeline import BatchOptions, run  # noqa: E402
from lstmtext.errors import BundleError  # noqa: E402
from lstmtext.tasks import PredictOptions  # noqa: E402
from tests.batch_common import (CASES, _inputs, _predict, _shards, _unkeyed, tiny_tagger_model,  # noqa: E402,F401
                                tiny_translator)
from tests.test_ner import make_sentences, write_conll  # noqa: E402

runner = CliRunner()


@pytest.fixture(scope="module", autouse=True)
def ray_session():
    """One local Ray instance for the module (starting one takes seconds); each run makes its own workers."""
    import ray

    ray.init(num_cpus=2, include_dashboard=False, logging_level="error")
    yield
    ray.shutdown()


@pytest.mark.parametrize("case", sorted(CASES))
def test_two_workers_equal_predict_line_for_line(case, tiny_lm, tiny_tagger_model, tiny_translator, tmp_path):
    task, make, opts, ext = CASES[case]
    model = {"lm": tiny_lm, "ner": tiny_tagger_model, "translate": tiny_translator}[task]
    paths = _inputs(tmp_path, *make())
    args = [a for k, v in opts.items() for a in (f"--{k.replace('_', '-')}", str(v))]
    expected = _predict(model, paths[0], *args) + _predict(model, paths[1], *args)
    summary = run(model, BatchOptions(inputs=[str(tmp_path / "*.txt")], output=str(tmp_path / "out" / "pred"),
                                      predict=PredictOptions(**opts), workers=2, chunk_size=4))
    got = _shards(tmp_path / "out" / "pred", ext)
    if ext == "jsonl":
        got, keys = _unkeyed(got)
        counts = [len(p.read_text(encoding="utf-8").splitlines()) for p in paths]
        assert keys == [("a.txt", i) for i in range(1, counts[0] + 1)] + [("b.txt", i) for i in
                                                                          range(1, counts[1] + 1)]
    assert got == expected
    assert summary["dead"] == 0 and summary["shards"] > 4
    assert len(summary["worker_pids"]) == 2  # two worker processes shared the chunks
    assert summary["tensorflow_on_workers"] is False
    manifest = json.loads(Path(summary["manifest"]).read_text(encoding="utf-8"))
    assert [s["first_line"] for s in manifest["shard_list"]][:2] == [1, 5]


def test_conll_in_conll_out_equals_predict(tiny_tagger_model, tmp_path):
    sentences = make_sentences(11, 6)
    write_conll(tmp_path / "a.conll", sentences)
    expected = _predict(tiny_tagger_model, tmp_path / "a.conll")
    run(tiny_tagger_model, BatchOptions(inputs=[str(tmp_path / "*.conll")], output=str(tmp_path / "pred"),
                                        workers=2, chunk_size=10))
    assert _shards(tmp_path / "pred", "conll") == expected


def test_malformed_records_go_to_dead_letters_and_the_rest_goes_on(tiny_tagger_model, tmp_path):
    texts = [" ".join(w for w, _ in s) for s in make_sentences(8, 5)]
    good = [json.dumps({"text": t}) for t in texts]
    raw = [line.encode() for line in good]
    raw[2:2] = [b'{"text": "no end']  # invalid JSON: the tagger refuses it
    raw[5:5] = [b'{"text": "caf\xe9 au lait"}']  # Latin-1, not UTF-8
    raw[7:7] = [json.dumps({"text": "word " * 40}).encode()]  # over --max-chars
    (tmp_path / "in.jsonl").write_bytes(b"\n".join(raw) + b"\n")
    (tmp_path / "good.jsonl").write_text("\n".join(good) + "\n", encoding="utf-8")
    summary = run(tiny_tagger_model, BatchOptions(inputs=[str(tmp_path / "in.jsonl")],
                                                  output=str(tmp_path / "out" / "p"), workers=1, chunk_size=4,
                                                  max_chars=150))
    dead = [json.loads(line) for name in sorted(glob.glob(f"{tmp_path}/out/p.dead-*.jsonl"))
            for line in Path(name).read_text(encoding="utf-8").splitlines()]
    assert [d["line"] for d in dead] == [3, 6, 8]
    assert "invalid JSON" in dead[0]["reason"]
    assert "invalid utf-8 byte at byte offset" in dead[1]["reason"]
    assert "longer than --max-chars 150" in dead[2]["reason"]
    assert summary["dead"] == 3 and summary["outputs"] == len(good)
    got, keys = _unkeyed(_shards(tmp_path / "out" / "p", "jsonl"))
    assert got == _predict(tiny_tagger_model, tmp_path / "good.jsonl")
    assert [line for _, line in keys] == [1, 2, 4, 5, 7, 9, 10, 11]


@pytest.mark.parametrize("damage", ["corrupt", "mismatched"])
def test_bad_bundle_stops_before_any_record_with_one_line(damage, tiny_tagger_model, tiny_lm, tmp_path):
    from lstmtext import bundle as bundle_io
    from lstmtext.batch.__main__ import app

    bad = tmp_path / "bad"
    shutil.copytree(bundle_io.resolve_path(tiny_tagger_model), bad)
    if damage == "corrupt":
        (bad / "weights.h5").write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 64)
    else:  # another model's weights
        shutil.copy(bundle_io.resolve_path(tiny_lm) / "weights.h5", bad / "weights.h5")
    (tmp_path / "in.txt").write_text("Peter visited Paris .\n", encoding="utf-8")
    with pytest.raises(BundleError):
        run(bad, BatchOptions(inputs=[str(tmp_path / "in.txt")], output=str(tmp_path / "out" / "p")))
    r = runner.invoke(app, [str(bad), "--input", str(tmp_path / "in.txt"), "--output", str(tmp_path / "out" / "p")])
    assert r.exit_code == 1
    assert len(r.output.strip().splitlines()) == 1 and "Traceback" not in r.output, r.output
    assert str(bad) in r.output
    assert not (tmp_path / "out").exists()  # nothing written, no worker started
