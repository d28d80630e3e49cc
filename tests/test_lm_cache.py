"""The continuous cache for LM evaluation: block-wise scoring equals the formula, and the CLI's options."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from lstmtext import bundle as bundle_io
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
