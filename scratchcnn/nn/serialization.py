"""Safe, atomic save and load of models (and of any named arrays plus JSON metadata).

A model file is one ``.npz`` archive holding the parameters as plain arrays and, under the key
``__meta__``, a JSON document: the format name and version and the architecture. It is read with
``allow_pickle=False``, so loading a file never runs code, and written to a temporary file that is
renamed into place only when complete, so a crash never leaves a half-written model behind.
"""

from __future__ import annotations

import json
import os
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from scratchcnn.nn.layers import LAYER_TYPES
from scratchcnn.nn.model import Sequential

MODEL_FORMAT = "scratchcnn-model"
FORMAT_VERSION = 1
_META_KEY = "__meta__"
_ZIP_MAGIC = b"PK\x03\x04"


class ModelFileError(ValueError):
    """A model or checkpoint file that cannot be read: missing, truncated, foreign or unsafe."""


def save_arrays(path, arrays: dict[str, np.ndarray], meta: dict) -> Path:
    """Write ``arrays`` and the JSON-able ``meta`` to ``path`` (.npz) atomically; return the path.

    The data go to a temporary file in the same directory, are flushed to disk, then renamed over
    ``path``: readers see the old file or the new one, never a mix.
    """
    path = Path(path)
    if _META_KEY in arrays:
        raise ValueError(f"array name {_META_KEY!r} is reserved")
    directory = path.parent if str(path.parent) else Path(".")
    try:
        directory.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    except OSError as err:
        raise OSError(f"{path}: cannot write here ({err.strerror or err})") from err
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays, **{_META_KEY: np.array(json.dumps(meta))})
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    return path


def load_arrays(path, expected_format: str) -> tuple[dict[str, np.ndarray], dict]:
    """Read an archive written by :func:`save_arrays`; return (arrays, meta).

    Raises :class:`ModelFileError` naming ``path`` for a missing, truncated or foreign file, a
    pickled object inside, or a format other than ``expected_format``.
    """
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"{path}: no such file")
    with open(path, "rb") as f:
        head = f.read(4)
    if head != _ZIP_MAGIC:
        raise ModelFileError(f"{path}: not a {expected_format} file (not an .npz archive)")
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {name: archive[name] for name in archive.files}
    except ValueError as err:  # numpy refuses object arrays without allow_pickle
        raise ModelFileError(
            f"{path}: refuses to load: the archive holds a pickled object (unsafe; {err})"
        ) from err
    except (zipfile.BadZipFile, EOFError, OSError, KeyError) as err:
        raise ModelFileError(f"{path}: truncated or corrupt archive ({err})") from err
    if _META_KEY not in arrays:
        raise ModelFileError(f"{path}: not a {expected_format} file (no {_META_KEY} entry)")
    try:
        meta = json.loads(str(arrays.pop(_META_KEY)))
    except json.JSONDecodeError as err:
        raise ModelFileError(f"{path}: corrupt metadata ({err})") from err
    if not isinstance(meta, dict) or meta.get("format") != expected_format:
        found = meta.get("format") if isinstance(meta, dict) else None
        raise ModelFileError(f"{path}: not a {expected_format} file (format is {found!r})")
    if meta.get("format_version") != FORMAT_VERSION:
        raise ModelFileError(
            f"{path}: format version {meta.get('format_version')!r} is not supported "
            f"(this scratchcnn reads version {FORMAT_VERSION})"
        )
    return arrays, meta


def model_from_config(config: dict, source: str = "config") -> Sequential:
    """Rebuild an untrained :class:`Sequential` from :meth:`Sequential.get_config` output."""
    layers = []
    try:
        specs, input_shape, dtype = config["layers"], config["input_shape"], config["dtype"]
    except (KeyError, TypeError) as err:
        raise ModelFileError(f"{source}: architecture lacks {err}") from err
    for i, spec in enumerate(specs):
        name = spec.get("class")
        if name not in LAYER_TYPES:
            raise ModelFileError(
                f"{source}: layer {i} has unknown type {name!r} "
                f"(known: {', '.join(sorted(LAYER_TYPES))})"
            )
        try:
            layers.append(LAYER_TYPES[name](**spec.get("config", {})))
        except (TypeError, ValueError) as err:
            raise ModelFileError(f"{source}: layer {i} ({name}) has a bad config: {err}") from err
    try:
        return Sequential(layers, input_shape=input_shape, seed=0, dtype=dtype)
    except (TypeError, ValueError) as err:
        raise ModelFileError(f"{source}: architecture does not build: {err}") from err


def model_state(model: Sequential) -> dict[str, np.ndarray]:
    """The model's parameters by name (``layers.<i>.<name>``), as arrays."""
    return {name: param.data for name, param in model.named_parameters()}


def load_model_state(model: Sequential, arrays: dict[str, np.ndarray], source: str) -> None:
    """Copy ``arrays`` into the model's parameters, checking names, shapes and dtypes."""
    for name, param in model.named_parameters():
        if name not in arrays:
            raise ModelFileError(f"{source}: missing parameter {name!r}")
        value = arrays[name]
        if value.shape != param.data.shape:
            raise ModelFileError(
                f"{source}: parameter {name!r} has shape {value.shape}, "
                f"the architecture needs {param.data.shape}"
            )
        param.data = value.astype(param.data.dtype, copy=True)
        param.grad = np.zeros_like(param.data)


def save_model(model: Sequential, path, extra: dict | None = None) -> Path:
    """Save ``model`` (architecture and weights) to ``path`` atomically; return the path.

    ``extra`` is JSON-able information kept beside the architecture (e.g. training metrics).
    """
    meta = {
        "format": MODEL_FORMAT,
        "format_version": FORMAT_VERSION,
        "architecture": model.get_config(),
        "extra": extra or {},
    }
    return save_arrays(path, model_state(model), meta)


def load_model(path) -> Sequential:
    """Load a model saved by :func:`save_model`; errors name the file and what is wrong."""
    arrays, meta = load_arrays(path, MODEL_FORMAT)
    model = model_from_config(meta.get("architecture"), source=str(path))
    load_model_state(model, arrays, source=str(path))
    model.metadata = meta.get("extra", {})
    return model
