"""Numba kernels: the same functions and the same numbers as ``numpy_kernels``, in compiled loops.

Importing this module raises ImportError when numba is missing; ``scratchcnn.kernels`` then falls
back to NumPy. The matrix products stay in NumPy (BLAS); what is compiled here is everything
around them: im2col/col2im, the bias, max pooling and ReLU. Every loop nest runs over one
(channel, image) plane at a time, so ``prange`` splits the batch over the cores with no two
threads writing the same element, and each plane is summed in the same order as NumPy sums it.

Layouts follow ``scratchcnn.kernels``: results are channel-major (C, N, H, W) buffers returned as
NCHW views, inputs are read through their strides. No ``fastmath``: results round exactly as
written. Functions are compiled on first use for each dtype and memory layout and cached on disk
(``cache=True``), so a second process loads them instead of compiling.
"""

from __future__ import annotations

import types

import numpy as np
from numba import njit, prange

from scratchcnn.kernels.layout import channel_major, flat, flat_pair, nchw_of
from scratchcnn.kernels.numpy_kernels import output_size

NAME = "numba"

__all__ = [
    "NAME",
    "col2im",
    "conv2d_backward",
    "conv2d_forward",
    "im2col",
    "maxpool2d_backward",
    "maxpool2d_forward",
    "output_size",
    "relu_backward",
    "relu_forward",
]

# Below this many output elements a kernel runs on one thread: starting the thread team costs more.
_PARALLEL_MIN = 1 << 15

_jit = {"cache": True, "nogil": True}


# -- compiled loops ----------------------------------------------------------------------------
def _valid_range(start: int, step: int, count: int, size: int) -> tuple[int, int]:
    """Indices t in [t0, t1) of 0..count-1 with 0 <= start + t*step < size."""
    t0 = 0
    while t0 < count and start + t0 * step < 0:
        t0 += 1
    t1 = count
    while t1 > t0 and start + (t1 - 1) * step >= size:
        t1 -= 1
    return t0, t1


_valid_range_jit = njit(inline="always", **_jit)(_valid_range)


