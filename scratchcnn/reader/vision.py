"""Frame -> digit crops normalized the way MNIST was made -> one batched prediction -> detections.

No windows and no camera here: :class:`DigitReader` takes one image (a camera frame, a video frame
or a photo; BGR or grayscale uint8, any size) and returns what it read, plus the intermediate
images a debug view shows. The steps:

1. **Grayscale**, then **background normalization**: the paper's brightness is estimated by a
   grayscale closing (which erases dark strokes narrower than its kernel) on a small copy of the
   frame, and every pixel becomes its *relative ink darkness* ``(paper - pixel) / paper``. Uneven
   light, gradients and vignetting divide out.
2. **Threshold**: Otsu's threshold on the darkness image, never below ``min_contrast`` nor below
   what the frame's noise allows (so blank paper with sensor noise has no ink at all), with
   hysteresis: fainter pixels count when they touch strong ones, so a light stretch of a stroke
   does not cut a digit in two. A 3x3 median filter and a small closing clean the mask.
3. **Candidates**: outer contours, also those inside another shape's hole (the dark desk around
   the sheet, a drawn frame); pieces that cannot be part of a digit (specks, oversize shapes,
   frames holding other pieces, anything cut by the frame's edge) are dropped; pieces of one digit
   (a ``5`` whose bar is detached, a stroke cut by a hairline) are merged; boxes are filtered by
   height, aspect ratio and ink density.
4. **MNIST normalization** of each candidate: its soft darkness (not the hard mask) inside its own
   contours, stretched so the stroke's core is 1.0, fine-pen strokes thickened to MNIST's width,
   fitted into 20x20 keeping its aspect ratio (area interpolation, as MNIST's anti-aliasing),
   padded to 28x28 and shifted so its center of mass is at the center; optionally deskewed.
   Light strokes on black, float32 in [0, 1]: the model's training input.
5. **One** ``model.predict_proba`` call for all crops of the frame.
6. Detections in **reading order**: rows from top to bottom, left to right within a row.

Coordinates are pixels of the input frame; boxes are ``(x, y, w, h)`` with (x, y) the top-left
corner.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import cv2
import numpy as np

from scratchcnn.nn.kernels import limit_threads

MNIST_SIZE = 28  # side of the network's input
MNIST_BOX = 20  # MNIST digits were fitted into 20x20 and centered by mass in 28x28
MNIST_CENTER = (MNIST_SIZE - 1) / 2.0  # 13.5: the center of a 28-pixel axis in pixel coordinates

Box = tuple[int, int, int, int]


@dataclass(frozen=True)
class ReaderConfig:
    """Tunable settings of :class:`DigitReader` (the defaults suit 640x480 webcam frames).

    Sizes are in pixels of the input frame unless a name says *fraction*.
    """

    min_height: int = 14  # smaller candidates are noise or too small to read
    max_height_fraction: float = 0.9  # taller than this fraction of the frame: not a digit
    max_aspect: float = 2.0  # width / height above this: a line, a smudge, touching digits
    min_density: float = 0.04  # ink pixels / box area below this: a thin ring or scribble
    max_blob_density: float = 0.8  # a box at least ~0.4 as wide as tall and denser: a blob
    min_contrast: float = 0.22  # ink must be at least this much darker than its paper (0..1)
    hysteresis: float = 0.6  # faint stroke parts down to this fraction of the threshold count
    min_paper: int = 24  # frames (or regions) darker than this gray level hold no paper
    paper_kernel_fraction: float = 0.08  # background kernel, as a fraction of the short side
    reject_border: bool = True  # drop candidates touching the frame's edge (cut-off digits)
    merge_gap: float = 0.15  # vertical gap (fraction of the taller piece) a fragment may cross
    deskew: bool = False  # straighten slanted digits with their second moments (MNIST was not)
    thicken: bool = True  # dilate strokes much thinner than MNIST's before fitting into 20x20
    min_confidence: float = 0.0  # detections below this probability are dropped
    predict_threads: int | None = 1  # kernel threads for the crops' batch (None: sc.set_threads's)


@dataclass(frozen=True)
class Detection:
    """One digit read in a frame.

    ``box`` is ``(x, y, w, h)`` in frame pixels, ``digit`` the most probable class,
    ``confidence`` its probability and ``probabilities`` all ten, float32 of shape (10,).
    """

    box: Box
    digit: int
    confidence: float
    probabilities: np.ndarray = field(repr=False, compare=False)

    def to_dict(self) -> dict:
        """The JSON form the command lines print: ``{"digit", "confidence", "box"}``."""
        return {
            "digit": int(self.digit),
            "confidence": round(float(self.confidence), 4),
            "box": [int(v) for v in self.box],
        }


@dataclass
class FrameResult:
    """Everything :meth:`DigitReader.read` found in one frame.

    * ``detections``: list of :class:`Detection` in reading order (after ``min_confidence``);
    * ``mask``: uint8 (H, W), 255 where ink was found — the threshold image of a debug view;
    * ``crops``: float32 (N, 1, 28, 28), what the network saw, one per candidate, in the order of
      ``boxes`` (reading order), before the confidence filter;
    * ``boxes``: the N candidate boxes; ``probabilities``: float32 (N, 10), the network's output;
    * ``timings``: milliseconds spent finding candidates, normalizing crops and predicting.
    """

    detections: list[Detection]
    mask: np.ndarray
    crops: np.ndarray
    boxes: list[Box]
    probabilities: np.ndarray
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def text(self) -> str:
        """The digits read, row by row (rows separated by newlines)."""
        return "\n".join("".join(str(d.digit) for d in row) for row in rows_of(self.detections))


def empty_result(shape: tuple[int, int] = (0, 0)) -> FrameResult:
    """A result with no detections (for blank, saturated or unusable frames)."""
    return FrameResult(
        detections=[],
        mask=np.zeros(shape, dtype=np.uint8),
        crops=np.zeros((0, 1, MNIST_SIZE, MNIST_SIZE), dtype=np.float32),
        boxes=[],
        probabilities=np.zeros((0, 10), dtype=np.float32),
    )


# -- step 1 and 2: gray, paper, ink --------------------------------------------------------------
def to_gray(frame: np.ndarray) -> np.ndarray | None:
    """uint8 grayscale (H, W) from a BGR (H, W, 3), BGRA (H, W, 4) or gray (H, W[, 1]) image.

    Other dtypes are scaled into uint8 (floats are taken to lie in [0, 1], uint16 in [0, 65535]).
    Returns None for anything that is not an image (wrong rank, empty).
    """
    frame = np.asarray(frame)
    if frame.ndim == 3 and frame.shape[2] == 1:
        frame = frame[:, :, 0]
    if frame.ndim not in (2, 3) or frame.size == 0:
        return None
    if frame.dtype != np.uint8:
        if np.issubdtype(frame.dtype, np.floating):
            frame = np.clip(np.nan_to_num(frame) * 255.0 + 0.5, 0, 255).astype(np.uint8)
        elif frame.dtype == np.uint16:
            frame = (frame >> 8).astype(np.uint8)
        else:
            frame = np.clip(frame, 0, 255).astype(np.uint8)
    if frame.ndim == 2:
        return np.ascontiguousarray(frame)
    if frame.shape[2] == 3:
        return cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
    if frame.shape[2] == 4:
        return cv2.cvtColor(frame, cv2.COLOR_BGRA2GRAY)
    return None


def paper_brightness(gray: np.ndarray, kernel_fraction: float = 0.08) -> np.ndarray:
    """Estimate the brightness of the paper under the ink: uint8 (H, W) like ``gray``.

    A grayscale closing (max then min filter) erases dark strokes narrower than its kernel; it runs
    on a copy about 160 pixels across (fast), is box-filtered and scaled back to the frame's size.
    The kernel is ``kernel_fraction`` of the short side, so it scales with the frame.
    """
    h, w = gray.shape
    scale = min(1.0, 160.0 / max(h, w))
    small = cv2.resize(gray, (max(1, round(w * scale)), max(1, round(h * scale))), cv2.INTER_AREA)
    k = max(3, int(round(kernel_fraction * min(h, w) * scale)) | 1)
    ellipse = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k))
    paper = cv2.morphologyEx(small, cv2.MORPH_CLOSE, ellipse, borderType=cv2.BORDER_REPLICATE)
    paper = cv2.blur(paper, (k, k), borderType=cv2.BORDER_REPLICATE)  # smooth the closing's steps
    return cv2.resize(paper, (w, h), interpolation=cv2.INTER_LINEAR)


def ink_darkness(
    gray: np.ndarray, paper: np.ndarray, min_paper: int = 24
) -> tuple[np.ndarray, np.ndarray]:
    """How much darker than its paper each pixel is: ``(relative, absolute)``, uint8 (H, W).

    ``relative`` is ``255 * (paper - gray) / paper``, 0 where there is no paper
    (``paper < min_paper``); ``absolute`` is ``paper - gray`` in gray levels. Both are 0 where the
    pixel is brighter than the paper.
    """
    absolute = cv2.subtract(paper, gray)
    relative = cv2.divide(absolute, paper, scale=255.0)
    if min_paper > 0:
        relative[paper < min_paper] = 0
    return relative, absolute


def noise_level(gray: np.ndarray, paper: np.ndarray, step: int = 6) -> float:
    """Robust standard deviation, in gray levels, of the pixels' difference from the paper, from
    every ``step``-th row and column: 1.4826 times the median absolute deviation, which ink
    (a minority of pixels) hardly moves."""
    diff = paper[::step, ::step].astype(np.float32) - gray[::step, ::step]
    return float(1.4826 * np.median(np.abs(diff - np.median(diff))))


def ink_mask(
    relative: np.ndarray,
    absolute: np.ndarray | None = None,
    min_contrast: float = 0.22,
    hysteresis: float = 0.6,
    noise: float = 0.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Binary masks uint8 (H, W) in {0, 255} of the ink: ``(weak, strong)``.

    ``strong`` pixels are darker than their paper by Otsu's threshold on ``relative`` darkness,
    never less than ``min_contrast`` (0..1), and — when ``absolute`` darkness is given — by more
    than 4.5 times the ``noise`` (gray levels, see :func:`noise_level`): dim regions of a grainy
    frame need more relative contrast. So paper with noise and no ink has no strong pixels at all.
    ``weak`` pixels pass ``hysteresis`` times those thresholds: a faint stretch of a stroke that
    the strong threshold would cut is weak, and a weak piece counts as ink when it holds strong
    pixels (hysteresis thresholding, as in Canny's edge detector). A 3x3 median removes isolated
    noise pixels and a 3x3 closing mends strokes cut by a pixel.
    """
    floor = int(round(255 * min_contrast))
    otsu, _ = cv2.threshold(relative, 0, 255, cv2.THRESH_BINARY | cv2.THRESH_OTSU)
    high = max(otsu, floor)
    _, weak = cv2.threshold(relative, int(high * hysteresis), 255, cv2.THRESH_BINARY)
    _, strong = cv2.threshold(relative, high, 255, cv2.THRESH_BINARY)
    if absolute is not None and noise > 0:
        _, above = cv2.threshold(absolute, 3.0 * noise, 255, cv2.THRESH_BINARY)
        weak = cv2.bitwise_and(weak, above)
        _, above = cv2.threshold(absolute, 4.5 * noise, 255, cv2.THRESH_BINARY)
        strong = cv2.bitwise_and(strong, above)
    weak = cv2.medianBlur(weak, 3)
    weak = cv2.morphologyEx(weak, cv2.MORPH_CLOSE, np.ones((3, 3), np.uint8))
    return weak, cv2.bitwise_and(strong, weak)


