"""Steps 1 and 2 of reading a frame: grayscale, the paper's brightness, each pixel's relative ink
darkness ``(paper - pixel) / paper`` (uneven light divides out), and the ink mask (Otsu's
threshold with a noise floor and hysteresis). Images are uint8 (H, W) in, float32 darkness or
uint8 masks (255 = ink) out."""

from __future__ import annotations

import cv2
import numpy as np


def to_gray(frame: np.ndarray) -> np.ndarray | None:
    """uint8 grayscale (H, W) from a BGR (H, W, 3), BGRA (H, W, 4) or gray (H, W[, 1]) image.

    BGRA images are composited onto white paper (transparent is white).
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
    if frame.shape[2] == 4:  # composited onto white: ink drawn on a transparent canvas shows
        alpha = frame[:, :, 3].astype(np.float32) * (1.0 / 255.0)
        gray = cv2.cvtColor(np.ascontiguousarray(frame[:, :, :3]), cv2.COLOR_BGR2GRAY)
        return np.clip(gray * alpha + 255.0 * (1.0 - alpha) + 0.5, 0, 255).astype(np.uint8)
    return None


def paper_brightness(gray: np.ndarray, kernel_fraction: float = 0.08) -> np.ndarray:
    """Estimate the brightness of the paper under the ink: uint8 (H, W) like ``gray``.

    A grayscale closing (max then min filter) erases dark strokes narrower than its kernel; it runs
    on a copy about 160 pixels across (fast), is box-filtered and scaled back to the frame's size.
    The kernel is ``kernel_fraction`` of the short side, so it scales with the frame. A kernel
    that would be wider than 15 pixels there (the coarse estimate of a digit filling the image)
    runs on a smaller copy instead: the closing's cost grows with its kernel's area.
    """
    h, w = gray.shape
    scale = min(1.0, 160.0 / max(h, w), 15.0 / max(1.0, kernel_fraction * min(h, w)))
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    # Bilinear, not area averaging: averaging spreads thin dark strokes into their paper, and the
    # closing then finds the paper darker there (measured: 10-12 px digits and tilted sheets lost).
    small = cv2.resize(gray, size, interpolation=cv2.INTER_LINEAR)
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


def noise_level(gray: np.ndarray, paper: np.ndarray, step: int = 6, filled: bool = False) -> float:
    """Robust standard deviation, in gray levels, of the pixels' difference from the paper, from
    every ``step``-th row and column: 1.4826 times the median absolute deviation, which ink
    (a minority of pixels) hardly moves.

    ``filled``: the image may be one digit filling it, written thick, where ink can be most of
    the pixels and the median a pixel of ink. The deviation of the pixels brighter than Otsu's
    threshold (the paper's side) is then taken when it is under a quarter of the whole's: two
    clusters far apart, paper and ink. (On blank paper the two sides are halves of one cluster,
    and the whole's deviation stands.)
    """
    gray, paper = gray[::step, ::step], paper[::step, ::step]
    diff = paper.astype(np.float32) - gray
    noise = _deviation(diff)
    if filled and gray.size:
        otsu, _ = cv2.threshold(
            np.ascontiguousarray(gray), 0, 255, cv2.THRESH_BINARY | cv2.THRESH_OTSU
        )
        bright = gray > otsu
        if np.count_nonzero(bright) >= 16:
            paper_side = _deviation(diff[bright])
            if 4.0 * paper_side < noise:
                noise = paper_side
    return noise


def _deviation(values: np.ndarray) -> float:
    """1.4826 times the median absolute deviation: the standard deviation of a normal sample."""
    return float(1.4826 * np.median(np.abs(values - np.median(values))))


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


def darker_around(gray: np.ndarray, mask: np.ndarray, box: tuple[int, int, int, int]) -> float:
    """The fraction of the pixels just around the ink of ``box`` (``mask`` uint8 (H, W), 0 =
    paper, over ``gray`` uint8 (H, W)) that are darker than that ink's mean: about 0 for a pen's
    stroke, which has paper on both sides; about half for the blurred edge of a darker region
    (the desk around a page), which has paper on one side and the darker region on the other."""
    x, y, w, h = box
    pad = 3
    x0, y0 = max(0, x - pad), max(0, y - pad)
    x1, y1 = min(gray.shape[1], x + w + pad), min(gray.shape[0], y + h + pad)
    ink = mask[y0:y1, x0:x1]
    patch = gray[y0:y1, x0:x1]
    around = cv2.subtract(cv2.dilate(ink, np.ones((2 * pad + 1,) * 2, np.uint8)), ink)
    count = cv2.countNonZero(around)
    if count == 0 or not cv2.countNonZero(ink):
        return 0.0
    darker = cv2.compare(patch, cv2.mean(patch, mask=ink)[0], cv2.CMP_LT)
    return cv2.countNonZero(cv2.bitwise_and(darker, around)) / count
