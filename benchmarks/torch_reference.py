"""The scratchcnn networks rebuilt in PyTorch (CPU), the second reference we measure against.

:func:`torch_model_like` translates a scratchcnn :class:`~scratchcnn.Sequential` layer by layer
into a ``torch.nn.Sequential`` with the same layers, padding and parameter order, and copies the
weights through :mod:`scratchcnn.nn.interop` (:func:`to_torch_weights`), so both start from the
same numbers. PyTorch is NCHW and flattens channel-major like scratchcnn: inputs need no
transposing, only a Dense weight is stored transposed (out, in).

* padding: "same" and integer padding become the explicit pads the scratchcnn layer computed,
  symmetric ones as ``Conv2d(padding=...)``, uneven ones ("same" with an even kernel or a
  stride) as a ``ZeroPad2d`` before a ``Conv2d(padding=0)``;
* pooling: ``MaxPool2d(pool, stride)`` (floor, as ours); ReLU, Flatten and Dropout map directly;
* the output is logits; the loss is ``CrossEntropyLoss`` (mean over the batch).

Optimizer: PyTorch's SGD keeps ``v = m*v + g`` and steps ``w -= lr*v``, which for a constant
learning rate is scratchcnn's ``v = m*v - lr*g; w += v`` with the velocity scaled by -lr: the same
updates.

Install a CPU-only build (a few hundred MB instead of several GB with CUDA):
``pip install torch --index-url https://download.pytorch.org/whl/cpu``.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

import scratchcnn as sc
from scratchcnn.nn.interop import from_torch_weights, to_torch_weights


def configure_threads(threads: int | None = None) -> int:
    """PyTorch's intra- and inter-op threads (default: all cores); call before any work."""
    import os

    threads = threads or os.cpu_count() or 1
    torch.set_num_threads(threads)
    try:
        torch.set_num_interop_threads(threads)
    except RuntimeError:  # already set, or parallel work already started
        pass
    return threads


def torch_model_like(model: sc.Sequential, copy_weights: bool = True) -> nn.Sequential:
    """A ``torch.nn.Sequential`` with ``model``'s architecture and dtype, NCHW input; with
    ``copy_weights`` (the default) it starts from ``model``'s weights. Raises ValueError for a
    layer type it cannot translate."""
    dtype = torch.float64 if model.dtype == np.float64 else torch.float32
    modules: list[nn.Module] = []
    for i, layer in enumerate(model.layers):
        if isinstance(layer, sc.Conv2D):
            top, bottom, left, right = layer.pads
            if top == bottom and left == right:
                padding = (top, left)
            else:
                modules.append(nn.ZeroPad2d((left, right, top, bottom)))
                padding = 0
            modules.append(
                nn.Conv2d(
                    layer.input_shape[0],
                    layer.filters,
                    layer.kernel_size,
                    stride=layer.stride,
                    padding=padding,
                    bias=layer.use_bias,
                )
            )
        elif isinstance(layer, sc.Dense):
            modules.append(nn.Linear(layer.input_shape[0], layer.units, bias=layer.use_bias))
        elif isinstance(layer, sc.MaxPool2D):
            modules.append(nn.MaxPool2d(layer.pool_size, stride=layer.stride))
        elif isinstance(layer, sc.ReLU):
            modules.append(nn.ReLU())
        elif isinstance(layer, sc.Flatten):
            modules.append(nn.Flatten())
        elif isinstance(layer, sc.Dropout):
            modules.append(nn.Dropout(layer.rate))
        else:
            raise ValueError(f"layer {i} ({type(layer).__name__}) has no PyTorch translation")
    tmodel = nn.Sequential(*modules).to(dtype)
    if copy_weights:
        with torch.no_grad():
            for param, array in zip(tmodel.parameters(), to_torch_weights(model), strict=True):
                param.copy_(torch.from_numpy(array))
    return tmodel


def build_torch_model(name: str = "keras-example", seed: int | None = 0, dropout=None):
    """The named scratchcnn architecture in PyTorch, with scratchcnn's initial weights for
    ``seed`` (the same start as ``sc.build_model(name, seed=seed)``)."""
    return torch_model_like(sc.build_model(name, seed=seed, dropout=dropout))


def scratchcnn_from_torch(tmodel: nn.Module, name: str, **build_kwargs) -> sc.Sequential:
    """A scratchcnn model of architecture ``name`` holding ``tmodel``'s weights."""
    weights = [p.detach().cpu().numpy() for p in tmodel.parameters()]
    return from_torch_weights(sc.build_model(name, **build_kwargs), weights)


def versions() -> dict:
    """PyTorch's version and CPU build facts, for reports."""
    return {
        "torch": torch.__version__,
        "mkldnn": bool(torch.backends.mkldnn.is_available()),
        "cuda_build": torch.version.cuda is not None,
    }
