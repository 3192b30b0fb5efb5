"""Read and write IDX files, the format MNIST and its relatives ship in.

An IDX file is a 4-byte magic number — two zero bytes, a type code, the number of dimensions —
then one big-endian uint32 per dimension, then the elements in C order, big-endian. Files ending in
``.gz`` are gzip-compressed. The reader checks everything the header promises against what the
file holds and raises :class:`IDXFormatError`, naming the file, when they disagree. An
uncompressed file's size is compared with the header before anything is allocated; a gzip
stream's size is unknown until it ends, so its payload is read in growing steps and a header that
promises more than the stream holds is found before memory for the promise is allocated. Either
way the data are never held in memory twice.
"""

from __future__ import annotations

import gzip
import math
import os
import sys
import zlib
from pathlib import Path

import numpy as np

# IDX type code -> big-endian dtype of the stored elements.
IDX_TYPES: dict[int, np.dtype] = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_CODE_OF = {dtype.newbyteorder("="): code for code, dtype in IDX_TYPES.items()}
_CHUNK = 1 << 20
_FIRST_STEP = 16 << 20


class IDXFormatError(ValueError):
    """A file is not a valid IDX file; the message names the file and what is wrong."""


def _open(path: Path, mode: str, compressed: bool):
    return gzip.open(path, mode) if compressed else open(path, mode)


def _read_exactly(stream, count: int) -> bytes:
    data = stream.read(count)
    return data if data is not None else b""


def _read_into(stream, buffer: memoryview) -> int:
    """Fill ``buffer`` from ``stream`` in chunks; return how many bytes arrived."""
    filled = 0
    while filled < len(buffer):
        n = stream.readinto(buffer[filled : filled + _CHUNK])
        if not n:
            break
        filled += n
    return filled


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file (plain or ``.gz``) into an array in native byte order.

    Returns an array of the file's shape and element type (uint8, int8, int16, int32, float32 or
    float64). Raises :class:`IDXFormatError` for a wrong magic number, an unknown type code, or a
    payload shorter or longer than the dimensions promise (a truncated gzip stream included), and
    ``FileNotFoundError`` for a missing file.
    """
    path = Path(path)
    try:
        with _open(path, "rb", path.suffix == ".gz") as stream:
            return _read_stream(path, stream)
    except IDXFormatError:
        raise
    except (EOFError, gzip.BadGzipFile, zlib.error) as err:
        raise IDXFormatError(
            f"{path}: damaged gzip stream ({err}); download the file again"
        ) from err


def _read_stream(path: Path, stream) -> np.ndarray:
    magic = _read_exactly(stream, 4)
    if len(magic) < 4:
        raise IDXFormatError(f"{path}: not an IDX file (only {len(magic)} bytes, no header)")
    if magic[0] != 0 or magic[1] != 0:
        raise IDXFormatError(
            f"{path}: not an IDX file (magic number 0x{magic.hex()} does not start with two zero bytes)"
        )
    code, ndim = magic[2], magic[3]
    if code not in IDX_TYPES:
        known = ", ".join(f"0x{c:02X}" for c in IDX_TYPES)
        raise IDXFormatError(f"{path}: unknown IDX type code 0x{code:02X} (known: {known})")
    if ndim == 0:
        raise IDXFormatError(f"{path}: IDX header declares zero dimensions")
    header = _read_exactly(stream, 4 * ndim)
    if len(header) < 4 * ndim:
        raise IDXFormatError(f"{path}: truncated header ({ndim} dimensions declared)")
    shape = tuple(int(d) for d in np.frombuffer(header, dtype=">u4"))
    stored = IDX_TYPES[code]
    expected = math.prod(shape) * stored.itemsize  # exact: no int64 overflow for absurd shapes
    _check_plain_size(path, stream, 4 + 4 * ndim, expected, shape)
    native = stored.newbyteorder("=")
    if path.suffix == ".gz":
        buffer = _read_growing(stream, expected)
    else:
        buffer = np.empty(expected, dtype=np.uint8)  # the size on disk matched: safe to allocate
        buffer = buffer[: _read_into(stream, memoryview(buffer))]
    got = len(buffer)
    if got < expected:
        raise IDXFormatError(
            f"{path}: truncated: the header promises {expected} bytes of data for shape {shape}, "
            f"the file holds {got}"
        )
    extra = _read_exactly(stream, 1)
    if extra:
        raise IDXFormatError(
            f"{path}: {expected} bytes of data expected for shape {shape}, but more bytes follow"
        )
    array = np.frombuffer(buffer, dtype=native).reshape(shape)
    if stored.itemsize > 1 and sys.byteorder == "little":
        array.byteswap(inplace=True)
    return array


def _read_growing(stream, expected: int) -> bytearray:
    """Up to ``expected`` bytes of ``stream`` into a bytearray that grows (doubling, from 16 MiB)
    only as data arrive: memory follows what the stream holds, not what its header promises."""
    buffer = bytearray(min(expected, _FIRST_STEP))
    filled = 0
    while True:
        filled += _read_into(stream, memoryview(buffer)[filled:])
        if filled < len(buffer) or len(buffer) == expected:
            break
        buffer.extend(bytes(min(len(buffer), expected - len(buffer))))
    del buffer[filled:]
    return buffer


def _check_plain_size(path: Path, stream, header_bytes: int, expected: int, shape) -> None:
    """Compare the size on disk with the header before allocating anything: exactly for an
    uncompressed file; for a gzip file, against what deflate can hold (at most 1032 bytes per
    byte stored) and the trailer's size, confirmed by counting the stream when they disagree."""
    if path.suffix == ".gz":
        _check_gzip_size(path, header_bytes, expected, shape)
        return
    actual = path.stat().st_size - header_bytes
    if actual < expected:
        raise IDXFormatError(
            f"{path}: truncated: the header promises {expected} bytes of data, the file holds {actual}"
        )
    if actual > expected:
        raise IDXFormatError(
            f"{path}: {actual - expected} extra bytes after the {expected} bytes of data"
        )


