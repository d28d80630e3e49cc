"""Exporting bundles to other forms.

``bundle`` format: a copy of a bundle, optionally with float16 weights (half
the size; the CLI reports the size, and ``evaluate`` on both shows the
quality change).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from lstmtext import bundle as bundle_io
from lstmtext.errors import UsageError
from lstmtext.io import atomic_directory
from lstmtext.weights import load_arrays, save_arrays

FORMATS = ("bundle",)


def export_bundle(model: str | Path, output: str | Path, dtype: str = "float32") -> dict:
    """Copy a bundle to ``output`` with weights stored as ``dtype``.

    Training state (optimizer, trainer) is left out. Returns sizes in bytes.
    """
    if dtype not in ("float32", "float16"):
        raise UsageError(f"--dtype must be float32 or float16, got '{dtype}'")
    b = bundle_io.read(model)
    out = Path(output)
    if out.resolve() == b.path.resolve():
        raise UsageError("--output must differ from the model path")
    arrays = load_arrays(b.file("weights.h5"))
    with atomic_directory(out) as tmp:
        for item in b.path.iterdir():
            if item.name in ("weights.h5", "optimizer.h5", "trainer.json") or item.name.startswith("."):
                continue
            if item.is_dir():
                shutil.copytree(item, tmp / item.name)
            else:
                shutil.copy2(item, tmp / item.name)
        save_arrays(arrays, tmp / "weights.h5", dtype)
        cfg = json.loads((tmp / bundle_io.CONFIG).read_text())
        if "weights_dtype" in cfg["config"]:
            cfg["config"]["weights_dtype"] = dtype
        (tmp / bundle_io.CONFIG).write_text(json.dumps(cfg, indent=2) + "\n")
    size = lambda p: sum(f.stat().st_size for f in Path(p).rglob("*") if f.is_file())  # noqa: E731
    return {"source_bytes": size(b.path), "output_bytes": size(out), "dtype": dtype, "output": str(out)}
