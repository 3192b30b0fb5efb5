"""The model that ships inside the package, so that reading digits works right after install.

``scratchnet-mnist.npz`` is exactly what the default ``python -m scratchcnn.train`` saves (the
``scratchnet`` network, 15 epochs, seed 0, MNIST); its file records the settings it was trained
with (``model.metadata["training"]``), and a test fails when they stop matching the train
command's defaults, so that it is retrained when the default training changes. The readers
(``python -m scratchcnn.predict``, ``examples/webcam.py``) use it when there is no
``models/scratchcnn.npz`` and no ``--model``.
"""

from __future__ import annotations

from pathlib import Path

from scratchcnn.nn.model import Sequential
from scratchcnn.nn.serialization import load_model

BUNDLED_MODEL = Path(__file__).resolve().with_name("scratchnet-mnist.npz")


def bundled_model_path() -> Path:
    """Where the bundled model file is (inside the installed package)."""
    return BUNDLED_MODEL


def load_bundled_model() -> Sequential:
    """The bundled MNIST model (scratchnet, 421,642 parameters; see the README for its accuracy)."""
    return load_model(BUNDLED_MODEL)


__all__ = ["BUNDLED_MODEL", "bundled_model_path", "load_bundled_model"]