_DEFLATE_MAX_RATIO = 1032  # deflate's limit: 258 bytes from a 2-bit code, 1032 per byte


def _check_gzip_size(path: Path, header_bytes: int, expected: int, shape) -> None:
    stored = path.stat().st_size
    if expected + header_bytes > stored * _DEFLATE_MAX_RATIO:
        raise IDXFormatError(
            f"{path}: truncated: the header promises {expected} bytes of data for shape {shape}, "
            f"more than a gzip file of {stored} bytes can hold"
        )
    with open(path, "rb") as raw:  # the trailer: the uncompressed size modulo 2**32 ...
        raw.seek(max(stored - 4, 0))
        trailer = int.from_bytes(raw.read(4), "little")
    if trailer == (header_bytes + expected) % 2**32:
        return
    total = 0  # ... is only the last member's: count the whole stream, keeping nothing
    with gzip.open(path, "rb") as stream:
        while chunk := stream.read(_CHUNK):
            total += len(chunk)
            if total > header_bytes + expected:
                break
    if total < header_bytes + expected:
        raise IDXFormatError(
            f"{path}: truncated: the header promises {expected} bytes of data for shape {shape}, "
            f"the file holds {total - header_bytes}"
        )
    if total > header_bytes + expected:
        raise IDXFormatError(
            f"{path}: {expected} bytes of data expected for shape {shape}, but more bytes follow"
        )


def write_idx(path: str | os.PathLike, array: np.ndarray) -> None:
    """Write ``array`` as an IDX file (gzip-compressed when ``path`` ends in ``.gz``).

    The element type must be one IDX knows: uint8, int8, int16, int32, float32 or float64 (any byte
    order); at least one dimension, each below 2**32. The file is written under a temporary name
    and renamed when complete, so a crash never leaves a half-written file.
    """
    path = Path(path)
    array = np.asarray(array)
    native = array.dtype.newbyteorder("=")
    if native not in _CODE_OF:
        raise ValueError(
            f"{path}: IDX cannot store dtype {array.dtype}; use uint8, int8, int16, int32, "
            "float32 or float64"
        )
    if array.ndim == 0 or array.ndim > 255:
        raise ValueError(f"{path}: IDX needs 1 to 255 dimensions, got {array.ndim}")
    code = _CODE_OF[native]
    header = bytes([0, 0, code, array.ndim]) + np.asarray(array.shape, dtype=">u4").tobytes()
    payload = np.ascontiguousarray(array, dtype=IDX_TYPES[code])
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with _open(tmp, "wb", path.suffix == ".gz") as stream:
            stream.write(header)
            stream.write(memoryview(payload.reshape(-1).view(np.uint8)))
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
