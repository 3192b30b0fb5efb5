import numpy as np
import pytest

import scratchcnn as sc


def test_softmax_rows_sum_to_one_and_keep_dtype(rng):
    logits = rng.standard_normal((6, 10)).astype(np.float32)
    p = sc.softmax(logits)
    assert p.dtype == np.float32
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-6)


@pytest.mark.parametrize("scale", [1e4, -1e4])
def test_cross_entropy_finite_for_huge_logits(scale):
    logits = np.array([[scale, 0.0, -scale], [0.0, scale, 1.0]], dtype=np.float32)
    labels = np.array([2, 1])
    loss = sc.SoftmaxCrossEntropy()
    value = loss.forward(logits, labels)
    grad = loss.backward()
    assert np.isfinite(value) and np.all(np.isfinite(grad))
    lse = np.logaddexp.reduce(logits.astype(np.float64), axis=1)  # exact reference
    expected = np.mean(lse - logits[np.arange(2), labels])
    assert value == pytest.approx(expected, rel=1e-6)


def test_cross_entropy_matches_definition(rng):
    logits = rng.standard_normal((4, 3))
    labels = np.array([0, 2, 1, 2])
    p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    expected = -np.log(p[np.arange(4), labels]).mean()
    assert sc.SoftmaxCrossEntropy().forward(logits, labels) == pytest.approx(expected, rel=1e-12)


def test_cross_entropy_rejects_bad_labels():
    loss = sc.SoftmaxCrossEntropy()
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 2\]"):
        loss.forward(np.zeros((2, 3)), np.array([0, 3]))
    with pytest.raises(ValueError, match="integers"):
        loss.forward(np.zeros((2, 3)), np.array([0.0, 1.0]))


def test_outlier_exposure_loss_is_cross_entropy_without_outliers(rng):
    logits = rng.standard_normal((5, 10))
    labels = np.array([0, 3, 9, 3, 1])
    plain, exposed = sc.SoftmaxCrossEntropy(), sc.OutlierExposureLoss(weight=0.7)
    assert exposed.forward(logits, labels) == pytest.approx(plain.forward(logits, labels))
    np.testing.assert_allclose(exposed.backward(), plain.backward(), rtol=1e-12)


def test_outlier_exposure_loss_matches_definition_and_its_gradient(rng):
    """Labelled rows: -log p[label]; OUTLIER rows: weight * mean over classes of -log p; both
    summed and divided by the labelled count. The gradient against central differences."""
    logits = rng.standard_normal((6, 4))
    labels = np.array([2, sc.OUTLIER, 0, sc.OUTLIER, sc.OUTLIER, 3])
    loss = sc.OutlierExposureLoss(weight=0.5)
    logp = sc.log_softmax(logits)
    expected = (-logp[[0, 2, 5], [2, 0, 3]].sum() - 0.5 * logp[[1, 3, 4]].mean(axis=1).sum()) / 3
    assert loss.forward(logits, labels) == pytest.approx(expected, rel=1e-12)
    grad = loss.backward()
    numerical = np.zeros_like(logits)
    for index in np.ndindex(logits.shape):
        up, down = logits.copy(), logits.copy()
        up[index] += 1e-6
        down[index] -= 1e-6
        numerical[index] = (loss.forward(up, labels) - loss.forward(down, labels)) / 2e-6
    np.testing.assert_allclose(grad, numerical, atol=1e-8)


def test_outlier_exposure_pulls_outliers_towards_no_class():
    """An outlier's gradient vanishes at equal logits (the uniform distribution) and, from a
    sure answer, points to lowering it."""
    loss = sc.OutlierExposureLoss()
    loss.forward(np.array([[1.0, 1.0, 1.0], [5.0, 0.0, 0.0]]), np.array([sc.OUTLIER] * 2))
    grad = loss.backward()
    np.testing.assert_allclose(grad[0], 0.0, atol=1e-12)
    assert grad[1, 0] > 0 > grad[1, 1]
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 2\]"):
        loss.forward(np.zeros((2, 3)), np.array([sc.OUTLIER, 3]))
