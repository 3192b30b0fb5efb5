"""The im2col convolution, forward and backward, computed in blocks of images: shared by both
backends, which differ only in how they fill a block's im2col columns and fold column gradients
back into the input gradient (their "fillers").

Why blocks. A whole-batch im2col matrix is large (the Keras example's second convolution:
288 x 15,488 floats, 18 MB), and so is its gradient; written in one pass and read back by a
separate matrix product, both go out to memory and back, and a product on two cores is split by
OpenBLAS into one fixed share per core, which a busy machine stalls. Here one block of a few
images does all its work before the next: forward, fill its columns and multiply them (the bias
rides in the product) while they are in the core's cache; backward, its share of the weight and
bias gradients (one product), its column gradients (into a per-thread scratch that never leaves
the cache) folded back at once.
Blocks are handed out one at a time to the cores (:mod:`scratchcnn.kernels.team`), BLAS on one
thread each, so two cores split the whole layer, not just its products.

The block size depends only on the layer's shape and dtype (:func:`images_per_block`), and the
weight and bias gradients are sums of per-block partial products added in float64 in block order:
the numbers never depend on how many threads ran the blocks, bit for bit.

Layouts: a block's columns are a C-contiguous (C*KH*KW, n*OH*OW) matrix, row (c, i, j), column
(image, y, x); training keeps them block after block in one buffer for the backward pass. The
convolution's output and the input gradient are channel-major (C, N, H, W) buffers handed on as
NCHW views (:mod:`scratchcnn.kernels.layout`).
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable

import numpy as np

from scratchcnn.kernels import blas, buffers, team
from scratchcnn.kernels.layout import channel_major, nchw_of

BLOCK_BYTES = 1 << 20  # a block's columns plus its output: about one core's L2 cache

# A filler fills the columns ``cols`` (C*KH*KW, (n1-n0)*OH*OW, C-contiguous) of images [n0, n1),
# or folds them back into the input gradient. It is made once per call, so that the per-call
# preparation (flat views, padding) is not repeated per block.
Filler = Callable[[int, int, np.ndarray], None]

_local = threading.local()  # each thread's scratch arrays


def output_size(size: int, kernel: int, stride: int, pad_total: int) -> int:
    """Spatial output size of a window of ``kernel`` sliding by ``stride`` over padded ``size``."""
    return (size + pad_total - kernel) // stride + 1


def images_per_block(rows: int, filters: int, pixels: int, itemsize: int) -> int:
    """Images per block: as many as keep a block's ``rows`` columns and ``filters`` outputs per
    output pixel (``pixels`` = OH*OW per image) within :data:`BLOCK_BYTES`, at least one."""
    return max(1, BLOCK_BYTES // ((rows + filters) * pixels * itemsize))


def for_each_block(n: int, per_block: int, work: Callable[[int, int], None]) -> None:
    """Call ``work(n0, n1)`` for consecutive image ranges of ``per_block`` images covering
    ``range(n)``, spread over the team, BLAS held to one thread per block. A single block (one
    image, say) runs on the caller alone (``team.run`` does that for one chunk): handing part of it
    to a sleeping thread costs more than it saves (measured, one image through the Keras example:
    BLAS's own second thread, asleep between images, made it slower in three rounds of four, by up
    to 0.18 ms)."""
    edges = [*range(0, n, per_block), n]
    with blas.one_thread():
        team.run(lambda i: work(edges[i], edges[i + 1]), len(edges) - 1)


def scratch(name: str, shape: tuple[int, ...], dtype) -> np.ndarray:
    """This thread's scratch array ``name`` of ``shape``, reused from call to call (grown when too
    small): written and read again while it is in this core's cache."""
    dtype = np.dtype(dtype)
    nbytes = dtype.itemsize * math.prod(shape)
    memory = getattr(_local, name, None)
    if memory is None or memory.nbytes < nbytes:
        memory = np.empty(nbytes, np.uint8)
        setattr(_local, name, memory)
    return memory[:nbytes].view(dtype).reshape(shape)


def _block_columns(kept: np.ndarray | None, rows: int, pixels: int, n0: int, n1: int, dtype):
    """Images [n0, n1)'s (rows, (n1-n0)*pixels) columns: their place in ``kept`` (the whole
    batch's, block after block), or this thread's scratch when nothing is kept."""
    if kept is None:
        return scratch("cols", (rows, (n1 - n0) * pixels), dtype)
    return kept[rows * n0 * pixels : rows * n1 * pixels].reshape(rows, (n1 - n0) * pixels)


