"""Model packages: bundles installed with pip and found by name.

A model package is an ordinary wheel (spaCy's pattern) holding one bundle
as package data and announcing it through the ``lstmtext.models`` entry-point
group::

    lstmtext_model_lm_ptb/__init__.py
    lstmtext_model_lm_ptb/bundle/config.json, weights.h5, tokenizer/, ...
    lstmtext_model_lm_ptb-1.0.0.dist-info/entry_points.txt
        [lstmtext.models]
        lm-ptb = lstmtext_model_lm_ptb

``lstmtext package MODEL --output DIR`` writes such a wheel (no build tool
needed: a wheel is a zip with three metadata files); ``pip install`` puts it
in ``site-packages``; any MODEL argument that names no existing path is then
looked up here (:func:`find`). Nothing is imported to find a model: the
entry point's module is located with ``importlib.util.find_spec``.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from lstmtext import __version__
from lstmtext.errors import BundleError, UsageError

ENTRY_GROUP = "lstmtext.models"
DIST_PREFIX = "lstmtext-model-"
BUNDLE_DIR = "bundle"
CARD = "MODEL_CARD.md"
# Files of a training checkpoint (model-last) that a model package leaves out.
TRAINING_STATE = frozenset({"trainer.json", "optimizer.h5", "variables.h5", ".lock"})
_NAME = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?$")
_VERSION = re.compile(r"^\d+(?:\.\d+)*(?:(?:a|b|rc)\d+)?(?:\.post\d+)?(?:\.dev\d+)?$")
# Zip entries get one fixed time so the same bundle gives the same wheel bytes.
_ZIP_TIME = (2020, 1, 1, 0, 0, 0)


@dataclass
class InstalledModel:
    """A model installed as a package.

    Attributes:
        name: The name MODEL arguments use (the entry point's name).
        path: The bundle directory inside ``site-packages``.
        distribution: The pip distribution that installed it.
        version: That distribution's version.
        licence: Its ``License`` metadata field.
    """

    name: str
    path: Path
    distribution: str
    version: str
    licence: str


def is_name(text: str) -> bool:
    """Whether a MODEL argument reads as a bare model name rather than a path."""
    return bool(_NAME.match(text)) and os.sep not in text and "/" not in text


def _bundle_of(module: str) -> Path | None:
    import importlib.util

    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        candidate = Path(location) / BUNDLE_DIR
        if candidate.is_dir():
            return candidate
    return None


def installed() -> dict[str, list[InstalledModel]]:
    """Every installed model package, by name (a name with two entries is a conflict)."""
    from importlib.metadata import entry_points

    found: dict[str, list[InstalledModel]] = {}
    seen: set[tuple[str, Path]] = set()
    for ep in entry_points(group=ENTRY_GROUP):
        path = _bundle_of(ep.value.split(":", 1)[0])
        # One package seen twice on sys.path (an old copy shadowed by a newer one) imports from
        # the first: it is one model, not two.
        if path is None or (ep.name, path.resolve()) in seen:
            continue
        seen.add((ep.name, path.resolve()))
        dist = getattr(ep, "dist", None)
        meta = dist.metadata if dist is not None else {}
        found.setdefault(ep.name, []).append(InstalledModel(
            ep.name, path, meta.get("Name") or "?", (dist.version if dist is not None else None) or "?",
            meta.get("License") or "unknown"))
    return found


def find(name: str) -> Path:
    """The bundle directory of the installed model ``name``.

    Raises:
        BundleError: no installed model has that name (the message lists the
            installed names), or two do (it names both distributions).
    """
    models = installed()
    entries = models.get(name, [])
    if len(entries) > 1:
        both = " and ".join(f"{m.distribution} {m.version} ({m.path})" for m in entries)
        raise BundleError(f"model '{name}' is installed twice: {both}; pip uninstall one of them")
    if not entries:
        names = ", ".join(sorted(models)) or "none"
        raise BundleError(f"{name}: no such model path, and no installed model of that name "
                          f"(installed: {names}; `lstmtext package BUNDLE` makes one installable)")
    return entries[0].path


def describe(model: InstalledModel) -> dict:
    """A row of ``lstmtext models``: name, task, size, validation metrics, licence."""
    import json

    row = {"name": model.name, "task": None, "bytes": 0, "metrics": {}, "licence": model.licence,
           "version": model.version, "distribution": model.distribution, "path": str(model.path)}
    try:
        meta = json.loads((model.path / "config.json").read_text(encoding="utf-8"))
        row["task"] = meta.get("task")
        metrics = json.loads((model.path / "metrics.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        metrics = {}
    row["bytes"] = sum(f.stat().st_size for f in model.path.rglob("*") if f.is_file())
    keys = {"lm": ("valid_perplexity",), "ner": ("f1", "accuracy"), "translate": ("valid_bleu", "valid_chrf")}
    for key in keys.get(row["task"], ()):
        if isinstance(metrics.get(key), (int, float)):
            row["metrics"][key] = round(float(metrics[key]), 2)
    return row


# ---------------------------------------------------------------- building
def module_name(name: str) -> str:
    """The Python package a model package installs: ``lm-ptb`` -> ``lstmtext_model_lm_ptb``."""
    return "lstmtext_model_" + re.sub(r"[^A-Za-z0-9]+", "_", name).strip("_").lower()


def default_name(bundle_path: Path) -> str:
    """A bundle's name: its folder, or the training output's folder for model-best/model-last."""
    folder = bundle_path.resolve()
    if folder.name in ("model-best", "model-last"):
        folder = folder.parent
    return folder.name


def _record_hash(data: bytes) -> str:
    import base64
    import hashlib

    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def _metadata(dist: str, version: str, licence: str, summary: str, card: str) -> str:
    lines = ["Metadata-Version: 2.1", f"Name: {dist}", f"Version: {version}", f"Summary: {summary}",
             f"License: {licence}", "Keywords: lstmtext,model", "Description-Content-Type: text/markdown"]
    return "\n".join(lines) + "\n\n" + card


def _card(bundle, name: str) -> str:
    path = bundle.path / CARD
    if path.is_file():
        return path.read_text(encoding="utf-8")
    return (f"# {name}\n\nAn lstmtext {bundle.task} model. It has no model card; "
            f"`lstmtext info {name}` describes it.\n")


def validate(path: Path):
    """Read and check a bundle fully: schema, weight headers, and one prediction on its light runtime.

    Returns:
        The :class:`lstmtext.bundle.Bundle`.
    Raises:
        BundleError: with the reason.
    """
    from lstmtext import bundle as bundle_io
    from lstmtext.errors import LstmtextError
    from lstmtext.tasks import PredictOptions, api

    b = bundle_io.read(path)
    try:
        # A real prediction loads every weight the runtime needs and checks it against the config.
        list(api(b.task).predict(b, ["a test"], PredictOptions(runtime="numpy", beam=1)))
    except LstmtextError as exc:
        raise BundleError(f"{b.path}: fails validation: {exc}") from None
    except (KeyError, ValueError, OSError) as exc:
        raise BundleError(f"{b.path}: fails validation: weights do not fit its config ({str(exc)[:160]})"
                          ) from None
    return b


def build_wheel(model: str | Path, output: Path, name: str | None = None, version: str = "1.0.0",
                licence: str | None = None) -> dict:
    """Write a pip-installable wheel of a bundle into ``output``.

    Args:
        model: A bundle, training output or installed model name.
        output: The folder to write the wheel into (created if needed).
        name: The model's name after install (default: the bundle's folder name).
        version: The package version (PEP 440).
        licence: The ``License`` field (default: the bundle's ``licence`` entry in
            config.json, else ``unknown``).

    Returns:
        ``{"wheel": path, "name", "distribution", "version", "bytes", "files"}``.
    """
    import zipfile

    from lstmtext import bundle as bundle_io
    from lstmtext.io import atomic_file

    bundle_path = bundle_io.resolve_path(model)
    name = name or default_name(bundle_path)
    if not is_name(name):
        raise UsageError(f"--name '{name}': use letters, digits, '.', '_' and '-' only")
    if not _VERSION.match(version):
        raise UsageError(f"--version '{version}' is not a version number like 1.0.0")
    b = validate(bundle_path)
    licence = licence or str(b.meta.get("licence") or "unknown")
    dist = DIST_PREFIX + name.lower().replace("_", "-").replace(".", "-")
    dist_file = re.sub(r"[-.]+", "_", dist)
    module = module_name(name)
    info_dir = f"{dist_file}-{version}.dist-info"
    card = _card(b, name)
    files: list[tuple[str, bytes]] = []
    for f in sorted(p for p in b.path.rglob("*") if p.is_file()):
        rel = f.relative_to(b.path)
        if rel.parts[0] in TRAINING_STATE or f.name.startswith(".tmp"):
            continue
        files.append((f"{module}/{BUNDLE_DIR}/{rel.as_posix()}", f.read_bytes()))
    init = (f'"""lstmtext model package: {name} ({b.task}). Run it with `lstmtext predict {name} ...`."""\n\n'
            "from pathlib import Path\n\n"
            f"NAME = {name!r}\nTASK = {b.task!r}\n"
            f"BUNDLE = Path(__file__).parent / {BUNDLE_DIR!r}\n")
    files.insert(0, (f"{module}/__init__.py", init.encode()))
    summary = f"lstmtext {b.task} model {name}"
    files += [
        (f"{info_dir}/METADATA", _metadata(dist, version, licence, summary, card).encode()),
        (f"{info_dir}/WHEEL", (f"Wheel-Version: 1.0\nGenerator: lstmtext {__version__}\n"
                               "Root-Is-Purelib: true\nTag: py3-none-any\n").encode()),
        (f"{info_dir}/entry_points.txt", f"[{ENTRY_GROUP}]\n{name} = {module}\n".encode()),
        (f"{info_dir}/top_level.txt", f"{module}\n".encode()),
    ]
    record = "".join(f"{arc},{_record_hash(data)},{len(data)}\n" for arc, data in files)
    record += f"{info_dir}/RECORD,,\n"
    files.append((f"{info_dir}/RECORD", record.encode()))

    output = Path(output)
    if output.exists() and not output.is_dir():
        raise UsageError(f"--output {output}: not a folder")
    output.mkdir(parents=True, exist_ok=True)
    wheel = output / f"{dist_file}-{version}-py3-none-any.whl"
    with atomic_file(wheel, "wb") as fh, zipfile.ZipFile(fh, "w") as zf:
        for arc, data in files:
            entry = zipfile.ZipInfo(arc, _ZIP_TIME)
            entry.external_attr = 0o644 << 16
            # Weights barely compress; storing them keeps packing fast.
            method = zipfile.ZIP_STORED if arc.endswith((".h5", ".tflite", ".npz")) else zipfile.ZIP_DEFLATED
            zf.writestr(entry, data, compress_type=method)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(wheel, 0o644 & ~umask)  # the temporary file was private to this user
    return {"wheel": str(wheel), "name": name, "distribution": dist, "version": version,
            "licence": licence, "task": b.task, "bytes": wheel.stat().st_size, "files": len(files)}
