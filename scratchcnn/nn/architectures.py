"""Named networks for MNIST-sized input (1, 28, 28): the ones the train CLI and benchmarks use."""

from __future__ import annotations

import inspect
from collections.abc import Callable

import numpy as np

from scratchcnn.nn.layers import Conv2D, Dense, Dropout, Flatten, Layer, MaxPool2D, ReLU
from scratchcnn.nn.model import Sequential


def keras_example(num_classes: int = 10, dropout: float = 0.5) -> list[Layer]:
    """The Keras mnist_convnet example: two 3x3 convolutions with pooling, dropout, one Dense."""
    return [
        Conv2D(32, 3), ReLU(), MaxPool2D(2),
        Conv2D(64, 3), ReLU(), MaxPool2D(2),
        Flatten(), Dropout(dropout), Dense(num_classes),
    ]  # fmt: skip


def lenet5(num_classes: int = 10) -> list[Layer]:
    """LeNet-5 in its modern form (ReLU and max pooling instead of tanh and subsampling); it has
    no dropout."""
    return [
        Conv2D(6, 5, padding="same"), ReLU(), MaxPool2D(2),
        Conv2D(16, 5), ReLU(), MaxPool2D(2),
        Flatten(), Dense(120), ReLU(), Dense(84), ReLU(), Dense(num_classes),
    ]  # fmt: skip


def scratchnet(num_classes: int = 10, dropout: float = 0.5) -> list[Layer]:
    """The default: the Keras example's convolutions with "same" padding and a 128-unit hidden
    layer — more capacity where it is cheap, enough to pass 99.3% with augmentation."""
    return [
        Conv2D(32, 3, padding="same"), ReLU(), MaxPool2D(2),
        Conv2D(64, 3, padding="same"), ReLU(), MaxPool2D(2),
        Flatten(), Dropout(dropout / 2), Dense(128), ReLU(), Dropout(dropout), Dense(num_classes),
    ]  # fmt: skip


ARCHITECTURES: dict[str, Callable[..., list[Layer]]] = {
    "keras-example": keras_example,
    "lenet5": lenet5,
    "scratchnet": scratchnet,
}
DEFAULT_ARCHITECTURE = "scratchnet"


def build_model(
    name: str = DEFAULT_ARCHITECTURE,
    seed: int | None = 0,
    rng: np.random.Generator | None = None,
    input_shape=(1, 28, 28),
    num_classes: int = 10,
    dropout: float | None = None,
    dtype=np.float32,
) -> Sequential:
    """A fresh :class:`Sequential` of the named architecture (see ``ARCHITECTURES``).

    ``dropout`` overrides the architecture's rate (0 disables it, e.g. for exact comparisons);
    an architecture without dropout refuses a rate other than 0.
    """
    if name not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {name!r}: choose one of {', '.join(ARCHITECTURES)}")
    kwargs = {"num_classes": num_classes}
    if dropout is not None:
        if "dropout" in inspect.signature(ARCHITECTURES[name]).parameters:
            kwargs["dropout"] = dropout
        elif dropout != 0:
            raise ValueError(f"{name} has no dropout layers: dropout={dropout!r} would be ignored")
    layers = ARCHITECTURES[name](**kwargs)
    return Sequential(layers, input_shape=input_shape, seed=seed, rng=rng, dtype=dtype)
