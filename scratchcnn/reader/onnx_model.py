"""An exported ONNX model run by OpenCV's DNN module, with the ``predict_proba`` the reader calls.

``examples/webcam.py --model model.onnx`` and ``python -m scratchcnn.predict --model model.onnx``
read digits through it, so a user can check an export (``python -m scratchcnn.export``) on a live
camera. OpenCV is already a dependency: no onnx package is needed here.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from scratchcnn.nn.losses import softmax
from scratchcnn.reader.sources import quiet_opencv


class OnnxModelError(ValueError):
    """An ONNX file OpenCV cannot load or run; the message names the file."""


class OpenCVOnnxModel:
    """A classifier exported to ONNX, run by ``cv2.dnn``: float32 (N, C, H, W) in, logits out.

    ``input_shape`` and ``output_shape`` (per sample, as a :class:`scratchcnn.Sequential` has
    them) are found by running one blank input of ``input_shape`` through the network.
    """

    def __init__(self, path, input_shape=(1, 28, 28)):
        self.path = Path(path)
        try:
            with quiet_opencv():
                self.net = cv2.dnn.readNetFromONNX(str(self.path))
        except cv2.error as err:
            raise OnnxModelError(f"{self.path}: OpenCV cannot read it as an ONNX model") from err
        if self.net.empty():
            raise OnnxModelError(f"{self.path}: OpenCV cannot read it as an ONNX model")
        self.input_shape = tuple(input_shape)
        try:
            with quiet_opencv():
                logits = self.logits(np.zeros((1, *self.input_shape), np.float32))
        except cv2.error as err:
            raise OnnxModelError(
                f"{self.path}: the network does not run on input (1, "
                f"{', '.join(map(str, self.input_shape))})"
            ) from err
        self.output_shape = tuple(logits.shape[1:])

    def logits(self, x: np.ndarray) -> np.ndarray:
        """Logits (N, *output_shape) float32 for a batch ``x`` (N, *input_shape)."""
        self.net.setInput(np.ascontiguousarray(x, dtype=np.float32))
        return np.asarray(self.net.forward(), dtype=np.float32)

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """Class probabilities (N, classes) float32: the softmax of the logits."""
        return softmax(self.logits(x))

    def predict(self, x: np.ndarray) -> np.ndarray:
        """The most probable class of each image, (N,) int64."""
        return self.logits(x).argmax(axis=1)

    def __repr__(self) -> str:
        return f"OpenCVOnnxModel({str(self.path)!r})"
