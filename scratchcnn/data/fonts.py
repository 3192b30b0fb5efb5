"""Digits written in handwriting fonts, drawn the way MNIST's digits were made.

MNIST's writers share habits (a 1 without a flag, a 9 with a round loop); fonts made from other
people's handwriting show other styles: a European 1 with a long flag, a 7 with a bar, open 4s.
Debian packages several such fonts (``apt-get install fonts-dkg-handwriting fonts-breip
fonts-rufscript fonts-sjfonts fonts-humor-sans fonts-bwht fonts-klee``); this module finds the ones
installed and draws each digit of each font as a 28x28 MNIST-style image: fitted into 20x20
keeping its aspect ratio, centred by mass, light on black.

Drawing needs Pillow (``pip install pillow``); finding fonts does not.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

# Handwriting fonts from Debian's packages (file names as the packages install them). Outlined or
# decorated fonts (femkeklaver) are left out: nobody writes digits as outlines.
HANDWRITING_FONTS = (
    "fifthhorseman/dkg.ttf",  # fonts-dkg-handwriting
    "fifthhorseman/dkgBd.ttf",
    "fifthhorseman/dkgIt.ttf",
    "fifthhorseman/dkgBI.ttf",
    "breip/Breip.ttf",  # fonts-breip
    "rufscript/Rufscript010.ttf",  # fonts-rufscript
    "sjfonts/Delphine.ttf",  # fonts-sjfonts
    "sjfonts/SteveHand.ttf",
    "humor-sans/Humor-Sans.ttf",  # fonts-humor-sans
    "bwht/BecauseWeBuild-Regular.otf",  # fonts-bwht
    "bwht/BecauseWeConnect-Regular.otf",
    "bwht/BecauseWeCreate-Regular.otf",
    "bwht/BecauseWeLearn-Regular.otf",
    "bwht/BecauseWeMentor-Regular.otf",
    "bwht/BecauseWeOrganize-Regular.otf",
    "klee/KleeOne-Regular.ttf",  # fonts-klee
    "klee/KleeOne-SemiBold.ttf",
)
FONT_ROOTS = ("/usr/share/fonts/truetype", "/usr/share/fonts/opentype", "/usr/local/share/fonts")
DEBIAN_PACKAGES = (
    "fonts-dkg-handwriting fonts-breip fonts-rufscript fonts-sjfonts fonts-humor-sans "
    "fonts-bwht fonts-klee"
)


def find_handwriting_fonts() -> list[Path]:
    """The handwriting font files installed here, in :data:`HANDWRITING_FONTS` order.

    ``SCRATCHCNN_FONTS`` (font files or folders, separated by ``os.pathsep``) replaces the list.
    """
    listed = os.environ.get("SCRATCHCNN_FONTS")
    if listed:
        found = []
        for entry in filter(None, listed.split(os.pathsep)):
            path = Path(entry)
            if path.is_dir():
                found += sorted(p for p in path.rglob("*") if p.suffix.lower() in (".ttf", ".otf"))
            elif path.is_file():
                found.append(path)
        return found
    found = []
    for name in HANDWRITING_FONTS:
        for root in FONT_ROOTS:
            path = Path(root) / name
            if path.is_file():
                found.append(path)
                break
    return found


def _mnist_box(ink: np.ndarray, size: int) -> np.ndarray:
    """Fit ``ink`` (h, w) float into a ``size`` square as MNIST did: longest side 20/28 of it,
    aspect kept, centre of mass at the centre; uint8 light on black."""
    import cv2

    ys, xs = np.nonzero(ink > 0.05)
    out = np.zeros((size, size), np.float32)
    if len(ys) == 0:
        return out.astype(np.uint8)
    ink = ink[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]
    h, w = ink.shape
    box = size * 20.0 / 28.0
    scale = box / max(h, w)
    nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
    small = cv2.resize(ink, (nw, nh), interpolation=cv2.INTER_AREA)
    total = small.sum()
    cy = (small.sum(axis=1) @ np.arange(nh)) / total
    cx = (small.sum(axis=0) @ np.arange(nw)) / total
    center = (size - 1) / 2.0
    matrix = np.float32([[1, 0, center - cx], [0, 1, center - cy]])
    out = cv2.warpAffine(small, matrix, (size, size), flags=cv2.INTER_LINEAR, borderValue=0.0)
    return np.clip(out * 255.0 / max(out.max(), 1e-6) + 0.5, 0, 255).astype(np.uint8)


def render_font_digits(fonts=None, size: int = 28) -> tuple[np.ndarray, np.ndarray]:
    """Every digit 0-9 of every font: images uint8 (N, size, size), light on black, MNIST's
    framing, and labels uint8 (N,), font by font. ``fonts`` defaults to
    :func:`find_handwriting_fonts`; with none installed the arrays are empty (N = 0).

    A font without a glyph for a digit (an empty drawing) gives no image for it.
    """
    try:
        from PIL import Image, ImageDraw, ImageFont
    except ImportError as err:  # pragma: no cover - Pillow comes with the test extra
        raise ImportError("drawing font digits needs Pillow: pip install pillow") from err
    fonts = find_handwriting_fonts() if fonts is None else [Path(f) for f in fonts]
    images, labels = [], []
    points = 8 * size  # draw large, then shrink with area interpolation (anti-aliasing)
    for path in fonts:
        font = ImageFont.truetype(str(path), points)
        for digit in range(10):
            canvas = Image.new("L", (3 * points, 3 * points), 0)
            ImageDraw.Draw(canvas).text((points, points // 2), str(digit), font=font, fill=255)
            ink = np.asarray(canvas, dtype=np.float32) / 255.0
            if ink.max() <= 0:
                continue
            images.append(_mnist_box(ink, size))
            labels.append(digit)
    if not images:
        return np.zeros((0, size, size), np.uint8), np.zeros(0, np.uint8)
    return np.stack(images), np.asarray(labels, dtype=np.uint8)
