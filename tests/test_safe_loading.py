"""Malicious or absurd bundles are refused with a clear error before anything large is allocated.

Each test starts from a real (tiny) language-model bundle and plants one
problem in it: serialized code (a Lambda layer, an unregistered class, a
module name), paths leaving the bundle, absurd declared sizes, HDF5 tricks
(links and external storage reading other files, arrays far larger than the
file), special files, malformed JSON. The command line must answer each with
one line on stderr and a non-zero exit.
"""

from __future__ import annotations

import json
import os
import re
import resource
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest
from typer.testing import CliRunner

from lstmtext import bundle as bundle_io
from lstmtext.cli import app
from lstmtext.errors import BundleError
from tests.conftest import ROOT


@pytest.fixture
def bundle(tiny_lm: Path, tmp_path: Path) -> Path:
    """A private copy of a real bundle to tamper with."""
    dest = tmp_path / "bundle"
    shutil.copytree(tiny_lm / "model-best", dest)
    return dest


def _edit_config(bundle: Path, change) -> None:
    meta = json.loads((bundle / "config.json").read_text())
    change(meta)
    (bundle / "config.json").write_text(json.dumps(meta))


def _refused(bundle: Path, *needles: str) -> None:
    """read() raises BundleError; the CLI prints one line and exits non-zero."""
    with pytest.raises(BundleError) as info:
        bundle_io.read(bundle)
    for needle in needles:
        assert needle in str(info.value), str(info.value)
    for args in (["info", str(bundle)], ["predict", str(bundle), "the cat"]):
        r = CliRunner().invoke(app, args)
        assert r.exit_code != 0
        assert "Traceback" not in r.output
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error:"), r.stderr


def test_untouched_bundle_loads(bundle: Path):
    b = bundle_io.read(bundle, task="lm")
    assert b.task == "lm"
    r = CliRunner().invoke(app, ["predict", str(bundle), "the cat"])
    assert r.exit_code == 0, r.output


CODE = {
    "lambda_layer": lambda m: m["config"].__setitem__("layers", [
        {"module": "keras.layers", "class_name": "Lambda",
         "config": {"function": {"class_name": "__lambda__", "config": {"code": "b64:..."}}}}]),
    "unregistered_class": lambda m: m.__setitem__("model", {"class_name": "Payload", "registered_name": "evil>Payload",
                                                            "config": {}}),
    "module_name": lambda m: m["tokenizer"].__setitem__("impl", {"module": "os", "class_name": "system"}),
    "pickle_marker": lambda m: m.__setitem__("extra", [{"py/reduce": [{"py/function": "os.system"}, ["id"]]}]),
}


@pytest.mark.parametrize("case", sorted(CODE))
def test_serialized_code_is_refused(case: str, bundle: Path):
    _edit_config(bundle, CODE[case])
    _refused(bundle, "serialized object")


@pytest.mark.parametrize("key, value, needle", [
    ("vocab_size", 10 ** 9, "exceeds the limit"),
    ("hidden_size", 10 ** 7, "exceeds the limit"),
    ("num_layers", 1000, "exceeds the limit"),
    ("embedding_dim", -5, "negative"),
    ("tokenizer", "os.system", "tokenizer"),  # a module name where a choice belongs
    ("optimizer", "keras.optimizers.Evil", "optimizer"),
    ("no_such_key", 1, "unknown key"),
    ("hidden_size", "16", "hidden_size"),  # wrong type
    ("hidden_size", {"class_name": "Dense"}, "serialized object"),
    ("tokenizer_file", "../../../etc/passwd", "unsafe path"),
    ("weights_path", "/etc/passwd", "unsafe path"),
])
def test_bad_config_values_are_refused(key, value, needle, bundle: Path):
    _edit_config(bundle, lambda m: m["config"].__setitem__(key, value))
    _refused(bundle, needle)


def test_absurd_tokenizer_summary_is_refused(bundle: Path):
    _edit_config(bundle, lambda m: m["tokenizer"].__setitem__("vocab_size", 10 ** 9))
    _refused(bundle, "tokenizer.vocab_size")


def _max_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def test_huge_declared_array_is_refused_before_allocation(bundle: Path):
    """A 10^9-row embedding declared in a file of a few kilobytes (never written: fill value)."""
    (bundle / "weights.h5").unlink()
    with h5py.File(bundle / "weights.h5", "w") as f:
        f.create_dataset("embedding/embeddings", shape=(10 ** 9, 200), dtype="f4", chunks=(1024, 200))
    assert (bundle / "weights.h5").stat().st_size < 100_000
    before = _max_rss_mb()
    _refused(bundle, "declares")
    assert _max_rss_mb() - before < 200  # nothing near 800 GB was allocated


