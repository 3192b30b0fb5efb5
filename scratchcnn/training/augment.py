"""Batched random affine augmentation (shift, rotation, scale) for NCHW image batches.

One vectorized pass for the whole batch: each image gets its own random affine map, and every
output pixel is sampled bilinearly from the source image (zeros outside it, MNIST's background).
No Python loop over images or pixels.
"""

from __future__ import annotations

import numpy as np


def random_affine(
    x: np.ndarray,
    rng: np.random.Generator,
    max_shift: float = 2.0,
    max_rotation: float = 10.0,
    scale_range: tuple[float, float] = (0.9, 1.1),
) -> np.ndarray:
    """Return a randomly shifted, rotated and scaled copy of ``x`` (N, C, H, W), same dtype.

    ``max_shift`` is in pixels, ``max_rotation`` in degrees; each image draws its shift, angle and
    scale uniformly, about the image center. Channels of one image share one transform.
    """
    n = x.shape[0]
    shift = rng.uniform(-max_shift, max_shift, size=(n, 2))
    degrees = rng.uniform(-max_rotation, max_rotation, size=n)
    scale = rng.uniform(scale_range[0], scale_range[1], size=n)
    return warp_affine(x, shift, degrees, scale)


def warp_affine(x: np.ndarray, shift: np.ndarray, degrees: np.ndarray, scale: np.ndarray):
    """Warp each image of ``x`` (N, C, H, W) by its own affine map, bilinearly, zeros outside.

    Image i is scaled by ``scale[i]`` and rotated clockwise by ``degrees[i]`` about its center,
    then moved by ``shift[i]`` = (dy, dx) pixels: the same map as OpenCV's ``warpAffine`` with
    ``getRotationMatrix2D(center, -degrees, scale)`` plus the shift.
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
