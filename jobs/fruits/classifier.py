"""The classification pipeline: label indexing → [StandardScaler] → PCA → classifier → labels.

One ``pyspark.ml`` ``Pipeline`` carries every fitted step, so the saved ``PipelineModel`` is the
whole model: reload it with ``PipelineModel.load(uri)`` (input column ``vector``, the 1280
features as a Spark vector: ``array_to_vector("features")``), or apply it without Spark with
:class:`fruits.saved_pipeline.NumpyPipeline`. The PCA is fitted by
:class:`fruits.exact_pca.ExactPCA` (exact where Spark's own PCA is not) into a standard
``PCAModel``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any

from pyspark.ml import Pipeline
from pyspark.ml.classification import LogisticRegression, MultilayerPerceptronClassifier
from pyspark.ml.feature import IndexToString, StandardScaler, StringIndexerModel

from fruits.config import (
    CLASSIFIER,
    CLASSIFIER_HIDDEN,
    CLASSIFIER_K,
    CLASSIFIER_MAX_ITER,
    CLASSIFIER_REG_PARAM,
    CLASSIFIER_SCALE,
    CLASSIFIER_SEED,
)
from fruits.exact_pca import ExactPCA

CLASSIFIERS = ("lr", "mlp")
INPUT_COL = "vector"
LABEL_COL = "label_index"
PREDICTED_LABEL_COL = "predicted_label"


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


def _classifier(config: ClassifierConfig, n_classes: int):
    common = {"featuresCol": "pca_vector", "labelCol": LABEL_COL, "maxIter": config.max_iter}
    if config.classifier == "lr":
        return LogisticRegression(
            family="multinomial",
            regParam=config.reg_param,
            # After StandardScaler + PCA, re-standardizing would inflate the weak components.
            standardization=not config.scale,
            **common,
        )
    if config.classifier == "mlp":
        layers = [config.k, *config.hidden, n_classes]
        return MultilayerPerceptronClassifier(layers=layers, seed=config.seed, **common)
    raise ValueError(f"unknown classifier {config.classifier!r}, expected one of {CLASSIFIERS}")


def build_pipeline(config: ClassifierConfig, labels: StringIndexerModel) -> Pipeline:
    """The unfitted pipeline around an already fitted label indexer (its labels name classes)."""
    scaler = (
        [StandardScaler(inputCol=INPUT_COL, outputCol="scaled", withMean=True, withStd=True)]
        if config.scale
        else []
    )
    pca = ExactPCA(
        k=config.k, inputCol="scaled" if config.scale else INPUT_COL, outputCol="pca_vector"
    )
    to_label = IndexToString(
        inputCol="prediction", outputCol=PREDICTED_LABEL_COL, labels=labels.labels
    )
    classifier = _classifier(config, len(labels.labels))
    return Pipeline(stages=[labels, *scaler, pca, classifier, to_label])
