"""Numba kernels: the same functions and the same numbers as ``numpy_kernels``, in compiled loops.

Importing this module raises ImportError when numba is missing; ``scratchcnn.kernels`` then falls
back to NumPy. The convolution itself (blocks of images, BLAS products) is shared with NumPy in
:mod:`scratchcnn.kernels.conv`; compiled here is everything around the products: the im2col and
col2im fillers of a block, max pooling (with a following ReLU) and ReLU.

Each loop is a sequence of independent tasks, mostly one (channel, image) plane each: no two tasks
write the same element, and each plane is summed in the same order as NumPy sums it, so results
are bitwise NumPy's. Large pooling and ReLU loops are cut into chunks of tasks that
:mod:`scratchcnn.kernels.team` spreads over the cores (convolutions: their blocks); the compiled
functions release the GIL (``nogil``). That replaces numba's
``parallel=True``/``prange``, measured worse on a shared 2-core machine: its fixed share per
thread waits a scheduler slice for a thread that is not running (a 1 ms loop took 24 ms), and its
parallel builds took 5-8 s each to compile instead of 0.5-2 s.

Layouts follow ``scratchcnn.kernels``: results are channel-major (C, N, H, W) buffers returned as
NCHW views. No ``fastmath``: results round exactly as written. Functions are compiled on first use
for each dtype and cached on disk (``cache=True``), so a second process loads them instead.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import numpy as np
from numba import njit, uint8
from numba import uint64 as u64

from scratchcnn.kernels import buffers, conv, team
from scratchcnn.kernels.conv import output_size
from scratchcnn.kernels.layout import channel_major, flat, flat_pair, nchw_of

NAME = "numba"

__all__ = [
    "NAME",
    "bind_conv2d_forward",
    "bind_maxpool2d_forward",
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

# Below this many elements a kernel runs on the calling thread: waking helpers costs more.
_PARALLEL_MIN = 1 << 18
_CHUNKS_PER_THREAD = 4

_BLOCK = 1 << 14  # elements per task of the elementwise loops

_jit = {"cache": True, "nogil": True}


# -- compiled loops ----------------------------------------------------------------------------
# The loops index flat C-contiguous arrays with unsigned offsets (``u64``): with signed indices
# numba checks every access for Python's negative wrap-around, which keeps LLVM from vectorizing.
# Channel-major planes make each (channel, image) pair one contiguous H*W block.
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


@njit(**_jit)
def _im2col_segment(row, n, dst, xf, cols, n_, h, w, kh, kw, sh, sw, top, left, oh, ow):
    # the OH*OW columns of image n in row (c, i, j), written at cols[dst:]; xf: (C, N, H, W) flat
    c = row // (kh * kw)
    i = (row // kw) % kh
    j = row % kw
    x0, x1 = _valid_range_jit(j - left, sw, ow, w)
    src_plane = (c * n_ + n) * h * w
    for y in range(oh):
        d = u64(dst + y * ow)
        ih = y * sh + i - top
        if ih < 0 or ih >= h:
            for x in range(u64(ow)):
                cols[d + x] = 0
            continue
        for x in range(u64(x0)):
            cols[d + x] = 0
        for x in range(u64(x1), u64(ow)):
            cols[d + x] = 0
        s = u64(src_plane + ih * w + j - left + x0 * sw)
        d += u64(x0)
        if sw == 1:
            for t in range(u64(x1 - x0)):
                cols[d + t] = xf[s + t]
        else:
            step = u64(sw)
            for t in range(u64(x1 - x0)):
                cols[d + t] = xf[s + t * step]


@njit(**_jit)
def _col2im_plane(c, n, src0, stride, cols, dxf, n_, h, w, kh, kw, sh, sw, top, left, oh, ow):
    # the adjoint of _im2col_segment for one (c, n) plane of dxf: the columns of image n in row
    # (c, i, j) start at cols[src0 + row * stride]
    plane = u64((c * n_ + n) * h * w)
    for k in range(u64(h * w)):
        dxf[plane + k] = 0
    for i in range(kh):  # offsets in NumPy's order: each pixel sums in the same order
        y0, y1 = _valid_range_jit(i - top, sh, oh, h)
        for j in range(kw):
            x0, x1 = _valid_range_jit(j - left, sw, ow, w)
            src = src0 + ((c * kh + i) * kw + j) * stride
            for y in range(y0, y1):
                d = plane + u64((y * sh + i - top) * w + x0 * sw + j - left)
                s = u64(src + y * ow + x0)
                if sw == 1:
                    for t in range(u64(x1 - x0)):
                        dxf[d + t] += cols[s + t]
                else:
                    step = u64(sw)
                    for t in range(u64(x1 - x0)):
                        dxf[d + t * step] += cols[s + t]


@njit(inline="always", **_jit)
def _pool2x2_plane(src, dst, xf, out, argmax, w, oh, ow, relu, keep_argmax):
    # 2x2 windows, stride 2, of the plane at xf[src:], results at out[dst:] (and argmax[dst:]),
    # without a branch: numba's max(a, b) is b if b > a else a, so the maximum is the first one
    # in row-major order, and its index is that of the first input equal to it, computed as
    # (a != m) * (1 + (b != m) * (1 + (c != m))). LLVM vectorizes it (measured: with the argmax
    # up to twice as fast as if/else; without it, 3x). The ReLU is max(., 0), NaN kept, as
    # np.maximum does. A window holding NaN gets some index (its gradient means nothing anyway).
    zero = np.float32(0)
    one, two, below = u64(1), u64(2), u64(w)
    for y in range(u64(oh)):
        row = src + two * y * below
        o = dst + y * u64(ow)
        for x in range(u64(ow)):
            p = row + two * x
            a, b = xf[p], xf[p + one]
            c, d = xf[p + below], xf[p + below + one]
            m = max(max(a, b), max(c, d))
            out[o + x] = max(m, zero) if relu else m
            if keep_argmax:
                first = uint8(a != m) * (uint8(1) + uint8(b != m) * (uint8(1) + uint8(c != m)))
                argmax[o + x] = first


@njit(**_jit)
def _maxpool_forward_task(task, xf, out, argmax, c_, n_, h, w, kh, kw, sh, sw, oh, ow, relu):
    # per (c, n) plane: each window's first maximum (strict >) and its index i*KW + j; then, if
    # ``relu``, max(maximum, 0) (NaN kept, like np.maximum) while the row is in cache
    src = task * h * w
    dst = task * oh * ow
    if kh == 2 and kw == 2 and sh == 2 and sw == 2:  # the common case
        _pool2x2_plane(u64(src), u64(dst), xf, out, argmax, w, oh, ow, relu, True)
        return
    for y in range(oh):
        row = u64(src + y * sh * w)
        o = u64(dst + y * ow)
        for x in range(u64(ow)):
            p = row + x * u64(sw)
            best = xf[p]
            arg = 0
            for k in range(1, kh * kw):
                v = xf[p + u64((k // kw) * w + k % kw)]
                if v > best:
                    best = v
                    arg = k
            out[o + x] = best
            argmax[o + x] = arg
        if relu:
            _relu_row(out, o, ow)


@njit(**_jit)
def _maxpool_values_task(task, xf, out, h, w, kh, kw, sh, sw, oh, ow, relu):
    # per (c, n) plane: each window's maximum alone, for inference: without the argmax, the 2x2
    # loop is four loads and three max (3x faster than with it, measured)
    src = u64(task * h * w)
    dst = u64(task * oh * ow)
    zero = np.float32(0)
    if kh == 2 and kw == 2 and sh == 2 and sw == 2:
        _pool2x2_plane(src, dst, xf, out, out, w, oh, ow, relu, False)  # (no argmax array)
        return
    for y in range(oh):
        row = src + u64(y * sh * w)
        o = dst + u64(y * ow)
        for x in range(u64(ow)):
            p = row + x * u64(sw)
            best = xf[p]
            for k in range(1, kh * kw):
                best = max(best, xf[p + u64((k // kw) * w + k % kw)])
            if relu:
                best = max(best, zero)
            out[o + x] = best


@njit(inline="always", **_jit)
def _relu_row(out, start, count):
    for x in range(u64(count)):
        v = out[start + x]
        out[start + x] = v if v > 0 or v != v else 0


@njit(**_jit)
def _maxpool_backward_task(task, doutf, argf, dxf, c_, n_, h, w, kh, kw, sh, sw, oh, ow):
    # per (c, n) plane: route each window's gradient to its first maximum
    tiled = sh == kh and sw == kw
    plane = u64(task * h * w)
    src = task * oh * ow
    if tiled:  # every pixel written once: zeros beside the winner, zeros where no window is
        for y in range(oh * kh, h):
            for x in range(u64(w)):
                dxf[plane + u64(y * w) + x] = 0
        for y in range(oh * kh):
            for x in range(u64(ow * kw), u64(w)):
                dxf[plane + u64(y * w) + x] = 0
        for y in range(oh):
            s = u64(src + y * ow)
            if kh == 2 and kw == 2:  # the common case, in a shape LLVM vectorizes
                for i in range(2):
                    d = plane + u64((2 * y + i) * w)
                    left, right, one, two = 2 * i, 2 * i + 1, u64(1), u64(2)
                    for x in range(u64(ow)):
                        k = argf[s + x]
                        g = doutf[s + x]
                        dxf[d + two * x] = g if k == left else 0
                        dxf[d + two * x + one] = g if k == right else 0
                continue
            for i in range(kh):
                d = plane + u64((y * kh + i) * w)
                for x in range(u64(ow)):
                    k = argf[s + x]
                    g = doutf[s + x]
                    for j in range(u64(kw)):
                        dxf[d + x * u64(kw) + j] = g if k == i * kw + j else 0
    else:  # overlapping or gapped windows: accumulate offset by offset, in NumPy's order
        for x in range(u64(h * w)):
            dxf[plane + x] = 0
        for k in range(kh * kw):
            off = (k // kw) * w + k % kw
            for y in range(oh):
                s = u64(src + y * ow)
                d = plane + u64(y * sh * w + off)
                for x in range(u64(ow)):
                    if argf[s + x] == k:
                        dxf[d + x * u64(sw)] += doutf[s + x]


@njit(**_jit)
def _relu_forward_task(task, x, out, block):
    start = u64(task * block)
    for k in range(start, u64(min(start + u64(block), u64(x.size)))):
        v = x[k]
        out[k] = v if v > 0 or v != v else 0  # max(x, 0), NaN kept, like np.maximum


@njit(**_jit)
def _relu_backward_task(task, dout, out, dx, block):
    start = u64(task * block)
    for k in range(start, u64(min(start + u64(block), u64(dout.size)))):
        dx[k] = dout[k] * (out[k] > 0)  # NumPy's dout * (out > 0), -0.0 and NaN alike


# Drivers, each run on one thread (they release the GIL: nogil): the im2col/col2im ones fill or
# fold one block of images [n0, n1) (conv.py spreads the blocks over the team); the others run
# tasks [start, stop), and _run spreads chunks of tasks over the team.
@njit(**_jit)
def _im2col_block(n0, n1, xf, cols, n_, h, w, rows, kh, kw, sh, sw, top, left, oh, ow):
    # cols: the block's (rows, (n1 - n0) * OH * OW) columns, flat, each row written in turn
    pixels = oh * ow
    for row in range(rows):
        for n in range(n0, n1):
            dst = (row * (n1 - n0) + n - n0) * pixels
            _im2col_segment(row, n, dst, xf, cols, n_, h, w, kh, kw, sh, sw, top, left, oh, ow)


@njit(**_jit)
def _im2col_block_unpadded(n0, n1, xf, cols, c_, n_, h, w, kh, kw, oh, ow):
    # the common case, stride 1 and no padding: every window row is a plain copy of ow pixels,
    # so no bounds, no divisions; the same columns as _im2col_block
    dst = u64(0)
    for c in range(c_):
        for i in range(kh):
            for j in range(kw):
                for n in range(n0, n1):
                    src = u64((c * n_ + n) * h * w + i * w + j)
                    for y in range(oh):
                        row = src + u64(y * w)
                        for x in range(u64(ow)):
                            cols[dst + x] = xf[row + x]
                        dst += u64(ow)


@njit(**_jit)
def _col2im_block(n0, n1, cols, dxf, c_, n_, h, w, kh, kw, sh, sw, top, left, oh, ow):
    # cols: the block's (C*KH*KW, (n1 - n0) * OH * OW) column gradients, flat
    pixels = oh * ow
    stride = (n1 - n0) * pixels
    for c in range(c_):
        for n in range(n0, n1):
            src0 = (n - n0) * pixels
            _col2im_plane(
                c, n, src0, stride, cols, dxf, n_, h, w, kh, kw, sh, sw, top, left, oh, ow
            )


@njit(**_jit)
def _maxpool_forward_loops(
    start, stop, xf, out, argmax, c_, n_, h, w, kh, kw, sh, sw, oh, ow, relu
):
    for task in range(start, stop):  # task = c * N + n
        _maxpool_forward_task(task, xf, out, argmax, c_, n_, h, w, kh, kw, sh, sw, oh, ow, relu)


@njit(**_jit)
def _maxpool_values_loops(start, stop, xf, out, h, w, kh, kw, sh, sw, oh, ow, relu):
    for task in range(start, stop):  # task = c * N + n
        _maxpool_values_task(task, xf, out, h, w, kh, kw, sh, sw, oh, ow, relu)


@njit(**_jit)
def _maxpool_backward_loops(start, stop, doutf, argf, dxf, c_, n_, h, w, kh, kw, sh, sw, oh, ow):
    for task in range(start, stop):  # task = c * N + n
        _maxpool_backward_task(task, doutf, argf, dxf, c_, n_, h, w, kh, kw, sh, sw, oh, ow)


@njit(**_jit)
def _relu_forward_loops(start, stop, x, out, block):
    for task in range(start, stop):  # task = block of elements
        _relu_forward_task(task, x, out, block)


@njit(**_jit)
def _relu_backward_loops(start, stop, dout, out, dx, block):
    for task in range(start, stop):
        _relu_backward_task(task, dout, out, dx, block)


def _run(loop, work: int, tasks: int, *args) -> None:
    """Run ``loop`` over ``tasks`` tasks: on the calling thread when ``work`` (elements) is small,
    else in chunks spread over the team."""
    if work < _PARALLEL_MIN or team.threads() == 1:
        loop(0, tasks, *args)
        return
    chunks = min(tasks, _CHUNKS_PER_THREAD * team.threads())
    bounds = [tasks * i // chunks for i in range(chunks + 1)]
    team.run(lambda i: loop(bounds[i], bounds[i + 1], *args), chunks)


# -- the backend's functions (same signatures as numpy_kernels) --------------------------------
def _planes(x: np.ndarray) -> np.ndarray:
    """``x`` (N, C, H, W) as its flat channel-major buffer; free when it came from a convolution."""
    xc = channel_major(x)
    if not xc.flags.c_contiguous:
        xc = buffers.copy_of(xc)
    return xc.reshape(-1)


def _im2col_kernel(x, kh, kw, stride, pads) -> tuple[Callable, np.ndarray, tuple]:
    """The compiled im2col loop for ``x`` (N, C, H, W) and its arguments: call it as
    ``kernel(n0, n1, xf, flat_cols, *args)``. Padding is read as zeros, without a padded copy."""
    n, c, h, w = x.shape
    top, bottom, left, right = pads
    oh = output_size(h, kh, stride[0], top + bottom)
    ow = output_size(w, kw, stride[1], left + right)
    if tuple(stride) == (1, 1) and not any(pads):
        return _im2col_block_unpadded, _planes(x), (c, n, h, w, kh, kw, oh, ow)
    geometry = (n, h, w, c * kh * kw, kh, kw, *stride, top, left, oh, ow)
    return _im2col_block, _planes(x), geometry


def _im2col_filler(x, kh, kw, stride, pads) -> conv.Filler:
    """Fills the columns of images [n0, n1) of ``x`` (N, C, H, W) into a block's ``cols``."""
    kernel, xf, args = _im2col_kernel(x, kh, kw, stride, pads)
    return lambda n0, n1, cols: kernel(n0, n1, xf, cols.reshape(-1), *args)


