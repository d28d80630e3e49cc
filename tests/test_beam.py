"""Batch inference with Apache Beam (``--engine beam``): equals ``predict``, dead letters, bad bundles, shared model.

The pipeline runs on the DirectRunner, in two worker processes (``multi_processing``) where the
issue asks for it and in the test process elsewhere (faster); skipped without the ``beam`` extra
(``pip install -c constraints-beam.txt -e ".[test,beam]"``).
"""

from __future__ import annotations

import glob
import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

pytest.importorskip("apache_beam")

from lstmtext.batch.beam import LOADS, BeamOptions, LstmtextModelHandler, run  # noqa: E402
from lstmtext.errors import BundleError, UsageError  # noqa: E402
from lstmtext.tasks import PredictOptions  # noqa: E402
from tests.batch_common import (CASES, _inputs, _predict, _shards, _unkeyed, tiny_tagger_model,  # noqa: E402,F401
                                tiny_translator)
from tests.test_ner import make_sentences, write_conll  # noqa: E402

runner = CliRunner()
IN_PROCESS = ["direct_running_mode=in_memory"]


@pytest.mark.parametrize("case", sorted(CASES))
def test_two_worker_processes_equal_predict_line_for_line(case, tiny_lm, tiny_tagger_model, tiny_translator,
                                                          tmp_path):
    task, make, opts, ext = CASES[case]
    model = {"lm": tiny_lm, "ner": tiny_tagger_model, "translate": tiny_translator}[task]
    paths = _inputs(tmp_path, *make())
    args = [a for k, v in opts.items() for a in (f"--{k.replace('_', '-')}", str(v))]
    expected = _predict(model, paths[0], *args) + _predict(model, paths[1], *args)
    summary = run(model, BeamOptions(inputs=[str(tmp_path / "*.txt")], output=str(tmp_path / "out" / "pred"),
                                     predict=PredictOptions(**opts), workers=2, chunk_size=4))
    got = _shards(tmp_path / "out" / "pred", ext)
    if ext == "jsonl":
        got, keys = _unkeyed(got)
        counts = [len(p.read_text(encoding="utf-8").splitlines()) for p in paths]
        assert keys == [("a.txt", i) for i in range(1, counts[0] + 1)] + [("b.txt", i) for i in
                                                                          range(1, counts[1] + 1)]
    assert got == expected
    assert summary["dead"] == 0 and summary["shards"] > 4 and summary["workers"] == 2
    assert len(summary["worker_pids"]) == 2  # two worker processes shared the chunks
    assert summary["tensorflow_on_workers"] is False
    manifest = json.loads(Path(summary["manifest"]).read_text(encoding="utf-8"))
    assert [s["first_line"] for s in manifest["shard_list"]][:2] == [1, 5]
    assert manifest["runner"] == "DirectRunner"


def test_conll_in_conll_out_equals_predict(tiny_tagger_model, tmp_path):
    write_conll(tmp_path / "a.conll", make_sentences(11, 6))
    expected = _predict(tiny_tagger_model, tmp_path / "a.conll")
    run(tiny_tagger_model, BeamOptions(inputs=[str(tmp_path / "*.conll")], output=str(tmp_path / "pred"),
                                       chunk_size=3, pipeline_options=IN_PROCESS))
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
    summary = run(tiny_tagger_model, BeamOptions(inputs=[str(tmp_path / "in.jsonl")],
                                                 output=str(tmp_path / "out" / "p"), chunk_size=4, max_chars=150,
                                                 pipeline_options=IN_PROCESS))
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
        LstmtextModelHandler(bad)  # a user's own pipeline: before it is built
    with pytest.raises(BundleError):
        run(bad, BeamOptions(inputs=[str(tmp_path / "in.txt")], output=str(tmp_path / "out" / "p")))
    r = runner.invoke(app, [str(bad), "--engine", "beam", "--input", str(tmp_path / "in.txt"),
                            "--output", str(tmp_path / "out" / "p")])
    assert r.exit_code == 1
    assert len(r.output.strip().splitlines()) == 1 and "Traceback" not in r.output, r.output
    assert str(bad) in r.output
    assert not (tmp_path / "out").exists()  # nothing written, no pipeline built


