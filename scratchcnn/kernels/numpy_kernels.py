"""Vectorized NumPy reference kernels: convolution by im2col + one BLAS product, max pooling, ReLU.

Conventions shared by every backend (see ``scratchcnn.kernels``):

* Activations are NCHW (batch, channels, height, width). Arrays may be non-contiguous views:
  the convolution returns a logically NCHW view of a channel-major buffer, which saves a transpose;
  every kernel here reads its inputs through their strides.
* ``pads`` is ``(top, bottom, left, right)`` and ``stride`` is ``(sh, sw)``, both resolved by the layer.
* The im2col matrix ``cols`` has shape ``(C*KH*KW, N*OH*OW)``: row ``(c, i, j)``, column ``(n, oh, ow)``.
  That order makes each copy below move whole output rows, and lets one matrix product
  ``weight.reshape(F, -1) @ cols`` compute the whole batch.
* Max pooling keeps, per window, the flat index ``i*KW + j`` of its first maximum (uint8), so ties
  send the gradient to exactly one input.

No Python loop runs over images or pixels: the loops below run over the KH*KW kernel offsets, each
iteration a whole-batch strided array operation.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import as_strided

from scratchcnn.kernels import blas, buffers
from scratchcnn.kernels.layout import channel_major, nchw_of

NAME = "numpy"


def output_size(size: int, kernel: int, stride: int, pad_total: int) -> int:
    """Spatial output size of a window of ``kernel`` sliding by ``stride`` over padded ``size``."""
    return (size + pad_total - kernel) // stride + 1


def _pad(x: np.ndarray, pads: tuple[int, int, int, int]) -> np.ndarray:
    top, bottom, left, right = pads
    if top == bottom == left == right == 0:
        return x
    return np.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right)))


def im2col(
    x: np.ndarray, kh: int, kw: int, stride: tuple[int, int], pads: tuple[int, int, int, int]
) -> np.ndarray:
    """Unfold ``x`` (N, C, H, W) into ``cols`` (C*KH*KW, N*OH*OW), one column per output pixel."""
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
    cols = buffers.empty((c, kh, kw, n, oh, ow), x.dtype)
    np.copyto(cols, windows)
    return cols.reshape(c * kh * kw, n * oh * ow)


def col2im(
    cols: np.ndarray,
    x_shape: tuple[int, int, int, int],
    kh: int,
    kw: int,
    stride: tuple[int, int],
    pads: tuple[int, int, int, int],
) -> np.ndarray:
    """Fold ``cols`` (C*KH*KW, N*OH*OW) back to (N, C, H, W), summing where windows overlap.

    The adjoint of :func:`im2col`. One strided ``+=`` per kernel offset (KH*KW of them) replaces the
    per-element scatter of ``np.add.at``, which is two orders of magnitude slower.
    """
    n, c, h, w = x_shape
    sh, sw = stride
    top, bottom, left, right = pads
    hp, wp = h + top + bottom, w + left + right
    oh = (hp - kh) // sh + 1
    ow = (wp - kw) // sw + 1
    cols6 = cols.reshape(c, kh, kw, n, oh, ow)
    padded = buffers.zeros((c, n, hp, wp), cols.dtype)  # channel-major, like cols
    for i in range(kh):
        for j in range(kw):
            padded[:, :, i : i + sh * oh : sh, j : j + sw * ow : sw] += cols6[:, i, j]
    return nchw_of(padded[:, :, top : top + h, left : left + w])


def conv2d_forward_via(
    im2col_impl,
    add_bias_impl,
    x: np.ndarray,
    weight: np.ndarray,
    bias: np.ndarray | None,
    stride: tuple[int, int],
    pads: tuple[int, int, int, int],
    keep_cols: bool = True,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Convolution as one BLAS product on ``im2col_impl``'s columns, plus ``add_bias_impl(out,
    bias)`` on the (F, N*OH*OW) result: both backends share this and differ only in those two."""
    f, _, kh, kw = weight.shape
    n = x.shape[0]
    cols = im2col_impl(x, kh, kw, stride, pads)
    out = buffers.empty((f, cols.shape[1]), cols.dtype)
    blas.matmul(weight.reshape(f, -1), cols, out=out)  # (F, N*OH*OW): one BLAS call
    if bias is not None:
        add_bias_impl(out, bias)
    oh = output_size(x.shape[2], kh, stride[0], pads[0] + pads[1])
    ow = output_size(x.shape[3], kw, stride[1], pads[2] + pads[3])
    return nchw_of(out.reshape(f, n, oh, ow)), (cols if keep_cols else None)


def _add_bias(out: np.ndarray, bias: np.ndarray) -> None:
    out += bias[:, None]


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
    return conv2d_forward_via(im2col, _add_bias, x, weight, bias, stride, pads, keep_cols)


def conv2d_backward_via(
    col2im_impl,
    dout: np.ndarray,
    cols: np.ndarray,
    x_shape: tuple[int, int, int, int],
    weight: np.ndarray,
    stride: tuple[int, int],
    pads: tuple[int, int, int, int],
    need_dx: bool = True,
) -> tuple[np.ndarray | None, np.ndarray, np.ndarray]:
    """Convolution gradients from two BLAS products and ``col2im_impl``: both backends share this
    and differ only in their col2im. Returns (dx (N, C, H, W) or None, dweight, dbias (F,))."""
    f, _, kh, kw = weight.shape
    dout2d = channel_major(dout).reshape(f, -1)  # (F, N*OH*OW); free if dout is channel-major
    dweight = blas.matmul(dout2d, cols.T).reshape(weight.shape)
    dbias = dout2d.sum(axis=1)
    if not need_dx:
        return None, dweight, dbias
    dcols = buffers.empty((weight[0].size, dout2d.shape[1]), dout2d.dtype)
    blas.matmul(weight.reshape(f, -1).T, dout2d, out=dcols)
    return col2im_impl(dcols, x_shape, kh, kw, stride, pads), dweight, dbias


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
    return conv2d_backward_via(col2im, dout, cols, x_shape, weight, stride, pads, need_dx)


def _window_views(x: np.ndarray, pool, stride, oh: int, ow: int) -> list[np.ndarray]:
    """The KH*KW strided (N, C, OH, OW) views of ``x``: view ``i*KW + j`` holds each window's (i, j)."""
    (kh, kw), (sh, sw) = pool, stride
    return [
        x[:, :, i : i + sh * (oh - 1) + 1 : sh, j : j + sw * (ow - 1) + 1 : sw]
        for i in range(kh)
        for j in range(kw)
    ]


def maxpool2d_forward(
    x: np.ndarray, pool: tuple[int, int], stride: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray]:
    """Max over each window of ``x`` (N, C, H, W): return (out (N, C, OH, OW), argmax uint8).

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
    return out, argmax


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
