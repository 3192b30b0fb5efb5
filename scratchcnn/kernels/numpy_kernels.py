"""Vectorized NumPy reference kernels: convolution by im2col + one BLAS product, max pooling, ReLU.

Conventions shared by every backend (see ``scratchcnn.kernels``):

* Activations are NCHW (batch, channels, height, width). Arrays may be non-contiguous views:
  the convolution returns a logically NCHW view of a channel-major buffer, which saves a transpose;
  every kernel here reads its inputs through their strides.
* ``pads`` is ``(top, bottom, left, right)`` and ``stride`` is ``(sh, sw)``, both resolved by the layer.
* The im2col matrix ``cols`` has shape ``(C*KH*KW, N*OH*OW)``: row ``(c, i, j)``, column ``(n, oh, ow)``.
  That order makes each copy below move whole output rows, and lets one matrix product
  ``weight.reshape(F, -1) @ cols`` compute a whole block of images. The convolution itself,
  shared with the numba backend, is in :mod:`scratchcnn.kernels.conv`; a backend gives it only
  the fillers of ``cols`` and of the input gradient.
* Max pooling keeps, per window, the flat index ``i*KW + j`` of its first maximum (uint8), so ties
  send the gradient to exactly one input.

No Python loop runs over pixels: the loops below run over the KH*KW kernel offsets, each
iteration a strided array operation over a whole block of images (about 1 MB of columns).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import numpy as np
from numpy.lib.stride_tricks import as_strided

from scratchcnn.kernels import buffers, conv
from scratchcnn.kernels.conv import output_size
from scratchcnn.kernels.layout import nchw_of

NAME = "numpy"


def _pad(x: np.ndarray, pads: tuple[int, int, int, int]) -> np.ndarray:
    top, bottom, left, right = pads
    if top == bottom == left == right == 0:
        return x
    return np.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right)))


def _im2col_filler(x, kh, kw, stride, pads) -> conv.Filler:
    """Fills the columns of images [n0, n1) of ``x`` (N, C, H, W) into a block's ``cols``: one
    strided copy of the block's windows (with padding: of a zero-padded copy of ``x``)."""
    sh, sw = stride
    xp = _pad(x, pads)
    n, c, hp, wp = xp.shape
    oh = (hp - kh) // sh + 1
    ow = (wp - kw) // sw + 1
    s_n, s_c, s_h, s_w = xp.strides
    windows = as_strided(
        xp,
        shape=(c, kh, kw, n, oh, ow),
        strides=(s_c, s_h, s_w, s_n, s_h * sh, s_w * sw),
        writeable=False,
    )

    def fill(n0: int, n1: int, cols: np.ndarray) -> None:
        np.copyto(cols.reshape(c, kh, kw, n1 - n0, oh, ow), windows[:, :, :, n0:n1])

    return fill


def _im2col_bound(x, kh, kw, stride, pads, n0, n1, cols) -> Callable[[], None]:
    """Fills the columns of images [n0, n1) of ``x`` into ``cols`` from what ``x`` holds at each
    call (with padding, the padded copy is made at each call)."""
    if any(pads):
        return lambda: _im2col_filler(x, kh, kw, stride, pads)(n0, n1, cols)
    return partial(_im2col_filler(x, kh, kw, stride, pads), n0, n1, cols)


def _col2im_filler(dx, kh, kw, stride, pads) -> conv.Filler:
    """Folds a block's column gradients ``cols`` of images [n0, n1) into the channel-major ``dx``
    (C, N, H, W): one strided ``+=`` per kernel offset (KH*KW of them) instead of the per-element
    scatter of ``np.add.at``, two orders of magnitude slower. With padding, through a padded
    scratch."""
    c, n, h, w = dx.shape
    sh, sw = stride
    top, bottom, left, right = pads
    hp, wp = h + top + bottom, w + left + right
    oh = (hp - kh) // sh + 1
    ow = (wp - kw) // sw + 1
    padded = hp != h or wp != w

    def fold(n0: int, n1: int, cols: np.ndarray) -> None:
        cols6 = cols.reshape(c, kh, kw, n1 - n0, oh, ow)
        block = conv.scratch("padded", (c, n1 - n0, hp, wp), dx.dtype) if padded else dx[:, n0:n1]
        block.fill(0)
        for i in range(kh):
            for j in range(kw):
                block[:, :, i : i + sh * oh : sh, j : j + sw * ow : sw] += cols6[:, i, j]
        if padded:
            dx[:, n0:n1] = block[:, :, top : top + h, left : left + w]

    return fold


