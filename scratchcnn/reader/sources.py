"""Where frames come from: a camera, a video file or a still image, opened with clear errors.

A camera that will not open, a missing or unreadable file raise :class:`SourceError`, an
``OSError`` whose one-line message names the source and what to try; the command lines print it
and exit with code 2. OpenCV's own multi-line warnings are silenced while
a source is opened.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import cv2
import numpy as np


class SourceError(OSError):
    """A frame source that cannot be opened or read; the message names it."""


@contextlib.contextmanager
def quiet_opencv():
    """Silence OpenCV's log (its backends print several lines when a device or file fails)."""
    logging = getattr(getattr(cv2, "utils", None), "logging", None)
    if logging is None:  # pragma: no cover - every recent wheel has it
        yield
        return
    previous = logging.getLogLevel()
    logging.setLogLevel(logging.LOG_LEVEL_SILENT)
    try:
        yield
    finally:
        logging.setLogLevel(previous)


def _check_file(path: Path, kind: str) -> None:
    if not path.exists():
        raise SourceError(f"{path}: no such file")
    if path.is_dir():
        raise SourceError(f"{path}: is a directory, not {kind}")
    if not os.access(path, os.R_OK):
        raise SourceError(f"{path}: permission denied")


def read_image(path) -> np.ndarray:
    """A still image as BGR uint8 (H, W, 3); :class:`SourceError` naming the file otherwise."""
    path = Path(path)
    _check_file(path, "an image")
    with quiet_opencv():
        data = np.fromfile(path, dtype=np.uint8)
        image = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if image is None:
        raise SourceError(f"{path}: cannot read it as an image (PNG, JPEG, BMP, TIFF, ...)")
    return image


class FrameSource:
    """Frames from a camera, a video or an image: ``read()`` returns the next BGR uint8 frame or
    None at the end. ``live`` is true for cameras, ``still`` for images (one frame); ``fps`` is
    the source's nominal rate (30 when it does not say). Use as a context manager, or ``close()``.
    """

    def __init__(self, name: str, capture=None, image=None, live=False, fps=0.0, loop=False):
        self.name = name
        self._capture = capture
        self._image = image
        self._image_read = False
        self.live = live
        self.still = image is not None
        self.fps = fps if fps and 1 <= fps <= 240 else 30.0
        self.loop = loop
        self.frames_read = 0

    def read(self) -> np.ndarray | None:
        if self.still:
            if self._image_read and not self.loop:
                return None
            self._image_read = True
            self.frames_read += 1
            return self._image
        ok, frame = self._capture.read()
        if not ok and self.loop and not self.live and self.frames_read:
            self._capture.set(cv2.CAP_PROP_POS_FRAMES, 0)
            ok, frame = self._capture.read()
        if not ok or frame is None:
            return None
        self.frames_read += 1
        return frame

    def close(self) -> None:
        if self._capture is not None:
            self._capture.release()
            self._capture = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _first_frame_check(capture, name: str, message: str):
    """Read one frame so a source that opens but yields nothing fails now, not later."""
    ok, frame = capture.read()
    if not ok or frame is None:
        capture.release()
        raise SourceError(message)
    return frame


class _Prefetched:
    """A capture whose first frame was already read (to check it), served first."""

    def __init__(self, capture, first):
        self._capture, self._first = capture, first

    def read(self):
        if self._first is not None:
            frame, self._first = self._first, None
            return True, frame
        return self._capture.read()

    def set(self, prop, value):
        self._first = None
        return self._capture.set(prop, value)

    def release(self):
        self._capture.release()


def open_camera(index: int = 0) -> FrameSource:
    """Camera number ``index`` (0 is the default camera)."""
    hint = (
        f"camera {index} will not open: is it connected and not in use by another program? "
        "Try another --camera number, or --video PATH / --image PATH"
    )
    with quiet_opencv():
        capture = cv2.VideoCapture(int(index))
        if not capture.isOpened():
            capture.release()
            raise SourceError(hint)
        first = _first_frame_check(
            capture,
            f"camera {index}",
            hint.replace("will not open", "opened but gives no frames", 1),
        )
    return FrameSource(
        f"camera {index}", _Prefetched(capture, first), live=True, fps=capture.get(cv2.CAP_PROP_FPS)
    )


def open_video(path, loop: bool = False) -> FrameSource:
    """A video file (anything the wheel's FFmpeg reads: .avi, .mp4, .mkv, ...)."""
    path = Path(path)
    _check_file(path, "a video")
    message = f"{path}: cannot read it as a video (unknown format, corrupt, or no frames)"
    with quiet_opencv():
        capture = cv2.VideoCapture(str(path))
        if not capture.isOpened():
            capture.release()
            raise SourceError(message)
        first = _first_frame_check(capture, str(path), message)
    fps = capture.get(cv2.CAP_PROP_FPS)
    return FrameSource(str(path), _Prefetched(capture, first), fps=fps, loop=loop)


def open_image(path, loop: bool = False) -> FrameSource:
    """A still image, served as one frame (every time with ``loop``)."""
    return FrameSource(str(path), image=read_image(path), loop=loop)
