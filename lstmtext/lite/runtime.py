"""Open a bundle's LiteRT parts (``ai-edge-litert``; no TensorFlow import)."""

from __future__ import annotations

import importlib.util
import json
import os
import threading
import time
from pathlib import Path

import numpy as np

from lstmtext.errors import BundleError

DIR = "lite"
MANIFEST = "lite/manifest.json"
FORMAT = "lstmtext-lite"
FORMAT_VERSION = 1
QUANTIZATIONS = ("none", "float16", "dynamic")
# Parts with a while loop (the sequence LSTMs of the tagger and the translator's
# encoder) grow tensors inside the loop, which the XNNPACK delegate failed to
# prepare for some batch shapes ("failed to delegate CONCATENATION node"):
# they run on LiteRT's built-in kernels.
LOOP_PARTS = frozenset({"emissions", "encode"})
# ``--runtime auto`` runs the tagger's and the translator's parts on batches of
# at most this many sentences (no h5py import: the fastest start) and the NumPy
# runtime on larger ones, which measured several times faster on whole files
# (benchmarks/RESULTS.md).
LITE_MAX_BATCH = 8
# The tagger's LiteRT part (one sequence LSTM op, built-in kernels) beat the
# NumPy runtime only on small inputs: one sentence of 10-25 words or residues
# ran in half NumPy's time, at 80-100 padded tokens a batch (8 x 10, 1 x 100)
# the two were even, and beyond that NumPy was faster, up to 2x (1 x 800) and
# 5-7x (8 x 800), word or character input alike (benchmarks/RESULTS.md,
# "LiteRT against NumPy by input size"). ``auto`` tags batches of at most this
# many padded tokens with LiteRT.
LITE_MAX_CELLS = 64


def available() -> bool:
    """Whether the LiteRT interpreter (``pip install ai-edge-litert``) is installed."""
    return importlib.util.find_spec("ai_edge_litert") is not None


def sha256_file(path: Path) -> str:
    """SHA-256 of a file's bytes, hex."""
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


DIGEST_CACHE_ENTRIES = 256
SETTLE_SECONDS = 2.0


def digest_cache_path() -> Path:
    """Where digests of checked files are remembered (``$XDG_CACHE_HOME/lstmtext/digests.json``)."""
    root = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(root) / "lstmtext" / "digests.json"


def file_digest(path: Path) -> str:
    """SHA-256 of a file, hex (ties lite parts to the weights they came from).

    Like git's index, a digest is remembered with the file's size,
    modification time (ns) and inode, and reused while all three are
    unchanged: the second start of a model skips reading tens of MB again
    (about 40 ms for ``models/lm-ptb``). Files modified in the last
    :data:`SETTLE_SECONDS` are not remembered (they may still be written).
    The cache is best effort: an unreadable or unwritable one costs only the
    re-hash.
    """
    path = Path(path)
    st = path.stat()
    key, stamp = str(path.resolve()), [st.st_size, st.st_mtime_ns, st.st_ino]
    cache_path = digest_cache_path()
    try:
        cache = json.loads(cache_path.read_text())
        if not isinstance(cache, dict):
            cache = {}
    except (OSError, ValueError):
        cache = {}
    hit = cache.get(key)
    if isinstance(hit, list) and hit[:3] == stamp and isinstance(hit[-1], str):
        return hit[-1]
    digest = sha256_file(path)
    if time.time() - st.st_mtime_ns / 1e9 > SETTLE_SECONDS:
        cache.pop(key, None)
        cache[key] = stamp + [digest]  # newest last; the oldest are dropped
        cache = dict(list(cache.items())[-DIGEST_CACHE_ENTRIES:])
        try:
            cache_path.parent.mkdir(parents=True, exist_ok=True)
            tmp = cache_path.with_name(f".{cache_path.name}.{os.getpid()}.tmp")
            tmp.write_text(json.dumps(cache))
            os.replace(tmp, cache_path)
        except OSError:
            pass
    return digest


