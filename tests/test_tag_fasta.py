"""Character sequences from FASTA: reader and its errors, masked residues, windows, a tiny residue tagger."""

from __future__ import annotations

import itertools
import json
import random
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from lstmtext.errors import DataError
from lstmtext.ner import fasta

runner = CliRunner()

AMINO = "ACDEFGHIKLMNPQRSTVWY"


def protein(rng: random.Random, n: int) -> tuple[str, str]:
    """A residue sequence and its states: runs of helix-loving residues (AELM) are H, of strand-loving (VIY) E."""
    seq, states = [], []
    while len(seq) < n:
        kind = rng.choice("HEC")
        pool = {"H": "AELMKQ", "E": "VIYFTW", "C": "GPNDS"}[kind]
        for _ in range(rng.randint(3, 8)):
            seq.append(rng.choice(pool))
            states.append(kind)
    return "".join(seq[:n]), "".join(states[:n])


def write_set(d: Path, n: int, seed: int, valid_every: int = 4) -> dict[str, Path]:
    """sequences.fasta, sampled.fasta (with SET/VALIDATION flags) and mask.fasta, as FLIP writes them."""
    rng = random.Random(seed)
    seqs, labs, masks = [], [], []
    for i in range(n):
        s, y = protein(rng, rng.randint(20, 60))
        m = "".join("0" if (j < 2 or rng.random() < 0.05) else "1" for j in range(len(s)))
        flag = "True" if i % valid_every == 0 else "False"
        seqs += [f">p{i}-A", s]
        labs += [f">p{i}-A SET=train VALIDATION={flag}", y]
        masks += [f">p{i}-A", m]
    out = {}
    for name, lines in (("sequences", seqs), ("sampled", labs), ("mask", masks)):
        out[name] = d / f"{name}.fasta"
        out[name].write_text("\n".join(lines) + "\n", encoding="utf-8")
    return out


# ---------------------------------------------------------------------------
# Reader
# ---------------------------------------------------------------------------


def test_fasta_round_trip(tmp_path):
    files = write_set(tmp_path, 12, 1)
    sentences, validation = fasta.read_labelled(files["sequences"], files["sampled"], files["mask"])
    assert len(sentences) == 12 and validation == [i % 4 == 0 for i in range(12)]
    records = fasta.read_records(files["sequences"])
    labels = fasta.read_records(files["sampled"])
    masks = fasta.read_records(files["mask"])
    for sent, r, y, m in zip(sentences, records, labels, masks):
        assert "".join(sent.tokens) == r.sequence and sent.text == r.id
        assert [t for t, k in zip(sent.tags, m.sequence) if k == "1"] == [c for c, k in zip(y.sequence, m.sequence)
                                                                         if k == "1"]
        assert all(t is None for t, k in zip(sent.tags, m.sequence) if k == "0")
    # Written back (wrapped or not) and read again: the same records.
    lines = [line for r in labels for line in fasta.format_record(r.id + " " + r.description, r.sequence, 7)]
    again = list(fasta.iter_records(enumerate(lines, 1), "x"))
    assert [(a.id, a.description, a.sequence) for a in again] == [(a.id, a.description, a.sequence) for a in labels]
    assert again[0].flags == {"SET": "train", "VALIDATION": "True"} and again[0].validation


@pytest.mark.parametrize("case,message", [
    ("count", "sampled.fasta: 11 records, but sequences.fasta has 12"),
    ("id", "sampled.fasta:9: record 'q4-A' stands where sequences.fasta has 'p4-A'"),
    ("length", "sampled.fasta:5: record 'p2-A' has"),
    ("mask-length", "mask.fasta:5: record 'p2-A' has"),
    ("mask-char", "mask.fasta:5: record 'p2-A': mask character '2'"),
    ("empty", "sequences.fasta:5: record 'p2-A' has an empty sequence"),
    ("residue", "sequences.fasta:5: record 'p2-A': character '1' at residue 3 is not a residue letter"),
    ("before", "sequences.fasta:1: text before the first FASTA header"),
])
def test_fasta_errors_name_file_and_record(tmp_path, case, message):
    files = write_set(tmp_path, 12, 1)

    def edit(name, fn):
        lines = files[name].read_text().splitlines()
        fn(lines)
        files[name].write_text("\n".join(lines) + "\n")

    if case == "count":
        edit("sampled", lambda ls: ls.__delitem__(slice(22, 24)))
    elif case == "id":
        edit("sampled", lambda ls: ls.__setitem__(8, ls[8].replace("p4-A", "q4-A")))
    elif case == "length":
        edit("sampled", lambda ls: ls.__setitem__(5, ls[5][:-1]))
    elif case == "mask-length":
        edit("mask", lambda ls: ls.__setitem__(5, ls[5] + "1"))
    elif case == "mask-char":
        edit("mask", lambda ls: ls.__setitem__(5, "2" + ls[5][1:]))
    elif case == "empty":
        for name in files:
            edit(name, lambda ls: ls.__setitem__(5, ""))
    elif case == "residue":
        edit("sequences", lambda ls: ls.__setitem__(5, ls[5][:2] + "1" + ls[5][3:]))
    elif case == "before":
        edit("sequences", lambda ls: ls.insert(0, "MKV"))
    with pytest.raises(DataError) as exc:
        fasta.read_labelled(files["sequences"], files["sampled"], files["mask"])
    assert message in str(exc.value), str(exc.value)


