"""Test-set reports for a trained classifier: accuracy, per-class metrics, confusion matrix, plots."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from sklearn.metrics import classification_report, confusion_matrix

DIGITS = tuple(str(k) for k in range(10))


def _names(class_names) -> tuple[str, ...]:
    return tuple(class_names) if class_names is not None else DIGITS


def test_report(y_true: np.ndarray, y_pred: np.ndarray, class_names=None) -> dict:
    """Accuracy, per-class precision/recall/F1 (keyed by class index) and the confusion matrix,
    as JSON-able values; ``class_names`` (default the digits) are listed beside them."""
    names = _names(class_names)
    labels = list(range(len(names)))
    per_class = classification_report(
        y_true, y_pred, labels=labels, output_dict=True, zero_division=0
    )
    return {
        "test_accuracy": float(np.mean(y_true == y_pred)),
        "test_errors": int(np.sum(y_true != y_pred)),
        "class_names": list(names),
        "per_class": {str(k): per_class[str(k)] for k in labels},
        "confusion_matrix": confusion_matrix(y_true, y_pred, labels=labels).tolist(),
    }


def format_report(y_true: np.ndarray, y_pred: np.ndarray, class_names=None) -> str:
    """The human-readable form: scikit-learn's per-class table (rows named by ``class_names``,
    default the digits) and the confusion matrix (class numbers, with their names listed when
    they are not the digits)."""
    names = _names(class_names)
    labels = list(range(len(names)))
    matrix = confusion_matrix(y_true, y_pred, labels=labels)
    header = "true\\pred " + " ".join(f"{k:>5d}" for k in labels)
    rows = [f"{k:>9d} " + " ".join(f"{v:>5d}" for v in row) for k, row in enumerate(matrix)]
    accuracy = np.mean(y_true == y_pred)
    legend = (
        []
        if names == DIGITS
        else ["classes: " + ", ".join(f"{k} {n}" for k, n in enumerate(names))]
    )
    return "\n".join(
        [
            f"test accuracy: {accuracy:.2%} ({int(np.sum(y_true != y_pred))} errors "
            f"in {len(y_true)} images)",
            "",
            classification_report(
                y_true, y_pred, labels=labels, target_names=list(names), digits=4, zero_division=0
            ),
            "confusion matrix (rows: true class, columns: predicted):",
            *legend,
            header,
            *rows,
        ]
    )


def save_plots(directory, history, x_test, y_test, y_pred, class_names=None) -> list[Path]:
    """Write learning curves (when ``history``, the per-epoch results, is not empty), the
    confusion matrix and a grid of misclassified test images, labelled with ``class_names``
    (default the digits), as PNG files in ``directory``; needs matplotlib
    (``pip install "scratchcnn[plots]"``)."""
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

    names = _names(class_names)
    labels = list(range(len(names)))
    if history:
        written.append(_learning_curves(plt, directory / "learning_curves.png", history))

    matrix = confusion_matrix(y_test, y_pred, labels=labels)
    wide = max(map(len, names)) > 2
    fig, ax = plt.subplots(figsize=(7.5, 6.5) if wide else (6, 5.5))
    ax.imshow(np.log1p(matrix), cmap="Blues")
    for (i, j), v in np.ndenumerate(matrix):
        ax.text(j, i, str(v), ha="center", va="center", fontsize=7,
                color="white" if v > matrix.max() / 2 else "black")  # fmt: skip
    ax.set(xticks=labels, yticks=labels, xlabel="predicted", ylabel="true",
           title="Confusion matrix (test set)")  # fmt: skip
    ax.set_xticklabels(names, rotation=45 if wide else 0, ha="right" if wide else "center")
    ax.set_yticklabels(names)
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
        ax.set_title(f"{names[y_test[i]]}→{names[y_pred[i]]}", fontsize=6 if wide else 8,
                     color="crimson")  # fmt: skip
    fig.suptitle(f"Misclassified test {'images' if wide else 'digits'} (true→predicted)")
    fig.tight_layout()
    written.append(directory / "misclassified.png")
    fig.savefig(written[-1], dpi=100)
    plt.close(fig)
    return written


def _learning_curves(plt, path: Path, history) -> Path:
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
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
