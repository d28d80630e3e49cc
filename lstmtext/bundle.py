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
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lstmtext import __version__
from lstmtext.errors import BundleError

FORMAT = "lstmtext-bundle"
FORMAT_VERSION = 1
CONFIG = "config.json"
TASKS = ("lm", "ner", "translate")
# Refuse absurd sizes before building anything (a 10^9 vocabulary would
# allocate gigabytes before failing).
MAX_VOCAB = 2_000_000
MAX_UNITS = 16_384
MAX_LAYERS = 16


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
    """Versions of lstmtext and, if imported, keras and tensorflow."""
    import sys

    out = {"lstmtext": __version__}
    for name in ("keras", "tensorflow", "numpy", "sentencepiece"):
        mod = sys.modules.get(name)
        if mod is not None:
            out[name] = getattr(mod, "__version__", "?")
    return out


def resolve_path(path: str | Path) -> Path:
    """The bundle directory for a MODEL argument (bundle or training output)."""
    p = Path(path)
    if not p.exists():
        raise BundleError(f"{p}: model not found")
    if not p.is_dir():
        raise BundleError(f"{p}: not a model bundle (expected a directory)")
    if (p / CONFIG).is_file():
        return p
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
        limits = {"vocab": MAX_VOCAB, "units": MAX_UNITS, "size": MAX_UNITS * 64,
                  "layers": MAX_LAYERS, "dim": MAX_UNITS}
        for word, limit in limits.items():
            if word in key and value > limit:
                raise BundleError(f"{path}: config key '{key}' = {value} exceeds the limit {limit}")
        if value < 0 and any(w in key for w in limits):
            raise BundleError(f"{path}: config key '{key}' = {value} is negative")


def read(path: str | Path, task: str | None = None) -> Bundle:
    """Read and validate a bundle's ``config.json``.

    Args:
        path: A bundle or a training output directory.
        task: If given, the bundle must be for this task.

    Raises:
        BundleError: if the bundle is missing, malformed, unsafe, too new or
            of another task.
    """
    p = resolve_path(path)
    cfg_path = p / CONFIG
    try:
        meta = json.loads(cfg_path.read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise BundleError(f"{cfg_path}: unreadable config ({exc})") from None
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
    for key, value in (meta.get("tokenizer") or {}).items():
        if isinstance(value, (int, float)):
            _check_value(cfg_path, f"tokenizer.{key}", value)
    return Bundle(path=p, task=btask, config=config, meta=meta)


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
