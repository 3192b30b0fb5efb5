"""Numerical gradient checking by central differences in float64, for any layer or model.

Use it on your own layer the way the test suite uses it on the built-in ones::

    errors = check_layer(MyLayer(...), input_shape=(3, 9, 11))
    assert max(errors.values()) < 1e-6

The relative error of an analytic gradient ``a`` against a numerical one ``n`` is
``max|a - n| / max(max|a|, max|n|)``: the worst element's error measured against the gradient's
own scale, so entries that happen to be near zero do not make a correct gradient look wrong.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from scratchcnn.nn.layers import Layer
from scratchcnn.nn.losses import SoftmaxCrossEntropy


def numerical_gradient(f: Callable[[], float], x: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """d f() / d x by central differences, perturbing ``x`` (float64) in place element by element."""
    if x.dtype != np.float64:
        raise TypeError(f"numerical gradients need float64 arrays, got {x.dtype}")
    grad = np.zeros_like(x)
    flat_x, flat_g = x.reshape(-1), grad.reshape(-1)
    if not np.shares_memory(flat_x, x):
        raise ValueError("x must be contiguous so it can be perturbed in place")
    for i in range(flat_x.size):
        original = flat_x[i]
        flat_x[i] = original + eps
        plus = f()
        flat_x[i] = original - eps
        minus = f()
        flat_x[i] = original
        flat_g[i] = (plus - minus) / (2 * eps)
    return grad


def relative_error(analytic: np.ndarray, numerical: np.ndarray) -> float:
    """max|a - n| / max(max|a|, max|n|); 0.0 when both are exactly zero."""
    analytic, numerical = np.asarray(analytic, np.float64), np.asarray(numerical, np.float64)
    if analytic.shape != numerical.shape:
        raise ValueError(f"shapes differ: {analytic.shape} vs {numerical.shape}")
    scale = max(np.abs(analytic).max(initial=0.0), np.abs(numerical).max(initial=0.0))
    return 0.0 if scale == 0.0 else float(np.abs(analytic - numerical).max() / scale)


def _replay_randomness(layers) -> Callable[[], None]:
    """A function restoring every layer's generator, so repeated forwards draw identical masks."""
    generators = {id(g): g for g in (getattr(layer, "rng", None) for layer in layers) if g}
    states = {key: g.bit_generator.state for key, g in generators.items()}

    def restore():
        for key, g in generators.items():
            g.bit_generator.state = states[key]

    return restore


def check_layer(
    layer: Layer,
    input_shape,
    batch: int = 2,
    rng: np.random.Generator | None = None,
    x: np.ndarray | None = None,
    training: bool = True,
    eps: float = 1e-6,
) -> dict[str, float]:
    """Build ``layer`` in float64 for per-sample ``input_shape`` and compare its backward pass
    with central differences of ``L = sum(forward(x) * R)`` for a random ``R``.

    Returns the relative error for ``"input"`` (unless the layer skips its input gradient) and for
    each parameter by name. ``x`` defaults to standard-normal (never zeros) of shape
    (batch, *input_shape).
    """
    rng = rng or np.random.default_rng(0)
    output_shape = tuple(layer.build(tuple(input_shape), rng, np.float64))
    if x is None:
        x = rng.standard_normal((batch, *input_shape))
    x = np.array(x, dtype=np.float64)
    restore = _replay_randomness([layer])
    restore()
    upstream = rng.standard_normal((x.shape[0], *output_shape))

    def loss() -> float:
        restore()
        return float((layer.forward(x, training) * upstream).sum())

    restore()
    layer.forward(x, training=True)
    dx = layer.backward(upstream)
    analytic = {name: p.grad.copy() for name, p in layer.params.items()}
    errors = {}
    if dx is not None:
        errors["input"] = relative_error(dx, numerical_gradient(loss, x, eps))
    for name, param in layer.params.items():
        errors[name] = relative_error(analytic[name], numerical_gradient(loss, param.data, eps))
    return errors


def check_model(model, x: np.ndarray, y: np.ndarray, eps: float = 1e-6) -> dict[str, float]:
    """Compare the gradient of the model's mean softmax cross-entropy on (x, y) with respect to
    every parameter against central differences. The model must be built in float64; dropout
    masks are replayed identically for every evaluation. Returns errors by parameter name."""
    if model.dtype != np.float64:
        raise TypeError("build the model with dtype=np.float64 to check its gradients")
    criterion = SoftmaxCrossEntropy()
    restore = _replay_randomness(model.layers)

    def loss() -> float:
        restore()
        return criterion.forward(model.forward(x, training=True), y)

    loss()
    model.backward(criterion.backward())
    analytic = {name: p.grad.copy() for name, p in model.named_parameters()}
    return {
        name: relative_error(analytic[name], numerical_gradient(loss, p.data, eps))
        for name, p in model.named_parameters()
    }
