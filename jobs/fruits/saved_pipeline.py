"""A saved Spark ML ``PipelineModel`` applied with numpy: no JVM, no Spark session.

Spark ML writes each fitted stage as ``metadata/`` (one JSON line: class and params) and
``data/`` (Parquet). The stages the train stage uses are linear algebra that numpy redoes
exactly: ``StandardScalerModel`` (shift, scale), ``PCAModel`` (projection),
``LogisticRegressionModel`` (softmax of affine margins) and
``MultilayerPerceptronClassificationModel`` (sigmoid layers, softmax on top). The loaded
pipeline is plain data (arrays in dataclasses): it pickles, so Spark can broadcast it.
``StringIndexerModel`` (only needed for training labels) is skipped; class names come from the
``IndexToString`` stage. Files are read with pyarrow, so local paths and ``s3://`` URIs work.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow.fs as pafs
import pyarrow.parquet as pq
from numpy.typing import NDArray

from fruits.errors import InputError
from fruits.storage import filesystem

Array = NDArray[Any]  # numpy arrays, any shape and dtype
Step = Callable[[Array], Array]  # one stage: rows of its input → rows of its output

_SKIPPED = {"org.apache.spark.ml.feature.StringIndexerModel"}


def is_dir(fs: pafs.FileSystem, path: str) -> bool:
    directory: bool = fs.get_file_info(path).type == pafs.FileType.Directory
    return directory


@dataclass(frozen=True)
class _Folder:
    """A saved Spark ML folder (a pipeline or one of its stages)."""

    fs: pafs.FileSystem
    path: str

    def metadata(self) -> dict[str, Any]:
        """Class, uid and params (defaults overridden by the set ones) of the saved object."""
        selector = pafs.FileSelector(f"{self.path}/metadata")
        parts = sorted(
            f.path for f in self.fs.get_file_info(selector) if f.base_name.startswith("part-")
        )
        if not parts:
            raise InputError(f"not a saved Spark ML model: no metadata under {self.path}")
        with self.fs.open_input_stream(parts[0]) as stream:
            meta: dict[str, Any] = json.loads(stream.read().decode("utf-8").splitlines()[0])
        meta["params"] = {**meta.get("defaultParamMap", {}), **meta.get("paramMap", {})}
        return meta

    def data(self) -> dict[str, Any]:
        """The first row of the stage's Parquet data, as plain Python values."""
        table = pq.read_table(f"{self.path}/data", filesystem=self.fs)
        row: dict[str, Any] = table.slice(0, 1).to_pylist()[0]
        return row


def vector(value: dict[str, Any]) -> NDArray[np.float64]:
    """A Spark ``VectorUDT`` struct (type 0 sparse, 1 dense) as a dense array."""
    if value["type"] == 1:
        return np.asarray(value["values"], dtype=np.float64)
    out = np.zeros(value["size"], dtype=np.float64)
    out[np.asarray(value["indices"], dtype=np.int64)] = value["values"]
    return out


def matrix(value: dict[str, Any]) -> NDArray[np.float64]:
    """A Spark ``MatrixUDT`` struct (type 0 sparse CSC/CSR, 1 dense) as a dense 2-d array."""
    rows, cols, transposed = value["numRows"], value["numCols"], value["isTransposed"]
    values = np.asarray(value["values"], dtype=np.float64)
    if value["type"] == 1:
        return values.reshape(rows, cols) if transposed else values.reshape(cols, rows).T
    out = np.zeros((rows, cols), dtype=np.float64)
    pointers, indices = value["colPtrs"], value["rowIndices"]
    for major in range(len(pointers) - 1):  # columns (CSC), or rows when transposed (CSR)
        for p in range(pointers[major], pointers[major + 1]):
            if transposed:
                out[major, indices[p]] = values[p]
            else:
                out[indices[p], major] = values[p]
    return out


def softmax(margins: Array) -> Array:
    shifted = np.exp(margins - margins.max(axis=1, keepdims=True))
    probabilities: Array = shifted / shifted.sum(axis=1, keepdims=True)  # numpy 1.26 types it Any
    return probabilities


@dataclass(frozen=True)
class Affine:
    """``(x - shift) * scale``: a fitted ``StandardScalerModel``."""

    shift: Array | float
    scale: Array

    def __call__(self, x: Array) -> Array:
        return (x - self.shift) * self.scale


@dataclass(frozen=True)
class Linear:
    """``x @ weights (+ bias)``, then softmax (``softmax``) or nothing: PCA, multinomial LR."""

    weights: Array
    bias: Array | float = 0.0
    softmax: bool = False

    def __call__(self, x: Array) -> Array:
        out = x @ self.weights + self.bias
        return softmax(out) if self.softmax else out


