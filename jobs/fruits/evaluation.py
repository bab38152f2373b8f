"""Classifier metrics from a confusion matrix, and its plot. Plain numpy: no Spark here.

The train stage counts ``(true, predicted)`` pairs with Spark (at most classes² rows reach the
driver), so evaluation scales with the number of classes, not of images.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

Array = NDArray[Any]  # numpy arrays, any shape and dtype


def confusion_matrix(counts: Iterable[tuple[int, int, int]], n_classes: int) -> NDArray[np.int64]:
    """``matrix[true, predicted]`` from ``(true index, predicted index, count)`` triples."""
    matrix = np.zeros((n_classes, n_classes), dtype=np.int64)
    for true, predicted, count in counts:
        matrix[int(true), int(predicted)] += int(count)
    return matrix


def _ratio(numerator: Array, denominator: Array) -> Array:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(denominator > 0, numerator / np.maximum(denominator, 1), 0.0)


def summarize(matrix: Array, labels: Sequence[str]) -> dict[str, Any]:
    """Accuracy, macro precision/recall/F1 (over classes with support) and per-class figures."""
    hits = np.diag(matrix).astype(float)
    support = matrix.sum(axis=1)
    predicted = matrix.sum(axis=0)
    precision = _ratio(hits, predicted)
    recall = _ratio(hits, support)
    f1 = _ratio(2 * precision * recall, precision + recall)
    present = support > 0
    total = int(matrix.sum())
    return {
        "n": total,
        "accuracy": float(hits.sum() / total) if total else None,
        "macro_precision": float(precision[present].mean()) if present.any() else None,
        "macro_recall": float(recall[present].mean()) if present.any() else None,
        "macro_f1": float(f1[present].mean()) if present.any() else None,
        "per_class": {
            label: {
                "precision": round(float(precision[i]), 4),
                "recall": round(float(recall[i]), 4),
                "f1": round(float(f1[i]), 4),
                "support": int(support[i]),
            }
            for i, label in enumerate(labels)
        },
    }


def confusions(matrix: Array, labels: Sequence[str]) -> list[dict[str, Any]]:
    """Off-diagonal cells, most frequent first: what was mistaken for what."""
    rows, cols = np.nonzero(matrix - np.diag(np.diag(matrix)))
    cells = [
        {"label": labels[i], "predicted": labels[j], "count": int(matrix[i, j])}
        for i, j in zip(rows, cols, strict=True)
    ]
    return sorted(cells, key=lambda c: (-c["count"], c["label"], c["predicted"]))


def plot_confusion(
    matrix: Array,
    labels: Sequence[str],
    title: str,
    columns: Sequence[str] | None = None,
) -> bytes:
    """PNG of the row-normalised confusion matrix (recall on the diagonal); ``columns``: the
    answers' labels when they differ from the rows' (e.g. with an ``unknown`` column)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    columns = list(labels if columns is None else columns)
    n, m = len(labels), len(columns)
    shares = _ratio(matrix.astype(float), matrix.sum(axis=1, keepdims=True))
    size = max(6.0, 0.16 * max(n, m) + 3)
    fig, ax = plt.subplots(figsize=(size, size * 0.92))
    image = ax.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    font = 8 if max(n, m) <= 30 else 5
    ax.set_xticks(range(m), columns, rotation=90, fontsize=font)
    ax.set_yticks(range(n), labels, fontsize=font)
    same = np.array([[row == column for column in columns] for row in labels], dtype=bool)
    errors = np.argwhere((matrix > 0) & ~same.reshape(n, m))
    for i, j in errors:  # mark every mistake, however small its share
        ax.text(j, i, str(matrix[i, j]), ha="center", va="center", fontsize=font, color="red")
    ax.set(xlabel="predicted", ylabel="true", title=title)
    fig.colorbar(image, ax=ax, fraction=0.03, pad=0.02, label="share of the true class")
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return buffer.getvalue()
