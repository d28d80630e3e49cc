"""Model packages (wheels found by name from any folder) and what a pip user meets first (generate)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

from tests.conftest import ROOT, TINY_LM


def lstmtext(*args, cwd: Path, site: list[Path] | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    """The command line in a fresh process, from ``cwd``, with ``site`` folders on the path (as pip installs)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(p) for p in site or []] + [str(ROOT)])
    return subprocess.run([sys.executable, "-c", "from lstmtext.cli import main; main()", *map(str, args)],
                          cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def pip_install(wheel: Path, target: Path) -> None:
    r = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-index",
                        "--target", str(target), str(wheel)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr


@pytest.fixture(scope="module")
def wheel(tiny_lm: Path, tmp_path_factory) -> Path:
    from lstmtext.packages import build_wheel

    out = tmp_path_factory.mktemp("dist")
    r = build_wheel(tiny_lm, out, name="tiny-lm", version="0.3.1", licence="CC0-1.0")
    return Path(r["wheel"])


def test_wheel_is_a_valid_pip_package(wheel: Path):
    assert wheel.name == "lstmtext_model_tiny_lm-0.3.1-py3-none-any.whl"
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        info = "lstmtext_model_tiny_lm-0.3.1.dist-info"
        meta = zf.read(f"{info}/METADATA").decode()
        entry = zf.read(f"{info}/entry_points.txt").decode()
        record = zf.read(f"{info}/RECORD").decode().splitlines()
    assert "lstmtext_model_tiny_lm/bundle/config.json" in names
    assert not any(n.endswith(("trainer.json", "optimizer.h5")) for n in names)  # no training state
    assert "Name: lstmtext-model-tiny-lm" in meta and "License: CC0-1.0" in meta and "Version: 0.3.1" in meta
    assert "[lstmtext.models]\ntiny-lm = lstmtext_model_tiny_lm" in entry
    assert {line.split(",")[0] for line in record} == set(names)


def test_same_bundle_gives_the_same_wheel(tiny_lm: Path, wheel: Path, tmp_path: Path):
    from lstmtext.packages import build_wheel

    again = Path(build_wheel(tiny_lm, tmp_path, name="tiny-lm", version="0.3.1", licence="CC0-1.0")["wheel"])
    assert again.read_bytes() == wheel.read_bytes()


def test_installed_model_runs_by_name_from_any_folder(wheel: Path, tiny_lm: Path, tmp_path: Path):
    site = tmp_path / "site"
    pip_install(wheel, site)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    by_name = lstmtext("predict", "tiny-lm", "the cat", cwd=elsewhere, site=[site])
    assert by_name.returncode == 0, by_name.stderr
    by_path = lstmtext("predict", tiny_lm, "the cat", cwd=elsewhere)
    assert by_name.stdout == by_path.stdout and by_name.stdout.strip()

    listed = lstmtext("models", "--json", cwd=elsewhere, site=[site])
    assert listed.returncode == 0, listed.stderr
    row = {m["name"]: m for m in json.loads(listed.stdout)["models"]}["tiny-lm"]
    assert row["task"] == "lm" and row["licence"] == "CC0-1.0" and row["version"] == "0.3.1"
    assert row["bytes"] > 1000 and "valid_perplexity" in row["metrics"]

    # A folder of the same name in the working directory wins, and a note says so.
    shutil.copytree(tiny_lm / "model-best", elsewhere / "tiny-lm")
    local = lstmtext("predict", "tiny-lm", "the cat", cwd=elsewhere, site=[site])
    assert local.returncode == 0 and "using the bundle at ./tiny-lm" in local.stderr


def test_unknown_name_lists_installed_ones(wheel: Path, tmp_path: Path):
    site = tmp_path / "site"
    pip_install(wheel, site)
    r = lstmtext("predict", "no-such-model", "the cat", cwd=tmp_path, site=[site])
    assert r.returncode != 0 and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "installed: " in r.stderr and "tiny-lm" in r.stderr


def test_two_packages_with_one_name_are_named(wheel: Path, tmp_path: Path):
    site = tmp_path / "site"
    pip_install(wheel, site)
    # A second distribution that also calls its model tiny-lm.
    other = tmp_path / "other"
    shutil.copytree(site / "lstmtext_model_tiny_lm", other / "someone_elses_model")
    info = other / "someone_elses_model-2.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: someone-elses-model\nVersion: 2.0\n")
    (info / "entry_points.txt").write_text("[lstmtext.models]\ntiny-lm = someone_elses_model\n")
    r = lstmtext("predict", "tiny-lm", "the cat", cwd=tmp_path, site=[site, other])
    assert r.returncode != 0 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "lstmtext-model-tiny-lm 0.3.1" in r.stderr and "someone-elses-model 2.0" in r.stderr


