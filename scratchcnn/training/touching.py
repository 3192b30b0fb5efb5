"""Outlier exposure for the digit reader: two digits of a batch drawn touching, side by side,
made into one MNIST-style 28x28 image, which the network learns to read as no digit in
particular (trained towards the uniform distribution, Hendrycks et al. 2019).

The reader cuts candidates that may hold two touching digits and keeps a cut when the network
reads the parts more surely than the whole (:mod:`scratchcnn.reader.segment`). A network that
has only seen single digits reads the whole of two digits as one digit just as surely, so the
whole often wins; shown such pairs as "no digit", it doubts them.

Batched: each pair is placed, then fitted and centered by two matrix products per image (a
scale and a shift act on each axis alone); no Python loop over images.
"""

from __future__ import annotations

import numpy as np

from scratchcnn.reader.normalize import MNIST_BOX, MNIST_CENTER

INK = 0.1  # a column or row holds ink where some pixel is above this (images in [0, 1])
SUBPIXELS = (-1 / 3, 0.0, 1 / 3)  # where in an output pixel its samples are taken, per axis


def touching_pairs(x: np.ndarray, rng: np.random.Generator, count: int) -> np.ndarray:
    """``count`` images (count, 1, H, W) of ``x``'s dtype, each two random images of ``x`` (N, 1,
    H, W), light digits on black in [0, 1], side by side with their inks touching (overlapping by
    -1 to 3 columns, a third of the narrower ink's width at most: from a gap of one pixel to a
    small overlap), then fitted and centered as MNIST was (longer side 20 pixels, center of mass
    in the middle).

    The pair's ink is the pixelwise maximum of the two. Fitted, a pair shrinks up to about
    twice, and a narrow one ("11") grows: :func:`fit_and_center` averages several samples per
    pixel, so strokes keep their weight and their sharpness either way (a pair blurrier than a
    digit would teach the network that blur means "no digit").
    """
    n, c, h, w = x.shape
    if count <= 0 or n < 2:
        return np.zeros((0, c, h, w), dtype=x.dtype)
    first = rng.integers(n, size=count)
    second = (first + rng.integers(1, n, size=count)) % n  # another image of the batch
    a, b = x[first, 0], x[second, 0]
    columns = np.arange(w)
    a_cols, b_cols = a.max(axis=1) > INK, b.max(axis=1) > INK  # (count, w)
    a_right = np.where(a_cols, columns, -1).max(axis=1)
    b_left = np.where(b_cols, columns, w).min(axis=1)
    # Overlap by a third of the narrower ink at most: two "1"s drawn on top of each other would
    # be one thick "1", which must stay a digit.
    narrower = np.minimum(a_cols.sum(axis=1), b_cols.sum(axis=1))
    overlap = np.minimum(rng.integers(-1, 4, size=count), narrower // 3)
    # b's column j lands on the canvas at j + offset: its first ink column just past a's last.
    offset = np.clip(a_right + 1 - b_left - overlap, 0, w)
    canvas = np.zeros((count, h, 2 * w), dtype=x.dtype)
    canvas[:, :, :w] = a
    source = np.arange(2 * w)[None, :] - offset[:, None]  # (count, 2w): b's column, if any
    inside = (source >= 0) & (source < w)
    rows = np.arange(count)[:, None, None]
    placed = b[rows, np.arange(h)[None, :, None], np.clip(source, 0, w - 1)[:, None, :]]
    np.maximum(canvas, np.where(inside[:, None, :], placed, 0), out=canvas)
    return fit_and_center(canvas, h, w)[:, None].astype(x.dtype, copy=False)


def fit_and_center(images: np.ndarray, h: int, w: int) -> np.ndarray:
    """(N, h, w) float32 of (N, sh, sw) ink images: each scaled so its ink's bounding box has a
    longer side of ``MNIST_BOX`` pixels, moved so its center of mass is at ``MNIST_CENTER``, and
    brightened so its strongest pixel is 1.

    Each output pixel is the mean of 3x3 bilinear samples (zeros outside) spread over the source
    area it covers: shrinking up to 3 times, no stroke falls between samples (the area averaging
    MNIST's scaling did). A scale and a shift act on each axis alone, so the samples' weights
    are one matrix per axis and image, and the image is ``rows @ ink @ columns.T``.
    """
    n, sh, sw = images.shape
    ink = images > INK
    rows_on, cols_on = ink.any(axis=2), ink.any(axis=1)
    top = np.argmax(rows_on, axis=1)
    bottom = sh - 1 - np.argmax(rows_on[:, ::-1], axis=1)
    left = np.argmax(cols_on, axis=1)
    right = sw - 1 - np.argmax(cols_on[:, ::-1], axis=1)
    size = np.maximum(bottom - top + 1, right - left + 1).astype(np.float32)
    scale = MNIST_BOX / size  # output pixels per source pixel
    mass = images.sum(axis=(1, 2)) + 1e-6
    # (A NaN image stays NaN, its loss too, and training says it diverged: only where it reads
    # is made finite.)
    cy = np.nan_to_num((images.sum(axis=2) * np.arange(sh)).sum(axis=1) / mass)
    cx = np.nan_to_num((images.sum(axis=1) * np.arange(sw)).sum(axis=1) / mass)
    rows = sample_weights(cy, scale, h, sh)  # (N, h, sh)
    columns = sample_weights(cx, scale, w, sw)  # (N, w, sw)
    out = (rows @ images.astype(np.float32) @ columns.transpose(0, 2, 1)).astype(np.float32)
    peak = out.max(axis=(1, 2), keepdims=True)
    return np.minimum(out / np.maximum(peak, 1e-6), 1.0)


def sample_weights(center: np.ndarray, scale: np.ndarray, size: int, source: int) -> np.ndarray:
    """(N, size, source) float32: how much each output pixel of an axis takes from each source
    pixel when the source's ``center[i]`` lands on ``MNIST_CENTER`` and it is scaled by
    ``scale[i]``: the mean of bilinear weights at ``SUBPIXELS`` within the output pixel; source
    positions outside the axis weigh nothing (zeros there)."""
    at = np.arange(size)[None, :, None] + np.asarray(SUBPIXELS)[None, None, :] - MNIST_CENTER
    position = center[:, None, None] + at / scale[:, None, None]  # (N, size, 3)
    low = np.floor(position)
    frac = (position - low)[..., None]
    pixels = np.arange(source)[None, None, None, :]
    weights = (pixels == low[..., None]) * (1 - frac) + (pixels == low[..., None] + 1) * frac
    return weights.mean(axis=2).astype(np.float32)
