"""Training under tf.distribute (two CPU workers on 127.0.0.1), mixed precision and GPU readiness.

The multi-worker tests start real worker processes with ``TF_CONFIG`` and
compare their per-step losses with a single-process run of the same global
batch and seed, for each task (language model, tagger, translator).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from lstmtext.errors import ConfigError, TrainingError, UsageError
from lstmtext.training import distribute
from lstmtext.training.auto import fill
from tests.conftest import ROOT, TINY_LM

# Run by each process: trains a tiny model of a task (default lm) through the
# Python API and records every step's loss (the reporter sees them; bundles
# only keep epoch means).
WORKER = r"""
import importlib, json, os, sys
from pathlib import Path
if os.environ.get("TEST_LOGICAL_CPUS"):  # several "devices" on one CPU, for --strategy mirrored
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration()] * int(os.environ["TEST_LOGICAL_CPUS"]))
from lstmtext.errors import LstmtextError
from lstmtext.tasks import TrainOptions
from lstmtext.training.reporting import Reporter

class Steps(Reporter):
    losses = []
    def step(self, step, loss, tokens):
        self.losses.append(loss)

for args in json.loads(sys.argv[1]):  # one or more trainings, one after the other
    Steps.losses = []
    train = importlib.import_module(f"lstmtext.{args.get('task', 'lm')}.api").train
    try:
        metrics = train(TrainOptions(output=Path(args["output"]), train=[Path(args["train"])],
                                     valid=[Path(args["valid"])], sets=args["sets"], epochs=args["epochs"],
                                     seed=3, resume=args.get("resume", False),
                                     extra={"strategy": args["strategy"]}), Steps())
    except LstmtextError as exc:
        print(f"ERROR {exc}", file=sys.stderr)
        sys.exit(1)
    Path(args["losses"]).write_text(json.dumps({"losses": Steps.losses, "metrics": metrics}))
