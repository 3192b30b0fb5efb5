"""Export a :class:`~scratchcnn.nn.model.Sequential` to ONNX, the format OpenCV's DNN module and
onnxruntime read. Needs the ``onnx`` package (``pip install "scratchcnn[export]"``).

Each layer becomes the standard operator that computes the same thing, in the model's own layer
order, NCHW throughout, weights as float32 initializers:

==============  ===========================================================================
layer           ONNX (opset 13)
==============  ===========================================================================
Conv2D          ``Conv``: kernel_shape, strides, pads (top, left, bottom, right; "same" is
                written out as the explicit, possibly uneven pads the layer computed), bias
                input only with ``use_bias``
MaxPool2D       ``MaxPool``: kernel_shape, strides, no padding (floor, as Keras's "valid")
ReLU            ``Relu``
Flatten         ``Flatten(axis=1)``: NCHW order, as scratchcnn flattens
Dense           ``Gemm``: x @ weight (+ bias); the weight keeps its (D, units) layout
Dropout         nothing: the identity at inference
==============  ===========================================================================

A ReLU followed by a MaxPool2D, which scratchcnn runs as one fused step (pooling first), is
exported as the two standard operators in the model's order; the numbers are the same. The graph
has one input ``input`` of shape (batch, C, H, W) and one output ``logits`` of shape (batch,
classes), the batch dimension left free. A layer type without a translation (your own layer, a
subclass) raises :class:`ExportError` naming it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from scratchcnn.files import atomic_write
from scratchcnn.nn.layers import Conv2D, Dense, Dropout, Flatten, MaxPool2D, ReLU
from scratchcnn.nn.model import Sequential

OPSET = 13
INPUT_NAME, OUTPUT_NAME = "input", "logits"
EXPORTABLE = (Conv2D, MaxPool2D, ReLU, Flatten, Dense, Dropout)


class ExportError(ValueError):
    """The model cannot be written as ONNX; the message names the layer and why."""


def _onnx():
    try:
        import onnx
    except ImportError as err:
        raise ImportError(
            'ONNX export needs the onnx package: pip install "scratchcnn[export]"'
        ) from err
    return onnx


def to_onnx(model: Sequential, name: str = "scratchcnn"):
    """The model as an ``onnx.ModelProto`` (checked by ``onnx.checker``); see the module notes."""
    if not isinstance(model, Sequential):
        raise ExportError(f"expected a scratchcnn Sequential model, got {type(model).__name__}")
    onnx = _onnx()
    from onnx import TensorProto, helper, numpy_helper

    nodes, initializers = [], []
    current = INPUT_NAME

    def weight(array: np.ndarray, label: str) -> str:
        initializers.append(numpy_helper.from_array(np.asarray(array, np.float32), label))
        return label

    for i, layer in enumerate(model.layers):
        kind = type(layer)
        if kind not in EXPORTABLE:
            known = ", ".join(k.__name__ for k in EXPORTABLE)
            raise ExportError(
                f"layer {i} ({kind.__name__}) has no ONNX translation: exportable layers are "
                f"{known}"
            )
        if kind is Dropout:
            continue
        out = f"layer{i}_{kind.__name__.lower()}"
        if kind is Conv2D:
            inputs = [current, weight(layer.params["weight"].data, f"layers.{i}.weight")]
            if layer.use_bias:
                inputs.append(weight(layer.params["bias"].data, f"layers.{i}.bias"))
            top, bottom, left, right = layer.pads
            nodes.append(
                helper.make_node(
                    "Conv", inputs, [out], name=f"layer{i}",
                    kernel_shape=list(layer.kernel_size), strides=list(layer.stride),
                    pads=[top, left, bottom, right], dilations=[1, 1], group=1,
                )
            )  # fmt: skip
        elif kind is MaxPool2D:
            nodes.append(
                helper.make_node(
                    "MaxPool", [current], [out], name=f"layer{i}",
                    kernel_shape=list(layer.pool_size), strides=list(layer.stride),
                )
            )  # fmt: skip
        elif kind is ReLU:
            nodes.append(helper.make_node("Relu", [current], [out], name=f"layer{i}"))
        elif kind is Flatten:
            nodes.append(helper.make_node("Flatten", [current], [out], name=f"layer{i}", axis=1))
        elif kind is Dense:
            inputs = [current, weight(layer.params["weight"].data, f"layers.{i}.weight")]
            if layer.use_bias:
                inputs.append(weight(layer.params["bias"].data, f"layers.{i}.bias"))
            nodes.append(helper.make_node("Gemm", inputs, [out], name=f"layer{i}"))
        current = out
    if current == INPUT_NAME:
        nodes.append(helper.make_node("Identity", [current], [OUTPUT_NAME], name="output"))
    else:  # the last node writes the graph's output
        nodes[-1].output[0] = OUTPUT_NAME

    graph = helper.make_graph(
        nodes,
        name,
        [helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, ["batch", *model.input_shape])],
        [helper.make_tensor_value_info(OUTPUT_NAME, TensorProto.FLOAT, ["batch", *model.output_shape])],
        initializer=initializers,
    )  # fmt: skip
    from scratchcnn import __version__

    proto = helper.make_model(
        graph,
        producer_name="scratchcnn",
        producer_version=__version__,
        opset_imports=[helper.make_opsetid("", OPSET)],
        doc_string="logits of a scratchcnn Sequential; softmax gives the class probabilities",
    )
    proto.ir_version = min(proto.ir_version, 8)  # readable by older runtimes (OpenCV, onnxruntime)
    onnx.checker.check_model(proto, full_check=True)
    return proto


def export_onnx(model: Sequential, path) -> Path:
    """Write ``model`` as an ONNX file at ``path`` (atomically, as every scratchcnn file:
    :func:`scratchcnn.files.atomic_write`); return the path. Float32 input (batch, C, H, W) ->
    logits (batch, classes)."""
    path = Path(path)
    data = to_onnx(model, name=path.stem or "scratchcnn").SerializeToString()
    atomic_write(path, lambda stream: stream.write(data))
    return path
