"""The classification pipeline: label indexing → [StandardScaler] → PCA → classifier → labels.

One ``pyspark.ml`` ``Pipeline`` carries every fitted step, so the saved ``PipelineModel`` is the
whole model: reload it with ``PipelineModel.load(uri)`` (input column ``vector``, the 1280
features as a Spark vector: ``array_to_vector("features")``), or apply it without Spark with
:class:`fruits.saved_pipeline.NumpyPipeline`. The PCA is fitted by
:class:`fruits.exact_pca.ExactPCA` (exact where Spark's own PCA is not) into a standard
``PCAModel``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np
from numpy.typing import NDArray
from pyspark.ml import Pipeline, PipelineModel, Transformer
from pyspark.ml.classification import LogisticRegression, MultilayerPerceptronClassifier
from pyspark.ml.feature import IndexToString, StandardScaler, StringIndexerModel
from pyspark.sql import DataFrame

from fruits import softmax_regression
from fruits.config import (
    CLASSIFIER,
    CLASSIFIER_HIDDEN,
    CLASSIFIER_K,
    CLASSIFIER_MAX_ITER,
    CLASSIFIER_REG_PARAM,
    CLASSIFIER_SCALE,
    CLASSIFIER_SEED,
    DRIVER_FIT_MAX_CELLS,
    DRIVER_FIT_MAX_ITER,
    DRIVER_FIT_TOL,
)
from fruits.exact_pca import ExactPCA, pca_model, principal_components
from fruits.spark_models import logistic_regression_model, standard_scaler_model

CLASSIFIERS = ("lr", "mlp")
INPUT_COL = "vector"
LABEL_COL = "label_index"
PREDICTED_LABEL_COL = "predicted_label"
PCA_COL = "pca_vector"


@dataclass(frozen=True)
class ClassifierConfig:
    """What to fit: ``lr`` (multinomial logistic regression) or ``mlp`` on k PCA components."""

    classifier: str = CLASSIFIER
    k: int = CLASSIFIER_K
    scale: bool = CLASSIFIER_SCALE
    reg_param: float = CLASSIFIER_REG_PARAM
    max_iter: int = CLASSIFIER_MAX_ITER
    hidden: tuple[int, ...] = CLASSIFIER_HIDDEN
    seed: int = CLASSIFIER_SEED

    def with_k(self, k: int) -> ClassifierConfig:
        return replace(self, k=k)

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "hidden": list(self.hidden)}


def _logistic_regression(config: ClassifierConfig) -> LogisticRegression:
    return LogisticRegression(
        featuresCol=PCA_COL,
        labelCol=LABEL_COL,
        maxIter=config.max_iter,
        family="multinomial",
        regParam=config.reg_param,
        # After StandardScaler + PCA, re-standardizing would inflate the weak components.
        standardization=not config.scale,
    )


def _perceptron(config: ClassifierConfig, n_classes: int) -> MultilayerPerceptronClassifier:
    return MultilayerPerceptronClassifier(
        featuresCol=PCA_COL,
        labelCol=LABEL_COL,
        maxIter=config.max_iter,
        layers=[config.k, *config.hidden, n_classes],
        seed=config.seed,
    )


def _classifier(
    config: ClassifierConfig, n_classes: int
) -> LogisticRegression | MultilayerPerceptronClassifier:
    if config.classifier == "lr":
        return _logistic_regression(config)
    if config.classifier == "mlp":
        return _perceptron(config, n_classes)
    raise ValueError(f"unknown classifier {config.classifier!r}, expected one of {CLASSIFIERS}")


def _scaler() -> StandardScaler:
    return StandardScaler(inputCol=INPUT_COL, outputCol="scaled", withMean=True, withStd=True)


def _pca(config: ClassifierConfig) -> ExactPCA:
    return ExactPCA(k=config.k, inputCol="scaled" if config.scale else INPUT_COL, outputCol=PCA_COL)


def _to_label(labels: StringIndexerModel) -> IndexToString:
    return IndexToString(inputCol="prediction", outputCol=PREDICTED_LABEL_COL, labels=labels.labels)


def build_pipeline(config: ClassifierConfig, labels: StringIndexerModel) -> Pipeline:
    """The unfitted pipeline around an already fitted label indexer (its labels name classes).

    Fitting it as one ``Pipeline`` is slow (see :func:`fit_dataframe`); it is kept for
    comparisons (``bench/classifier_variants.py``)."""
    scaler = [_scaler()] if config.scale else []
    classifier = _classifier(config, len(labels.labels))
    return Pipeline(stages=[labels, *scaler, _pca(config), classifier, _to_label(labels)])


def indexer(labels: Sequence[str]) -> StringIndexerModel:
    """The label indexer of the pipeline: class ``labels[i]`` is index ``i``."""
    return StringIndexerModel.from_labels(list(labels), inputCol="label", outputCol=LABEL_COL)


def fits_on_driver(config: ClassifierConfig, rows: int, dim: int) -> bool:
    """Whether the training matrix is fitted on the driver (:func:`fit_arrays`): LR only, up to
    ``DRIVER_FIT_MAX_CELLS`` values; larger sets go to :func:`fit_dataframe`."""
    return config.classifier == "lr" and rows * dim <= DRIVER_FIT_MAX_CELLS


def fit_dataframe(
    config: ClassifierConfig, labels: Sequence[str], train: DataFrame
) -> tuple[PipelineModel, dict[str, Any]]:
    """Spark fits each stage; the classifier on the projected set, its lineage cut.

    An iterative classifier runs Spark jobs per iteration (LR: ~200 iterations, one job per
    loss evaluation). Fitted inside a ``Pipeline``, every such job ships the lineage of its
    input, the scaler and the 1280×k PCA matrix included (2.6 MB at k = 256): a "large task
    binary" broadcast per job. Here the projection is fitted first and the training set
    projected once, its lineage cut (``localCheckpoint``: blocks kept by the executors, as
    ``cache`` keeps them), so each iteration's task is a few kilobytes.
    """
    label_indexer = indexer(labels)
    indexed = label_indexer.transform(train)
    scaler = [_scaler()] if config.scale else []
    projection = Pipeline(stages=[*scaler, _pca(config)]).fit(indexed)
    projected = projection.transform(indexed).select(LABEL_COL, PCA_COL).localCheckpoint(eager=True)
    classifier = _classifier(config, len(labels)).fit(projected)
    info: dict[str, Any] = {"fitted_on": "spark"}
    if config.classifier == "lr":
        history = classifier.summary.objectiveHistory
        info |= {"iterations": classifier.summary.totalIterations, "loss": history[-1]}
    stages = [label_indexer, *projection.stages, classifier, _to_label(label_indexer)]
    return PipelineModel(stages=stages), info


def fit_arrays(
    config: ClassifierConfig, labels: Sequence[str], x: NDArray[Any], y: NDArray[Any]
) -> tuple[PipelineModel, dict[str, Any]]:
    """Scaler, PCA and logistic regression fitted with numpy on the driver's training matrix.

    ``x``: one row of features per image, ``y``: its class index in ``labels``. The estimates
    are Spark's: sample mean and std (``StandardScaler``), the covariance's top eigenvectors
    (what :class:`~fruits.exact_pca.ExactPCA` computes), the optimum of Spark's LR objective
    (:mod:`fruits.softmax_regression`, to a tighter tolerance than Spark's own fit). No Spark
    job at all: the stages are built as Spark models (:mod:`fruits.spark_models`).
    """
    if config.classifier != "lr":
        raise ValueError(f"only 'lr' is fitted on the driver, not {config.classifier!r}")
    x = np.asarray(x, dtype=np.float64)
    label_indexer = indexer(labels)
    stages: list[Transformer] = [label_indexer]
    if config.scale:
        mean, std = x.mean(axis=0), x.std(axis=0, ddof=1)
        x = (x - mean) * np.divide(1.0, std, out=np.zeros_like(std), where=std > 0)
        stages.append(standard_scaler_model(_scaler(), mean, std))
    pca = _pca(config)
    components, shares = principal_components(np.cov(x, rowvar=False), config.k)
    stages.append(pca_model(pca.uid, components, shares, pca.getInputCol(), PCA_COL))
    fitted = softmax_regression.fit(
        x @ components,
        np.asarray(y, dtype=np.int64),
        len(labels),
        config.reg_param,
        standardization=not config.scale,
        max_iter=DRIVER_FIT_MAX_ITER,
        tol=DRIVER_FIT_TOL,
    )
    estimator = _logistic_regression(config)
    stages.append(logistic_regression_model(estimator, fitted.coefficients, fitted.intercepts))
    stages.append(_to_label(label_indexer))
    info = {
        "fitted_on": "driver",
        "iterations": fitted.iterations,
        "converged": fitted.converged,
        "loss": fitted.loss,
    }
    return PipelineModel(stages=stages), info
