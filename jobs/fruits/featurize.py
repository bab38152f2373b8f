"""Stage 2, featurize: MobileNetV2 (ImageNet) features for every loaded image.

The driver loads the network once and broadcasts its weight arrays
(``SparkContext.broadcast``); each executor Python worker rebuilds the network once, caches it
for all later batches and tasks, and runs batched inference in an iterator pandas UDF (Arrow).
Identical images (same ``image_id``) are featurized once and joined back to every path.

Output (Parquet): ``image_id, path, label, split, features`` (1280 float32).
Images that fail to decode here go to the quarantine output with their reason.
"""

from __future__ import annotations

import argparse
import math
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, fields
from functools import partial
from typing import Any

import numpy as np
import pandas as pd
from pyspark import Accumulator, SparkContext, StorageLevel
from pyspark.broadcast import Broadcast
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import ArrayType, FloatType, StringType, StructField, StructType

from fruits import storage
from fruits.config import DEFAULT_WEIGHTS, INFERENCE_BATCH_SIZE, ROWS_PER_TASK
from fruits.errors import InputError
from fruits.images import ImageRejected, decode_for_model
from fruits.model import configure_tensorflow, extract_features, load_network, network_from_arrays
from fruits.reporting import (
    count_by,
    reason_category,
    run_stage,
    stage_parser,
    to_quarantine,
    write_parquet,
)

_FEATURES_SCHEMA = StructType(
    [StructField("features", ArrayType(FloatType())), StructField("reason", StringType())]
)

# Per Python worker process: broadcast key → rebuilt network. Lives in this module (imported by
# the worker), so it outlives batches and tasks for as long as Spark reuses the worker.
_NETWORKS: dict[str, Any] = {}


@dataclass(frozen=True)
class WorkerCounters:
    """Spark accumulators the Python workers add to; the driver reads them after the job."""

    networks_built: Accumulator
    arrow_batches: Accumulator
    build_seconds: Accumulator
    decode_seconds: Accumulator
    inference_seconds: Accumulator

    @classmethod
    def create(cls, sc: SparkContext) -> WorkerCounters:
        counts = (sc.accumulator(0), sc.accumulator(0))
        seconds = (sc.accumulator(0.0), sc.accumulator(0.0), sc.accumulator(0.0))
        return cls(*counts, *seconds)

    def values(self) -> dict[str, float]:
        return {f.name: round(getattr(self, f.name).value, 2) for f in fields(self)}


def network_for(weights: Broadcast, key: str, tf_threads: int, counters: WorkerCounters) -> Any:
    """This worker's network for ``weights`` (named ``key``), built on first use only."""
    network = _NETWORKS.get(key)
    if network is None:
        started = time.perf_counter()
        configure_tensorflow(tf_threads)
        network = network_from_arrays(weights.value)
        _NETWORKS.clear()
        _NETWORKS[key] = network
        counters.networks_built.add(1)
        counters.build_seconds.add(time.perf_counter() - started)
    return network


def featurize_batch(
    network: Any, contents: pd.Series, batch_size: int, counters: WorkerCounters | None = None
) -> pd.DataFrame:
    """Features for one Arrow batch; undecodable images get a reason and no features."""
    started = time.perf_counter()
    arrays, reasons = [], []
    for content in contents:
        try:
            arrays.append(decode_for_model(content))
            reasons.append(None)
        except ImageRejected as exc:
            arrays.append(None)
            reasons.append(str(exc))
    decoded = [a for a in arrays if a is not None]
    inference_started = time.perf_counter()
    features = iter(extract_features(network, np.stack(decoded), batch_size) if decoded else [])
    if counters is not None:
        counters.arrow_batches.add(1)
        counters.decode_seconds.add(inference_started - started)
        counters.inference_seconds.add(time.perf_counter() - inference_started)
    return pd.DataFrame(
        {
            "features": [next(features) if a is not None else None for a in arrays],
            "reason": reasons,
        }
    )


def make_featurize_udf(
    weights: Broadcast, tf_threads: int, batch_size: int, counters: WorkerCounters
):
    """The iterator pandas UDF: bytes → struct<features, reason>."""
    key = uuid.uuid4().hex  # names this broadcast in the workers' cache

    @F.pandas_udf(_FEATURES_SCHEMA)
    def featurize(contents: Iterator[pd.Series]) -> Iterator[pd.DataFrame]:
        network = network_for(weights, key, tf_threads, counters)
        for batch in contents:
            yield featurize_batch(network, batch, batch_size, counters)

    # Non-deterministic keeps Spark from evaluating the UDF once per extracted struct field.
    return featurize.asNondeterministic()


def task_count(n_images: int, cores: int) -> int:
    """Featurize tasks: at least two per core (balance), at most ROWS_PER_TASK images each."""
    return max(2 * cores, math.ceil(n_images / ROWS_PER_TASK))


