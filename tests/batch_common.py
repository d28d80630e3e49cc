"""What the batch-inference tests of every engine share: tiny tagger and translator, ``predict``'s output, shards.

Used by tests/test_batch.py (Ray Data) and tests/test_beam.py (Apache Beam); needs neither engine.
"""

from __future__ import annotations

import glob
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lstmtext.tasks import TrainOptions
from lstmtext.training.reporting import Reporter
from tests.conftest import tiny_sentences
from tests.test_ner import TINY as TINY_NER, make_sentences, write_conll
from tests.test_translate import TINY_MT
from tests.toy_pair import corpus as toy_corpus

runner = CliRunner()


@pytest.fixture(scope="module")
def tiny_tagger_model(tmp_path_factory) -> Path:
    from lstmtext.ner.api import train

    d = tmp_path_factory.mktemp("batch-ner")
    write_conll(d / "train.conll", make_sentences(60, 1))
    write_conll(d / "valid.conll", make_sentences(10, 2))
    train(TrainOptions(output=d / "out", train=[d / "train.conll"], valid=[d / "valid.conll"], sets=TINY_NER,
                       epochs=1, seed=1), Reporter())
    return d / "out"


@pytest.fixture(scope="module")
def tiny_translator(tmp_path_factory) -> Path:
    from lstmtext.translate.api import train

    d = tmp_path_factory.mktemp("batch-mt")
    pairs = toy_corpus(60, seed=5)
    (d / "train.tsv").write_text("".join(f"{s}\t{t}\n" for s, t in pairs[:48]), encoding="utf-8")
    (d / "valid.tsv").write_text("".join(f"{s}\t{t}\n" for s, t in pairs[48:]), encoding="utf-8")
    train(TrainOptions(output=d / "out", train=[d / "train.tsv"], valid=[d / "valid.tsv"],
                       sets=TINY_MT + ["jit_compile=false"], epochs=1, seed=1), Reporter())
    return d / "out"


def _predict(model: Path, path: Path, *args: str) -> list[str]:
    """``lstmtext predict MODEL --input PATH ARGS`` output lines."""
    from lstmtext.cli import app

    out = path.with_suffix(".predicted")
    r = runner.invoke(app, ["predict", str(model), "--input", str(path), "--output", str(out), *args])
    assert r.exit_code == 0, r.output
    return out.read_text(encoding="utf-8").splitlines()


def _shards(prefix: Path, ext: str) -> list[str]:
    """The output shards concatenated in name order (= input order)."""
    lines = []
    for name in sorted(glob.glob(f"{prefix}-*.{ext}")):
        lines += Path(name).read_text(encoding="utf-8").splitlines()
    return lines


def _unkeyed(lines: list[str]) -> tuple[list[str], list[tuple[str, int]]]:
    """JSONL outputs without their ``file``/``line`` keys, as ``predict`` writes them, and the keys."""
    plain, keys = [], []
    for line in lines:
        obj = json.loads(line)
        keys.append((Path(obj.pop("file")).name, obj.pop("line")))
        plain.append(json.dumps(obj, ensure_ascii=False))
    return plain, keys


def _inputs(d: Path, first: list[str], second: list[str], suffix: str = ".txt") -> list[Path]:
    paths = [d / f"a{suffix}", d / f"b{suffix}"]
    for path, lines in zip(paths, (first, second)):
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return paths


CASES = {
    # task: (input lines of two files, predict options, output extension)
    "lm-jsonl": ("lm", lambda: (tiny_sentences(13, 7), tiny_sentences(9, 8) + [""]),
                 {"format": "jsonl", "top_k": 3}, "jsonl"),
    "ner-text-jsonl": ("ner", lambda: ([" ".join(w for w, _ in s) for s in make_sentences(13, 3)] + [""],
                                       [" ".join(w for w, _ in s) for s in make_sentences(9, 4)]), {}, "jsonl"),
    "translate-text": ("translate", lambda: ([s for s, _ in toy_corpus(13, seed=9)] + [""],
                                            [s for s, _ in toy_corpus(9, seed=10)]), {"beam": 2}, "txt"),
}
