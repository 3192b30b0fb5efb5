"""The convolution the layers run: :func:`scratchcnn.nn.functional.conv2d_forward` and
``conv2d_backward``, the same math and the same numbers, computed in blocks of images.

The plain version makes one im2col matrix of the whole batch and multiplies it once. That matrix
is large (the Keras example's second convolution: 288 x 15,488 floats, 18 MB), and so is its
gradient: written in one pass and read back by the product, both go out to memory and back. Here
a block of a few images does all its work while its columns are in the core's cache:

* forward: fill the block's im2col columns, multiply them (the bias rides in the product: the
  columns end with a row of ones, the weight matrix with a column holding the bias);
* backward: the block's share of the weight and bias gradients (one product, the bias gradient
  is its last column), then its column gradients, folded back into the input gradient at once.

Blocks are handed out one at a time to the team's threads (:mod:`~scratchcnn.nn.kernels.team`),
BLAS on one thread each. A block's size depends only on the layer's shape, and the weight
gradient is the sum of the blocks' partial products in float64, in block order: the numbers
never depend on the number of threads.

The columns are filled and folded by the active loops (:func:`~scratchcnn.nn.kernels.backend.loops`:
NumPy's strided copies or Numba's compiled loops), the same numbers either way. Layouts: a
block's columns are a C-contiguous (C*KH*KW, n*OH*OW) matrix, row (c, i, j), column (image, y, x);
training keeps every block's columns, block after block, for the backward pass. The output and
the input gradient are channel-major (C, N, H, W) buffers handed on as NCHW views
(:mod:`~scratchcnn.nn.kernels.layout`).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from scratchcnn.nn.functional import output_size
from scratchcnn.nn.kernels import blas, buffers, team
from scratchcnn.nn.kernels.backend import loops
from scratchcnn.nn.kernels.layout import channel_major, nchw_of, planes

BLOCK_BYTES = 1 << 20  # a block's columns plus its output: about one core's L2 cache


def conv2d_forward(
    x: np.ndarray,
    weight: np.ndarray,
    bias: np.ndarray | None,
    stride: tuple[int, int],
    pads: tuple[int, int, int, int],
    training: bool = False,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Convolve ``x`` (N, C, H, W) with ``weight`` (F, C, KH, KW) plus ``bias`` (F,) or nothing:
    return ``(out, saved)``, out (N, F, OH, OW) (a channel-major buffer) and, when ``training``,
    the columns :func:`conv2d_backward` needs (else None)."""
    n, c, h, w = x.shape
    f, _, kh, kw = weight.shape
    oh = output_size(h, kh, stride[0], pads[0] + pads[1])
    ow = output_size(w, kw, stride[1], pads[2] + pads[3])
    pixels, rows = oh * ow, c * kh * kw + 1  # + the row of ones
    xc = planes(x)
    out = buffers.empty((f, n * pixels), x.dtype)
    kept = buffers.empty((rows * n * pixels,), x.dtype) if training else None
    weight_and_bias = weight_bias_matrix(weight, bias)
    im2col_block = loops().im2col_block

    def block(n0: int, n1: int) -> None:
        cols = block_columns(kept, rows, pixels, n0, n1, x.dtype)
        im2col_block(xc, kh, kw, stride, pads, n0, n1, cols[:-1])
        cols[-1] = 1
        np.matmul(weight_and_bias, cols, out=out[:, n0 * pixels : n1 * pixels])

    for_each_block(n, images_per_block(rows, f, pixels, x.dtype.itemsize), block)
    return nchw_of(out.reshape(f, n, oh, ow)), kept


