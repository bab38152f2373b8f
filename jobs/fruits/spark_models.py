"""Genuine Spark ML models built from numpy arrays (fitted on the driver), as a Spark fit would.

Each model is made through its JVM constructor and given the estimator's params, as Spark's
own ``fit`` does (``copyValues``), so it transforms, saves and reloads like any fitted model.
"""

from __future__ import annotations

from typing import Any, TypeVar

import numpy as np
from numpy.typing import NDArray
from pyspark import SparkContext
from pyspark.ml.classification import LogisticRegression, LogisticRegressionModel
from pyspark.ml.common import _py2java
from pyspark.ml.feature import StandardScaler, StandardScalerModel
from pyspark.ml.linalg import DenseMatrix, DenseVector
from pyspark.ml.param import Params

Array = NDArray[Any]  # numpy arrays, any shape and dtype


def _java(value: DenseVector | DenseMatrix) -> Any:  # a py4j JavaObject
    return _py2java(SparkContext.getOrCreate(), value)


def _jvm() -> Any:
    jvm = SparkContext.getOrCreate()._jvm
    if jvm is None:
        raise RuntimeError("no JVM: start a SparkSession first")
    return jvm


def _vector(values: Array) -> DenseVector:
    return DenseVector(np.asarray(values, dtype=np.float64).tolist())


def _matrix(values: Array) -> DenseMatrix:
    rows, cols = values.shape
    return DenseMatrix(rows, cols, np.asarray(values, dtype=np.float64).flatten("F").tolist())


Model = TypeVar("Model", StandardScalerModel, LogisticRegressionModel)


def _with_params(model: Model, estimator: Params) -> Model:
    estimator._copyValues(model)
    model._transfer_params_to_java()
    return model


def standard_scaler_model(
    estimator: StandardScaler, mean: Array, std: Array
) -> StandardScalerModel:
    """The model ``estimator.fit`` returns for data of this mean and (sample) std."""
    java = _jvm().org.apache.spark.ml.feature.StandardScalerModel(
        estimator.uid, _java(_vector(std)), _java(_vector(mean))
    )
    return _with_params(StandardScalerModel(java), estimator)


def logistic_regression_model(
    estimator: LogisticRegression, coefficients: Array, intercepts: Array
) -> LogisticRegressionModel:
    """A multinomial model: ``coefficients`` classes × features, ``intercepts`` per class."""
    java = _jvm().org.apache.spark.ml.classification.LogisticRegressionModel(
        estimator.uid,
        _java(_matrix(coefficients)),
        _java(_vector(intercepts)),
        int(coefficients.shape[0]),
        True,
    )
    return _with_params(LogisticRegressionModel(java), estimator)
