"""scratchcnn: a convolutional neural network written from scratch in NumPy, with optional Numba
kernels, that learns handwritten digits from MNIST and reads them from a camera.

Arrays are float32 and NCHW (batch, channels, height, width) unless a docstring says otherwise.
"""

from scratchcnn.architectures import ARCHITECTURES, build_model
from scratchcnn.data import load_mnist, to_float_images
from scratchcnn.io import ModelFileError, load_model, save_model
from scratchcnn.kernels import backend_name, set_backend, set_threads
from scratchcnn.layers import Conv2D, Dense, Dropout, Flatten, Layer, MaxPool2D, Parameter, ReLU
from scratchcnn.losses import SoftmaxCrossEntropy, log_softmax, softmax
from scratchcnn.model import Sequential
from scratchcnn.optim import SGD, ConstantSchedule, CosineSchedule, StepSchedule

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
    "Parameter",
    "ReLU",
    "Sequential",
    "SoftmaxCrossEntropy",
    "StepSchedule",
    "backend_name",
    "build_model",
    "load_mnist",
    "load_model",
    "log_softmax",
    "save_model",
    "set_backend",
    "set_threads",
    "softmax",
    "to_float_images",
]
