"""The kernels' inner loops in vectorized NumPy: fill and fold a block's im2col columns, take and
route the maxima of pooling windows. Twins of :mod:`~scratchcnn.nn.kernels.numba_loops`: the
same functions, the same numbers, always available.

Every array here is channel-major: the input ``xc`` is a C-contiguous (C, N, H, W) array, one
(channel, image) plane after the other (:func:`scratchcnn.nn.kernels.layout.planes`). No Python
loop runs over pixels: the loops run over the KH*KW window offsets, each iteration one strided
array operation over a whole block of images.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import as_strided

from scratchcnn.nn.functional import output_size
from scratchcnn.nn.kernels import buffers

NAME = "numpy"


def im2col_block(xc, kh, kw, stride, pads, n0, n1, cols) -> None:
    """Fill ``cols`` (C*KH*KW, (n1-n0)*OH*OW, C-contiguous) with the im2col columns of images
    [n0, n1) of ``xc`` (C, N, H, W): one strided copy of the block's windows (with padding, of
    the block copied into a zero-bordered scratch)."""
    c, _, h, w = xc.shape
    sh, sw = stride
    top, bottom, left, right = pads
    block = xc[:, n0:n1]
    if any(pads):
        padded = buffers.scratch(
            "padded", (c, n1 - n0, h + top + bottom, w + left + right), xc.dtype
        )
        padded.fill(0)
        padded[:, :, top : top + h, left : left + w] = block
        block = padded
    oh = output_size(block.shape[2], kh, sh, 0)
    ow = output_size(block.shape[3], kw, sw, 0)
    s_c, s_n, s_h, s_w = block.strides
    windows = as_strided(
        block,
        shape=(c, kh, kw, n1 - n0, oh, ow),
        strides=(s_c, s_h, s_w, s_n, s_h * sh, s_w * sw),
        writeable=False,
    )
    np.copyto(cols.reshape(c, kh, kw, n1 - n0, oh, ow), windows)


def col2im_block(dxc, kh, kw, stride, pads, n0, n1, cols) -> None:
    """Fold a block's column gradients ``cols`` (C*KH*KW, (n1-n0)*OH*OW) of images [n0, n1) into
    planes [:, n0:n1] of the channel-major ``dxc`` (C, N, H, W), adding where windows overlap:
    one strided ``+=`` per window offset (``np.add.at``'s per-element scatter is two orders of
    magnitude slower). With padding, through a zero-bordered scratch."""
    c, _, h, w = dxc.shape
    sh, sw = stride
    top, bottom, left, right = pads
    hp, wp = h + top + bottom, w + left + right
    oh = output_size(hp, kh, sh, 0)
    ow = output_size(wp, kw, sw, 0)
    cols6 = cols.reshape(c, kh, kw, n1 - n0, oh, ow)
    padded = any(pads)
    block = buffers.scratch("padded", (c, n1 - n0, hp, wp), dxc.dtype) if padded else dxc[:, n0:n1]
    block.fill(0)
    for i in range(kh):
        for j in range(kw):
            block[:, :, i : i + sh * oh : sh, j : j + sw * ow : sw] += cols6[:, i, j]
    if padded:
        dxc[:, n0:n1] = block[:, :, top : top + h, left : left + w]


def _window_views(xc: np.ndarray, pool, stride, oh: int, ow: int) -> list[np.ndarray]:
    """The KH*KW strided (C, N, OH, OW) views of ``xc``: view ``i*KW + j`` holds each window's
    pixel (i, j)."""
    (kh, kw), (sh, sw) = pool, stride
    return [
        xc[:, :, i : i + sh * (oh - 1) + 1 : sh, j : j + sw * (ow - 1) + 1 : sw]
        for i in range(kh)
        for j in range(kw)
    ]


def maxpool_forward(xc, out, argmax, pool, stride, relu) -> None:
    """Write each window's maximum of ``xc`` (C, N, H, W) into ``out`` (C, N, OH, OW) and, unless
    ``argmax`` is None, the offset ``i*KW + j`` of its first maximum into ``argmax`` (uint8);
    with ``relu``, max(out, 0).

    One pass per window offset. Each strided view is first copied compact: NumPy's maximum is
    several times slower on strided input than a copy plus a contiguous maximum.
    """
    kh, kw = pool
    views = _window_views(xc, pool, stride, out.shape[2], out.shape[3])
    np.copyto(out, views[0])
    if argmax is None:
        for view in views[1:]:
            np.maximum(out, view, out=out)
    else:
        argmax.fill(0)
        candidate, larger = buffers.empty_like(out), buffers.empty_like(out, np.bool_)
        offset = buffers.empty_like(out, np.uint8)
        for k in range(1, kh * kw):
            np.copyto(candidate, views[k])
            np.greater(candidate, out, out=larger)  # strict: the first maximum wins a tie
            np.maximum(out, candidate, out=out)
            # argmax = k where larger: k exceeds every offset before it, so a maximum sets it
            np.maximum(argmax, np.multiply(larger, np.uint8(k), out=offset), out=argmax)
    if relu:
        np.maximum(out, 0, out=out)


def maxpool_backward(doutc, argmaxc, dxc, pool, stride) -> None:
    """Route ``doutc`` (C, N, OH, OW) to the one input of ``dxc`` (C, N, H, W) that won each
    window (``argmaxc``), zeros elsewhere. When windows tile the input each pixel is written
    once (only the uncovered edge is zeroed); overlapping windows accumulate."""
    kh, kw = pool
    oh, ow = doutc.shape[2], doutc.shape[3]
    overlapping = stride[0] < kh or stride[1] < kw
    if tuple(stride) == tuple(pool):
        dxc[:, :, oh * kh :] = 0
        dxc[:, :, :, ow * kw :] = 0
    else:
        dxc[...] = 0
    hit, routed = buffers.empty_like(argmaxc, np.bool_), buffers.empty_like(doutc)
    for k, target in enumerate(_window_views(dxc, pool, stride, oh, ow)):
        np.equal(argmaxc, k, out=hit)
        np.multiply(doutc, hit, out=routed)  # compact first: faster than a strided multiply
        if overlapping:
            target += routed
        else:
            target[...] = routed