# ---------------------------------------------------------------------------
# Masked residues
# ---------------------------------------------------------------------------


def test_partial_crf_loss_sums_over_masked_labels():
    """The loss equals a brute-force sum over every labelling of the masked positions."""
    import keras

    from lstmtext.layers.crf import CRF
    from lstmtext.ner.features import MASKED
    from lstmtext.ner.heads import partial_crf_loss

    rng = np.random.default_rng(0)
    K, T = 3, 5
    crf = CRF(K)
    crf.build()
    emissions = rng.normal(size=(1, T, K)).astype("float32")
    trans, start, end = (np.asarray(keras.ops.convert_to_numpy(x)) for x in crf.potentials())

    def score(path):
        s = start[path[0]] + end[path[-1]] + sum(emissions[0, t, k] for t, k in enumerate(path))
        return s + sum(trans[a, b] for a, b in zip(path, path[1:]))

    gold = [0, 2, 1, 1, 0]
    masked = {1, 3}
    paths = list(itertools.product(range(K), repeat=T))
    log_z = np.log(sum(np.exp(score(p)) for p in paths))
    log_obs = np.log(sum(np.exp(score(p)) for p in paths if all(p[t] == gold[t] for t in range(T) if t not in masked)))
    y = np.array([[MASKED if t in masked else gold[t] for t in range(T)]], "int32")
    loss = partial_crf_loss(crf)
    assert float(np.asarray(loss(y, emissions))[0]) == pytest.approx(log_z - log_obs, abs=1e-4)
    # Nothing masked: the CRF's own negative log-likelihood; padding changes nothing either.
    full = np.array([gold], "int32")
    assert float(np.asarray(loss(full, emissions))[0]) == pytest.approx(float(np.asarray(crf.loss(full, emissions))[0]),
                                                                      abs=1e-4)
    padded = np.concatenate([y, [[-1, -1]]], axis=1)
    e_padded = np.concatenate([emissions, rng.normal(size=(1, 2, K)).astype("float32")], axis=1)
    assert float(np.asarray(loss(padded, e_padded))[0]) == pytest.approx(log_z - log_obs, abs=1e-4)


def test_masked_residues_change_neither_loss_nor_metrics(tmp_path):
    """Other labels under mask 0 give the same targets, the same loss and the same scores."""
    from lstmtext.layers.crf import CRF
    from lstmtext.ner.features import Vocab, encode_tags
    from lstmtext.ner.heads import partial_crf_loss, softmax_loss
    from lstmtext.ner.metrics import label_scores

    files = write_set(tmp_path, 8, 3)
    sents, _ = fasta.read_labelled(files["sequences"], files["sampled"], files["mask"])
    other = tmp_path / "other.fasta"
    masks = fasta.read_records(files["mask"])
    lines = []
    for r, m in zip(fasta.read_records(files["sampled"]), masks):
        flipped = "".join(("H" if c != "H" else "E") if k == "0" else c for c, k in zip(r.sequence, m.sequence))
        lines += [f">{r.id} {r.description}", flipped]
    other.write_text("\n".join(lines) + "\n")
    sents2, _ = fasta.read_labelled(files["sequences"], other, files["mask"])
    vocab = Vocab(["<pad>", "<unk>"], ["<pad>", "<unk>"], ["C", "E", "H"])
    T = max(len(s.tokens) for s in sents)
    y1 = encode_tags(vocab, [s.tags for s in sents], T)
    y2 = encode_tags(vocab, [s.tags for s in sents2], T)
    np.testing.assert_array_equal(y1, y2)
    emissions = np.random.default_rng(1).normal(size=(len(sents), T, 3)).astype("float32")
    crf = CRF(3)
    crf.build()
    for loss in (partial_crf_loss(crf), softmax_loss):
        np.testing.assert_allclose(np.asarray(loss(y1, emissions)), np.asarray(loss(y2, emissions)))
    pred = [["C"] * len(s.tokens) for s in sents]
    assert label_scores([s.tags for s in sents], pred) == label_scores([s.tags for s in sents2], pred)
    # The unmasked labels do change the loss: the test would notice a loss that ignored labels.
    y3 = y1.copy()
    y3[y3 >= 0] = (y3[y3 >= 0] + 1) % 3
    assert not np.allclose(np.asarray(partial_crf_loss(crf)(y1, emissions)),
                           np.asarray(partial_crf_loss(crf)(y3, emissions)))


