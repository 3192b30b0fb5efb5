"""Drawing what :class:`scratchcnn.reader.DigitReader` read: boxes and labels on the frame, and a
debug view of the threshold mask with the strip of 28x28 crops the network saw.

Every function returns a new BGR uint8 image and leaves its input untouched; none opens a window.
"""

from __future__ import annotations

import cv2
import numpy as np

from scratchcnn.reader.vision import Detection, FrameResult, to_gray

BOX_COLOR = (0, 255, 0)  # BGR: pure green, which paper under real light never is
LOW_COLOR = (0, 165, 255)  # orange: a detection below the "sure" confidence
TEXT_COLOR = (0, 0, 0)
INFO_COLOR = (255, 255, 255)
FONT = cv2.FONT_HERSHEY_SIMPLEX


def to_bgr(frame: np.ndarray) -> np.ndarray:
    """A BGR uint8 copy of a gray or BGR(A) frame (any dtype :func:`to_gray` accepts)."""
    frame = np.asarray(frame)
    if frame.ndim == 3 and frame.shape[2] == 3 and frame.dtype == np.uint8:
        return frame.copy()
    if frame.ndim == 3 and frame.shape[2] == 4 and frame.dtype == np.uint8:
        return cv2.cvtColor(frame, cv2.COLOR_BGRA2BGR)
    gray = to_gray(frame)
    if gray is None:
        return np.zeros((1, 1, 3), dtype=np.uint8)
    return cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR)


def _label(image, text: str, x: int, y: int, color, scale: float) -> None:
    """Text on a filled box of ``color`` whose bottom-left corner is at (x, y), kept inside."""
    thickness = max(1, int(round(scale * 2)))
    (tw, th), base = cv2.getTextSize(text, FONT, scale, thickness)
    h, w = image.shape[:2]
    x = int(min(max(x, 0), max(w - tw - 4, 0)))
    y = int(min(max(y, th + base + 4), h))
    cv2.rectangle(image, (x, y - th - base - 4), (x + tw + 4, y), color, cv2.FILLED)
    cv2.putText(image, text, (x + 2, y - base - 2), FONT, scale, TEXT_COLOR, thickness, cv2.LINE_AA)


def draw_detections(
    frame: np.ndarray,
    detections: list[Detection],
    fps: float | None = None,
    info: str | None = None,
    sure: float = 0.8,
) -> np.ndarray:
    """The frame (BGR copy) with a box, the digit and its confidence for every detection.

    Boxes with ``confidence >= sure`` are green, others orange. ``fps`` and ``info`` (a short
    status such as "paused") are written in the top-left corner.
    """
    image = to_bgr(frame)
    h, w = image.shape[:2]
    scale = max(0.4, min(1.2, h / 800.0))
    for det in detections:
        x, y, bw, bh = det.box
        color = BOX_COLOR if det.confidence >= sure else LOW_COLOR
        cv2.rectangle(image, (x, y), (x + bw - 1, y + bh - 1), color, max(2, int(scale * 2)))
        _label(image, f"{det.digit} {det.confidence:.0%}", x, y - 2, color, scale)
    status = []
    if fps is not None:
        status.append(f"{fps:.1f} fps")
    status.append(f"{len(detections)} digit" + ("" if len(detections) == 1 else "s"))
    if info:
        status.append(info)
    text = "  ".join(status)
    (tw, th), base = cv2.getTextSize(text, FONT, scale, 1)
    cv2.rectangle(image, (0, 0), (tw + 12, th + base + 12), (0, 0, 0), cv2.FILLED)
    cv2.putText(image, text, (6, th + 6), FONT, scale, INFO_COLOR, 1, cv2.LINE_AA)
    return image


def crop_strip(crops: np.ndarray, labels=None, width: int = 640, zoom: int = 3) -> np.ndarray:
    """The 28x28 crops (N, 1, 28, 28) float in [0, 1] side by side, each ``zoom`` times larger
    with its label (e.g. "7 98%") under it, wrapped into rows ``width`` pixels wide (BGR uint8)."""
    tile = 28 * zoom
    cell_h = tile + 22
    per_row = max(1, (width - 4) // (tile + 4))
    n = len(crops)
    rows = max(1, -(-n // per_row))
    strip = np.full((rows * (cell_h + 4) + 4, width, 3), 40, dtype=np.uint8)
    if n == 0:
        cv2.putText(strip, "no candidates", (8, 30), FONT, 0.6, INFO_COLOR, 1, cv2.LINE_AA)
        return strip
    for i in range(n):
        r, c = divmod(i, per_row)
        x, y = 4 + c * (tile + 4), 4 + r * (cell_h + 4)
        img = np.clip(np.asarray(crops[i]).reshape(28, 28) * 255.0 + 0.5, 0, 255).astype(np.uint8)
        big = cv2.resize(img, (tile, tile), interpolation=cv2.INTER_NEAREST)
        strip[y : y + tile, x : x + tile] = big[:, :, None]
        if labels is not None:
            cv2.putText(
                strip, str(labels[i]), (x + 2, y + tile + 16), FONT, 0.5, INFO_COLOR, 1, cv2.LINE_AA
            )
    return strip


def debug_view(frame: np.ndarray, result: FrameResult, fps: float | None = None) -> np.ndarray:
    """What the reader saw: the threshold mask (white ink on black) with every candidate box,
    above the strip of 28x28 crops sent to the network with their predicted digit and
    confidence. BGR uint8, as wide as the frame."""
    h, w = np.asarray(frame).shape[:2]
    mask = result.mask if result.mask.shape == (h, w) else np.zeros((h, w), np.uint8)
    view = cv2.cvtColor(mask, cv2.COLOR_GRAY2BGR)
    for x, y, bw, bh in result.boxes:
        cv2.rectangle(view, (x, y), (x + bw - 1, y + bh - 1), LOW_COLOR, 1)
    view = draw_detections(view, result.detections, fps, info="debug: mask and crops")
    labels = [f"{int(p.argmax())} {float(p.max()):.0%}" for p in np.asarray(result.probabilities)]
    return np.vstack([view, crop_strip(result.crops, labels, width=w)])


def window_problem() -> str | None:
    """Why this process cannot open an OpenCV window, or None when it can (as far as one can
    tell without opening one): a build without a GUI backend (``opencv-python-headless``), or on
    Linux no display to show it on (Qt would abort the whole process rather than raise)."""
    import os
    import re
    import sys

    gui = re.search(r"^\s*GUI:\s*(\S+)", cv2.getBuildInformation(), re.MULTILINE)
    if gui is None or gui.group(1).upper() in ("NONE", "NO"):
        return (
            f"this OpenCV ({cv2.__version__}) was built without a GUI, so it cannot open a "
            'window (opencv-python-headless?); pip install "opencv-python" for windows'
        )
    if sys.platform.startswith("linux"):
        platform = os.environ.get("QT_QPA_PLATFORM", "")
        if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY") or platform):
            return "no display to open a window on (DISPLAY is not set)"
    return None
