"""Stage 4, train: a Spark ML classifier on the MobileNetV2 features, evaluated on ``Test``.

The whole model is one ``pyspark.ml`` pipeline (:mod:`fruits.classifier`) fitted on the
``Training`` split only — its own StandardScaler and PCA included, so no Test image shapes the
model and the saved folder is self-contained. It is evaluated on the ``Test`` split; Test images
also present in Training (same content hash) and classes never trained on are left out, counted.

When the training matrix fits in the driver's memory (``DRIVER_FIT_MAX_CELLS``) it is collected
once and fitted with numpy (:func:`fruits.classifier.fit_arrays`), else Spark fits it
(:func:`fruits.classifier.fit_dataframe`). Either way the saved ``PipelineModel`` is evaluated
as ``fruits-predict`` applies it (:class:`fruits.saved_pipeline.NumpyPipeline`): on the driver
for a small set, in a ``mapInPandas`` over the executors otherwise.

Output folder (the date's current ``model`` run, published through its pointer):

* ``model/`` — the fitted ``PipelineModel`` (input column ``vector`` =
  ``array_to_vector("features")``);
* ``reference/`` — Parquet ``label, image_id, features``: up to ``REFERENCE_PER_CLASS``
  training images per class, for the "unknown" check of :mod:`fruits.novelty`;
* ``report.json`` — data, settings, metrics, per-class figures, confusions, thresholds;
* ``confusion_matrix.png`` — on the Test split.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import pandas as pd
from pyspark.ml.functions import array_to_vector
from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from fruits import corpus, evaluation, job, novelty, storage
from fruits.classifier import (
    CLASSIFIERS,
    INPUT_COL,
    ClassifierConfig,
    fit_arrays,
    fit_dataframe,
    fits_on_driver,
)
from fruits.config import (
    EVAL_SPLIT,
    MIN_SIMILARITY,
    PREDICT_THRESHOLD,
    REFERENCE_PER_CLASS,
    TRAIN_SPLIT,
)
from fruits.errors import InputError
from fruits.pca import earlier_run, fingerprint
from fruits.saved_pipeline import NumpyPipeline

THRESHOLDS = (0.3, 0.5, 0.7, 0.9)
MAX_LISTED_ERRORS = 50
SCORE_SCHEMA = "path string, label string, prediction int, confidence double, similarity float"


def features_matrix(frame: pd.DataFrame, column: str = "features") -> np.ndarray:
    """The ``features`` arrays of a pandas frame as one ``n×d`` float32 matrix."""
    if frame.empty:
        return np.zeros((0, 0), dtype=np.float32)
    return np.stack(frame[column].to_numpy()).astype(np.float32, copy=False)


def score(
    pipeline: NumpyPipeline, frame: pd.DataFrame, reference: np.ndarray | None = None
) -> pd.DataFrame:
    """``path, label`` of each row, the pipeline's top class index and its probability, and
    the cosine similarity to the nearest ``reference`` row (NaN without a reference)."""
    x = features_matrix(frame)
    n = len(frame)
    probabilities = pipeline.predict_proba(x) if n else np.zeros((0, len(pipeline.labels)))
    similarity = np.full(n, np.nan, dtype=np.float32)
    if reference is not None and n:
        similarity = novelty.nearest_similarity(novelty.unit_rows(x), novelty.unit_rows(reference))
    return pd.DataFrame(
        {
            "path": frame["path"].to_numpy(),
            "label": frame["label"].to_numpy(),
            "prediction": probabilities.argmax(axis=1).astype(np.int32),
            "confidence": probabilities.max(axis=1),
            "similarity": similarity,
        }
    )


def scores(
    pipeline: NumpyPipeline, data: DataFrame | pd.DataFrame, reference: np.ndarray | None = None
) -> pd.DataFrame:
    """:func:`score` on a pandas frame (on the driver) or a Spark DataFrame (``mapInPandas``:
    pipeline and reference travel as one broadcast; only the per-row results come back)."""
    if isinstance(data, pd.DataFrame):
        return score(pipeline, data, reference)
    shared = data.sparkSession.sparkContext.broadcast((pipeline, reference))

    def batches(frames: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        model, nearest = shared.value
        for frame in frames:
            yield score(model, frame, nearest)

    try:
        return data.mapInPandas(batches, SCORE_SCHEMA).toPandas()
    finally:
        shared.destroy()


def evaluate(scored: pd.DataFrame, labels: Sequence[str]) -> dict[str, Any]:
    """Metrics of scored rows (:func:`score`); the confusion matrix is under ``matrix``."""
    index = {label: i for i, label in enumerate(labels)}
    truth = scored["label"].map(index).to_numpy(dtype=np.int64)
    predicted = scored["prediction"].to_numpy(dtype=np.int64)
    matrix = np.zeros((len(labels), len(labels)), dtype=np.int64)
    np.add.at(matrix, (truth, predicted), 1)
    confidence = scored["confidence"].to_numpy()
    correct = truth == predicted
    n = len(scored)
    by_threshold = []
    for t in THRESHOLDS:
        kept = confidence >= t
        by_threshold.append(
            {
                "threshold": t,
                "answered": float(kept.mean()) if n else None,
                "accuracy_when_answered": float(correct[kept].mean()) if kept.any() else None,
            }
        )
    wrong = scored[~correct].assign(true=lambda f: f["label"])
    wrong = wrong.sort_values(["confidence", "path"], ascending=[False, True])
    return {
        **evaluation.summarize(matrix, labels),
        "confusions": evaluation.confusions(matrix, labels),
        "by_threshold": by_threshold,
        "errors": [
            {
                "path": r.path,
                "label": r.label,
                "predicted": labels[int(r.prediction)],
                "confidence": round(float(r.confidence), 4),
            }
            for r in wrong.head(MAX_LISTED_ERRORS).itertuples()
        ],
        "matrix": matrix,
    }


def reference_sample(train: DataFrame, per_class: int) -> DataFrame:
    """Up to ``per_class`` training rows per label (lowest content hashes: deterministic)."""
    order = Window.partitionBy("label").orderBy("image_id")
    return (
        train.withColumn("n", F.row_number().over(order))
        .filter(F.col("n") <= per_class)
        .select("label", "image_id", "features")
    )


def novelty_report(reference: np.ndarray, test_sim: np.ndarray) -> dict[str, Any]:
    """Nearest-reference similarities of reference (leave-one-out) and Test images."""
    ref = novelty.unit_rows(reference)
    return {
        "method": "cosine similarity of MobileNetV2 features to the nearest reference image",
        "min_similarity": MIN_SIMILARITY,
        "reference_images": len(ref),
        "reference_per_class": REFERENCE_PER_CLASS,
        "reference_similarity_leave_one_out": novelty.percentiles(
            novelty.nearest_similarity(ref, ref, leave_one_out=True)
        ),
        "test_similarity": novelty.percentiles(test_sim),
        "test_below_min_similarity": int((test_sim < MIN_SIMILARITY).sum()),
    }


def _split(data: DataFrame, split: str) -> DataFrame:
    return data.filter(F.lower(F.col("split")) == split.lower())


def _distinct(data: DataFrame) -> DataFrame:
    """One row per (content, label), in one partition per core.

    ``dropDuplicates`` alone shuffles into ``spark.sql.shuffle.partitions`` (200) partitions,
    and a cached plan keeps them all (Spark does not coalesce cached plans): then every job on
    the training set, every iteration of a Spark fit, runs 200 tasks. Hash-partitioning by the
    same keys first makes the de-duplication use those partitions.
    """
    cores = data.sparkSession.sparkContext.defaultParallelism
    return data.repartition(cores, "image_id", "label").dropDuplicates(["image_id", "label"])


def _labels(train: DataFrame, split: str, input_uri: str) -> tuple[int, list[str]]:
    counts = train.groupBy("label").count().collect()
    n_train = sum(int(r["count"]) for r in counts)
    labels = sorted(r.label for r in counts)
    if len(labels) < 2:
        raise InputError(
            f"training needs images of at least 2 classes in the {split!r} split (folders named "
            f"{split}/<Label>/); {input_uri} has {n_train} images there"
        )
    return n_train, labels


def run(
    spark: SparkSession,
    run: job.JobRun,
    config: ClassifierConfig | None = None,
    train_split: str = TRAIN_SPLIT,
    eval_split: str = EVAL_SPLIT,
) -> dict[str, Any]:
    """Fit on ``train_split`` of the corpus, evaluate on ``eval_split``; publish model,
    reference set, report and plot as the date's ``model`` run (or make the earlier run that
    saw the same corpus with the same settings current again); return the stage report."""
    config = config or ClassifierConfig()
    if config.classifier not in CLASSIFIERS:
        raise InputError(f"--classifier must be one of {CLASSIFIERS}, got {config.classifier!r}")
    if config.k < 1:
        raise InputError(f"--k must be at least 1, got {config.k}")
    features = corpus.current_features(spark, run.paths)
    settings = {**config.as_dict(), "train_split": train_split, "eval_split": eval_split}
    key = fingerprint(features, settings)
    earlier = earlier_run(run.paths.dataset("model"), key)
    if earlier is not None:
        published = run.reuse("model", earlier, {"input": key})
        report = storage.read_json(storage.join(earlier.uri, "report.json"))
        return {**summary(report), "output": published.uri, "reused": earlier.partition}
    data = features.select("image_id", "path", "label", "split", "features")
    train = _distinct(_split(data, train_split)).cache()
    output = run.output("model")
    try:
        n_train, labels = _labels(train, train_split, run.paths.root)
        dim = len(train.first()["features"])
        # n images span at most n - 1 directions around their mean: more components are noise.
        fitted = config.with_k(min(config.k, dim, n_train - 1))
        held_out = _distinct(_split(data, eval_split))
        seen = F.col("label").isin(labels)
        in_training = held_out.join(train.select("image_id"), "image_id", "left_semi")
        test = held_out.filter(seen).join(train.select("image_id"), "image_id", "left_anti")
        rows = ["path", "label", "features"]
        train_rows: DataFrame | pd.DataFrame = train.select(*rows)
        test_rows: DataFrame | pd.DataFrame = test.select(*rows)
        if fits_on_driver(fitted, n_train, dim):
            train_rows, test_rows = train_rows.toPandas(), test_rows.toPandas()
            index = {label: i for i, label in enumerate(labels)}
            y = train_rows["label"].map(index).to_numpy()
            model, fit_info = fit_arrays(fitted, labels, features_matrix(train_rows), y)
        else:
            vectors = train.withColumn(INPUT_COL, array_to_vector("features"))
            model, fit_info = fit_dataframe(fitted, labels, vectors)
        reference = reference_sample(train, REFERENCE_PER_CLASS).toPandas()
        report = {
            "output": output,
            "reused": None,
            "train_split": train_split,
            "eval_split": eval_split,
            "classes": len(labels),
            "labels": labels,
            "n_train": n_train,
            "test_skipped_unseen_label": held_out.filter(~seen).count(),
            "test_skipped_also_in_training": in_training.count(),
            "config": fitted.as_dict(),
            "k_requested": config.k,
            "fit": fit_info,
            "stages": [type(s).__name__ for s in model.stages],
            "threshold": PREDICT_THRESHOLD,
        }
        model.write().save(f"{output}/model")
        # Evaluated as saved, with the numpy pipeline fruits-predict applies.
        pipeline = NumpyPipeline.load(f"{output}/model")
        ref = features_matrix(reference)
        test_scores = scores(pipeline, test_rows, ref)
        metrics = evaluate(test_scores, labels) if len(test_scores) else None
        report |= {
            "n_test": len(test_scores),
            "train_accuracy": evaluate(scores(pipeline, train_rows), labels)["accuracy"],
            "test": _without_matrix(metrics),
            "novelty": novelty_report(ref, test_scores["similarity"].to_numpy()),
        }
        reference_sample(train, REFERENCE_PER_CLASS).write.parquet(f"{output}/reference")
        storage.write_json(f"{output}/report.json", report)
        if metrics is not None:
            title = (
                f"{eval_split}: accuracy {metrics['accuracy']:.1%}, "
                f"macro-F1 {metrics['macro_f1']:.3f} ({len(test_scores)} images)"
            )
            plot = evaluation.plot_confusion(metrics["matrix"], labels, title)
            storage.write_bytes(f"{output}/confusion_matrix.png", plot)
    finally:
        train.unpersist()
    run.publish("model", n_train, {"input": key})
    return summary(report)


def _without_matrix(metrics: dict[str, Any] | None) -> dict[str, Any] | None:
    if metrics is None:
        return None
    rest = {k: v for k, v in metrics.items() if k != "matrix"}
    return {**rest, "confusion_matrix": np.asarray(metrics["matrix"]).tolist()}


def summary(report: dict[str, Any]) -> dict[str, Any]:
    """The stage report: ``report.json`` without the per-class tables (those stay in the file)."""
    brief = {k: v for k, v in report.items() if k not in ("test", "labels")}
    test = report["test"]
    if test is not None:
        kept = ("n", "accuracy", "macro_precision", "macro_recall", "macro_f1", "by_threshold")
        brief["test"] = {k: test[k] for k in kept} | {"confusions": test["confusions"][:10]}
    else:
        brief["test"] = None
    return brief


def parser() -> argparse.ArgumentParser:
    defaults = ClassifierConfig()
    p = job.parser("Train and evaluate the fruit classifier (pyspark.ml pipeline).")
    p.add_argument("--classifier", choices=CLASSIFIERS, default=defaults.classifier)
    p.add_argument("--k", type=int, default=defaults.k, help="PCA components (default %(default)s)")
    p.add_argument(
        "--no-scale", dest="scale", action="store_false", help="no StandardScaler before the PCA"
    )
    p.add_argument("--reg-param", type=float, default=defaults.reg_param, help="lr: L2 strength")
    p.add_argument("--max-iter", type=int, default=defaults.max_iter)
    p.add_argument(
        "--hidden",
        type=lambda s: tuple(int(n) for n in s.split(",") if n),
        default=defaults.hidden,
        help="mlp: hidden layer sizes, comma-separated (default 256)",
    )
    p.add_argument("--seed", type=int, default=defaults.seed)
    p.add_argument("--train-split", default=TRAIN_SPLIT)
    p.add_argument("--eval-split", default=EVAL_SPLIT)
    return p


def _config(args: argparse.Namespace) -> ClassifierConfig:
    return ClassifierConfig(
        classifier=args.classifier,
        k=args.k,
        scale=args.scale,
        reg_param=args.reg_param,
        max_iter=args.max_iter,
        hidden=args.hidden,
        seed=args.seed,
    )


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    return job.run_job(
        "train",
        argv,
        parser(),
        lambda spark, run_, a: run(spark, run_, _config(a), a.train_split, a.eval_split),
    )