def test_runner_and_pipeline_options_are_checked_before_anything(tiny_tagger_model, tmp_path):
    (tmp_path / "in.txt").write_text("Peter visited Paris .\n", encoding="utf-8")
    base = dict(inputs=[str(tmp_path / "in.txt")], output=str(tmp_path / "out" / "p"))
    for opts, words in [(dict(runner="NoSuchRunner"), "not a Beam runner"),
                        (dict(pipeline_options=["direct_num_worker=2"]), "direct_num_worker: not a Beam"),
                        (dict(runner="FlinkRunner", workers=2), "--workers is for the DirectRunner")]:
        with pytest.raises(UsageError, match=words):
            run(tiny_tagger_model, BeamOptions(**base, **opts))
    assert not (tmp_path / "out").exists()


def test_handler_in_a_users_pipeline_one_model_for_all_threads(tiny_tagger_model, tmp_path):
    """RunInference(handler) on keyed lines, two worker threads of one process: predict's outputs, one load."""
    import apache_beam as beam
    from apache_beam.ml.inference.base import RunInference
    from apache_beam.options.pipeline_options import PipelineOptions
    from apache_beam.testing.util import assert_that, equal_to

    texts = [" ".join(w for w, _ in s) for s in make_sentences(30, 7)]
    (tmp_path / "in.txt").write_text("\n".join(texts) + "\n", encoding="utf-8")
    expected = _predict(tiny_tagger_model, tmp_path / "in.txt")
    handler = LstmtextModelHandler(tiny_tagger_model, max_batch_size=8)
    assert handler.batch_elements_kwargs() == {"min_batch_size": 8, "max_batch_size": 8}
    assert handler.share_model_across_processes() is False  # one per process, in Beam's shared.Shared
    before = LOADS.get(handler.model_path, 0)
    elements = [(("in.txt", i), text) for i, text in enumerate(texts, start=1)] + [(("in.txt", 31), b"caf\xe9")]
    options = PipelineOptions(direct_running_mode="multi_threading", direct_num_workers=2)
    with beam.Pipeline(options=options) as p:
        got = (p | beam.Create(elements) | RunInference(handler)
               | beam.MapTuple(lambda key, pred: (key[1], tuple(tuple(r.outputs) for r in pred.inference),
                                                  pred.inference[0].error)))
        assert_that(got, equal_to([(i, ((line,),), None) for i, line in enumerate(expected, start=1)]
                                  + [(31, ((),), "invalid utf-8 byte at byte offset 3 of the line")]))
    assert LOADS[handler.model_path] == before + 1


def test_one_model_per_machine_behind_beams_multi_process_proxy(tiny_tagger_model, tmp_path):
    """share_across_processes=True: one copy, held by the first process that asks, used through Beam's proxy."""
    import apache_beam as beam
    from apache_beam.ml.inference.base import RunInference
    from apache_beam.options.pipeline_options import PipelineOptions
    from apache_beam.testing.util import assert_that, equal_to

    texts = [" ".join(w for w, _ in s) for s in make_sentences(6, 8)]
    (tmp_path / "in.txt").write_text("\n".join(texts) + "\n", encoding="utf-8")
    expected = _predict(tiny_tagger_model, tmp_path / "in.txt")
    handler = LstmtextModelHandler(tiny_tagger_model, share_across_processes=True)
    assert handler.share_model_across_processes() is True and handler.model_copies() == 1
    before = dict(LOADS)
    options = PipelineOptions(direct_running_mode="multi_threading", direct_num_workers=2)
    with beam.Pipeline(options=options) as p:
        got = (p | beam.Create([(("in.txt", i), t) for i, t in enumerate(texts, start=1)]) | RunInference(handler)
               | beam.MapTuple(lambda key, pred: (key[1], pred.inference[0].outputs[0])))
        assert_that(got, equal_to(list(enumerate(expected, start=1))))
    assert LOADS[handler.model_path] == before.get(handler.model_path, 0) + 1  # this process serves the copy
