"""Safe, atomic save and load of models (and of any named arrays plus JSON metadata).

A model file is one ``.npz`` archive holding the parameters as plain arrays and, under the key
``__meta__``, a JSON document: the format name and version and the architecture. It is read with
``allow_pickle=False``, so loading a file never runs code, and written through
:func:`scratchcnn.files.atomic_write`, so a crash never leaves a half-written model behind.

Reading trusts nothing in the file, and checks before it allocates: every archive member must be
a ``.npy`` array of a plain numeric type whose header agrees with the archive's declared sizes
(no compression bombs: :data:`MAX_INFLATION`, :data:`MAX_ARCHIVE_BYTES`); the architecture must be
well-formed JSON whose numbers are sane (:data:`MAX_CONFIG_NUMBER`, :data:`MAX_INPUT_ELEMENTS`),
and is built only as far as the parameters the file declares; each member's name, shape and type
must be what the architecture needs before any data are inflated; the weights must be finite.
Anything else is a :class:`ModelFileError` naming the file and the problem.
"""

from __future__ import annotations

import json
import math
import struct
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np

from scratchcnn.files import atomic_write
from scratchcnn.nn.layers import LAYER_TYPES, Layer
from scratchcnn.nn.model import Sequential

MODEL_FORMAT = "scratchcnn-model"
FORMAT_VERSION = 1
_META_KEY = "__meta__"
_ZIP_MAGIC = b"PK\x03\x04"
_ZIP_ENCRYPTED, _ZIP_STRONG_ENCRYPTION = 0x1, 0x40  # general-purpose flag bits of a zip entry

# Limits on what a file may declare, checked before anything of that size is allocated.
MAX_ARCHIVE_BYTES = 1 << 30  # all arrays of one archive together, uncompressed
MAX_META_BYTES = 16 << 20  # the JSON document
MAX_INFLATION = 100  # a member above 1 MiB may inflate at most this many times its stored size
MAX_CONFIG_NUMBER = 1 << 24  # any number in a layer's configuration (filters, units, sizes)
MAX_INPUT_ELEMENTS = 1 << 24  # one sample of the model's input
MAX_PARAMETERS = MAX_ARCHIVE_BYTES // 4  # parameters model_from_config builds by default
_SMALL_MEMBER = 1 << 20
_FLOAT_DTYPES = ("float32", "float64")


class ModelFileError(ValueError):
    """A model or checkpoint file that cannot be read: missing, truncated, foreign or unsafe."""


def save_arrays(path, arrays: dict[str, np.ndarray], meta: dict) -> Path:
    """Write ``arrays`` and the JSON-able ``meta`` to ``path`` (.npz) atomically; return the path.

    See :func:`scratchcnn.files.atomic_write`: readers see the old file or the new one, never a
    mix; a symlink is followed; permissions are kept (new files: the umask); only a regular file
    is replaced.
    """
    if _META_KEY in arrays:
        raise ValueError(f"array name {_META_KEY!r} is reserved")
    document = np.array(json.dumps(meta))
    return atomic_write(path, lambda stream: np.savez(stream, **arrays, **{_META_KEY: document}))


# -- reading ------------------------------------------------------------------------------------
class ArrayHeader:
    """What a member's ``.npy`` header declares: shape and dtype (nothing is inflated yet)."""

    __slots__ = ("dtype", "shape")

    def __init__(self, shape: tuple[int, ...], dtype: np.dtype):
        self.shape, self.dtype = shape, dtype

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    def __repr__(self) -> str:
        return f"ArrayHeader({self.shape}, {self.dtype})"


def _fail(path, problem: str) -> ModelFileError:
    return ModelFileError(f"{path}: {problem}")