class LiteFunction:
    """One LiteRT model (its single signature) called with named NumPy arrays.

    Inputs whose shape changes between calls are resized (batch, length).
    Calls from several threads (a tagger's batches) take turns: the
    interpreter runs one at a time.
    """

    def __init__(self, path: Path, inputs: list[str], outputs: list[str], delegate: bool = True):
        from ai_edge_litert.interpreter import Interpreter, OpResolverType

        self.path = path
        resolver = OpResolverType.AUTO if delegate else OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
        try:
            self.interpreter = Interpreter(model_path=str(path), num_threads=1,
                                           experimental_op_resolver_type=resolver)
            signatures = self.interpreter.get_signature_list()
        except (ValueError, RuntimeError) as exc:
            raise BundleError(f"{path}: not a usable LiteRT model ({str(exc).splitlines()[0][:160]})") from None
        if len(signatures) != 1:
            raise BundleError(f"{path}: expected one signature, found {len(signatures)}")
        (self.key, sig), = signatures.items()
        if sorted(sig["inputs"]) != sorted(inputs) or sorted(sig["outputs"]) != sorted(outputs):
            raise BundleError(f"{path}: signature {sig} does not match this lstmtext's "
                              f"(inputs {sorted(inputs)}, outputs {sorted(outputs)}); rebuild it with "
                              "lstmtext export")
        self.runner = self.interpreter.get_signature_runner(self.key)
        self.called = False
        self._lock = threading.Lock()

    def __call__(self, **inputs: np.ndarray) -> dict[str, np.ndarray]:
        with self._lock:
            if self.called:
                return self.runner(**inputs)
            from lstmtext.backend import silenced_stderr

            # The first call applies the XNNPACK delegate, which announces itself
            # on stderr ("INFO: Created TensorFlow Lite XNNPACK delegate for CPU.").
            with silenced_stderr():
                out = self.runner(**inputs)
            self.called = True
            return out


def load_parts(bundle, parts: dict[str, tuple[list[str], list[str]]]) -> tuple[dict[str, LiteFunction], dict] | None:
    """The bundle's LiteRT parts, or ``None`` when it has none (or LiteRT is not installed).

    Args:
        bundle: A :class:`~lstmtext.bundle.Bundle`.
        parts: Part name -> (input names, output names) the caller expects.

    Returns:
        ``(functions by part name, manifest)``.

    Raises:
        BundleError: a malformed manifest, a missing or corrupt part, a part
            of another shape, or parts built from other weights.
    """
    if not bundle.file(MANIFEST).is_file() or not available():
        return None
    manifest = bundle.json(MANIFEST)
    where = bundle.file(MANIFEST)
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BundleError(f"{where}: not an lstmtext lite manifest")
    if not isinstance(manifest.get("version"), int) or manifest["version"] > FORMAT_VERSION:
        raise BundleError(f"{where}: unsupported version {manifest.get('version')!r}; upgrade lstmtext")
    if manifest.get("task") != bundle.task:
        raise BundleError(f"{where}: parts for task {manifest.get('task')!r}, bundle is {bundle.task!r}")
    files = manifest.get("files")
    if not isinstance(files, dict):
        raise BundleError(f"{where}: no 'files'")
    weights = bundle.file("weights.h5")
    if weights.is_file() and file_digest(weights) != manifest.get("weights_sha256"):
        raise BundleError(f"{where}: the lite parts were built from other weights than {weights}; rebuild "
                          "them with: lstmtext export MODEL --format litert --output NEW")
    out = {}
    for name, (inputs, outputs) in parts.items():
        entry = files.get(name)
        if not isinstance(entry, dict) or not isinstance(entry.get("file"), str):
            raise BundleError(f"{where}: no part '{name}'")
        path = bundle.file(f"{DIR}/{entry['file']}")
        if not path.is_file():
            raise BundleError(f"{path}: missing (named in {where})")
        if file_digest(path) != entry.get("sha256"):
            raise BundleError(f"{path}: corrupt (its digest differs from {where})")
        # int8 ("dynamic") parts run on LiteRT's built-in hybrid kernels, which read
        # the int8 weights as they are: XNNPACK unpacks them to float32 first
        # (models/lm-ptb's step: 89 against 75 MB peak, 3.4 against 1.7 ms a step).
        delegate = name not in LOOP_PARTS and manifest.get("quantize") != "dynamic"
        out[name] = LiteFunction(path, inputs, outputs, delegate=delegate)
    return out, manifest


def load_arrays(bundle, name: str) -> dict[str, np.ndarray]:
    """Plain arrays stored beside the parts (``lite/<name>.npz``; no pickles)."""
    path = bundle.file(f"{DIR}/{name}.npz")
    try:
        with np.load(path, allow_pickle=False) as data:
            return {k: data[k] for k in data.files}
    except (OSError, ValueError) as exc:
        raise BundleError(f"{path}: unreadable ({str(exc)[:160]})") from None


def note(message: str) -> None:
    """A one-line note on standard error (runtime fallbacks)."""
    import sys

    print(message, file=sys.stderr)


def choose(bundle, runtime: str, parts: dict, note=None):
    """Resolve ``--runtime``: the opened parts for ``lite`` and ``auto``, else ``None``.

    ``lite`` without parts (or without LiteRT installed) falls back to the
    NumPy runtime with a one-line ``note``; ``auto`` falls back silently.
    """
    if runtime not in ("auto", "lite"):
        return None
    loaded = load_parts(bundle, parts)
    if loaded is None and runtime == "lite" and note is not None:
        why = "ai-edge-litert is not installed" if not available() else "the bundle has no lite parts"
        note(f"note: {why}; using the NumPy runtime (build parts with: lstmtext export MODEL --format litert)")
    return loaded
