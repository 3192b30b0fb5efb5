"""scratchcnn: a convolutional neural network written from scratch in NumPy, with optional Numba
kernels, that learns handwritten digits from MNIST and reads them from a camera.

The package is laid out by who uses it: ``scratchcnn.nn`` (the network library: layers, model,
the plain math in ``nn.functional`` and its fast twins in ``nn.kernels``), ``scratchcnn.data``
(IDX files and datasets), ``scratchcnn.training`` (training on MNIST, its commands) and
``scratchcnn.reader`` (reading digits from frames, its commands). This module is the public face.

Arrays are float32 and NCHW (batch, channels, height, width) unless a docstring says otherwise.
"""

from scratchcnn.data import load_mnist, to_float_images
from scratchcnn.nn.architectures import ARCHITECTURES, build_model
from scratchcnn.nn.export import export_onnx
from scratchcnn.nn.kernels import backend_name, limit_threads, set_backend, set_threads
from scratchcnn.nn.layers import Conv2D, Dense, Dropout, Flatten, Layer, MaxPool2D, Parameter, ReLU
from scratchcnn.nn.losses import (
    OUTLIER,
    OutlierExposureLoss,
    SoftmaxCrossEntropy,
    log_softmax,
    softmax,
)
from scratchcnn.nn.model import Sequential
from scratchcnn.nn.optim import SGD, ConstantSchedule, CosineSchedule, StepSchedule
from scratchcnn.nn.serialization import ModelFileError, load_model, save_model
from scratchcnn.pretrained import load_bundled_model

__version__ = "0.1.0"

__all__ = [
    "ARCHITECTURES",
    "SGD",
    "ConstantSchedule",
    "Conv2D",
    "CosineSchedule",
    "Dense",
    "Dropout",
    "Flatten",
    "Layer",
    "MaxPool2D",
    "ModelFileError",
    "OUTLIER",
    "OutlierExposureLoss",
    "Parameter",
    "ReLU",
    "Sequential",
    "SoftmaxCrossEntropy",
    "StepSchedule",
    "backend_name",
    "build_model",
    "export_onnx",
    "limit_threads",
    "load_bundled_model",
    "load_mnist",
    "load_model",
    "log_softmax",
    "save_model",
    "set_backend",
    "set_threads",
    "softmax",
    "to_float_images",
]