def _im2col_bound(x, kh, kw, stride, pads, n0, n1, cols) -> Callable[[], None]:
    """Fills the columns of images [n0, n1) of ``x`` into ``cols`` from what ``x`` holds at each
    call: the compiled loop itself with its arguments bound, when it reads ``x`` in place."""
    if not channel_major(x).flags.c_contiguous:  # _planes copies x: copy it at each call
        return lambda: _im2col_filler(x, kh, kw, stride, pads)(n0, n1, cols)
    kernel, xf, args = _im2col_kernel(x, kh, kw, stride, pads)
    return partial(kernel, n0, n1, xf, cols.reshape(-1), *args)


def _col2im_filler(dx, kh, kw, stride, pads) -> conv.Filler:
    """Folds a block's column gradients ``cols`` of images [n0, n1) into the channel-major ``dx``
    (C, N, H, W), summing where windows overlap."""
    c, n, h, w = dx.shape
    top, bottom, left, right = pads
    oh = output_size(h, kh, stride[0], top + bottom)
    ow = output_size(w, kw, stride[1], left + right)
    dxf, geometry = dx.reshape(-1), (c, n, h, w, kh, kw, *stride, top, left, oh, ow)
    return lambda n0, n1, cols: _col2im_block(n0, n1, cols.reshape(-1), dxf, *geometry)