# -- step 3: candidate boxes ---------------------------------------------------------------------
def _union(a: Box, b: Box) -> Box:
    x0, y0 = min(a[0], b[0]), min(a[1], b[1])
    x1, y1 = max(a[0] + a[2], b[0] + b[2]), max(a[1] + a[3], b[1] + b[3])
    return (x0, y0, x1 - x0, y1 - y0)


def _belong_together(a: Box, b: Box, merge_gap: float) -> bool:
    """Are two pieces parts of one digit?

    Pieces that overlap vertically join when they also overlap horizontally by half the narrower
    one, or when the smaller is a *fragment* (at most 0.4 of the other's height: the detached
    bar of a 5, a dot). Pieces one above the other join across a hairline gap (a stroke cut in
    two), or a fragment across a gap of up to ``merge_gap`` of the taller one's height. Two rows
    of digits, or neighbours in a row, stay apart.
    """
    tall, short = max(a[3], b[3]), min(a[3], b[3])
    overlap = min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0])
    if overlap <= 0:
        return False
    gap = max(a[1], b[1]) - min(a[1] + a[3], b[1] + b[3])  # negative when they overlap
    narrow_overlap = overlap >= 0.5 * min(a[2], b[2])
    fragment = short <= 0.4 * tall
    if gap <= 0:
        return narrow_overlap or fragment
    if not narrow_overlap:
        return False
    if gap <= 0.1 * tall and short > 0.4 * tall:  # a stroke cut by a hairline
        return True
    if not fragment or gap > merge_gap * tall:
        return False
    merged = _union(a, b)
    return merged[3] <= 1.5 * tall and merged[2] <= 1.6 * merged[3]


