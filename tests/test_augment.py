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


def test_shear_and_elastic_off_draw_the_same_numbers_as_before(rng):
    """With max_shear=0 and elastic=0 nothing more is drawn: runs and checkpoints made before the
    two existed continue bit for bit."""
    x = rng.random((8, 1, 28, 28), dtype=np.float32)
    a = random_affine(x, np.random.default_rng(5))
    b = random_affine(x, np.random.default_rng(5), max_shear=0.0, elastic=0.0)
    np.testing.assert_array_equal(a, b)


def test_shear_slants_a_vertical_bar():
    x = np.zeros((1, 1, 28, 28), np.float32)
    x[0, 0, 4:24, 13:15] = 1.0
    y = warp_affine(x, np.zeros((1, 2)), np.zeros(1), np.ones(1), shear=np.array([0.4]))
    top = np.argmax(y[0, 0, 6])
    bottom = np.argmax(y[0, 0, 21])
    assert abs(int(bottom) - int(top)) >= 4  # 15 rows apart at slope 0.4: about 6 columns


def test_elastic_fields_are_smooth_bounded_and_reproducible():
    from scratchcnn.training.augment import smooth_field

    coarse = np.random.default_rng(0).uniform(-1.5, 1.5, size=(3, 2, 4, 4))
    field = smooth_field(coarse, 28, 28)
    assert field.shape == (3, 2, 28, 28) and field.dtype == np.float32
    assert np.abs(field).max() <= 1.5 + 1e-6
    np.testing.assert_allclose(field[:, :, 0, 0], coarse[:, :, 0, 0], atol=1e-6)  # corners
    assert np.abs(np.diff(field, axis=3)).max() < 1.0  # neighbours move alike
    x = np.random.default_rng(1).random((4, 1, 28, 28), dtype=np.float32)
    a = random_affine(x, np.random.default_rng(2), elastic=1.5)
    b = random_affine(x, np.random.default_rng(2), elastic=1.5)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, random_affine(x, np.random.default_rng(2)))


def test_stroke_width_thickens_some_images_and_thins_others():
    from scratchcnn.training.augment import vary_strokes

    x = np.zeros((64, 1, 28, 28), np.float32)
    x[:, 0, 6:22, 12:15] = 1.0  # a 3-pixel bar
    assert vary_strokes(x, np.random.default_rng(0), 0.0) is x
    y = vary_strokes(x, np.random.default_rng(0), 1.0)
    ink = y.sum(axis=(1, 2, 3))
    thicker, thinner = ink > x[0].sum() + 1, ink < x[0].sum() - 1
    assert thicker.sum() >= 16 and thinner.sum() >= 16 and (thicker | thinner).all()
    assert y.max() <= 1.0 and np.allclose(y.max(axis=(1, 2, 3)), 1.0)  # as dark as before


def test_train_config_checks_the_new_augmentation_ranges():
    from scratchcnn.training.trainer import TrainConfig

    for field, value in (("max_shear", -0.1), ("elastic", 9.0), ("stroke_width", 1.5)):
        with pytest.raises(ValueError, match=field.replace("_", "-")):
            TrainConfig(**{field: value}).validate()


def two_shapes(n=8):
    """n MNIST-like images: even ones a vertical bar (a "1"), odd ones a ring (a "0")."""
    x = np.zeros((n, 1, 28, 28), np.float32)
    for i in range(n):
        if i % 2:
            cv2.ellipse(x[i, 0], (14, 14), (7, 10), 0, 0, 360, 1.0, 2)
        else:
            x[i, 0, 4:24, 13:16] = 1.0
    return x


def test_touching_pairs_are_two_images_touching_fitted_and_centered_as_mnist():
    from scratchcnn.training.touching import touching_pairs

    x = two_shapes()
    pairs = touching_pairs(x, np.random.default_rng(0), 64)
    assert pairs.shape == (64, 1, 28, 28) and pairs.dtype == np.float32
    np.testing.assert_array_equal(pairs, touching_pairs(x, np.random.default_rng(0), 64))
    for image in pairs[:, 0]:
        ink = image > 0.5
        rows, cols = np.flatnonzero(ink.any(axis=1)), np.flatnonzero(ink.any(axis=0))
        width, height = cols[-1] - cols[0] + 1, rows[-1] - rows[0] + 1
        assert 18 <= max(width, height) <= 22  # the longer side fitted into 20 pixels
        mass = image.sum()
        center = (
            image.sum(axis=0) @ np.arange(28) / mass,
            image.sum(axis=1) @ np.arange(28) / mass,
        )
        np.testing.assert_allclose(center, (13.5, 13.5), atol=0.6)
        # touching: no column of paper between the two inks, at most a faint one (a 1-px gap)
        inside = image[:, cols[0] : cols[-1] + 1].max(axis=0)
        assert (inside < 0.1).sum() <= 1
    assert touching_pairs(x, np.random.default_rng(0), 0).shape == (0, 1, 28, 28)


def test_train_config_adds_touching_pairs_for_digits_only():
    from scratchcnn.training.trainer import TOUCHING_PAIRS, TrainConfig

    assert TrainConfig().touching_pairs == TOUCHING_PAIRS > 0
    assert TrainConfig(dataset="fashion-mnist").touching_pairs == 0
    assert TrainConfig(touching_pairs=0).touching_pairs == 0
    with pytest.raises(ValueError, match="--touching-pairs"):
        TrainConfig(touching_pairs=-1).validate()


def test_an_epoch_counts_only_labelled_images(rng):
    """Outliers are trained on, but the epoch's accuracy and loss are over the labelled
    images."""
    import scratchcnn as sc
    from scratchcnn.nn.model import train_epoch

    model = sc.build_model("lenet5", rng=rng)
    x = rng.random((12, 1, 28, 28), dtype=np.float32)
    y = np.array([1, 2, 3, 4, 5, 6, 7, 8, sc.OUTLIER, sc.OUTLIER, sc.OUTLIER, sc.OUTLIER])
    before = [p.data.copy() for p in model.parameters()]
    stats = train_epoch(
        model, sc.SGD(model.parameters(), lr=0.1), [(x, y)], sc.OutlierExposureLoss()
    )
    assert stats.seen == 8 and stats.batch_images == 8 and 0 <= stats.correct <= 8
    assert any(
        not np.array_equal(a, p.data) for a, p in zip(before, model.parameters(), strict=True)
    )
