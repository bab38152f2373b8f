"""PCA whose fit is exact even when there are fewer images than features; yields a Spark PCAModel.

``pyspark.ml.feature.PCA`` eigen-decomposes the covariance with ``dgesdd`` from the pure-Java
F2J LAPACK that Spark falls back to without a native one. On rank-deficient covariances (fewer
rows than the 1280 features) that routine returned wrong results here: explained variances off
by 5x and components that are not eigenvectors (150 images, Spark 3.5.x, local[1]). This
estimator sums the moments with Spark (numpy per partition), eigen-decomposes the symmetric
covariance with ``numpy.linalg.eigh`` on the driver, and returns a genuine ``PCAModel``, so the
saved pipeline is standard Spark ML.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np
from numpy.typing import NDArray
from pyspark import SparkContext, keyword_only
from pyspark.ml import Estimator
from pyspark.ml.common import _py2java
from pyspark.ml.feature import PCAModel
from pyspark.ml.linalg import DenseMatrix, DenseVector
from pyspark.ml.param import Param, Params, TypeConverters
from pyspark.ml.param.shared import HasInputCol, HasOutputCol
from pyspark.sql import DataFrame, Row

BLOCK_ROWS = 2048
Array = NDArray[Any]  # numpy arrays, any shape and dtype
Moments = tuple[int, Array, Array]  # row count, column sums, Gram matrix


def _blocks(rows: Iterable[Row]) -> Iterator[Array]:
    """The rows' vectors (first column) as ``(≤ BLOCK_ROWS) × d`` arrays; never an empty one."""
    block: list[Array] = []
    for row in rows:
        block.append(row[0].toArray())
        if len(block) == BLOCK_ROWS:
            yield np.asarray(block)
            block = []
    if block:
        yield np.asarray(block)


def _moments(rows: Iterable[Row]) -> Iterator[Moments]:
    """Row count, column sums and Gram matrix of one partition (nothing for an empty one)."""
    blocks = _blocks(rows)
    x = next(blocks, None)
    if x is None:
        return
    n, total, gram = len(x), x.sum(axis=0), x.T @ x
    for x in blocks:
        n, total, gram = n + len(x), total + x.sum(axis=0), gram + x.T @ x
    yield n, total, gram


def covariance(data: DataFrame, column: str) -> tuple[int, Array]:
    """Row count and sample covariance matrix of a vector column."""
    n, total, gram = (
        data.select(column)
        .rdd.mapPartitions(_moments)
        .treeReduce(lambda a, b: (a[0] + b[0], a[1] + b[1], a[2] + b[2]))
    )
    mean = total / n
    return n, (gram - n * np.outer(mean, mean)) / max(n - 1, 1)


def principal_components(cov: Array, k: int) -> tuple[Array, Array]:
    """Top-k eigenvectors (columns, sign fixed: largest entry positive) and variance shares."""
    values, vectors = np.linalg.eigh(cov)
    order = np.argsort(values)[::-1]
    values, vectors = np.clip(values[order], 0.0, None), vectors[:, order[:k]]
    signs = np.sign(vectors[np.abs(vectors).argmax(axis=0), np.arange(k)])
    total = values.sum()
    shares = values[:k] / total if total > 0 else np.zeros(k)
    return vectors * np.where(signs == 0, 1.0, signs), shares


class ExactPCA(Estimator[PCAModel], HasInputCol, HasOutputCol):
    """Drop-in for ``pyspark.ml.feature.PCA(k, inputCol, outputCol)``; fits a ``PCAModel``."""

    _input_kwargs: dict[str, Any]  # set by @keyword_only (as pyspark's own estimators declare)
    k = Param(Params._dummy(), "k", "number of principal components", TypeConverters.toInt)

    @keyword_only
    def __init__(self, *, k: int, inputCol: str, outputCol: str) -> None:
        super().__init__()
        self._set(**self._input_kwargs)

    def _fit(self, dataset: DataFrame) -> PCAModel:
        k = self.getOrDefault(self.k)
        _, cov = covariance(dataset, self.getInputCol())
        if not 1 <= k <= len(cov):
            raise ValueError(f"k = {k} out of range [1, {len(cov)}]")
        pc, shares = principal_components(cov, k)
        return pca_model(self.uid, pc, shares, self.getInputCol(), self.getOutputCol())


def pca_model(uid: str, pc: Array, shares: Array, input_col: str, output_col: str) -> PCAModel:
    """A genuine Spark ``PCAModel`` (built through its JVM constructor) from components
    (``d × k``, one per column) and their explained-variance shares."""
    sc = SparkContext.getOrCreate()
    if sc._jvm is None:
        raise RuntimeError("the SparkContext has no JVM gateway")
    d, k = pc.shape
    java_model = sc._jvm.org.apache.spark.ml.feature.PCAModel(
        uid,
        _py2java(sc, DenseMatrix(d, k, pc.flatten(order="F").tolist())),
        _py2java(sc, DenseVector(np.asarray(shares).tolist())),
    )
    model = PCAModel(java_model)
    model._set(k=k, inputCol=input_col, outputCol=output_col)
    model._transfer_params_to_java()
    return model
