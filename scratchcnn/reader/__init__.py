"""Reading handwritten digits from a camera, a video or a photo: frame -> digit crops -> the
network -> detections in reading order, plus frame sources, annotation, a renderer of synthetic
sheets, and the ``python -m scratchcnn.predict`` command."""

from scratchcnn.reader.vision import Detection, DigitReader, FrameResult, ReaderConfig

__all__ = ["Detection", "DigitReader", "FrameResult", "ReaderConfig"]
