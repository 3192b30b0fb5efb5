"""Copy weights between a scratchcnn :class:`~scratchcnn.nn.model.Sequential` and a Keras model
(or a PyTorch one: :func:`to_torch_weights`, :func:`from_torch_weights`, at the end).

Works on plain NumPy arrays — the list that a Keras model's ``get_weights()`` returns and
``set_weights()`` takes — so this module never imports Keras. The Keras model must have the same
architecture with channels-last input (N, H, W, C); layers without weights (ReLU, pooling,
Flatten, Dropout) contribute nothing to the list. For each weighted layer, in order:

========================  ==========================  ==============================
layer                     scratchcnn (NCHW)           Keras (channels last)
========================  ==========================  ==============================
Conv2D kernel             (F, C, KH, KW)              (KH, KW, C, F)
Conv2D bias               (F,)                        (F,)
Dense kernel              (D, units)                  (D, units), rows re-ordered *
Dense bias                (units,)                    (units,)
========================  ==========================  ==============================

\\* The first Dense after a Flatten of a (C, H, W) feature map: scratchcnn flattens NCHW, so its
row ``c*H*W + h*W + w`` is Keras's row ``h*W*C + w*C + c`` (Keras flattens NHWC).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from scratchcnn.nn.layers import Conv2D, Dense, Flatten, Layer
from scratchcnn.nn.model import Sequential


def _flattened_from(model: Sequential, index: int) -> tuple[int, int, int] | None:
    """The (C, H, W) map that a Flatten turned into this Dense's input, or None if it was flat.

    Only layers that keep their input's element order (Dropout, ReLU) may sit in between.
    """
    for layer in reversed(model.layers[:index]):
        if isinstance(layer, Flatten):
            shape = layer.input_shape
            return tuple(shape) if len(shape) == 3 else None
        if layer.params or len(layer.input_shape) != 1:
            return None
    return None


def _keras_specs(model: Sequential) -> list[tuple[int, Layer, str, tuple[int, ...]]]:
    """(layer index, layer, parameter name, Keras shape) for every array, in Keras's order."""
    specs = []
    for i, layer in enumerate(model.layers):
        if not layer.params:
            continue
        if not isinstance(layer, (Conv2D, Dense)):
            raise ValueError(
                f"layer {i} ({type(layer).__name__}) has weights but no known Keras counterpart"
            )
        weight = layer.params["weight"].data
        kernel_shape = (
            weight.shape if isinstance(layer, Dense) else weight.transpose(2, 3, 1, 0).shape
        )
        specs.append((i, layer, "weight", kernel_shape))
        if "bias" in layer.params:
            specs.append((i, layer, "bias", layer.params["bias"].data.shape))
    return specs


def _dense_nchw_to_nhwc(weight: np.ndarray, chw: tuple[int, int, int]) -> np.ndarray:
    """Dense kernel rows (C*H*W, units) in NCHW-flatten order -> NHWC-flatten order."""
    c, h, w = chw
    units = weight.shape[1]
    return weight.reshape(c, h, w, units).transpose(1, 2, 0, 3).reshape(c * h * w, units)


def _dense_nhwc_to_nchw(kernel: np.ndarray, chw: tuple[int, int, int]) -> np.ndarray:
    """Dense kernel rows (H*W*C, units) in NHWC-flatten order -> NCHW-flatten order."""
    c, h, w = chw
    units = kernel.shape[1]
    return kernel.reshape(h, w, c, units).transpose(2, 0, 1, 3).reshape(c * h * w, units)


def to_keras_weights(model: Sequential) -> list[np.ndarray]:
    """The model's parameters as the list a channels-last Keras model's ``set_weights`` takes.

    Conv2D kernels (F, C, KH, KW) become (KH, KW, C, F); the Dense after a Flatten has its rows
    re-ordered from NCHW to NHWC flattening; biases and other Dense kernels are copied. Every
    array is a new C-contiguous copy in the model's dtype.
    """
    out = []
    for i, layer, name, _ in _keras_specs(model):
        data = layer.params[name].data
        if name == "weight" and isinstance(layer, Conv2D):
            data = data.transpose(2, 3, 1, 0)
        elif name == "weight":
            chw = _flattened_from(model, i)
            if chw is not None:
                data = _dense_nchw_to_nhwc(data, chw)
        out.append(np.ascontiguousarray(data).copy())
    return out


def keras_weight_shapes(model: Sequential) -> list[tuple[int, ...]]:
    """Shapes of :func:`to_keras_weights`'s arrays: what ``keras_model.get_weights()`` must hold."""
    return [shape for *_, shape in _keras_specs(model)]


