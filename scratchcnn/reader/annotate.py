"""Drawing what :class:`scratchcnn.reader.DigitReader` read: boxes and labels on the frame, and a
debug view of the threshold mask with the strip of 28x28 crops the network saw.

Every function returns a new BGR uint8 image and leaves its input untouched; none opens a window.
"""

from __future__ import annotations

import cv2
import numpy as np

from scratchcnn.reader.ink import to_gray
from scratchcnn.reader.results import Detection, FrameResult

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


UNSURE_COLOR = (170, 170, 170)  # grey: below --min-confidence, shown but not claimed
REJECT_COLOR = (0, 0, 255)  # red: a candidate the reader did not read (debug view)


def _overlaps(a, b) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


class LabelPlacer:
    """Places text labels on an image so that none overlaps another, nor the areas reserved
    with :meth:`reserve` (the info bar): each label tries spots above its box, below it, inside
    its top, then further up and down; a label that finds no free spot is left out (its box is
    still drawn)."""

    def __init__(self, image, scale: float):
        self.image, self.scale = image, scale
        self.thickness = max(1, int(round(scale * 2)))
        self.taken: list[tuple[int, int, int, int]] = []

    def reserve(self, rect) -> None:
        self.taken.append(tuple(int(v) for v in rect))

    def size(self, text: str) -> tuple[int, int, int]:
        (tw, th), base = cv2.getTextSize(text, FONT, self.scale, self.thickness)
        return tw + 4, th + base + 4, base

    def place(self, text: str, box, color, text_color=TEXT_COLOR) -> bool:
        """Draw ``text`` on ``color`` next to ``box`` (x, y, w, h); False when it found no room."""
        h, w = self.image.shape[:2]
        lw, lh, base = self.size(text)
        x, y, bw, bh = (int(v) for v in box)
        spots = [(x, y - lh - 1), (x, y + bh + 1), (x, y + 1)]
        spots += [(x, y - lh * k - 1) for k in range(2, 5)]
        spots += [(x, y + bh + lh * (k - 1) + 1) for k in range(2, 5)]
        spots += [(x + bw + 2, y), (x - lw - 2, y)]
        for sx, sy in spots:
            sx = int(min(max(sx, 0), max(w - lw, 0)))
            if sy < 0 or sy + lh > h:
                continue
            rect = (sx, sy, sx + lw, sy + lh)
            if any(_overlaps(rect, other) for other in self.taken):
                continue
            self.taken.append(rect)
            cv2.rectangle(self.image, rect[:2], (rect[2] - 1, rect[3] - 1), color, cv2.FILLED)
            cv2.putText(
                self.image,
                text,
                (sx + 2, sy + lh - base - 2),
                FONT,
                self.scale,
                text_color,
                self.thickness,
                cv2.LINE_AA,
            )
            return True
        return False


def text_scale(height: int) -> float:
    """Label size for an image ``height`` pixels tall."""
    return max(0.4, min(1.2, height / 800.0))


def info_bar(image, parts: list[str], scale: float) -> tuple[int, int, int, int]:
    """Write ``parts`` (joined by two spaces) white on black in the top-left corner; returns the
    bar's rectangle (x0, y0, x1, y1)."""
    text = "  ".join(parts)
    (tw, th), base = cv2.getTextSize(text, FONT, scale, 1)
    bar = (0, 0, min(tw + 12, image.shape[1]), th + base + 12)
    cv2.rectangle(image, bar[:2], bar[2:], (0, 0, 0), cv2.FILLED)
    cv2.putText(image, text, (6, th + 6), FONT, scale, INFO_COLOR, 1, cv2.LINE_AA)
    return bar


def draw_detections(
    frame: np.ndarray,
    detections: list[Detection],
    fps: float | None = None,
    info: str | None = None,
    sure: float = 0.8,
    text: str | None = None,
    scale: float = 1.0,
) -> np.ndarray:
    """The frame (BGR copy) with a box, the digit and its confidence for every detection.

    Boxes with ``confidence >= sure`` are green, others orange; unsure detections (below the
    reader's ``min_confidence``) are grey and labelled with a question mark. Labels never
    overlap each other nor the info bar in the top-left corner, which shows ``fps`` (when
    given), the number of digits, ``text`` (what the frame reads as) and ``info`` (a short
    status such as "paused"). ``scale`` resizes the frame first (boxes are in the frame's
    pixels), e.g. to fit a window on the screen.
    """
    image = to_bgr(frame)
    if scale != 1.0:
        h, w = image.shape[:2]
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
        image = cv2.resize(image, size, interpolation=interpolation)
    h, w = image.shape[:2]
    font_scale = text_scale(h)
    sure_count = sum(1 for d in detections if not d.unsure)
    status = []
    if fps is not None:
        status.append(f"{fps:.1f} fps")
    status.append(f"{sure_count} digit" + ("" if sure_count == 1 else "s"))
    if text:
        status.append('"' + text.replace("\n", " / ") + '"')
    if info:
        status.append(info)
    placer = LabelPlacer(image, font_scale)
    boxes = []
    for det in detections:
        x, y, bw, bh = (int(round(v * scale)) for v in det.box)
        if det.unsure:
            color = UNSURE_COLOR
        else:
            color = BOX_COLOR if det.confidence >= sure else LOW_COLOR
        cv2.rectangle(image, (x, y), (x + bw - 1, y + bh - 1), color, max(2, int(font_scale * 2)))
        boxes.append((det, (x, y, bw, bh), color))
    placer.reserve(info_bar(image, status, font_scale))
    for det, box, color in boxes:
        label = (
            f"{det.digit}? {det.confidence:.0%}"
            if det.unsure
            else f"{det.digit} {det.confidence:.0%}"
        )
        placer.place(label, box, color)
    return image