im2col, col2im, conv2d_forward, conv2d_backward, bind_conv2d_forward = conv.backend_functions(
    _im2col_filler, _col2im_filler, _im2col_bound
)


def maxpool2d_forward(
    x: np.ndarray, pool: tuple[int, int], stride: tuple[int, int], relu: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """Max over each window of ``x`` (N, C, H, W): return (out (N, C, OH, OW), argmax uint8).

    Floor mode like NumPy's; ``argmax`` holds ``i*KW + j`` of each window's first maximum.
    ``relu``: out is max(out, 0) too, in the same pass. Both are channel-major buffers seen as
    NCHW.
    """
    n, c, h, w = x.shape
    kh, kw = pool
    oh = output_size(h, kh, stride[0], 0)
    ow = output_size(w, kw, stride[1], 0)
    out = buffers.empty((c, n, oh, ow), x.dtype)
    argmax = buffers.empty((c, n, oh, ow), np.uint8)
    args = (c, n, h, w, kh, kw, *stride, oh, ow, bool(relu))
    flat_out, flat_arg = out.reshape(-1), argmax.reshape(-1)
    _run(_maxpool_forward_loops, x.size, c * n, _planes(x), flat_out, flat_arg, *args)
    return nchw_of(out), nchw_of(argmax)


def bind_maxpool2d_forward(
    x: np.ndarray, pool: tuple[int, int], stride: tuple[int, int], relu: bool = False
) -> tuple[np.ndarray, Callable[[], None]]:
    """``maxpool2d_forward``'s output at inference, bound to fixed buffers (see ``Layer.bind``):
    return (out, run); each ``run()`` pools the current contents of ``x`` into ``out``, on the
    caller. No argmax (nothing will go backward): the kernel vectorizes."""
    n, c, h, w = x.shape
    kh, kw = pool
    oh = output_size(h, kh, stride[0], 0)
    ow = output_size(w, kw, stride[1], 0)
    out = np.empty((c, n, oh, ow), x.dtype)
    args = (out.reshape(-1), h, w, kh, kw, *stride, oh, ow, bool(relu))
    if channel_major(x).flags.c_contiguous:  # read in place: bind everything once
        run = partial(_maxpool_values_loops, 0, c * n, _planes(x), *args)
    else:
        run = lambda: _maxpool_values_loops(0, c * n, _planes(x), *args)  # noqa: E731
    return nchw_of(out), run


def maxpool2d_backward(
    dout: np.ndarray,
    argmax: np.ndarray,
    x_shape: tuple[int, int, int, int],
    pool: tuple[int, int],
    stride: tuple[int, int],
) -> np.ndarray:
    """Route ``dout`` (N, C, OH, OW) to the one input that won each window; return (N, C, H, W),
    a channel-major buffer seen as NCHW."""
    n, c, h, w = x_shape
    oh, ow = dout.shape[2], dout.shape[3]
    dxc = buffers.empty((c, n, h, w), dout.dtype)
    args = (c, n, h, w, *pool, *stride, oh, ow)
    flat_dout, flat_arg = _planes(dout), _planes(argmax)
    _run(_maxpool_backward_loops, dxc.size, c * n, flat_dout, flat_arg, dxc.reshape(-1), *args)
    return nchw_of(dxc)


def relu_forward(x: np.ndarray) -> np.ndarray:
    """max(x, 0), elementwise, same shape, dtype and memory order."""
    out = buffers.empty_like(x)
    pair = flat_pair(x, out) if x.size >= _PARALLEL_MIN else None
    if pair is None:  # small or oddly strided: NumPy's maximum, the same numbers
        return np.maximum(x, 0, out=out)
    _run(_relu_forward_loops, x.size, -(-x.size // _BLOCK), *pair, _BLOCK)
    return out


def relu_backward(dout: np.ndarray, out: np.ndarray) -> np.ndarray:
    """Pass ``dout`` where the ReLU's output was positive, 0 elsewhere (a masked entry may be -0.0)."""
    pair = flat_pair(dout, out) if dout.size >= _PARALLEL_MIN else None
    if pair is None or dout.dtype != out.dtype:
        return np.multiply(dout, out > 0, dtype=dout.dtype)
    dx = buffers.empty_like(dout)
    _run(_relu_backward_loops, dout.size, -(-dout.size // _BLOCK), *pair, flat(dx), _BLOCK)
    return dx
