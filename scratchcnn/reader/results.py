"""What the reader returns: one :class:`Detection` per digit and a :class:`FrameResult` per frame,
with the text it reads (rows top to bottom, a row's digits grouped by their spacing)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from scratchcnn.reader.boxes import Box, median, rows_of_boxes
from scratchcnn.reader.normalize import MNIST_SIZE


@dataclass(frozen=True)
class Detection:
    """One digit read in a frame.

    ``box`` is ``(x, y, w, h)`` in frame pixels, ``digit`` the most probable class,
    ``confidence`` its probability and ``probabilities`` all ten, float32 of shape (10,).
    ``unsure`` is true when ``confidence`` is below the reader's ``min_confidence``.
    """

    box: Box
    digit: int
    confidence: float
    probabilities: np.ndarray = field(repr=False, compare=False)
    unsure: bool = False

    @property
    def second(self) -> tuple[int, float]:
        """The runner-up: (digit, probability)."""
        order = np.argsort(np.asarray(self.probabilities))
        return int(order[-2]), float(self.probabilities[order[-2]])

    def to_dict(self) -> dict:
        """The JSON form the command lines print: ``{"digit", "confidence", "box", "unsure",
        "second": {"digit", "confidence"}}``."""
        second, second_confidence = self.second
        return {
            "digit": int(self.digit),
            "confidence": round(float(self.confidence), 4),
            "box": [int(v) for v in self.box],
            "unsure": bool(self.unsure),
            "second": {"digit": second, "confidence": round(second_confidence, 4)},
        }


@dataclass
class FrameResult:
    """Everything :meth:`DigitReader.read` found in one frame.

    * ``detections``: list of :class:`Detection` in reading order, those at or above
      ``min_confidence``; ``unsure``: the ones below it (``all_detections`` has both);
    * ``mask``: uint8 (H, W), 255 where ink was found — the threshold image of a debug view;
    * ``crops``: float32 (N, 1, 28, 28), what the network saw, one per digit read, in the order
      of ``boxes`` (reading order);
    * ``boxes``: the N boxes; ``probabilities``: float32 (N, 10), the network's output;
    * ``rejected``: ``(box, reason)`` for every candidate that was not read (too small, cut by the
      edge, split into parts, ...), for the debug view;
    * ``rotation``: the clockwise turn (degrees) under which the frame was read; boxes are always
      in the input frame's pixels;
    * ``timings``: milliseconds spent finding candidates, normalizing crops and predicting.
    """

    detections: list[Detection]
    mask: np.ndarray
    crops: np.ndarray
    boxes: list[Box]
    probabilities: np.ndarray
    timings: dict[str, float] = field(default_factory=dict)
    unsure: list[Detection] = field(default_factory=list)
    rejected: list[tuple[Box, str]] = field(default_factory=list)
    rotation: int = 0
    _upright: list = field(default_factory=list, repr=False)

    @property
    def all_detections(self) -> list[Detection]:
        """Sure and unsure detections together, in reading order."""
        if self._upright:
            return [det for det, _ in self._upright]
        return self.detections + self.unsure

    @property
    def text(self) -> str:
        """The number(s) read: rows top to bottom separated by newlines, groups of a row split by
        a space where the gap between digits exceeds 0.75 of the row's median digit height, an
        unsure digit as ``?`` (reading order as the frame was read, turned by ``rotation``)."""
        return text_of(self._upright or [(d, d.box) for d in self.all_detections])


def text_of(items) -> str:
    """Text of ``(detection, upright box)`` pairs in reading order (see :attr:`FrameResult.text`)."""
    lines = []
    for row in rows_of_boxes(items):
        height = median([box[3] for _, box in row])
        text, previous = "", None
        for det, box in row:
            if previous is not None and box[0] - (previous[0] + previous[2]) > 0.75 * height:
                text += " "
            text += "?" if det.unsure else str(det.digit)
            previous = box
        lines.append(text)
    return "\n".join(lines)


def empty_result(shape: tuple[int, int] = (0, 0)) -> FrameResult:
    """A result with no detections (for blank, saturated or unusable frames)."""
    return FrameResult(
        detections=[],
        mask=np.zeros(shape, dtype=np.uint8),
        crops=np.zeros((0, 1, MNIST_SIZE, MNIST_SIZE), dtype=np.float32),
        boxes=[],
        probabilities=np.zeros((0, 10), dtype=np.float32),
    )
