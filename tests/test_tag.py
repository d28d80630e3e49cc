"""The tagger on any labels: per-token labels (part of speech), feature columns, span bundles as before."""

from __future__ import annotations

import itertools
import json
import random
import shutil
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from lstmtext.errors import DataError
from lstmtext.ner import labels
from lstmtext.ner.data import read_conll
from lstmtext.ner.metrics import label_scores

runner = CliRunner()
FIXTURE = Path(__file__).parent / "fixtures" / "span-tagger"

# A tiny part-of-speech and chunk corpus written for the project: word POS chunk.
DET = ["the", "a", "every"]
ADJ = ["small", "red", "old", "quiet"]
NOUN = ["cat", "dog", "house", "river", "market", "teacher"]
VERB = ["sees", "likes", "follows", "feeds"]
PREP = ["in", "near", "behind"]
NAME = ["Paris", "Anna", "Berlin", "Reuters"]


def _np(rng: random.Random) -> list[tuple[str, str]]:
    if rng.random() < 0.3:
        return [(rng.choice(NAME), "NNP")]
    words = [(rng.choice(DET), "DT")]
    if rng.random() < 0.5:
        words.append((rng.choice(ADJ), "JJ"))
    return words + [(rng.choice(NOUN), "NN")]


def pos_sentences(n: int, seed: int) -> list[list[tuple[str, str, str]]]:
    """``n`` sentences of ``(word, POS, chunk)`` with IOB2 chunks NP, VP, PP."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        sent: list[tuple[str, str, str]] = []

        def chunk(words, kind):
            sent.extend((w, p, ("B-" if i == 0 else "I-") + kind) for i, (w, p) in enumerate(words))

        chunk(_np(rng), "NP")
        chunk([(rng.choice(VERB), "VBZ")], "VP")
        chunk(_np(rng), "NP")
        if rng.random() < 0.5:
            chunk([(rng.choice(PREP), "IN")], "PP")
            chunk(_np(rng), "NP")
        sent.append((".", ".", "O"))
        out.append(sent)
    return out


def write_columns(path: Path, sentences) -> Path:
    path.write_text("".join("".join(" ".join(row) + "\n" for row in s) + "\n" for s in sentences), encoding="utf-8")
    return path


TINY = ["word_dim=12", "casing_dim=4", "char_dim=8", "char_filters=8", "hidden_size=16", "batch_size=8",
        "eval_batch_size=7", "patience=0", "lr=0.02", "optimizer=adam", "lr_schedule=constant",
        "singleton_unk=0.0", "dropout=0.0", "feature_dim=4"]


def train_cli(*args: str):
    from lstmtext.cli import app

    sets = [a for s in TINY for a in ("--set", s)]
    return runner.invoke(app, ["train", "tag", *args, "--seed", "1", "--quiet", *sets])


@pytest.fixture(scope="module")
def pos_data(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("pos")
    return {"train": write_columns(d / "train.txt", pos_sentences(160, 1)),
            "valid": write_columns(d / "valid.txt", pos_sentences(30, 2)), "dir": d}


@pytest.fixture(scope="module")
def pos_tagger(pos_data, tmp_path_factory) -> Path:
    """A tiny part-of-speech tagger: column 2 of a word-POS-chunk file, as `--tag-column 2` on CoNLL-2003."""
    out = tmp_path_factory.mktemp("pos-tagger") / "out"
    r = train_cli("--train", str(pos_data["train"]), "--valid", str(pos_data["valid"]), "--output", str(out),
                  "--tag-column", "2", "--epochs", "3")
    assert r.exit_code == 0, r.output
    return out


# ---------------------------------------------------------------------------
# Label kinds
# ---------------------------------------------------------------------------


def test_label_kind_is_read_from_the_data(pos_data):
    assert read_conll(pos_data["train"], tag_column=2, label_kind="auto").kind == "tokens"
    chunks = read_conll(pos_data["train"], tag_column=3, label_kind="auto")
    assert chunks.kind == "spans" and chunks.scheme == "iob2"
    # Spans with a tag that does not parse are refused, not learned as per-token labels.
    bad = pos_data["dir"] / "bad.txt"
    bad.write_text("the DT B-NP\ncat NN I-NP\nsees VBZ BVP\n\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"'BVP'.*label_kind=tokens") as exc:
        read_conll(bad, tag_column=3, label_kind="auto")
    assert exc.value.line == 3
    assert read_conll(bad, tag_column=3, label_kind="tokens").kind == "tokens"
    with pytest.raises(DataError, match="invalid tag 'BVP'"):
        read_conll(bad, tag_column=3, label_kind="spans")
    assert labels.kind_of({}) == "spans" and labels.kind_of({"label_kind": "tokens"}) == "tokens"


def test_token_scores_equal_a_brute_force_count():
    rng = random.Random(0)
    names = ["H", "E", "C", "X"]
    gold, pred, masks = [], [], []
    for _ in range(40):
        n = rng.randint(1, 12)
        gold.append([rng.choice(names[:3]) for _ in range(n)])
        pred.append([rng.choice(names) for _ in range(n)])
        masks.append([rng.random() > 0.2 for _ in range(n)])
    result = label_scores(gold, pred, masks)
    pairs = [(g, p) for gs, ps, ms in zip(gold, pred, masks) for g, p, m in zip(gs, ps, ms) if m]
    assert result["tokens"] == len(pairs)
    assert result["masked"] == sum(len(m) for m in masks) - len(pairs)
    assert result["accuracy"] == pytest.approx(100 * sum(g == p for g, p in pairs) / len(pairs))
    for g in names:
        for p in names:
            assert result["confusion"].get(g, {}).get(p, 0) == sum(1 for a, b in pairs if (a, b) == (g, p))
    for name in names:
        tp = sum(1 for a, b in pairs if a == b == name)
        npred = sum(1 for _, b in pairs if b == name)
        ngold = sum(1 for a, _ in pairs if a == name)
        row = result["per_label"][name]
        assert row["support"] == ngold
        assert row["precision"] == pytest.approx(100 * tp / npred if npred else 0)
        assert row["recall"] == pytest.approx(100 * tp / ngold if ngold else 0)
        p, r = row["precision"], row["recall"]
        assert row["f1"] == pytest.approx(2 * p * r / (p + r) if p + r else 0)
    # A masked position counts whatever its labels are; None gold labels are masked too.
    flipped = [[("C" if not m else g) for g, m in zip(gs, ms)] for gs, ms in zip(gold, masks)]
    assert label_scores(flipped, pred, masks) == result
    as_none = [[g if m else None for g, m in zip(gs, ms)] for gs, ms in zip(gold, masks)]
    assert label_scores(as_none, pred) == result


def test_part_of_speech_tagger_end_to_end(pos_tagger, pos_data, tmp_path):
    from lstmtext import bundle as bundle_io
    from lstmtext.cli import app
    from lstmtext.ner import api
    from lstmtext.tasks import EvalOptions, PredictOptions

    b = bundle_io.read(pos_tagger, "ner")
    assert b.config["label_kind"] == "tokens"
    result = api.evaluate(b, EvalOptions(files=[pos_data["valid"]], extra={"tag_column": 2}))
    assert result["accuracy"] > 60, result
    assert {"per_label", "confusion", "macro_f1"} <= set(result) and "NNP" in result["per_label"]
    metrics = json.loads((pos_tagger / "model-best" / "metrics.json").read_text())
    assert result["accuracy"] == pytest.approx(metrics["accuracy"])
    assert sum(sum(row.values()) for row in result["confusion"].values()) == result["tokens"]

    r = runner.invoke(app, ["evaluate", str(pos_tagger), str(pos_data["valid"]), "--tag-column", "2", "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["accuracy"] == pytest.approx(result["accuracy"])
    r = runner.invoke(app, ["evaluate", str(pos_tagger), str(pos_data["valid"]), "--tag-column", "2"])
    assert r.exit_code == 0 and "accuracy" in r.stdout and "NNP" in r.stdout

    lines = ["the cat sees Anna .", "", "a dog"]
    records = [json.loads(x) for x in api.predict(b, lines, PredictOptions())]
    assert [rec["text"] for rec in records] == lines
    assert len(records[0]["tags"]) == len(records[0]["tokens"]) == 5 and records[1]["tags"] == []
    text = list(api.predict(b, lines, PredictOptions(format="text")))
    assert text[0].split()[0].startswith("the/") and text[1] == ""
    src = pos_data["valid"].read_text().splitlines()
    conll = list(api.predict(b, src, PredictOptions()))
    assert len(conll) == len(src) and all(c.startswith(a) for a, c in zip(src, conll))

    # A gold label the model never saw: one line naming the file and line.
    odd = tmp_path / "odd.txt"
    odd.write_text("the DT B-NP\ncat XYZ I-NP\n\n", encoding="utf-8")
    r = runner.invoke(app, ["evaluate", str(pos_tagger), str(odd), "--tag-column", "2"])
    assert r.exit_code != 0 and "Traceback" not in r.output
    assert "odd.txt:2" in r.output and "'XYZ' was never seen in training" in r.output
    r = runner.invoke(app, ["info", str(pos_tagger), "--json"])
    assert r.exit_code == 0 and json.loads(r.stdout)["label_kind"] == "tokens"


def test_label_kind_can_be_forced(pos_data, tmp_path):
    r = train_cli("--train", str(pos_data["train"]), "--valid", str(pos_data["valid"]), "--output",
                  str(tmp_path / "chunks-as-tokens"), "--tag-column", "3", "--label-kind", "tokens", "--epochs", "1")
    assert r.exit_code == 0, r.output
    config = json.loads((tmp_path / "chunks-as-tokens" / "model-best" / "config.json").read_text())
    assert config["config"]["label_kind"] == "tokens" and "B-NP" in config["labels"]
    r = train_cli("--train", str(pos_data["train"]), "--output", str(tmp_path / "x"), "--tag-column", "2",
                  "--label-kind", "spans", "--epochs", "1")
    assert r.exit_code != 0 and "invalid tag 'NNP'" in r.output and "Traceback" not in r.output


# ---------------------------------------------------------------------------
# Span bundles made before label kinds
# ---------------------------------------------------------------------------


def test_span_bundle_from_before_scores_and_tags_the_same(tmp_path):
    """A bundle written by `train ner` before label kinds existed (checked in) gives the same results."""
    from lstmtext.cli import app

    bundle = FIXTURE / "bundle"
    expected = json.loads((FIXTURE / "expected.json").read_text())
    for runtime in ("numpy", "keras"):
        r = runner.invoke(app, ["evaluate", str(bundle), str(FIXTURE / "valid.conll"), "--json",
                                "--runtime", runtime])
        assert r.exit_code == 0, r.output
        got = json.loads(r.stdout)
        for key in ("tokens_per_s",):
            got.pop(key), expected.pop(key, None)
        assert got == expected
    dest = tmp_path / "pred.conll"
    r = runner.invoke(app, ["predict", str(bundle), "--input", str(FIXTURE / "valid.conll"), "--output", str(dest)])
    assert r.exit_code == 0, r.output
    assert dest.read_text() == (FIXTURE / "expected.conll").read_text()


def test_shipped_span_model_scores_as_before():
    from tests.conftest import ROOT, needs_shared

    valid = needs_shared("conll2003", "valid.txt")
    model = ROOT / "models" / "ner-conll03"
    if not (model / "weights.h5").is_file():
        pytest.skip("no shipped model")
    from lstmtext import bundle as bundle_io
    from lstmtext.ner.api import load
    from lstmtext.ner.metrics import entity_scores

    # The first 400 sentences of CoNLL-2003 validation; 93.875 F1 measured on main before label kinds.
    sents = read_conll(valid).sentences[:400]
    tagger = load(bundle_io.read(model, "ner"), "numpy")
    result = entity_scores([s.tags for s in sents], tagger.tag([s.tokens for s in sents]))
    assert result["f1"] == pytest.approx(93.87464387464388, abs=1e-9)
    assert result["accuracy"] == pytest.approx(98.38645418326693, abs=1e-9)


# ---------------------------------------------------------------------------
# Feature columns
# ---------------------------------------------------------------------------


def test_feature_column_is_an_input_of_train_predict_and_evaluate(pos_data, tmp_path):
    """The POS column as an input feature of a chunker, stored in the bundle's vocabulary."""
    from lstmtext import bundle as bundle_io
    from lstmtext.cli import app
    from lstmtext.ner import api
    from lstmtext.ner.api import load
    from lstmtext.ner.features import encode
    from lstmtext.tasks import EvalOptions, PredictOptions

    out = tmp_path / "chunker"
    r = train_cli("--train", str(pos_data["train"]), "--valid", str(pos_data["valid"]), "--output", str(out),
                  "--feature-column", "2", "--epochs", "2")
    assert r.exit_code == 0, r.output
    b = bundle_io.read(out, "ner")
    assert b.config["feature_columns"] == "2" and b.config["label_kind"] == "spans"
    vocab = json.loads((out / "model-best" / "vocab.json").read_text())
    assert {"DT", "NN", "NNP", "VBZ"} <= set(vocab["features"][0])
    result = api.evaluate(b, EvalOptions(files=[pos_data["valid"]]))
    assert result["f1"] == pytest.approx(json.loads((out / "model-best" / "metrics.json").read_text())["f1"])

    # The feature changes the tags: the same words with other POS values score differently.
    tagger = load(b, "numpy")
    sents = read_conll(pos_data["valid"], feature_columns=[2]).sentences[:6]
    x = encode(tagger.vocab, [s.tokens for s in sents], features=[s.features for s in sents])
    shuffled = encode(tagger.vocab, [s.tokens for s in sents], features=[[["NN"] * len(s.tokens)] for s in sents])
    assert not np.allclose(tagger.net.emissions(x), tagger.net.emissions(shuffled))
    keras_tagger = load(b, "keras")
    np.testing.assert_allclose(tagger.net.emissions(x)[x["words"] != 0],
                               np.asarray(keras_tagger.net.model.predict_on_batch(x))[x["words"] != 0], atol=1e-4)

    src = pos_data["valid"].read_text().splitlines()
    conll = list(api.predict(b, src, PredictOptions()))
    assert len(conll) == len(src)
    # The LiteRT part takes the feature ids too and tags like NumPy.
    from lstmtext.export import export_litert

    export_litert(out, tmp_path / "lite")
    lite = load(bundle_io.read(tmp_path / "lite"), "lite")
    assert lite.runtime == "lite"
    assert lite.tag([s.tokens for s in sents], features=[s.features for s in sents]) == \
        tagger.tag([s.tokens for s in sents], features=[s.features for s in sents])
    # Input without the column: one line each, no traceback.
    r = runner.invoke(app, ["predict", str(out), "the cat sees Anna ."])
    assert r.exit_code != 0 and "column(s) 2 as input features" in r.output and "Traceback" not in r.output
    narrow = tmp_path / "narrow.conll"
    narrow.write_text("the\ncat\n\n", encoding="utf-8")
    r = runner.invoke(app, ["predict", str(out), "--input", str(narrow), "--format", "conll"])
    assert r.exit_code != 0 and "feature column 2 does not exist" in r.output and "narrow.conll:1" in r.output
    r = runner.invoke(app, ["evaluate", str(out), str(narrow)])
    assert r.exit_code != 0 and "Traceback" not in r.output

    # JSONL 'tokens' records carry the column as "features", keyed by column number or as a list.
    gold = read_conll(pos_data["valid"], feature_columns=[2]).sentences
    keyed, listed = tmp_path / "keyed.jsonl", tmp_path / "listed.jsonl"
    keyed.write_text("".join(json.dumps({"tokens": s.tokens, "tags": s.tags, "features": {"2": s.features[0]}}) + "\n"
                             for s in gold), encoding="utf-8")
    listed.write_text("".join(json.dumps({"tokens": s.tokens, "features": s.features}) + "\n" for s in gold),
                      encoding="utf-8")
    expected = tagger.tag([s.tokens for s in gold], features=[s.features for s in gold])
    for path in (keyed, listed):
        lines = list(api.predict(b, path.read_text().splitlines(), PredictOptions(runtime="numpy")))
        assert [json.loads(line)["tags"] for line in lines] == expected
    assert api.evaluate(b, EvalOptions(files=[keyed]))["f1"] == pytest.approx(result["f1"])
    # ... and training reads them the same way as the CoNLL column.
    from lstmtext.ner.data import read_tagged

    again = read_tagged(keyed, feature_columns=[2]).sentences
    assert [(s.tokens, s.tags, s.features) for s in again] == [(s.tokens, s.tags, s.features) for s in gold]
    bad_records = {
        '{"text": "the cat sees Anna ."}': "give 'tokens' records with 'features'",
        '{"tokens": ["the", "cat"]}': "the record needs 'features'",
        '{"tokens": ["the", "cat"], "features": {"3": ["DT", "NN"]}}': "'features' lacks column(s) 2",
        '{"tokens": ["the", "cat"], "features": {"2": ["DT"]}}': "feature column 2 must be a list of 2",
    }
    for record, message in bad_records.items():
        bad = tmp_path / "bad.jsonl"
        bad.write_text('{"tokens": ["a"], "features": [["DT"]]}\n' + record + "\n", encoding="utf-8")
        r = runner.invoke(app, ["predict", str(out), "--input", str(bad)])
        assert r.exit_code != 0 and message in r.output and "bad.jsonl:2" in r.output, (record, r.output)
        assert "Traceback" not in r.output


def test_batch_predictor_equals_predict_for_label_kinds_and_feature_columns(pos_tagger, pos_data, tmp_path):
    """The engine-neutral batch predictor (Ray and Beam workers run it) gives predict's lines for
    per-token labels and for a tagger that reads another column as an input."""
    from lstmtext import bundle as bundle_io
    from lstmtext.batch.predictor import Predictor
    from lstmtext.ner import api
    from lstmtext.tasks import PredictOptions

    out = tmp_path / "chunker"
    r = train_cli("--train", str(pos_data["train"]), "--valid", str(pos_data["valid"]), "--output", str(out),
                  "--feature-column", "2", "--epochs", "1")
    assert r.exit_code == 0, r.output
    src = pos_data["valid"].read_text().splitlines()
    records = [(i, line, None) for i, line in enumerate(src, start=1)]
    for model in (pos_tagger, out):
        options = PredictOptions(format="conll", runtime="numpy")
        expected = list(api.predict(bundle_io.read(model, "ner"), src, options))
        results = Predictor(model, options).run(records, "conll", "valid.txt")
        assert not [x.error for x in results if x.error]
        assert [line for x in results for line in x.outputs] == expected
