"""Realistic camera frames of handwritten digits on paper, with their ground truth.

MNIST *test* digits (never training ones: the frames measure a model trained on the training set)
are written dark on light paper the way a webcam sees a sheet: several per frame at different
sizes and small rotations, a pen's colour, uneven light (a gradient, a vignette, a soft shadow), a
mild perspective tilt of the sheet, lens blur, sensor noise and JPEG artefacts. Every random choice
comes from the ``numpy.random.Generator`` passed in: the same seed gives the same frames.

``python -m scratchcnn.synthetic OUT.avi`` writes a demo video (MJPG) to try the webcam example on
without a camera, and its ground truth beside it (``OUT.truth.json``: every frame's digits and
boxes), which ``python -m scratchcnn.score`` compares with what a reader printed.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from scratchcnn.reader.boxes import Box, quarter_turn_points


@dataclass(frozen=True)
class TruthDigit:
    """One rendered digit: its label, its ink's box ``(x, y, w, h)`` in the frame, and the index
    of the source image."""

    digit: int
    box: Box
    index: int


@dataclass(frozen=True)
class RenderConfig:
    """Ranges the renderer draws from uniformly (each frame draws its own values)."""

    size: tuple[int, int] = (640, 480)  # width, height
    digit_height: tuple[int, int] = (36, 120)  # ink height in pixels, before perspective
    max_rotation: float = 12.0  # degrees, each digit its own
    perspective: float = 0.035  # corner displacement, fraction of the frame's size
    paper: tuple[int, int] = (165, 240)  # brightest paper gray level
    gradient: tuple[float, float] = (0.0, 0.35)  # darkening across the frame (fraction)
    vignette: tuple[float, float] = (0.0, 0.35)  # darkening at the corners (fraction)
    shadow: tuple[float, float] = (0.0, 0.25)  # a soft shadow's darkening (fraction)
    ink_strength: tuple[float, float] = (0.6, 0.9)  # how much of the light the pen's ink absorbs
    blur_sigma: tuple[float, float] = (0.3, 1.1)  # lens blur, pixels
    noise_sigma: tuple[float, float] = (1.5, 6.0)  # sensor noise, gray levels
    jpeg_quality: tuple[int, int] = (55, 90)
    margin: float = 0.07  # keep digits this fraction of the frame away from its edges


def mnist_test_digits(data_dir=None, download: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """The 10,000 MNIST *test* images uint8 (10000, 28, 28) and labels uint8 (10000,), through
    :func:`scratchcnn.data.load_split` (same folders, same verification, the two test files
    alone; missing ones downloaded unless ``download=False``)."""
    from scratchcnn.data import load_split

    return load_split("test", data_dir, download=download, progress=False)


class FrameRenderer:
    """Renders frames from ``images`` uint8 (N, 28, 28) (MNIST style: light digit on black) and
    their ``labels`` (N,).

    :meth:`render` returns ``(frame, truth)``: a BGR uint8 frame (H, W, 3) and a list of
    :class:`TruthDigit`. :meth:`blank` renders the same paper, light and noise with no digits.
    """

    def __init__(self, images: np.ndarray, labels: np.ndarray, config: RenderConfig | None = None):
        images = np.asarray(images)
        if images.ndim != 3 or images.shape[1:] != (28, 28) or len(images) != len(labels):
            raise ValueError("images must be (N, 28, 28) with one label each")
        self.images = images
        self.labels = np.asarray(labels)
        self.config = config or RenderConfig()

    # -- the sheet and the light ----------------------------------------------------------------
    def _lighting(self, rng: np.random.Generator) -> np.ndarray:
        """Paper brightness float32 (H, W, 3): base level x gradient x vignette x shadow x tint."""
        c = self.config
        w, h = c.size
        ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
        xs, ys = xs / w - 0.5, ys / h - 0.5
        light = np.full((h, w), rng.uniform(*c.paper), dtype=np.float32)
        angle = rng.uniform(0, 2 * np.pi)
        ramp = xs * np.cos(angle) + ys * np.sin(angle)  # -0.7 .. 0.7
        light *= 1.0 - rng.uniform(*c.gradient) * (ramp - ramp.min()) / np.ptp(ramp)
        cx, cy = rng.uniform(-0.2, 0.2, size=2)
        r2 = (xs - cx) ** 2 + (ys - cy) ** 2
        light *= 1.0 - rng.uniform(*c.vignette) * r2 / r2.max()
        # A soft shadow: a large blurred ellipse, e.g. of a hand or the camera.
        shadow = np.zeros((h, w), dtype=np.float32)
        center = (int(rng.uniform(0, w)), int(rng.uniform(0, h)))
        axes = (int(rng.uniform(0.2, 0.6) * w), int(rng.uniform(0.15, 0.5) * h))
        cv2.ellipse(shadow, center, axes, rng.uniform(0, 180), 0, 360, 1.0, -1)
        shadow = cv2.GaussianBlur(shadow, (0, 0), 0.12 * w)
        light *= 1.0 - rng.uniform(*c.shadow) * shadow
        tint = rng.uniform(0.92, 1.04, size=3).astype(np.float32)  # warm or cool light
        return light[:, :, None] * tint

    def _perspective(self, rng: np.random.Generator) -> np.ndarray:
        """A random homography (3, 3) moving each frame corner by up to ``perspective``."""
        w, h = self.config.size
        src = np.float32([[0, 0], [w, 0], [w, h], [0, h]])
        jitter = rng.uniform(-1, 1, size=(4, 2)) * self.config.perspective * np.float32([w, h])
        return cv2.getPerspectiveTransform(src, (src + jitter).astype(np.float32))

    def _camera(self, rng: np.random.Generator, image: np.ndarray) -> np.ndarray:
        """Lens blur, sensor noise and JPEG compression of a float BGR image; returns uint8."""
        c = self.config
        image = cv2.GaussianBlur(image, (0, 0), rng.uniform(*c.blur_sigma))
        image += rng.normal(0.0, rng.uniform(*c.noise_sigma), size=image.shape).astype(np.float32)
        image = np.clip(image + 0.5, 0, 255).astype(np.uint8)
        quality = int(rng.integers(c.jpeg_quality[0], c.jpeg_quality[1] + 1))
        ok, encoded = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
        if not ok:  # pragma: no cover - the wheel always has a JPEG codec
            return image
        return cv2.imdecode(encoded, cv2.IMREAD_COLOR)

    # -- the digits ------------------------------------------------------------------------------
    def _ink_aspect(self, index: int) -> float:
        """Width / height of the ink of source image ``index``."""
        ys, xs = np.nonzero(self.images[index] > 90)
        if len(ys) == 0:
            return 1.0
        return (xs.max() - xs.min() + 1) / float(ys.max() - ys.min() + 1)

    def _layout(self, rng, n_digits: int) -> list[tuple[int, int, float, float, float]]:
        """Up to ``n_digits`` digits as (index, height, angle, cx, cy), their rotated ink boxes
        apart from each other by at least 0.15 of the sum of their heights and inside the margins. A digit
        that finds no room shrinks; one that still finds none is left out."""
        c = self.config
        w, h = c.size
        lo, hi = c.digit_height
        hi_fit = int(min(hi, 0.75 * h / max(1.0, np.sqrt(n_digits))))
        indices = rng.choice(len(self.images), size=n_digits, replace=False)
        placed = []  # (index, height, angle, cx, cy, half width, half height)
        for index in indices:
            height = int(rng.uniform(lo, max(lo, hi_fit) + 1))
            angle = rng.uniform(-c.max_rotation, c.max_rotation)
            width = self._ink_aspect(index) * height
            cos, sin = abs(np.cos(np.deg2rad(angle))), abs(np.sin(np.deg2rad(angle)))
            for attempt in range(500):
                if attempt and attempt % 100 == 0:
                    height, width = max(lo, int(height * 0.85)), width * 0.85
                hw = 0.5 * (width * cos + height * sin) + 0.15 * height
                hh = 0.5 * (width * sin + height * cos) + 0.15 * height
                if 2 * hw >= (1 - 2 * c.margin) * w or 2 * hh >= (1 - 2 * c.margin) * h:
                    continue
                cx = rng.uniform(c.margin * w + hw, (1 - c.margin) * w - hw)
                cy = rng.uniform(c.margin * h + hh, (1 - c.margin) * h - hh)
                if all(abs(cx - p[3]) > hw + p[5] or abs(cy - p[4]) > hh + p[6] for p in placed):
                    placed.append((int(index), height, angle, cx, cy, hw, hh))
                    break
        return [p[:5] for p in placed]

    def render(
        self, rng: np.random.Generator, n_digits: int
    ) -> tuple[np.ndarray, list[TruthDigit]]:
        """A BGR uint8 frame (H, W, 3) with ``n_digits`` digits, and their ground truth.

        Each digit is a random test image, scaled so its ink is 36-120 pixels tall (less when many
        share the frame), rotated by up to 12 degrees; the whole sheet is then tilted in
        perspective, lit unevenly and photographed (blur, noise, JPEG). Digits never touch; in
        the rare frame where one finds no room, the frame has fewer digits (see the truth).
        """
        c = self.config
        w, h = c.size
        layout = self._layout(rng, n_digits)
        indices = [index for index, *_ in layout]
        ink = np.zeros((h, w), dtype=np.float32)
        points = [
            self._draw_digit(ink, self.images[index], height, angle, cx, cy)
            for index, height, angle, cx, cy in layout
        ]
        homography = self._perspective(rng)
        ink = cv2.warpPerspective(ink, homography, (w, h), flags=cv2.INTER_LINEAR)
        truth = []
        for index, pts in zip(indices, points, strict=True):
            warped = cv2.perspectiveTransform(pts[None].astype(np.float32), homography)[0]
            x0, y0 = np.floor(warped.min(axis=0)).astype(int)
            x1, y1 = np.ceil(warped.max(axis=0)).astype(int)
            truth.append(
                TruthDigit(int(self.labels[index]), (x0, y0, x1 - x0, y1 - y0), int(index))
            )
        light = self._lighting(rng)
        if rng.random() < 0.5:  # black pen
            strength = np.full(3, rng.uniform(*c.ink_strength), dtype=np.float32)
        else:  # blue pen: absorbs red and green more than blue
            s = rng.uniform(*c.ink_strength)
            strength = np.float32([0.55 * s, 0.85 * s, s])
        frame = light * (1.0 - ink[:, :, None] * strength)
        return self._camera(rng, frame), truth

    @staticmethod
    def _draw_digit(ink, image, height, angle, cx, cy) -> np.ndarray:
        """Draw one 28x28 digit into the ink canvas (max blend), ``height`` pixels tall, rotated by
        ``angle`` degrees, centered at (cx, cy); returns the frame coordinates (K, 2) of its ink pixels' corners."""
        digit = image.astype(np.float32) / 255.0
        ys, xs = np.nonzero(digit > 0.35)
        if len(ys) == 0:
            return np.float32([[cx, cy]])
        y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
        scale = height / float(y1 - y0)
        # Map MNIST coordinates to the frame: about the ink box center, scale, rotate, move.
        matrix = cv2.getRotationMatrix2D(((x0 + x1) / 2, (y0 + y1) / 2), angle, scale)
        matrix[:, 2] += (cx - (x0 + x1) / 2, cy - (y0 + y1) / 2)
        corners = np.float32([[0, 0], [28, 0], [28, 28], [0, 28]])
        mapped = corners @ matrix[:, :2].T + matrix[:, 2]
        fh, fw = ink.shape
        px0, py0 = np.maximum(np.floor(mapped.min(axis=0)).astype(int) - 1, 0)
        px1, py1 = np.minimum(np.ceil(mapped.max(axis=0)).astype(int) + 1, (fw, fh))
        local = matrix.copy()
        local[:, 2] -= (px0, py0)
        patch = cv2.warpAffine(
            digit, local, (int(px1 - px0), int(py1 - py0)), flags=cv2.INTER_CUBIC, borderValue=0
        )
        patch = np.clip(patch, 0.0, 1.0)
        region = ink[py0:py1, px0:px1]
        np.maximum(region, patch, out=region)
        # The ink's extent: the four corners of each ink pixel, mapped.
        pix = np.stack([xs, ys], axis=1).astype(np.float32)
        pix = np.concatenate([pix, pix + (1, 0), pix + (0, 1), pix + (1, 1)])
        return pix @ matrix[:, :2].T + matrix[:, 2]

    def blank(self, rng: np.random.Generator) -> np.ndarray:
        """Paper with the same uneven light, tilt, blur, noise and JPEG, and no digits."""
        return self._camera(rng, self._lighting(rng))