def test_sparse_array_beyond_what_the_file_stores_is_refused(bundle: Path):
    with h5py.File(bundle / "weights.h5", "a") as f:
        f.create_dataset("bomb", shape=(200_000, 1000), dtype="f4", chunks=(1000, 1000))  # 800 MB, 0 stored
    _refused(bundle, "bomb", "declares")


@pytest.mark.parametrize("kind", ["external_link", "soft_link", "external_storage", "strings"])
def test_hdf5_tricks_are_refused(kind: str, bundle: Path, tmp_path: Path):
    secret = tmp_path / "secret.txt"
    secret.write_text("password")
    with h5py.File(bundle / "weights.h5", "a") as f:
        if kind == "external_link":
            f["sneaky"] = h5py.ExternalLink(str(secret), "/")
        elif kind == "soft_link":
            f["sneaky"] = h5py.SoftLink("/embedding")
        elif kind == "external_storage":
            f.create_dataset("sneaky", shape=(8,), dtype="u1", external=[(str(secret), 0, 8)])
        else:
            f.create_dataset("sneaky", data=np.array([b"rm -rf /"], dtype=object), dtype=h5py.string_dtype())
    _refused(bundle, "sneaky")


def test_link_leaving_the_bundle_is_refused(bundle: Path, tmp_path: Path):
    outside = tmp_path / "outside"
    shutil.move(bundle / "tokenizer", outside)
    os.symlink(outside, bundle / "tokenizer")
    _refused(bundle, "outside the bundle")


def test_special_file_is_refused(bundle: Path):
    os.mkfifo(bundle / "metrics.json.fifo")  # reading a pipe would block forever
    _refused(bundle, "not a regular file")


def test_oversized_config_is_refused_unread(bundle: Path):
    with open(bundle / "config.json", "r+b") as f:
        f.truncate(bundle_io.MAX_CONFIG_BYTES + 1)  # sparse: costs no disk
    _refused(bundle, "over the limit")


HEAD = '{"format": "lstmtext-bundle", "format_version": 1, "task": "lm", '


@pytest.mark.parametrize("data, needle", [
    (b"[" * 100_000 + b"]" * 100_000, "unreadable config"),
    ((HEAD + '"config": {"lr": NaN}}').encode(), "NaN"),
    ((HEAD + '"config": {"lr": 1e999}}').encode(), "config.lr"),
    (b"\xff\xfe not utf-8", "unreadable config"),
    ((HEAD + '"config": ' + '{"a": ' * 40 + "1" + "}" * 41).encode(), "nested deeper"),
])
def test_malformed_config_json_is_refused(data: bytes, needle: str, bundle: Path):
    (bundle / "config.json").write_bytes(data)
    _refused(bundle, needle)


def test_no_unsafe_deserialization_in_the_package():
    """No pickle, eval/exec, or Keras model loading outside safe mode, anywhere in lstmtext."""
    offenders = []
    for path in (ROOT / "lstmtext").rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        for pattern in (r"^\s*import pickle|^\s*from pickle|\bpickle\.load", r"(?<![.\w])eval\(",
                        r"(?<![.\w])exec\(", r"enable_unsafe_deserialization", r"safe_mode\s*=\s*False",
                        r"allow_pickle\s*=\s*True"):
            if re.search(pattern, text, re.M):
                offenders.append(f"{path.relative_to(ROOT)}: {pattern}")
        # Calls only: a Beam ModelHandler defines a method of that name (def load_model(self)).
        for m in re.finditer(r"(?<!def )\bload_model\(([^)]*)\)", text):
            if "safe_mode=True" not in m.group(1):
                offenders.append(f"{path.relative_to(ROOT)}: load_model without safe_mode=True")
    assert not offenders, offenders


def test_shipped_bundles_pass_the_checks():
    """The strict checks accept every real bundle in models/ (all tasks), when present."""
    shipped = [p for p in sorted((ROOT / "models").glob("*")) if (p / "model-best").is_dir() or
               (p / "config.json").is_file()]
    if not shipped:
        pytest.skip("no trained bundles in models/")
    for path in shipped:
        assert bundle_io.read(path).task in bundle_io.TASKS
