"""Large scratch arrays reused from one batch to the next instead of freshly allocated.

A training step allocates tens of megabytes (im2col matrices, activations, their gradients) and
frees them again. The C library hands big blocks back to the operating system, so the next batch
page-faults all of it in again, zero-filled, a large share of a step's time (benchmarks/PROFILE.md).

:func:`empty` keeps the memory of every array of 64 KiB or more that it hands out, as raw blocks
of bytes, and carves later arrays of any shape out of a block that nothing uses any more (the
reference count says no caller, view or layer cache holds it). An array a caller keeps is never
overwritten. A block is reused for requests down to half its size, so the last, smaller batch of
an epoch reuses the training batches' blocks. A request that no block serves (a new shape: the
first batch, an evaluation batch) lets go of the unused blocks too small for it, so the pool
follows the working set instead of collecting every shape; it never holds more than
``MAX_BYTES`` either. :func:`clear` drops every unused block.
"""

from __future__ import annotations

import bisect
import math
import sys
import threading

import numpy as np

MIN_BYTES = 1 << 16  # smaller arrays are cheap to allocate
MAX_BYTES = 128 << 20  # a training step of the Keras example at batch 128 holds ~70 MB

_blocks: list[np.ndarray] = []  # uint8 blocks, ascending by size
_sizes: list[int] = []  # their sizes, for bisect

# References to an unused block while empty() looks at it: the pool's list, the slice of it being
# scanned, the loop variable, and getrefcount's own argument.
_UNUSED = 4


def empty(shape, dtype) -> np.ndarray:
    """An uninitialized C-contiguous array of ``shape`` and ``dtype``, reused memory when possible."""
    dtype = np.dtype(dtype)
    shape = tuple(shape)
    nbytes = dtype.itemsize * math.prod(shape)
    if nbytes < MIN_BYTES:
        return np.empty(shape, dtype)
    first = bisect.bisect_left(_sizes, nbytes)
    for block in _blocks[first:]:  # the smallest unused block that fits, wasting at most half
        if block.size > 2 * nbytes:
            break
        if sys.getrefcount(block) == _UNUSED:
            return block[:nbytes].view(dtype).reshape(shape)
    _drop_unused(below=nbytes)  # a new size: blocks too small for it are likely left over
    if sum(_sizes) + nbytes > MAX_BYTES:
        clear()
    block = np.empty(nbytes, np.uint8)
    where = bisect.bisect_left(_sizes, nbytes)
    _blocks.insert(where, block)
    _sizes.insert(where, nbytes)
    return block.view(dtype).reshape(shape)


def empty_like(x: np.ndarray, dtype=None) -> np.ndarray:
    """Like ``np.empty_like(x)``: same shape, axes laid out in the order of ``x``'s strides (a
    channel-major activation, or a strided view of one, gives a channel-major array)."""
    if x.nbytes < MIN_BYTES:
        return np.empty_like(x, dtype=dtype)  # NumPy keeps the memory order itself
    order = sorted(range(x.ndim), key=lambda axis: -abs(x.strides[axis]))
    buffer = empty([x.shape[axis] for axis in order], dtype or x.dtype)
    return buffer.transpose(sorted(range(x.ndim), key=order.__getitem__))


def copy_of(x: np.ndarray) -> np.ndarray:
    """A C-contiguous copy of ``x`` in pooled memory."""
    out = empty(x.shape, x.dtype)
    np.copyto(out, x)
    return out


def zeros(shape, dtype) -> np.ndarray:
    """:func:`empty` filled with zeros."""
    array = empty(shape, dtype)
    array.fill(0)
    return array


def clear() -> None:
    """Let go of every pooled block that nothing uses (arrays in use stay valid)."""
    _drop_unused(below=None)


def _drop_unused(below: int | None) -> None:
    """Let go of the unused blocks (smaller than ``below`` bytes, if given)."""
    # references while filtering: the list, the comprehension variable, getrefcount's argument
    _blocks[:] = [
        b for b in _blocks if (below is not None and b.size >= below) or sys.getrefcount(b) > 3
    ]
    _sizes[:] = [b.size for b in _blocks]


def held_bytes() -> int:
    """Bytes in the pool's blocks, in use or not."""
    return sum(_sizes)


_local = threading.local()  # each thread's scratch arrays


def scratch(name: str, shape: tuple[int, ...], dtype) -> np.ndarray:
    """This thread's scratch array ``name`` of ``shape``, reused from call to call (grown when too
    small): written and read again while it is in this core's cache. Only until the next call
    for the same ``name`` on the same thread."""
    dtype = np.dtype(dtype)
    nbytes = dtype.itemsize * math.prod(shape)
    memory = getattr(_local, name, None)
    if memory is None or memory.nbytes < nbytes:
        memory = np.empty(nbytes, np.uint8)
        setattr(_local, name, memory)
    return memory[:nbytes].view(dtype).reshape(shape)
