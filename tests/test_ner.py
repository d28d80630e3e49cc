"""Named-entity tagging: schemes, readers, metrics, masking, and a tiny tagger end to end."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from lstmtext.errors import ConfigError, DataError, UsageError
from lstmtext.ner import schemes
from lstmtext.ner.data import read_conll, read_jsonl, read_tagged, tokenize
from lstmtext.ner.metrics import entity_scores
from lstmtext.training.auto import fill

runner = CliRunner()

# ---------------------------------------------------------------------------
# A small tagged corpus written for the project (news-like templates)
# ---------------------------------------------------------------------------

PER = ["Angela Merkel", "John Smith", "Maria Lopez", "Kofi Annan", "Peter", "Yasser Arafat", "Anna Berg"]
LOC = ["Paris", "New York", "Germany", "Berlin", "Tokyo", "South Africa", "Lima"]
ORG = ["Reuters", "European Union", "Siemens", "United Nations", "Bayern Munich", "Ajax"]
MISC = ["German", "French", "Olympic", "Dutch"]
TEMPLATES = [
    "{PER} visited {LOC} on Monday .",
    "{ORG} said {PER} would travel to {LOC} .",
    "Shares in {ORG} rose 3 percent in {LOC} .",
    "{PER} ( {LOC} ) won the {MISC} title .",
    "The {MISC} minister met {PER} .",
    "{LOC} beat {LOC} 2-1 .",
    "{ORG} reported a profit .",
    "Rain fell in {LOC} .",
]


def make_sentences(n: int, seed: int) -> list[list[tuple[str, str]]]:
    """``n`` sentences of ``(word, IOB2 tag)``."""
    rng = random.Random(seed)
    names = {"PER": PER, "LOC": LOC, "ORG": ORG, "MISC": MISC}
    out = []
    for _ in range(n):
        sent = []
        for piece in rng.choice(TEMPLATES).split():
            if piece.startswith("{"):
                etype = piece[1:-1]
                words = rng.choice(names[etype]).split()
                sent += [(w, ("B-" if i == 0 else "I-") + etype) for i, w in enumerate(words)]
            else:
                sent.append((piece, "O"))
        out.append(sent)
    return out


def write_conll(path: Path, sentences, scheme: str = "iob2", docstart: bool = True) -> Path:
    lines = ["-DOCSTART- -X- -X- O", ""] if docstart else []
    for sent in sentences:
        tags = schemes.convert([t for _, t in sent], scheme)
        lines += [f"{w} NNP O {t}" for (w, _), t in zip(sent, tags)] + [""]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


TINY = ["word_dim=16", "casing_dim=4", "char_dim=8", "char_filters=8", "hidden_size=16", "batch_size=8",
        "eval_batch_size=7", "patience=0", "lr=0.01", "optimizer=adam", "lr_schedule=constant",
        "singleton_unk=0.0", "dropout=0.1"]


@pytest.fixture(scope="module")
def ner_data(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("ner")
    return {"train": write_conll(d / "train.conll", make_sentences(240, 1)),
            "valid": write_conll(d / "valid.conll", make_sentences(40, 2)),
            "dir": d}


@pytest.fixture(scope="module")
def tiny_tagger(ner_data, tmp_path_factory) -> Path:
    """A tiny BiLSTM-CRF trained for 4 epochs through the command line."""
    from lstmtext.cli import app

    out = tmp_path_factory.mktemp("tagger") / "out"
    sets = [a for s in TINY for a in ("--set", s)]
    r = runner.invoke(app, ["train", "ner", "--train", str(ner_data["train"]), "--valid", str(ner_data["valid"]),
                            "--output", str(out), "--epochs", "4", "--seed", "1", "--quiet", *sets])
    assert r.exit_code == 0, r.output
    return out


# ---------------------------------------------------------------------------
# Schemes
# ---------------------------------------------------------------------------


def random_spans(rng: random.Random, length: int) -> list[tuple[str, int, int]]:
    spans, i = [], 0
    while i < length:
        if rng.random() < 0.4:
            end = min(length, i + rng.randint(1, 3))
            spans.append((rng.choice("ABC"), i, end))
            i = end
        else:
            i += rng.randint(1, 2)
    return spans


@pytest.mark.parametrize("scheme", ["iob1", "iob2", "bioes"])
def test_schemes_round_trip(scheme):
    rng = random.Random(0)
    for _ in range(300):
        n = rng.randint(1, 9)
        spans = random_spans(rng, n)
        tags = schemes.from_spans(spans, n, scheme)
        assert schemes.spans(tags) == spans
        assert schemes.violations(tags, scheme) == []
        for other in ("iob1", "iob2", "bioes"):
            assert schemes.convert(schemes.convert(tags, other), scheme) == tags


def test_scheme_detection_and_names():
    assert schemes.detect([["B-PER", "I-PER", "O"]]) == "iob2"
    assert schemes.detect([["I-PER", "I-PER", "O", "I-LOC", "B-LOC"]]) == "iob1"
    assert schemes.detect([["S-PER", "O"]]) == "bioes"
    assert schemes.detect([["U-PER", "B-LOC", "L-LOC"]]) == "bioes"
    assert schemes.convert(["U-PER", "B-LOC", "L-LOC"], "iob2") == ["B-PER", "B-LOC", "I-LOC"]
    assert schemes.normalize_scheme("BIO") == "iob2" and schemes.normalize_scheme("iobes") == "bioes"
    with pytest.raises(UsageError, match="unknown tag scheme"):
        schemes.normalize_scheme("bilux")
    with pytest.raises(ValueError, match="invalid tag"):
        schemes.split_tag("PER")


def test_crf_constraints_follow_scheme():
    tags = schemes.tag_set(["PER"], "bioes")  # O B I E S
    pairs, starts, ends = schemes.allowed(tags, "bioes")
    names = {(tags[i], tags[j]) for i, j in pairs}
    assert ("B-PER", "I-PER") in names and ("B-PER", "E-PER") in names
    assert ("O", "I-PER") not in names and ("B-PER", "O") not in names and ("S-PER", "E-PER") not in names
    assert {tags[i] for i in starts} == {"O", "B-PER", "S-PER"}
    assert {tags[i] for i in ends} == {"O", "E-PER", "S-PER"}
    pairs, starts, _ = schemes.allowed(schemes.tag_set(["PER"], "iob2"), "iob2")
    assert [0, 2] not in pairs and 2 not in starts  # O -> I-PER, start with I-PER


# ---------------------------------------------------------------------------
# Readers
# ---------------------------------------------------------------------------


def test_conll_reader_columns_docstart_and_tabs(tmp_path):
    p = tmp_path / "a.tsv"
    p.write_text("-DOCSTART-\tO\n\nEU\tB-ORG\tx\nrejects\tO\tx\n\n\nPeter\tB-PER\tx\n", encoding="utf-8")
    c = read_conll(p, word_column=1, tag_column=2)
    assert [s.tokens for s in c.sentences] == [["EU", "rejects"], ["Peter"]]
    assert [s.tags for s in c.sentences] == [["B-ORG", "O"], ["B-PER"]]
    assert c.sentences[1].line == 7 and c.scheme == "iob2"
    with pytest.raises(DataError, match="tag column 5 does not exist"):
        read_conll(p, tag_column=5)


def test_conll_reader_malformed_policy(tmp_path):
    p = tmp_path / "bad.txt"
    p.write_text("EU NNP B-ORG\nrejects VBZ\n\nPeter NNP B-PER\n\nGood NNP XYZ\n", encoding="utf-8")
    with pytest.raises(DataError) as exc:
        read_conll(p)
    assert f"{p}:2" in str(exc.value) and "expected 3 columns, found 2" in str(exc.value)
    c = read_conll(p, on_malformed="warn")
    assert [s.tokens for s in c.sentences] == [["Peter"]]
    assert c.problems == 2 and c.messages[0].startswith(f"{p}:2:") and f"{p}:6:" in c.messages[1]

    q = tmp_path / "iob.txt"
    q.write_text("a O\nb I-PER\n\nc B-LOC\n", encoding="utf-8")
    assert read_conll(q).scheme == "iob1"  # detected: an entity starts with I-
    with pytest.raises(DataError) as exc:
        read_conll(q, scheme="iob2")
    assert f"{q}:2" in str(exc.value) and "cannot follow" in str(exc.value)
    c = read_conll(q, scheme="iob2", on_malformed="warn")
    assert c.problems == 1 and len(c.sentences) == 2
    with pytest.raises(UsageError):
        read_conll(q, scheme="nonsense")


def test_jsonl_reader_both_forms(tmp_path):
    p = tmp_path / "d.jsonl"
    p.write_text(json.dumps({"tokens": ["Angela", "Merkel", "spoke"], "tags": ["B-PER", "I-PER", "O"]}) + "\n"
                 + json.dumps({"text": "Angela Merkel visited Paris.",
                               "entities": [{"start": 0, "end": 13, "type": "PER"},
                                            {"start": 22, "end": 27, "type": "LOC"}]}) + "\n\n",
                 encoding="utf-8")
    c = read_tagged(p)
    assert c.sentences[0].tags == ["B-PER", "I-PER", "O"]
    assert c.sentences[1].tokens == ["Angela", "Merkel", "visited", "Paris", "."]
    assert c.sentences[1].tags == ["B-PER", "I-PER", "O", "B-LOC", "O"]
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"text": "Angela Merkel", "entities": [{"start": 0, "end": 3, "type": "PER"}]})
                   + "\n{not json\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"bad.jsonl:1: .*token boundaries"):
        read_jsonl(bad)
    with pytest.raises(DataError, match="no tagged sentences"):
        read_jsonl(bad, on_malformed="warn")  # every record was bad: nothing left
    bad.write_text(p.read_text() + "{not json\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"bad.jsonl:4: invalid JSON"):
        read_jsonl(bad)
    c = read_jsonl(bad, on_malformed="warn")
    assert len(c.sentences) == 2 and c.problems == 1 and "bad.jsonl:4:" in c.messages[0]


def test_tokenizer_keeps_offsets():
    text = "Germany's U.S. envoy didn't  visit Mr. Smith on 1996-08-22, e-mail: O'Neill (3.5%)."
    toks = tokenize(text)
    assert all(text[s:e] == t for t, s, e in toks)
    words = [t for t, _, _ in toks]
    assert words[:8] == ["Germany", "'s", "U.S.", "envoy", "did", "n't", "visit", "Mr."]
    assert "1996-08-22" in words and "e-mail" in words and "O'Neill" in words and "3.5" in words
    assert tokenize("") == [] and tokenize("   ") == []


# ---------------------------------------------------------------------------
# Metrics
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("prefixes", ["BIO", "BIOES"])
def test_metrics_equal_seqeval(prefixes):
    seqeval = pytest.importorskip("seqeval.metrics")
    rng = random.Random(4)
    tags = ["O"] + [f"{p}-{t}" for p in prefixes.replace("O", "") for t in ("PER", "LOC", "ORG")]
    gold, pred = [], []
    for _ in range(200):
        n = rng.randint(1, 12)
        # Random (also invalid) sequences: both must read them the conlleval way.
        g = [rng.choice(tags) for _ in range(n)]
        p = [t if rng.random() < 0.7 else rng.choice(tags) for t in g]
        gold.append(g)
        pred.append(p)
    ours = entity_scores(gold, pred)
    assert ours["precision"] == pytest.approx(100 * seqeval.precision_score(gold, pred))
    assert ours["recall"] == pytest.approx(100 * seqeval.recall_score(gold, pred))
    assert ours["f1"] == pytest.approx(100 * seqeval.f1_score(gold, pred))
    assert ours["accuracy"] == pytest.approx(100 * seqeval.accuracy_score(gold, pred))
    report = seqeval.classification_report(gold, pred, output_dict=True)
    for etype, row in ours["per_type"].items():
        assert row["f1"] == pytest.approx(100 * report[etype]["f1-score"])
        assert row["support"] == report[etype]["support"]


# ---------------------------------------------------------------------------
# The tagger
# ---------------------------------------------------------------------------


def test_train_save_load_predict_evaluate(tiny_tagger, ner_data, tmp_path):
    from lstmtext import bundle as bundle_io
    from lstmtext.cli import app
    from lstmtext.ner import api
    from lstmtext.tasks import EvalOptions, PredictOptions

    best = tiny_tagger / "model-best"
    assert {"config.json", "vocab.json", "weights.h5", "metrics.json"} <= {p.name for p in best.iterdir()}
    b = bundle_io.read(tiny_tagger, "ner")
    result = api.evaluate(b, EvalOptions(files=[ner_data["valid"]]))
    assert {"precision", "recall", "f1", "accuracy", "per_type"} <= set(result)
    assert result["f1"] > 50, result  # learned something from 240 template sentences
    assert result["f1"] == pytest.approx(json.loads((best / "metrics.json").read_text())["f1"])

    lines = ["Angela Merkel visited Paris on Monday .", "", "Reuters", "Rain fell in Berlin ."]
    out = list(api.predict(b, lines, PredictOptions()))
    records = [json.loads(line) for line in out]
    assert [r["text"] for r in records] == lines
    assert records[1]["entities"] == []
    for rec in records:
        for ent in rec["entities"]:
            assert rec["text"][ent["start"]:ent["end"]] == ent["text"]
    text = list(api.predict(b, lines, PredictOptions(format="text")))
    assert len(text) == 4 and text[1] == ""
    assert text[0].replace("[PER ", "").replace("[LOC ", "").replace("[ORG ", "").replace("[MISC ", "") \
        .replace("]", "") == lines[0]

    # CoNLL in, CoNLL out: the predicted column appended, layout kept.
    src = ner_data["valid"].read_text().splitlines()
    conll = list(api.predict(b, src, PredictOptions()))
    assert len(conll) == len(src)
    for a, c in zip(src, conll):
        assert c.startswith(a) and (len(c.split()) == len(a.split()) + 1 if a.strip() else c == a)

    # Through the command line, too.
    r = runner.invoke(app, ["evaluate", str(tiny_tagger), str(ner_data["valid"]), "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["f1"] == pytest.approx(result["f1"])
    dest = tmp_path / "pred.txt"
    r = runner.invoke(app, ["predict", str(tiny_tagger), "--input", str(ner_data["valid"]), "--output", str(dest)])
    assert r.exit_code == 0, r.output
    assert dest.read_text().splitlines() == conll
    r = runner.invoke(app, ["predict", str(tiny_tagger), "Peter visited Lima .", "--format", "text"])
    assert r.exit_code == 0 and "visited" in r.stdout
    r = runner.invoke(app, ["info", str(tiny_tagger), "--json"])
    assert r.exit_code == 0 and json.loads(r.stdout)["entity_types"] == ["LOC", "MISC", "ORG", "PER"]


def test_masking_is_exact_and_runtimes_agree(tiny_tagger, ner_data):
    from lstmtext import bundle as bundle_io
    from lstmtext.ner.api import load
    from lstmtext.ner.features import encode

    b = bundle_io.read(tiny_tagger, "ner")
    tagger = load(b)
    sentences = [s.tokens for s in read_conll(ner_data["valid"]).sentences][:12] + [["Paris"]]
    alone = [tagger.tag_ids([s])[0].tolist() for s in sentences]
    rng = np.random.default_rng(0)
    for _ in range(5):
        order = rng.permutation(len(sentences))
        size = int(rng.integers(2, len(sentences) + 1))
        batch = [sentences[i] for i in order[:size]]
        for i, ids in zip(order[:size], tagger.tag_ids(batch)):
            assert ids.tolist() == alone[i]
    # The Keras model (TensorFlow or JAX) gives the NumPy runtime's emissions and tags.
    keras_tagger = load(b, "keras")
    inputs = encode(tagger.vocab, sentences)
    e_np = tagger.net.emissions(inputs)
    e_keras = np.asarray(keras_tagger.net.model.predict_on_batch(inputs))
    mask = inputs["words"] != 0
    np.testing.assert_allclose(e_np[mask], e_keras[mask], atol=1e-4)
    assert [t.tolist() for t in keras_tagger.tag_ids(sentences)] == alone
    one = [keras_tagger.tag_ids([s])[0].tolist() for s in sentences[:3]]
    assert one == alone[:3]


def test_streaming_window_keeps_order(tiny_tagger):
    from lstmtext import bundle as bundle_io
    from lstmtext.ner import api
    from lstmtext.tasks import PredictOptions

    b = bundle_io.read(tiny_tagger, "ner")
    lines = [f"{random.Random(i).choice(PER)} visited {LOC[i % len(LOC)]} ." + " ." * (i % 5) for i in range(23)]
    lines[5] = ""
    whole = list(api.predict(b, lines, PredictOptions(format="jsonl")))
    small = list(api.predict(b, iter(lines), PredictOptions(format="jsonl", extra={"window": 3})))
    assert whole == small and [json.loads(x)["text"] for x in small] == lines


def test_evaluate_streams_in_windows(tiny_tagger, ner_data):
    from lstmtext import bundle as bundle_io
    from lstmtext.ner import api
    from lstmtext.tasks import EvalOptions

    b = bundle_io.read(tiny_tagger, "ner")
    whole = api.evaluate(b, EvalOptions(files=[ner_data["valid"]]))
    small = api.evaluate(b, EvalOptions(files=[ner_data["valid"]], extra={"window": 4}))
    for key in ("precision", "recall", "f1", "accuracy", "per_type", "tokens", "sentences"):
        assert small[key] == whole[key]


def test_shipped_model_reaches_target():
    from tests.conftest import ROOT, needs_shared

    valid = needs_shared("conll2003", "valid.txt")
    model = ROOT / "models" / "ner-conll03"
    if not (model / "weights.h5").is_file():
        pytest.skip("no shipped model")
    from lstmtext import bundle as bundle_io
    from lstmtext.ner import api
    from lstmtext.tasks import EvalOptions

    result = api.evaluate(bundle_io.read(model, "ner"), EvalOptions(files=[valid]))
    assert result["f1"] >= 89.0 and result["tokens"] == 51362


def test_resume_and_bad_input(tiny_tagger, ner_data, tmp_path):
    from lstmtext.cli import app

    r = runner.invoke(app, ["train", "ner", "--train", str(ner_data["train"]), "--valid", str(ner_data["valid"]),
                            "--output", str(tiny_tagger), "--epochs", "5", "--resume", "--quiet"])
    assert r.exit_code == 0, r.output
    assert json.loads((tiny_tagger / "model-last" / "trainer.json").read_text())["epoch"] == 5

    bad = tmp_path / "bad.conll"
    bad.write_text("EU B-ORG\nrejects\n", encoding="utf-8")
    r = runner.invoke(app, ["train", "ner", "--train", str(bad), "--valid", str(ner_data["valid"]),
                            "--output", str(tmp_path / "o")])
    assert r.exit_code != 0 and f"{bad}:2" in r.stderr and "Traceback" not in r.output
    r = runner.invoke(app, ["train", "ner", "--train", str(ner_data["train"]), "--valid", str(ner_data["valid"]),
                            "--output", str(tmp_path / "o"), "--scheme", "xyz"])
    assert r.exit_code != 0 and "unknown tag scheme" in r.stderr
    r = runner.invoke(app, ["predict", str(tiny_tagger), "x", "--format", "markdown"])
    assert r.exit_code != 0 and "jsonl, conll or text" in r.stderr
    with pytest.raises(ConfigError):
        from lstmtext.config import resolve
        from lstmtext.ner.config import NERConfig

        resolve(NERConfig, sets=["num_layers=3"])


def test_embeddings_file_initialises_words(ner_data, tmp_path):
    from lstmtext.ner.features import Vocab
    from lstmtext.ner.network import read_embeddings

    glove = tmp_path / "vectors.txt"
    glove.write_text("3 4\nparis 1 2 3 4\nParis 9 9 9 9\nBERLIN 5 6 7 8\nzzz 0 0 0 1\n", encoding="utf-8")
    vocab = Vocab.build([["Paris", "visited", "Berlin"]], ["O"])
    matrix, report, found = read_embeddings(glove, vocab, 4)
    assert matrix[vocab.word_index["paris"]].tolist() == [1, 2, 3, 4]  # exact match wins over "Paris"
    assert matrix[vocab.word_index["berlin"]].tolist() == [5, 6, 7, 8]  # lowercase fallback
    assert report["found"] == 2 and report["coverage"] == pytest.approx(2 / 3)
    with pytest.raises(DataError, match="word_dim"):
        read_embeddings(glove, vocab, 8)


def random_tagger(char_encoder, num_layers, head, casing_dim):
    """An untrained tiny tagger of the given architecture, its vocabulary and some encoded sentences."""
    from lstmtext.ner.config import NERConfig
    from lstmtext.ner.features import Vocab, encode
    from lstmtext.ner.network import build_model

    config = fill(NERConfig(word_dim=8, casing_dim=casing_dim, char_dim=6, char_filters=5, char_hidden=4,
                            hidden_size=7, num_layers=num_layers, char_encoder=char_encoder, head=head))
    tags = schemes.tag_set(["LOC", "PER"], "bioes")
    sentences = [[w for w, _ in s] for s in make_sentences(9, 3)] + [["Lima"]]
    vocab = Vocab.build(sentences[:5], tags)
    constraints = schemes.allowed(tags, "bioes") if head == "crf" else None
    return config, vocab, constraints, build_model(config, vocab, constraints), encode(vocab, sentences)


@pytest.mark.parametrize("char_encoder,num_layers,head,casing_dim",
                         [("lstm", 2, "crf", 4), ("none", 1, "softmax", 0), ("cnn", 2, "softmax", 3)])
def test_runtimes_match_keras_model(char_encoder, num_layers, head, casing_dim, monkeypatch):
    """The NumPy runtime (one thread, and its directions on threads), and the TensorFlow function the LiteRT
    part is converted from, give Keras' emissions."""
    from lstmtext.decoding import parallel
    from lstmtext.lite.ner import build, signature
    from lstmtext.ner.network import NumpyTagger, model_arrays

    config, vocab, constraints, model, inputs = random_tagger(char_encoder, num_layers, head, casing_dim)
    arrays = model_arrays(model)
    net = NumpyTagger(arrays, config.__dict__, vocab, constraints)
    mask = inputs["words"] != 0
    want = np.asarray(model.predict_on_batch(inputs))[mask]
    np.testing.assert_allclose(net.emissions(inputs)[mask], want, atol=1e-5)
    monkeypatch.setattr(parallel, "MIN_ROWS", 1)
    monkeypatch.setenv("LSTMTEXT_THREADS", "3")
    np.testing.assert_allclose(net.emissions(inputs)[mask], want, atol=1e-5)
    functions, extra = build(arrays, config.__dict__, vocab=vocab)
    got = functions["emissions"](*[inputs[n] for n in signature(config.__dict__)[0]])["emissions"]
    np.testing.assert_allclose(np.asarray(got)[mask], want, atol=1e-5)
    assert ("crf" in extra) == (head == "crf")


