"""``--budget`` (training planned to a wall time) and ``--init`` (starting from a bundle).

Tiny models on data written here; the timing tests use a fake task whose
steps sleep, so their plans do not depend on how busy the machine is.
"""

from __future__ import annotations

import json
import random
import time
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from lstmtext import bundle as bundle_io
from lstmtext.errors import BundleError, ConfigError, UsageError
from lstmtext.tasks import EvalOptions, TrainOptions
from lstmtext.training import loop
from lstmtext.training.budget import BudgetPlanner, format_duration, parse_duration
from lstmtext.training.reporting import Reporter
from tests.conftest import tiny_sentences

runner = CliRunner()

# Every key the auto defaults would choose is given: these tests are about
# --budget and --init, not about the defaults.
LM_SETS = ["tokenizer=word", "vocab_size=0", "embedding_dim=16", "hidden_size=16", "num_layers=1", "batch_size=4",
           "bptt=8", "jit_compile=false", "eval_batch_size=2", "optimizer=sgd", "lr=1.0", "lr_schedule=constant",
           "dropout=0.0", "dropout_embedding=0.0", "dropout_output=0.0", "patience=0"]


def _sets(sets: list[str]) -> list[str]:
    return [a for s in sets for a in ("--set", s)]


class Notes(Reporter):
    """Keeps the reporter's one-line messages."""

    def __init__(self):
        self.lines: list[str] = []

    def message(self, text: str) -> None:
        self.lines.append(text)


# ---------------------------------------------------------------- durations
@pytest.mark.parametrize("text, seconds", [("45m", 2700), ("2h", 7200), ("90s", 90), ("1h30m", 5400),
                                           ("1.5h", 5400), ("30", 30), ("1h 5m 3s", 3903)])
def test_budget_durations_parse(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "soon", "5x", "0s", "-5m", "30m1h", "1m1m", "m"])
def test_unreadable_budget_is_one_line_naming_the_option(text):
    with pytest.raises(UsageError, match=r"^--budget: ") as info:
        parse_duration(text)
    assert "\n" not in str(info.value)


def test_budget_in_train_options_is_seconds():
    from lstmtext.training.budget import seconds_left

    options = TrainOptions(output=Path("x"), budget="1h30m")
    assert options.budget == 5400 and 5390 < seconds_left(options) <= 5400  # the hook for auto model sizes
    assert seconds_left(TrainOptions(output=Path("x"))) is None
    assert format_duration(5400) == "1h30m" and format_duration(2700) == "45m" and format_duration(10) == "10s"


