"""Run the stages in-process on the tests' real Spark, and read what they published."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from fruits import catalog, corpus, featurize, load, pca, train
from fruits.config import IMAGE_SIZE
from fruits.job import JobRun
from fruits.stages import RunPaths


def paths(inputs: Sequence[Path | str], root: Path | str, ds: str) -> RunPaths:
    return RunPaths(tuple(str(i) for i in inputs), str(root), ds)


def job(run_paths: RunPaths, retention_hours: float = 0.0) -> JobRun:
    """A stage execution; superseded runs are deleted at once unless told otherwise."""
    return JobRun.create(run_paths, retention_hours)


def run_stages(
    spark: SparkSession,
    run_paths: RunPaths,
    weights: Path | str,
    stages: Sequence[str] = ("load", "featurize"),
    k: int | None = None,
    variance: float = 0.95,
    full_rescan: bool = False,
    views: bool = False,
    input_size: int = IMAGE_SIZE,
) -> dict[str, dict[str, Any]]:
    """The named stages, in order, as the jobs run them; their reports by name."""
    bodies = {
        "load": lambda: load.run(spark, job(run_paths), full_rescan),
        "featurize": lambda: featurize.run(
            spark, job(run_paths), str(weights), views=views, size=input_size
        ),
        "pca": lambda: pca.run(spark, job(run_paths), k, variance),
        "train": lambda: train.run(spark, job(run_paths)),
    }
    return {name: bodies[name]() for name in stages}


def current_uri(run_paths: RunPaths, dataset: str) -> str:
    run = catalog.current(run_paths.partition(dataset))
    assert run is not None, f"no current {dataset} run for {run_paths.ds}"
    return run.uri


def current(spark: SparkSession, run_paths: RunPaths, dataset: str) -> DataFrame:
    """The date's current rows of a Parquet dataset (images, features, quarantine)."""
    return spark.read.parquet(current_uri(run_paths, dataset))


def publish_corpus(features: DataFrame, run_paths: RunPaths) -> None:
    """Publish feature rows (``image_id, path, label, split, features`` at least) as the
    date's featurized corpus rows, as featurize would."""
    rows = corpus.as_events(features.withColumn("status", F.lit(corpus.FEATURIZED)))
    run = job(run_paths)
    rows.write.parquet(run.output("features"))
    run.publish("features", None, {})