def merge_pieces(boxes: list[Box], merge_gap: float = 0.15) -> list[list[int]]:
    """Group indices of ``boxes`` that are pieces of one digit; returns the groups (lists of
    indices into ``boxes``), each group's members sorted. Repeats until no two groups join."""
    groups = [[i] for i in range(len(boxes))]
    merged_boxes = list(boxes)
    changed = True
    while changed:
        changed = False
        order = sorted(range(len(groups)), key=lambda g: -merged_boxes[g][3])  # tall ones first
        for ii, gi in enumerate(order):
            if not groups[gi]:
                continue
            for gj in order[ii + 1 :]:
                if groups[gj] and _belong_together(merged_boxes[gi], merged_boxes[gj], merge_gap):
                    groups[gi] += groups[gj]
                    groups[gj] = []
                    merged_boxes[gi] = _union(merged_boxes[gi], merged_boxes[gj])
                    changed = True
        keep = [g for g in range(len(groups)) if groups[g]]
        groups = [groups[g] for g in keep]
        merged_boxes = [merged_boxes[g] for g in keep]
    return [sorted(g) for g in groups]


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else 0.5 * (ordered[mid - 1] + ordered[mid])


def _joins_row(box: Box, row: list[Box]) -> bool:
    """Does ``box`` belong to ``row``? Its vertical center must lie within half the row's median
    height (or half its own height, if larger) of the row's mean center."""
    cy = box[1] + box[3] / 2
    row_cy = sum(b[1] + b[3] / 2 for b in row) / len(row)
    row_h = _median([b[3] for b in row])
    return abs(cy - row_cy) <= 0.5 * max(row_h, box[3] * 0.5)


