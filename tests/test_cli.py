"""Every LM command through the command line, and the error policy for bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lstmtext.cli import app
from tests.conftest import ROOT, TINY_LM

runner = CliRunner()


def run(*args: str, input: str | None = None):
    return runner.invoke(app, [str(a) for a in args], input=input)


def assert_one_line_error(result, *needles: str):
    assert result.exit_code != 0
    text = result.stderr.strip()
    assert "Traceback" not in text and "Traceback" not in result.stdout
    assert len(text.splitlines()) == 1, text
    for needle in needles:
        assert needle in text, text


def test_help_is_light_and_fast():
    code = ("import sys, time; t=time.time(); sys.argv=['lstmtext','--help']\n"
            "from lstmtext.cli import main\n"
            "try:\n    main()\nexcept SystemExit:\n    pass\n"
            "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules\n"
            "print('OK')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().endswith("OK")


def test_checkout_cli_equals_console_script():
    a = subprocess.run([sys.executable, str(ROOT / "cli.py"), "--version"], capture_output=True, text=True)
    assert a.returncode == 0 and a.stdout.startswith("lstmtext ")


def test_tokenizer_commands(corpus, tmp_path: Path):
    model = tmp_path / "tok.model"
    r = run("tokenizer", "train", corpus["train"], "--output", model, "--vocab-size", "50")
    assert r.exit_code == 0, r.output
    r = run("tokenizer", "encode", model, input="the cat sees the ball\n")
    assert r.exit_code == 0
    ids = r.stdout.strip()
    r = run("tokenizer", "decode", model, input=ids + "\n")
    assert r.stdout.strip() == "the cat sees the ball"
    r = run("tokenizer", "encode", model, "--pieces", input="the cat\n")
    assert "\u2581" in r.stdout
    assert_one_line_error(run("tokenizer", "decode", model, input="1 x 2\n"), "<stdin>:1")
    assert_one_line_error(run("tokenizer", "train", corpus["train"], "--output", model, "--type", "zzz"), "--type")


def test_train_evaluate_predict_generate_info(corpus, tmp_path: Path):
    out = tmp_path / "lm"
    sets = [a for s in TINY_LM + ["tokenizer=word", "vocab_size=0"] for a in ("--set", s)]
    r = run("train", "lm", "--train", corpus["train"], "--valid", corpus["valid"], "--output", out,
            "--epochs", "1", "--seed", "1", *sets)
    assert r.exit_code == 0, r.output
    assert (out / "model-best" / "config.json").is_file() and (out / "model-last" / "optimizer.h5").is_file()
    assert "epoch 1/1" in r.stderr

    r = run("evaluate", out, corpus["valid"], "--json")
    assert r.exit_code == 0, r.output
    result = json.loads(r.stdout)
    assert {"perplexity", "token_perplexity", "words", "tokens"} <= set(result)

    r = run("predict", out, "the cat", "--top-k", "3")
    assert r.exit_code == 0 and len(r.stdout.strip().split("\t")) == 3

    inp = tmp_path / "in.txt"
    inp.write_text("the dog\n\nmy friend likes\n")
    dest = tmp_path / "pred.jsonl"
    r = run("predict", out, "--input", inp, "--output", dest, "--format", "jsonl")
    assert r.exit_code == 0, r.output
    records = [json.loads(line) for line in dest.read_text().splitlines()]
    assert [rec["text"] for rec in records] == ["the dog", "", "my friend likes"]

    r = run("predict", out, input="the cat\n")  # stdin
    assert r.exit_code == 0 and r.stdout.strip()

    a = run("generate", out, "the", "--seed", "4", "--max-words", "6")
    b = run("generate", out, "the", "--seed", "4", "--max-words", "6")
    assert a.exit_code == 0 and a.stdout == b.stdout

    r = run("info", out, "--json")
    info = json.loads(r.stdout)
    assert info["task"] == "lm" and info["parameters"] > 0

    r = run("train", "lm", "--train", corpus["train"], "--valid", corpus["valid"], "--output", out,
            "--epochs", "2", "--resume", "--quiet")
    assert r.exit_code == 0, r.output
    assert json.loads((out / "model-last" / "trainer.json").read_text())["epoch"] == 2

    assert_one_line_error(run("predict", out, "x", "--format", "conll"), "--format")
    assert_one_line_error(run("predict", out, "x", "--top-k", "0"), "--top-k")


def test_config_command_lists_defaults():
    r = run("config", "lm")
    assert r.exit_code == 0 and 'hidden_size = "auto"' in r.stdout and "(int or auto)" in r.stdout
    assert run("config", "tag").stdout == run("config", "ner").stdout != ""


@pytest.mark.parametrize("case", ["missing", "empty", "binary", "unknown_key", "bad_type", "short"])
def test_bad_training_input(case: str, corpus, tmp_path: Path):
    train = corpus["train"]
    extra: list[str] = []
    needle = ""
    if case == "missing":
        train, needle = tmp_path / "nope.txt", "nope.txt"
    elif case == "empty":
        train = tmp_path / "empty.txt"
        train.write_text("\n\n")
        needle = "empty.txt"
    elif case == "binary":
        train = tmp_path / "latin1.txt"
        train.write_bytes("ok line\ncaf\xe9\n".encode("latin-1"))
        needle = "latin1.txt:2"
    elif case == "unknown_key":
        extra, needle = ["--set", "hiden=3"], "hiden"
    elif case == "bad_type":
        extra, needle = ["--set", "epochs=many"], "epochs"
    elif case == "short":
        train = tmp_path / "short.txt"
        train.write_text("one two\n")
        extra, needle = ["--set", "tokenizer=word"], "short.txt"
    r = run("train", "lm", "--train", train, "--valid", corpus["valid"], "--output", tmp_path / "o", *extra)
    assert_one_line_error(r, needle)


def test_bad_models(tmp_path: Path, tiny_lm: Path, corpus):
    assert_one_line_error(run("info", tmp_path / "none"), "not found")
    (tmp_path / "dir").mkdir()
    assert_one_line_error(run("predict", tmp_path / "dir", "x"), "not a model bundle")
    newer = tmp_path / "newer"
    import shutil

    shutil.copytree(tiny_lm / "model-best", newer)
    cfg = json.loads((newer / "config.json").read_text())
    cfg["format_version"] = 99
    (newer / "config.json").write_text(json.dumps(cfg))
    assert_one_line_error(run("evaluate", newer, corpus["valid"]), "newer", "upgrade")
    assert_one_line_error(run("generate", tiny_lm, "x", "--top-p", "0"), "top-p")


def test_interactive_predict_answers_each_line(tiny_lm):
    from lstmtext.cli import app

    r = runner.invoke(app, ["predict", str(tiny_lm), "--interactive", "--top-k", "2"], input="the cat\n\na bird\n")
    assert r.exit_code == 0, r.output
    answers = r.stdout.splitlines()
    assert len(answers) == 2 and all(len(a.split("\t")) == 2 for a in answers)
    assert r.stderr.count("> ") == 4  # one prompt per line read, the blank one and end of input included
    r = runner.invoke(app, ["predict", str(tiny_lm), "the cat", "--interactive"])
    assert r.exit_code != 0 and "--interactive" in r.output


def test_training_progress_bar_runs_on_a_terminal():
    from lstmtext.cli.console import RichReporter

    reporter = RichReporter()
    reporter.terminal = True  # as on a terminal: a live rich progress bar
    reporter.train_begin(1, 0)
    reporter.epoch_begin(0, 3, 0.1)
    for step in range(3):
        reporter.step(step, 1.0, 10)
    reporter.epoch_end(0, {"epoch": 1, "loss": 1.0})
    reporter.train_end()
    assert reporter.tokens == 30 and reporter.progress is None


def test_progress_lines_of_a_resumed_epoch_time_only_its_own_steps(monkeypatch):
    """Resumed at step 50 of 100: one line per tenth from there on, and an ETA from this run's steps."""
    from lstmtext.cli import console

    lines = []
    monkeypatch.setattr(console.err, "print", lambda text, *a, **k: lines.append(text))
    clock = iter(range(1000))
    monkeypatch.setattr(console.time, "perf_counter", lambda: float(next(clock)))
    reporter = console.RichReporter()
    reporter.terminal = False
    reporter.train_begin(1, 0)
    reporter.epoch_begin(0, 100, 0.1)  # clock 0
    for step in range(50, 100):  # clock 1, 2, ...: one second a step
        reporter.step(step, 1.0, 10)
    assert [line.split()[3] for line in lines] == [f"{n}/100" for n in (51, 60, 70, 80, 90, 100)]
    assert lines[0].endswith("eta 49s")  # 1 s for 1 step, 49 to go (not 1/51 s a step)


def test_training_shows_no_tensorflow_log_lines(tmp_path: Path):
    # TensorFlow logs notices at ERROR level while a tagger trains ("E0000 ... oneDNN supports
    # DT_BOOL only ..."); the command line keeps every C++ log line off the user's terminal.
    import os
    import re

    from tests.test_ner import make_sentences, write_conll

    data = write_conll(tmp_path / "train.conll", make_sentences(24, 1))
    sets = ["word_dim=8", "casing_dim=2", "char_dim=4", "char_filters=4", "hidden_size=8", "batch_size=8"]
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    r = subprocess.run([sys.executable, str(ROOT / "cli.py"), "train", "tag", "--train", str(data), "--epochs", "1",
                        "--output", str(tmp_path / "out"), "--quiet", *[a for s in sets for a in ("--set", s)]],
                       capture_output=True, text=True, env=env, cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    logged = [line for line in r.stderr.splitlines() if re.match(r"[IWEF]\d{4} ", line)]
    assert logged == [], logged