"""

# Gradient clipping active (the summed gradient must be clipped, not each
# replica's) and a learning-rate decay inside the run.
# No dropout: replicas draw their own masks, so only a network without it can match one process exactly.
SETS = TINY_LM + ["tokenizer=word", "vocab_size=0", "clip_norm=0.5", "lr_decay_start=1", "optimizer=sgd",
                  "dropout=0", "dropout_embedding=0", "dropout_output=0"]


def free_ports(n: int) -> list[int]:
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    except OSError as exc:
        pytest.skip(f"cannot open local ports for the workers ({exc})")
    finally:
        for s in socks:
            s.close()


def env(**extra: str) -> dict:
    # A crash inside TensorFlow then shows the Python stack it happened under.
    e = dict(os.environ, PYTHONPATH=str(ROOT), CUDA_VISIBLE_DEVICES="", TF_CPP_MIN_LOG_LEVEL="3",
             PYTHONFAULTHANDLER="1")
    e.pop("TF_CONFIG", None)
    e.update(extra)
    return e


def start(script: Path, args: dict | list, **extra: str) -> subprocess.Popen:
    runs = args if isinstance(args, list) else [args]
    return subprocess.Popen([sys.executable, str(script), json.dumps(runs)], env=env(**extra), cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(proc: subprocess.Popen, timeout: float = 900) -> tuple[int, str]:
    try:
        _, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = proc.communicate()
        pytest.fail(f"worker did not finish in {timeout} s:\n{err[-3000:]}")
    return proc.returncode, err


def cluster(tmp: Path, n: int = 2) -> list[str]:
    """TF_CONFIG of each of ``n`` workers on free local ports."""
    hosts = [f"127.0.0.1:{p}" for p in free_ports(n)]
    return [json.dumps({"cluster": {"worker": hosts}, "task": {"type": "worker", "index": i}})
            for i in range(n)]


@pytest.fixture(scope="module")
def worker_script(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("dist") / "worker.py"
    path.write_text(WORKER)
    return path


def lm_args(d: Path, corpus, strategy: str, epochs: int = 1, name: str = "out") -> dict:
    return {"output": str(d / name), "losses": str(d / f"{name}.json"), "train": str(corpus["train"]),
            "valid": str(corpus["valid"]), "sets": SETS, "epochs": epochs, "strategy": strategy}


# Tiny tagger and translator: gradient clipping and a learning-rate decay in
# the run, no dropout (its masks depend on the rows a replica holds). 36
# sentences in batches of 8 leave a short last batch each epoch. Lengths are
# padded so that every batch has one shape (each new shape costs a trace).
TASK_SETS = {
    "ner": ["word_dim=8", "casing_dim=2", "char_dim=4", "char_filters=4", "hidden_size=8", "batch_size=8",
            "eval_batch_size=16", "patience=0", "lr=0.01", "optimizer=adam", "lr_schedule=step",
            "lr_decay_start=1", "dropout=0.0", "clip_norm=0.5", "length_bucket=16", "max_word_length=4"],
    "translate": ["tokenizer=word", "vocab_size=100", "embedding_dim=8", "encoder_units=8", "decoder_units=16",
                  "attention_units=8", "batch_size=8", "dropout=0.0", "lr=0.01", "lr_schedule=step",
                  "lr_decay_start=1", "patience=0", "early_stopping=loss", "clip_norm=0.5", "pad_multiple=16"],
}
TASK_MONITOR = {"ner": "f1", "translate": "valid_loss"}
TASKS = sorted(TASK_SETS)


@pytest.fixture(scope="module")
def task_data(tmp_path_factory) -> dict:
    """Training and validation files of the tagger and the translator."""
    from tests.test_ner import make_sentences, write_conll
    from tests.toy_pair import corpus as toy_corpus

    d = tmp_path_factory.mktemp("task_data")
    pairs = toy_corpus(52, seed=5)
    (d / "train.tsv").write_text("".join(f"{s}\t{t}\n" for s, t in pairs[:36]), encoding="utf-8")
    (d / "valid.tsv").write_text("".join(f"{s}\t{t}\n" for s, t in pairs[36:]), encoding="utf-8")
    return {"ner": {"train": write_conll(d / "train.conll", make_sentences(36, 1)),
                    "valid": write_conll(d / "valid.conll", make_sentences(20, 2))},
            "translate": {"train": d / "train.tsv", "valid": d / "valid.tsv"}}


def task_args(d: Path, task: str, data: dict, strategy: str, name: str) -> dict:
    return {**lm_args(d, data[task], strategy, epochs=2, name=name), "task": task, "sets": TASK_SETS[task]}


@pytest.fixture(scope="module")
def task_references(worker_script, task_data, tmp_path_factory) -> dict:
    """In one process with two logical CPU devices: a plain run of each task, then a mirrored tagger.

    The tagger's inputs are a dict of arrays, split into per-replica values.
    """
    d = tmp_path_factory.mktemp("task_single")
    names = [(task, "one") for task in TASKS] + [("ner", "mirrored")]
    runs = [task_args(d, task, task_data, strategy, f"{task}-{strategy}") for task, strategy in names]
    code, err = finish(start(worker_script, runs, TEST_LOGICAL_CPUS="2"))
    assert code == 0, err[-3000:]
    return {name: json.loads((d / f"{name[0]}-{name[1]}.json").read_text()) for name in names}


@pytest.fixture(scope="module")
def reference_runs(worker_script, corpus, tmp_path_factory) -> dict:
    """One process, two logical CPU devices: a plain run (no tf.distribute), then a mirrored one.

    The two devices stand in for two GPUs (one process start saved).
    """
    d = tmp_path_factory.mktemp("single")
    runs = [lm_args(d, corpus, "one", name="single"), lm_args(d, corpus, "mirrored", name="mirrored")]
    code, err = finish(start(worker_script, runs, TEST_LOGICAL_CPUS="2"))
    assert code == 0, err[-3000:]
    return {"single": json.loads((d / "single.json").read_text()),
            "mirrored": json.loads((d / "mirrored.json").read_text()),
            "mirrored_config": json.loads((d / "mirrored" / "model-last" / "config.json").read_text())}


def assert_same_curve(reference: dict, run: dict, monitor: str = "valid_perplexity", steps: int = 50) -> None:
    a, b = np.array(reference["losses"]), np.array(run["losses"])
    assert a.shape == b.shape and a.size > steps
    np.testing.assert_allclose(b, a, rtol=0, atol=1e-4)
    assert abs(run["metrics"][monitor] - reference["metrics"][monitor]) < 1e-3


# ------------------------------------------------------------ two workers
def test_two_workers_train_like_one_process(worker_script, reference_runs, corpus, tmp_path: Path):
    configs = cluster(tmp_path)
    worker_tmp = tmp_path / "worker1-tmp"  # where worker 1 may write (and must clean up)
    worker_tmp.mkdir()
    runs = [lm_args(tmp_path, corpus, "multiworker", name=f"out{i}") for i in range(2)]
    procs = [start(worker_script, args, TF_CONFIG=tf_config, TMPDIR=str(worker_tmp))
             for args, tf_config in zip(runs, configs)]
    for code, err in [finish(p) for p in procs]:
        assert code == 0, err[-3000:]
    # Exactly one bundle: the chief's. Worker 1 wrote nothing and left nothing.
    assert sorted(p.name for p in (tmp_path / "out0").iterdir()) == ["model-best", "model-last"]
    assert not (tmp_path / "out1").exists()
    assert list(worker_tmp.iterdir()) == []
    config = json.loads((tmp_path / "out0" / "model-last" / "config.json").read_text())
    assert config["training"] == {"strategy": "multiworker", "workers": 2, "replicas": 2,
                                  "mixed_precision": "off"}
    for args in runs:  # both workers report the global loss of each step
        assert_same_curve(reference_runs["single"], json.loads(Path(args["losses"]).read_text()))


def test_two_workers_train_tagger_and_translator_like_one_process(worker_script, task_data, task_references,
                                                                   tmp_path: Path):
    for task in TASKS:
        # One training per pair of worker processes, as `lstmtext train` runs them.
        configs = cluster(tmp_path)
        runs = [task_args(tmp_path, task, task_data, "multiworker", f"{task}{i}") for i in range(2)]
        procs = [start(worker_script, args, TF_CONFIG=tf_config) for args, tf_config in zip(runs, configs)]
        for code, err in [finish(p) for p in procs]:
            assert code == 0, err[-3000:]
        # Exactly one bundle, the chief's; it records the strategy.
        assert sorted(p.name for p in (tmp_path / f"{task}0").iterdir()) == ["model-best", "model-last"]
        assert not (tmp_path / f"{task}1").exists()
        config = json.loads((tmp_path / f"{task}0" / "model-last" / "config.json").read_text())
        assert config["training"] == {"strategy": "multiworker", "workers": 2, "replicas": 2,
                                      "mixed_precision": "off"}
        for i in range(2):  # both workers report the global loss of each step
            assert_same_curve(task_references[task, "one"], json.loads((tmp_path / f"{task}{i}.json").read_text()),
                              TASK_MONITOR[task], steps=8)


def test_mirrored_tagger_trains_like_one(task_references):
    # Two replicas in one process: each step's batch dict goes out as per-replica values.
    assert_same_curve(task_references["ner", "one"], task_references["ner", "mirrored"], "f1", steps=8)


def test_mirrored_over_two_devices_trains_like_one(reference_runs):
    # Each replica carries its own LSTM state over its own rows of the stream.
    assert reference_runs["mirrored_config"]["training"]["replicas"] == 2
    assert_same_curve(reference_runs["single"], reference_runs["mirrored"])


@pytest.mark.slow
def test_lost_worker_stops_the_other_and_resume_continues(worker_script, corpus, tmp_path: Path):
    configs = cluster(tmp_path)
    out = tmp_path / "out"

    def args(i: int, epochs: int, resume: bool = False) -> dict:
        # Both use the same --output (a shared filesystem): resume reads the chief's checkpoint.
        return {**lm_args(tmp_path, corpus, "multiworker", epochs, name=f"w{i}"), "output": str(out),
                "resume": resume}

    timeout = {distribute.TIMEOUT_ENV: "10"}
    chief = start(worker_script, args(0, 8), TF_CONFIG=configs[0], **timeout)
    other = start(worker_script, args(1, 8), TF_CONFIG=configs[1], **timeout)
    deadline = time.monotonic() + 180
    while not (out / "model-last" / "trainer.json").exists():
        assert chief.poll() is None and other.poll() is None, "a worker ended early"
        assert time.monotonic() < deadline, "no checkpoint written"
        time.sleep(0.2)
    os.kill(other.pid, signal.SIGKILL)
    killed_at = time.monotonic()
    code, err = finish(chief)
    other.communicate()
    assert code == 1
    assert "lost contact with another worker" in err and "--resume" in err, err[-3000:]
    assert time.monotonic() - killed_at < 60
    done = json.loads((out / "model-last" / "trainer.json").read_text())["epoch"]
    assert 1 <= done < 8

    configs = cluster(tmp_path)
    procs = [start(worker_script, args(i, done + 1, resume=True), TF_CONFIG=configs[i], **timeout)
             for i in range(2)]
    for code, err in [finish(p) for p in procs]:
        assert code == 0, err[-3000:]
    assert json.loads((out / "model-last" / "trainer.json").read_text())["epoch"] == done + 1


# ------------------------------------------------------------ in process
def test_tf_config_is_checked():
    info = distribute.parse_tf_config(json.dumps(
        {"cluster": {"chief": ["a:1"], "worker": ["b:1", "c:1"]}, "task": {"type": "worker", "index": 1}}))
    assert (info.index, info.count, info.is_chief) == (2, 3, False)
    assert distribute.parse_tf_config(json.dumps(
        {"cluster": {"worker": ["a:1", "b:1"]}, "task": {"type": "worker", "index": 0}})).is_chief
    for bad in (None, "{", '{"cluster": {"worker": ["a:1"]}, "task": {"type": "worker", "index": 3}}',
                '{"cluster": {"worker": ["a:1"]}}'):
        with pytest.raises(UsageError, match="TF_CONFIG"):
            distribute.parse_tf_config(bad)


def test_bad_flags_and_other_backends(monkeypatch):
    with pytest.raises(UsageError, match="--strategy"):
        distribute.setup("nccl")
    with pytest.raises(UsageError, match="--mixed-precision"):
        distribute.setup("one", "float8")
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(UsageError, match="TF_CONFIG"):
        distribute.setup("multiworker")
    monkeypatch.setattr(distribute, "_backend", lambda: "jax")
    with pytest.raises(UsageError, match="TensorFlow backend"):
        distribute.setup("mirrored")
    assert distribute.setup("auto", "bfloat16").name == "one"  # mixed precision is not TF-only


def test_batches_split_by_worker_and_replica(tmp_path: Path):
    x = np.arange(24).reshape(8, 3)
    two = distribute.Distribution(name="multiworker", worker=distribute.WorkerInfo(1, 2, False, "worker:1"),
                                  replicas=2)
    lx, ly = two.local_batch(x, x[:, 0])
    np.testing.assert_array_equal(lx, x[4:])
    np.testing.assert_array_equal(ly, x[4:, 0])
    assert two.per_replica_batch(8) == 4
    with pytest.raises(ConfigError, match="batch_size"):
        two.per_replica_batch(7)
    with pytest.raises(TrainingError, match="replica"):
        two.local_batch(x[:1])
    assert two.shard(list(range(5))) == [1, 3]
    one = distribute.Distribution()
    assert one.local_batch(x, None)[0] is x
    # Worker 1 writes into a temporary directory that is gone afterwards.
    with two.output(tmp_path / "out") as out:
        assert out != tmp_path / "out"
        (out / "model-last").mkdir()
    assert not out.exists() and not (tmp_path / "out").exists()
    with pytest.raises(UsageError, match="model-last"):
        with two.output(tmp_path / "out", resume=True):
            pass


def test_sum_losses_are_refused_under_replicas():
    import keras

    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    model.compile(optimizer="sgd", loss=keras.losses.MeanSquaredError(reduction="sum"))
    two = distribute.Distribution(name="mirrored", replicas=2)
    with pytest.raises(TrainingError, match="reduction='sum'"):
        two.prepare(model)
    distribute.Distribution().prepare(model)  # fine on one device


def test_losses_are_means_over_real_tokens_and_sentences():
    """Replica-safe reductions that keep the one-device values; padding rows change nothing."""
    import keras

    from lstmtext.ner.heads import softmax_loss
    from lstmtext.ner.network import _mean_over_sentences
    from lstmtext.translate.network import SmoothedCrossEntropy

    rng = np.random.default_rng(0)
    logits = rng.normal(size=(3, 4, 6)).astype("float32")
    ids = np.array([[3, 4, 2, 0], [5, 2, 0, 0], [0, 0, 0, 0]])  # the last row is padding
    smoothed = SmoothedCrossEntropy(0.1)
    assert smoothed.reduction == "sum_over_batch_size"
    logp = np.asarray(keras.ops.log_softmax(logits, axis=-1))
    per_token = -0.9 * np.take_along_axis(logp, ids[..., None], -1)[..., 0] - 0.1 * logp.mean(-1)
    np.testing.assert_allclose(float(smoothed(ids, logits)), per_token[ids != 0].mean(), rtol=1e-5)

    tags = np.where(ids > 0, ids % 3, -1)
    loss = _mean_over_sentences(softmax_loss)

    def tagger(y, pred):  # Keras' sum_over_batch_size reduction of a loss function
        return float(np.mean(loss(keras.ops.convert_to_tensor(y), pred)))

    per_sentence = np.asarray(softmax_loss(tags[:2], logits[:2]))
    np.testing.assert_allclose(tagger(tags, logits), per_sentence.mean(), rtol=1e-5)
    np.testing.assert_allclose(tagger(tags[:2], logits[:2]), per_sentence.mean(), rtol=1e-5)


@pytest.mark.parametrize("clip", [{"global_clipnorm": 1.0}, {"clipnorm": 1.0}, {"clipvalue": 0.5}])
def test_clipping_moves_after_the_all_reduce_unchanged(clip):
    import keras
    import tensorflow as tf

    # What an all-reduce hands over: a sparse embedding gradient (row 0 twice) and a dense one.
    sparse = tf.IndexedSlices(tf.constant([[3.0, 0.0], [3.0, 0.0]]), tf.constant([0, 0]), tf.constant([4, 2]))
    dense = tf.constant([1.0, 0.0])
    expected = keras.optimizers.SGD(1.0, **clip)._clip_gradients([sparse, dense])  # one device
    sgd = keras.optimizers.SGD(1.0, **clip)
    sgd._all_reduce_sum_gradients = lambda grads_and_vars: grads_and_vars
    distribute._clip_after_all_reduce(sgd)
    assert sgd._clip_gradients([dense]) == [dense]  # no clipping per replica
    got = [g for g, _ in sgd._all_reduce_sum_gradients([(sparse, "e"), (dense, "b")])]
    for g, e in zip(got, expected):
        np.testing.assert_allclose(tf.convert_to_tensor(g).numpy(), tf.convert_to_tensor(e).numpy(), rtol=1e-6)


@pytest.mark.parametrize("task", ["lm", *TASKS])
def test_strategy_flags_on_the_command_line(task, corpus, tmp_path: Path, monkeypatch):
    from tests.test_cli import assert_one_line_error, run

    monkeypatch.delenv("TF_CONFIG", raising=False)
    # The flags are checked before any file is read.
    base = ["train", task, "--train", corpus["train"], "--valid", corpus["valid"], "-o", tmp_path / "o"]
    assert_one_line_error(run(*base, "--strategy", "multiworker"), "TF_CONFIG")
    assert_one_line_error(run(*base, "--mixed-precision", "int8"), "--mixed-precision")
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("precision", ["bfloat16", "float16"])
def test_mixed_precision_lm(precision, corpus):
    import keras

    from lstmtext.lm.api import LMTrainTask
    from lstmtext.lm.config import LMConfig
    from lstmtext.lm.data import encode_lines
    from lstmtext.tokenizers import train_tokenizer

    lines = corpus["train"].read_text().splitlines()
    tok = train_tokenizer(lines, 0, "word")
    stream = encode_lines(lines, tok)
    config = fill(LMConfig(embedding_dim=8, hidden_size=8, num_layers=1, batch_size=2, bptt=4, tokenizer="word"))
    task = LMTrainTask(config, tok, stream, stream, {}, distribute.setup("one", precision))
    assert keras.config.dtype_policy().name == "float32"  # the policy does not leak
    lstm = task.model.get_layer("lstm_0")
    assert lstm.compute_dtype == precision and lstm.variable_dtype == "float32"
    assert all(v.dtype == "float32" for v in task.model.weights)
    assert task.model.get_layer("logits").compute_dtype == "float32"
    if precision == "float16":  # small gradients would underflow without loss scaling
        assert isinstance(task.model.optimizer, keras.optimizers.LossScaleOptimizer)
    batch = next(iter(task.train_batches(0)))
    assert np.isfinite(task.model.train_on_batch(batch.x, batch.y))
    assert task.model.predict_on_batch(batch.x).dtype == np.float32


def ner_task(dist):
    """A tiny tagger's training task, its model built under ``dist``."""
    from lstmtext.ner import features, network
    from lstmtext.ner.config import NERConfig
    from lstmtext.ner.trainer import NERTask
    from tests.test_ner import make_sentences

    data = [([w for w, _ in s], [t for _, t in s]) for s in make_sentences(8, 1)]
    tags = sorted({t for _, ts in data for t in ts})
    vocab = features.Vocab.build([w for w, _ in data], tags, max_word_length=4)
    config = fill(NERConfig(word_dim=8, casing_dim=2, char_dim=4, char_filters=4, hidden_size=8, batch_size=4,
                            length_bucket=16, max_word_length=4))
    with dist.scope():
        model = network.build_model(config, vocab, None)
    dist.prepare(model)
    return NERTask(config, vocab, model, data, data, "iob2", {}, fixed_chars=False, dist=dist)


