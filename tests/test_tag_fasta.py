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