def from_keras_weights(model: Sequential, weights: Sequence[np.ndarray]) -> Sequential:
    """Load a Keras model's ``get_weights()`` list into ``model`` in place; return ``model``.

    The inverse of :func:`to_keras_weights`. Arrays are copied into the existing parameter arrays
    (so optimizers holding them keep working), cast to the model's dtype. A list of the
    wrong length or an array of the wrong shape raises ValueError naming the layer and the
    expected shapes, and leaves the model unchanged.
    """

    def convert(i: int, layer: Layer, name: str, array: np.ndarray) -> np.ndarray:
        if name == "weight" and isinstance(layer, Conv2D):
            return array.transpose(3, 2, 0, 1)
        chw = _flattened_from(model, i) if name == "weight" else None
        return array if chw is None else _dense_nhwc_to_nchw(array, chw)

    specs, weights = _keras_specs(model), [np.asarray(w) for w in weights]
    if len(weights) != len(specs):
        expected = ", ".join(str(shape) for *_, shape in specs)
        got = ", ".join(str(w.shape) for w in weights)
        raise ValueError(
            f"Keras weights do not match this model: expected {len(specs)} arrays [{expected}], "
            f"got {len(weights)} [{got}]; build the Keras model with the same architecture"
        )
    return _assign(model, specs, weights, "Keras", " (channels last)", convert)


def _assign(model: Sequential, specs, weights, system: str, layout: str, convert) -> Sequential:
    """Check each of ``weights`` (as many as ``specs``) against ``specs`` ((layer index, layer,
    parameter name, shape) in the other framework's order); convert each array to scratchcnn's
    layout with ``convert(i, layer, name, array)``; and only once all fit, copy them into the
    model's parameters in place (keeping the arrays' identities). ``system`` and ``layout`` name
    the framework and its layout in the error messages."""
    converted = []
    for k, ((i, layer, name, shape), array) in enumerate(zip(specs, weights, strict=True)):
        if array.shape != shape:
            raise ValueError(
                f"{system} weight {k} does not fit layer {i} ({type(layer).__name__}) {name}: "
                f"expected shape {shape}{layout}, got {array.shape}"
            )
        converted.append((layer.params[name], convert(i, layer, name, array)))
    for param, array in converted:
        param.data[...] = array
    return model


# -- PyTorch ------------------------------------------------------------------------------------
# A torch.nn.Sequential of Conv2d / Linear (and weightless modules) in the same order lists its
# parameters weight, bias, weight, bias, ... as ``model.parameters()`` yields them. PyTorch is NCHW
# and flattens channel-major, as scratchcnn does: Conv2d weights are (F, C, KH, KW) on both sides
# and only a Linear's weight differs, (units, D) in PyTorch against our (D, units).


def _torch_specs(model: Sequential) -> list[tuple[int, Layer, str, tuple[int, ...]]]:
    specs = []
    for i, layer, name, _ in _keras_specs(model):  # same layers, same order
        shape = layer.params[name].data.shape
        if name == "weight" and isinstance(layer, Dense):
            shape = shape[::-1]
        specs.append((i, layer, name, shape))
    return specs


def to_torch_weights(model: Sequential) -> list[np.ndarray]:
    """The model's parameters as the arrays of an equivalent ``torch.nn.Sequential``'s
    ``parameters()``, in order: Conv2D weights (F, C, KH, KW) and biases as they are, Dense
    weights transposed to PyTorch's (units, D). New C-contiguous copies in the model's dtype;
    this module never imports torch."""
    out = []
    for _, layer, name, _ in _torch_specs(model):
        data = layer.params[name].data
        if name == "weight" and isinstance(layer, Dense):
            data = data.T
        out.append(np.ascontiguousarray(data).copy())
    return out


def from_torch_weights(model: Sequential, weights: Sequence[np.ndarray]) -> Sequential:
    """Load arrays in :func:`to_torch_weights`'s order and layout (e.g.
    ``[p.detach().numpy() for p in torch_model.parameters()]``) into ``model`` in place; return
    it. A wrong count or shape raises ValueError naming the layer, leaving the model unchanged."""

    def convert(i: int, layer: Layer, name: str, array: np.ndarray) -> np.ndarray:
        return array.T if name == "weight" and isinstance(layer, Dense) else array

    specs, weights = _torch_specs(model), [np.asarray(w) for w in weights]
    if len(weights) != len(specs):
        raise ValueError(
            f"PyTorch weights do not match this model: expected {len(specs)} arrays, "
            f"got {len(weights)}; build the PyTorch model with the same architecture"
        )
    return _assign(model, specs, weights, "PyTorch", "", convert)