# ---------------------------------------------------------------------------
# A tiny residue tagger end to end
# ---------------------------------------------------------------------------

TINY = ["word_dim=8", "hidden_size=12", "batch_size=8", "eval_batch_size=5", "patience=0", "lr=0.03",
        "optimizer=adam", "lr_schedule=constant", "singleton_unk=0.0", "dropout=0.0", "max_length=24"]


@pytest.fixture(scope="module")
def protein_data(tmp_path_factory) -> dict[str, Path]:
    return write_set(tmp_path_factory.mktemp("protein"), 60, 5)


@pytest.fixture(scope="module")
def residue_tagger(protein_data, tmp_path_factory) -> Path:
    from lstmtext.cli import app

    out = tmp_path_factory.mktemp("residues") / "out"
    sets = [a for s in TINY for a in ("--set", s)]
    r = runner.invoke(app, ["train", "tag", "--train", str(protein_data["sequences"]), "--labels",
                            str(protein_data["sampled"]), "--mask", str(protein_data["mask"]), "--output", str(out),
                            "--epochs", "3", "--seed", "2", "--quiet", *sets])
    assert r.exit_code == 0, r.output
    return out


def test_residue_tagger_trains_scores_and_predicts(residue_tagger, protein_data, tmp_path):
    from lstmtext import bundle as bundle_io
    from lstmtext.cli import app

    b = bundle_io.read(residue_tagger, "ner")
    assert b.config["input"] == "chars" and b.config["label_kind"] == "tokens"
    assert b.config["casing_dim"] == 0 and b.config["char_encoder"] == "none" and not b.config["lowercase"]
    # No --valid: the records marked VALIDATION=True were the validation set.
    metrics = json.loads((residue_tagger / "model-best" / "metrics.json").read_text())
    args = ["evaluate", str(residue_tagger), str(protein_data["sequences"]), "--labels", str(protein_data["sampled"]),
            "--mask", str(protein_data["mask"]), "--json"]
    r = runner.invoke(app, args + ["--records", "validation"])
    assert r.exit_code == 0, r.output
    result = json.loads(r.stdout)
    assert result["q3"] == pytest.approx(metrics["accuracy"]) and result["q3"] == result["accuracy"]
    assert result["q3"] > 45 and set(result["per_label"]) == {"C", "E", "H"} and result["masked"] > 0
    sents, validation = fasta.read_labelled(protein_data["sequences"], protein_data["sampled"], protein_data["mask"])
    assert result["tokens"] == sum(t is not None for s, v in zip(sents, validation) if v for t in s.tags)
    r = runner.invoke(app, args)
    assert r.exit_code == 0 and json.loads(r.stdout)["sentences"] == 60

    # FASTA in, FASTA out (ids kept, one label per residue); one sequence a line in, JSONL out.
    dest = tmp_path / "pred.fasta"
    r = runner.invoke(app, ["predict", str(residue_tagger), "--input", str(protein_data["sequences"]),
                            "--output", str(dest)])
    assert r.exit_code == 0, r.output
    pred = fasta.read_records(dest)
    seqs = fasta.read_records(protein_data["sequences"])
    assert [p.id for p in pred] == [s.id for s in seqs]
    assert all(len(p.sequence) == len(s.sequence) and set(p.sequence) <= {"C", "E", "H"} for p, s in zip(pred, seqs))
    long = seqs[0].sequence * 9  # hundreds of residues: tagged in windows of max_length (24)
    r = runner.invoke(app, ["predict", str(residue_tagger), seqs[1].sequence, "", long])
    assert r.exit_code == 0, r.output
    rows = [json.loads(x) for x in r.stdout.splitlines()]
    assert rows[0]["labels"] == pred[1].sequence and rows[1] == {"id": "2", "sequence": "", "labels": ""}
    assert len(rows[2]["labels"]) == len(long)
    r = runner.invoke(app, ["predict", str(residue_tagger), "--input", str(protein_data["sequences"]), "--format",
                            "jsonl"])
    assert json.loads(r.stdout.splitlines()[0])["id"] == seqs[0].id
    r = runner.invoke(app, ["predict", str(residue_tagger), seqs[1].sequence, "--format", "text"])
    assert r.stdout.splitlines() == [pred[1].sequence]

    # Bad input: one line naming file and record, non-zero exit, an existing output left as it was.
    bad = tmp_path / "bad.fasta"
    bad.write_text(">x1\nMKV\n>x2\n\n>x3\nMKV\n")
    r = runner.invoke(app, ["predict", str(residue_tagger), "--input", str(bad), "--output", str(dest)])
    assert r.exit_code != 0 and "Traceback" not in r.output
    assert "bad.fasta:3: record 'x2' has an empty sequence" in " ".join(r.output.split())
    assert fasta.read_records(dest)[0].id == seqs[0].id
    short = tmp_path / "short.fasta"
    short.write_text("\n".join(protein_data["sampled"].read_text().splitlines()[:-2]) + "\n")
    r = runner.invoke(app, args[:4] + [str(short), "--json"])
    assert r.exit_code != 0 and "short.fasta: 59 records, but sequences.fasta has 60" in " ".join(r.output.split())
    odd = tmp_path / "odd.fasta"
    odd.write_text(protein_data["sampled"].read_text().replace("SET=train VALIDATION=True\nC", "SET=train "
                                                                "VALIDATION=True\nG", 1))
    r = runner.invoke(app, args[:4] + [str(odd)])
    assert r.exit_code != 0 and "label 'G' was never seen in training" in r.output and "Traceback" not in r.output


