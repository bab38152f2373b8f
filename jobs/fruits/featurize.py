"""Stage 2, featurize: MobileNetV2 (ImageNet) features for the day's loaded images.

The driver loads the network once and broadcasts its weight arrays
(``SparkContext.broadcast``); each executor Python worker rebuilds the network once, caches it
for all later batches and tasks, and runs batched inference in an iterator pandas UDF (Arrow).
Content featurized before with the same weights (any date, any path) is reused, not
recomputed; identical images of the day are featurized once.

Input: the date's current ``images`` run (the load stage's events). Output: the date's
``features`` run — one row per event path (``fruits.corpus.FEATURES_SCHEMA``): ``featurized``
with its 1280 float32 features, or the status and reason it was set aside or deleted with — and
the date's ``quarantine`` run (the rows set aside, by either stage). A day with nothing loaded
builds no network at all. Arrow batches are sized by bytes, so phone photos of several MB do
not put hundreds of files into one Python worker at once.
"""

from __future__ import annotations

import argparse
import importlib
import math
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
import pandas as pd
from pyspark import Accumulator, SparkContext, StorageLevel
from pyspark.broadcast import Broadcast
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import ArrayType, FloatType, StringType, StructField, StructType

from fruits import catalog, corpus, job, storage, validation
from fruits.augmentation import decode_training_views, decode_views
from fruits.config import (
    ARROW_BATCH_MAX_BYTES,
    ARROW_BATCH_ROWS,
    DEFAULT_WEIGHTS,
    IMAGE_SIZE,
    INFERENCE_BATCH_SIZE,
    INPUT_SIZE_STEP,
    ROWS_PER_TASK,
    TEST_VIEWS,
    TRAINING_VIEWS,
)
from fruits.errors import InputError
from fruits.images import ImageRejected, decode_for_model
from fruits.model import (
    configure_tensorflow,
    extract_features,
    input_area,
    load_network,
    model_id,
    network_from_arrays,
)
from fruits.reporting import Phases, reason_category, sum_counts
from fruits.spark import struct_pandas_udf
from fruits.stages import RunPaths

if TYPE_CHECKING:
    from pyspark.sql._typing import UserDefinedFunctionLike

_FEATURES_SCHEMA = StructType(
    [
        StructField("features", ArrayType(FloatType())),
        StructField("view_features", ArrayType(ArrayType(FloatType()))),
        StructField("reason", StringType()),
    ]
)
# Which extra views an image gets (--views): by its split, see view_kind.
TRAIN_KIND, HELD_OUT_KIND, NO_VIEWS = "train", "held-out", "none"

# Per Python worker process: broadcast key → rebuilt network. Lives in this module (imported by
# the worker), so it outlives batches and tasks for as long as Spark reuses the worker.
_NETWORKS: dict[str, Any] = {}


@dataclass(frozen=True)
class WorkerCounters:
    """Spark accumulators the Python workers add to; the driver reads them after the job."""

    networks_built: Accumulator[int]
    arrow_batches: Accumulator[int]
    build_seconds: Accumulator[float]
    decode_seconds: Accumulator[float]
    inference_seconds: Accumulator[float]

    @classmethod
    def create(cls, sc: SparkContext) -> WorkerCounters:
        counts = (sc.accumulator(0), sc.accumulator(0))
        seconds = (sc.accumulator(0.0), sc.accumulator(0.0), sc.accumulator(0.0))
        return cls(*counts, *seconds)

    def values(self) -> dict[str, float]:
        return {f.name: round(getattr(self, f.name).value, 2) for f in fields(self)}


def network_for(
    weights: Broadcast[list[npt.NDArray[Any]]],
    key: str,
    size: int,
    tf_threads: int,
    counters: WorkerCounters,
) -> Any:
    """This worker's network for ``weights`` (named ``key``) and ``size×size`` inputs, built on
    first use only."""
    network = _NETWORKS.get(key)
    if network is None:
        started = time.perf_counter()
        configure_tensorflow(tf_threads)
        network = network_from_arrays(weights.value, size)
        _NETWORKS.clear()
        _NETWORKS[key] = network
        counters.networks_built.add(1)
        counters.build_seconds.add(time.perf_counter() - started)
    return network


