"""Plain-numpy pieces of the classifier: Spark's vector/matrix layouts, metrics, novelty."""

from __future__ import annotations

import numpy as np
import pytest

from fruits import evaluation, novelty, softmax_regression
from fruits.saved_pipeline import matrix, vector


def test_spark_vectors_and_matrices_decode_to_dense_arrays():
    dense_vector = {"type": 1, "size": None, "indices": None, "values": [1.0, 2.0]}
    assert vector(dense_vector).tolist() == [1.0, 2.0]
    sparse = {"type": 0, "size": 4, "indices": [1, 3], "values": [5.0, 6.0]}
    assert vector(sparse).tolist() == [0.0, 5.0, 0.0, 6.0]
    expected = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    dense = {"type": 1, "numRows": 2, "numCols": 3, "isTransposed": False}
    np.testing.assert_array_equal(matrix({**dense, "values": [1, 4, 2, 5, 3, 6]}), expected)
    rows = {**dense, "isTransposed": True, "values": [1, 2, 3, 4, 5, 6]}
    np.testing.assert_array_equal(matrix(rows), expected)
    csc = {  # [[1, 0], [0, 2], [3, 0]] column by column
        "type": 0,
        "numRows": 3,
        "numCols": 2,
        "colPtrs": [0, 2, 3],
        "rowIndices": [0, 2, 1],
        "values": [1.0, 3.0, 2.0],
        "isTransposed": False,
    }
    np.testing.assert_array_equal(matrix(csc), [[1, 0], [0, 2], [3, 0]])
    csr = {**csc, "numRows": 2, "numCols": 3, "isTransposed": True}  # its transpose, by rows
    np.testing.assert_array_equal(matrix(csr), [[1, 0, 3], [0, 2, 0]])


def test_metrics_from_a_confusion_matrix():
    m = evaluation.confusion_matrix([(0, 0, 8), (0, 1, 2), (1, 1, 5), (2, 2, 5)], 3)
    summary = evaluation.summarize(m, ["a", "b", "c"])
    assert summary["accuracy"] == pytest.approx(18 / 20)
    assert summary["per_class"]["a"] == {
        "precision": 1.0,
        "recall": 0.8,
        "f1": 0.8889,
        "support": 10,
    }
    assert summary["per_class"]["b"]["precision"] == pytest.approx(5 / 7, abs=1e-4)
    f1_b = 2 * (5 / 7) / (5 / 7 + 1)
    assert summary["macro_f1"] == pytest.approx((16 / 18 + f1_b + 1) / 3)
    assert evaluation.confusions(m, ["a", "b", "c"]) == [
        {"label": "a", "predicted": "b", "count": 2}
    ]
    png = evaluation.plot_confusion(m, ["a", "b", "c"], "t")
    assert png[:4] == b"\x89PNG"


def test_nearest_similarity_leave_one_out():
    reference = novelty.unit_rows(np.array([[1.0, 0.0], [1.0, 0.1], [0.0, 1.0]]))
    queries = novelty.unit_rows(np.array([[2.0, 0.0], [0.0, 0.0]]))
    best = novelty.nearest_similarity(queries, reference)
    assert best[0] == pytest.approx(1.0) and best[1] == 0.0
    loo = novelty.nearest_similarity(reference, reference, leave_one_out=True)
    assert loo[0] == pytest.approx(loo[1]) and loo[0] < 1.0
    assert loo[2] == pytest.approx(float(reference[1, 1]))


def test_softmax_regression_gradient_and_spark_penalty():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(40, 5)), rng.integers(0, 3, 40)
    weights = rng.uniform(0.5, 2.0, 40)
    reg = np.array([0.1, 0.2, 0.0, 0.3, 0.05])
    f = softmax_regression.objective(x, y, 3, reg, weights)
    params = rng.normal(size=3 * 5 + 3)
    _, gradient = f(params)
    step = 1e-6
    numeric = [
        (f(params + step * e)[0] - f(params - step * e)[0]) / (2 * step)
        for e in np.eye(len(params))
    ]
    np.testing.assert_allclose(gradient, numeric, rtol=1e-5, atol=1e-8)

    fit = softmax_regression.fit(x, y, 3, reg_param=0.05, weights=weights)
    assert fit.converged
    assert abs(fit.intercepts.sum()) < 1e-9  # centred, as Spark centres them
    _, g = softmax_regression.objective(x, y, 3, 0.05, weights)(
        np.concatenate([fit.coefficients.ravel(), fit.intercepts])
    )
    assert np.abs(g).max() < 1e-5  # a stationary point of the convex objective: the optimum


def test_softmax_regression_standardization_penalises_scaled_coefficients():
    """Spark's standardization=True: the same fit as on features divided by their std."""
    rng = np.random.default_rng(1)
    x = rng.normal(size=(60, 4)) * np.array([1.0, 10.0, 0.1, 3.0])
    x[:, 2] = 5.0  # a constant feature keeps a zero coefficient
    y = (x[:, 0] + x[:, 1] / 10 > 0).astype(int) + (x[:, 3] > 1).astype(int)
    fit = softmax_regression.fit(x, y, 3, reg_param=0.1, standardization=True)
    std = x.std(axis=0, ddof=1)
    keep = std > 0
    scaled = softmax_regression.fit(x[:, keep] / std[keep], y, 3, reg_param=0.1)
    np.testing.assert_allclose(
        fit.coefficients[:, keep] * std[keep], scaled.coefficients, atol=1e-4
    )
    assert (fit.coefficients[:, ~keep] == 0).all()