def test_batches_on_threads_tag_like_one_batch_at_a_time(tiny_tagger, tmp_path, monkeypatch):
    """Batches tagged on threads (NumPy, and LiteRT behind its lock), windows included, give the serial tags."""
    from lstmtext import bundle as bundle_io
    from lstmtext.decoding import parallel
    from lstmtext.export import export_litert
    from lstmtext.ner.tagger import Tagger

    export_litert(tiny_tagger, tmp_path / "lite")
    sentences = [[w for w, _ in s] for s in make_sentences(90, 11)] + [[], ["Lima"]]
    used = []
    real = parallel.map_in_threads
    monkeypatch.setattr(parallel, "map_in_threads", lambda fn, n, threads: used.append(threads) or real(fn, n, threads))
    for runtime in ("numpy", "lite", "auto"):
        tagger = Tagger(bundle_io.read(tmp_path / "lite"), runtime, batch_size=2)
        tagger.max_length = 6  # long sentences in windows, stitched across batches
        monkeypatch.setenv("LSTMTEXT_THREADS", "1")
        serial = tagger.tag(sentences)
        monkeypatch.setenv("LSTMTEXT_THREADS", "3")
        assert tagger.tag(sentences) == serial, runtime
        assert used[-2:] == [1, 3]
    assert serial[-2] == [] and len(serial[-1]) == 1


