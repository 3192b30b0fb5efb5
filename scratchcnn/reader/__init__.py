"""Reading handwritten digits from a camera, a video or a photo: frame -> digit crops -> the
network -> detections in reading order, plus frame sources, annotation, a renderer of synthetic
sheets, and the ``python -m scratchcnn.predict`` command."""

from scratchcnn.reader.results import Detection, FrameResult
from scratchcnn.reader.vision import DigitReader, ReaderConfig

__all__ = ["Detection", "DigitReader", "FrameResult", "ReaderConfig"]