def test_package_refuses_a_broken_bundle_and_keeps_what_is_there(tiny_lm: Path, tmp_path: Path):
    from lstmtext.errors import BundleError
    from lstmtext.packages import build_wheel

    broken = tmp_path / "broken"
    shutil.copytree(tiny_lm / "model-best", broken)
    weights = broken / "weights.h5"
    weights.write_bytes(weights.read_bytes()[:200])
    out = tmp_path / "dist"
    out.mkdir()
    existing = out / "lstmtext_model_broken-1.0.0-py3-none-any.whl"
    existing.write_bytes(b"an older build")
    with pytest.raises(BundleError, match="weights.h5"):
        build_wheel(broken, out)
    assert existing.read_bytes() == b"an older build"
    assert sorted(p.name for p in out.iterdir()) == [existing.name]

    config = json.loads((broken / "config.json").read_text())
    shutil.copy(tiny_lm / "model-best" / "weights.h5", weights)
    config["config"]["hidden_size"] = 32  # the weights were trained with 16
    (broken / "config.json").write_text(json.dumps(config))
    with pytest.raises(BundleError, match="fails validation"):
        build_wheel(broken, out)
    assert sorted(p.name for p in out.iterdir()) == [existing.name]


def test_package_command_line(tiny_lm: Path, tmp_path: Path):
    r = lstmtext("package", tiny_lm, "--output", tmp_path / "w", "--name", "bad name!", cwd=tmp_path)
    assert r.returncode != 0 and "--name" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    r = lstmtext("package", tiny_lm, "--output", tmp_path / "w", "--version", "one", cwd=tmp_path)
    assert r.returncode != 0 and "--version" in r.stderr
    r = lstmtext("package", tiny_lm, "--output", tmp_path / "w", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert [p.name for p in (tmp_path / "w").iterdir()] == ["lstmtext_model_out-1.0.0-py3-none-any.whl"]


# ---------------------------------------------------------------- generate
@pytest.fixture(scope="module")
def unk_lm(tmp_path_factory) -> Path:
    """A word LM trained on text where <unk> is the most frequent word."""
    from lstmtext.lm.api import train
    from lstmtext.tasks import TrainOptions
    from lstmtext.training.reporting import Reporter
    from tests.conftest import tiny_sentences

    d = tmp_path_factory.mktemp("unk")
    lines = [" ".join("<unk>" if i % 2 else w for i, w in enumerate(s.split())) for s in tiny_sentences(200, 5)]
    (d / "train.txt").write_text("\n".join(lines) + "\n")
    (d / "valid.txt").write_text("\n".join(lines[:20]) + "\n")
    train(TrainOptions(output=d / "out", train=[d / "train.txt"], valid=[d / "valid.txt"],
                       sets=TINY_LM + ["tokenizer=word", "vocab_size=0"], epochs=2, seed=1), Reporter())
    return d / "out"


def test_generate_never_emits_unk_unless_asked(unk_lm: Path):
    from lstmtext import bundle as bundle_io
    from lstmtext.lm.api import generate, generate_stream

    b = bundle_io.read(unk_lm)
    for temperature in (0.0, 1.0):
        text = generate(b, "the", max_words=40, temperature=temperature, seed=2)
        assert "<unk>" not in text and len(text.split()) == 40
    assert "<unk>" in generate(b, "the", max_words=40, temperature=1.0, seed=2, allow_unk=True)
    # The stream is the same text, word by word.
    chunks = list(generate_stream(b, "the", max_words=25, seed=4))
    assert "".join(chunks).strip("\n") == generate(b, "the", max_words=25, seed=4)
    assert all(c == "\n" or len(c.split()) == 1 for c in chunks)


def test_generate_streams_and_stops_cleanly_on_ctrl_c(tiny_lm: Path, tmp_path: Path):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen([sys.executable, "-c", "from lstmtext.cli import main; main()", "generate",
                             str(tiny_lm), "the", "--max-words", "1000000000", "--seed", "1"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=tmp_path,
                            # A shell that runs the suite in the background ignores SIGINT in its children.
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        first = proc.stdout.read(40)  # words arrive while it still runs
        assert proc.poll() is None and first.startswith(b"the ")
        time.sleep(0.2)
        proc.send_signal(signal.SIGINT)
        rest, stderr = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 128 + signal.SIGINT
    assert b"Traceback" not in stderr and (first + rest).endswith(b"\n")
