"""MNIST for the benchmarks: float32 NCHW images in [0, 1] and int64 labels.

Uses ``scratchcnn.data.load_mnist`` when the library has it and otherwise reads the four IDX .gz
files directly (16-byte header for images, 8 bytes for labels).
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_MNIST = REPO_ROOT.parent / "shared" / "data" / "mnist"
FILES = {
    "x_train": ("train-images-idx3-ubyte.gz", 16, (28, 28)),
    "y_train": ("train-labels-idx1-ubyte.gz", 8, ()),
    "x_test": ("t10k-images-idx3-ubyte.gz", 16, (28, 28)),
    "y_test": ("t10k-labels-idx1-ubyte.gz", 8, ()),
}


def default_data_dir() -> Path | None:
    """``../shared/data/mnist`` beside the checkout when it holds MNIST, else None."""
    return SHARED_MNIST if (SHARED_MNIST / FILES["x_train"][0]).exists() else None


def _read_idx_gz(path: Path, header: int, shape: tuple[int, ...]) -> np.ndarray:
    with gzip.open(path, "rb") as f:
        data = f.read()
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(-1, *shape)


def load_mnist_uint8(data_dir=None):
    """((x_train (60000, 28, 28), y_train (60000,)), (x_test, y_test)), all uint8."""
    try:
        from scratchcnn.data import load_mnist
    except ImportError:
        load_mnist = None
    if load_mnist is not None:
        return load_mnist(data_dir=data_dir, download=False)
    folder = Path(data_dir) if data_dir is not None else default_data_dir()
    if folder is None:
        raise FileNotFoundError(f"MNIST not found: pass --data-dir (looked in {SHARED_MNIST})")
    arrays = {k: _read_idx_gz(folder / name, h, s) for k, (name, h, s) in FILES.items()}
    return (arrays["x_train"], arrays["y_train"]), (arrays["x_test"], arrays["y_test"])


def to_float_images(images: np.ndarray) -> np.ndarray:
    """uint8 (N, 28, 28) -> float32 (N, 1, 28, 28) in [0, 1]."""
    return (images.astype(np.float32) / np.float32(255.0))[:, None, :, :]


def load_mnist_float(data_dir=None):
    """((x_train (N, 1, 28, 28) float32, y_train (N,) int64), (x_test, y_test))."""
    (x_train, y_train), (x_test, y_test) = load_mnist_uint8(data_dir)
    return (
        (to_float_images(x_train), y_train.astype(np.int64)),
        (to_float_images(x_test), y_test.astype(np.int64)),
    )
