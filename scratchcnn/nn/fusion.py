"""The steps a model runs: its layers, except that a ReLU right before a MaxPool2D runs after
it, inside the pooling kernel (:class:`MaxPoolReLU`), the same numbers on a smaller array and
without a pass of its own."""

from __future__ import annotations

import numpy as np

from scratchcnn.nn.kernels import pool
from scratchcnn.nn.layers import Layer, MaxPool2D, ReLU


def execution_order(layers: list[Layer]) -> list[Layer]:
    """The order in which to run ``layers``: theirs, except that a ReLU directly followed by a
    MaxPool2D runs after it.

    ReLU is monotone, so max(relu(x)) == relu(max(x)) exactly, and the gradient is the same too:
    a window whose maximum is positive sends its gradient to the same first maximum in both orders,
    and a window whose maximum is <= 0 sends 0 in both. Run second, the ReLU touches the pooled
    output (4x smaller for 2x2 pooling) instead of the convolution's, forward and backward.
    """
    plan = list(layers)
    for i in range(len(plan) - 1):
        if type(plan[i]) is ReLU and type(plan[i + 1]) is MaxPool2D:
            plan[i], plan[i + 1] = plan[i + 1], plan[i]
    return plan


class MaxPoolReLU:
    """A MaxPool2D and the ReLU that runs after it (see :func:`execution_order`), as one step:
    the pooling kernel applies max(., 0) while each row is in cache, and the backward pass masks
    the gradient, then routes it. The same numbers as the two layers one after the other; the
    layer objects themselves are left untouched (they still work on their own)."""

    def __init__(self, maxpool: MaxPool2D, relu: ReLU):
        self.layers = (maxpool, relu)
        self._cache = None

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        maxpool = self.layers[0]
        out, argmax = pool.maxpool2d_forward(x, maxpool.pool_size, maxpool.stride, True, training)
        self._cache = (argmax, x.shape, out) if training else None
        return out

    def backward(self, dout: np.ndarray) -> np.ndarray:
        maxpool = self.layers[0]
        argmax, x_shape, out = maxpool._require_cache(self._cache)
        self._cache = None
        dout = pool.relu_backward(dout, out)
        return pool.maxpool2d_backward(dout, argmax, x_shape, maxpool.pool_size, maxpool.stride)


def fused_plan(layers: list[Layer]) -> list:
    """The steps a :class:`Sequential` runs: :func:`execution_order`, with each MaxPool2D that a
    ReLU follows merged with it into one :class:`MaxPoolReLU` step."""
    plan, steps = execution_order(layers), []
    for layer in plan:
        if type(layer) is ReLU and steps and type(steps[-1]) is MaxPool2D:
            steps[-1] = MaxPoolReLU(steps[-1], layer)
        else:
            steps.append(layer)
    return steps