# -- sheets: rows of digits, touching pairs, sizes, tilted and sideways photos ---------------------
@dataclass(frozen=True)
class SheetRow:
    """One row of a sheet: digits (indices into the renderer's images) ``height`` pixels tall
    (their ink), with ``gaps[i]`` the space after digit ``i`` as a fraction of ``height``, or
    None for a digit that *touches* the next one (slid against it until the inks meet, then
    overlapping by up to ``overlap`` of the height). A gap of ``SPACE`` or more starts a new group
    of the row's text (``"0522 1859"``)."""

    indices: tuple[int, ...]
    height: float
    gaps: tuple[float | None, ...] = ()
    angle: float = 4.0  # each digit is rotated by up to this many degrees
    overlap: float = 0.05  # touching digits overlap by up to this fraction of the height


SPACE = 1.0  # gaps (fractions of the digit height) from this on separate groups in a row's text


class SheetRenderer(FrameRenderer):
    """Sheets of handwriting photographed: rows of digits at chosen sizes and spacings (touching
    pairs among them), the sheet tilted or turned sideways, lit and photographed like
    :class:`FrameRenderer`'s frames.

    ``images`` uint8 (N, S, S) are light digits on black of any square size S (MNIST test digits,
    :func:`scratchcnn.data.fonts.render_font_digits`). :meth:`render` returns ``(frame, truth,
    text)``: the BGR uint8 frame, the :class:`TruthDigit` list, and the text a reader should give
    (rows separated by newlines, groups by spaces).
    """

    def __init__(self, images: np.ndarray, labels: np.ndarray, config: RenderConfig | None = None):
        images = np.asarray(images)
        if images.ndim != 3 or images.shape[1] != images.shape[2] or len(images) != len(labels):
            raise ValueError("images must be (N, S, S) with one label each")
        self.images = images
        self.labels = np.asarray(labels)
        self.config = config or RenderConfig()

    def _patch(self, index: int, height: float, angle: float):
        """Digit ``index`` drawn ``height`` pixels tall and rotated: (patch float32 (ph, pw) in
        [0, 1], ink pixel corners (K, 2) in patch coordinates)."""
        digit = self.images[index].astype(np.float32) / 255.0
        ys, xs = np.nonzero(digit > 0.35)
        if len(ys) == 0:
            return np.zeros((1, 1), np.float32), np.zeros((1, 2), np.float32)
        y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
        scale = height / float(y1 - y0)
        matrix = cv2.getRotationMatrix2D(((x0 + x1) / 2, (y0 + y1) / 2), angle, scale)
        s = digit.shape[0]
        corners = np.float32([[0, 0], [s, 0], [s, s], [0, s]]) @ matrix[:, :2].T + matrix[:, 2]
        lo = np.floor(corners.min(axis=0)) - 1
        hi = np.ceil(corners.max(axis=0)) + 1
        matrix[:, 2] -= lo
        pw, ph = (hi - lo).astype(int)
        patch = cv2.warpAffine(digit, matrix, (int(pw), int(ph)), flags=cv2.INTER_CUBIC)
        pix = np.stack([xs, ys], axis=1).astype(np.float32)
        pix = np.concatenate([pix, pix + (1, 0), pix + (0, 1), pix + (1, 1)])
        return np.clip(patch, 0.0, 1.0), pix @ matrix[:, :2].T + matrix[:, 2]

    def render(
        self,
        rng: np.random.Generator,
        rows: list[SheetRow],
        size: tuple[int, int] = (800, 600),
        tilt: float = 0.0,
        quarter_turns: int = 0,
        perspective: bool = True,
    ) -> tuple[np.ndarray, list[TruthDigit], str]:
        """A photographed sheet of ``rows`` on paper of ``size`` (width, height) pixels.

        Rows start at the top margin, each 0.6 of its height below the previous one, and at a
        random indent; digits that do not fit in the width or height are left out (the truth
        says what was drawn). The sheet is rotated by ``tilt`` degrees about its centre, tilted in
        perspective (with ``perspective``), lit and photographed; then the photo is turned by
        ``quarter_turns`` counterclockwise quarter turns (a phone held sideways), so a frame of
        size (w, h) becomes (h, w) for odd turns. Truth boxes are in the returned frame's pixels.
        """
        w, h = size
        margin = self.config.margin
        ink = np.zeros((h, w), np.float32)
        placed = []  # (label, index, points, row, group)
        y = margin * h
        lines = []
        for row in rows:
            if y + row.height * 1.3 > (1 - margin) * h:
                break
            x = margin * w + rng.uniform(0, 0.1) * w
            text, previous_gap = "", 0.0
            for i, index in enumerate(row.indices):
                angle = rng.uniform(-row.angle, row.angle)
                patch, points = self._patch(int(index), row.height, angle)
                ph, pw = patch.shape
                ink_x0 = points[:, 0].min()
                ink_y0 = points[:, 1].min()
                py = int(
                    round(y + 0.15 * row.height - ink_y0 + rng.uniform(-0.05, 0.05) * row.height)
                )
                px = int(round(x - ink_x0))
                if previous_gap is None and text:  # touch the digit before
                    px = self._touch(ink, patch, px, py, rng, row.height * row.overlap)
                if px + points[:, 0].max() > (1 - margin) * w or px < 0 or py < 0:
                    break
                if py + ph > h or px + pw > w:
                    break
                region = ink[py : py + ph, px : px + pw]
                np.maximum(region, patch, out=region)
                if text and previous_gap is not None and previous_gap >= SPACE:
                    text += " "
                text += str(int(self.labels[index]))
                placed.append((int(self.labels[index]), int(index), points + (px, py)))
                gap = row.gaps[i] if i < len(row.gaps) else 0.3
                previous_gap = gap
                x = px + points[:, 0].max() + (0 if gap is None else gap * row.height)
            if text:
                lines.append(text)
            y += row.height * 1.6
        # The sheet: tilted, in perspective, lit, photographed.
        matrix = np.eye(3)
        if tilt:
            matrix = np.vstack([cv2.getRotationMatrix2D((w / 2, h / 2), tilt, 1.0), [0, 0, 1]])
        if perspective:
            matrix = self._perspective_for(rng, size) @ matrix
        ink = cv2.warpPerspective(ink, matrix, (w, h), flags=cv2.INTER_LINEAR)
        light = self._lighting_for(rng, size)
        strength = np.full(3, rng.uniform(*self.config.ink_strength), dtype=np.float32)
        if rng.random() < 0.5:  # blue pen
            strength *= np.float32([0.55, 0.85, 1.0])
        frame = self._camera(rng, light * (1.0 - ink[:, :, None] * strength))
        truth = []
        for label, index, points in placed:
            warped = cv2.perspectiveTransform(points[None].astype(np.float32), matrix)[0]
            warped = quarter_turn_points(warped, size, quarter_turns)
            x0, y0 = np.floor(warped.min(axis=0)).astype(int)
            x1, y1 = np.ceil(warped.max(axis=0)).astype(int)
            truth.append(TruthDigit(label, (int(x0), int(y0), int(x1 - x0), int(y1 - y0)), index))
        if quarter_turns % 4:
            frame = np.ascontiguousarray(np.rot90(frame, quarter_turns))
        return frame, truth, "\n".join(lines)

    @staticmethod
    def _touch(ink, patch, px, py, rng, overlap) -> int:
        """Slide ``patch`` left from ``px`` until its ink meets the ink already drawn, then
        further by up to ``overlap`` pixels; returns the new x."""
        ph, pw = patch.shape
        height = ph
        mine = cv2.dilate((patch > 0.35).astype(np.uint8), np.ones((3, 3), np.uint8))
        for step in range(int(0.6 * height)):
            x = px - step
            if x < 0 or py < 0:
                return max(x, 0)
            region = ink[py : py + ph, x : x + pw]
            if region.shape != patch.shape:
                return x
            if np.any((region > 0.35) & (mine > 0)):
                return x - int(rng.integers(0, int(overlap) + 1))
        return px

    def _perspective_for(self, rng, size) -> np.ndarray:
        w, h = size
        src = np.float32([[0, 0], [w, 0], [w, h], [0, h]])
        jitter = rng.uniform(-1, 1, size=(4, 2)) * self.config.perspective * np.float32([w, h])
        return cv2.getPerspectiveTransform(src, (src + jitter).astype(np.float32))

    def _lighting_for(self, rng, size) -> np.ndarray:
        saved = self.config
        self.config = RenderConfig(**{**saved.__dict__, "size": tuple(size)})
        try:
            return self._lighting(rng)
        finally:
            self.config = saved