def decode_with_views(
    content: bytes, image_id: str, kind: str, size: int = IMAGE_SIZE
) -> npt.NDArray[np.float32]:
    """``n×size×size×3``: the image (view 0), then its extra views for ``kind``: training views
    (:data:`TRAINING_VIEWS`), test-time views (:data:`TEST_VIEWS` - 1) or none."""
    if kind == TRAIN_KIND:
        extra = decode_training_views(content, image_id, TRAINING_VIEWS, size)
        return np.concatenate([decode_for_model(content, size)[None], extra])
    if kind == HELD_OUT_KIND:
        return decode_views(content, TEST_VIEWS, size)
    return decode_for_model(content, size)[None]


def featurize_batch(
    network: Any,
    contents: pd.Series,
    image_ids: pd.Series,
    kinds: pd.Series,
    batch_size: int,
    counters: WorkerCounters,
    size: int = IMAGE_SIZE,
) -> pd.DataFrame:
    """Features for one Arrow batch (and the extra views of ``kinds``, see
    :func:`decode_with_views`); undecodable images get a reason and no features."""
    started = time.perf_counter()
    arrays: list[npt.NDArray[np.float32] | None] = []
    reasons: list[str | None] = []
    for content, image_id, kind in zip(contents, image_ids, kinds, strict=True):
        try:
            arrays.append(decode_with_views(content, image_id, kind, size))
            reasons.append(None)
        except ImageRejected as exc:
            arrays.append(None)
            reasons.append(str(exc))
    decoded = [a for a in arrays if a is not None]
    inference_started = time.perf_counter()
    vectors = extract_features(network, np.concatenate(decoded), batch_size) if decoded else None
    counters.arrow_batches.add(1)
    counters.decode_seconds.add(inference_started - started)
    counters.inference_seconds.add(time.perf_counter() - inference_started)
    features: list[npt.NDArray[np.float32] | None] = []
    views: list[list[npt.NDArray[np.float32]] | None] = []
    at = 0
    for array in arrays:
        if array is None or vectors is None:
            features.append(None)
            views.append(None)
            continue
        rows = vectors[at : at + len(array)]
        at += len(array)
        features.append(rows[0])
        views.append(list(rows[1:]) if len(rows) > 1 else None)
    return pd.DataFrame({"features": features, "view_features": views, "reason": reasons})


def make_featurize_udf(
    weights: Broadcast[list[npt.NDArray[Any]]],
    size: int,
    tf_threads: int,
    batch_size: int,
    counters: WorkerCounters,
) -> UserDefinedFunctionLike:
    """The iterator pandas UDF: (bytes, image id, view kind) → struct<features, view_features,
    reason>, for ``size×size`` network inputs."""
    key = uuid.uuid4().hex  # names this broadcast in the workers' cache

    @struct_pandas_udf(_FEATURES_SCHEMA)
    def featurize(
        batches: Iterator[tuple[pd.Series, pd.Series, pd.Series]],
    ) -> Iterator[pd.DataFrame]:
        network = network_for(weights, key, size, tf_threads, counters)
        for contents, image_ids, kinds in batches:
            yield featurize_batch(network, contents, image_ids, kinds, batch_size, counters, size)

    # Non-deterministic keeps Spark from evaluating the UDF once per extracted struct field.
    return featurize.asNondeterministic()


def task_count(n_images: int, cores: int) -> int:
    """Featurize tasks: at least two per core (balance), at most ROWS_PER_TASK images each."""
    return max(2 * cores, math.ceil(n_images / ROWS_PER_TASK))


