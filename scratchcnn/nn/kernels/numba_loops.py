"""The kernels' inner loops compiled by Numba: the twins of :mod:`~scratchcnn.nn.kernels.numpy_loops`,
the same functions and the same numbers, faster.

Importing this module raises ImportError when numba is missing; :mod:`~scratchcnn.nn.kernels.backend`
then falls back to NumPy. Every array is channel-major, as in NumPy's twin: ``xc`` is a C-contiguous
(C, N, H, W) array, and the loops index its flat buffer one (channel, image) plane at a time.

Each loop is a sequence of independent tasks, mostly one plane each: no two tasks write the same
element, and each plane is summed in the same order as NumPy sums it, so the results are bitwise
NumPy's. Large pooling loops are cut into chunks of tasks that the team's threads share
(:mod:`~scratchcnn.nn.kernels.team`; convolutions: their blocks); the compiled functions release
the GIL (``nogil``). No ``fastmath``: results round exactly as written. Functions are compiled on
first use for each dtype and cached on disk (``cache=True``), so a second process loads them.
"""

from __future__ import annotations

import numpy as np
from numba import njit, uint8
from numba import uint64 as u64

from scratchcnn.nn.functional import output_size
from scratchcnn.nn.kernels import team

NAME = "numba"

# Below this many elements a kernel runs on the calling thread: waking helpers costs more.
_PARALLEL_MIN = 1 << 18
_CHUNKS_PER_THREAD = 4

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
    # (a != m) * (1 + (b != m) * (1 + (c != m))), which LLVM vectorizes (if/else would not).
    # The ReLU is max(., 0), NaN kept, as np.maximum does. A window holding NaN gets some index
    # (its gradient means nothing anyway).
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
def _maxpool_forward_task(task, xf, out, argmax, h, w, kh, kw, sh, sw, oh, ow, relu):
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
    # loop is four loads and three max
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
def _maxpool_backward_task(task, doutf, argf, dxf, h, w, kh, kw, sh, sw, oh, ow):
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
def _maxpool_forward_loops(start, stop, xf, out, argmax, h, w, kh, kw, sh, sw, oh, ow, relu):
    for task in range(start, stop):  # task = c * N + n
        _maxpool_forward_task(task, xf, out, argmax, h, w, kh, kw, sh, sw, oh, ow, relu)


@njit(**_jit)
def _maxpool_values_loops(start, stop, xf, out, h, w, kh, kw, sh, sw, oh, ow, relu):
    for task in range(start, stop):  # task = c * N + n
        _maxpool_values_task(task, xf, out, h, w, kh, kw, sh, sw, oh, ow, relu)


@njit(**_jit)
def _maxpool_backward_loops(start, stop, doutf, argf, dxf, h, w, kh, kw, sh, sw, oh, ow):
    for task in range(start, stop):  # task = c * N + n
        _maxpool_backward_task(task, doutf, argf, dxf, h, w, kh, kw, sh, sw, oh, ow)


def _run(loop, work: int, tasks: int, *args) -> None:
    """Run ``loop`` over ``tasks`` tasks: on the calling thread when ``work`` (elements) is small,
    else in chunks spread over the team."""
    if work < _PARALLEL_MIN or team.threads() == 1:
        loop(0, tasks, *args)
        return
    chunks = min(tasks, _CHUNKS_PER_THREAD * team.threads())
    bounds = [tasks * i // chunks for i in range(chunks + 1)]
    team.run(lambda i: loop(bounds[i], bounds[i + 1], *args), chunks)


# -- the loops' functions (the same as numpy_loops') -------------------------------------------
def im2col_block(xc, kh, kw, stride, pads, n0, n1, cols) -> None:
    """Fill ``cols`` (C*KH*KW, (n1-n0)*OH*OW, C-contiguous) with the im2col columns of images
    [n0, n1) of ``xc`` (C, N, H, W, C-contiguous); padding is read as zeros, never copied."""
    c, n, h, w = xc.shape
    top, bottom, left, right = pads
    oh = output_size(h, kh, stride[0], top + bottom)
    ow = output_size(w, kw, stride[1], left + right)
    xf, flat_cols = xc.reshape(-1), cols.reshape(-1)
    if tuple(stride) == (1, 1) and not any(pads):
        _im2col_block_unpadded(n0, n1, xf, flat_cols, c, n, h, w, kh, kw, oh, ow)
    else:
        geometry = (n, h, w, c * kh * kw, kh, kw, *stride, top, left, oh, ow)
        _im2col_block(n0, n1, xf, flat_cols, *geometry)


def col2im_block(dxc, kh, kw, stride, pads, n0, n1, cols) -> None:
    """Fold a block's column gradients ``cols`` (C*KH*KW, (n1-n0)*OH*OW) of images [n0, n1) into
    planes [:, n0:n1] of the channel-major ``dxc`` (C, N, H, W), adding where windows overlap."""
    c, n, h, w = dxc.shape
    top, bottom, left, right = pads
    oh = output_size(h, kh, stride[0], top + bottom)
    ow = output_size(w, kw, stride[1], left + right)
    geometry = (c, n, h, w, kh, kw, *stride, top, left, oh, ow)
    _col2im_block(n0, n1, cols.reshape(-1), dxc.reshape(-1), *geometry)


def maxpool_forward(xc, out, argmax, pool, stride, relu) -> None:
    """Write each window's maximum of ``xc`` (C, N, H, W) into ``out`` (C, N, OH, OW) and, unless
    ``argmax`` is None, the offset ``i*KW + j`` of its first maximum into ``argmax`` (uint8);
    with ``relu``, max(out, 0), in the same pass. Without the argmax the loop vectorizes."""
    c, n, h, w = xc.shape
    oh, ow = out.shape[2], out.shape[3]
    geometry = (h, w, *pool, *stride, oh, ow, bool(relu))
    if argmax is None:
        loop, arrays = _maxpool_values_loops, (xc.reshape(-1), out.reshape(-1))
    else:
        loop = _maxpool_forward_loops
        arrays = (xc.reshape(-1), out.reshape(-1), argmax.reshape(-1))
    _run(loop, xc.size, c * n, *arrays, *geometry)


def maxpool_backward(doutc, argmaxc, dxc, pool, stride) -> None:
    """Route ``doutc`` (C, N, OH, OW) to the one input of ``dxc`` (C, N, H, W) that won each
    window (``argmaxc``), zeros elsewhere; overlapping windows accumulate."""
    c, n, h, w = dxc.shape
    geometry = (h, w, *pool, *stride, doutc.shape[2], doutc.shape[3])
    arrays = (doutc.reshape(-1), argmaxc.reshape(-1), dxc.reshape(-1))
    _run(_maxpool_backward_loops, dxc.size, c * n, *arrays, *geometry)