@dataclass(frozen=True)
class Binomial:
    """A binomial ``LogisticRegressionModel``: [P(0), P(1)]."""

    coefficients: Array
    intercept: float

    def __call__(self, x: Array) -> Array:
        positive = 1.0 / (1.0 + np.exp(-(x @ self.coefficients + self.intercept)))
        return np.column_stack([1.0 - positive, positive])


@dataclass(frozen=True)
class Perceptron:
    """Sigmoid hidden layers, softmax on top: ``MultilayerPerceptronClassificationModel``."""

    layers: tuple[tuple[Array, Array], ...]

    def __call__(self, x: Array) -> Array:
        for w, b in self.layers[:-1]:
            x = 1.0 / (1.0 + np.exp(-(x @ w + b)))
        w, b = self.layers[-1]
        return softmax(x @ w + b)


def _scaler(meta: dict[str, Any], data: dict[str, Any]) -> Affine:
    mean = vector(data["mean"]) if meta["params"].get("withMean", False) else 0.0
    std = vector(data["std"])
    scale = np.divide(1.0, std, out=np.zeros_like(std), where=std != 0)
    if not meta["params"].get("withStd", True):
        scale = np.ones_like(std)
    return Affine(mean, scale)


def _pca(meta: dict[str, Any], data: dict[str, Any]) -> Linear:
    return Linear(matrix(data["pc"]))  # features × k


def _logistic(meta: dict[str, Any], data: dict[str, Any]) -> Linear | Binomial:
    coefficients = matrix(data["coefficientMatrix"])  # classes × features (1 row if binomial)
    intercepts = vector(data["interceptVector"])
    if data["isMultinomial"]:
        return Linear(coefficients.T, intercepts, softmax=True)
    return Binomial(coefficients[0], float(intercepts[0]))


def _perceptron(meta: dict[str, Any], data: dict[str, Any]) -> Perceptron:
    layers = [int(n) for n in meta["params"]["layers"]]
    weights = vector(data["weights"])
    affine: list[tuple[Array, Array]] = []
    offset = 0
    for n_in, n_out in itertools.pairwise(layers):
        # Spark stores each layer as a column-major out×in matrix, then out biases.
        w = weights[offset : offset + n_in * n_out].reshape(n_in, n_out)
        b = weights[offset + n_in * n_out : offset + n_in * n_out + n_out]
        affine.append((w, b))
        offset += n_in * n_out + n_out
    return Perceptron(tuple(affine))


Builder = Callable[[dict[str, Any], dict[str, Any]], Step]  # (metadata, data) → the stage

_TRANSFORMS: dict[str, Builder] = {
    "org.apache.spark.ml.feature.StandardScalerModel": _scaler,
    "org.apache.spark.ml.feature.PCAModel": _pca,
}
_CLASSIFIERS: dict[str, Builder] = {
    "org.apache.spark.ml.classification.LogisticRegressionModel": _logistic,
    "org.apache.spark.ml.classification.MultilayerPerceptronClassificationModel": _perceptron,
}


@dataclass(frozen=True)
class NumpyPipeline:
    """Feature vectors → class probabilities, as the saved Spark ``PipelineModel`` computes."""

    labels: tuple[str, ...]
    steps: tuple[Step, ...]
    stage_classes: tuple[str, ...]

    @classmethod
    def load(cls, uri: str) -> NumpyPipeline:
        fs, root = filesystem(uri.rstrip("/"))
        meta = _Folder(fs, root).metadata()
        if not meta["class"].endswith("PipelineModel"):
            raise InputError(f"{uri} is a saved {meta['class']}, not a PipelineModel")
        steps: list[Step] = []
        classes: list[str] = []
        labels: tuple[str, ...] | None = None
        classifier = False
        for index, uid in enumerate(meta["paramMap"]["stageUids"]):
            stage = _Folder(fs, f"{root}/stages/{index}_{uid}")
            stage_meta = stage.metadata()
            name = stage_meta["class"]
            classes.append(name.rsplit(".", 1)[-1])
            if name in _TRANSFORMS or name in _CLASSIFIERS:
                if classifier:
                    raise InputError(f"{uri}: stage {name} after the classifier is not supported")
                builder = _TRANSFORMS.get(name) or _CLASSIFIERS[name]
                steps.append(builder(stage_meta, stage.data()))
                classifier = name in _CLASSIFIERS
            elif name == "org.apache.spark.ml.feature.IndexToString":
                labels = tuple(stage_meta["params"]["labels"])
            elif name not in _SKIPPED:
                raise InputError(f"{uri}: stage {name} cannot be applied without Spark")
        if not classifier or labels is None:
            raise InputError(f"{uri}: expected a classifier and an IndexToString stage")
        return cls(labels, tuple(steps), tuple(classes))

    def predict_proba(self, features: Array) -> Array:
        """``n×1280`` features → ``n×classes`` probabilities (columns in :attr:`labels` order)."""
        x = np.atleast_2d(np.asarray(features, dtype=np.float64))
        for step in self.steps:
            x = step(x)
        return x
