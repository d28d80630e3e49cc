"""Training survives interruption, kill -9, NaN loss, full disks and a second training at once.

Real signals go to real training processes (the command line, in a
subprocess); the in-process tests use the tiny language model and a tiny
fake task. See docs/reliability.md for the guarantees these tests check.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from lstmtext import bundle as bundle_io
from lstmtext.errors import TrainingError, UsageError
from lstmtext.tasks import TrainOptions
from lstmtext.training import loop
from lstmtext.training.reporting import Reporter
from lstmtext.training.signals import GracefulInterrupt, TrainingInterrupted
from tests.conftest import ROOT, TINY_LM, tiny_sentences

# dropout exercises the seed generators, 2 layers the carried states, plateau
# the learning-rate state: everything an exact resume must restore.
SETS = TINY_LM + ["tokenizer=word", "vocab_size=0", "num_layers=2", "dropout=0.2", "dropout_output=0.2",
                  "lr_schedule=plateau"]
EPOCHS, SEED = 2, 7

# Runs the real command line; pauses at a chosen point (after writing a marker
# file) so the test can deliver a signal or SIGKILL exactly there.
CHILD = r"""
import os, sys, time
from pathlib import Path
sys.path.insert(0, sys.argv[1])
marker, pause = Path(sys.argv[2]), sys.argv[3]
from lstmtext.cli import console
step_orig = console.RichReporter.step
def step(self, step, loss, tokens):
    step_orig(self, step, loss, tokens)
    if pause == "step" and self.epoch == 1 and step >= 5:
        marker.write_text(str(step))
        time.sleep(0.3)
console.RichReporter.step = step
if pause == "save":
    from lstmtext.lm import api
    write_orig = api.LMTrainTask.write_bundle
    def write_bundle(self, directory, metrics, history):
        write_orig(self, directory, metrics, history)  # weights are on disk, config.json too
        if metrics.get("epoch") == 2:
            marker.write_text("saving")
            time.sleep(120)
    api.LMTrainTask.write_bundle = write_bundle