def _weight_and_bias(out: np.ndarray, weight: np.ndarray, bias: np.ndarray | None) -> np.ndarray:
    """``out`` (F, C*KH*KW + 1) filled with ``weight`` (F, C, KH, KW) as rows and the bias (0
    without one) as the last column: the matrix that multiplies a block's columns and their row of
    ones."""
    out[:, :-1] = weight.reshape(len(weight), -1)
    out[:, -1] = 0 if bias is None else bias
    return out


def backend_functions(
    im2col_filler: Callable[..., Filler],
    col2im_filler: Callable[..., Filler],
    im2col_bound: Callable[..., Callable[[], None]],
):
    """The convolution functions every backend exports — ``im2col``, ``col2im``,
    ``conv2d_forward``, ``conv2d_backward``, ``bind_conv2d_forward`` — made from the backend's
    two fillers and its bound im2col (``im2col_bound(x, kh, kw, stride, pads, n0, n1, cols)``:
    a call with no arguments that fills ``cols`` from what ``x`` holds at that moment), so that
    the backends share one signature and one implementation of each."""

    def im2col(
        x: np.ndarray, kh: int, kw: int, stride: tuple[int, int], pads: tuple[int, int, int, int]
    ) -> np.ndarray:
        """Unfold ``x`` (N, C, H, W) into ``cols`` (C*KH*KW, N*OH*OW), one column per output
        pixel (one block of all images)."""
        n, c, h, w = x.shape
        oh = output_size(h, kh, stride[0], pads[0] + pads[1])
        ow = output_size(w, kw, stride[1], pads[2] + pads[3])
        cols = np.empty((c * kh * kw, n * oh * ow), x.dtype)
        im2col_filler(x, kh, kw, stride, pads)(0, n, cols)
        return cols

    def col2im(
        cols: np.ndarray,
        x_shape: tuple[int, int, int, int],
        kh: int,
        kw: int,
        stride: tuple[int, int],
        pads: tuple[int, int, int, int],
    ) -> np.ndarray:
        """Fold ``cols`` (C*KH*KW, N*OH*OW) back to (N, C, H, W), summing where windows overlap:
        the adjoint of ``im2col``; a channel-major buffer seen as NCHW."""
        n, c, h, w = x_shape
        dx = np.empty((c, n, h, w), cols.dtype)
        col2im_filler(dx, kh, kw, stride, pads)(0, n, np.ascontiguousarray(cols))
        return nchw_of(dx)

    def conv2d_forward(
        x: np.ndarray,
        weight: np.ndarray,
        bias: np.ndarray | None,
        stride: tuple[int, int],
        pads: tuple[int, int, int, int],
        training: bool = True,
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Convolve ``x`` (N, C, H, W) with ``weight`` (F, C, KH, KW) plus ``bias`` (F,); return
        (out (N, F, OH, OW), saved): ``saved`` holds the columns for ``conv2d_backward`` when
        ``training``, else None.

        The bias rides in the product: each block's columns end with a row of ones and the weight
        matrix with a column holding the bias (0 without one), so no separate pass adds it, and the
        backward pass gets the bias gradient from the weight gradient's product, as its last column.
        """
        n, c, h, w = x.shape
        f, _, kh, kw = weight.shape
        oh = output_size(h, kh, stride[0], pads[0] + pads[1])
        ow = output_size(w, kw, stride[1], pads[2] + pads[3])
        pixels, rows = oh * ow, c * kh * kw + 1  # + the row of ones
        out = buffers.empty((f, n * pixels), x.dtype)
        kept = buffers.empty((rows * n * pixels,), x.dtype) if training else None
        fill = im2col_filler(x, kh, kw, stride, pads)
        weight_and_bias = _weight_and_bias(np.empty((f, rows), x.dtype), weight, bias)

        def block(n0: int, n1: int) -> None:
            cols = _block_columns(kept, rows, pixels, n0, n1, x.dtype)
            fill(n0, n1, cols[:-1])
            cols[-1] = 1
            np.matmul(weight_and_bias, cols, out=out[:, n0 * pixels : n1 * pixels])

        for_each_block(n, images_per_block(rows, f, pixels, x.dtype.itemsize), block)
        return nchw_of(out.reshape(f, n, oh, ow)), kept

    def bind_conv2d_forward(
        x: np.ndarray,
        filters: int,
        kh: int,
        kw: int,
        stride: tuple[int, int],
        pads: tuple[int, int, int, int],
    ) -> tuple[np.ndarray, Callable[[np.ndarray, np.ndarray | None], None]]:
        """``conv2d_forward`` at inference, bound to fixed buffers (see ``Layer.bind``): return
        (out (N, F, OH, OW), run); each ``run(weight, bias)`` convolves the current contents of
        ``x`` into ``out``. Everything a call of ``conv2d_forward`` prepares is prepared here once;
        the blocks are the same, computed one after the other on the caller: the same numbers."""
        n, c, h, w = x.shape
        oh = output_size(h, kh, stride[0], pads[0] + pads[1])
        ow = output_size(w, kw, stride[1], pads[2] + pads[3])
        pixels, rows = oh * ow, c * kh * kw + 1  # + the row of ones
        per_block = min(n, images_per_block(rows, filters, pixels, x.dtype.itemsize))
        out = np.empty((filters, n * pixels), x.dtype)
        memory = np.empty(rows * per_block * pixels, x.dtype)  # one block's columns at a time
        weight_and_bias = np.empty((filters, rows), x.dtype)
        blocks = []  # (fill the block's columns, their row of ones, the columns, their output)
        for n0 in range(0, n, per_block):
            n1 = min(n0 + per_block, n)
            cols = memory[: rows * (n1 - n0) * pixels].reshape(rows, -1)
            fill = im2col_bound(x, kh, kw, stride, pads, n0, n1, cols[:-1])
            blocks.append((fill, cols[-1], cols, out[:, n0 * pixels : n1 * pixels]))

        def run(weight: np.ndarray, bias: np.ndarray | None) -> None:
            _weight_and_bias(weight_and_bias, weight, bias)
            for fill, ones, cols, share in blocks:
                fill()
                ones.fill(1)
                np.matmul(weight_and_bias, cols, out=share)

        return nchw_of(out.reshape(filters, n, oh, ow)), run

    def conv2d_backward(
        dout: np.ndarray,
        saved: np.ndarray,
        x_shape: tuple[int, int, int, int],
        weight: np.ndarray,
        stride: tuple[int, int],
        pads: tuple[int, int, int, int],
        need_dx: bool = True,
    ) -> tuple[np.ndarray | None, np.ndarray, np.ndarray]:
        """Gradients of ``conv2d_forward`` given ``dout`` (N, F, OH, OW) and what it ``saved``:
        (dx (N, C, H, W) or None, dweight like ``weight``, dbias (F,))."""
        n, c, h, w = x_shape
        f, _, kh, kw = weight.shape
        dout2d = channel_major(dout).reshape(f, -1)  # (F, N*OH*OW); free if dout is channel-major
        pixels, rows = dout.shape[2] * dout.shape[3], c * kh * kw + 1  # + the row of ones
        per_block = images_per_block(rows, f, pixels, saved.dtype.itemsize)
        blocks = -(-n // per_block)
        partials = np.empty((blocks, f, rows), saved.dtype)  # per block: [dweight | dbias]
        weight2d_t = weight.reshape(f, -1).T
        if need_dx:
            dx = buffers.empty((c, n, h, w), dout2d.dtype)
            fold = col2im_filler(dx, kh, kw, stride, pads)

        def block(n0: int, n1: int) -> None:
            i, span = n0 // per_block, slice(n0 * pixels, n1 * pixels)
            cols = _block_columns(saved, rows, pixels, n0, n1, saved.dtype)
            np.matmul(dout2d[:, span], cols.T, out=partials[i])
            if need_dx:
                dcols = scratch("dcols", (rows - 1, cols.shape[1]), dout2d.dtype)
                np.matmul(weight2d_t, dout2d[:, span], out=dcols)
                fold(n0, n1, dcols)

        for_each_block(n, per_block, block)
        total = partials.sum(axis=0, dtype=np.float64)
        dweight = total[:, :-1].astype(weight.dtype).reshape(weight.shape)
        dbias = total[:, -1].astype(dout2d.dtype)
        return (nchw_of(dx) if need_dx else None), dweight, dbias

    return im2col, col2im, conv2d_forward, conv2d_backward, bind_conv2d_forward
