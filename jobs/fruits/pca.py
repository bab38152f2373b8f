"""Stage 3, pca: a ``pyspark.ml`` ``PCAModel`` of the whole corpus's 1280-d features.

The corpus is every path's latest featurized row over all dates (:mod:`fruits.corpus`). The
model is fitted by :class:`fruits.exact_pca.ExactPCA` — covariance summed by Spark, decomposed
exactly by numpy — so it is right on any input size, fewer images than features included. k is
given (``--k``) or the smallest one whose cumulative explained variance reaches ``--variance``.
When the corpus and the options are those of an earlier run, that run is made current for the
date again (no fit, nothing written but the pointer). Output folder (one run of the date):

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
from pyspark.ml.feature import PCAModel
from pyspark.ml.functions import array_to_vector, vector_to_array
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from fruits import catalog, corpus, job, storage, validation
from fruits.config import DEFAULT_VARIANCE, FEATURE_DIM
from fruits.errors import InputError
from fruits.exact_pca import ExactPCA, pca_model
from fruits.reporting import count_by


def choose_k(explained_variance: Sequence[float], variance: float) -> int:
    """Smallest k whose cumulative explained variance reaches ``variance``."""
    cumulative = np.cumsum(explained_variance)
    reached = np.flatnonzero(cumulative >= variance - 1e-12)
    return int(reached[0] + 1) if reached.size else len(explained_variance)


def fit_pca(data: DataFrame, k: int) -> PCAModel:
    return ExactPCA(k=k, inputCol="vector", outputCol="pca_vector").fit(data)


def first_components(model: PCAModel, k: int) -> PCAModel:
    """The model a fit with ``k`` would give, from a fit with more components (the
    eigendecomposition is of the whole covariance: truncating is exact, no second pass)."""
    return pca_model(
        model.uid,
        model.pc.toArray()[:, :k],
        model.explainedVariance.toArray()[:k],
        model.getInputCol(),
        model.getOutputCol(),
    )


def fingerprint(features: DataFrame, options: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
    """What a fit depends on — the corpus's (path, content, weights) rows and the options — and
    the one model id of its vectors (:func:`fruits.corpus.one_network` refuses several).

    An order-free sum of row hashes: one pass over three short columns, no sort.
    """
    row_hash = F.xxhash64("path", "image_id", "model_id").cast("decimal(38,0)")
    totals = features.agg(F.count("*"), F.sum(row_hash), F.collect_set("model_id")).first()
    if totals is None:
        raise RuntimeError("a global aggregation returned no row")
    count, total, models = totals
    network = corpus.one_network(features, models)
    return {"rows": int(count), "row_hash_sum": str(total or 0), **options}, network


def earlier_run(dataset: str, key: dict[str, Any]) -> catalog.Run | None:
    """The most recent current run (any date) whose input fingerprint is ``key``."""
    matches = [run for run in catalog.current_runs(dataset) if run.details.get("input") == key]
    return matches[-1] if matches else None


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
    run: job.JobRun,
    k: int | None = None,
    variance: float = DEFAULT_VARIANCE,
) -> dict[str, Any]:
    """Fit PCA on the corpus (or reuse the run that already did); publish model, vectors,
    report and plot as the date's current ``pca`` run; return the report."""
    validation.pca_choice(k, variance)
    features = corpus.current_features(spark, run.paths).drop("view_features")  # images only
    key, _ = fingerprint(features, {"k": k, "variance": None if k else variance})  # 3 columns
    earlier = earlier_run(run.paths.dataset("pca"), key)
    if earlier is not None:
        published = run.reuse("pca", earlier, {"input": key})
        report = storage.read_json(storage.join(earlier.uri, "report.json"))
        return {**report, "output": published.uri, "reused": earlier.uri}
    data = features.withColumn("vector", array_to_vector(F.col("features"))).cache()
    try:
        report = _fit_and_write(spark, run, data, features, k, variance, key)
    finally:
        data.unpersist()
    run.publish("pca", report["n_images"], {"input": key, "k": report["k"]})
    return report


def _fit_and_write(
    spark: SparkSession,
    run: job.JobRun,
    data: DataFrame,
    features: DataFrame,
    k: int | None,
    variance: float,
    key: dict[str, Any],
) -> dict[str, Any]:
    n_images = key["rows"]
    if n_images < 2:
        raise InputError(f"PCA needs at least 2 images, the corpus has {n_images}")
    k_max = min(FEATURE_DIM, n_images)
    if k is not None and k > k_max:
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
    output = run.output("pca")
    vectors = model.transform(data).select(
        "image_id", "path", "label", "split", "source",
        vector_to_array(F.col("pca_vector"), "float32").alias("pca_features"),
    )  # fmt: skip
    report = {
        "output": output,
        "n_images": n_images,
        "k": k,
        "k_selection": "variance" if curve is not None else "given",
        "variance_target": variance if curve is not None else None,
        "explained_variance": explained,
        "cumulative_explained_variance": np.cumsum(explained).tolist(),
        "total_explained_variance": float(np.sum(explained)),
        "images_by_label": count_by(features, F.col("label")),
        "images_by_split": count_by(features, F.coalesce(F.col("split"), F.lit("(none)"))),
        "reused": None,
    }
    model.write().save(f"{output}/model")
    vectors.write.parquet(f"{output}/vectors")
    storage.write_json(f"{output}/report.json", report)
    storage.write_bytes(
        f"{output}/explained_variance.png",
        plot_cumulative(curve or explained, k, report["variance_target"]),
    )
    return report


def parser() -> argparse.ArgumentParser:
    p = job.parser("PCA on the corpus's MobileNetV2 features (pyspark.ml PCAModel).")
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
    return job.run_job(
        "pca", argv, parser(), lambda spark, run_, a: run(spark, run_, a.k, a.variance)
    )