from lstmtext.cli import main
sys.argv = ["lstmtext"] + sys.argv[4:]
main()
"""


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> dict[str, Path]:
    """Smaller than the shared corpus: about 25 steps per epoch keeps the many processes quick."""
    d = tmp_path_factory.mktemp("small")
    (d / "train.txt").write_text("\n".join(tiny_sentences(150, 11)) + "\n", encoding="utf-8")
    (d / "valid.txt").write_text("\n".join(tiny_sentences(20, 12)) + "\n", encoding="utf-8")
    return {"train": d / "train.txt", "valid": d / "valid.txt"}


def _train_args(corpus, out: Path) -> list[str]:
    sets = [a for s in SETS for a in ("--set", s)]
    return ["train", "lm", "--train", str(corpus["train"]), "--valid", str(corpus["valid"]),
            "--output", str(out), "--epochs", str(EPOCHS), "--seed", str(SEED), *sets]


def _start(tmp_path: Path, pause: str, args: list[str]) -> tuple[subprocess.Popen, Path]:
    script, marker = tmp_path / "child.py", tmp_path / "marker"
    script.write_text(CHILD)
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    proc = subprocess.Popen([sys.executable, str(script), str(ROOT), str(marker), pause, *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    return proc, marker


def _wait_for(marker: Path, proc: subprocess.Popen, timeout: float = 150) -> None:
    end = time.time() + timeout
    while not marker.exists():
        if proc.poll() is not None:
            raise AssertionError("child ended early:\n" + proc.stderr.read())
        if time.time() > end:
            proc.kill()
            raise AssertionError("child never reached the pause point")
        time.sleep(0.05)


def _train(corpus, out: Path, resume: bool = False, epochs: int = EPOCHS) -> dict:
    from lstmtext.lm.api import train

    return train(TrainOptions(output=out, train=[corpus["train"]], valid=[corpus["valid"]], sets=SETS,
                              epochs=epochs, seed=SEED, resume=resume), Reporter())


def _history(out: Path) -> list[tuple[float, float, float]]:
    hist = json.loads((out / "model-last" / "history.json").read_text())
    return [(h["lr"], h["train_loss"], h["valid_perplexity"]) for h in hist]


def _loads(bundle: Path) -> None:
    """The bundle loads and predicts."""
    from lstmtext.lm.api import predict_records

    b = bundle_io.read(bundle, task="lm")
    assert list(predict_records(b, ["the cat"], top_k=2))[0]["next"]


@pytest.fixture(scope="module")
def reference(corpus, tmp_path_factory) -> Path:
    """An uninterrupted training with SEED."""
    out = tmp_path_factory.mktemp("ref") / "out"
    _train(corpus, out)
    return out


def test_seed_makes_training_reproducible(reference: Path, corpus, tmp_path: Path):
    from lstmtext.weights import load_arrays

    again = tmp_path / "again"
    _train(corpus, again)
    assert _history(again) == _history(reference)
    a, b = load_arrays(reference / "model-last" / "weights.h5"), load_arrays(again / "model-last" / "weights.h5")
    assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_signal_mid_epoch_then_resume_equals_uninterrupted(sig, reference: Path, corpus, tmp_path: Path):
    out = tmp_path / "out"
    proc, marker = _start(tmp_path, "step", _train_args(corpus, out))
    _wait_for(marker, proc)
    proc.send_signal(sig)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 128 + sig, stderr
    assert "Traceback" not in stderr
    last_line = stderr.strip().splitlines()[-1]
    assert last_line.startswith("error:") and "--resume" in last_line and "epoch 2, step" in last_line
    assert stderr.count("training stopped at") == 1, stderr
    state = json.loads((out / "model-last" / "trainer.json").read_text())
    assert state["epoch"] == 1 and state["step"] >= 6 and state["interrupted"]
    _loads(out / "model-last")
    _loads(out / "model-best")

    _train(corpus, out, resume=True)
    # Compared as one flat array: pytest.approx refuses nested lists on some releases.
    np.testing.assert_allclose(np.asarray(_history(out)), np.asarray(_history(reference)), rtol=1e-9)


@pytest.mark.parametrize("pause", ["save", "step"])
def test_kill_9_keeps_checkpoints_loadable(pause: str, corpus, tmp_path: Path):
    out = tmp_path / "out"
    proc, marker = _start(tmp_path, pause, _train_args(corpus, out))
    try:
        _wait_for(marker, proc)
        if pause == "save":
            # While it writes, a second training into the same output is refused.
            with pytest.raises(UsageError, match=f"pid {proc.pid}"):
                _train(corpus, out, resume=True)
    finally:
        proc.kill()
        proc.communicate()
    assert json.loads((out / "model-last" / "trainer.json").read_text())["epoch"] == 1
    _loads(out / "model-last")
    _loads(out / "model-best")
    # The dead process' lock is stale: resuming takes it over and finishes.
    _train(corpus, out, resume=True)
    assert len(_history(out)) == EPOCHS
    assert not (out / ".lock").exists()


def test_kill_between_the_two_renames_of_a_save_is_recovered(reference: Path, tmp_path: Path):
    """replace_directory moves the old bundle aside, then renames the new one in; a kill between leaves neither."""
    out = tmp_path / "out"
    shutil.copytree(reference, out)
    os.replace(out / "model-last", out / ".model-last.old-99999")
    (out / ".model-last.tmp-abc").mkdir()  # the half-written new one
    loop.check_output(out, resume=True, overwrite=False)  # restores model-last
    _loads(out / "model-last")
    os.replace(out / "model-best", out / ".model-best.old-99999")
    _loads(out)  # reading a training output restores model-best too


# ------------------------------------------------------------- a fake task
class Tiny:
    """A 1-weight regression task whose batch ``nan_at`` has a NaN target."""

    monitor, monitor_mode = "valid_loss", "min"

    def __init__(self, nan_at: tuple[int, int] | None = None, on_step=None):
        import keras

        keras.utils.set_random_seed(0)
        inp = keras.Input((2,))
        self.model = keras.Model(inp, keras.layers.Dense(1, name="dense")(keras.layers.Dropout(0.5, seed=1)(inp)))
        self.model.compile(optimizer=keras.optimizers.Adam(0.01), loss="mse")
        self.nan_at, self.on_step = nan_at, on_step

    def steps_per_epoch(self):
        return 10

    def on_epoch_begin(self, epoch):
        self.order = np.random.permutation(10)  # shuffling from the global generator

    def train_batches(self, epoch):
        for step, i in enumerate(self.order):
            x = np.full((4, 2), float(i), np.float32)
            y = np.full((4, 1), 2.0 * i, np.float32)
            if self.nan_at == (epoch, step):
                y[0, 0] = np.nan
            if self.on_step:
                self.on_step(epoch, step)
            yield loop.Batch(x, y, 4)

    def validate(self):
        return {"valid_loss": float(self.model.evaluate(np.ones((2, 2)), np.full((2, 1), 2.0), verbose=0))}

    def write_bundle(self, directory, metrics, history):
        from lstmtext.weights import save_model_weights

        bundle_io.write_config(directory, "lm", {"hidden_size": 1})
        save_model_weights(self.model, directory / "weights.h5")
        bundle_io.write_json(directory, "history.json", history)


def _fit(task, out, epochs=3, resume=False):
    return loop.fit(task, out, loop.LoopConfig(epochs=epochs, lr=0.01), Reporter(), resume=resume)


def test_nan_loss_stops_naming_the_step_and_keeps_the_last_good_checkpoint(tmp_path: Path):
    with pytest.raises(TrainingError, match=r"loss became nan at epoch 2, step 4"):
        _fit(Tiny(nan_at=(1, 3)), tmp_path)
    assert json.loads((tmp_path / "model-last" / "trainer.json").read_text())["epoch"] == 1
    bundle_io.read(tmp_path / "model-last")


def test_interrupt_of_fake_task_resumes_exactly_with_shuffled_data(tmp_path: Path):
    full = tmp_path / "full"
    _fit(Tiny(), full)

    def interrupt(epoch, step):
        if (epoch, step) == (1, 4):
            os.kill(os.getpid(), signal.SIGINT)  # handled by fit: finish the step, save, stop

    out = tmp_path / "part"
    with pytest.raises(TrainingInterrupted) as info:
        _fit(Tiny(on_step=interrupt), out)
    assert info.value.exit_code == 130 and "epoch 2, step 5" in str(info.value)
    _fit(Tiny(), out, resume=True)
    a = json.loads((full / "model-last" / "history.json").read_text())
    b = json.loads((out / "model-last" / "history.json").read_text())
    assert [(h["train_loss"], h["valid_loss"]) for h in a] == [(h["train_loss"], h["valid_loss"]) for h in b]


def test_second_signal_gives_up_at_once():
    before = signal.getsignal(signal.SIGTERM)
    with GracefulInterrupt() as guard:
        os.kill(os.getpid(), signal.SIGTERM)
        assert guard.requested and guard.name == "SIGTERM"
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(1)
    assert signal.getsignal(signal.SIGTERM) == before


@pytest.fixture
def file_size_limit():
    """Make every write beyond ``n`` bytes fail with EFBIG, as on a full disk."""
    old_limit = resource.getrlimit(resource.RLIMIT_FSIZE)
    old_handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # else the kernel kills us

    def set_limit(n: int) -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (n, old_limit[1]))

    yield set_limit
    resource.setrlimit(resource.RLIMIT_FSIZE, old_limit)
    signal.signal(signal.SIGXFSZ, old_handler)


def test_write_failure_while_saving_is_a_clear_error_and_keeps_earlier_files(
        reference: Path, corpus, tmp_path: Path, file_size_limit):
    from typer.testing import CliRunner

    from lstmtext.cli import app

    out = tmp_path / "out"
    shutil.copytree(reference, out)
    state = json.loads((out / "model-last" / "trainer.json").read_text())
    state["epoch"] = EPOCHS - 1  # train one more epoch, then fail to save it
    state["finished"] = False
    (out / "model-last" / "trainer.json").write_text(json.dumps(state))
    before = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    file_size_limit(8_000)
    r = CliRunner().invoke(app, _train_args(corpus, out)[:-2 * len(SETS)] + ["--resume"])
    file_size_limit(resource.RLIM_INFINITY)
    assert r.exit_code == 1, r.output
    assert "Traceback" not in r.output
    line = r.stderr.strip().splitlines()[-1]
    assert line.startswith("error:") and "could not write" in line and "intact" in line, line
    after = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert after == before  # nothing half-written left behind, nothing earlier damaged
    _loads(out / "model-last")


# ------------------------------------------- the other tasks resume exactly too
class _StopAt(Reporter):
    """Sends this process SIGINT during step ``step`` of epoch ``epoch`` (0-based)."""

    def __init__(self, at: tuple[int, int] | None):
        self.at = at

    def epoch_begin(self, epoch, steps, lr):
        self.epoch = epoch

    def step(self, step, loss, tokens):
        if (self.epoch, step) == self.at:
            os.kill(os.getpid(), signal.SIGINT)


def _interrupt_and_resume(train, options, keys: tuple[str, ...]) -> None:
    """An interrupted-then-resumed training ends with the history of an uninterrupted one."""
    import dataclasses

    full, part = options.output / "full", options.output / "part"
    train(dataclasses.replace(options, output=full), _StopAt(None))
    with pytest.raises(TrainingInterrupted, match="epoch 2, step 3"):
        train(dataclasses.replace(options, output=part), _StopAt((1, 2)))
    train(dataclasses.replace(options, output=part, resume=True), _StopAt(None))
    history = [json.loads((o / "model-last" / "history.json").read_text()) for o in (full, part)]
    assert [[h[k] for k in keys] for h in history[0]] == [[h[k] for k in keys] for h in history[1]]


@pytest.mark.slow
def test_translate_interrupt_resumes_exactly(tmp_path: Path):
    """Shuffled batches, dropout, label smoothing."""
    api = pytest.importorskip("lstmtext.translate.api")
    from tests.test_translate import TINY_MT
    from tests.toy_pair import corpus as pairs

    data = pairs(120, 3)
    (tmp_path / "train.tsv").write_text("".join(f"{s}\t{t}\n" for s, t in data[:100]))
    (tmp_path / "valid.tsv").write_text("".join(f"{s}\t{t}\n" for s, t in data[100:]))
    options = TrainOptions(output=tmp_path, train=[tmp_path / "train.tsv"], valid=[tmp_path / "valid.tsv"],
                           sets=TINY_MT + ["dropout=0.3", "label_smoothing=0.1"], epochs=2, seed=1)
    _interrupt_and_resume(api.train, options, ("train_loss", "valid_loss"))


@pytest.mark.slow
def test_ner_interrupt_resumes_exactly(tmp_path: Path):
    """Shuffled batches, singletons replaced by <unk> at random, dropout, plateau schedule."""
    api = pytest.importorskip("lstmtext.ner.api")
    import random

    rng = random.Random(0)
    names, places = ["John", "Mary", "Peter", "Anna"], ["Paris", "Berlin", "Rome", "Oslo"]

    def write(path: Path, n: int) -> None:
        sentences = []
        for _ in range(n):
            words = [(rng.choice(names), "B-PER"), ("lives", "O"), ("in", "O"), (rng.choice(places), "B-LOC")]
            sentences.append("\n".join(f"{w} {t}" for w, t in words[: rng.randint(2, 4)]))
        path.write_text("\n\n".join(sentences) + "\n")

    write(tmp_path / "train.conll", 60)
    write(tmp_path / "valid.conll", 10)
    sets = ["word_dim=8", "casing_dim=2", "char_dim=4", "char_filters=4", "hidden_size=8", "batch_size=8",
            "dropout=0.3", "eval_batch_size=16", "patience=0"]
    options = TrainOptions(output=tmp_path, train=[tmp_path / "train.conll"], valid=[tmp_path / "valid.conll"],
                           sets=sets, epochs=2, seed=1)
    _interrupt_and_resume(api.train, options, ("train_loss", "f1", "accuracy"))