def translate_task(dist):
    """A tiny translator's training task, built under ``dist``."""
    from lstmtext.tokenizers import train_tokenizer
    from lstmtext.translate.api import TranslateTrainTask
    from lstmtext.translate.config import TranslateConfig
    from lstmtext.translate.data import encode_source, encode_target
    from tests.toy_pair import corpus as toy_corpus

    sources, targets = zip(*toy_corpus(10, seed=5))
    tok = train_tokenizer(list(sources + targets), 0, "word")
    ids = (encode_source(tok, list(sources)), encode_target(tok, list(targets)))
    config = fill(TranslateConfig(tokenizer="word", embedding_dim=8, encoder_units=8, decoder_units=16,
                                  attention_units=8, batch_size=4, pad_multiple=16))
    return TranslateTrainTask(config, tok, tok, ids, ids, (list(sources), list(targets)), {}, dist)


# Per task: how to build it and the layer whose scores must stay float32.
MIXED = {"ner": (ner_task, "crf"), "translate": (translate_task, "logits")}


@pytest.mark.parametrize("precision", ["bfloat16", "float16"])
@pytest.mark.parametrize("task_name", TASKS)
def test_mixed_precision_tagger_and_translator(task_name, precision):
    import keras

    make, float32_layer = MIXED[task_name]
    task = make(distribute.setup("one", precision))
    assert keras.config.dtype_policy().name == "float32"  # the policy does not leak
    lstms = lstm_layers(task.model)
    assert lstms and all(lstm.compute_dtype == precision and lstm.variable_dtype == "float32" for lstm in lstms)
    assert all(v.dtype == "float32" for v in task.model.weights)
    assert task.model.get_layer(float32_layer).compute_dtype == "float32"
    if precision == "float16":  # small gradients would underflow without loss scaling
        assert isinstance(task.model.optimizer, keras.optimizers.LossScaleOptimizer)
    for batch in task.train_batches(0):  # one shape: traced once
        assert np.isfinite(task.model.train_on_batch(batch.x, batch.y))
    assert task.model.predict_on_batch(batch.x).dtype == np.float32
    assert task.validate()  # scores from the float32 weights