def conv2d_backward(
    dout: np.ndarray,
    saved: np.ndarray,
    x_shape: tuple[int, int, int, int],
    weight: np.ndarray,
    stride: tuple[int, int],
    pads: tuple[int, int, int, int],
    need_dx: bool = True,
) -> tuple[np.ndarray | None, np.ndarray, np.ndarray]:
    """Gradients of :func:`conv2d_forward` for ``dout`` (N, F, OH, OW) and what it ``saved``:
    ``(dx (N, C, H, W) or None, dweight like weight, dbias (F,))``."""
    n, c, h, w = x_shape
    f, _, kh, kw = weight.shape
    dout2d = channel_major(dout).reshape(f, -1)  # (F, N*OH*OW); free if dout is channel-major
    pixels, rows = dout.shape[2] * dout.shape[3], c * kh * kw + 1  # + the row of ones
    per_block = images_per_block(rows, f, pixels, saved.dtype.itemsize)
    partials = np.empty((-(-n // per_block), f, rows), saved.dtype)  # per block: [dW | db]
    weight2d_t = weight.reshape(f, -1).T
    dxc = buffers.empty((c, n, h, w), dout2d.dtype) if need_dx else None
    col2im_block = loops().col2im_block

    def block(n0: int, n1: int) -> None:
        span = slice(n0 * pixels, n1 * pixels)
        cols = block_columns(saved, rows, pixels, n0, n1, saved.dtype)
        np.matmul(dout2d[:, span], cols.T, out=partials[n0 // per_block])
        if need_dx:
            dcols = buffers.scratch("dcols", (rows - 1, cols.shape[1]), dout2d.dtype)
            np.matmul(weight2d_t, dout2d[:, span], out=dcols)
            col2im_block(dxc, kh, kw, stride, pads, n0, n1, dcols)

    for_each_block(n, per_block, block)
    total = partials.sum(axis=0, dtype=np.float64)
    dweight = total[:, :-1].astype(weight.dtype).reshape(weight.shape)
    dbias = total[:, -1].astype(dout2d.dtype)
    return (nchw_of(dxc) if need_dx else None), dweight, dbias


def im2col(
    x: np.ndarray, kh: int, kw: int, stride: tuple[int, int], pads: tuple[int, int, int, int]
) -> np.ndarray:
    """:func:`scratchcnn.nn.functional.im2col` by the active loops: ``cols`` (C*KH*KW, N*OH*OW)
    of ``x`` (N, C, H, W), all images as one block."""
    n, c, h, w = x.shape
    oh = output_size(h, kh, stride[0], pads[0] + pads[1])
    ow = output_size(w, kw, stride[1], pads[2] + pads[3])
    cols = np.empty((c * kh * kw, n * oh * ow), x.dtype)
    loops().im2col_block(planes(x), kh, kw, stride, pads, 0, n, cols)
    return cols


def col2im(
    cols: np.ndarray,
    x_shape: tuple[int, int, int, int],
    kh: int,
    kw: int,
    stride: tuple[int, int],
    pads: tuple[int, int, int, int],
) -> np.ndarray:
    """:func:`scratchcnn.nn.functional.col2im` by the active loops: ``cols`` (C*KH*KW, N*OH*OW)
    folded back into (N, C, H, W), a channel-major buffer."""
    n, c, h, w = x_shape
    dxc = np.empty((c, n, h, w), cols.dtype)
    loops().col2im_block(dxc, kh, kw, stride, pads, 0, n, np.ascontiguousarray(cols))
    return nchw_of(dxc)


# -- blocks -------------------------------------------------------------------------------------
def images_per_block(rows: int, filters: int, pixels: int, itemsize: int) -> int:
    """Images per block: as many as keep a block's ``rows`` columns and ``filters`` outputs per
    output pixel (``pixels`` = OH*OW per image) within :data:`BLOCK_BYTES`, at least one."""
    return max(1, BLOCK_BYTES // ((rows + filters) * pixels * itemsize))


def for_each_block(n: int, per_block: int, work: Callable[[int, int], None]) -> None:
    """Call ``work(n0, n1)`` for consecutive image ranges of ``per_block`` images covering
    ``range(n)``, spread over the team, BLAS held to one thread per block (a single block, one
    image say, runs on the caller alone)."""
    edges = [*range(0, n, per_block), n]
    with blas.one_thread():
        team.run(lambda i: work(edges[i], edges[i + 1]), len(edges) - 1)


def block_columns(kept: np.ndarray | None, rows: int, pixels: int, n0: int, n1: int, dtype):
    """Images [n0, n1)'s (rows, (n1-n0)*pixels) columns: their place in ``kept`` (the whole
    batch's, block after block), or this thread's scratch when nothing is kept."""
    if kept is None:
        return buffers.scratch("cols", (rows, (n1 - n0) * pixels), dtype)
    return kept[rows * n0 * pixels : rows * n1 * pixels].reshape(rows, (n1 - n0) * pixels)


def weight_bias_matrix(
    weight: np.ndarray, bias: np.ndarray | None, out: np.ndarray | None = None
) -> np.ndarray:
    """(F, C*KH*KW + 1): ``weight`` (F, C, KH, KW) as rows and the bias (0 without one) as the
    last column, the matrix that multiplies a block's columns and their row of ones (written
    into ``out`` when given)."""
    f = len(weight)
    if out is None:
        out = np.empty((f, weight[0].size + 1), weight.dtype)
    out[:, :-1] = weight.reshape(f, -1)
    out[:, -1] = 0 if bias is None else bias
    return out
