"""Memory-layout helpers shared by the kernel backends.

A convolution computes its whole batch as one matrix product whose result is *channel-major*:
a C-contiguous (C, N, H, W) buffer. The kernels hand it on as a logically NCHW view of that buffer
(``buffer.transpose(1, 0, 2, 3)``) instead of paying for a transpose, and every kernel reads its
inputs through their strides. These helpers find the cheap way through such views.
"""

from __future__ import annotations

import numpy as np


def channel_major(x: np.ndarray) -> np.ndarray:
    """The (C, N, H, W) view of an NCHW array ``x``; C-contiguous when ``x`` came from a convolution."""
    return x.transpose(1, 0, 2, 3)


def nchw_of(xc: np.ndarray) -> np.ndarray:
    """The NCHW view of a channel-major (C, N, H, W) array (the inverse of :func:`channel_major`)."""
    return xc.transpose(1, 0, 2, 3)


def flat_pair(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """1-D views of ``a`` and ``b`` in which equal positions hold corresponding elements.

    That is possible when both are the same axis permutation of a C-contiguous buffer (NCHW, or a
    channel-major view). Returns None otherwise.
    """
    if a.shape != b.shape or a.strides != b.strides:
        return None
    if a.flags.c_contiguous and b.flags.c_contiguous:
        return a.reshape(-1), b.reshape(-1)
    order = sorted(range(a.ndim), key=lambda axis: -abs(a.strides[axis]))
    at, bt = a.transpose(order), b.transpose(order)
    if not (at.flags.c_contiguous and bt.flags.c_contiguous):
        return None
    return at.reshape(-1), bt.reshape(-1)


def flat(a: np.ndarray) -> np.ndarray | None:
    """A 1-D view of ``a``'s memory if ``a`` is a permutation of a C-contiguous buffer, else None."""
    pair = flat_pair(a, a)
    return None if pair is None else pair[0]