def _im2col_loops(xc, cols, kh, kw, sh, sw, top, left, oh, ow):
    c_, n_, h, w = xc.shape
    for task in prange(c_ * kh * kw * n_):
        row = task // n_
        n = task - row * n_
        c = row // (kh * kw)
        i = (row // kw) % kh
        j = row % kw
        x0, x1 = _valid_range_jit(j - left, sw, ow, w)
        base = n * oh * ow
        for y in range(oh):
            dst = base + y * ow
            ih = y * sh + i - top
            if ih < 0 or ih >= h:
                for x in range(ow):
                    cols[row, dst + x] = 0
                continue
            for x in range(x0):
                cols[row, dst + x] = 0
            src = j - left
            for x in range(x0, x1):
                cols[row, dst + x] = xc[c, n, ih, src + x * sw]
            for x in range(x1, ow):
                cols[row, dst + x] = 0


def _col2im_loops(cols, dxc, kh, kw, sh, sw, top, left, oh, ow):
    c_, n_, h, w = dxc.shape
    for task in prange(c_ * n_):
        c = task // n_
        n = task - c * n_
        plane = dxc[c, n]
        plane[:, :] = 0
        base = n * oh * ow
        for i in range(kh):
            y0, y1 = _valid_range_jit(i - top, sh, oh, h)
            for j in range(kw):
                x0, x1 = _valid_range_jit(j - left, sw, ow, w)
                row = (c * kh + i) * kw + j
                for y in range(y0, y1):
                    ih = y * sh + i - top
                    src = base + y * ow
                    for x in range(x0, x1):
                        plane[ih, x * sw + j - left] += cols[row, src + x]


def _add_bias_loops(out2d, bias, block):
    f_, m = out2d.shape
    nblocks = (m + block - 1) // block
    for task in prange(f_ * nblocks):
        f = task // nblocks
        start = (task - f * nblocks) * block
        stop = min(start + block, m)
        b = bias[f]
        for k in range(start, stop):
            out2d[f, k] += b


def _maxpool_forward_loops(xc, out, argmax, kh, kw, sh, sw):
    c_, n_, oh, ow = out.shape
    for task in prange(c_ * n_):
        c = task // n_
        n = task - c * n_
        plane = xc[c, n]
        for y in range(oh):
            for x in range(ow):
                best = plane[y * sh, x * sw]
                arg = 0
                for k in range(1, kh * kw):
                    v = plane[y * sh + k // kw, x * sw + k % kw]
                    if v > best:  # strict: the first maximum wins a tie
                        best = v
                        arg = k
                out[c, n, y, x] = best
                argmax[c, n, y, x] = arg


def _maxpool_backward_loops(doutc, argmax_c, dxc, kh, kw, sh, sw):
    c_, n_, oh, ow = doutc.shape
    h, w = dxc.shape[2], dxc.shape[3]
    tiled = sh == kh and sw == kw
    for task in prange(c_ * n_):
        c = task // n_
        n = task - c * n_
        plane = dxc[c, n]
        if tiled:  # every covered pixel is written exactly once
            for y in range(oh * kh):
                for x in range(ow * kw):
                    plane[y, x] = 0
            for y in range(oh * kh, h):
                for x in range(w):
                    plane[y, x] = 0
            for y in range(oh * kh):
                for x in range(ow * kw, w):
                    plane[y, x] = 0
            for y in range(oh):
                for x in range(ow):
                    k = argmax_c[c, n, y, x]
                    plane[y * sh + k // kw, x * sw + k % kw] = doutc[c, n, y, x]
        else:  # overlapping or gapped: accumulate, offset by offset, in NumPy's order
            plane[:, :] = 0
            for k in range(kh * kw):
                i = k // kw
                j = k % kw
                for y in range(oh):
                    for x in range(ow):
                        if argmax_c[c, n, y, x] == k:
                            plane[y * sh + i, x * sw + j] += doutc[c, n, y, x]


def _relu_forward_loops(x, out):
    for k in prange(x.size):
        v = x[k]
        out[k] = v if v > 0 or v != v else 0  # max(x, 0), NaN kept, like np.maximum


def _relu_backward_loops(dout, out, dx):
    for k in prange(dout.size):
        dx[k] = dout[k] * (out[k] > 0)  # like NumPy's dout * (out > 0)


def _serial_twin(func):
    """A copy of ``func`` under another name, so its serial build gets its own on-disk cache entry
    (numba names cache files after the function; two builds of one function would collide)."""
    twin = types.FunctionType(func.__code__, func.__globals__, func.__name__ + "_serial")
    twin.__qualname__ = func.__qualname__ + "_serial"
    return twin


# name -> (parallel build, one-thread build); prange is a plain range in the latter.
_LOOPS = {
    func.__name__: (njit(parallel=True, **_jit)(func), njit(**_jit)(_serial_twin(func)))
    for func in (
        _im2col_loops,
        _col2im_loops,
        _add_bias_loops,
        _maxpool_forward_loops,
        _maxpool_backward_loops,
        _relu_forward_loops,
        _relu_backward_loops,
    )
}


def _run(name: str, work: int, *args) -> None:
    """Call the compiled loop ``name``: on all cores when ``work`` elements justify it."""
    parallel, serial = _LOOPS[name]
    (parallel if work >= _PARALLEL_MIN else serial)(*args)


# -- the backend's functions (same signatures as numpy_kernels) --------------------------------
def im2col(
    x: np.ndarray, kh: int, kw: int, stride: tuple[int, int], pads: tuple[int, int, int, int]
) -> np.ndarray:
    """Unfold ``x`` (N, C, H, W) into ``cols`` (C*KH*KW, N*OH*OW), one column per output pixel.

    Padding is read as zeros without building a padded copy.
    """
    n, c, h, w = x.shape
    top, bottom, left, right = pads
    oh = output_size(h, kh, stride[0], top + bottom)
    ow = output_size(w, kw, stride[1], left + right)
    cols = np.empty((c * kh * kw, n * oh * ow), dtype=x.dtype)
    _run("_im2col_loops", cols.size, channel_major(x), cols, kh, kw, *stride, top, left, oh, ow)
    return cols


def col2im(
    cols: np.ndarray,
    x_shape: tuple[int, int, int, int],
    kh: int,
    kw: int,
    stride: tuple[int, int],
    pads: tuple[int, int, int, int],
) -> np.ndarray:
    """Fold ``cols`` (C*KH*KW, N*OH*OW) back to (N, C, H, W), summing where windows overlap.

    The adjoint of :func:`im2col`; the result is a channel-major buffer seen as NCHW.
    """
    n, c, h, w = x_shape
    top, bottom, left, right = pads
    oh = output_size(h, kh, stride[0], top + bottom)
    ow = output_size(w, kw, stride[1], left + right)
    dxc = np.empty((c, n, h, w), dtype=cols.dtype)
    cols = np.ascontiguousarray(cols)
    _run("_col2im_loops", cols.size, cols, dxc, kh, kw, *stride, top, left, oh, ow)
    return nchw_of(dxc)


def conv2d_forward(
    x: np.ndarray,
    weight: np.ndarray,
    bias: np.ndarray | None,
    stride: tuple[int, int],
    pads: tuple[int, int, int, int],
    keep_cols: bool = True,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Convolve ``x`` (N, C, H, W) with ``weight`` (F, C, KH, KW); return (out (N, F, OH, OW), cols).

    ``cols`` is what the backward pass needs (None when ``keep_cols`` is False, at inference).
    """
    f, _, kh, kw = weight.shape
    n, _, h, w = x.shape
    cols = im2col(x, kh, kw, stride, pads)
    out = weight.reshape(f, -1) @ cols  # (F, N*OH*OW): the whole batch in one BLAS call
    if bias is not None:
        _run("_add_bias_loops", out.size, out, bias, 4096)
    oh = output_size(h, kh, stride[0], pads[0] + pads[1])
    ow = output_size(w, kw, stride[1], pads[2] + pads[3])
    return nchw_of(out.reshape(f, n, oh, ow)), (cols if keep_cols else None)


def conv2d_backward(
    dout: np.ndarray,
    cols: np.ndarray,
    x_shape: tuple[int, int, int, int],
    weight: np.ndarray,
    stride: tuple[int, int],
    pads: tuple[int, int, int, int],
    need_dx: bool = True,
) -> tuple[np.ndarray | None, np.ndarray, np.ndarray]:
    """Gradients of a convolution: (dx (N, C, H, W) or None, dweight like weight, dbias (F,))."""
    f, _, kh, kw = weight.shape
    dout2d = channel_major(dout).reshape(f, -1)  # (F, N*OH*OW); free if dout is channel-major
    dweight = (dout2d @ cols.T).reshape(weight.shape)
    dbias = dout2d.sum(axis=1)
    if not need_dx:
        return None, dweight, dbias
    dcols = weight.reshape(f, -1).T @ dout2d
    return col2im(dcols, x_shape, kh, kw, stride, pads), dweight, dbias


def maxpool2d_forward(
    x: np.ndarray, pool: tuple[int, int], stride: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray]:
    """Max over each window of ``x`` (N, C, H, W): return (out (N, C, OH, OW), argmax uint8).

    Floor mode like NumPy's; ``argmax`` holds ``i*KW + j`` of each window's first maximum.
    """
    n, c, h, w = x.shape
    kh, kw = pool
    oh = output_size(h, kh, stride[0], 0)
    ow = output_size(w, kw, stride[1], 0)
    out = np.empty((c, n, oh, ow), dtype=x.dtype)
    argmax = np.empty((c, n, oh, ow), dtype=np.uint8)
    _run("_maxpool_forward_loops", x.size, channel_major(x), out, argmax, kh, kw, *stride)
    return nchw_of(out), nchw_of(argmax)


def maxpool2d_backward(
    dout: np.ndarray,
    argmax: np.ndarray,
    x_shape: tuple[int, int, int, int],
    pool: tuple[int, int],
    stride: tuple[int, int],
) -> np.ndarray:
    """Route ``dout`` (N, C, OH, OW) to the one input that won each window; return (N, C, H, W)."""
    n, c, h, w = x_shape
    dxc = np.empty((c, n, h, w), dtype=dout.dtype)
    _run(
        "_maxpool_backward_loops",
        dxc.size,
        channel_major(dout),
        channel_major(argmax),
        dxc,
        *pool,
        *stride,
    )
    return nchw_of(dxc)


def relu_forward(x: np.ndarray) -> np.ndarray:
    """max(x, 0), elementwise, same shape, dtype and memory order."""
    out = np.empty_like(x)
    pair = flat_pair(x, out)
    if pair is None:
        return np.maximum(x, 0)
    _run("_relu_forward_loops", x.size, *pair)
    return out


def relu_backward(dout: np.ndarray, out: np.ndarray) -> np.ndarray:
    """Pass ``dout`` where the ReLU's output was positive, 0 elsewhere (a masked entry may be -0.0)."""
    dx = np.empty_like(out, dtype=dout.dtype)
    dout_flat, out_flat = flat(dout), flat(out)
    if dout_flat is None or out_flat is None or dout.strides != out.strides:
        return np.multiply(dout, out > 0, dtype=dout.dtype)
    _run("_relu_backward_loops", dout.size, dout_flat, out_flat, flat(dx))
    return dx
