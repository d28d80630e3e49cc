"""Exporting bundles to other forms.

- ``bundle``: a copy of a bundle without training state, optionally with
  float16 weights (half the size; ``evaluate`` on both shows the change).
- ``litert``: the same copy with its LiteRT parts (``lite/``) built, optionally
  quantised (``float16`` weights, or ``dynamic``: int8 weights, float
  activations); ``lstmtext predict`` runs them without TensorFlow.
- ``savedmodel``: a TensorFlow SavedModel for TensorFlow Serving with the
  task's serving signatures (see :data:`SIGNATURES`) and the tokenizer and
  vocabulary files as assets.

:func:`average_bundles` (``lstmtext average``) writes the mean of several
checkpoints of one model (checkpoint averaging, as OpenNMT's
``average_models``): the bundles must share their task, the config keys that
shape weights, their vocabulary and tokenizer files, and every weight's name
and shape.

Every export is written to a temporary directory renamed into place: an
existing ``--output`` is replaced only by a complete result.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from lstmtext import bundle as bundle_io
from lstmtext.errors import UsageError
from lstmtext.io import atomic_directory
from lstmtext.weights import load_arrays, save_arrays

FORMATS = ("bundle", "litert", "savedmodel")
TRAINING_STATE = ("weights.h5", "optimizer.h5", "trainer.json", "lite")
SIGNATURES = {
    "lm": "step: ids (B,) int32, h0, c0, ... (B, units) -> log_probs (B, V), h0_out, c0_out, ...",
    "ner": "emissions: words, casing, chars (int32, right-padded with 0) -> emissions (B, T, tags); "
           "tag: the same inputs -> tags (B, T) int32 tag ids (Viterbi with the CRF), -1 at padding",
    "translate": "encode: sources (N, S) int32 -> memory, state_*; decode_step: tokens (R,), memory, "
                 "mask, state_* -> log_probs (R, V), state_*_out",
}


def _size(path: Path) -> int:
    return sum(f.stat().st_size for f in Path(path).rglob("*") if f.is_file())


def _copy(b, tmp: Path, dtype: str | None, arrays: dict | None = None, skip: tuple[str, ...] = ()) -> None:
    """The bundle's files without training state (nor ``skip``); weights re-stored as ``dtype`` (None: unchanged).

    ``arrays``: weights to store instead of the bundle's own (as ``dtype``).
    """
    for item in b.path.iterdir():
        if item.name in TRAINING_STATE + skip or item.name.startswith("."):
            continue
        if item.is_dir():
            shutil.copytree(item, tmp / item.name)
        else:
            shutil.copy2(item, tmp / item.name)
    if dtype is None and arrays is None:
        shutil.copy2(b.file("weights.h5"), tmp / "weights.h5")
        return
    dtype = dtype or str(b.config.get("weights_dtype") or "float32")
    save_arrays(load_arrays(b.file("weights.h5")) if arrays is None else arrays, tmp / "weights.h5", dtype)
    cfg = json.loads((tmp / bundle_io.CONFIG).read_text())
    if "weights_dtype" in cfg["config"]:
        cfg["config"]["weights_dtype"] = dtype
    (tmp / bundle_io.CONFIG).write_text(json.dumps(cfg, indent=2) + "\n")


def _target(b, output) -> Path:
    out = Path(output)
    if out.resolve() == b.path.resolve():
        raise UsageError("--output must differ from the model path")
    return out


def export_bundle(model: str | Path, output: str | Path, dtype: str | None = None) -> dict:
    """Copy a bundle to ``output`` with weights stored as ``dtype`` (None: as the source stores them).

    Training state (optimizer, trainer) is left out; LiteRT parts, if the
    source has them, are rebuilt from the new weights. Returns sizes in bytes.
    """
    if dtype not in (None, "float32", "float16"):
        raise UsageError(f"--dtype must be float32 or float16, got '{dtype}'")
    b = bundle_io.read(model)
    out = _target(b, output)
    with atomic_directory(out) as tmp:
        _copy(b, tmp, dtype)
        if b.file("lite").is_dir():
            from lstmtext.lite.convert import write_parts

            write_parts(tmp)
    return {"source_bytes": _size(b.path), "output_bytes": _size(out), "dtype": dtype, "output": str(out)}


def copy_bundle(b, output: str | Path, edit=None) -> Path:
    """Copy bundle ``b`` to ``output``: no training state, weights and LiteRT parts as they are.

    ``edit(directory)`` runs on the copy before it replaces ``output`` (e.g.
    a change to ``config.json`` that leaves the weights alone, so the LiteRT
    parts stay valid). Returns ``output``.
    """
    out = _target(b, output)
    with atomic_directory(out) as tmp:
        _copy(b, tmp, None)
        if b.file("lite").is_dir():
            shutil.copytree(b.file("lite"), tmp / "lite")
        if edit is not None:
            edit(tmp)
    return out


def export_litert(model: str | Path, output: str | Path, quantize: str | None = None) -> dict:
    """Copy a bundle to ``output`` with LiteRT parts built (``quantize``: none, float16 or dynamic).

    Returns the manifest plus ``lite_bytes`` (all parts) and ``weights_bytes``.
    """
    from lstmtext.lite.convert import write_parts

    b = bundle_io.read(model)
    out = _target(b, output)
    with atomic_directory(out) as tmp:
        _copy(b, tmp, None)
        manifest = write_parts(tmp, quantize)
    return {**manifest, "output": str(out), "lite_bytes": _size(out / "lite"),
            "weights_bytes": (out / "weights.h5").stat().st_size}


def export_savedmodel(model: str | Path, output: str | Path) -> dict:
    """Write a TensorFlow SavedModel with the task's serving signatures (see :data:`SIGNATURES`)."""
    from lstmtext.lite.convert import builder, tf

    b = bundle_io.read(model)
    out = _target(b, output)
    t = tf()
    functions, extra = builder(b.task).build(load_arrays(b.file("weights.h5")), b.config, b)
    if "crf" in extra:  # a tagger with a CRF head: its constrained transitions come with the parts
        functions["tag"] = _tag_function(functions["emissions"], extra["crf"])
    module = t.Module()
    for name, fn in functions.items():
        setattr(module, name, fn)
    with atomic_directory(out) as tmp:
        assets = tmp / "assets.extra"
        assets.mkdir()
        for name in ("tokenizer", "vocab.json", bundle_io.CONFIG):
            src = b.path / name
            if src.is_dir():
                shutil.copytree(src, assets / name)
            elif src.is_file():
                shutil.copy2(src, assets / name)
        (assets / "SIGNATURES.txt").write_text(SIGNATURES[b.task] + "\n")
        t.saved_model.save(module, str(tmp / "saved"), signatures={n: f.get_concrete_function()
                                                               for n, f in functions.items()})
        for item in (tmp / "saved").iterdir():
            shutil.move(str(item), tmp / item.name)
        (tmp / "saved").rmdir()
    return {"output": str(out), "signatures": sorted(functions), "output_bytes": _size(out)}