im2col, col2im, conv2d_forward, conv2d_backward, bind_conv2d_forward = conv.backend_functions(
    _im2col_filler, _col2im_filler, _im2col_bound
)


def _window_views(x: np.ndarray, pool, stride, oh: int, ow: int) -> list[np.ndarray]:
    """The KH*KW strided (N, C, OH, OW) views of ``x``: view ``i*KW + j`` holds each window's (i, j)."""
    (kh, kw), (sh, sw) = pool, stride
    return [
        x[:, :, i : i + sh * (oh - 1) + 1 : sh, j : j + sw * (ow - 1) + 1 : sw]
        for i in range(kh)
        for j in range(kw)
    ]


def maxpool2d_forward(
    x: np.ndarray, pool: tuple[int, int], stride: tuple[int, int], relu: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """Max over each window of ``x`` (N, C, H, W): return (out (N, C, OH, OW), argmax uint8);
    with ``relu``, out is max(out, 0) too (a ReLU following the pooling, run as part of it).

    Windows that do not fit at the bottom/right edge are dropped (floor mode, Keras's "valid").
    ``argmax`` holds ``i*KW + j`` of the first maximum of each window. Both outputs keep ``x``'s
    memory order (channel-major stays channel-major).

    One pass per window offset. Each strided view is first copied compact (NumPy's float maximum
    is several times slower on strided input than a copy plus a contiguous maximum).
    """
    kh, kw = pool
    oh = output_size(x.shape[2], kh, stride[0], 0)
    ow = output_size(x.shape[3], kw, stride[1], 0)
    views = _window_views(x, pool, stride, oh, ow)
    out = buffers.empty_like(views[0])
    np.copyto(out, views[0])
    argmax = buffers.empty_like(out, np.uint8)
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
    return out, argmax


def bind_maxpool2d_forward(
    x: np.ndarray, pool: tuple[int, int], stride: tuple[int, int], relu: bool = False
) -> tuple[np.ndarray, Callable[[], None]]:
    """``maxpool2d_forward``'s output at inference, bound to fixed buffers (see ``Layer.bind``):
    return (out, run); each ``run()`` pools the current contents of ``x`` into ``out``. No argmax
    (nothing will go backward): one maximum per window offset."""
    kh, kw = pool
    oh = output_size(x.shape[2], kh, stride[0], 0)
    ow = output_size(x.shape[3], kw, stride[1], 0)
    views = _window_views(x, pool, stride, oh, ow)
    out = np.empty_like(views[0])  # x's memory order

    def run() -> None:
        np.copyto(out, views[0])
        for view in views[1:]:
            np.maximum(out, view, out=out)
        if relu:
            np.maximum(out, 0, out=out)

    return out, run


def maxpool2d_backward(
    dout: np.ndarray,
    argmax: np.ndarray,
    x_shape: tuple[int, int, int, int],
    pool: tuple[int, int],
    stride: tuple[int, int],
) -> np.ndarray:
    """Route ``dout`` (N, C, OH, OW) to the one input that won each window; return (N, C, H, W).

    The result is stored channel-major (a convolution's backward takes it without a copy).
    When windows do not overlap each input pixel is written once (no zero fill but the uncovered
    edge); overlapping windows accumulate.
    """
    kh, kw = pool
    oh, ow = dout.shape[2], dout.shape[3]
    overlapping = stride[0] < kh or stride[1] < kw
    n, c, h, w = x_shape
    dx = nchw_of(buffers.empty((c, n, h, w), dout.dtype))
    if tuple(stride) == tuple(pool):  # windows tile the input: zero only what none covers
        dx[:, :, oh * kh :] = 0
        dx[:, :, :, ow * kw :] = 0
    else:
        dx[...] = 0
    hit, routed = buffers.empty_like(argmax, np.bool_), buffers.empty_like(dout)
    for k, target in enumerate(_window_views(dx, pool, stride, oh, ow)):
        np.equal(argmax, k, out=hit)
        np.multiply(dout, hit, out=routed)  # compact first: faster than a strided multiply
        if overlapping:
            target += routed
        else:
            target[...] = routed
    return dx


def relu_forward(x: np.ndarray) -> np.ndarray:
    """max(x, 0), elementwise, same shape, dtype and memory order."""
    return np.maximum(x, 0, out=buffers.empty_like(x))


def relu_backward(dout: np.ndarray, out: np.ndarray) -> np.ndarray:
    """Pass ``dout`` where the ReLU's output was positive, 0 elsewhere (a masked entry may be -0.0)."""
    positive = np.greater(out, 0, out=buffers.empty_like(out, np.bool_))
    return np.multiply(dout, positive, out=buffers.empty_like(dout), dtype=dout.dtype)