def known_vectors(spark: SparkSession, known_uri: str | None, ds: str | None) -> DataFrame:
    """Rows featurized by runs of other dates (``image_id, path, features``); empty if none.

    The run's own date is left out, so rerunning a date recomputes it.
    """
    schema = "image_id string, path string, features array<float>"
    if not known_uri or not storage.exists(spark, known_uri):
        return spark.createDataFrame([], schema)
    known = spark.read.parquet(known_uri)
    if ds is not None and "ds" in known.columns:
        known = known.filter(F.col("ds").cast("string") != ds)
    return known.select("image_id", "path", "features")


def run(
    spark: SparkSession,
    input_uri: str,
    output_uri: str,
    quarantine_uri: str,
    weights: str = DEFAULT_WEIGHTS,
    batch_size: int = INFERENCE_BATCH_SIZE,
    tf_threads: int | None = None,
    known_uri: str | None = None,
    ds: str | None = None,
) -> dict[str, Any]:
    """Featurize the load stage's output; return the stage report.

    With ``known_uri`` (the features root of earlier runs) only new rows are written: a path
    already featurized with the same content is skipped, and content featurized before is
    reused instead of recomputed.
    """
    if not storage.exists(spark, input_uri):
        raise InputError(f"input not found: {input_uri} (run the load stage first)")
    sc = spark.sparkContext
    tf_threads = tf_threads or int(sc.getConf().get("spark.task.cpus", "1"))

    network = load_network(weights, read_bytes=partial(storage.read_bytes, spark))
    weight_arrays = network.get_weights()
    broadcast = sc.broadcast(weight_arrays)
    counters = WorkerCounters.create(sc)
    featurize = make_featurize_udf(broadcast, tf_threads, batch_size, counters)

    loaded = spark.read.parquet(input_uri)
    known = known_vectors(spark, known_uri, ds)
    images = loaded.join(known.select("image_id", "path"), ["image_id", "path"], "left_anti")
    reused = known.select("image_id", "features").dropDuplicates(["image_id"])
    n_loaded = loaded.count()
    partitions = task_count(n_loaded, sc.defaultParallelism)
    computed = (
        images.select("image_id", "content")
        .join(reused.select("image_id"), "image_id", "left_anti")
        .dropDuplicates(["image_id"])
        .repartition(partitions)  # round-robin: equal tasks, so no core idles at the end
        .withColumn("result", featurize("content"))
        .select("image_id", "result.features", "result.reason")
        .persist(StorageLevel.MEMORY_AND_DISK)
    )
    vectors = computed.unionByName(reused.withColumn("reason", F.lit(None).cast("string")))
    try:
        rows = images.drop("content").join(vectors, "image_id")
        good = rows.filter(F.col("reason").isNull()).select(
            "image_id", "path", "label", "split", "features"
        )
        failed = to_quarantine(rows.filter(F.col("reason").isNotNull()), "featurize")
        write_parquet(spark, good, output_uri)
        write_parquet(spark, failed, quarantine_uri)
        featurized = spark.read.parquet(output_uri)
        quarantined = spark.read.parquet(quarantine_uri)
        report = {
            "input": input_uri,
            "output": output_uri,
            "quarantine": quarantine_uri,
            "weights": weights,
            "images_in": n_loaded,
            "already_featurized": n_loaded - images.count(),
            "distinct_images": loaded.select("image_id").distinct().count(),
            "computed": computed.count(),
            "featurized": featurized.count(),
            "quarantined": quarantined.count(),
            "quarantined_by_reason": count_by(quarantined, reason_category()),
            "broadcast_bytes": int(sum(a.nbytes for a in weight_arrays)),
            **counters.values(),
        }
    finally:
        computed.unpersist()
        broadcast.unpersist()
    accounted = report["already_featurized"] + report["featurized"] + report["quarantined"]
    if report["images_in"] != accounted:
        raise RuntimeError(f"featurize lost images: {report}")
    return report


def parser() -> argparse.ArgumentParser:
    p = stage_parser("MobileNetV2 features with broadcast weights and a pandas UDF.")
    p.add_argument("--quarantine", required=True, help="URI for images that failed to decode")
    p.add_argument(
        "--weights",
        default=DEFAULT_WEIGHTS,
        help="'imagenet' (Keras download), a local .weights.h5/.h5 path or an s3:// URI",
    )
    p.add_argument("--batch-size", type=int, default=INFERENCE_BATCH_SIZE)
    p.add_argument("--tf-threads", type=int, help="TensorFlow threads per worker")
    p.add_argument(
        "--known-features",
        help="features root of earlier runs: rows featurized there are skipped or reused",
    )
    p.add_argument("--ds", help="this run's logical date: its own partition is not 'known'")
    return p


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    return run_stage(
        "featurize",
        argv,
        parser(),
        lambda spark, a: run(
            spark,
            a.input,
            a.output,
            a.quarantine,
            a.weights,
            a.batch_size,
            a.tf_threads,
            a.known_features,
            a.ds,
        ),
    )