def reading_order(boxes: list[Box]) -> list[int]:
    """Indices of ``boxes`` in reading order: rows from top to bottom, left to right in a row.

    Boxes are taken by their vertical center; one joins the current row when its center lies
    within half the row's median height of the row's mean center (so rows may tilt or wobble a
    little), otherwise it starts the next row. Within a row, boxes go by their left edge.
    """
    by_center = sorted(range(len(boxes)), key=lambda i: boxes[i][1] + boxes[i][3] / 2)
    rows: list[list[int]] = []
    for i in by_center:
        if rows and _joins_row(boxes[i], [boxes[j] for j in rows[-1]]):
            rows[-1].append(i)
        else:
            rows.append([i])
    return [i for row in rows for i in sorted(row, key=lambda j: (boxes[j][0], boxes[j][1]))]


def rows_of(detections: list[Detection]) -> list[list[Detection]]:
    """Split detections (already in reading order) into their rows."""
    rows: list[list[Detection]] = []
    for det in detections:
        if (
            rows
            and det.box[0] >= rows[-1][-1].box[0]
            and _joins_row(det.box, [d.box for d in rows[-1]])
        ):
            rows[-1].append(det)
        else:
            rows.append([det])
    return rows


# -- step 4: MNIST normalization ------------------------------------------------------------------
def center_of_mass(image: np.ndarray) -> tuple[float, float]:
    """(row, column) center of mass of a 2-D nonnegative image; its center if it is all zero.

    (NumPy, not ``cv2.moments``: OpenCV takes an (N, 2) array for a list of points.)
    """
    image = np.asarray(image, dtype=np.float64)
    total = image.sum()
    if total <= 1e-12:
        return ((image.shape[0] - 1) / 2.0, (image.shape[1] - 1) / 2.0)
    rows = image.sum(axis=1) @ np.arange(image.shape[0]) / total
    cols = image.sum(axis=0) @ np.arange(image.shape[1]) / total
    return (float(rows), float(cols))


