import cv2
import numpy as np
import pytest

from scratchcnn.training.augment import random_affine, warp_affine


def test_identity_leaves_images_unchanged(rng):
    x = rng.random((5, 1, 28, 28), dtype=np.float32)
    y = warp_affine(x, np.zeros((5, 2)), np.zeros(5), np.ones(5))
    np.testing.assert_array_equal(y, x)


def test_each_image_matches_opencv_warp_affine(rng):
    x = rng.random((6, 2, 17, 23), dtype=np.float32)
    shift = rng.uniform(-3, 3, size=(6, 2))
    degrees = rng.uniform(-30, 30, size=6)
    scale = rng.uniform(0.8, 1.2, size=6)
    y = warp_affine(x, shift, degrees, scale)
    assert y.shape == x.shape and y.dtype == np.float32
    center = ((23 - 1) / 2, (17 - 1) / 2)
    for i in range(6):
        m = cv2.getRotationMatrix2D(center, -degrees[i], scale[i])
        m[0, 2] += shift[i, 1]
        m[1, 2] += shift[i, 0]
        for ch in range(2):
            expected = cv2.warpAffine(x[i, ch], m, (23, 17), flags=cv2.INTER_LINEAR)
            np.testing.assert_allclose(y[i, ch], expected, atol=2e-3)  # cv2 rounds weights


def test_integer_shift_moves_pixels_and_fills_zeros():
    x = np.zeros((1, 1, 8, 8), dtype=np.float32)
    x[0, 0, 2, 3] = 1.0
    y = warp_affine(x, np.array([[2.0, -1.0]]), np.zeros(1), np.ones(1))
    assert y[0, 0, 4, 2] == pytest.approx(1.0) and y.sum() == pytest.approx(1.0)
    far = warp_affine(x, np.array([[40.0, 0.0]]), np.zeros(1), np.ones(1))
    assert not far.any()


def test_random_affine_is_reproducible_and_bounded(rng):
    x = rng.random((32, 1, 28, 28), dtype=np.float32)
    a = random_affine(x, np.random.default_rng(3))
    b = random_affine(x, np.random.default_rng(3))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, x)
    assert a.min() >= 0 and a.max() <= 1 + 1e-6
