"""Batched random augmentation for NCHW image batches: affine maps (shift, rotation, scale,
shear), elastic distortion, and thicker or thinner strokes.

One vectorized pass for the whole batch: each image gets its own random map, and every output
pixel is sampled bilinearly from the source image (zeros outside it, MNIST's background). No
Python loop over images or pixels.

Shear, elastic distortion and stroke width make the writing styles MNIST has few of (slanted
and wobbly digits, a felt pen's strokes, a fine pen's); they are off unless asked for.
"""

from __future__ import annotations

import numpy as np


def random_affine(
    x: np.ndarray,
    rng: np.random.Generator,
    max_shift: float = 2.0,
    max_rotation: float = 10.0,
    scale_range: tuple[float, float] = (0.9, 1.1),
    max_shear: float = 0.0,
    elastic: float = 0.0,
) -> np.ndarray:
    """Return a randomly shifted, rotated, scaled (and sheared, and elastically distorted) copy
    of ``x`` (N, C, H, W), same dtype.

    ``max_shift`` is in pixels, ``max_rotation`` in degrees; each image draws its shift, angle and
    scale uniformly, about the image center. ``max_shear`` (a slope: 0.3 slants a vertical
    stroke by about 17 degrees) and ``elastic`` (the largest displacement, in pixels, of a smooth
    random field drawn on a 4x4 grid and interpolated over the image) are drawn only when above
    0, so the default draws the same random numbers as before they existed. Channels of one
    image share one transform.
    """
    n = x.shape[0]
    shift = rng.uniform(-max_shift, max_shift, size=(n, 2))
    degrees = rng.uniform(-max_rotation, max_rotation, size=n)
    scale = rng.uniform(scale_range[0], scale_range[1], size=n)
    shear = rng.uniform(-max_shear, max_shear, size=n) if max_shear > 0 else None
    displacement = None
    if elastic > 0:
        coarse = rng.uniform(-elastic, elastic, size=(n, 2, 4, 4))
        displacement = smooth_field(coarse, x.shape[2], x.shape[3])
    return warp_affine(x, shift, degrees, scale, shear, displacement)


def smooth_field(coarse: np.ndarray, h: int, w: int) -> np.ndarray:
    """(N, 2, h, w) float32 displacement from (N, 2, gh, gw) grid values, interpolated linearly
    between the grid points (which span the image corner to corner): one matrix product."""
    gh, gw = coarse.shape[2:]
    rows = _interpolation_matrix(gh, h)  # (h, gh)
    cols = _interpolation_matrix(gw, w)  # (w, gw)
    return np.einsum("hi,ncij,wj->nchw", rows, coarse, cols).astype(np.float32)


def _interpolation_matrix(points: int, size: int) -> np.ndarray:
    position = np.linspace(0, points - 1, size)
    low = np.minimum(np.floor(position).astype(int), points - 2)
    frac = position - low
    matrix = np.zeros((size, points))
    matrix[np.arange(size), low] = 1 - frac
    matrix[np.arange(size), low + 1] = frac
    return matrix


def vary_strokes(x: np.ndarray, rng: np.random.Generator, probability: float) -> np.ndarray:
    """Thicker strokes (a grayscale dilation by a 3x3 cross) for ``probability / 2`` of the
    images, thinner ones (half-way to an erosion by the same cross, so thin strokes fade rather
    than vanish, brightened back to the image's peak) for another ``probability / 2``; the rest
    unchanged. Batched; same dtype."""
    if probability <= 0 or len(x) == 0:
        return x
    choice = rng.random(len(x))
    padded = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    shifted = [padded[:, :, 1:-1, 1:-1], padded[:, :, :-2, 1:-1], padded[:, :, 2:, 1:-1]]
    shifted += [padded[:, :, 1:-1, :-2], padded[:, :, 1:-1, 2:]]
    thick = np.maximum.reduce(shifted)
    thin = 0.5 * (x + np.minimum.reduce(shifted))
    peak = x.max(axis=(1, 2, 3), keepdims=True) / np.maximum(
        thin.max(axis=(1, 2, 3), keepdims=True), 1e-6
    )
    thin = np.minimum(thin * peak, x.max(axis=(1, 2, 3), keepdims=True))  # as dark as before
    pick = choice[:, None, None, None]
    out = np.where(pick < probability / 2, thick, np.where(pick < probability, thin, x))
    return out.astype(x.dtype, copy=False)


