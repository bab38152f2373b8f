"""Is this photo like anything the classifier was trained on? Nearest-neighbour cosine similarity.

A softmax is confident on inputs it has never seen (random noise or a portrait can get 0.9 for
some fruit), so prediction also asks how close the image's MobileNetV2 features are to the
nearest training image (cosine similarity, as in k-NN out-of-distribution detection, Sun et al.
2022). The train stage saves a per-class sample of training features as the reference set.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

BLOCK_ROWS = 1024


def unit_rows(features: NDArray[Any]) -> NDArray[np.float32]:
    """Rows scaled to unit L2 norm (all-zero rows stay zero)."""
    x = np.atleast_2d(np.asarray(features, dtype=np.float32))
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return np.divide(x, norms, out=np.zeros_like(x), where=norms > 0)


def nearest_similarity(
    queries: NDArray[np.float32], reference: NDArray[np.float32], leave_one_out: bool = False
) -> NDArray[np.float32]:
    """Cosine similarity of each query row to its nearest ``reference`` row (unit rows in).

    ``leave_one_out`` (queries = reference) ignores each row's similarity to itself.
    """
    best = np.empty(len(queries), dtype=np.float32)
    for start in range(0, len(queries), BLOCK_ROWS):
        block = queries[start : start + BLOCK_ROWS] @ reference.T
        if leave_one_out:
            rows = np.arange(len(block))
            block[rows, rows + start] = -np.inf
        best[start : start + BLOCK_ROWS] = block.max(axis=1)
    return best


def percentiles(values: NDArray[Any], points: Sequence[float] = (0, 1, 5, 50)) -> dict[str, float]:
    if len(values) == 0:
        return {}
    return {f"p{p:g}": round(float(np.percentile(values, p)), 4) for p in points}
