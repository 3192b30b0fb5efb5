"""Max pooling and ReLU as the layers run them: :func:`scratchcnn.nn.functional.maxpool2d_forward`,
``maxpool2d_backward``, ``relu_forward`` and ``relu_backward``, the same numbers, in reused
buffers and channel-major layout.

Pooling works plane by plane (one channel of one image), so it reads its input as the
(C, N, H, W) planes a convolution hands on, for free, and writes its output the same way. The
active loops (:func:`~scratchcnn.nn.kernels.backend.loops`) take each window's maximum: NumPy one
window offset at a time over every plane, Numba one plane at a time in a compiled loop, spread
over the team's threads. A ReLU right after a pooling runs inside it (``relu=True``,
:class:`scratchcnn.nn.fusion.MaxPoolReLU`): max(relu(x)) = relu(max(x)), on a 4x smaller array.
"""

from __future__ import annotations

import numpy as np

from scratchcnn.nn.functional import output_size
from scratchcnn.nn.kernels import buffers
from scratchcnn.nn.kernels.backend import loops
from scratchcnn.nn.kernels.layout import nchw_of, planes


def maxpool2d_forward(
    x: np.ndarray,
    pool: tuple[int, int],
    stride: tuple[int, int],
    relu: bool = False,
    training: bool = False,
) -> tuple[np.ndarray, np.ndarray | None]:
    """The maximum of each window of ``x`` (N, C, H, W), floor mode: return ``(out, argmax)``,
    out (N, C, OH, OW) and, when ``training``, argmax (uint8, ``i*KW + j`` of each window's first
    maximum; else None: inference needs no positions, and skips finding them). With ``relu``,
    out is max(out, 0) too. Both are channel-major buffers seen as NCHW."""
    n, c, h, w = x.shape
    oh = output_size(h, pool[0], stride[0], 0)
    ow = output_size(w, pool[1], stride[1], 0)
    out = buffers.empty((c, n, oh, ow), x.dtype)
    argmax = buffers.empty((c, n, oh, ow), np.uint8) if training else None
    loops().maxpool_forward(planes(x), out, argmax, pool, stride, relu)
    return nchw_of(out), (nchw_of(argmax) if training else None)


def maxpool2d_backward(
    dout: np.ndarray,
    argmax: np.ndarray,
    x_shape: tuple[int, int, int, int],
    pool: tuple[int, int],
    stride: tuple[int, int],
) -> np.ndarray:
    """Route each window's gradient in ``dout`` (N, C, OH, OW) to the input that won it; return
    dx of ``x_shape`` (N, C, H, W), a channel-major buffer. Overlapping windows add up."""
    n, c, h, w = x_shape
    dxc = buffers.empty((c, n, h, w), dout.dtype)
    loops().maxpool_backward(planes(dout), planes(argmax), dxc, pool, stride)
    return nchw_of(dxc)


def relu_forward(x: np.ndarray) -> np.ndarray:
    """max(x, 0), elementwise (NaN kept), in ``x``'s memory order."""
    return np.maximum(x, 0, out=buffers.empty_like(x))


def relu_backward(dout: np.ndarray, out: np.ndarray) -> np.ndarray:
    """``dout`` where the ReLU's output ``out`` was positive, 0 elsewhere (a masked entry may be
    -0.0)."""
    positive = np.greater(out, 0, out=buffers.empty_like(out, np.bool_))
    return np.multiply(dout, positive, out=buffers.empty_like(dout), dtype=dout.dtype)