# ------------------------------------------------------------ GPU readiness
def lstm_layers(root) -> list:
    """Every ``keras.layers.LSTM`` inside a model, including wrapped and nested ones."""
    import keras

    found, seen = [], set()

    def walk(obj):
        if id(obj) in seen:
            return
        seen.add(id(obj))
        if isinstance(obj, keras.layers.LSTM):
            found.append(obj)
        if isinstance(obj, keras.layers.Layer):
            for value in vars(obj).values():
                for item in value if isinstance(value, (list, tuple)) else [value]:
                    if isinstance(item, keras.layers.Layer):
                        walk(item)

    walk(root)
    return found


def assert_cudnn_eligible(model, expected: int) -> None:
    """The conditions under which Keras runs an LSTM layer with cuDNN on a GPU."""
    layers = lstm_layers(model)
    assert len(layers) >= expected, [layer.name for layer in layers]
    for layer in layers:
        where = f"{model.name}/{layer.name}"
        assert layer.activation.__name__ == "tanh", where
        assert layer.recurrent_activation.__name__ == "sigmoid", where
        assert layer.recurrent_dropout == 0, where
        assert not layer.unroll and layer.use_bias and layer.use_cudnn in ("auto", True), where


def assert_right_padded(ids: np.ndarray) -> None:
    """cuDNN takes a mask only as sequence lengths: real tokens first, padding after."""
    real = ids != 0
    assert (np.sort(real, axis=1)[:, ::-1] == real).all(), ids


