"""Large scratch arrays reused from one batch to the next instead of freshly allocated.

A training step allocates tens of megabytes (im2col matrices, activations, their gradients) and
frees them again. The C library hands big blocks back to the operating system, so the next batch
page-faults all of it in again, zero-filled: measured here, that was a quarter of a step's time.

:func:`empty` keeps every array of 64 KiB or more that it hands out, and hands it out again only
when nothing else refers to it any more: the reference count says no caller, view or layer cache
holds it. An array a caller keeps is therefore never overwritten. The pool drops its unused arrays
when it would grow beyond ``MAX_BYTES``; :func:`clear` drops them all.
"""

from __future__ import annotations

import math
import sys

import numpy as np

MIN_BYTES = 1 << 16  # smaller arrays are cheap to allocate
MAX_BYTES = 512 << 20

_pool: dict[tuple, list[np.ndarray]] = {}
_held = 0  # bytes in the pool, free or in use

# References to an unused pooled array while empty() looks at it: the pool's list, the loop
# variable, and getrefcount's own argument.
_UNUSED = 3


def empty(shape, dtype) -> np.ndarray:
    """An uninitialized C-contiguous array of ``shape`` and ``dtype``, reused when possible."""
    global _held
    dtype = np.dtype(dtype)
    shape = tuple(shape)
    nbytes = dtype.itemsize * math.prod(shape)
    if nbytes < MIN_BYTES:
        return np.empty(shape, dtype)
    key = (shape, dtype)
    arrays = _pool.setdefault(key, [])
    for array in arrays:
        if sys.getrefcount(array) == _UNUSED:
            return array
    if _held + nbytes > MAX_BYTES:
        clear()
        arrays = _pool.setdefault(key, [])
    array = np.empty(shape, dtype)
    arrays.append(array)
    _held += nbytes
    return array


def empty_like(x: np.ndarray, dtype=None) -> np.ndarray:
    """Like ``np.empty_like(x)``: same shape, axes laid out in the order of ``x``'s strides (a
    channel-major activation, or a strided view of one, gives a channel-major array)."""
    if x.nbytes < MIN_BYTES:
        return np.empty_like(x, dtype=dtype)  # NumPy keeps the memory order itself
    order = sorted(range(x.ndim), key=lambda axis: -abs(x.strides[axis]))
    buffer = empty([x.shape[axis] for axis in order], dtype or x.dtype)
    return buffer.transpose(sorted(range(x.ndim), key=order.__getitem__))


def copy_of(x: np.ndarray) -> np.ndarray:
    """A C-contiguous copy of ``x`` in a pooled array."""
    out = empty(x.shape, x.dtype)
    np.copyto(out, x)
    return out


def zeros(shape, dtype) -> np.ndarray:
    """:func:`empty` filled with zeros."""
    array = empty(shape, dtype)
    array.fill(0)
    return array


def clear() -> None:
    """Forget every pooled array that nothing else uses (arrays in use stay valid)."""
    global _held
    for key in list(_pool):
        kept = [a for a in _pool[key] if sys.getrefcount(a) > _UNUSED]
        if kept:
            _pool[key] = kept
        else:
            del _pool[key]
    _held = sum(a.nbytes for arrays in _pool.values() for a in arrays)
