"""The continuous cache for LM evaluation: block-wise scoring equals the formula, and the CLI's options."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from lstmtext import bundle as bundle_io
from lstmtext.errors import UsageError
from lstmtext.lm.cache import CacheSettings, ContinuousCache, brute_force_log_probs

runner = CliRunner()


def _stream(rng: np.random.Generator, rows: int, steps: int, units: int = 6, vocab: int = 5):
    hidden = rng.normal(size=(rows, steps, units)).astype(np.float32)
    targets = rng.integers(0, vocab, size=(rows, steps))
    log_probs = np.log(rng.uniform(0.01, 0.9, size=(rows, steps)))
    return hidden, targets, log_probs


@pytest.mark.parametrize("window,block", [(4, 3), (4, 10), (50, 7), (1, 5)])
def test_blocks_equal_the_formula_position_by_position(window: int, block: int):
    rng = np.random.default_rng(window * 100 + block)
    hidden, targets, log_probs = _stream(rng, rows=3, steps=23)
    settings = CacheSettings(window=window, theta=0.7, lam=0.25)
    cache = ContinuousCache(3, settings)
    got = np.concatenate([cache.log_probs(hidden[:, t:t + block], targets[:, t:t + block],
                                          log_probs[:, t:t + block]) for t in range(0, 23, block)], axis=1)
    for r in range(3):
        want = brute_force_log_probs(hidden[r], targets[r], log_probs[r], settings)
        np.testing.assert_allclose(got[r], want, rtol=1e-5, atol=1e-6)
    assert cache.keys.shape[1] == min(window, 23)  # it keeps no more than the window


def test_first_position_is_the_model_alone_and_repeats_gain():
    # A word that just followed a state like the current one gets the cache's weight.
    h = np.ones((1, 2, 4), np.float32)
    out = ContinuousCache(1, CacheSettings(window=10, theta=1.0, lam=0.5)).log_probs(
        h, np.array([[3, 3]]), np.log(np.array([[0.2, 0.2]])))
    assert out[0, 0] == pytest.approx(np.log(0.2))
    assert out[0, 1] == pytest.approx(np.log(0.5 * 0.2 + 0.5 * 1.0))


def test_padding_is_never_cached():
    rng = np.random.default_rng(0)
    hidden, targets, log_probs = _stream(rng, rows=1, steps=8)
    mask = np.array([[1, 1, 0, 0, 1, 1, 1, 1]])
    settings = CacheSettings(window=8, theta=0.5, lam=0.3)
    got = ContinuousCache(1, settings).log_probs(hidden, targets, log_probs, mask)
    keep = mask[0] > 0
    want = brute_force_log_probs(hidden[0][keep], targets[0][keep], log_probs[0][keep], settings)
    np.testing.assert_allclose(got[0][keep], want, rtol=1e-5, atol=1e-6)


def test_bad_settings_are_refused():
    with pytest.raises(ValueError):
        ContinuousCache(1, CacheSettings(window=0))
    with pytest.raises(ValueError):
        ContinuousCache(1, CacheSettings(window=3, lam=1.5))


def _evaluate(bundle: Path, files, **extra) -> dict:
    from lstmtext.lm.api import evaluate
    from lstmtext.tasks import EvalOptions

    return evaluate(bundle_io.read(bundle), EvalOptions(files=list(files), extra=extra))


def test_evaluate_with_the_cache_scores_every_position_by_the_formula(tiny_lm: Path, corpus):
    """End to end on the NumPy runtime: the scorer's blocks give the formula's total over every stream row."""
    from lstmtext.lm import data
    from lstmtext.lm.api import StepScorer, load_config, load_step_model
    from lstmtext.lm.data import iter_streams

    settings = CacheSettings(window=6, theta=0.4, lam=0.3)
    result = _evaluate(tiny_lm, [corpus["valid"]], cache_window=6, cache_theta=0.4, cache_lambda=0.3)
    assert result["cache"] == {"window": 6, "theta": 0.4, "lam": 0.3}

    b = bundle_io.read(tiny_lm)
    model, tokenizer = load_step_model(b, "numpy", forward_only=False)
    rows = load_config(b).eval_batch_size
    want = 0.0
    for stream in iter_streams(corpus["valid"], tokenizer, "utf-8"):
        x, y, mask = data.batchify(stream.ids, rows, pad=True)
        state, hs, lps = model.initial_state(rows), [], []
        for t in range(x.shape[1]):
            log_probs, state = model.step(x[:, t], state)
            lps.append(log_probs[np.arange(rows), y[:, t]])
            hs.append(np.asarray(state[-1][0]))
        h, lp = np.stack(hs, 1), np.stack(lps, 1).astype(np.float64)
        for r in range(rows):
            keep = mask[r] > 0
            want -= brute_force_log_probs(h[r][keep], y[r][keep], lp[r][keep], settings).sum()
    assert result["nll"] == pytest.approx(want, rel=1e-6)
    # Blocks of 3 steps and of 256 give the same total.
    small = StepScorer(model, rows, settings, block=3)
    got = sum(small.total_nll(s.ids)[0] for s in iter_streams(corpus["valid"], tokenizer, "utf-8"))
    assert got == pytest.approx(want, rel=1e-6)


def test_cache_window_zero_is_the_plain_evaluation(tiny_lm: Path, corpus):
    plain = _evaluate(tiny_lm, [corpus["valid"]], runtime="numpy")
    off = _evaluate(tiny_lm, [corpus["valid"]], runtime="numpy", cache_window=0, cache_lambda=0.9)
    on = _evaluate(tiny_lm, [corpus["valid"]], cache_window=20)
    assert off["perplexity"] == plain["perplexity"] and "cache" not in off
    assert on["perplexity"] != plain["perplexity"] and on["tokens"] == plain["tokens"]


def test_the_bundles_cache_is_the_default_and_the_flag_overrides_it(tiny_lm: Path, corpus, tmp_path: Path):
    import shutil

    b = tmp_path / "lm"
    shutil.copytree(bundle_io.read(tiny_lm).path, b)
    meta = json.loads((b / "config.json").read_text())
    meta["config"]["cache_window"] = 20
    (b / "config.json").write_text(json.dumps(meta))
    assert _evaluate(b, [corpus["valid"]])["cache"]["window"] == 20
    assert _evaluate(b, [corpus["valid"]], cache_window=0)["perplexity"] == pytest.approx(
        _evaluate(tiny_lm, [corpus["valid"]])["perplexity"], rel=1e-5)


@pytest.mark.parametrize("args,words", [
    (["--cache-window", "-1"], "--cache-window"),
    (["--cache-window", "5", "--cache-lambda", "1.5"], "--cache-lambda"),
    (["--cache-window", "5", "--runtime", "keras"], "--runtime keras"),
])
def test_bad_cache_options_get_one_line(tiny_lm: Path, corpus, args, words):
    from lstmtext.cli import app

    r = runner.invoke(app, ["evaluate", str(tiny_lm), str(corpus["valid"]), *args])
    assert r.exit_code != 0 and "Traceback" not in r.output
    assert words in r.output and len(r.output.strip().splitlines()) == 1


def test_cache_options_are_for_language_models_only(tmp_path: Path):
    from lstmtext.cli import app

    ner = Path(__file__).resolve().parent.parent / "models" / "ner-conll03"
    if not (ner / "config.json").exists():
        pytest.skip("models/ner-conll03 not present")
    f = tmp_path / "x.conll"
    f.write_text("EU B-ORG\nrejects O\n\n", encoding="utf-8")
    r = runner.invoke(app, ["evaluate", str(ner), str(f), "--cache-window", "5"])
    assert r.exit_code != 0 and "language models" in r.output


def test_cli_reports_the_cache(tiny_lm: Path, corpus):
    from lstmtext.cli import app

    r = runner.invoke(app, ["evaluate", str(tiny_lm), str(corpus["valid"]), "--json", "--cache-window", "10"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["cache"] == {"window": 10, "theta": 0.3, "lam": 0.1}


def test_the_table_says_the_cache_was_used(tiny_lm: Path, corpus):
    from lstmtext.cli import app

    r = runner.invoke(app, ["evaluate", str(tiny_lm), str(corpus["valid"]), "--cache-window", "10"])
    assert r.exit_code == 0 and "continuous cache: window 10" in r.output
    plain = runner.invoke(app, ["evaluate", str(tiny_lm), str(corpus["valid"])])
    assert plain.exit_code == 0 and "cache" not in plain.output


# ---------------------------------------------------------------- tuning
def _positions(rows: int, steps: int, repeat: bool, seed: int = 0):
    from lstmtext.lm.cache import Positions

    rng = np.random.default_rng(seed)
    if repeat:  # a few words, each after its own state, again and again: the cache can only help
        words = rng.integers(0, 4, size=(rows, steps))
        basis = rng.normal(size=(4, 8)).astype(np.float32) * 3
        hidden = basis[words]
        log_probs = np.full((rows, steps), np.log(0.05))
    else:  # words never seen before, which the model already predicts well: the cache can only hurt
        words = np.arange(rows * steps).reshape(rows, steps)
        hidden = rng.normal(size=(rows, steps, 8)).astype(np.float32)
        log_probs = np.full((rows, steps), np.log(0.9))
    return Positions(hidden, words, log_probs, np.ones((rows, steps)))


def test_tune_picks_a_cache_that_helps_and_reports_it_consistently():
    from lstmtext.lm.cache import tune

    pos = _positions(4, 300, repeat=True)
    report = tune(pos, windows=(10, 100), thetas=(0.1, 1.0), lambdas=(0.1, 0.5))
    s = report["settings"]
    assert report["helps"] and s.window > 0 and s == report["best"]
    assert report["grid"][0][1:] == (s.window, s.theta, s.lam) and len(report["grid"]) == 8
    assert report["held_out"]["with"] < report["held_out"]["without"]
    # The whole text's figure is the cache's own scoring of every row.
    cache = ContinuousCache(4, s)
    lp = np.concatenate([cache.log_probs(pos.hidden[:, t:t + 256], pos.targets[:, t:t + 256],
                                         pos.log_probs[:, t:t + 256]) for t in range(0, 300, 256)], axis=1)
    assert report["whole"]["with"] == pytest.approx(float(np.exp(-lp.mean())), rel=1e-9)
    assert report["whole"]["without"] == pytest.approx(1 / 0.05)


def test_tune_stores_the_cache_off_when_it_does_not_help():
    from lstmtext.lm.cache import tune

    report = tune(_positions(4, 100, repeat=False), windows=(10,), thetas=(0.3,), lambdas=(0.1,))
    assert not report["helps"] and report["settings"].window == 0 and report["best"].window == 10


def test_positions_are_what_the_scorer_sums(tiny_lm: Path, corpus):
    from lstmtext.lm.api import StepScorer, load_step_model
    from lstmtext.lm.data import iter_streams

    model, tokenizer = load_step_model(bundle_io.read(tiny_lm), "numpy", forward_only=False)
    ids = next(iter_streams(corpus["valid"], tokenizer)).ids
    scorer = StepScorer(model, 3, block=5)
    pos = scorer.positions(ids)
    assert pos.hidden.shape[:2] == pos.targets.shape == pos.log_probs.shape == pos.mask.shape
    total, count = scorer.total_nll(ids)
    assert count == int(pos.mask.sum()) == len(ids) - 1
    assert -float((pos.log_probs * pos.mask).sum()) == pytest.approx(total, rel=1e-9)


def _copy_of(tiny_lm: Path, tmp_path: Path) -> Path:
    import shutil

    b = tmp_path / "lm"
    shutil.copytree(bundle_io.read(tiny_lm).path, b)
    return b


def _cache_keys(b: Path) -> dict:
    return {k: v for k, v in json.loads((b / "config.json").read_text())["config"].items() if k.startswith("cache")}


def test_tune_cache_writes_in_place_a_copy_or_nothing(tiny_lm: Path, corpus, tmp_path: Path):
    from lstmtext.cli import app

    b = _copy_of(tiny_lm, tmp_path)
    before = _cache_keys(b)
    r = runner.invoke(app, ["tune-cache", str(b), str(corpus["valid"]), "--dry-run", "--json"])
    assert r.exit_code == 0, r.output
    report = json.loads(r.stdout)
    assert set(report) >= {"settings", "best", "helps", "grid", "tuning", "held_out", "whole", "tokens"}
    assert _cache_keys(b) == before  # a dry run writes nothing

    r = runner.invoke(app, ["tune-cache", str(b), str(corpus["valid"]), "--output", str(tmp_path / "copy")])
    assert r.exit_code == 0, r.output
    assert _cache_keys(b) == before
    s = report["settings"]
    assert _cache_keys(tmp_path / "copy") == {"cache_window": s["window"], "cache_theta": s["theta"],
                                              "cache_lambda": s["lam"]}
    assert not (tmp_path / "copy" / "optimizer.h5").exists()

    r = runner.invoke(app, ["tune-cache", str(b), str(corpus["valid"])])
    assert r.exit_code == 0, r.output
    assert _cache_keys(b) == _cache_keys(tmp_path / "copy")
    ev = _evaluate(b, [corpus["valid"]])
    assert ev.get("cache", {}).get("window", 0) == s["window"]


def test_tune_cache_bad_input_gets_one_line(tiny_lm: Path, corpus, tmp_path: Path):
    from lstmtext.cli import app

    short = tmp_path / "short.txt"
    short.write_text("the cat sees the ball\n", encoding="utf-8")
    cases = [
        ([str(tiny_lm), str(short)], "too few"),
        ([str(tiny_lm), str(tmp_path / "missing.txt")], "missing.txt"),
        ([str(tiny_lm), str(corpus["valid"]), "--max-tokens", "10"], "--max-tokens"),
    ]
    ner = Path(__file__).resolve().parent.parent / "models" / "ner-conll03"
    if (ner / "config.json").exists():
        cases.append(([str(ner), str(corpus["valid"])], "language models"))
    for args, words in cases:
        r = runner.invoke(app, ["tune-cache", *args])
        assert r.exit_code != 0 and "Traceback" not in r.output, args
        assert words in r.output and len(r.output.strip().splitlines()) == 1, r.output


@pytest.mark.parametrize("tie", [True, False])
def test_numpy_block_scoring_equals_stepping(tie: bool):
    """``score_block`` (one product per layer and block) gives what step-by-step ``step`` gives."""
    from lstmtext.decoding.lstm_numpy import NumpyLSTMLanguageModel

    rng = np.random.default_rng(7)
    V, E, H = 13, 5, 5
    arrays = {"embedding/embeddings": rng.normal(size=(V, E)).astype(np.float32)}
    for i, d in enumerate((E, H)):
        arrays[f"lstm_{i}/lstm_cell/kernel"] = rng.normal(size=(d, 4 * H)).astype(np.float32)
        arrays[f"lstm_{i}/lstm_cell/recurrent_kernel"] = rng.normal(size=(H, 4 * H)).astype(np.float32)
        arrays[f"lstm_{i}/lstm_cell/bias"] = rng.normal(size=4 * H).astype(np.float32)
    if tie:
        arrays["embedding/output_bias"] = rng.normal(size=V).astype(np.float32)
    else:
        arrays["output/kernel"] = rng.normal(size=(H, V)).astype(np.float32)
        arrays["output/bias"] = rng.normal(size=V).astype(np.float32)
    model = NumpyLSTMLanguageModel(arrays, 2, tie)
    ids, targets = rng.integers(0, V, size=(3, 9)), rng.integers(0, V, size=(3, 9))
    state = [(rng.normal(size=(3, H)).astype(np.float32), rng.normal(size=(3, H)).astype(np.float32))] * 2
    lp, top, end = model.score_block(ids, targets, state, chunk=4)
    s = state
    for t in range(9):
        log_probs, s = model.step(ids[:, t], s)
        np.testing.assert_allclose(lp[:, t], log_probs[np.arange(3), targets[:, t]], rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(top[:, t], s[-1][0], rtol=1e-5, atol=1e-6)
    for (h1, c1), (h2, c2) in zip(end, s):
        np.testing.assert_allclose(h1, h2, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(c1, c2, rtol=1e-5, atol=1e-6)


def test_a_copy_keeps_the_weights_and_litert_parts(tiny_lm: Path, tmp_path: Path):
    from lstmtext.lm.api import write_cache_settings

    b = _copy_of(tiny_lm, tmp_path)
    (b / "lite").mkdir()
    (b / "lite" / "step.tflite").write_bytes(b"part")  # copied as it is: the weights do not change
    out = write_cache_settings(bundle_io.read(b), CacheSettings(window=7, theta=0.5, lam=0.2), tmp_path / "out")
    assert (out / "lite" / "step.tflite").read_bytes() == b"part"
    assert (out / "weights.h5").read_bytes() == (b / "weights.h5").read_bytes()
    assert _cache_keys(out) == {"cache_window": 7, "cache_theta": 0.5, "cache_lambda": 0.2}
    with pytest.raises(UsageError, match="differ"):  # never onto the model itself
        write_cache_settings(bundle_io.read(b), CacheSettings(window=7), b)
