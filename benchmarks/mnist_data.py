"""MNIST for the benchmarks: float32 NCHW images in [0, 1] and int64 labels, via scratchcnn.data.

Without ``data_dir`` the files come from wherever ``scratchcnn.data.load_mnist`` looks
(``$SCRATCHCNN_DATA/mnist``, then the user cache).
"""

from __future__ import annotations

import numpy as np

from scratchcnn.data import load_mnist, to_float_images


def load_mnist_float(data_dir=None, download: bool = False):
    """((x_train (60000, 1, 28, 28) float32, y_train (60000,) int64), (x_test, y_test))."""
    (x_train, y_train), (x_test, y_test) = load_mnist(data_dir, download=download, progress=False)
    return (
        (to_float_images(x_train), y_train.astype(np.int64)),
        (to_float_images(x_test), y_test.astype(np.int64)),
    )
