"""The math of the layers, written plainly: convolution by im2col and one matrix product, max
pooling, ReLU, forward and backward.

This is the reference. It says what every layer computes in as few lines as NumPy allows, and the
fast kernels of :mod:`scratchcnn.nn.kernels` (the same function names, computed in blocks and
compiled loops) are tested against it, number for number. Read it first; it runs, too
(``python -c "import scratchcnn.nn.functional"`` costs nothing), but it is not what the layers call.

Conventions: activations are NCHW (batch, channels, height, width); ``stride`` is ``(sh, sw)``;
``pads`` is ``(top, bottom, left, right)`` zeros around each image. A convolution's weight is
(F, C, KH, KW), its bias (F,).
"""

from __future__ import annotations

import numpy as np


def output_size(size: int, kernel: int, stride: int, pad_total: int) -> int:
    """How many positions a window of ``kernel`` sliding by ``stride`` takes over ``size`` pixels
    plus ``pad_total`` padding (windows that do not fit are dropped)."""
    return (size + pad_total - kernel) // stride + 1


def pad(x: np.ndarray, pads: tuple[int, int, int, int]) -> np.ndarray:
    """``x`` (N, C, H, W) with ``pads`` = (top, bottom, left, right) rows and columns of zeros."""
    top, bottom, left, right = pads
    return np.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right)))


# -- convolution --------------------------------------------------------------------------------
def im2col(
    x: np.ndarray, kh: int, kw: int, stride: tuple[int, int], pads: tuple[int, int, int, int]
) -> np.ndarray:
    """Unfold ``x`` (N, C, H, W) into the matrix ``cols`` (C*KH*KW, N*OH*OW): column (n, y, x)
    holds the window under output pixel (y, x) of image n, row (c, i, j) its pixel (i, j) of
    channel c. A convolution is then one matrix product: ``weight.reshape(F, -1) @ cols``.

    One loop over the KH*KW offsets of the window: offset (i, j) of every window at once is a
    strided slice of the padded input.
    """
    n, c, h, w = x.shape
    sh, sw = stride
    oh = output_size(h, kh, sh, pads[0] + pads[1])
    ow = output_size(w, kw, sw, pads[2] + pads[3])
    xp = pad(x, pads)
    cols = np.empty((c, kh, kw, n, oh, ow), dtype=x.dtype)
    for i in range(kh):
        for j in range(kw):
            window_pixel = xp[:, :, i : i + sh * oh : sh, j : j + sw * ow : sw]  # (N, C, OH, OW)
            cols[:, i, j] = window_pixel.transpose(1, 0, 2, 3)
    return cols.reshape(c * kh * kw, n * oh * ow)


def col2im(
    cols: np.ndarray,
    x_shape: tuple[int, int, int, int],
    kh: int,
    kw: int,
    stride: tuple[int, int],
    pads: tuple[int, int, int, int],
) -> np.ndarray:
    """Fold ``cols`` (C*KH*KW, N*OH*OW) back into an image batch of ``x_shape`` (N, C, H, W),
    adding up the values of pixels that several windows share: the adjoint (transpose) of
    :func:`im2col`, which is how a convolution's input gradient comes back."""
    n, c, h, w = x_shape
    sh, sw = stride
    top, bottom, left, right = pads
    oh = output_size(h, kh, sh, top + bottom)
    ow = output_size(w, kw, sw, left + right)
    cols6 = cols.reshape(c, kh, kw, n, oh, ow)
    xp = np.zeros((n, c, h + top + bottom, w + left + right), dtype=cols.dtype)
    for i in range(kh):
        for j in range(kw):
            xp[:, :, i : i + sh * oh : sh, j : j + sw * ow : sw] += cols6[:, i, j].transpose(
                1, 0, 2, 3
            )
    return xp[:, :, top : top + h, left : left + w]


