"""Inference plans: a model's forward pass bound to fixed buffers for one input shape.

Predicting one image is mostly overhead when every layer allocates its output, prepares its
kernel's arguments and dispatches through Python: measured on the Keras example, the layers' own
arithmetic is less than half of a 0.2 ms call. A plan does that preparation once per input shape:
each step of the model (:func:`scratchcnn.model.fused_plan`) is bound to the buffer holding its
input (``Layer.bind``), and a call copies the batch in, runs the bound kernels one after the other
and copies the result out. The convolutions' blocks of images and products are the ones the
layers run, and pooling takes the same maxima (without their positions, which only a backward pass
needs), so a plan gives the same numbers, bit for bit.

A plan keeps its buffers between calls, so one plan must not run on two threads at once: a
:class:`~scratchcnn.model.Sequential` keeps one per thread and input shape.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from scratchcnn.kernels import blas
from scratchcnn.kernels.layout import nchw_of

MAX_BATCH = 8  # larger batches go through the layers, whose blocks spread over the team
MAX_PLANS = 8  # plans a model keeps (webcam frames hold a varying number of digits)


class InferencePlan:
    """The inference pass of ``steps`` (layers, or fused steps with a ``bind`` method) for
    batches of shape ``input_shape`` (N, C, H, W) or (N, D), in ``dtype``."""

    def __init__(self, steps: list, input_shape: tuple[int, ...], dtype):
        if len(input_shape) == 4:  # channel-major, as the kernels prefer their inputs
            n, c, h, w = input_shape
            self.input = nchw_of(np.empty((c, n, h, w), dtype))
        else:
            self.input = np.empty(input_shape, dtype)
        self.runs: list[Callable[[], None]] = []
        x = self.input
        for step in steps:
            x, run = step.bind(x)
            if run is not None:
                self.runs.append(run)
        self.output = x

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """The model's output for ``x`` (the plan's input shape), a new array."""
        np.copyto(self.input, x)
        with blas.one_thread():  # the products are small: a second BLAS thread costs more
            for run in self.runs:
                run()
        return self.output.copy()
