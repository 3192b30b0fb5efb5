"""What the command-line tools share: one-line errors with exit code 2, and MNIST as float32."""

from __future__ import annotations

import sys
from collections.abc import Callable

import numpy as np

EXIT_USAGE = 2


class CLIError(Exception):
    """A problem the user can fix; shown as one line on stderr, exit code 2."""


def run_cli(prog: str, main: Callable[[], int]) -> int:
    """Run ``main``; turn expected failures into ``prog: error: message`` and exit code 2."""
    from scratchcnn.io import ModelFileError

    try:
        return main()
    except (CLIError, ModelFileError, ImportError, ValueError) as err:
        print(f"{prog}: error: {err}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as err:  # missing files, unwritable paths, no network
        print(f"{prog}: error: {err}", file=sys.stderr)
        return EXIT_USAGE


def load_mnist_pixels(data_dir=None, download: bool = True):
    """MNIST as ((x_train, y_train), (x_test, y_test)): uint8 images (N, 28, 28), int64 labels."""
    from scratchcnn.data import load_mnist

    (x_train, y_train), (x_test, y_test) = load_mnist(data_dir=data_dir, download=download)
    return (x_train, y_train.astype(np.int64)), (x_test, y_test.astype(np.int64))


def load_mnist_float(data_dir=None, download: bool = True):
    """MNIST as ((x_train, y_train), (x_test, y_test)): float32 NCHW images, int64 labels."""
    from scratchcnn.data import to_float_images

    (x_train, y_train), (x_test, y_test) = load_mnist_pixels(data_dir, download)
    return (to_float_images(x_train), y_train), (to_float_images(x_test), y_test)
