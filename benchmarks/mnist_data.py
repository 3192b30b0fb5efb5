"""MNIST for the benchmarks: float32 NCHW images in [0, 1] and int64 labels, via scratchcnn.data.

Without ``data_dir`` the files come from ``../shared/data/mnist`` beside the checkout when it holds
them, else from wherever ``scratchcnn.data.load_mnist`` looks (``$SCRATCHCNN_DATA``, the cache).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from scratchcnn.data import load_mnist, to_float_images

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_MNIST = REPO_ROOT.parent / "shared" / "data" / "mnist"


def default_data_dir() -> Path | None:
    """``../shared/data/mnist`` beside the checkout when it holds MNIST, else None."""
    return SHARED_MNIST if (SHARED_MNIST / "train-images-idx3-ubyte.gz").exists() else None


def load_mnist_float(data_dir=None, download: bool = False):
    """((x_train (60000, 1, 28, 28) float32, y_train (60000,) int64), (x_test, y_test))."""
    data_dir = data_dir if data_dir is not None else default_data_dir()
    (x_train, y_train), (x_test, y_test) = load_mnist(data_dir, download=download, progress=False)
    return (
        (to_float_images(x_train), y_train.astype(np.int64)),
        (to_float_images(x_test), y_test.astype(np.int64)),
    )