def tight_crop(digit: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, Box]:
    """A photo of one digit cropped tight, as people hand a reader one: the MNIST ``digit``
    (uint8 (28, 28), light on black) filling 0.8-1.0 of the height of a square image 28 to 319
    pixels wide, its strokes scaled with it (30 pixels wide at the largest), dark on plain paper
    of random brightness with a little noise. Returns the BGR uint8 image and the digit's box."""
    side = int(rng.integers(28, 320))
    fill = rng.uniform(0.8, 1.0)
    ink = _ink_of(digit)
    scale = fill * side / ink.shape[0]
    nh, nw = max(1, round(ink.shape[0] * scale)), max(1, round(ink.shape[1] * scale))
    nw = min(nw, side)
    big = cv2.resize(ink, (nw, nh), interpolation=cv2.INTER_CUBIC) / 255.0
    canvas = np.zeros((side, side), np.float32)
    y0, x0 = (side - nh) // 2, (side - nw) // 2
    canvas[y0 : y0 + nh, x0 : x0 + nw] = np.clip(big, 0, 1)
    return _on_plain_paper(canvas, rng), (int(x0), int(y0), int(nw), int(nh))


def tight_number(
    digits: list[np.ndarray], rng: np.random.Generator
) -> tuple[np.ndarray, list[Box]]:
    """A photo of a number cropped tight to its digits' height: the MNIST ``digits`` (uint8
    (28, 28) each, light on black) side by side, each scaled to the same height, 40 to 199
    pixels, their tops and bottoms touching the image's edges where they are the tallest, with
    gaps of 0.1-0.4 of the height between them and at both ends, on paper as :func:`tight_crop`
    draws it. Returns the BGR uint8 image and each digit's box, left to right."""
    height = int(rng.integers(40, 200))
    gap = int(round(rng.uniform(0.1, 0.4) * height))
    inks = []
    for digit in digits:
        ink = _ink_of(digit)
        scale = height / ink.shape[0]
        size = (max(1, round(ink.shape[1] * scale)), height)
        inks.append(np.clip(cv2.resize(ink, size, interpolation=cv2.INTER_CUBIC) / 255.0, 0, 1))
    width = gap * (len(inks) + 1) + sum(ink.shape[1] for ink in inks)
    canvas = np.zeros((height, width), np.float32)
    boxes, x = [], gap
    for ink in inks:
        canvas[:, x : x + ink.shape[1]] = ink
        boxes.append((x, 0, ink.shape[1], height))
        x += ink.shape[1] + gap
    return _on_plain_paper(canvas, rng), boxes


