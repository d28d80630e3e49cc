"""Weights files: one HDF5 dataset per variable, keyed by the variable's path.

Unlike pickles this holds numbers only, and unlike Keras' own weights format
it can be read with h5py and numpy alone, which the light inference path uses
to run a model without importing TensorFlow. Weights may be stored as float16
to halve a bundle's size; they are cast back to float32 on load.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from lstmtext.errors import BundleError

FILENAME = "weights.h5"


def save_arrays(arrays: dict[str, np.ndarray], path: Path, dtype: str = "float32") -> None:
    """Write named arrays; floating arrays are stored as ``dtype``."""
    import io

    import h5py

    # Built in memory and written by Python: a full disk then raises a plain
    # OSError, whereas a write failing inside HDF5 can crash the process.
    buffer = io.BytesIO()
    with h5py.File(buffer, "w") as f:
        for name, value in arrays.items():
            value = np.asarray(value)
            if np.issubdtype(value.dtype, np.floating):
                value = value.astype(dtype)
            f.create_dataset(name, data=value)
    Path(path).write_bytes(buffer.getvalue())


def load_arrays(path: Path) -> dict[str, np.ndarray]:
    """Read every array of a weights file, floats as float32.

    The file's header is checked first (:func:`lstmtext.bundle.check_h5`).
    """
    import h5py

    from lstmtext.bundle import check_h5

    check_h5(Path(path))

    out: dict[str, np.ndarray] = {}
    try:
        with h5py.File(path, "r") as f:
            def visit(name, obj):
                if isinstance(obj, h5py.Dataset):
                    value = obj[()]
                    if np.issubdtype(value.dtype, np.floating):
                        value = value.astype(np.float32)
                    out[name] = value
            f.visititems(visit)
    except (OSError, KeyError) as exc:
        raise BundleError(f"{path}: unreadable weights file ({exc})") from None
    return out


def save_model_weights(model, path: Path, dtype: str = "float32") -> None:
    """Save every variable of a Keras model (trainable or not) by path."""
    save_arrays({v.path: np.asarray(v.numpy() if hasattr(v, "numpy") else v) for v in model.weights},
                path, dtype)


def assign_model_weights(model, arrays: dict[str, np.ndarray], source: str = "") -> None:
    """Assign arrays to a built Keras model's variables, checking names and shapes."""
    for v in model.weights:
        if v.path not in arrays:
            raise BundleError(f"{source}: weights file lacks variable '{v.path}'")
        value = arrays[v.path]
        if tuple(value.shape) != tuple(v.shape):
            raise BundleError(
                f"{source}: variable '{v.path}' has shape {tuple(value.shape)}, model expects {tuple(v.shape)}"
            )
        v.assign(value.astype(v.dtype) if hasattr(value, "astype") else value)