def conv2d_forward(
    x: np.ndarray,
    weight: np.ndarray,
    bias: np.ndarray | None,
    stride: tuple[int, int],
    pads: tuple[int, int, int, int],
) -> tuple[np.ndarray, np.ndarray]:
    """Convolve ``x`` (N, C, H, W) with ``weight`` (F, C, KH, KW) and add ``bias`` (F,) or
    nothing: return ``(out, cols)``, out (N, F, OH, OW) and the im2col matrix that
    :func:`conv2d_backward` needs. (Cross-correlation, as in every framework.)"""
    n = x.shape[0]
    f, _, kh, kw = weight.shape
    cols = im2col(x, kh, kw, stride, pads)  # (C*KH*KW, N*OH*OW)
    out = weight.reshape(f, -1) @ cols  # (F, N*OH*OW): the whole convolution, one product
    if bias is not None:
        out += bias[:, None]
    oh = output_size(x.shape[2], kh, stride[0], pads[0] + pads[1])
    ow = output_size(x.shape[3], kw, stride[1], pads[2] + pads[3])
    return out.reshape(f, n, oh, ow).transpose(1, 0, 2, 3), cols


def conv2d_backward(
    dout: np.ndarray,
    cols: np.ndarray,
    x_shape: tuple[int, int, int, int],
    weight: np.ndarray,
    stride: tuple[int, int],
    pads: tuple[int, int, int, int],
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gradients of :func:`conv2d_forward` for ``dout`` = d(loss)/d(out) (N, F, OH, OW):
    ``(dx (N, C, H, W), dweight (F, C, KH, KW), dbias (F,))``.

    out2d = W2d @ cols, so dW2d = dout2d @ cols.T and dcols = W2d.T @ dout2d, folded back by
    :func:`col2im`; each bias is added to every output pixel of its filter, so dbias sums them.
    """
    f, _, kh, kw = weight.shape
    dout2d = dout.transpose(1, 0, 2, 3).reshape(f, -1)  # (F, N*OH*OW), columns as in cols
    dweight = (dout2d @ cols.T).reshape(weight.shape)
    dbias = dout2d.sum(axis=1)
    dcols = weight.reshape(f, -1).T @ dout2d  # (C*KH*KW, N*OH*OW)
    dx = col2im(dcols, x_shape, kh, kw, stride, pads)
    return dx, dweight, dbias


# -- max pooling --------------------------------------------------------------------------------
def maxpool2d_forward(
    x: np.ndarray, pool: tuple[int, int], stride: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray]:
    """The maximum of each ``pool`` window of ``x`` (N, C, H, W), windows ``stride`` apart and
    dropped where they do not fit: return ``(out (N, C, OH, OW), argmax)``, where ``argmax``
    (uint8, same shape) is the window offset ``i*KW + j`` of the first maximum in row-major
    order, the one input that the gradient goes back to."""
    kh, kw = pool
    sh, sw = stride
    oh = output_size(x.shape[2], kh, sh, 0)
    ow = output_size(x.shape[3], kw, sw, 0)
    out = x[:, :, : sh * oh : sh, : sw * ow : sw].copy()  # offset (0, 0) of every window
    argmax = np.zeros(out.shape, dtype=np.uint8)
    for i in range(kh):
        for j in range(kw):
            candidate = x[:, :, i : i + sh * oh : sh, j : j + sw * ow : sw]
            larger = candidate > out  # strictly: the first maximum keeps a tie
            out[larger] = candidate[larger]
            argmax[larger] = i * kw + j
    return out, argmax


def maxpool2d_backward(
    dout: np.ndarray,
    argmax: np.ndarray,
    x_shape: tuple[int, int, int, int],
    pool: tuple[int, int],
    stride: tuple[int, int],
) -> np.ndarray:
    """Send each window's gradient in ``dout`` (N, C, OH, OW) to the input that won it
    (``argmax`` from :func:`maxpool2d_forward`); return dx of ``x_shape``. Where windows overlap,
    an input that won several of them gets the sum."""
    kh, kw = pool
    sh, sw = stride
    oh, ow = dout.shape[2], dout.shape[3]
    dx = np.zeros(x_shape, dtype=dout.dtype)
    for i in range(kh):
        for j in range(kw):
            won = argmax == i * kw + j
            dx[:, :, i : i + sh * oh : sh, j : j + sw * ow : sw] += dout * won
    return dx


# -- ReLU ---------------------------------------------------------------------------------------
def relu_forward(x: np.ndarray) -> np.ndarray:
    """max(x, 0), elementwise."""
    return np.maximum(x, 0)


def relu_backward(dout: np.ndarray, out: np.ndarray) -> np.ndarray:
    """The gradient passes where the ReLU's output ``out`` was positive, and is 0 elsewhere."""
    return dout * (out > 0)
