"""Memory layouts of the kernels' arrays: NCHW seen through channel-major buffers.

A convolution computes its whole batch as matrix products whose result is *channel-major*: a
C-contiguous (C, N, H, W) buffer. The kernels hand it on as a logically NCHW view of that buffer
(``buffer.transpose(1, 0, 2, 3)``) instead of paying for a transpose, and the next kernel reads
it back as the (C, N, H, W) planes it prefers, for free.
"""

from __future__ import annotations

import numpy as np

from scratchcnn.nn.kernels import buffers


def channel_major(x: np.ndarray) -> np.ndarray:
    """The (C, N, H, W) view of an NCHW array ``x``; C-contiguous when ``x`` came from a kernel."""
    return x.transpose(1, 0, 2, 3)


def nchw_of(xc: np.ndarray) -> np.ndarray:
    """The NCHW view of a channel-major (C, N, H, W) array (the inverse of :func:`channel_major`)."""
    return xc.transpose(1, 0, 2, 3)


def planes(x: np.ndarray) -> np.ndarray:
    """``x`` (N, C, H, W) as a C-contiguous (C, N, H, W) array, one (channel, image) plane after
    the other: a view when ``x`` came from a kernel (or has one channel), else a copy."""
    xc = channel_major(x)
    return xc if xc.flags.c_contiguous else buffers.copy_of(xc)
