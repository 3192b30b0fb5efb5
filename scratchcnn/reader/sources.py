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


def image_size(head: bytes) -> tuple[int, int] | None:
    """(width, height) an image file declares in its header ``head`` (its first 64 KiB or
    more), for PNG, JPEG, GIF, BMP, WebP, TIFF and PNM; None when the format is not one of these
    or the header is cut short. Nothing is decoded: this is how a file declaring 30000x30000
    pixels is refused before any memory is spent on it."""
    import struct

    try:
        if head[:8] == b"\x89PNG\r\n\x1a\n":
            return struct.unpack(">II", head[16:24])
        if head[:6] in (b"GIF87a", b"GIF89a"):
            return struct.unpack("<HH", head[6:10])
        if head[:2] == b"BM":
            w, h = struct.unpack("<ii", head[18:26])
            return abs(w), abs(h)
        if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
            kind = head[12:16]
            if kind == b"VP8X":
                w = int.from_bytes(head[24:27], "little") + 1
                h = int.from_bytes(head[27:30], "little") + 1
                return w, h
            if kind == b"VP8L":
                bits = int.from_bytes(head[21:25], "little")
                return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
            if kind == b"VP8 ":
                w, h = struct.unpack("<HH", head[26:30])
                return w & 0x3FFF, h & 0x3FFF
            return None
        if head[:2] == b"\xff\xd8":
            return _jpeg_size(head)
        if head[:4] in (b"II*\x00", b"MM\x00*"):
            return _tiff_size(head)
        if head[:1] == b"P" and head[1:2] in b"123456" and len(head) > 3:
            fields = head[2:].split(maxsplit=3)
            return int(fields[0]), int(fields[1])
    except (struct.error, ValueError, IndexError):
        return None
    return None


def _jpeg_size(head: bytes) -> tuple[int, int] | None:
    i = 2
    while i + 9 < len(head):
        if head[i] != 0xFF:
            return None
        marker = head[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            i += 2
            continue
        length = int.from_bytes(head[i + 2 : i + 4], "big")
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):  # start of frame
            h = int.from_bytes(head[i + 5 : i + 7], "big")
            w = int.from_bytes(head[i + 7 : i + 9], "big")
            return w, h
        i += 2 + length
    return None


def _tiff_size(head: bytes) -> tuple[int, int] | None:
    import struct

    order = "<" if head[:2] == b"II" else ">"
    offset = struct.unpack(order + "I", head[4:8])[0]
    count = struct.unpack(order + "H", head[offset : offset + 2])[0]
    size = {}
    for k in range(count):
        entry = head[offset + 2 + 12 * k : offset + 14 + 12 * k]
        tag, kind = struct.unpack(order + "HH", entry[:4])
        if tag in (256, 257):
            value = entry[8:10] if kind == 3 else entry[8:12]
            size[tag] = struct.unpack(order + ("H" if kind == 3 else "I"), value)[0]
    if 256 in size and 257 in size:
        return size[256], size[257]
    return None


def _composite_on_white(image: np.ndarray) -> np.ndarray:
    """BGR uint8 of any image ``cv2.IMREAD_UNCHANGED`` gives (gray, BGR, BGRA; 8 or 16 bits):
    transparent pixels become white paper, so ink drawn on a transparent canvas shows."""
    if image.dtype == np.uint16:
        image = (image >> 8).astype(np.uint8)
    elif image.dtype != np.uint8:
        image = cv2.normalize(image, None, 0, 255, cv2.NORM_MINMAX).astype(np.uint8)
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    if image.shape[2] == 4:
        alpha = image[:, :, 3:4].astype(np.float32) * (1.0 / 255.0)
        bgr = image[:, :, :3].astype(np.float32) * alpha + 255.0 * (1.0 - alpha)
        return np.clip(bgr + 0.5, 0, 255).astype(np.uint8)
    if image.shape[2] == 3:
        return image
    return cv2.cvtColor(image[:, :, :1], cv2.COLOR_GRAY2BGR)


def read_image(path, max_pixels: int | None = None) -> np.ndarray:
    """A still image as BGR uint8 (H, W, 3); :class:`SourceError` naming the file otherwise.

    An image with an alpha channel is composited onto white; a JPEG's EXIF orientation is
    applied. An image that declares more than ``max_pixels`` pixels (default
    :data:`scratchcnn.reader.vision.MAX_PIXELS`, 50 million) in its header is refused before it
    is decoded.
    """
    from scratchcnn.reader.vision import MAX_PIXELS

    path = Path(path)
    limit = MAX_PIXELS if max_pixels is None else int(max_pixels)
    _check_file(path, "an image")
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except OSError as err:
        raise SourceError(f"{path}: cannot read it ({err.strerror or err})") from err
    size = image_size(data[: 1 << 16].tobytes())
    if size is not None and size[0] * size[1] > limit:
        raise SourceError(
            f"{path}: {size[0]}x{size[1]} pixels is more than the limit of {limit} "
            "(--max-pixels N to raise it)"
        )
    image = None
    with quiet_opencv():
        try:
            if data.size and data[:4].tobytes() in (b"\x89PNG", b"RIFF", b"II*\x00", b"MM\x00*"):
                # Formats that may carry alpha: decode it, and composite onto white.
                raw = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
                image = None if raw is None else _composite_on_white(raw)
            elif data.size:
                image = cv2.imdecode(data, cv2.IMREAD_COLOR)  # applies EXIF orientation
        except cv2.error:
            image = None
    if image is None:
        raise SourceError(f"{path}: cannot read it as an image (PNG, JPEG, BMP, TIFF, ...)")
    if image.shape[0] * image.shape[1] > limit:
        raise SourceError(
            f"{path}: {image.shape[1]}x{image.shape[0]} pixels is more than the limit of "
            f"{limit} (--max-pixels N to raise it)"
        )
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


def camera_problem(index) -> str | None:
    """Why ``index`` cannot name a camera here, or None when it may: it must be an integer
    >= 0 and, on Linux, ``/dev/video<index>`` must exist (OpenCV crashes on some indices that
    name no device, e.g. -1)."""
    import sys

    if isinstance(index, bool) or not isinstance(index, (int, np.integer)) or index < 0:
        return f"camera {index!r} will not open: --camera takes a number >= 0"
    if sys.platform.startswith("linux"):
        devices = sorted(
            int(p.name[5:]) for p in Path("/dev").glob("video*") if p.name[5:].isdigit()
        )
        if index not in devices:
            found = ", ".join(map(str, devices)) if devices else "none"
            return (
                f"camera {index} will not open: there is no /dev/video{index} "
                f"(cameras here: {found}); try --video PATH or --image PATH"
            )
    return None


def open_camera(index: int = 0) -> FrameSource:
    """Camera number ``index`` (0 is the default camera)."""
    if problem := camera_problem(index):
        raise SourceError(problem)
    hint = (
        f"camera {index} will not open: is it connected and not in use by another program? "
        "Try another --camera number, or --video PATH / --image PATH"
    )
    with quiet_opencv(), _quiet_stderr():
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


@contextlib.contextmanager
def _quiet_stderr():
    """Send file descriptor 2 to /dev/null meanwhile: camera back ends (V4L, GStreamer) write
    their warnings there directly, past OpenCV's log level."""
    import sys

    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no real stderr (embedded, pytest capture): nothing to hide
        yield
        return
    null = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(null, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(null)


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


def open_image(path, loop: bool = False, max_pixels: int | None = None) -> FrameSource:
    """A still image, served as one frame (every time with ``loop``)."""
    return FrameSource(str(path), image=read_image(path, max_pixels), loop=loop)
