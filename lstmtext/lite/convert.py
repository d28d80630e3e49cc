"""Build a bundle's LiteRT parts (and SavedModels) with TensorFlow.

The parts are written as TensorFlow functions over the stored arrays (the
variables become constants) rather than traced from the Keras models: a
full-sequence ``keras.layers.LSTM`` converts only with TensorFlow "Flex" ops
(``TensorListReserve``), which the LiteRT runtime cannot run, whereas an LSTM
written as a ``tf.while_loop`` whose outputs grow by concatenation converts to
built-in ops and keeps dynamic batch and length. The maths are those of
``keras.layers.LSTM`` (gates i, f, c, o), checked against the NumPy runtimes
and the Keras models by the tests.
"""

from __future__ import annotations

import importlib
import json
import shutil
from pathlib import Path

import numpy as np

from lstmtext import bundle as bundle_io
from lstmtext.errors import BundleError, UsageError
from lstmtext.io import atomic_directory
from lstmtext.lite.runtime import DIR, FORMAT, FORMAT_VERSION, QUANTIZATIONS, sha256_file

BUILDERS = {"lm": "lstmtext.lite.lm", "ner": "lstmtext.lite.ner", "translate": "lstmtext.lite.translate"}


def tf():
    """TensorFlow, imported quietly."""
    from lstmtext.backend import quiet_tensorflow

    return quiet_tensorflow()


# ------------------------------------------------------------------ LSTM maths
def lstm_cell(x, h, c, kernel, recurrent, bias):
    """One ``keras.layers.LSTM`` step: ``(h, c)`` after input ``x``."""
    t = tf()
    z = t.matmul(x, kernel) + t.matmul(h, recurrent) + bias
    i, f, g, o = t.split(z, 4, axis=-1)
    c = t.sigmoid(f) * c + t.sigmoid(i) * t.tanh(g)
    return t.sigmoid(o) * t.tanh(c), c


def lstm_sequence(x, mask, kernel, recurrent, bias, reverse: bool = False):
    """A masked LSTM over ``(B, T, E)``; returns outputs ``(B, T, H)`` and the final ``(h, c)``.

    Padded steps (``mask`` false) keep the state and output zeros, so the
    reverse direction starts at each sequence's own last step, as Keras'
    masking does.
    """
    t = tf()
    units = recurrent.shape[0]
    batch, steps = t.shape(x)[0], t.shape(x)[1]
    proj = t.einsum("bte,ef->btf", x, kernel) + bias

    def body(i, h, c, out):
        step = steps - 1 - i if reverse else i
        z = proj[:, step] + t.matmul(h, recurrent)
        ig, fg, g, og = t.split(z, 4, axis=-1)
        c_new = t.sigmoid(fg) * c + t.sigmoid(ig) * t.tanh(g)
        h_new = t.sigmoid(og) * t.tanh(c_new)
        live = t.expand_dims(mask[:, step], 1)
        h, c = t.where(live, h_new, h), t.where(live, c_new, c)
        y = t.expand_dims(t.where(live, h, t.zeros_like(h)), 1)
        out = t.concat([y, out] if reverse else [out, y], axis=1)
        return i + 1, h, c, out

    zeros = t.zeros([batch, units])
    shape = t.TensorShape
    _, h, c, out = t.while_loop(
        lambda i, *_: i < steps, body, [0, zeros, zeros, t.zeros([batch, 0, units])],
        shape_invariants=[shape([]), shape([None, units]), shape([None, units]), shape([None, None, units])])
    return out, (h, c)


# ------------------------------------------------------------------ conversion
def to_tflite(function, quantize: str = "none") -> bytes:
    """Convert one ``tf.function`` (with an input signature) to LiteRT built-in ops."""
    t = tf()
    module = t.Module()
    module.f = function
    converter = t.lite.TFLiteConverter.from_concrete_functions([function.get_concrete_function()], module)
    converter.target_spec.supported_ops = [t.lite.OpsSet.TFLITE_BUILTINS]
    if quantize == "float16":
        converter.optimizations = [t.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [t.float16]
    elif quantize == "dynamic":
        converter.optimizations = [t.lite.Optimize.DEFAULT]
        # The MLIR dynamic-range quantizer (TensorFlow 2.21's default) turns the
        # embedding look-ups of the tagger and the translator into int8 tensors
        # that LiteRT's CONCATENATION kernel refuses ("t->type != input_type");
        # the older quantizer keeps them float and gives parts that run.
        converter.experimental_new_dynamic_range_quantizer = False
    from lstmtext.backend import silenced_stderr

    with silenced_stderr():  # the converter logs every MLIR pass to stderr
        return converter.convert()


def constants(arrays: dict[str, np.ndarray]):
    """The arrays as float32 TensorFlow constants (same keys)."""
    t = tf()
    return {k: t.constant(v.astype(np.float32) if v.dtype.kind == "f" else v) for k, v in arrays.items()}


def builder(task: str):
    return importlib.import_module(BUILDERS[task])


def default_quantize(bundle) -> str:
    """float16 parts for a bundle whose weights are stored as float16, else none."""
    return "float16" if bundle.config.get("weights_dtype") == "float16" else "none"


def write_parts(path: str | Path, quantize: str | None = None) -> dict:
    """Build the LiteRT parts of the bundle at ``path`` into its ``lite/`` folder (atomically).

    Returns the manifest.
    """
    from lstmtext.weights import load_arrays

    b = bundle_io.read(path)
    quantize = quantize or default_quantize(b)
    if quantize not in QUANTIZATIONS:
        raise UsageError(f"--quantize must be one of {', '.join(QUANTIZATIONS)}, got '{quantize}'")
    weights = b.file("weights.h5")
    if not weights.is_file():
        raise BundleError(f"{b.path}: weights.h5 is missing")
    arrays = load_arrays(weights)
    functions, extra = builder(b.task).build(arrays, b.config, b)
    files = {}
    with atomic_directory(b.path / DIR) as tmp:
        for name, fn in functions.items():
            data = to_tflite(fn, quantize)
            (tmp / f"{name}.tflite").write_bytes(data)
            files[name] = {"file": f"{name}.tflite", "bytes": len(data), "sha256": sha256_file(tmp / f"{name}.tflite")}
        for name, values in extra.items():
            np.savez(tmp / f"{name}.npz", **values)
        manifest = {"format": FORMAT, "version": FORMAT_VERSION, "task": b.task, "quantize": quantize,
                    "weights_sha256": sha256_file(weights), "files": files}
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