def test_lite_parts_tag_like_numpy_and_fall_back_cleanly(tiny_tagger, ner_data, tmp_path):
    from lstmtext import bundle as bundle_io
    from lstmtext.cli import app
    from lstmtext.export import export_litert
    from lstmtext.ner.tagger import Tagger

    lite_dir = tmp_path / "lite"
    r = export_litert(tiny_tagger, lite_dir)
    assert set(r["files"]) == {"emissions"} and (lite_dir / "lite" / "crf.npz").is_file()
    assert export_litert(tiny_tagger, tmp_path / "int8", "dynamic")["quantize"] == "dynamic"  # int8 weights
    b = bundle_io.read(lite_dir)
    sentences = [[w for w, _ in s] for s in make_sentences(30, 7)] + [["Lima"]]
    lite, plain = Tagger(b, "lite"), Tagger(b, "numpy")
    assert lite.runtime == "lite" and plain.runtime == "numpy"
    assert lite.tag(sentences) == plain.tag(sentences)
    # The int8 part runs and tags (nearly) like the float network.
    int8 = Tagger(bundle_io.read(tmp_path / "int8"), "lite").tag(sentences)
    pairs = [(a, b) for x, y in zip(int8, plain.tag(sentences)) for a, b in zip(x, y, strict=True)]
    assert len(int8) == len(sentences) and sum(a == b for a, b in pairs) >= 0.9 * len(pairs)
    auto = Tagger(b, "auto")  # LiteRT for small batches, NumPy for large ones: the same tags
    assert auto.tag(sentences[:3]) == plain.tag(sentences[:3])
    assert auto._weights_runner is None  # 3 short sentences: LiteRT alone, weights.h5 never read
    long = [w for s in sentences for w in s][:80]  # one sentence, but more padded tokens than LiteRT wins at
    assert auto.tag([long]) == plain.tag([long]) and auto._weights_runner is not None
    assert auto.tag(sentences) == plain.tag(sentences)
    # Without parts, --runtime lite says so in one line and tags with NumPy.
    text = "Maria lives in Lima ."
    r1 = runner.invoke(app, ["predict", str(tiny_tagger), text, "--runtime", "lite", "--format", "text"])
    r2 = runner.invoke(app, ["predict", str(lite_dir), text, "--runtime", "lite", "--format", "text"])
    assert r1.exit_code == 0 and r2.exit_code == 0, r1.output + r2.output
    assert "no lite parts" in r1.stderr and r1.stdout == r2.stdout
