"""Softmax and the fused, numerically stable softmax cross-entropy."""

from __future__ import annotations

import numpy as np


def log_softmax(logits: np.ndarray) -> np.ndarray:
    """log(softmax(logits)) along the last axis via log-sum-exp; finite for any finite logits."""
    shifted = logits - logits.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def softmax(logits: np.ndarray) -> np.ndarray:
    """Class probabilities (N, K) from logits (N, K), rows summing to 1, same dtype."""
    shifted = logits - logits.max(axis=-1, keepdims=True)
    exp = np.exp(shifted)
    exp /= exp.sum(axis=-1, keepdims=True)
    return exp


def _check_labels(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    labels = np.asarray(labels)
    if logits.ndim != 2:
        raise ValueError(f"logits must be (N, K), got shape {logits.shape}")
    if labels.shape != (logits.shape[0],):
        raise ValueError(f"labels must be ({logits.shape[0]},) integers, got shape {labels.shape}")
    if not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"labels must be integers, got dtype {labels.dtype}")
    if labels.size and (labels.min() < 0 or labels.max() >= logits.shape[1]):
        raise ValueError(f"labels must lie in [0, {logits.shape[1] - 1}]")
    return labels


class SoftmaxCrossEntropy:
    """Mean cross-entropy of softmax(logits) against integer labels, fused with its gradient.

    ``forward(logits (N, K), labels (N,))`` returns the mean loss as a float; ``backward()`` returns
    d(loss)/d(logits) = (softmax(logits) - onehot(labels)) / N, computed from the same log-softmax,
    which stays finite for logits as large as +-1e4 (and far beyond).
    """

    def __init__(self):
        self._cache = None

    def forward(self, logits: np.ndarray, labels: np.ndarray) -> float:
        labels = _check_labels(logits, labels)
        logp = log_softmax(logits)
        rows = np.arange(labels.shape[0])
        self._cache = (logp, labels)
        return float(-logp[rows, labels].mean(dtype=np.float64))

    def backward(self) -> np.ndarray:
        if self._cache is None:
            raise RuntimeError("SoftmaxCrossEntropy.backward called before forward")
        logp, labels = self._cache
        self._cache = None
        grad = np.exp(logp)
        grad[np.arange(labels.shape[0]), labels] -= 1
        grad /= labels.shape[0]
        return grad

    __call__ = forward


OUTLIER = -1  # the label of an image that is no class (OutlierExposureLoss)


class OutlierExposureLoss(SoftmaxCrossEntropy):
    """Softmax cross-entropy for labelled images, plus for images labelled ``OUTLIER`` (-1) the
    cross-entropy against the uniform distribution (the mean of -log p over the K classes)
    times ``weight``: the network learns to be unsure of what is no class (outlier exposure,
    Hendrycks et al. 2019). Both sums are divided by the number of labelled images, so a batch
    without outliers gives :class:`SoftmaxCrossEntropy`'s loss and gradient exactly.

    ``backward()`` returns ``(softmax - onehot) / L`` for labelled rows and ``weight * (softmax -
    1/K) / L`` for outliers, L the labelled count.
    """

    def __init__(self, weight: float = 1.0):
        super().__init__()
        self.weight = float(weight)

    def forward(self, logits: np.ndarray, labels: np.ndarray) -> float:
        labels = np.asarray(labels)
        outlier = labels == OUTLIER
        known = _check_labels(logits[~outlier], labels[~outlier])
        logp = log_softmax(logits)
        count = max(len(known), 1)
        self._cache = (logp, labels, outlier, count)
        value = -logp[np.flatnonzero(~outlier), known].sum(dtype=np.float64)
        value -= self.weight * logp[outlier].mean(axis=1).sum(dtype=np.float64)
        return float(value / count)

    def backward(self) -> np.ndarray:
        if self._cache is None:
            raise RuntimeError("OutlierExposureLoss.backward called before forward")
        logp, labels, outlier, count = self._cache
        self._cache = None
        grad = np.exp(logp)
        grad[outlier] -= 1.0 / logp.shape[1]
        grad[outlier] *= self.weight
        grad[np.flatnonzero(~outlier), labels[~outlier]] -= 1
        grad /= count
        return grad

    __call__ = forward
