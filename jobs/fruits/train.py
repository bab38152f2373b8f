"""Stage 4, train: a Spark ML classifier on the MobileNetV2 features, evaluated on ``Test``.

The whole model is one ``pyspark.ml`` pipeline (:mod:`fruits.classifier`) fitted on the
``Training`` split only — its own StandardScaler and PCA included, so no Test image shapes the
model and the saved folder is self-contained. It is evaluated on the ``Test`` split; Test images
also present in Training (same content hash) and classes never trained on are left out, counted.

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
from collections.abc import Sequence
from typing import Any

import numpy as np
from pyspark.ml import PipelineModel
from pyspark.ml.feature import StringIndexer
from pyspark.ml.functions import array_to_vector, vector_to_array
from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from fruits import corpus, evaluation, job, novelty, storage
from fruits.classifier import (
    CLASSIFIERS,
    INPUT_COL,
    LABEL_COL,
    PREDICTED_LABEL_COL,
    ClassifierConfig,
    build_pipeline,
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

THRESHOLDS = (0.3, 0.5, 0.7, 0.9)
MAX_LISTED_ERRORS = 50


def evaluate(model: PipelineModel, data: DataFrame, labels: Sequence[str]) -> dict[str, Any]:
    """Metrics of ``model`` on labelled ``data``; the confusion matrix is under ``matrix``."""
    predictions = model.transform(data).withColumn(
        "confidence", F.array_max(vector_to_array("probability"))
    )
    predictions = predictions.drop(INPUT_COL).cache()
    try:
        counts = predictions.groupBy(LABEL_COL, "prediction").count().collect()
        matrix = evaluation.confusion_matrix(counts, len(labels))
        correct = F.col(LABEL_COL) == F.col("prediction")
        answered = [F.col("confidence") >= t for t in THRESHOLDS]
        coverage = predictions.agg(
            *[F.sum(a.cast("int")).alias(f"n{i}") for i, a in enumerate(answered)],
            *[F.sum((a & correct).cast("int")).alias(f"c{i}") for i, a in enumerate(answered)],
        ).first()
        errors = (
            predictions.filter(~correct)
            .orderBy(F.desc("confidence"), "path")
            .select("path", "label", PREDICTED_LABEL_COL, "confidence")
            .limit(MAX_LISTED_ERRORS)
            .collect()
        )
    finally:
        predictions.unpersist()
    n = int(matrix.sum())
    by_threshold = []
    for i, t in enumerate(THRESHOLDS):
        kept, right = coverage[f"n{i}"] or 0, coverage[f"c{i}"] or 0
        by_threshold.append(
            {
                "threshold": t,
                "answered": kept / n if n else None,
                "accuracy_when_answered": right / kept if kept else None,
            }
        )
    return {
        **evaluation.summarize(matrix, labels),
        "confusions": evaluation.confusions(matrix, labels),
        "by_threshold": by_threshold,
        "errors": [
            {
                "path": r.path,
                "label": r.label,
                "predicted": r[PREDICTED_LABEL_COL],
                "confidence": round(float(r.confidence), 4),
            }
            for r in errors
        ],
        "matrix": matrix,
    }


def reference_sample(train: DataFrame, per_class: int) -> DataFrame:
    """Up to ``per_class`` training rows per label (lowest content hashes: deterministic)."""
    order = Window.partitionBy("label").orderBy("image_id")
    return (
        train.withColumn("n", F.row_number().over(order))
        .filter(F.col("n") <= per_class)
        .select("label", "image_id", vector_to_array(INPUT_COL, "float32").alias("features"))
    )


def _unit_features(rows: list[Any]) -> np.ndarray:
    return novelty.unit_rows(np.array([r.features for r in rows], dtype=np.float32))


def novelty_report(reference: DataFrame, test: DataFrame) -> dict[str, Any]:
    """Nearest-reference similarities of reference (leave-one-out) and Test images."""
    ref = _unit_features(reference.collect())
    test_rows = test.select(vector_to_array(INPUT_COL, "float32").alias("features")).collect()
    test_sim = (
        novelty.nearest_similarity(_unit_features(test_rows), ref) if test_rows else np.array([])
    )
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


def _fit(train: DataFrame, config: ClassifierConfig, split: str, input_uri: str):
    """The label indexer and the fitted pipeline (k capped at the data's size)."""
    n_train = train.count()
    indexer = StringIndexer(inputCol="label", outputCol=LABEL_COL, stringOrderType="alphabetAsc")
    labels = indexer.fit(train) if n_train else None
    if labels is None or len(labels.labels) < 2:
        raise InputError(
            f"training needs images of at least 2 classes in the {split!r} split (folders named "
            f"{split}/<Label>/); {input_uri} has {n_train} images there"
        )
    dim = len(train.first()[INPUT_COL])
    # n images span at most n - 1 directions around their mean: more components are noise.
    fitted = config.with_k(min(config.k, dim, n_train - 1))
    return n_train, list(labels.labels), fitted, build_pipeline(fitted, labels).fit(train)


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
        return {**summary(report), "output": published.uri, "reused": earlier.uri}
    data = features.select(
        "image_id", "path", "label", "split", array_to_vector("features").alias(INPUT_COL)
    )
    train = _split(data, train_split).dropDuplicates(["image_id", "label"]).cache()
    output = run.output("model")
    try:
        n_train, labels, fitted, model = _fit(train, config, train_split, run.paths.root)
        held_out = _split(data, eval_split).dropDuplicates(["image_id", "label"])
        seen = F.col("label").isin(labels)
        in_training = held_out.join(train.select("image_id"), "image_id", "left_semi")
        test = held_out.filter(seen).join(train.select("image_id"), "image_id", "left_anti")
        n_test = test.count()
        metrics = evaluate(model, test, labels) if n_test else None
        reference = reference_sample(train, REFERENCE_PER_CLASS).cache()
        report = {
            "output": output,
            "reused": None,
            "train_split": train_split,
            "eval_split": eval_split,
            "classes": len(labels),
            "labels": labels,
            "n_train": n_train,
            "n_test": n_test,
            "test_skipped_unseen_label": held_out.filter(~seen).count(),
            "test_skipped_also_in_training": in_training.count(),
            "config": fitted.as_dict(),
            "k_requested": config.k,
            "stages": [type(s).__name__ for s in model.stages],
            "threshold": PREDICT_THRESHOLD,
            "train_accuracy": evaluate(model, train, labels)["accuracy"],
            "test": _without_matrix(metrics),
            "novelty": novelty_report(reference, test),
        }
        model.write().save(f"{output}/model")
        reference.write.parquet(f"{output}/reference")
        storage.write_json(f"{output}/report.json", report)
        if metrics is not None:
            title = (
                f"{eval_split}: accuracy {metrics['accuracy']:.1%}, "
                f"macro-F1 {metrics['macro_f1']:.3f} ({n_test} images)"
            )
            plot = evaluation.plot_confusion(metrics["matrix"], labels, title)
            storage.write_bytes(f"{output}/confusion_matrix.png", plot)
        reference.unpersist()
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
