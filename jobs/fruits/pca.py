"""Stage 3, pca: ``pyspark.ml.feature.PCA`` on the 1280-d features.

k is given (``--k``) or the smallest one whose cumulative explained variance reaches
``--variance``. Output folder (published atomically):

* ``model/`` — the fitted ``PCAModel`` (Spark ML format: reload it to project new data);
* ``vectors/`` — Parquet ``image_id, path, label, split, pca_features``;
* ``report.json`` — n images, k, explained variance per component and cumulative, counts;
* ``explained_variance.png`` — cumulative explained variance against k.
"""

from __future__ import annotations

import argparse
import io
from collections.abc import Sequence
from typing import Any

import numpy as np
from pyspark.ml.feature import PCA, PCAModel
from pyspark.ml.functions import array_to_vector, vector_to_array
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from fruits import storage
from fruits.config import DEFAULT_VARIANCE, FEATURE_DIM
from fruits.errors import InputError
from fruits.exact_pca import pca_model
from fruits.reporting import count_by, run_stage, stage_parser


def choose_k(explained_variance: Sequence[float], variance: float) -> int:
    """Smallest k whose cumulative explained variance reaches ``variance``."""
    cumulative = np.cumsum(explained_variance)
    reached = np.flatnonzero(cumulative >= variance - 1e-12)
    return int(reached[0] + 1) if reached.size else len(explained_variance)


def fit_pca(data: DataFrame, k: int) -> PCAModel:
    return PCA(k=k, inputCol="vector", outputCol="pca_vector").fit(data)


def first_components(model: PCAModel, k: int) -> PCAModel:
    """The model a fit with ``k`` would give, from a fit with more components.

    Spark's fit decomposes the whole covariance matrix and keeps the first k eigenvectors, so
    truncating is exact and saves a second pass over the data.
    """
    return pca_model(
        model.uid,
        model.pc.toArray()[:, :k],
        model.explainedVariance.toArray()[:k],
        model.getInputCol(),
        model.getOutputCol(),
    )


def plot_cumulative(explained_variance: Sequence[float], k: int, variance: float | None) -> bytes:
    """PNG of the cumulative explained variance, with the chosen k marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cumulative = np.cumsum(explained_variance)
    fig, ax = plt.subplots(figsize=(7, 4.5))
    ax.plot(np.arange(1, len(cumulative) + 1), cumulative, lw=2)
    ax.axvline(k, color="tab:red", ls="--", label=f"k = {k} ({cumulative[k - 1]:.1%})")
    if variance is not None:
        ax.axhline(variance, color="tab:gray", ls=":", label=f"target {variance:.0%}")
    ax.set(xlabel="number of components", ylabel="cumulative explained variance", ylim=(0, 1.01))
    ax.set_title("PCA on MobileNetV2 features")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return buffer.getvalue()


def run(
    spark: SparkSession,
    input_uri: str,
    output_uri: str,
    k: int | None = None,
    variance: float = DEFAULT_VARIANCE,
) -> dict[str, Any]:
    """Fit PCA on the features at ``input_uri``; write model, vectors, report and plot."""
    if k is None and not 0.0 < variance <= 1.0:
        raise InputError(f"--variance must be in (0, 1], got {variance}")
    if not storage.exists(spark, input_uri):
        raise InputError(f"input not found: {input_uri} (run the featurize stage first)")
    features = spark.read.parquet(input_uri)
    data = features.withColumn("vector", array_to_vector("features")).cache()
    try:
        n_images = data.count()
        if n_images < 2:
            raise InputError(f"PCA needs at least 2 images, {input_uri} has {n_images}")
        k_max = min(FEATURE_DIM, n_images)
        if k is not None and not 1 <= k <= k_max:
            raise InputError(f"--k must be between 1 and {k_max} for {n_images} images, got {k}")

        curve = None
        if k is None:  # one fit with every component, then keep the first k
            full = fit_pca(data, k_max)
            curve = full.explainedVariance.toArray().tolist()
            k = choose_k(curve, variance)
            model = first_components(full, k)
        else:
            model = fit_pca(data, k)
        explained = model.explainedVariance.toArray().tolist()

        vectors = model.transform(data).select(
            "image_id",
            "path",
            "label",
            "split",
            vector_to_array("pca_vector", "float32").alias("pca_features"),
        )
        report = {
            "input": input_uri,
            "output": output_uri,
            "n_images": n_images,
            "k": k,
            "k_selection": "variance" if curve is not None else "given",
            "variance_target": variance if curve is not None else None,
            "explained_variance": explained,
            "cumulative_explained_variance": np.cumsum(explained).tolist(),
            "total_explained_variance": float(np.sum(explained)),
            "images_by_label": count_by(features, F.col("label")),
            "images_by_split": count_by(features, F.coalesce(F.col("split"), F.lit("(none)"))),
        }
        plot = plot_cumulative(curve or explained, k, report["variance_target"])
        with storage.staged(spark, output_uri) as staging:
            model.write().overwrite().save(f"{staging}/model")
            vectors.write.mode("overwrite").parquet(f"{staging}/vectors")
            storage.write_json(spark, f"{staging}/report.json", report)
            storage.write_bytes(spark, f"{staging}/explained_variance.png", plot)
    finally:
        data.unpersist()
    return report


def parser() -> argparse.ArgumentParser:
    p = stage_parser("PCA on the MobileNetV2 features (pyspark.ml).")
    choice = p.add_mutually_exclusive_group()
    choice.add_argument("--k", type=int, help="number of components")
    choice.add_argument(
        "--variance",
        type=float,
        default=DEFAULT_VARIANCE,
        help="smallest k reaching this cumulative explained variance (default %(default)s)",
    )
    return p


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    return run_stage(
        "pca", argv, parser(), lambda spark, a: run(spark, a.input, a.output, a.k, a.variance)
    )