def arrow_batch_rows(mean_bytes: float) -> int:
    """Rows per Arrow batch so one batch carries at most ARROW_BATCH_MAX_BYTES of encoded
    images (never more than ARROW_BATCH_ROWS, never fewer than one)."""
    if mean_bytes <= 0:
        return ARROW_BATCH_ROWS
    return int(max(1, min(ARROW_BATCH_ROWS, ARROW_BATCH_MAX_BYTES // mean_bytes)))


# The vectors of one content: the image's, and its extra views' (null without --views).
VECTORS_SCHEMA = (
    "image_id string, kind string, features array<float>, view_features array<array<float>>"
)


def view_kind(views: bool) -> Column:
    """Which extra views a row's image gets: training views in the ``Training`` split, test-time
    views elsewhere; none at all without ``views``."""
    if not views:
        return F.lit(NO_VIEWS)
    return F.when(F.col("split") == "Training", TRAIN_KIND).otherwise(HELD_OUT_KIND)


def known_vectors(spark: SparkSession, paths: RunPaths, model: str, views: bool) -> DataFrame:
    """``image_id, kind, features, view_features`` already computed with these weights (and
    views), on any date, an image possibly several times (lazy: the features are read only
    where they are used)."""
    known = corpus.events(spark, paths).filter(
        (F.col("status") == corpus.FEATURIZED) & (F.col("model_id") == model)
    )
    return known.withColumn("kind", view_kind(views)).select(*corpus.columns(VECTORS_SCHEMA))


class Progress:
    """Prints how far the featurize job is, every ``every_s`` seconds after ``after_s``."""

    def __init__(self, sc: SparkContext, total: int, after_s: float = 60, every_s: float = 30):
        self._sc, self._total, self._after, self._every = sc, total, after_s, every_s
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def __enter__(self) -> Progress:
        self._started = time.monotonic()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()

    def _watch(self) -> None:
        if self._done.wait(self._after):
            return
        tracker = self._sc.statusTracker()
        while not self._done.is_set():
            stages = [tracker.getStageInfo(s) for s in tracker.getActiveStageIds()]
            done = sum(s.numCompletedTasks for s in stages if s)
            tasks = sum(s.numTasks for s in stages if s)
            elapsed = time.monotonic() - self._started
            print(
                f"fruits featurize: {self._total} images to compute, tasks {done}/{tasks} "
                f"done after {elapsed:.0f} s",
                flush=True,
            )
            self._done.wait(self._every)


def run(
    spark: SparkSession,
    run: job.JobRun,
    weights: str = DEFAULT_WEIGHTS,
    batch_size: int = INFERENCE_BATCH_SIZE,
    tf_threads: int | None = None,
    views: bool = False,
    size: int = IMAGE_SIZE,
) -> dict[str, Any]:
    """Featurize the date's loaded images at ``size×size`` (``views``: and their extra views,
    see :func:`decode_with_views`); publish its features and quarantine; the report."""
    validation.weights(weights)
    validation.input_size(size)
    images = catalog.current(run.paths.partition("images"))
    if images is None:
        raise InputError(f"no images for {run.paths.ds} under {run.paths.root} (run load first)")
    day = spark.read.schema(corpus.IMAGES_SCHEMA).parquet(images.uri)
    day = day.withColumn("kind", view_kind(views))  # which views each image gets
    loaded = day.filter(F.col("status") == corpus.LOADED)
    reported = images.details.get("report", {}).get("loaded")  # load counted them: no job
    n_loaded = int(reported) if reported is not None else loaded.count()
    phase = Phases()
    vectors, facts = _vectors(
        spark, run, loaded, n_loaded, weights, batch_size, tf_threads, views, size, phase
    )

    events = day.drop("content", "format", "width", "height", "mode")
    joined = events.join(vectors, ["image_id", "kind"], "left")
    is_loaded = F.col("status") == corpus.LOADED
    featurized = is_loaded & F.col("features").isNotNull()
    rows = joined.select(
        "*",
        F.when(featurized, corpus.FEATURIZED)
        .when(is_loaded, corpus.QUARANTINED)
        .otherwise(F.col("status"))
        .alias("new_status"),
        F.when(is_loaded, "featurize").otherwise(F.col("stage")).alias("new_stage"),
        F.when(is_loaded, F.col("vector_reason")).otherwise(F.col("reason")).alias("new_reason"),
        F.when(featurized, F.lit(facts.get("model_id")).cast("string")).alias("model_id"),
    )
    rows = rows.drop("status", "stage", "reason").select(
        *[
            F.col(f"new_{c}").alias(c) if c in ("status", "stage", "reason") else F.col(c)
            for c in corpus.columns(corpus.FEATURES_SCHEMA)
        ]
    )
    features_out, quarantine_out = run.output("features"), run.output("quarantine")
    with phase("write features"):
        rows.write.parquet(features_out)
    written = spark.read.parquet(features_out).drop("features", "view_features")
    set_aside = written.filter(F.col("status").isin(corpus.QUARANTINED, corpus.SKIPPED))
    with phase("write quarantine, count"):
        set_aside.write.parquet(quarantine_out)
        tally = written.groupBy("status", "stage", reason_category().alias("why")).count().collect()
    statuses = sum_counts(tally, lambda r: r.status)
    report = {
        "images": images.uri,
        "weights": weights,
        "loaded_in": n_loaded,
        "events": sum(statuses.values()),
        "featurized": statuses.get(corpus.FEATURIZED, 0),
        "quarantined": statuses.get(corpus.QUARANTINED, 0),
        "skipped": statuses.get(corpus.SKIPPED, 0),
        "deleted": statuses.get(corpus.DELETED, 0),
        "quarantined_here": sum(
            r["count"] for r in tally if (r.status, r.stage) == (corpus.QUARANTINED, "featurize")
        ),
        "set_aside_by_reason": sum_counts(
            [r for r in tally if r.status in (corpus.QUARANTINED, corpus.SKIPPED)], lambda r: r.why
        ),
        **facts,
        "phase_seconds": phase.seconds,
    }
    featurized_or_refused = report["featurized"] + report["quarantined_here"]
    if featurized_or_refused != n_loaded:
        raise RuntimeError(f"featurize lost images: {report}")
    brief = {k: report[k] for k in ("featurized", "quarantined", "skipped", "deleted")}
    run.publish("features", report["events"], {"report": brief})
    run.publish("quarantine", report["quarantined"] + report["skipped"], {})
    return report


def _vectors(
    spark: SparkSession,
    run: job.JobRun,
    loaded: DataFrame,
    n_loaded: int,
    weights: str,
    batch_size: int,
    tf_threads: int | None,
    views: bool,
    size: int,
    phase: Phases,
) -> tuple[DataFrame, dict[str, Any]]:
    """(``image_id, kind, features, view_features, vector_reason`` for the loaded images,
    report facts)."""
    empty = spark.createDataFrame([], VECTORS_SCHEMA + ", vector_reason string")
    if n_loaded == 0:  # nothing new today: no network, no broadcast, no job
        return empty, {"computed": 0, "reused": 0, "networks_built": 0}
    sc = spark.sparkContext
    tf_threads = tf_threads or int(sc.getConf().get("spark.task.cpus", "1"))
    with phase("load weights"):
        network = load_network(weights, read_bytes=storage.read_bytes)
        weight_arrays: list[npt.NDArray[Any]] = network.get_weights()
        model = model_id(weight_arrays, size, views)
    # Which of today's contents have a vector: image ids only (no feature is read for this).
    known = known_vectors(spark, run.paths, model, views)
    keys = ["image_id", "kind"]
    todays = loaded.select(*keys, "content", "length").dropDuplicates(keys)
    marked = todays.join(
        known.select(*keys).distinct().withColumn("known", F.lit(True)), keys, "left"
    ).cache()
    new = F.col("known").isNull()
    with phase("find known vectors"):
        totals = marked.agg(
            F.count(F.when(new, 1)), F.avg(F.when(new, F.col("length"))), F.count("known")
        ).first()
    if totals is None:
        raise RuntimeError("a global aggregation returned no row")
    n_todo, mean_bytes, n_known = totals
    todo = marked.filter(new).drop("known")
    reused = (  # read only when some of today's contents were featurized before
        known.join(todays.select(*keys), keys, "left_semi").dropDuplicates(keys)
        if n_known
        else spark.createDataFrame([], VECTORS_SCHEMA)
    )
    # Each row decodes to 1 array, or up to TEST_VIEWS with views, of size² pixels: a batch's
    # decoded arrays stay within what as many single 224×224 arrays would take.
    arrays_per_row = (TEST_VIEWS if views else 1) * math.ceil(input_area(size))
    rows_per_batch = max(1, arrow_batch_rows(float(mean_bytes or 0)) // arrays_per_row)
    spark.conf.set("spark.sql.execution.arrow.maxRecordsPerBatch", str(rows_per_batch))
    broadcast = sc.broadcast(weight_arrays)
    counters = WorkerCounters.create(sc)
    featurize = make_featurize_udf(broadcast, size, tf_threads, batch_size, counters)
    computed = (
        todo.repartition(task_count(n_todo, sc.defaultParallelism))  # round-robin: equal tasks
        .withColumn("result", featurize("content", "image_id", "kind"))
        .select(
            *keys,
            "result.features",
            "result.view_features",
            F.col("result.reason").alias("vector_reason"),
        )
        .persist(StorageLevel.MEMORY_AND_DISK)
    )
    try:
        with Progress(sc, n_todo), phase("compute"):
            n_computed = computed.count()
    finally:
        marked.unpersist()
        broadcast.unpersist()
    vectors = computed.unionByName(reused.withColumn("vector_reason", F.lit(None).cast("string")))
    n_reused = n_loaded - n_computed  # loaded rows whose content was known or a duplicate
    facts = {
        "model_id": model,
        "views": views,
        "input_size": size,
        "computed": n_computed,
        "reused": n_reused,
        "arrow_batch_rows": rows_per_batch,
        "broadcast_bytes": int(sum(a.nbytes for a in weight_arrays)),
        **counters.values(),
    }
    return vectors, facts


def parser() -> argparse.ArgumentParser:
    p = job.parser("MobileNetV2 features with broadcast weights and a pandas UDF.")
    p.add_argument(
        "--weights",
        default=DEFAULT_WEIGHTS,
        help="'imagenet' (Keras download), a local .weights.h5/.h5 path or an s3:// URI",
    )
    p.add_argument("--batch-size", type=int, default=INFERENCE_BATCH_SIZE)
    p.add_argument("--tf-threads", type=int, help="TensorFlow threads per worker")
    p.add_argument(
        "--views",
        action="store_true",
        help=f"also compute {TRAINING_VIEWS} augmented views of each training image and "
        f"{TEST_VIEWS - 1} test-time views of each held-out one (for train)",
    )
    p.add_argument(
        "--input-size",
        type=int,
        default=IMAGE_SIZE,
        help=f"side of the network's square input, a multiple of {INPUT_SIZE_STEP} "
        f"(default {IMAGE_SIZE}; 416 is more accurate on phone photos, see docs/classifier.md)",
    )
    return p


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    # Import Keras (seconds) while Spark starts: the driver needs it to load the weights.
    threading.Thread(target=importlib.import_module, args=("keras",), daemon=True).start()
    return job.run_job(
        "featurize",
        argv,
        parser(),
        lambda spark, run_, a: run(
            spark, run_, a.weights, a.batch_size, a.tf_threads, a.views, a.input_size
        ),
    )