def _tag_function(emissions, crf: dict):
    """``tag``: Viterbi over the emissions with the CRF's (constrained) transitions, in TensorFlow."""
    from lstmtext.layers.crf import viterbi
    from lstmtext.lite.convert import tf

    t = tf()
    trans, start, end = (t.constant(crf[k], t.float32) for k in ("transitions", "start", "end"))

    @t.function(input_signature=emissions.input_signature)
    def tag(*inputs):
        scores = emissions(*inputs)["emissions"]
        return {"tags": t.cast(viterbi(scores, inputs[0] != 0, trans, start, end), t.int32)}

    return tag


# Files that describe one checkpoint's training, not the weights' meaning: averaged bundles may differ
# in them (and in config.json, whose weight-shaping keys are compared), and the average leaves them out.
RUN_FILES = ("metrics.json", "history.json", "MODEL_CARD.md")


def average_bundles(models: list, output: str | Path, dtype: str | None = None) -> dict:
    """Write the element-wise mean of the weights of ``models`` to ``output``.

    The first bundle gives every other file (config, vocabulary, tokenizer);
    its metrics, history and card are left out (they describe one
    checkpoint), as are LiteRT parts, rebuilt from the mean when the first
    bundle has them. Weights are stored as ``dtype`` (default: as the first
    bundle stores them).

    Raises:
        UsageError: fewer than two models, or the output is one of them.
        BundleError: bundles of different tasks, shape keys, vocabularies or weights (the line names them).
    """
    from lstmtext.errors import BundleError
    from lstmtext.training.init_from import SHAPE_KEYS

    if len(models) < 2:
        raise UsageError("give two or more models to average")
    if dtype not in (None, "float32", "float16"):
        raise UsageError(f"--dtype must be float32 or float16, got '{dtype}'")
    bundles = [bundle_io.read(m) for m in models]
    first = bundles[0]
    out = Path(output)
    for b in bundles:
        _target(b, out)
    arrays = load_arrays(first.file("weights.h5"))
    total = {k: v.astype("float64") if v.dtype.kind == "f" else v for k, v in arrays.items()}
    same_files = {f.relative_to(first.path): f.read_bytes() for f in sorted(first.path.rglob("*")) if f.is_file()
                  and f.parts[len(first.path.parts)] not in TRAINING_STATE + RUN_FILES + (bundle_io.CONFIG,)
                  and not f.name.startswith(".")}
    for b in bundles[1:]:
        if b.task != first.task:
            raise BundleError(f"{b.path}: a '{b.task}' model, {first.path} is a '{first.task}' model")
        if b.meta.get("tokenizer") != first.meta.get("tokenizer"):
            raise BundleError(f"{b.path}: its tokenizer differs from {first.path}'s: not checkpoints of one model")
        for key in SHAPE_KEYS[first.task]:
            if b.config.get(key) != first.config.get(key):
                raise BundleError(f"{b.path}: config key '{key}' is {b.config.get(key)!r}, "
                                  f"{first.path} has {first.config.get(key)!r}: not checkpoints of one model")
        for rel, content in same_files.items():
            other = b.path / rel
            if not other.is_file() or other.read_bytes() != content:
                raise BundleError(f"{b.path}: {rel} differs from {first.path}'s (another vocabulary or "
                                  "tokenizer: not checkpoints of one model)")
        theirs = load_arrays(b.file("weights.h5"))
        if set(theirs) != set(arrays) or any(theirs[k].shape != arrays[k].shape for k in arrays):
            raise BundleError(f"{b.path}: its weights differ in names or shapes from {first.path}'s")
        for k, v in theirs.items():
            if v.dtype.kind == "f":
                total[k] += v
            elif not (v == arrays[k]).all():
                raise BundleError(f"{b.path}: non-float weight '{k}' differs from {first.path}'s")
    mean = {k: (v / len(bundles)).astype("float32") if v.dtype.kind == "f" else v for k, v in total.items()}
    stored = dtype or str(first.config.get("weights_dtype") or "float32")
    with atomic_directory(out) as tmp:
        _copy(first, tmp, stored, mean, RUN_FILES)
        cfg = json.loads((tmp / bundle_io.CONFIG).read_text())
        cfg["averaged_from"] = [str(b.path) for b in bundles]
        (tmp / bundle_io.CONFIG).write_text(json.dumps(cfg, indent=2) + "\n")
        if first.file("lite").is_dir():
            from lstmtext.lite.convert import write_parts

            write_parts(tmp)
    return {"models": len(bundles), "output": str(out), "output_bytes": _size(out), "dtype": stored}