def crop_strip(
    crops: np.ndarray, labels=None, width: int = 640, zoom: int = 3, rows: int | None = None
) -> np.ndarray:
    """The 28x28 crops (N, 1, 28, 28) float in [0, 1] side by side, each ``zoom`` times larger
    with its label (e.g. "7 98%") under it, wrapped into rows ``width`` pixels wide (BGR uint8).
    With ``rows`` the strip has exactly that many rows (a fixed size, for a video); crops that do
    not fit are counted in the last cell ("+5 more")."""
    tile = 28 * zoom
    cell_h = tile + 22
    per_row = max(1, (width - 4) // (tile + 4))
    n = len(crops)
    n_rows = rows if rows is not None else max(1, -(-n // per_row))
    strip = np.full((n_rows * (cell_h + 4) + 4, width, 3), 40, dtype=np.uint8)
    if n == 0:
        cv2.putText(strip, "no candidates", (8, 30), FONT, 0.6, INFO_COLOR, 1, cv2.LINE_AA)
        return strip
    room = n_rows * per_row
    shown = n if n <= room else room - 1
    for i in range(shown):
        r, c = divmod(i, per_row)
        x, y = 4 + c * (tile + 4), 4 + r * (cell_h + 4)
        img = np.clip(np.asarray(crops[i]).reshape(28, 28) * 255.0 + 0.5, 0, 255).astype(np.uint8)
        big = cv2.resize(img, (tile, tile), interpolation=cv2.INTER_NEAREST)
        strip[y : y + tile, x : x + tile] = big[:, :, None]
        if labels is not None:
            cv2.putText(
                strip, str(labels[i]), (x + 2, y + tile + 16), FONT, 0.5, INFO_COLOR, 1, cv2.LINE_AA
            )
    if shown < n:
        r, c = divmod(shown, per_row)
        x, y = 4 + c * (tile + 4), 4 + r * (cell_h + 4)
        cv2.putText(
            strip,
            f"+{n - shown} more",
            (x + 4, y + tile // 2),
            FONT,
            0.5,
            INFO_COLOR,
            1,
            cv2.LINE_AA,
        )
    return strip


def debug_view(
    frame: np.ndarray,
    result: FrameResult,
    fps: float | None = None,
    scale: float = 1.0,
    strip_rows: int | None = None,
) -> np.ndarray:
    """What the reader saw: the threshold mask (white ink on black) with every digit read (its
    box and answer, unsure ones grey) and every candidate it did not read in red with the reason
    ("small", "cut by the edge", "split" for a box read as several digits, ...), above the strip
    of 28x28 crops sent to the network with their predicted digit and confidence. BGR uint8, as
    wide as the (scaled) frame; ``strip_rows`` fixes the strip's height (for a video)."""
    h, w = np.asarray(frame).shape[:2]
    mask = result.mask if result.mask.shape == (h, w) else np.zeros((h, w), np.uint8)
    view = draw_detections(
        mask,
        result.all_detections,
        fps,
        info="debug: mask and crops",
        text=result.text,
        scale=scale,
    )
    placer = LabelPlacer(view, 0.4)
    placer.reserve((0, 0, view.shape[1], 28))  # the info bar's height at any scale
    for det in result.all_detections:
        x, y, bw, bh = (int(round(v * scale)) for v in det.box)
        placer.reserve((x, y - 30, x + max(bw, 60), y + bh))  # the detection's box and label
    for box, reason in result.rejected:
        x, y, bw, bh = (int(round(v * scale)) for v in box)
        cv2.rectangle(view, (x, y), (x + bw - 1, y + bh - 1), REJECT_COLOR, 1)
        placer.place(reason, (x, y, bw, bh), REJECT_COLOR, INFO_COLOR)
    labels = [f"{int(p.argmax())} {float(p.max()):.0%}" for p in np.asarray(result.probabilities)]
    strip = crop_strip(result.crops, labels, width=view.shape[1], rows=strip_rows)
    return np.vstack([view, strip])


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