def narrow_pairs(labels: np.ndarray, rng: np.random.Generator, pairs: int) -> tuple[int, ...]:
    """Indices into ``labels`` for ``pairs`` pairs of a "1" and a "1", "4", "7" or "9", either way
    round: touching, such a pair is often no wider than one wide digit."""
    ones, narrow = np.flatnonzero(labels == 1), np.flatnonzero(np.isin(labels, [1, 4, 7, 9]))
    chosen: list[int] = []
    for _ in range(pairs):
        pair = [int(rng.choice(ones)), int(rng.choice(narrow))]
        chosen += pair if rng.random() < 0.5 else pair[::-1]
    return tuple(chosen)


def _ink_of(digit: np.ndarray) -> np.ndarray:
    """The MNIST ``digit``'s ink (above 60 of 255), cropped to its box, float32 in [0, 255]."""
    ys, xs = np.nonzero(digit > 60)
    return digit[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1].astype(np.float32)


def _on_plain_paper(canvas: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``canvas`` (float32 (h, w), ink 0..1) as dark ink on paper of random brightness (190-250)
    with a little sensor noise (sigma 2): a BGR uint8 photo."""
    paper = rng.uniform(190, 250)
    gray = paper * (1.0 - 0.85 * canvas) + rng.normal(0, 2.0, canvas.shape)
    return cv2.cvtColor(np.clip(gray + 0.5, 0, 255).astype(np.uint8), cv2.COLOR_GRAY2BGR)


def iou(a: Box, b: Box) -> float:
    """Intersection over union of two ``(x, y, w, h)`` boxes."""
    iw = min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0])
    ih = min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1])
    if iw <= 0 or ih <= 0:
        return 0.0
    inter = iw * ih
    return inter / float(a[2] * a[3] + b[2] * b[3] - inter)


@dataclass
class MatchCounts:
    """How detections compare with the ground truth, summed over frames.

    ``matched``: truths with a detection (IoU >= the threshold, one detection per truth);
    ``correct``: matched ones read as the right digit; ``false_positives``: detections matching
    no truth.
    """

    truths: int = 0
    detections: int = 0
    matched: int = 0
    correct: int = 0
    false_positives: int = 0

    @property
    def detection_rate(self) -> float:
        return self.matched / self.truths if self.truths else 1.0

    @property
    def reading_accuracy(self) -> float:
        return self.correct / self.matched if self.matched else 1.0

    def add(self, truth: list[TruthDigit], detections, min_iou: float = 0.5) -> MatchCounts:
        """Count one frame. ``detections``: objects with ``box`` and ``digit`` (or dicts with
        those keys). Pairs are matched greedily from the highest IoU down."""
        found = [
            (tuple(d["box"]), d["digit"]) if isinstance(d, dict) else (tuple(d.box), d.digit)
            for d in detections
        ]
        matches = match_boxes([t.box for t in truth], [box for box, _ in found], min_iou)
        self.correct += sum(found[j][1] == truth[i].digit for i, j in matches)
        self.truths += len(truth)
        self.detections += len(found)
        self.matched += len(matches)
        self.false_positives += len(found) - len(matches)
        return self


def match_boxes(truth_boxes: list[Box], found_boxes: list[Box], min_iou: float = 0.5):
    """Pairs ``(i, j)`` of a true box and a found one, matched greedily from the highest IoU
    down, each box at most once, none below ``min_iou``."""
    pairs = sorted(
        ((iou(t, f), i, j) for i, t in enumerate(truth_boxes) for j, f in enumerate(found_boxes)),
        reverse=True,
    )
    used_t, used_f, matches = set(), set(), []
    for overlap, i, j in pairs:
        if overlap < min_iou:
            break
        if i in used_t or j in used_f:
            continue
        used_t.add(i)
        used_f.add(j)
        matches.append((i, j))
    return matches


def write_video(path, frames, fps: float = 15.0) -> Path:
    """Write BGR uint8 frames (all the same size) to ``path`` as MJPG (an .avi plays everywhere)."""
    path = Path(path)
    frames = list(frames)
    if not frames:
        raise ValueError("no frames to write")
    h, w = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (w, h))
    if not writer.isOpened():
        raise OSError(f"{path}: cannot write a video here (MJPG .avi)")
    try:
        for frame in frames:
            writer.write(frame)
    finally:
        writer.release()
    return path


def truth_path_for(video) -> Path:
    """Where the ground truth of ``video`` goes: ``demo.avi`` -> ``demo.truth.json``."""
    video = Path(video)
    return video.with_name(video.stem + ".truth.json")


def write_truth(path, truths: list[list[TruthDigit]], video: str = "", seed: int = 0) -> Path:
    """Write the ground truth of a rendered video as JSON: ``{"format": "scratchcnn-truth",
    "video", "seed", "frames": [{"frame": i, "digits": [{"digit", "box"}]}]}``, boxes as
    ``[x, y, width, height]`` in frame pixels (the digits' ink)."""
    import json

    path = Path(path)
    frames = [
        {
            "frame": i,
            "digits": [{"digit": int(t.digit), "box": [int(v) for v in t.box]} for t in truth],
        }
        for i, truth in enumerate(truths)
    ]
    document = {"format": "scratchcnn-truth", "video": video, "seed": seed, "frames": frames}
    path.write_text(json.dumps(document) + "\n")
    return path


def main(argv=None) -> int:
    """``python -m scratchcnn.synthetic OUT.avi``: a demo video of rendered frames."""
    p = argparse.ArgumentParser(
        prog="python -m scratchcnn.synthetic",
        description="Write a video of MNIST test digits on unevenly lit paper (MJPG .avi).",
    )
    p.add_argument("output", type=Path, help="video file to write, e.g. demo.avi")
    p.add_argument(
        "--data-dir",
        type=Path,
        help="folder with the MNIST test files (default: $SCRATCHCNN_DATA/mnist, else the cache)",
    )
    p.add_argument("--no-download", action="store_true", help="never download missing files")
    p.add_argument("--download", action="store_true", help=argparse.SUPPRESS)  # the default now
    p.add_argument("--frames", type=int, default=60)
    p.add_argument("--digits", type=int, default=6, help="digits per frame (default 6)")
    p.add_argument("--fps", type=float, default=5.0)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    from scratchcnn.cli import run_cli

    def run() -> int:
        renderer = FrameRenderer(*mnist_test_digits(args.data_dir, not args.no_download))
        rng = np.random.default_rng(args.seed)
        rendered = [renderer.render(rng, args.digits) for _ in range(args.frames)]
        write_video(args.output, [frame for frame, _ in rendered], args.fps)
        truth_path = truth_path_for(args.output)
        write_truth(truth_path, [truth for _, truth in rendered], args.output.name, args.seed)
        print(f"wrote {args.output}: {args.frames} frames of {args.digits} digits")
        print(f"wrote {truth_path}: the ground truth (python -m scratchcnn.score {truth_path} ...)")
        return 0

    return run_cli("python -m scratchcnn.synthetic", run)


if __name__ == "__main__":
    sys.exit(main())
