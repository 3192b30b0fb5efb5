"""A fast path for predicting a few images at a time (one image, the digits of a webcam frame).

For one 28x28 image the layers' arithmetic is small, and much of a forward pass through the
layers goes to Python around it: every kernel allocates its output, works out its geometry and
dispatches. A :class:`Plan` does that once per input shape: each step of the model is prepared
with the buffers it reads and writes, and a call copies the images in, runs the steps one after
the other on the calling thread and copies the logits out.

The steps run the layers' own kernels on the same blocks of images, so a plan gives the layers'
numbers bit for bit (``tests/test_inference.py``). This module knows the built-in layer types; any
other layer (a user's) runs through its own ``forward``, so a user's layer needs nothing extra.
A plan keeps its buffers between calls, so one plan serves one thread: :class:`Plans` keeps one
per thread, input shape and kernel backend, the few most recently used.
"""

from __future__ import annotations

import threading

import numpy as np

from scratchcnn.nn.functional import output_size
from scratchcnn.nn.fusion import MaxPoolReLU
from scratchcnn.nn.kernels import blas, conv
from scratchcnn.nn.kernels.backend import loops
from scratchcnn.nn.kernels.layout import nchw_of
from scratchcnn.nn.layers import Conv2D, Dense, Dropout, Flatten, MaxPool2D, ReLU

MAX_BATCH = 8  # larger batches go through the layers, whose blocks spread over the team
MAX_PLANS = 8  # plans a model keeps (webcam frames hold a varying number of digits)


class ConvStep:
    """A :class:`Conv2D` on a fixed input buffer: the columns of one block at a time, then its
    product, block after block (the blocks of :func:`scratchcnn.nn.kernels.conv.conv2d_forward`)."""

    def __init__(self, layer: Conv2D, x: np.ndarray):
        n, c, h, w = x.shape
        (kh, kw), stride, pads = layer.kernel_size, layer.stride, layer.pads
        oh = output_size(h, kh, stride[0], pads[0] + pads[1])
        ow = output_size(w, kw, stride[1], pads[2] + pads[3])
        self.pixels, rows = oh * ow, c * kh * kw + 1  # + the row of ones
        self.per_block = conv.images_per_block(rows, layer.filters, self.pixels, x.dtype.itemsize)
        self.layer, self.xc, self.n = layer, x.transpose(1, 0, 2, 3), n
        self.rows, self.memory = (
            rows,
            np.empty(rows * min(n, self.per_block) * self.pixels, x.dtype),
        )
        self.outc = np.empty((layer.filters, n * self.pixels), x.dtype)
        self.out = nchw_of(self.outc.reshape(layer.filters, n, oh, ow))
        self.weight_and_bias = np.empty((layer.filters, rows), x.dtype)

    def __call__(self) -> None:
        layer, pixels = self.layer, self.pixels
        bias = layer.params["bias"].data if layer.use_bias else None
        weight = layer.params["weight"].data
        weight_and_bias = conv.weight_bias_matrix(weight, bias, self.weight_and_bias)
        im2col_block = loops().im2col_block
        for n0 in range(0, self.n, self.per_block):
            n1 = min(n0 + self.per_block, self.n)
            cols = self.memory[: self.rows * (n1 - n0) * pixels].reshape(self.rows, -1)
            im2col_block(self.xc, *layer.kernel_size, layer.stride, layer.pads, n0, n1, cols[:-1])
            cols[-1] = 1
            np.matmul(weight_and_bias, cols, out=self.outc[:, n0 * pixels : n1 * pixels])


class PoolStep:
    """A :class:`MaxPool2D`, with the ReLU after it when ``relu``, on a fixed input buffer: the
    maxima alone (no positions: nothing goes backward)."""

    def __init__(self, layer: MaxPool2D, x: np.ndarray, relu: bool):
        n, c, h, w = x.shape
        oh = output_size(h, layer.pool_size[0], layer.stride[0], 0)
        ow = output_size(w, layer.pool_size[1], layer.stride[1], 0)
        self.layer, self.relu, self.x = layer, relu, x
        self.outc = np.empty((c, n, oh, ow), x.dtype)
        self.out = nchw_of(self.outc)

    def __call__(self) -> None:
        xc = self.x.transpose(1, 0, 2, 3)
        if not xc.flags.c_contiguous:
            xc = np.ascontiguousarray(xc)
        pool = self.layer
        loops().maxpool_forward(xc, self.outc, None, pool.pool_size, pool.stride, self.relu)