def test_lm_lstms_are_cudnn_eligible():
    from lstmtext.lm.config import LMConfig
    from lstmtext.lm.network import build_lm

    config = fill(LMConfig(embedding_dim=8, hidden_size=8, num_layers=2))
    assert_cudnn_eligible(build_lm(config, 30, 2, 5), expected=2)
    assert_cudnn_eligible(build_lm(config, 30, 2, 5, stateful=False, score=True), expected=2)


def test_ner_lstms_are_cudnn_eligible():
    network = pytest.importorskip("lstmtext.ner.network", reason="NER not written yet")
    features = pytest.importorskip("lstmtext.ner.features")
    from lstmtext.ner.config import NERConfig

    sentences = [["Anna", "lives", "in", "Paris", "."], ["Hi"], ["Bob", "met", "Anna"]]
    vocab = features.Vocab.build(sentences, ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"])
    for char_encoder in ("cnn", "lstm"):
        config = fill(NERConfig(word_dim=8, hidden_size=8, char_dim=4, char_hidden=4, char_filters=4,
                                char_encoder=char_encoder, num_layers=2))
        model = network.build_model(config, vocab, None)
        assert_cudnn_eligible(model, expected=4 if char_encoder == "lstm" else 2)
    batch = features.encode(vocab, sentences)
    assert_right_padded(batch["words"])


def test_translate_lstms_are_cudnn_eligible():
    network = pytest.importorskip("lstmtext.translate.network", reason="translation not written yet")
    from lstmtext.translate import data
    from lstmtext.translate.config import TranslateConfig

    config = fill(TranslateConfig(embedding_dim=8, encoder_units=8, decoder_units=8, encoder_layers=2))
    parts = network.build_translator(config, 20, 20)
    # The encoder's BiLSTMs take the cuDNN path. The decoder steps an LSTM
    # cell itself: input feeding needs each step's attention output.
    assert_cudnn_eligible(parts.encoder, expected=2)
    assert_right_padded(data.pad([[5, 6, 7], [5], [4, 4]], 3, 4))