def warp_affine(
    x: np.ndarray,
    shift: np.ndarray,
    degrees: np.ndarray,
    scale: np.ndarray,
    shear: np.ndarray | None = None,
    displacement: np.ndarray | None = None,
):
    """Warp each image of ``x`` (N, C, H, W) by its own affine map, bilinearly, zeros outside.

    Image i is scaled by ``scale[i]`` and rotated clockwise by ``degrees[i]`` about its center,
    then moved by ``shift[i]`` = (dy, dx) pixels: the same map as OpenCV's ``warpAffine`` with
    ``getRotationMatrix2D(center, -degrees, scale)`` plus the shift. ``shear[i]`` (optional)
    moves each source column sideways by that slope times its row's distance from the center;
    ``displacement`` (optional, (N, 2, H, W) as (dy, dx)) is added to where each output pixel
    reads its source.
    """
    n, c, h, w = x.shape
    if n == 0:
        return x.copy()
    angle = np.deg2rad(np.asarray(degrees, dtype=np.float64))
    shift = np.asarray(shift, dtype=np.float64).reshape(n, 2)
    scale = np.asarray(scale, dtype=np.float64)
    # Inverse map: for each output pixel, where to read in the source (rotate by -angle, 1/scale).
    cy, cx = (h - 1) / 2.0, (w - 1) / 2.0
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    ys, xs = ys.reshape(1, -1) - cy, xs.reshape(1, -1) - cx
    cos = np.cos(angle).astype(np.float32)[:, None]
    sin = np.sin(angle).astype(np.float32)[:, None]
    inv = (1.0 / scale).astype(np.float32)[:, None]
    dy, dx = ys - shift[:, 0:1].astype(np.float32), xs - shift[:, 1:2].astype(np.float32)
    src_y = (cos * dy - sin * dx) * inv + cy  # (N, H*W)
    src_x = (sin * dy + cos * dx) * inv + cx
    if shear is not None:
        src_x = src_x + np.asarray(shear, dtype=np.float32)[:, None] * (src_y - cy)
    if displacement is not None:
        field = np.asarray(displacement, dtype=np.float32).reshape(n, 2, h * w)
        src_y = src_y + field[:, 0]
        src_x = src_x + field[:, 1]

    # Sample from images padded with a two-pixel zero border; clipping coordinates into the border
    # makes every read outside the image a read of zero, with no masks.
    y0f, x0f = np.floor(src_y), np.floor(src_x)
    fy, fx = (src_y - y0f).astype(x.dtype), (src_x - x0f).astype(x.dtype)
    hp, wp = h + 4, w + 4
    y0 = np.clip(y0f, -2, h).astype(np.intp) + 2
    x0 = np.clip(x0f, -2, w).astype(np.intp) + 2
    y1, x1 = y0 + 1, x0 + 1
    padded = np.zeros((n, c, hp, wp), dtype=x.dtype)
    padded[:, :, 2:-2, 2:-2] = x
    base = (np.arange(n) * (c * hp * wp))[:, None]
    out = np.empty((n, c, h * w), dtype=x.dtype)
    flat = padded.reshape(-1)
    for ch in range(c):  # channels, not pixels: 1 for MNIST
        off = base + ch * hp * wp
        top = flat[off + y0 * wp + x0] * (1 - fx) + flat[off + y0 * wp + x1] * fx
        bottom = flat[off + y1 * wp + x0] * (1 - fx) + flat[off + y1 * wp + x1] * fx
        out[:, ch] = top * (1 - fy) + bottom * fy
    return out.reshape(n, c, h, w)