def test_unreadable_budget_on_the_command_line(tmp_path: Path):
    from lstmtext.cli import app

    (tmp_path / "t.txt").write_text("a b c\n")
    r = runner.invoke(app, ["train", "lm", "--train", str(tmp_path / "t.txt"), "--valid", str(tmp_path / "t.txt"),
                            "--output", str(tmp_path / "out"), "--budget", "soon"])
    assert r.exit_code == 2 and "--budget" in r.stderr and "Traceback" not in r.output
    assert len(r.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_step_schedule_follows_the_planned_epochs():
    planner = BudgetPlanner(100, time.monotonic(), max_epochs=13, reporter=Reporter())
    assert planner.step_schedule(4, 0.5) == (4, 0.5)  # no plan yet
    planner.planned = 13
    assert planner.step_schedule(4, 0.5) == (4, 0.5)  # everything fits
    planner.planned = 9
    start, decay = planner.step_schedule(4, 0.5)
    assert start == 3  # the same share of the run at the full rate
    # ... and the last planned epoch trains at the configured run's last rate
    assert decay ** (9 - start) == pytest.approx(0.5 ** (13 - 4))
    # A short plan decays at most two halvings an epoch, not the whole way down.
    planner.planned = 3
    start, decay = planner.step_schedule(4, 0.5)
    assert start == 1 and decay == pytest.approx(0.25)


@pytest.mark.parametrize("schedule", ["constant", "step", "plateau"])
def test_min_lr_floors_decay_but_never_raises_the_given_rate(schedule):
    """A fine-tune asked for a rate below min_lr trains at that rate; decay stops at the floor."""
    from lstmtext.training.schedule import epoch_learning_rate

    gentle = epoch_learning_rate(schedule, 1e-9, 5, 0.5, 0, 1e-9, True, min_lr=1e-4)
    assert gentle == pytest.approx(1e-9)
    assert epoch_learning_rate(schedule, 1.0, 30, 0.5, 0, 1e-6, True, min_lr=1e-4) == pytest.approx(
        1.0 if schedule == "constant" else 1e-4)


# ---------------------------------------------------------------- the loop, timed by a fake task
class Sleepy:
    """A 1-weight regression task whose steps take ``step_seconds`` (a function of epoch and step)."""

    monitor, monitor_mode = "valid_loss", "min"

    def __init__(self, step_seconds, steps: int = 10):
        import keras

        keras.utils.set_random_seed(0)
        inp = keras.Input((2,))
        self.model = keras.Model(inp, keras.layers.Dense(1, name="dense")(inp))
        self.model.compile(optimizer=keras.optimizers.Adam(0.01), loss="mse")
        self.step_seconds, self.steps = step_seconds, steps
        # Compiled before the clock starts, so the sleeps alone set the pace.
        self.model.train_on_batch(np.ones((4, 2), np.float32), np.full((4, 1), 2.0, np.float32))
        self.validate()

    def steps_per_epoch(self):
        return self.steps

    def on_epoch_begin(self, epoch):
        pass

    def train_batches(self, epoch):
        for step in range(self.steps):
            time.sleep(self.step_seconds(epoch, step))
            yield loop.Batch(np.ones((4, 2), np.float32), np.full((4, 1), 2.0, np.float32), 4)

    def validate(self):
        return {"valid_loss": float(self.model.evaluate(np.ones((2, 2)), np.full((2, 1), 2.0), verbose=0))}

    def write_bundle(self, directory, metrics, history):
        from lstmtext.weights import save_model_weights

        bundle_io.write_config(directory, "lm", {"hidden_size": 1})
        save_model_weights(self.model, directory / "weights.h5")
        bundle_io.write_json(directory, "metrics.json", metrics)
        bundle_io.write_json(directory, "history.json", history)


def _fit_budget(task, out: Path, budget: float, epochs: int = 100, resume: bool = False, **schedule):
    notes = Notes()
    started = time.monotonic()
    config = loop.LoopConfig(epochs=epochs, lr=0.01, budget=budget, budget_started=started, **schedule)
    result = loop.fit(task, out, config, notes, resume=resume)
    return result, notes.lines, time.monotonic() - started


def test_budget_plans_epochs_and_stops_in_time(tmp_path: Path):
    # 10 steps of 0.1 s: about 1 s an epoch plus validation and saving, so 6 s hold 4-5 epochs
    # (fewer when the machine is busy: validating and saving take longer).
    result, lines, seconds = _fit_budget(Sleepy(lambda e, s: 0.1), tmp_path, budget=6.0, epochs=13,
                                         lr_schedule="step", lr_decay_start=4)
    assert seconds <= 6.0 + 1.0, seconds  # one 0.1 s step, then validation and saving on a busy machine
    assert 2 <= result["epochs_run"] <= 5, (result, lines)
    # The step decay (configured from epoch 5 of 13) follows the plan: it starts within the run.
    lrs = [h["lr"] for h in json.loads((tmp_path / "model-last" / "history.json").read_text())]
    assert lrs[0] == 0.01 and lrs[-1] < 0.01, lrs
    assert result["budget"]["stopped"] == "plan"
    plan = [x for x in lines if "/epoch measured over the first" in x]
    assert len(plan) == 1 and plan[0].startswith("budget 6s: ~") and "epochs" in plan[0], lines
    assert any("stopped after epoch" in x for x in lines), lines
    trainer = json.loads((tmp_path / "model-last" / "trainer.json").read_text())
    assert trainer["step"] == 0 and not trainer["finished"]  # --resume with a new budget trains on
    bundle_io.read(tmp_path / "model-best")


def test_budget_running_out_inside_an_epoch_stops_after_the_step_and_resumes(tmp_path: Path):
    # Epoch 1 is quick; from epoch 2 every step takes 1 s: the budget runs out inside epoch 2.
    task = Sleepy(lambda e, s: 0.02 if e == 0 else 1.0)
    result, lines, seconds = _fit_budget(task, tmp_path, budget=5.0)
    assert seconds <= 5.0 + 1.5, seconds  # the step running at the deadline ends, then model-last is saved
    assert result["budget"]["stopped"] == "deadline" and result["epochs_run"] == 1, lines
    assert any("reached at epoch 2, step" in x and "model-best is epoch 1's" in x for x in lines), lines
    trainer = json.loads((tmp_path / "model-last" / "trainer.json").read_text())
    assert trainer["epoch"] == 1 and 0 < trainer["step"] < 10
    assert json.loads((tmp_path / "model-best" / "metrics.json").read_text())["epoch"] == 1
    more, _, _ = _fit_budget(Sleepy(lambda e, s: 0.01), tmp_path, budget=30, epochs=3, resume=True)
    assert more["epochs_run"] == 3


def test_budget_out_inside_the_first_epoch_still_writes_a_model_best(tmp_path: Path):
    # The probe's 20 steps are quick (the plan says the epoch fits), then the steps slow down.
    task = Sleepy(lambda e, s: 0.01 if s < 22 else 0.6, steps=30)
    result, lines, _ = _fit_budget(task, tmp_path, budget=4.0)
    assert result["budget"]["stopped"] == "deadline" and result["epochs_run"] == 0, lines
    best = json.loads((tmp_path / "model-best" / "metrics.json").read_text())
    assert best["interrupted"] and 22 < best["step"] < 30 and "valid_loss" in best
    assert any("the partly trained model, validated, is model-best" in x for x in lines), lines


def test_slow_compiling_steps_do_not_make_a_budget_too_short(monkeypatch):
    """A step that meets a new shape compiles (seconds); the plan reads the typical step, not those."""
    from lstmtext.training import budget

    clock = [0.0]
    monkeypatch.setattr(budget.time, "monotonic", lambda: clock[0])
    notes = Notes()
    planner = BudgetPlanner(30.0, started=0.0, max_epochs=5, reporter=notes)
    planner.epoch_begin(0, steps=100, skip=0)
    # The first step compiles (5 s), two more meet new shapes (3 s each), then 0.05 s a step.
    # Their mean (0.32 s) would put the epoch's end at ~37 s, past the budget.
    for seconds in [5.0, 3.0, 3.0] + [0.05] * 20:
        clock[0] += seconds
        assert planner.step_done() is None
    assert planner.planned is not None and planner.planned >= 1, notes.lines
    plan = [x for x in notes.lines if "/epoch measured over the first" in x]
    assert plan and plan[0].startswith("budget 30s: ~5s/epoch"), notes.lines
    # Steps that are all slow still make the budget too short, judged at the fastest of them.
    planner = BudgetPlanner(30.0, started=0.0, max_epochs=5, reporter=Notes())
    clock[0] = 0.0
    planner.epoch_begin(0, steps=100, skip=0)
    with pytest.raises(UsageError, match="shorter than one epoch"):
        for _ in range(30):
            clock[0] += 1.0
            planner.step_done()


def test_budget_shorter_than_one_epoch_is_one_line_and_writes_nothing(tmp_path: Path):
    with pytest.raises(UsageError) as info:
        _fit_budget(Sleepy(lambda e, s: 0.1, steps=40), tmp_path, budget=1.0)
    text = str(info.value)
    assert text.startswith("budget 1s is shorter than one epoch (~4") and "raise --budget" in text, text
    assert "\n" not in text
    assert not (tmp_path / "model-best").exists() and not (tmp_path / "model-last").exists()


# ---------------------------------------------------------------- a real language model
@pytest.fixture(scope="module")
def lm_data(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("budget-lm")
    (d / "train.txt").write_text("\n".join(tiny_sentences(300, 21)) + "\n", encoding="utf-8")
    (d / "valid.txt").write_text("\n".join(tiny_sentences(40, 22)) + "\n", encoding="utf-8")
    return {"train": d / "train.txt", "valid": d / "valid.txt", "dir": d}


@pytest.fixture(scope="module")
def lm_bundle(lm_data) -> Path:
    """A 1 x 16 word-level LM trained for 2 epochs."""
    from lstmtext.lm.api import train

    out = lm_data["dir"] / "lm"
    train(TrainOptions(output=out, train=[lm_data["train"]], valid=[lm_data["valid"]], sets=LM_SETS,
                       epochs=2, seed=3), Reporter())
    return out


def _lm_args(data, out: Path, *extra: str) -> list[str]:
    return ["train", "lm", "--train", str(data["train"]), "--valid", str(data["valid"]), "--output", str(out),
            "--seed", "3", *_sets(LM_SETS), *extra]


def test_small_budget_on_a_language_model_stops_on_time_with_a_loadable_model(lm_data, tmp_path: Path):
    import keras  # noqa: F401 -- imported before the clock starts: the budget is for training here

    from lstmtext.cli import app

    out = tmp_path / "out"
    t0 = time.monotonic()
    r = runner.invoke(app, _lm_args(lm_data, out, "--epochs", "1000", "--budget", "10s"))
    seconds = time.monotonic() - t0
    assert r.exit_code == 0, r.output
    assert seconds < 10 + 2.5, (seconds, r.stderr)  # one step and a save at most past the budget
    assert "budget 10s: ~" in r.stderr and ("stopped after epoch" in r.stderr or "reached at epoch" in r.stderr)
    history = json.loads((out / "model-best" / "history.json").read_text())
    assert 1 <= len(history) < 1000
    p = runner.invoke(app, ["predict", str(out), "the cat", "--top-k", "2"])
    assert p.exit_code == 0 and p.stdout.strip(), p.output


def test_budget_too_short_for_a_language_model_keeps_the_model_on_disk(lm_data, lm_bundle, tmp_path: Path):
    import shutil

    from lstmtext.cli import app

    out = tmp_path / "out"
    shutil.copytree(lm_bundle, out)
    before = (out / "model-best" / "weights.h5").read_bytes()
    r = runner.invoke(app, _lm_args(lm_data, out, "--epochs", "3", "--budget", "0.5s", "--overwrite"))
    assert r.exit_code == 2, r.output
    errors = [x for x in r.stderr.splitlines() if x.startswith("error:")]  # after the data summary block
    assert len(errors) == 1 and r.stderr.strip().endswith(errors[0]) and "Traceback" not in r.output, r.stderr
    assert "budget 0.5s is shorter than one epoch (~" in errors[0] and "raise --budget" in errors[0], errors
    assert (out / "model-best" / "weights.h5").read_bytes() == before
    bundle_io.read(out / "model-best", "lm")


# ---------------------------------------------------------------- --init: language model and translator
def test_lm_init_continues_from_the_bundle_and_keeps_its_tokenizer(lm_data, lm_bundle, tmp_path: Path):
    from lstmtext.lm.api import train

    out = tmp_path / "init"
    train(TrainOptions(output=out, train=[lm_data["train"]], valid=[lm_data["valid"]], sets=LM_SETS, epochs=1,
                       seed=3, init=lm_bundle), Reporter())
    scratch = json.loads((lm_bundle / "model-last" / "history.json").read_text())[0]  # same settings, from zero
    tuned = json.loads((out / "model-last" / "history.json").read_text())[0]
    assert tuned["train_loss"] < scratch["train_loss"] - 0.1, (tuned, scratch)
    assert tuned["valid_perplexity"] < scratch["valid_perplexity"]
    old = lm_bundle / "model-best" / "tokenizer"
    new = out / "model-best" / "tokenizer"
    assert {p.name: p.read_bytes() for p in old.iterdir()} == {p.name: p.read_bytes() for p in new.iterdir()}
    meta = bundle_io.read(out / "model-best", "lm").meta
    assert meta["data"]["init"]["bundle"] == str(lm_bundle / "model-best")


def test_lm_init_refuses_another_size_and_data_it_cannot_represent(lm_data, lm_bundle, tmp_path: Path):
    from lstmtext.lm.api import train

    with pytest.raises(ConfigError, match="hidden_size"):
        train(TrainOptions(output=tmp_path / "a", train=[lm_data["train"]], valid=[lm_data["valid"]],
                           sets=LM_SETS + ["hidden_size=32"], epochs=1, init=lm_bundle), Reporter())
    alien = tmp_path / "alien.txt"
    alien.write_text("\n".join("zorp quux blat frob" for _ in range(200)) + "\n")
    with pytest.raises(BundleError, match=r"--init .*model-best: its vocabulary cannot represent"):
        train(TrainOptions(output=tmp_path / "b", train=[alien], valid=[alien], sets=LM_SETS, epochs=1,
                           init=lm_bundle), Reporter())
    assert not (tmp_path / "b" / "model-best").exists()


def test_init_with_a_bundle_of_another_task_is_one_line_naming_it(lm_bundle, tmp_path: Path):
    from lstmtext.cli import app

    data = tmp_path / "t.conll"
    data.write_text("Paris B-LOC\nis O\nnice O\n\n")
    r = runner.invoke(app, ["train", "ner", "--train", str(data), "--valid", str(data), "--output",
                            str(tmp_path / "out"), "--init", str(lm_bundle)])
    assert r.exit_code != 0 and "Traceback" not in r.output
    line = r.stderr.strip()
    assert len(line.splitlines()) == 1 and str(lm_bundle) in line and "'lm' model" in line, line
    r = runner.invoke(app, ["train", "lm", "--train", str(data), "--valid", str(data), "--output",
                            str(tmp_path / "out2"), "--init", str(lm_bundle), "--resume"])
    assert r.exit_code != 0 and "--init and --resume" in r.stderr


MT_SETS = ["tokenizer=word", "vocab_size=100", "embedding_dim=16", "encoder_units=16", "encoder_layers=1",
           "decoder_units=32", "decoder_layers=1", "batch_size=16", "dropout=0.0", "label_smoothing=0.0",
           "optimizer=adam", "lr=0.01", "lr_schedule=constant", "patience=0", "early_stopping=loss",
           "decode_batch_size=16", "jit_compile=false"]


@pytest.mark.slow  # two translator trainings: most of it is compiling the training step, twice
def test_translator_init_keeps_the_tokenizers_and_sizes(tmp_path: Path):
    from lstmtext.translate.api import train
    from tests.toy_pair import corpus

    pairs = corpus(180, seed=5)
    (tmp_path / "train.tsv").write_text("".join(f"{s}\t{t}\n" for s, t in pairs[:160]), encoding="utf-8")
    (tmp_path / "valid.tsv").write_text("".join(f"{s}\t{t}\n" for s, t in pairs[160:]), encoding="utf-8")
    # The new data has words the bundle's word vocabulary lacks: they stay unknown.
    more = "".join(f"{s} today\t{t} heute\n" for s, t in pairs[:160])
    (tmp_path / "more.tsv").write_text(more, encoding="utf-8")

    def run(out, data, **kw):
        return train(TrainOptions(output=tmp_path / out, train=[tmp_path / data], valid=[tmp_path / "valid.tsv"],
                                  sets=MT_SETS, seed=1, **kw), Reporter())

    run("base", "train.tsv", epochs=2)
    run("tuned", "more.tsv", epochs=1, init=tmp_path / "base")
    base, tuned = (bundle_io.read(tmp_path / name, "translate") for name in ("base", "tuned"))
    for side in ("source", "target"):
        a, b = base.file(f"tokenizer/{side}"), tuned.file(f"tokenizer/{side}")
        assert {p.name: p.read_bytes() for p in a.iterdir()} == {p.name: p.read_bytes() for p in b.iterdir()}
    for key in ("embedding_dim", "encoder_units", "decoder_units", "vocab_size", "tokenizer"):
        assert tuned.config[key] == base.config[key]
    assert tuned.meta["data"]["init"]["bundle"] == str(base.path)
    first = json.loads((tmp_path / "base" / "model-last" / "history.json").read_text())[0]
    assert tuned.json("history.json")[0]["valid_loss"] < first["valid_loss"]


# ---------------------------------------------------------------- --init: the tagger learns a new type
NAMES = {"PER": ["Anna Berg", "John Smith", "Kofi Annan", "Maria Lopez", "Peter", "Yuki Sato", "Omar Haddad"],
         "LOC": ["Paris", "New York", "Lima", "Berlin", "Tokyo", "South Africa", "Oslo"],
         "PROD": ["iPhone", "Galaxy Note", "ThinkPad", "Kindle", "PlayStation", "Model S", "Walkman"]}
OLD_TEMPLATES = ["{PER} visited {LOC} on Monday .", "{PER} lives in {LOC} .", "Rain fell in {LOC} .",
                 "{PER} met {PER} in {LOC} .", "Officials in {LOC} thanked {PER} ."]
NEW_TEMPLATES = ["{PER} bought a {PROD} in {LOC} .", "The new {PROD} sold well .", "{PER} uses a {PROD} daily .",
                 "Shops in {LOC} ran out of {PROD} units ."]
NER_SETS = ["word_dim=16", "casing_dim=4", "char_dim=8", "char_filters=16", "hidden_size=24", "num_layers=1",
            "batch_size=10", "length_bucket=16", "eval_batch_size=64", "patience=0", "optimizer=adam", "lr=0.01",
            "lr_schedule=constant",
            "singleton_unk=0.0", "dropout=0.1", "jit_compile=false"]


def _tagged(n: int, templates: list[str], seed: int) -> list[list[tuple[str, str]]]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        sent = []
        for piece in rng.choice(templates).split():
            if piece.startswith("{"):
                etype = piece[1:-1]
                words = rng.choice(NAMES[etype]).split()
                sent += [(w, ("B-" if i == 0 else "I-") + etype) for i, w in enumerate(words)]
            else:
                sent.append((piece, "O"))
        out.append(sent)
    return out


def _conll(path: Path, sentences) -> Path:
    path.write_text("".join("".join(f"{w} {t}\n" for w, t in s) + "\n" for s in sentences), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def tagger_data(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("ner-init")
    rng = random.Random(3)
    mixed = _tagged(240, NEW_TEMPLATES, 4) + _tagged(120, OLD_TEMPLATES, 5)
    rng.shuffle(mixed)
    return {"dir": d,
            "old_train": _conll(d / "old_train.conll", _tagged(200, OLD_TEMPLATES, 1)),
            "old_valid": _conll(d / "old_valid.conll", _tagged(40, OLD_TEMPLATES, 2)),
            "new_train": _conll(d / "new_train.conll", mixed),
            "new_valid": _conll(d / "new_valid.conll",
                                _tagged(30, NEW_TEMPLATES, 6) + _tagged(20, OLD_TEMPLATES, 7)),
            "test_new": _conll(d / "test_new.conll", _tagged(60, NEW_TEMPLATES, 8)),
            "test_old": _conll(d / "test_old.conll", _tagged(60, OLD_TEMPLATES, 9))}


@pytest.fixture(scope="module")
def old_tagger(tagger_data) -> Path:
    """A tiny tagger of PER and LOC."""
    from lstmtext.ner.api import train

    out = tagger_data["dir"] / "old"
    train(TrainOptions(output=out, train=[tagger_data["old_train"]], valid=[tagger_data["old_valid"]],
                       sets=NER_SETS, epochs=4, seed=1), Reporter())
    return out


def test_tagger_init_keeps_old_weights_for_old_tags_and_adds_rows_for_new_ones(old_tagger):
    import dataclasses

    from lstmtext.ner import init as ner_init, schemes
    from lstmtext.ner.config import NERConfig
    from lstmtext.ner.features import Vocab
    from lstmtext.ner.network import build_model
    from lstmtext.ner.tagger import load_vocab
    from lstmtext.weights import load_arrays

    bundle = bundle_io.read(old_tagger, "ner")
    old = load_vocab(bundle)
    config = NERConfig(**{**bundle.config})
    new = Vocab(["<pad>", "<unk>", "kindle"], ["<pad>", "<unk>", "K", "\u00e9"],
                schemes.tag_set(["PER", "PROD"], config.tag_scheme))
    meta = {"entity_types": ["PER", "PROD"], "train_data": {"sentences": 1}}
    vocab, meta, kept = ner_init.merge_vocabulary(bundle, new, meta, [(["Kindle", "Paris"], ["S-PROD", "S-LOC"])],
                                                  Notes())
    assert vocab.tags[: len(old.tags)] == old.tags and set(vocab.tags) - set(old.tags) == {
        "B-PROD", "I-PROD", "E-PROD", "S-PROD"}
    assert meta["entity_types"] == ["LOC", "PER", "PROD"] and meta["train_data"]["init"]["new_types"] == ["PROD"]
    model = build_model(dataclasses.replace(config, epochs=1), vocab,
                        schemes.allowed(vocab.tags, config.tag_scheme))
    ner_init.load_weights(model, bundle, kept, vocab)
    before = load_arrays(bundle.file("weights.h5"))
    after = {v.path: np.asarray(v.numpy()) for v in model.weights}
    k, n = len(old.tags), len(vocab.tags)
    np.testing.assert_array_equal(after["crf/transitions"][:k, :k], before["crf/transitions"])
    np.testing.assert_array_equal(after["emissions/kernel"][:, :k], before["emissions/kernel"])
    np.testing.assert_array_equal(after["word_embedding/embeddings"][: len(old.words)],
                                  before["word_embedding/embeddings"])
    assert after["crf/transitions"].shape == (n, n) and after["emissions/bias"].shape == (n,)
    np.testing.assert_array_equal(after["bilstm_0/forward_lstm_0/lstm_cell/kernel"],
                                  before["bilstm_0/forward_lstm_0/lstm_cell/kernel"])
    # The scheme's mask covers the new tags: O -> I-PROD is forbidden, O -> B-PROD allowed.
    pairs = {tuple(p) for p in schemes.allowed(vocab.tags, "bioes")[0]}
    o, b, i = vocab.tag_index["O"], vocab.tag_index["B-PROD"], vocab.tag_index["I-PROD"]
    assert (o, b) in pairs and (o, i) not in pairs and (vocab.tag_index["B-PER"], i) not in pairs


def test_tagger_fine_tuned_on_a_new_type_learns_it_without_losing_the_old_ones(tagger_data, old_tagger):
    from lstmtext.ner.api import evaluate, train

    def f1(model, test):
        scores = evaluate(bundle_io.read(model, "ner"), EvalOptions(files=[tagger_data[test]]))["per_type"]
        return {k: v["f1"] for k, v in scores.items()}

    before = f1(old_tagger, "test_old")
    assert before["PER"] > 90 and before["LOC"] > 90, before  # a sound start
    out = tagger_data["dir"] / "tuned"
    notes = Notes()
    train(TrainOptions(output=out, train=[tagger_data["new_train"]], valid=[tagger_data["new_valid"]],
                       sets=NER_SETS, epochs=3, seed=1, init=old_tagger), notes)
    assert any("kept 2 entity types (LOC, PER), added 1 (PROD)" in x for x in notes.lines), notes.lines
    new, old = f1(out, "test_new"), f1(out, "test_old")
    assert new["PROD"] > 90, new  # learned the new type ...
    assert min(new["PER"], new["LOC"], old["PER"], old["LOC"]) > 90, (new, old)  # ... and kept the old ones
    tuned = bundle_io.read(out, "ner")
    assert tuned.meta["entity_types"] == ["LOC", "PER", "PROD"]
    assert tuned.meta["train_data"]["init"]["bundle"] == str(old_tagger / "model-best")
    old_tags = bundle_io.read(old_tagger, "ner").json("vocab.json")["tags"]
    assert tuned.json("vocab.json")["tags"][: len(old_tags)] == old_tags


def test_tagger_init_refuses_text_the_bundle_cannot_represent(tagger_data, old_tagger, tmp_path: Path):
    from lstmtext.ner.api import train

    alien = _conll(tmp_path / "alien.conll", [[("東京", "B-LOC"), ("に", "O"), ("行く", "O")]] * 20)
    with pytest.raises(BundleError, match=r"--init .*model-best: its vocabulary cannot represent .* characters"):
        train(TrainOptions(output=tmp_path / "out", train=[alien], valid=[alien], sets=NER_SETS, epochs=1,
                           init=old_tagger), Reporter())


# ---------------------------------------------------------------- --init: a per-token tagger with a feature column
POS_WORDS = {"DET": ["the", "a", "this"], "NOUN": ["dog", "cat", "house", "river"], "VERB": ["runs", "sees", "likes"],
             "ADJ": ["big", "red", "old"]}
POS_OLD = [["DET", "NOUN", "VERB", "DET", "NOUN"], ["DET", "NOUN", "VERB"]]
POS_NEW = [["DET", "ADJ", "NOUN", "VERB"], ["DET", "NOUN", "VERB", "DET", "ADJ", "NOUN"]]
SHAPE = {"DET": "d", "NOUN": "n", "VERB": "v", "ADJ": "j"}  # the feature column: a coarse tag


def _pos_file(path: Path, templates, n: int, seed: int) -> Path:
    rng = random.Random(seed)
    lines = []
    for _ in range(n):
        for label in rng.choice(templates):
            lines.append(f"{rng.choice(POS_WORDS[label])} {SHAPE[label]} {label}\n")
        lines.append("\n")
    path.write_text("".join(lines), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def pos_tagger(tmp_path_factory) -> tuple[Path, Path]:
    """A tiny per-token tagger (DET NOUN VERB) reading column 2 as a feature; and its directory."""
    from lstmtext.ner.api import train

    d = tmp_path_factory.mktemp("pos-init")
    data = _pos_file(d / "old.txt", POS_OLD, 60, 1)
    train(TrainOptions(output=d / "old", train=[data], valid=[data], sets=NER_SETS, epochs=2, seed=1,
                       extra={"feature_columns": "2"}), Reporter())
    return d / "old", d


def test_per_token_init_keeps_labels_and_feature_values_and_adds_new_ones(pos_tagger):
    from lstmtext.ner import init as ner_init
    from lstmtext.ner.api import train

    old_dir, d = pos_tagger
    data = _pos_file(d / "new.txt", POS_NEW + POS_OLD, 60, 2)
    notes = Notes()
    out = d / "tuned"
    train(TrainOptions(output=out, train=[data], valid=[data], sets=NER_SETS, epochs=1, seed=1, init=old_dir),
          notes)
    assert any("kept 3 labels (DET, NOUN, VERB), added 1 (ADJ)" in x and "1 new feature values" in x
               for x in notes.lines), notes.lines
    base, tuned = bundle_io.read(old_dir, "ner"), bundle_io.read(out, "ner")
    assert tuned.config["feature_columns"] == "2" and tuned.config["label_kind"] == "tokens"
    old_vocab, new_vocab = base.json("vocab.json"), tuned.json("vocab.json")
    assert new_vocab["tags"] == old_vocab["tags"] + ["ADJ"]
    assert new_vocab["features"][0] == old_vocab["features"][0] + ["j"]

    # Before any training step the merged model holds the bundle's rows for old labels and values.
    import dataclasses

    from lstmtext.ner.config import NERConfig
    from lstmtext.ner.features import Vocab, load_vocab
    from lstmtext.ner.labels import constraints_for
    from lstmtext.ner.network import build_model
    from lstmtext.weights import load_arrays

    old = load_vocab(base)
    config = NERConfig(**base.config)
    new = Vocab(["<pad>", "<unk>", "big"], list(old.chars), ["ADJ", "NOUN"], features=[["<pad>", "<unk>", "j", "n"]])
    vocab, _, kept = ner_init.merge_vocabulary(base, new, {"train_data": {}}, [(["big", "dog"], ["ADJ", "NOUN"])],
                                               Notes())
    model = build_model(dataclasses.replace(config, epochs=1), vocab, constraints_for(vocab, base.config))
    ner_init.load_weights(model, base, kept, vocab)
    before = load_arrays(base.file("weights.h5"))
    after = {v.path: np.asarray(v.numpy()) for v in model.weights}
    f = [p for p in after if p.endswith("feature_embedding_0/embeddings")][0]
    k = len(old.features[0])
    np.testing.assert_array_equal(after[f][:k], before[f])
    assert after[f].shape[0] == k + 1
    np.testing.assert_array_equal(after["emissions/kernel"][:, : len(old.tags)], before["emissions/kernel"])


def test_init_refuses_data_of_another_label_kind(pos_tagger, tagger_data, old_tagger, tmp_path: Path):
    from lstmtext.ner.api import train

    old_dir, d = pos_tagger
    with pytest.raises(BundleError, match=r"--init .*model-best: the bundle tags per-token labels, this data has "
                                          r"spans"):
        train(TrainOptions(output=tmp_path / "a", train=[tagger_data["old_train"]], valid=[tagger_data["old_valid"]],
                           sets=NER_SETS, epochs=1, init=old_dir), Reporter())
    pos = _pos_file(tmp_path / "pos.txt", POS_OLD, 10, 3)
    with pytest.raises(BundleError, match=r"--init .*model-best: the bundle tags spans .*, this data has "
                                          r"per-token labels"):
        train(TrainOptions(output=tmp_path / "b", train=[pos], valid=[pos], sets=NER_SETS, epochs=1,
                           init=old_tagger, extra={"tag_column": 3}), Reporter())


def test_init_refuses_a_feature_column_option_other_than_the_bundles(pos_tagger, tmp_path: Path):
    """``--feature-column`` on the command line is checked like ``--set``, not silently replaced."""
    from lstmtext.ner.api import train

    old_dir, d = pos_tagger
    data = _pos_file(tmp_path / "pos.txt", POS_OLD, 10, 3)
    # A copy of the feature column as column 3: a valid column, but not the bundle's.
    wide = tmp_path / "wide.txt"
    wide.write_text("".join(f"{w} {f} {f} {t}\n" if line.strip() else "\n"
                            for line in data.read_text().splitlines() for w, f, t in [(line.split() or ["", "", ""])]))
    with pytest.raises(ConfigError, match=r"config key 'feature_columns': is '2' in the --init bundle .*got '3'"):
        train(TrainOptions(output=tmp_path / "a", train=[wide], valid=[wide], sets=NER_SETS, epochs=1,
                           init=old_dir, extra={"feature_columns": "3"}), Reporter())
    assert not (tmp_path / "a").exists()
    # The bundle's own value is accepted.
    train(TrainOptions(output=tmp_path / "b", train=[data], valid=[data], sets=NER_SETS, epochs=1,
                       init=old_dir, extra={"feature_columns": "2"}), Reporter())
    assert (tmp_path / "b" / "model-best").is_dir()
