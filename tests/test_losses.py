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
