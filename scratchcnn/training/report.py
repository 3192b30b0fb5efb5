"""Test-set reports for a trained classifier: accuracy, per-class metrics, confusion matrix, plots."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from sklearn.metrics import classification_report, confusion_matrix


def test_report(y_true: np.ndarray, y_pred: np.ndarray) -> dict:
    """Accuracy, per-class precision/recall/F1 and the confusion matrix, as JSON-able values."""
    labels = list(range(10))
    per_class = classification_report(
        y_true, y_pred, labels=labels, output_dict=True, zero_division=0
    )
    return {
        "test_accuracy": float(np.mean(y_true == y_pred)),
        "test_errors": int(np.sum(y_true != y_pred)),
        "per_class": {str(k): per_class[str(k)] for k in labels},
        "confusion_matrix": confusion_matrix(y_true, y_pred, labels=labels).tolist(),
    }


def format_report(y_true: np.ndarray, y_pred: np.ndarray) -> str:
    """The human-readable form: scikit-learn's per-class table and the confusion matrix."""
    matrix = confusion_matrix(y_true, y_pred, labels=list(range(10)))
    header = "true\\pred " + " ".join(f"{k:>5d}" for k in range(10))
    rows = [f"{k:>9d} " + " ".join(f"{v:>5d}" for v in row) for k, row in enumerate(matrix)]
    accuracy = np.mean(y_true == y_pred)
    return "\n".join(
        [
            f"test accuracy: {accuracy:.2%} ({int(np.sum(y_true != y_pred))} errors "
            f"in {len(y_true)} images)",
            "",
            classification_report(y_true, y_pred, digits=4, zero_division=0),
            "confusion matrix (rows: true digit, columns: predicted):",
            header,
            *rows,
        ]
    )


def save_plots(directory, history: list[dict], x_test, y_test, y_pred) -> list[Path]:
    """Write learning curves, the confusion matrix and a grid of misclassified test digits as
    PNG files in ``directory``; needs matplotlib (``pip install "scratchcnn[plots]"``)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as err:
        raise ImportError(
            'plots need matplotlib: pip install "scratchcnn[plots]" (or drop --report-dir)'
        ) from err
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    written = []

    epochs = [h["epoch"] for h in history]
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 4))
    ax_loss.plot(epochs, [h["train_loss"] for h in history], marker="o")
    ax_loss.set(xlabel="epoch", ylabel="training loss", title="Training loss")
    ax_acc.plot(epochs, [100 * h["train_accuracy"] for h in history], marker="o", label="train")
    if any(h["val_accuracy"] is not None for h in history):
        ax_acc.plot(
            epochs, [100 * (h["val_accuracy"] or 0) for h in history], marker="o", label="val"
        )
    ax_acc.set(xlabel="epoch", ylabel="accuracy (%)", title="Accuracy")
    ax_acc.legend()
    fig.tight_layout()
    written.append(directory / "learning_curves.png")
    fig.savefig(written[-1], dpi=100)
    plt.close(fig)

    matrix = confusion_matrix(y_test, y_pred, labels=list(range(10)))
    fig, ax = plt.subplots(figsize=(6, 5.5))
    ax.imshow(np.log1p(matrix), cmap="Blues")
    for (i, j), v in np.ndenumerate(matrix):
        ax.text(j, i, str(v), ha="center", va="center", fontsize=7,
                color="white" if i == j else "black")  # fmt: skip
    ax.set(xticks=range(10), yticks=range(10), xlabel="predicted", ylabel="true",
           title="Confusion matrix (test set)")  # fmt: skip
    fig.tight_layout()
    written.append(directory / "confusion_matrix.png")
    fig.savefig(written[-1], dpi=100)
    plt.close(fig)

    wrong = np.flatnonzero(y_test != y_pred)[:64]
    cols = 8
    rows = max(1, -(-len(wrong) // cols))
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 1.2, rows * 1.4), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, i in zip(axes.flat, wrong, strict=False):
        ax.imshow(np.asarray(x_test[i]).reshape(28, 28), cmap="gray_r")
        ax.set_title(f"{y_test[i]}→{y_pred[i]}", fontsize=8, color="crimson")
    fig.suptitle("Misclassified test digits (true→predicted)")
    fig.tight_layout()
    written.append(directory / "misclassified.png")
    fig.savefig(written[-1], dpi=100)
    plt.close(fig)
    return written
