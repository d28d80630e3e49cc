"""Defaults fitted to the data: auto values, vocabulary fallback, the held-out split and ``data check``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lstmtext import bundle as bundle_io
from lstmtext.config import AUTO, auto_keys, resolve
from lstmtext.errors import ConfigError, DataError
from lstmtext.lm.config import LMConfig
from lstmtext.ner.config import NERConfig
from lstmtext.tasks import TrainOptions
from lstmtext.training import auto, holdout
from lstmtext.training.reporting import Reporter
from lstmtext.translate.config import TranslateConfig
from tests.conftest import ROOT, tiny_sentences

runner = CliRunner()


class Notes(Reporter):
    """Keeps every message."""

    def __init__(self):
        self.lines: list[str] = []

    def message(self, text: str) -> None:
        self.lines.append(text)


def write(path: Path, lines: list[str], end: str = "\n") -> Path:
    path.write_bytes("".join(line + end for line in lines).encode("utf-8"))
    return path


# ---------------------------------------------------------------- vocabulary fallback
def test_a_size_the_text_cannot_support_is_lowered_with_one_warning():
    from lstmtext.tokenizers import train_tokenizer

    lines = tiny_sentences(30, 4)
    for kind in ("unigram", "bpe"):
        warnings: list[str] = []
        tok = train_tokenizer(lines, 8000, kind, warn=warnings.append)
        assert len(warnings) == 1 and f"vocab_size={tok.vocab_size}" in warnings[0], warnings
        assert tok.vocab_size < 8000
    warnings = []
    tok = train_tokenizer(["Ab Cd Ef Gh Ij Kl Mn Op Qr St Uv Wx Yz"] * 3, 10, "unigram", warn=warnings.append)
    assert tok.vocab_size > 10 and len(warnings) == 1 and "too small" in warnings[0]


def test_sentencepiece_internals_never_reach_the_user():
    from lstmtext.tokenizers.spm import clean_message

    raw = RuntimeError("INTERNAL: src/trainer_interface.cc(744) [(a) == (b)] Something went wrong.")
    assert clean_message(raw) == "Something went wrong."


def test_thirty_lines_train_a_language_model_with_no_flags(tmp_path: Path):
    from lstmtext.lm.api import train

    data = write(tmp_path / "thirty.txt", tiny_sentences(30, 5))
    notes = Notes()
    result = train(TrainOptions(output=tmp_path / "out", train=[data], epochs=1), notes)
    assert result["valid_perplexity"] > 0
    block = next(n for n in notes.lines if n.startswith("training data:"))
    assert "auto values" in block and "hidden_size" in block and "estimated time" in block
    b = bundle_io.read(tmp_path / "out")
    assert not [k for k, v in b.config.items() if v == AUTO and k != "scheme"]
    held = b.meta["data"]["holdout"]
    assert held["held_out"] == 3 and held["of"] == 30 and "splitmix64" in held["rule"]


def test_too_large_a_given_size_trains_with_the_size_the_text_supports(tmp_path: Path, corpus):
    from lstmtext.lm.api import train

    data = write(tmp_path / "thirty.txt", tiny_sentences(30, 6))
    notes = Notes()
    train(TrainOptions(output=tmp_path / "out", train=[data], valid=[corpus["valid"]], epochs=1,
                       sets=["vocab_size=8000", "hidden_size=16", "batch_size=2"]), notes)
    warnings = [n for n in notes.lines if n.startswith("warning: vocab_size 8000")]
    assert len(warnings) == 1
    b = bundle_io.read(tmp_path / "out")
    assert b.config["vocab_size"] == b.meta["tokenizer"]["vocab_size"] < 8000
    assert f"vocab_size={b.config['vocab_size']}" in warnings[0]


def test_tokenizer_command_lowers_the_size_too(tmp_path: Path):
    from lstmtext.cli import app

    data = write(tmp_path / "t.txt", tiny_sentences(30, 7))
    r = runner.invoke(app, ["tokenizer", "train", str(data), "--output", str(tmp_path / "t.model"),
                            "--vocab-size", "8000"])
    assert r.exit_code == 0, r.output
    assert "warning: vocab_size 8000" in r.stderr and "INTERNAL" not in r.output
    r = runner.invoke(app, ["tokenizer", "train", str(data), "--output", str(tmp_path / "t2.model")])
    assert r.exit_code == 0 and "vocab_size auto" in r.stderr


# ---------------------------------------------------------------- auto values
def _lm(words: int) -> dict:
    stats = auto.TextStats(lines=words // 20, words=words, types=int(words ** 0.7), types_twice=int(words ** 0.65),
                           chars=60)
    return {k: c.value for k, c in auto.lm_values(stats, LMConfig()).items()}


def _ner(sentences: int) -> dict:
    stats = auto.TaggedStats(sentences=sentences, tokens=14 * sentences, types=int((14 * sentences) ** 0.7),
                             types_twice=int((14 * sentences) ** 0.6), entities=sentences, entity_types=4,
                             longest=60)
    return {k: c.value for k, c in auto.ner_values(stats, NERConfig()).items()}


def _mt(pairs: int) -> dict:
    side = auto.TextStats(lines=pairs, words=12 * pairs, types=int((12 * pairs) ** 0.7),
                          types_twice=int((12 * pairs) ** 0.6), chars=80)
    stats = auto.ParallelStats(pairs=pairs, source=side, target=side, joint=side)
    return {k: c.value for k, c in auto.translate_values(stats, TranslateConfig()).items()}


def _never_down(rows: list[dict], key: str) -> bool:
    return all(a[key] <= b[key] for a, b in zip(rows, rows[1:]))


def _never_up(rows: list[dict], key: str) -> bool:
    return all(a[key] >= b[key] for a, b in zip(rows, rows[1:]))


def test_auto_values_move_the_right_way_as_data_grows():
    lm = [_lm(n) for n in (500, 20_000, 200_000, 1_000_000, 20_000_000)]
    for key in ("vocab_size", "hidden_size", "batch_size"):
        assert _never_down(lm, key), key
    assert _never_up(lm, "epochs")
    assert lm[0]["hidden_size"] < lm[-1]["hidden_size"] and lm[0]["vocab_size"] < lm[-1]["vocab_size"]
    # Dropout follows parameters per training token: at one width more data needs less of it, and a
    # wider network (chosen for more data) needs more again.
    assert lm[0]["hidden_size"] == lm[1]["hidden_size"] and lm[0]["dropout"] > lm[1]["dropout"]
    ner = [_ner(n) for n in (200, 1_000, 5_000, 20_000, 100_000)]
    for key in ("hidden_size", "batch_size"):
        assert _never_down(ner, key), key
    assert _never_up(ner, "dropout") and _never_up(ner, "epochs")
    assert ner[0]["epochs"] > ner[-1]["epochs"]
    mt = [_mt(n) for n in (1_000, 5_000, 30_000, 200_000, 2_000_000)]
    for key in ("vocab_size", "encoder_units", "decoder_units", "embedding_dim", "batch_size", "encoder_layers"):
        assert _never_down(mt, key), key
    assert _never_up(mt, "dropout") and _never_up(mt, "epochs")
    assert mt[0]["decoder_units"] < mt[-1]["decoder_units"]


def test_every_auto_key_has_a_rule():
    for config, rule, stats in ((LMConfig(), auto.lm_values, auto.TextStats(10, 100, 50, 20, 30)),
                                (NERConfig(), auto.ner_values, auto.TaggedStats(10, 100, 50, 20, 10, 2, 12)),
                                (TranslateConfig(), auto.translate_values,
                                 auto.ParallelStats(10, auto.TextStats(10, 100, 50, 20, 30),
                                                    auto.TextStats(10, 100, 50, 20, 30),
                                                    auto.TextStats(20, 200, 100, 40, 40)))):
        keys = auto_keys(config)
        assert keys and set(keys) <= set(rule(stats, config)), type(config).__name__
        concrete, chosen = auto.resolve(config, rule(stats, config))
        assert not auto_keys(concrete) and set(chosen) == set(keys)


def test_set_and_config_file_win_over_auto(tmp_path: Path):
    toml = tmp_path / "c.toml"
    toml.write_text("[lm]\ndropout = 0.1\n")
    config = resolve(LMConfig, toml, ["hidden_size=64", "optimizer=sgd"])
    stats = auto.TextStats(lines=100, words=2_000, types=500, types_twice=200, chars=40)
    concrete, chosen = auto.resolve(config, auto.lm_values(stats, config))
    assert (concrete.hidden_size, concrete.optimizer, concrete.dropout) == (64, "sgd", 0.1)
    assert "hidden_size" not in chosen and "optimizer" not in chosen and "dropout" not in chosen
    # Keys that follow a given one build on it.
    assert concrete.embedding_dim == 64 and concrete.lr == 1.0 and concrete.lr_schedule == "step"
    assert concrete.dropout_embedding == 0.1 == concrete.dropout_output
    tied = resolve(LMConfig, None, ["tie_weights=true", "embedding_dim=32"])
    assert auto.resolve(tied, auto.lm_values(stats, tied))[0].hidden_size == 32


def test_auto_is_a_value_only_where_the_data_can_choose():
    assert resolve(LMConfig, None, ["hidden_size=auto"]).hidden_size == AUTO
    assert resolve(LMConfig, None, ["tokenizer=auto"]).tokenizer == AUTO
    with pytest.raises(ConfigError, match="'tie_weights'"):
        resolve(LMConfig, None, ["tie_weights=auto"])
    with pytest.raises(ConfigError, match="hidden_size.*or 'auto'"):
        resolve(LMConfig, None, ["hidden_size=big"])


def test_configs_built_in_code_fill_their_auto_keys():
    from lstmtext.config import require_concrete

    config = LMConfig(hidden_size=8, embedding_dim=8)
    with pytest.raises(ConfigError, match="still 'auto'"):
        require_concrete(config)
    filled = auto.fill(config)
    require_concrete(filled)
    assert filled.hidden_size == 8 and auto.fill(filled) is filled


def test_shipped_bundles_still_load():
    for name in ("lm-ptb", "ner-conll03", "mt-multi30k-en-de"):
        path = ROOT / "models" / name
        if path.is_dir():
            b = bundle_io.read(path, check_weights=False)
            assert not [k for k, v in b.config.items() if v == AUTO and k != "scheme"]


# ---------------------------------------------------------------- held-out validation
def test_holdout_is_deterministic_disjoint_and_documented():
    for n in (10, 30, 1_000, 50_000):
        train, valid = holdout.split(n)
        assert (train, valid) == holdout.split(n)
        assert not set(train) & set(valid) and sorted(train + valid) == list(range(n))
        assert len(valid) == min(holdout.MAX_ITEMS, max(1, round(n * holdout.SHARE)))
    assert holdout.split(1_000)[1] != list(range(900, 1000))  # spread over the file, not its tail
    with pytest.raises(DataError, match="tiny.txt.*only 5 lines: too few"):
        holdout.split(5, "tiny.txt")
    with pytest.raises(DataError, match="only 1 sentence: too few"):
        holdout.split(1, "one.txt", "sentences")


def test_holdout_keeps_blank_lines_in_training():
    lines = [f"line {i}" if i % 3 else "" for i in range(60)]
    train, valid, record = holdout.take(lines, "f.txt", "lines", counts=str.strip)
    assert all(v for v in valid) and train.count("") == 20
    assert record["of"] == 40 and record["held_out"] == len(valid) == 4


def test_a_tagger_trains_without_valid(tmp_path: Path):
    from lstmtext.ner.api import train
    from tests.test_ner import make_sentences, write_conll

    data = write_conll(tmp_path / "train.conll", make_sentences(40, 1))
    sets = ["word_dim=8", "char_dim=4", "char_filters=4", "hidden_size=8", "casing_dim=2", "batch_size=8"]
    train(TrainOptions(output=tmp_path / "ner", train=[data], sets=sets, epochs=1), Notes())
    meta = bundle_io.read(tmp_path / "ner").meta
    assert meta["train_data"]["holdout"]["held_out"] == 4 and meta["train_data"]["sentences"] == 36


def test_too_small_to_hold_out_is_one_clear_error(tmp_path: Path):
    from lstmtext.cli import app

    data = write(tmp_path / "five.txt", tiny_sentences(5, 1))
    r = runner.invoke(app, ["train", "lm", "--train", str(data), "--output", str(tmp_path / "o")])
    assert r.exit_code != 0 and "Traceback" not in r.output
    assert len(r.stderr.strip().splitlines()) == 1 and "five.txt" in r.stderr and "--valid" in r.stderr
    assert not (tmp_path / "o" / "model-best").exists()


# ---------------------------------------------------------------- data check
def test_data_check_counts_crlf_duplicates_encoding_and_unknown_words(tmp_path: Path):
    from lstmtext.datacheck import check

    lines = tiny_sentences(40, 2)
    train = tmp_path / "train.txt"
    train.write_bytes(b"\xef\xbb\xbf" + "".join(f"{line}\r\n" for line in lines + lines[:5]).encode()
                      + b"caf\xe9 au lait\n" + "bell\x07 rings\n".encode())
    valid = write(tmp_path / "valid.txt", ["zebra quokka wombat"] * 10 + lines[:1])
    report = check("lm", [train], [valid])
    f = report["files"][0]
    assert f["crlf_lines"] == 45 and f["bom"] and f["invalid_utf8_lines"] == 1 and f["control_char_lines"] == 1
    assert report["train"]["duplicate_lines"] >= 5
    assert report["valid"]["unknown_words"] == 30 and report["valid"]["lines_also_in_train"] == 1
    text = "\n".join(report["warnings"])
    for needle in ("CRLF", "byte-order mark", "train.txt:46 (byte offset", "control characters", "duplicate",
                   "never occur in the training", "little training data"):
        assert needle in text, needle
    assert report["auto"]["hidden_size"]["value"] > 0


def test_data_check_reports_tag_problems_with_counts(tmp_path: Path):
    from lstmtext.datacheck import check

    good = "Anna B-PER\nlives O\nin O\nParis B-LOC\n. O\n\n"
    bad = "He O\nmet O\nSmith I-PER\n. O\n\nBob B-PER\nsays X-Y-Z\n\n"
    path = tmp_path / "t.conll"
    path.write_text(good * 3 + bad)
    report = check("ner", [path])
    assert report["entities_opened_by_i"][str(path)] == 1
    assert report["train"]["entities_per_type"] == {"LOC": 3, "PER": 4}
    text = "\n".join(report["warnings"])
    assert f"{path}:21" in text and "IOB2 (BIO) with errors" in text
    assert "1 malformed line" in text and "invalid tag" in text and f"{path}:25" in text
    assert report["valid"]["holdout"].startswith("impossible")


def test_data_check_reads_per_token_labels_as_labels_not_bad_tags(tmp_path: Path):
    """Part-of-speech tags are labels of their own: no 'invalid tag' lines, no scheme, a count per label."""
    from lstmtext.datacheck import check

    path = tmp_path / "pos.conll"
    path.write_text("Anna NNP B-PER\nlives VBZ O\n. . O\n\n" * 12)
    report = check("ner", [path], tag_column=2)
    assert not [w for w in report["warnings"] if "invalid tag" in w or "malformed" in w], report["warnings"]
    assert report["label_kind"] == "tokens" and report["labels"] == {"NNP": 12, "VBZ": 12, ".": 12}
    assert report["train"]["labels"] == 3 and report["train"]["entities"] == 0
    # The same file read at its entity column is span data as before.
    spans = check("ner", [path])
    assert spans["train"]["entities_per_type"] == {"PER": 12} and "label_kind" not in spans
    assert check("tag", [path]) == spans  # the name of `lstmtext train tag`


def test_data_check_pairs(tmp_path: Path):
    from lstmtext.datacheck import check

    tsv = write(tmp_path / "p.tsv", ["a b\tc d"] * 3 + ["one\tuno", "\t", "x\ty\tz",
                                                         "a\tb c d e f g h i"])
    report = check("translate", [tsv])
    assert report["train"]["duplicate_pairs"] == 2 and report["train"]["empty_side"] == 1
    assert report["train"]["length_ratio_over_3"] == 1
    assert any("without exactly one tab" in w and "p.tsv:6" in w for w in report["warnings"])


def test_data_check_cli_json_without_tensorflow(tmp_path: Path):
    data = write(tmp_path / "d.txt", tiny_sentences(30, 3))
    code = ("import sys, json, io, contextlib\n"
            f"sys.argv=['lstmtext','data','check','lm',{str(data)!r},'--json']\n"
            "from lstmtext.cli import main\n"
            "buf = io.StringIO()\n"
            "with contextlib.redirect_stdout(buf):\n"
            "    try:\n        main()\n    except SystemExit as e:\n        assert not e.code, e.code\n"
            "report = json.loads(buf.getvalue())\n"
            "assert report['task'] == 'lm' and report['valid']['holdout'] == 3, report\n"
            "assert not {'tensorflow', 'keras', 'jax'} & set(sys.modules), 'imported a backend'\n"
            "print('OK')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().endswith("OK")


def test_data_check_errors_are_one_line(tmp_path: Path):
    from lstmtext.cli import app

    r = runner.invoke(app, ["data", "check", "lm", str(tmp_path / "missing.txt")])
    assert r.exit_code != 0 and "missing.txt" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    r = runner.invoke(app, ["data", "check", "speech", str(tmp_path)])
    assert r.exit_code != 0 and "unknown task" in r.stderr


def test_lm_tokenizer_follows_the_text():
    """Text that writes its rare words as <unk> (PTB) gets a word vocabulary of every word; other text pieces."""
    from lstmtext.lm.config import LMConfig

    closed = auto.TextStats.from_lines(["the <unk> said N shares", "a <unk> rose", "the shares fell"] * 10)
    assert closed.closed_vocabulary
    values = auto.lm_values(closed, LMConfig())
    assert values["tokenizer"].value == "word"
    assert values["vocab_size"].value == closed.types - 1 + auto.SPECIALS
    open_text = auto.TextStats.from_lines(["The cat sat on the mat.", "A dog ran."] * 10)
    assert not open_text.closed_vocabulary
    assert auto.lm_values(open_text, LMConfig())["tokenizer"].value == "unigram"
    # A given tokenizer wins, and the vocabulary size follows it.
    given = auto.lm_values(closed, LMConfig(tokenizer="unigram"))
    assert given["vocab_size"].value != values["vocab_size"].value


def test_a_budget_narrows_only_auto_widths_until_enough_epochs_fit():
    from lstmtext.lm.config import LMConfig

    stats = auto.TextStats.from_lines([f"w{i % 500} w{i % 37} w{i % 11}" for i in range(20_000)])
    config, chosen = auto.resolve(LMConfig(), auto.lm_values(stats, LMConfig()))
    per_epoch = lambda c: c.hidden_size ** 2 / 1000  # seconds; a stand-in for the FLOP estimate
    need = min(auto.BUDGET_EPOCHS["lm"], config.epochs)
    wide = config.hidden_size
    # Enough time: nothing changes.
    same, same_chosen = auto.fit_budget("lm", config, chosen, per_epoch, per_epoch(config) * need * 1.01)
    assert same.hidden_size == wide and same_chosen == chosen
    # A quarter of that time: the widths shrink together until the epochs fit, and say why.
    budget = per_epoch(config) * need / 4
    small, small_chosen = auto.fit_budget("lm", config, chosen, per_epoch, budget)
    assert small.hidden_size == small.embedding_dim < wide
    assert per_epoch(small) * need <= budget
    assert "--budget" in small_chosen["hidden_size"].reason and small_chosen["hidden_size"].value == small.hidden_size
    # A given width is never changed.
    given = LMConfig(hidden_size=wide, embedding_dim=wide)
    config2, chosen2 = auto.resolve(given, auto.lm_values(stats, given))
    assert auto.fit_budget("lm", config2, chosen2, per_epoch, budget)[0].hidden_size == wide
    # No budget, no change; an impossible budget stops at the smallest width.
    assert auto.fit_budget("lm", config, chosen, per_epoch, None)[0].hidden_size == wide
    assert auto.fit_budget("lm", config, chosen, per_epoch, 1e-9)[0].hidden_size == auto.MIN_WIDTH
