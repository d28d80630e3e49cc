"""Model bundles: a directory with everything needed to run a trained model.

Layout::

    config.json      format version, task, resolved config, tokenizer summary,
                     versions, training data summary
    tokenizer/       tokenizer files (spm.model or vocab.txt; a task may keep
                     more than one, e.g. tokenizer/source, tokenizer/target)
    weights.h5       the weights (see lstmtext.weights)
    metrics.json     final metrics (validation scores, speed)
    history.json     one record per epoch

A training output directory holds two bundles, ``model-best`` and
``model-last`` (the latter with the optimizer and trainer state needed by
``--resume``). Any command that takes a MODEL accepts the bundle itself or the
training output directory (it then uses ``model-best``).

Bundles are written to a temporary directory and renamed into place, and are
read without unpickling or deserializing any code: ``config.json`` is checked
against a strict schema before anything large is allocated.
"""

from __future__ import annotations

import json
import math
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lstmtext import __version__
from lstmtext.errors import BundleError, ConfigError
from lstmtext.io import recover_directory

FORMAT = "lstmtext-bundle"
FORMAT_VERSION = 1
CONFIG = "config.json"
TASKS = ("lm", "ner", "translate")
# Refuse absurd sizes before building anything (a 10^9 vocabulary would
# allocate gigabytes before failing).
MAX_VOCAB = 2_000_000
MAX_UNITS = 16_384
MAX_LAYERS = 16
MAX_CONFIG_BYTES = 16 << 20  # config.json
MAX_FILE_BYTES = 1 << 30  # any other file but weights
MAX_WEIGHT_BYTES = 8 << 30  # all arrays of one HDF5 file, as declared in its header
MAX_ENTRIES = 10_000  # files and folders in a bundle
MAX_DEPTH = 32  # nesting of config.json
# Keys that mark a serialized Python/Keras object (a Lambda layer, a custom
# class, a pickled callable): a bundle config holds plain values only.
CODE_KEYS = frozenset({"class_name", "registered_name", "module", "function", "function_type",
                       "py/object", "py/reduce", "py/function", "__class__", "__reduce__"})
# Each task's config dataclass: config.json's "config" must fit it exactly.
CONFIG_CLASSES = {
    "lm": ("lstmtext.lm.config", "LMConfig"),
    "ner": ("lstmtext.ner.config", "NERConfig"),
    "translate": ("lstmtext.translate.config", "TranslateConfig"),
}