def deskew(image: np.ndarray) -> np.ndarray:
    """Shear a 28x28 float image so its principal axis is vertical (second moments), keeping its
    center of mass; returns the image unchanged when it is nearly straight or empty."""
    m = cv2.moments(image)
    if abs(m["mu02"]) < 1e-2:
        return image
    skew = m["mu11"] / m["mu02"]
    if abs(skew) < 1e-3:
        return image
    cy, cx = center_of_mass(image)
    matrix = np.float32([[1, skew, -skew * cy], [0, 1, 0]])  # x' = x + skew * (y - cy)
    return cv2.warpAffine(
        image,
        matrix,
        image.shape[::-1],
        flags=cv2.WARP_INVERSE_MAP | cv2.INTER_LINEAR,
        borderValue=0.0,
    ).astype(np.float32, copy=False)


def normalize_digit(ink: np.ndarray, deskew_digit: bool = False) -> np.ndarray:
    """MNIST-style 28x28 float32 image in [0, 1] of one digit's ink (light on black).

    ``ink`` (h, w) is the digit's darkness (uint8 or float, 0 = paper), cropped to its bounding
    box. It is scaled (area interpolation) so its longer side is 20 pixels, keeping its aspect
    ratio, brightened so its strongest stroke is 1.0, and placed in 28x28 with its center of mass
    at the center (13.5, 13.5) by a sub-pixel shift (a digit whose mass is so far off its box's
    center that the shift would cut it is made smaller until it fits). With ``deskew_digit`` it is then sheared
    upright about its center of mass.
    """
    ink = np.asarray(ink, dtype=np.float32)
    h, w = ink.shape
    out = np.zeros((MNIST_SIZE, MNIST_SIZE), dtype=np.float32)
    if h == 0 or w == 0:
        return out
    scale = MNIST_BOX / max(h, w)
    for _ in range(4):
        nh, nw = max(1, int(round(h * scale))), max(1, int(round(w * scale)))
        interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
        small = cv2.resize(ink, (nw, nh), interpolation=interpolation)
        peak = float(small.max())
        if peak <= 0:
            return out
        cy, cx = center_of_mass(small)
        # Centering by mass must not push ink out of the 28x28 image: a digit whose mass lies
        # far from its box's center (a "C", a "7") is made a little smaller instead.
        reach = max(cy, nh - 1 - cy, cx, nw - 1 - cx)
        if reach <= MNIST_CENTER + 1e-3:
            break
        scale *= MNIST_CENTER / reach * 0.98
    small *= 1.0 / peak
    # Sub-pixel translation (bilinear) putting the center of mass at (13.5, 13.5).
    matrix = np.float32([[1, 0, MNIST_CENTER - cx], [0, 1, MNIST_CENTER - cy]])
    out = cv2.warpAffine(
        small, matrix, (MNIST_SIZE, MNIST_SIZE), flags=cv2.INTER_LINEAR, borderValue=0.0
    )
    if deskew_digit:
        out = deskew(out)
    return np.clip(out, 0.0, 1.0, out=out)


def _stroke_width(area: float, perimeter: float) -> float:
    """Mean stroke width of a thin shape: area / (half its perimeter), the ribbon formula."""
    return 2.0 * area / max(perimeter, 1.0)