def _read_header(path, zf: zipfile.ZipFile, info: zipfile.ZipInfo, key: str) -> ArrayHeader:
    """Read one member's .npy header (a few hundred bytes) and check it against the archive."""
    try:
        with zf.open(info) as stream:
            version = np.lib.format.read_magic(stream)
            if version == (1, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_1_0(stream)
            elif version == (2, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_2_0(stream)
            else:
                raise _fail(path, f"array {key!r} has .npy format version {version}")
            offset = stream.tell()
    except ModelFileError:
        raise
    except Exception as err:  # noqa: BLE001 - numpy's header parser raises SyntaxError, TokenError, ...
        raise _fail(path, f"array {key!r} is not a valid .npy array ({err})") from err
    if dtype.hasobject:
        raise _fail(path, f"refuses to load: array {key!r} holds a pickled object (unsafe)")
    if dtype.kind not in "biufU" or dtype.fields is not None or dtype.subdtype is not None:
        raise _fail(path, f"array {key!r} has unsupported type {dtype}")
    if fortran and len(shape) > 1:
        raise _fail(path, f"array {key!r} is in Fortran order (scratchcnn writes C order)")
    nbytes = math.prod(shape) * dtype.itemsize
    if offset + nbytes != info.file_size:
        raise _fail(
            path,
            f"array {key!r} declares shape {shape} of {dtype} ({nbytes} bytes), but its archive "
            f"entry holds {info.file_size - offset} bytes of data",
        )
    return ArrayHeader(tuple(shape), dtype)


def _read_member(path, zf: zipfile.ZipFile, info: zipfile.ZipInfo, key: str) -> np.ndarray:
    try:
        with zf.open(info) as stream:
            return np.lib.format.read_array(stream, allow_pickle=False)
    except Exception as err:  # noqa: BLE001 - whatever the parser of untrusted bytes raises
        raise _fail(path, f"array {key!r} is truncated or corrupt ({err})") from err


def _archive_headers(path, zf: zipfile.ZipFile) -> dict[str, tuple[zipfile.ZipInfo, ArrayHeader]]:
    members: dict[str, tuple[zipfile.ZipInfo, ArrayHeader]] = {}
    total = 0
    for info in zf.infolist():
        if not info.filename.endswith(".npy") or info.is_dir():
            raise _fail(path, f"archive member {info.filename!r} is not a .npy array")
        key = info.filename[: -len(".npy")]
        if key in members:
            raise _fail(path, f"archive holds {info.filename!r} twice")
        if info.flag_bits & (_ZIP_ENCRYPTED | _ZIP_STRONG_ENCRYPTION):
            raise _fail(path, f"array {key!r} is encrypted (scratchcnn never encrypts a file)")
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise _fail(
                path, f"array {key!r} uses an unsupported compression (method {info.compress_type})"
            )
        if info.file_size > _SMALL_MEMBER and info.file_size > MAX_INFLATION * max(
            info.compress_size, 1
        ):
            raise _fail(
                path,
                f"array {key!r} would inflate from {info.compress_size:,} to {info.file_size:,} "
                f"bytes (more than {MAX_INFLATION}x: a compression bomb?)",
            )
        limit = MAX_META_BYTES if key == _META_KEY else MAX_ARCHIVE_BYTES
        total += info.file_size
        if info.file_size > limit or total > MAX_ARCHIVE_BYTES:
            raise _fail(
                path,
                f"declares {max(info.file_size, total):,} bytes of arrays, over the "
                f"{limit:,}-byte limit",
            )
        members[key] = (info, _read_header(path, zf, info, key))
    return members


CheckHeaders = Callable[[dict, dict[str, ArrayHeader]], None]


def load_arrays(
    path, expected_format: str, check: CheckHeaders | None = None
) -> tuple[dict[str, np.ndarray], dict]:
    """Read an archive written by :func:`save_arrays`; return (arrays, meta).

    ``check(meta, headers)`` runs after the metadata and every member's header (an
    :class:`ArrayHeader` by name) have been read and before any array is inflated: it raises
    :class:`ModelFileError` when the file declares something its reader cannot use.

    Raises :class:`ModelFileError` naming ``path`` for a missing, truncated or foreign file, a
    pickled object inside, a member that is not a plain numeric array or inflates far beyond its
    stored size, or a format other than ``expected_format``.
    """
    return _read_archive(path, expected_format, check, read_arrays=True)


def read_meta(path, expected_format: str) -> tuple[dict, dict[str, ArrayHeader]]:
    """The metadata and the arrays' headers of an archive, with :func:`load_arrays`'s checks,
    without inflating any array (e.g. a checkpoint's run configuration before loading data)."""
    found = []
    _read_archive(path, expected_format, lambda meta, headers: found.append((meta, headers)), False)
    return found[0]


def _read_archive(path, expected_format: str, check, read_arrays: bool):
    path = Path(path)
    if path.is_dir():
        raise _fail(path, f"is a directory, not a {expected_format} file")
    if not path.is_file():
        raise _fail(path, "no such file" if not path.exists() else "not a regular file")
    try:
        with open(path, "rb") as f:
            head = f.read(4)
    except OSError as err:
        raise _fail(path, f"cannot be read ({err.strerror or err})") from err
    if head != _ZIP_MAGIC:
        raise _fail(path, f"not a {expected_format} file (not an .npz archive)")
    try:
        with zipfile.ZipFile(path) as zf:
            members = _archive_headers(path, zf)
            if _META_KEY not in members:
                raise _fail(path, f"not a {expected_format} file (no {_META_KEY} entry)")
            info, header = members.pop(_META_KEY)
            if header.dtype.kind != "U" or header.shape != ():
                raise _fail(path, f"{_META_KEY} is not a JSON text ({header.dtype} {header.shape})")
            meta = _parse_meta(path, str(_read_member(path, zf, info, _META_KEY)), expected_format)
            for key, (_, header) in members.items():
                if header.dtype.kind == "U":
                    raise _fail(path, f"array {key!r} holds text ({header.dtype}), not numbers")
            if check is not None:
                check(meta, {key: header for key, (_, header) in members.items()})
            if not read_arrays:
                return None
            arrays = {key: _read_member(path, zf, info, key) for key, (info, _) in members.items()}
    except ModelFileError:
        raise
    except (
        zipfile.BadZipFile,
        zipfile.LargeZipFile,
        EOFError,
        OSError,
        zlib.error,
        ValueError,
        struct.error,
    ) as err:
        raise _fail(path, f"truncated or corrupt archive ({err})") from err
    except (NotImplementedError, RuntimeError) as err:  # zipfile's words for features it lacks
        raise _fail(path, f"uses a zip feature scratchcnn never writes ({err})") from err
    return arrays, meta


def _parse_meta(path, text: str, expected_format: str) -> dict:
    try:
        meta = json.loads(text)
    except (ValueError, RecursionError) as err:
        raise _fail(path, f"corrupt metadata ({type(err).__name__}: {err})") from err
    if not isinstance(meta, dict) or meta.get("format") != expected_format:
        found = meta.get("format") if isinstance(meta, dict) else None
        raise _fail(path, f"not a {expected_format} file (format is {found!r})")
    if meta.get("format_version") != FORMAT_VERSION:
        raise _fail(
            path,
            f"format version {meta.get('format_version')!r} is not supported "
            f"(this scratchcnn reads version {FORMAT_VERSION})",
        )
    return meta


# -- architectures ------------------------------------------------------------------------------
class _OverBudget(ValueError):
    """Raised while building: the layers would draw more initial weights than allowed."""


class _BudgetedGenerator(np.random.Generator):
    """A seed-0 Generator that refuses to draw more than ``budget`` numbers in all: layers draw
    their initial weights from it, so an architecture declaring more parameters than its file
    holds is refused before its weights are allocated."""

    def __init__(self, budget: int, source: str, holder: str):
        super().__init__(np.random.PCG64(0))
        self.left: int | None = int(budget)
        self.source, self.holder = source, holder

    def _take(self, size) -> None:
        if self.left is None:  # the model is built: no limit on dropout masks, shuffling, ...
            return
        shape = () if size is None else np.atleast_1d(np.asarray(size, dtype=np.int64)).tolist()
        count = math.prod(shape)
        if count > self.left:
            raise _OverBudget(f"the architecture declares more parameters than {self.holder}")
        self.left -= count

    def uniform(self, low=0.0, high=1.0, size=None):
        self._take(size)
        return super().uniform(low, high, size)

    def normal(self, loc=0.0, scale=1.0, size=None):
        self._take(size)
        return super().normal(loc, scale, size)

    def standard_normal(self, size=None, dtype=np.float64, out=None):
        self._take(size if out is None else out.shape)
        return super().standard_normal(size, dtype, out)


def _check_config_value(value, where: str, depth: int = 0) -> None:
    """JSON values a layer's configuration may hold: finite numbers of sane size, short strings,
    booleans, null, and short flat lists of these."""
    if isinstance(value, bool) or value is None:
        return
    if isinstance(value, (int, float)):
        if not math.isfinite(value):
            raise ValueError(f"{where} is {value}")
        if abs(value) > MAX_CONFIG_NUMBER:
            raise ValueError(f"{where} is {value:g}, beyond the sanity limit {MAX_CONFIG_NUMBER:,}")
        return
    if isinstance(value, str):
        if len(value) > 200:
            raise ValueError(f"{where} is a string of {len(value)} characters")
        return
    if isinstance(value, list) and depth == 0 and len(value) <= 8:
        for i, item in enumerate(value):
            _check_config_value(item, f"{where}[{i}]", depth + 1)
        return
    raise ValueError(f"{where} is not a number, string, boolean or short list: {str(value)[:60]}")


def _check_architecture(config, source: str) -> tuple[list, tuple[int, ...], str]:
    """The architecture's structure and declared sizes, checked before anything is built."""
    if not isinstance(config, dict):
        raise ModelFileError(
            f"{source}: the architecture is not a JSON object ({type(config).__name__})"
        )
    missing = [k for k in ("layers", "input_shape", "dtype") if k not in config]
    if missing:
        raise ModelFileError(f"{source}: architecture lacks {', '.join(map(repr, missing))}")
    specs, input_shape, dtype = config["layers"], config["input_shape"], config["dtype"]
    if not isinstance(specs, list) or not specs or len(specs) > 1000:
        raise ModelFileError(f"{source}: architecture 'layers' must be a list of 1 to 1000 layers")
    if not (
        isinstance(input_shape, list)
        and 1 <= len(input_shape) <= 4
        and all(isinstance(d, int) and not isinstance(d, bool) and d >= 1 for d in input_shape)
    ):
        raise ModelFileError(
            f"{source}: 'input_shape' must be a list of 1 to 4 positive integers, got {str(input_shape)[:60]}"
        )
    if math.prod(input_shape) > MAX_INPUT_ELEMENTS:
        raise ModelFileError(
            f"{source}: 'input_shape' {input_shape} is over the limit of {MAX_INPUT_ELEMENTS:,} values per sample"
        )
    if dtype not in _FLOAT_DTYPES:
        raise ModelFileError(
            f"{source}: 'dtype' must be one of {', '.join(_FLOAT_DTYPES)}, got {str(dtype)[:40]!r}"
        )
    for i, spec in enumerate(specs):
        if not isinstance(spec, dict) or not isinstance(spec.get("class"), str):
            raise ModelFileError(f"{source}: layer {i} is not an object with a 'class' name")
        layer_config = spec.get("config", {})
        if not isinstance(layer_config, dict):
            raise ModelFileError(
                f"{source}: layer {i} ({spec['class']}) has a config that is not an object"
            )
        try:
            for key, value in layer_config.items():
                _check_config_value(value, f"{key!r}")
        except ValueError as err:
            raise ModelFileError(f"{source}: layer {i} ({spec['class']}): {err}") from err
    return specs, tuple(input_shape), dtype


def layer_types(custom_layers=None) -> dict[str, type[Layer]]:
    """The layer classes a saved architecture may name: the built-in ones and ``custom_layers``
    (your own, Keras's ``custom_objects``): classes of :class:`~scratchcnn.nn.layers.Layer`,
    found by their class name, or a dict from the saved name to the class."""
    if custom_layers is None:
        return dict(LAYER_TYPES)
    if isinstance(custom_layers, dict):
        custom = dict(custom_layers)
    elif isinstance(custom_layers, type):
        custom = {custom_layers.__name__: custom_layers}
    else:
        custom = {getattr(cls, "__name__", repr(cls)): cls for cls in custom_layers}
    for name, cls in custom.items():
        if not (isinstance(cls, type) and issubclass(cls, Layer)):
            raise TypeError(
                f"custom_layers: {name!r} must be a class derived from scratchcnn.Layer, got {cls!r}"
            )
    return {**LAYER_TYPES, **custom}


def model_from_config(
    config: dict,
    source: str = "config",
    custom_layers=None,
    *,
    max_parameters: int = MAX_PARAMETERS,
) -> Sequential:
    """Rebuild an untrained :class:`Sequential` from :meth:`Sequential.get_config` output.

    The configuration is checked before anything is built (structure, types, sane sizes), and
    building stops with :class:`ModelFileError` as soon as the layers would draw more than
    ``max_parameters`` initial weights. ``custom_layers``: your own layer classes the
    architecture names (see :func:`layer_types`).
    """
    known = layer_types(custom_layers)
    specs, input_shape, dtype = _check_architecture(config, source)
    layers = []
    for i, spec in enumerate(specs):
        name = spec["class"]
        if name not in known:
            raise ModelFileError(
                f"{source}: layer {i} has unknown type {name!r} "
                f"(known: {', '.join(sorted(known))}); if it is your own layer, pass its class: "
                f"load_model(path, custom_layers=[{name}])"
            )
        try:
            layers.append(known[name](**spec.get("config", {})))
        except (TypeError, ValueError) as err:
            raise ModelFileError(f"{source}: layer {i} ({name}) has a bad config: {err}") from err
    holder = (
        "the file holds" if max_parameters < MAX_PARAMETERS else f"the limit of {MAX_PARAMETERS:,}"
    )
    rng = _BudgetedGenerator(min(max_parameters, MAX_PARAMETERS), source, holder)
    try:
        model = Sequential(layers, input_shape=input_shape, rng=rng, dtype=dtype)
    except (TypeError, ValueError) as err:
        if isinstance(err, _OverBudget) or isinstance(err.__cause__, _OverBudget):
            raise ModelFileError(f"{source}: {err}") from err  # "layer 8 (Dense): ... declares"
        raise ModelFileError(f"{source}: architecture does not build: {err}") from err
    rng.left = None  # from here on the same draws as Sequential(seed=0) would make
    return model


# -- parameters ---------------------------------------------------------------------------------
def model_state(model: Sequential) -> dict[str, np.ndarray]:
    """The model's parameters by name (``layers.<i>.<name>``), as arrays."""
    return {name: param.data for name, param in model.named_parameters()}


def check_state_headers(
    model: Sequential, headers: dict[str, ArrayHeader], source: str, prefix: str = ""
) -> None:
    """Before inflating: the archive declares exactly the model's parameters (names under
    ``prefix``, shapes, floating-point types)."""
    wanted = dict(model.named_parameters())
    for name, param in wanted.items():
        header = headers.get(prefix + name)
        if header is None:
            raise ModelFileError(f"{source}: missing parameter {prefix + name!r}")
        if header.shape != param.data.shape:
            raise ModelFileError(
                f"{source}: parameter {prefix + name!r} has shape {header.shape}, "
                f"the architecture needs {param.data.shape}"
            )
        if header.dtype.kind != "f":
            raise ModelFileError(
                f"{source}: parameter {prefix + name!r} is {header.dtype}, not floating point"
            )
    extra = sorted(k for k in headers if k.startswith(prefix) and k[len(prefix) :] not in wanted)
    if extra:
        raise ModelFileError(
            f"{source}: holds {len(extra)} array(s) the architecture has no place for "
            f"({', '.join(map(repr, extra[:3]))})"
        )


def load_model_state(model: Sequential, arrays: dict[str, np.ndarray], source: str) -> None:
    """Copy ``arrays`` into the model's parameters, checking names, shapes, dtypes and that every
    value is finite (a NaN weight would make the model call every digit the same)."""
    for name, param in model.named_parameters():
        if name not in arrays:
            raise ModelFileError(f"{source}: missing parameter {name!r}")
        value = np.asarray(arrays[name])
        if value.shape != param.data.shape:
            raise ModelFileError(
                f"{source}: parameter {name!r} has shape {value.shape}, "
                f"the architecture needs {param.data.shape}"
            )
        if value.dtype.kind != "f":
            raise ModelFileError(
                f"{source}: parameter {name!r} is {value.dtype}, not floating point"
            )
        if not np.isfinite(value).all():
            raise ModelFileError(f"{source}: parameter {name!r} holds NaN or infinite values")
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


def load_model(path, custom_layers=None) -> Sequential:
    """Load a model saved by :func:`save_model`; errors name the file and what is wrong.

    Every check (see the module docstring) runs before the weights are inflated; a malformed,
    foreign, oversized or non-finite file raises :class:`ModelFileError`. A model holding your
    own layers needs their classes: ``custom_layers=[Scale]`` (or a dict from the saved class
    name to the class), as Keras's ``custom_objects``."""
    source = str(path)
    built: list[Sequential] = []

    def check(meta: dict, headers: dict[str, ArrayHeader]) -> None:
        declared = sum(h.size for h in headers.values())
        model = model_from_config(
            meta.get("architecture"), source, custom_layers, max_parameters=declared
        )
        check_state_headers(model, headers, source)
        built.append(model)

    arrays, meta = load_arrays(path, MODEL_FORMAT, check)
    model = built[0]
    load_model_state(model, arrays, source=source)
    extra = meta.get("extra", {})
    model.metadata = extra if isinstance(extra, dict) else {}
    return model