@dataclass
class Bundle:
    """A bundle's metadata as read from ``config.json``.

    Attributes:
        path: The bundle directory.
        task: ``lm``, ``ner`` or ``translate``.
        config: The task's resolved configuration (a plain dict).
        meta: Everything else in ``config.json``.
    """

    path: Path
    task: str
    config: dict[str, Any]
    meta: dict[str, Any] = field(default_factory=dict)

    def file(self, name: str) -> Path:
        """Path of a file inside the bundle, checked to stay inside it."""
        p = (self.path / name).resolve()
        if self.path.resolve() not in p.parents and p != self.path.resolve():
            raise BundleError(f"{self.path}: path '{name}' escapes the bundle")
        return p

    def json(self, name: str, default: Any = None) -> Any:
        """Read a JSON file of the bundle, or ``default`` when absent."""
        p = self.file(name)
        if not p.is_file():
            return default
        try:
            return json.loads(p.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise BundleError(f"{p}: unreadable JSON ({exc})") from None


def versions() -> dict[str, str]:
    """Versions of lstmtext and, if imported, keras (with its backend), tensorflow, jax."""
    import sys

    out = {"lstmtext": __version__}
    for name in ("keras", "tensorflow", "jax", "numpy", "sentencepiece"):
        mod = sys.modules.get(name)
        if mod is not None:
            out[name] = getattr(mod, "__version__", "?")
    if "keras" in sys.modules:
        out["keras_backend"] = sys.modules["keras"].backend.backend()
    return out


def resolve_path(path: str | Path) -> Path:
    """The bundle directory for a MODEL argument: a bundle, a training output or an installed model's name.

    A path that exists wins over an installed model of the same name (a note
    on standard error says which is used); a bare name that is no path is
    looked up among the installed model packages (:mod:`lstmtext.packages`).
    """
    from lstmtext import packages

    p = Path(path)
    if not p.exists() and recover_directory(p) is None:
        if packages.is_name(str(path)):
            return packages.find(str(path))
        raise BundleError(f"{p}: model not found")
    if packages.is_name(str(path)) and packages.installed().get(str(path)):
        import sys

        print(f"note: using the bundle at ./{path}, not the installed model '{path}' of the same name "
              f"(give another path to choose)", file=sys.stderr)
    if not p.is_dir():
        raise BundleError(f"{p}: not a model bundle (expected a directory)")
    if (p / CONFIG).is_file():
        return p
    for name in ("model-best", "model-last"):
        recover_directory(p / name)  # a save killed between its two renames
    if (p / "model-best" / CONFIG).is_file():
        return p / "model-best"
    if (p / "model-last" / CONFIG).is_file():
        return p / "model-last"
    raise BundleError(f"{p}: not a model bundle (no {CONFIG})")


_SAFE_NAME = re.compile(r"^[A-Za-z0-9_.\-/]+$")


def _check_value(path: Path, key: str, value: Any) -> None:
    if isinstance(value, str):
        if key.endswith(("_file", "_path", "file", "path")) or "/" in value:
            if value.startswith("/") or ".." in Path(value).parts:
                # Only training-data summaries may name outside paths.
                if not key.startswith(("train", "valid", "data", "embeddings")):
                    raise BundleError(f"{path}: config key '{key}' holds an unsafe path '{value}'")
    if isinstance(value, bool):
        return
    if isinstance(value, (int, float)):
        # The first word found in the key decides (vocab_size is a vocabulary, not a width).
        limits = {"vocab": MAX_VOCAB, "layers": MAX_LAYERS, "units": MAX_UNITS, "dim": MAX_UNITS,
                  "size": MAX_UNITS * 64}
        name = key.rsplit(".", 1)[-1]
        for word, limit in limits.items():
            if word in name:
                if value > limit or value != value:
                    raise BundleError(f"{path}: config key '{key}' = {value} exceeds the limit {limit}")
                if value < 0:
                    raise BundleError(f"{path}: config key '{key}' = {value} is negative")
                break


def read(path: str | Path, task: str | None = None, check_weights: bool = True) -> Bundle:
    """Read and validate a bundle's ``config.json``.

    Args:
        path: A bundle or a training output directory.
        task: If given, the bundle must be for this task.
        check_weights: Also check every HDF5 file's header now. Commands that
            may run on the LiteRT parts pass ``False`` (no h5py import): the
            weights are checked anyway when they are read
            (:func:`lstmtext.weights.load_arrays`).

    Raises:
        BundleError: if the bundle is missing, malformed, unsafe, too new or
            of another task.
    """
    p = resolve_path(path)
    cfg_path = p / CONFIG
    _check_files(p)
    try:
        meta = json.loads(cfg_path.read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise BundleError(f"{cfg_path}: unreadable config ({str(exc)[:200]})") from None
    _check_tree(cfg_path, meta, "", 0)
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise BundleError(f"{cfg_path}: not an lstmtext bundle config")
    version = meta.get("format_version")
    if not isinstance(version, int) or version < 1:
        raise BundleError(f"{cfg_path}: bad format_version {version!r}")
    if version > FORMAT_VERSION:
        raise BundleError(
            f"{cfg_path}: bundle format version {version} is newer than this lstmtext "
            f"({__version__}) supports ({FORMAT_VERSION}); upgrade lstmtext"
        )
    btask = meta.get("task")
    if btask not in TASKS:
        raise BundleError(f"{cfg_path}: unknown task {btask!r}")
    if task is not None and btask != task:
        raise BundleError(f"{p}: this is a '{btask}' model, expected a '{task}' model")
    config = meta.get("config")
    if not isinstance(config, dict):
        raise BundleError(f"{cfg_path}: missing 'config' object")
    for key, value in config.items():
        _check_value(cfg_path, key, value)
    _check_schema(cfg_path, btask, config)
    for key, value in _numbers(meta.get("tokenizer"), "tokenizer"):
        _check_value(cfg_path, key, value)
    if check_weights:
        for h5 in sorted(p.rglob("*.h5")):
            check_h5(h5)
    return Bundle(path=p, task=btask, config=config, meta=meta)


def _numbers(tree: Any, prefix: str):
    """``(dotted key, number)`` for every number in a nested dict."""
    if isinstance(tree, dict):
        for key, value in tree.items():
            yield from _numbers(value, f"{prefix}.{key}")
    elif isinstance(tree, (int, float)) and not isinstance(tree, bool):
        yield prefix, tree


def _check_tree(path: Path, tree: Any, where: str, depth: int) -> None:
    """Refuse serialized code and absurd nesting anywhere in ``config.json``."""
    if depth > MAX_DEPTH:
        raise BundleError(f"{path}: config nested deeper than {MAX_DEPTH} levels at '{where}'")
    if isinstance(tree, dict):
        for key, value in tree.items():
            if key in CODE_KEYS:
                what = tree.get("class_name") or tree.get("module") or key
                raise BundleError(f"{path}: '{where or '/'}' holds a serialized object ({key}: "
                                  f"{str(what)[:80]!r}); bundles may not contain code or classes")
            _check_tree(path, value, f"{where}.{key}" if where else str(key), depth + 1)
    elif isinstance(tree, list):
        for i, value in enumerate(tree):
            _check_tree(path, value, f"{where}[{i}]", depth + 1)
    elif isinstance(tree, float) and not math.isfinite(tree):
        raise BundleError(f"{path}: '{where}' is {tree} (NaN and infinity are not allowed)")


def _check_schema(path: Path, task: str, config: dict) -> None:
    """The ``config`` object must be a valid config of ``task``: known keys, right types."""
    import importlib

    from lstmtext.config import auto_keys, from_dict

    module, name = CONFIG_CLASSES[task]
    try:
        cls = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError):  # a task not installed in this build
        return
    for key, value in config.items():
        if isinstance(value, (dict, list)):
            raise BundleError(f"{path}: config key '{key}' must be a plain value")
    try:
        resolved = from_dict(cls, config)
    except ConfigError as exc:
        raise BundleError(f"{path}: {exc}") from None
    except (TypeError, ValueError) as exc:
        raise BundleError(f"{path}: invalid config ({exc})") from None
    # Training resolves every "auto" key before it writes a bundle; a network cannot be built from one.
    # (A key an older bundle lacks takes its default, which may be "auto": only training keys are that new.)
    left = [key for key in auto_keys(resolved) if key in config]
    if left:
        raise BundleError(f"{path}: config key '{left[0]}' is 'auto' (a bundle holds concrete values)")


def _check_files(root: Path) -> None:
    """Every entry is a plain file or folder inside the bundle, of bounded size and number."""
    import os
    import stat

    real_root = root.resolve()
    count = 0
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            count += 1
            if count > MAX_ENTRIES:
                raise BundleError(f"{root}: more than {MAX_ENTRIES} files; not a bundle")
            entry = Path(folder) / name
            info = entry.lstat()
            if stat.S_ISLNK(info.st_mode):
                target = entry.resolve()
                if real_root not in target.parents:
                    raise BundleError(f"{entry}: link pointing outside the bundle")
                info = target.stat()
            if stat.S_ISDIR(info.st_mode):
                continue
            if not stat.S_ISREG(info.st_mode):
                raise BundleError(f"{entry}: not a regular file (device, pipe or socket)")
            limit = (MAX_CONFIG_BYTES if name == CONFIG else
                     MAX_WEIGHT_BYTES if name.endswith(".h5") else MAX_FILE_BYTES)
            if info.st_size > limit:
                raise BundleError(f"{entry}: {info.st_size} bytes, over the limit of {limit}")


def check_h5(path: Path) -> None:
    """Check an HDF5 weights file's header before any array is read.

    Refuses links to other files, external or virtual storage (which could
    read arbitrary files), non-numeric data, and arrays whose declared size
    is absurd or far beyond what the file stores (a few bytes on disk that
    would allocate gigabytes).
    """
    import h5py
    import numpy as np

    declared = 0
    problems: list[str] = []

    def visit(name: str, group) -> None:
        nonlocal declared
        for key in group.keys():
            full = f"{name}/{key}" if name else key
            link = group.get(key, getlink=True)
            if not isinstance(link, h5py.HardLink):
                problems.append(f"'{full}' is a link")
                continue
            obj = group[key]
            if isinstance(obj, h5py.Group):
                visit(full, obj)
                continue
            if not isinstance(obj, h5py.Dataset):
                problems.append(f"'{full}' is not an array")
                continue
            if obj.is_virtual or obj.external:
                problems.append(f"'{full}' reads data from other files")
                continue
            if obj.dtype.kind not in "biuf" or obj.dtype.itemsize > 8:
                problems.append(f"'{full}' is not numeric ({obj.dtype})")
                continue
            size = int(np.prod(obj.shape, dtype=np.float64)) * obj.dtype.itemsize
            declared += size
            stored = obj.id.get_storage_size()
            if size > MAX_WEIGHT_BYTES or size > 64 * stored + (1 << 20):
                problems.append(f"'{full}' declares {size} bytes (shape {obj.shape}) but the file stores "
                                f"{stored}")

    try:
        with h5py.File(path, "r") as f:
            visit("", f)
    except (OSError, ValueError, KeyError, RuntimeError) as exc:
        raise BundleError(f"{path}: unreadable HDF5 file ({str(exc)[:200]})") from None
    if problems:
        raise BundleError(f"{path}: refused: {problems[0]}")
    if declared > MAX_WEIGHT_BYTES:
        raise BundleError(f"{path}: arrays total {declared} bytes, over the limit of {MAX_WEIGHT_BYTES}")


def write_config(directory: Path, task: str, config: dict[str, Any], **meta: Any) -> None:
    """Write ``config.json`` into a bundle being assembled."""
    doc = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "task": task,
        "config": config,
        "versions": versions(),
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        **meta,
    }
    (directory / CONFIG).write_text(json.dumps(doc, indent=2, sort_keys=False) + "\n", encoding="utf-8")


def write_json(directory: Path, name: str, value: Any) -> None:
    """Write a JSON file into a bundle being assembled."""
    (directory / name).write_text(json.dumps(value, indent=2) + "\n", encoding="utf-8")