# -- the reader ---------------------------------------------------------------------------------
class DigitReader:
    """Reads every handwritten digit in a frame with one batched call of ``model``.

    ``model`` is anything with ``predict_proba(x)`` taking float32 (N, 1, 28, 28) in [0, 1]
    (white digit on black, like MNIST) and returning (N, 10) probabilities — a
    :class:`scratchcnn.Sequential`. ``config`` is a :class:`ReaderConfig`; keyword arguments
    override its fields, e.g. ``DigitReader(model, min_confidence=0.5, deskew=True)``.
    """

    def __init__(self, model, config: ReaderConfig | None = None, **overrides):
        self.model = model
        config = config or ReaderConfig()
        if overrides:
            config = ReaderConfig(**{**config.__dict__, **overrides})
        self.config = config

    # The steps, each usable on its own (tests and the debug view call them).
    def candidates(self, gray: np.ndarray) -> tuple[np.ndarray, np.ndarray, list[Box], list]:
        """From a gray frame (H, W) uint8: (darkness, mask, boxes, contour groups), boxes in
        reading order; each group is the list of contours that make one digit."""
        c = self.config
        h, w = gray.shape
        paper = paper_brightness(gray, c.paper_kernel_fraction)
        darkness, absolute = ink_darkness(gray, paper, c.min_paper)
        noise = noise_level(gray, paper)
        mask, strong = ink_mask(darkness, absolute, c.min_contrast, c.hysteresis, noise)
        # Outer boundaries, including those inside another shape's hole: a digit must not vanish
        # because something (the dark edge of the desk around the sheet, a drawn frame) rings it.
        contours, hierarchy = cv2.findContours(mask, cv2.RETR_CCOMP, cv2.CHAIN_APPROX_SIMPLE)
        if not contours:
            return darkness, mask, [], []
        links = hierarchy[0]
        # Before merging, drop pieces that cannot be (part of) a digit: a few pixels of noise,
        # faint smudges without strong ink, shapes too large (the dark desk around the sheet, a
        # shadow), with reject_border anything cut by the frame's edge, and frames: shapes whose
        # hole holds another piece (a digit's holes are empty). One such piece left in would
        # swallow every digit near it.
        tiny = max(2, c.min_height // 5)
        max_h = c.max_height_fraction * h
        pieces, holes = [], []
        for i, cnt in enumerate(contours):
            if links[i][3] >= 0:  # a hole: remember the big ones, with their owner
                hx, hy, hw, hh = cv2.boundingRect(cnt)
                if hh >= c.min_height and hw >= tiny:
                    holes.append((links[i][3], (hx, hy, hx + hw, hy + hh)))
                continue
            x, y, bw, bh = box = cv2.boundingRect(cnt)
            if max(bw, bh) < tiny or bh > max_h or bw > c.max_aspect * max_h:
                continue
            if c.reject_border and (x <= 0 or y <= 0 or x + bw >= w or y + bh >= h):
                continue
            if cv2.countNonZero(strong[y : y + bh, x : x + bw]):
                pieces.append((i, cnt, box))
        frames = {
            owner
            for owner, (x0, y0, x1, y1) in holes
            for _, _, (x, y, bw, bh) in pieces
            if bh >= c.min_height // 2 and x0 <= x and y0 <= y and x + bw <= x1 and y + bh <= y1
        }
        pieces = [(cnt, box) for i, cnt, box in pieces if i not in frames]
        piece_boxes = [b for _, b in pieces]
        boxes, groups = [], []
        for members in merge_pieces(piece_boxes, c.merge_gap):
            box = piece_boxes[members[0]]
            for m in members[1:]:
                box = _union(box, piece_boxes[m])
            x, y, bw, bh = box
            if bh < c.min_height or bh > max_h or bw > c.max_aspect * bh:
                continue
            if c.reject_border and (x <= 0 or y <= 0 or x + bw >= w or y + bh >= h):
                continue
            ink_pixels = cv2.countNonZero(mask[y : y + bh, x : x + bw])
            density = ink_pixels / float(bw * bh)
            if density < c.min_density:
                continue
            if density > c.max_blob_density and bw > 0.4 * bh:
                continue
            boxes.append(box)
            groups.append([pieces[m][0] for m in members])
        order = reading_order(boxes)
        return darkness, mask, [boxes[i] for i in order], [groups[i] for i in order]

    def crop(self, darkness: np.ndarray, mask: np.ndarray, box: Box, contours: list) -> np.ndarray:
        """The 28x28 float32 MNIST-normalized image of the digit in ``box`` made of ``contours``.

        Only the darkness inside the digit's own (slightly dilated) contours is kept, so a
        neighbour's stroke reaching into the box is left out. The darkness is stretched so the
        median of the thresholded stroke pixels becomes 1.0: MNIST strokes have a saturated core
        and soft edges, while a camera's ink is grayer and uneven.
        """
        x, y, bw, bh = box
        region = darkness[y : y + bh, x : x + bw]
        own = np.zeros((bh, bw), dtype=np.uint8)
        cv2.drawContours(own, contours, -1, 255, thickness=cv2.FILLED, offset=(-x, -y))
        strokes = region[(own > 0) & (mask[y : y + bh, x : x + bw] > 0)]
        area = float(strokes.size)
        reference = float(np.median(strokes)) if strokes.size else float(region.max())
        own = cv2.dilate(own, np.ones((3, 3), np.uint8))
        ink = cv2.bitwise_and(region, own).astype(np.float32)
        ink *= 1.0 / max(reference, 1.0)
        np.minimum(ink, 1.0, out=ink)
        if self.config.thicken:
            ink = self._thicken(ink, area, sum(cv2.arcLength(cnt, True) for cnt in contours), box)
        return normalize_digit(ink, self.config.deskew)

    @staticmethod
    def _thicken(ink: np.ndarray, area: float, perimeter: float, box: Box) -> np.ndarray:
        """Dilate strokes far thinner than MNIST's (about 2.5 px of the 20-px box, i.e. 12% of
        the digit's longer side), as a fine pen on a large digit draws them."""
        target = 0.12 * max(box[2], box[3])
        width = _stroke_width(area, perimeter)
        if width >= 0.5 * target:
            return ink
        k = int(round(target - width)) | 1
        if k < 3:
            return ink
        ellipse = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k))
        pad = k // 2 + 1  # room to grow: a thin "1" is as wide as its box
        grown = cv2.dilate(
            cv2.copyMakeBorder(ink, pad, pad, pad, pad, cv2.BORDER_CONSTANT), ellipse
        )
        x, y, w, h = cv2.boundingRect((grown > 0).astype(np.uint8))
        return grown[y : y + h, x : x + w]

    def read(self, frame: np.ndarray) -> FrameResult:
        """Read all digits of ``frame`` (BGR or gray, uint8 preferred; see :func:`to_gray`).

        Blank, saturated, tiny or malformed frames give an empty result, never an exception.
        """
        start = time.perf_counter()
        gray = to_gray(frame)
        if gray is None or min(gray.shape) < self.config.min_height + 2:
            return empty_result(gray.shape if gray is not None else (0, 0))
        darkness, mask, boxes, groups = self.candidates(gray)
        found = time.perf_counter()
        timings = {"candidates": 1e3 * (found - start), "crops": 0.0, "predict": 0.0}
        if not boxes:
            result = _no_digits(mask)
            result.timings = timings
            return result
        crops = np.stack(
            [
                self.crop(darkness, mask, box, group)
                for box, group in zip(boxes, groups, strict=True)
            ]
        )[:, None]
        cropped = time.perf_counter()
        if self.config.predict_threads:
            with limit_threads(self.config.predict_threads):
                probabilities = self.model.predict_proba(crops)
        else:
            probabilities = self.model.predict_proba(crops)
        probabilities = np.asarray(probabilities, dtype=np.float32)
        timings["crops"] = 1e3 * (cropped - found)
        timings["predict"] = 1e3 * (time.perf_counter() - cropped)
        digits = probabilities.argmax(axis=1)
        detections = []
        for box, digit, probs in zip(boxes, digits, probabilities, strict=True):
            confidence = float(probs[digit])
            if confidence >= self.config.min_confidence:
                detections.append(
                    Detection(tuple(int(v) for v in box), int(digit), confidence, probs)
                )
        return FrameResult(detections, mask, crops, boxes, probabilities, timings)

    __call__ = read


def _no_digits(mask: np.ndarray) -> FrameResult:
    result = empty_result(mask.shape)
    result.mask = mask
    return result