def test_character_runtimes_agree(residue_tagger, protein_data, tmp_path):
    from lstmtext import bundle as bundle_io
    from lstmtext.ner.api import load

    b = bundle_io.read(residue_tagger, "ner")
    seqs = [r.sequence for r in fasta.read_records(protein_data["sequences"])[:7]]
    np_tags = load(b, "numpy").tag(seqs)
    assert load(b, "keras").tag(seqs) == np_tags
    assert [load(b, "numpy", batch_size=1).tag([s])[0] for s in seqs] == np_tags
    from lstmtext.export import export_litert

    export_litert(residue_tagger, tmp_path / "lite")
    lite = load(bundle_io.read(tmp_path / "lite"), "lite")
    assert lite.runtime == "lite" and lite.tag(seqs) == np_tags
    # Predicting imports no TensorFlow, on either light runtime.
    import subprocess
    import sys

    for model in (residue_tagger, tmp_path / "lite"):
        code = ("import sys; from lstmtext.cli import app; from typer.testing import CliRunner; "
                f"r = CliRunner().invoke(app, ['predict', {str(model)!r}, 'MKVLAAGG']); "
                "assert r.exit_code == 0, r.output; assert 'tensorflow' not in sys.modules; print(r.stdout)")
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        assert len(json.loads(done.stdout.splitlines()[0])["labels"]) == 8


def test_training_refuses_fasta_without_labels(protein_data, tmp_path):
    from lstmtext.cli import app

    base = ["train", "tag", "--train", str(protein_data["sequences"]), "--output", str(tmp_path / "out"), "--quiet"]
    r = runner.invoke(app, base)
    assert r.exit_code != 0 and "need as many --labels files, got 0" in r.output and "Traceback" not in r.output
    r = runner.invoke(app, base + ["--labels", str(protein_data["sampled"]), "--valid", str(protein_data["sequences"])])
    assert r.exit_code != 0 and "--valid-labels" in r.output
    short = tmp_path / "short.fasta"
    short.write_text("\n".join(protein_data["sampled"].read_text().splitlines()[:-2]) + "\n")
    r = runner.invoke(app, base + ["--labels", str(short)])
    assert r.exit_code != 0 and "59 records, but sequences.fasta has 60" in " ".join(r.output.split())
    assert not (tmp_path / "out" / "model-best").exists()