class DenseStep:
    """A :class:`Dense` into a fixed output: the product the layer computes (``blas.matmul``)."""

    def __init__(self, layer: Dense, x: np.ndarray):
        self.layer, self.x = layer, x
        self.out = np.empty((x.shape[0], layer.units), x.dtype)

    def __call__(self) -> None:
        params = self.layer.params
        blas.matmul(self.x, params["weight"].data, out=self.out)
        if self.layer.use_bias:
            np.add(self.out, params["bias"].data, out=self.out)


class ReLUStep:
    """A :class:`ReLU` into a fixed output of its input's memory order."""

    def __init__(self, x: np.ndarray):
        self.x, self.out = x, np.empty_like(x)

    def __call__(self) -> None:
        np.maximum(self.x, 0, out=self.out)


class FlattenStep:
    """A :class:`Flatten` of a channel-major input: NCHW order, copied into a fixed output."""

    def __init__(self, layer: Flatten, x: np.ndarray):
        self.x = x
        self.out = np.empty((x.shape[0], *layer.output_shape), x.dtype)

    def __call__(self) -> None:
        np.copyto(self.out.reshape(self.x.shape), self.x)


class LayerStep:
    """Any other layer (or step): its own ``forward``, copied into a fixed output."""

    def __init__(self, layer, x: np.ndarray):
        self.layer, self.x = layer, x
        self.out = np.empty((x.shape[0], *layer_output_shape(layer)), x.dtype)

    def __call__(self) -> None:
        np.copyto(self.out, self.layer.forward(self.x, False))


def layer_output_shape(step) -> tuple[int, ...]:
    """The per-sample output shape of a layer or of a fused step (its last layer's)."""
    layers = getattr(step, "layers", None)
    return tuple((layers[-1] if layers else step).output_shape)


def make_step(step, x: np.ndarray):
    """The prepared form of one step of a model's plan (see
    :func:`scratchcnn.nn.fusion.fused_plan`) reading ``x``, or None when it is the identity."""
    if type(step) is Conv2D:
        return ConvStep(step, x)
    if type(step) is MaxPoolReLU:
        return PoolStep(step.layers[0], x, relu=True)
    if type(step) is MaxPool2D:
        return PoolStep(step, x, relu=False)
    if type(step) is Dense:
        return DenseStep(step, x)
    if type(step) is ReLU:
        return ReLUStep(x)
    if type(step) is Dropout:
        return None  # the identity at inference
    if type(step) is Flatten and x.flags.c_contiguous:
        return None  # a view, made once below
    if type(step) is Flatten:
        return FlattenStep(step, x)
    return LayerStep(step, x)


class Plan:
    """The inference pass of ``steps`` for batches of ``input_shape`` (N, C, H, W) or (N, D)."""

    def __init__(self, steps: list, input_shape: tuple[int, ...], dtype):
        if len(input_shape) == 4:  # channel-major, as the kernels read their inputs
            n, c, h, w = input_shape
            self.input = nchw_of(np.empty((c, n, h, w), dtype))
        else:
            self.input = np.empty(input_shape, dtype)
        self.steps = []
        x = self.input
        for step in steps:
            prepared = make_step(step, x)
            if prepared is not None:
                self.steps.append(prepared)
                x = prepared.out
            elif type(step) is Flatten:
                x = x.reshape(x.shape[0], -1)
        self.output = x

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """The model's output for ``x`` (the plan's input shape), a new array."""
        np.copyto(self.input, x)
        with blas.one_thread():  # the products are small: a second BLAS thread costs more
            for step in self.steps:
                step()
        return self.output.copy()


class Plans:
    """One model's plans by (thread, input shape, loops), the :data:`MAX_PLANS` latest made."""

    def __init__(self):
        self._plans: dict[tuple, Plan] = {}
        self._lock = threading.Lock()

    def forward(self, steps: list, x: np.ndarray) -> np.ndarray:
        """``steps``' inference output for ``x`` (at most :data:`MAX_BATCH` images)."""
        key = (threading.get_ident(), x.shape, loops())
        plan = self._plans.get(key)
        if plan is None:
            plan = Plan(steps, x.shape, x.dtype)
            with self._lock:
                while len(self._plans) >= MAX_PLANS:  # the oldest goes
                    del self._plans[next(iter(self._plans))]
                self._plans[key] = plan
        return plan(x)

    def clear(self) -> None:
        """Drop every plan (the model's layers changed)."""
        with self._lock:
            self._plans.clear()

    def __len__(self) -> int:
        return len(self._plans)
