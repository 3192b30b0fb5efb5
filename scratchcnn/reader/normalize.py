"""Step 4: a digit's ink made into what the network was trained on, the way MNIST was made —
fitted into 20x20 keeping its aspect ratio, padded to 28x28 and shifted so its center of mass is
at the center; optionally deskewed. Light strokes on black, float32 (28, 28) in [0, 1]."""

from __future__ import annotations

import cv2
import numpy as np

MNIST_SIZE = 28  # side of the network's input
MNIST_BOX = 20  # MNIST digits were fitted into 20x20 and centered by mass in 28x28
MNIST_CENTER = (MNIST_SIZE - 1) / 2.0  # 13.5: the center of a 28-pixel axis in pixel coordinates


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


def stroke_width(area: float, perimeter: float) -> float:
    """Mean stroke width of a thin shape: area / (half its perimeter), the ribbon formula."""
    return 2.0 * area / max(perimeter, 1.0)
