"""The corpus: every file the pipeline has seen, as the latest event of its path.

Each date's ``features`` partition holds one row per path that was new, changed, deleted or set
aside that day (the *events*), with its status. The corpus as of a date is the latest event of
every path over the earlier dates; what the model learns from is the subset whose latest event
is ``featurized``. So a changed file replaces its old vector, a deleted file stops counting, and
a file that turns bad is dropped — with no rewrite of earlier dates.
"""

from __future__ import annotations

from collections.abc import Sequence

from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from fruits import catalog
from fruits.errors import InputError
from fruits.stages import RunPaths

# Statuses of a path's event.
LOADED = "loaded"  # images only: decoded at load, bytes kept for featurize
FEATURIZED = "featurized"
QUARANTINED = "quarantined"  # read and refused, with a reason
SKIPPED = "skipped"  # never read by design (symbolic link, special file, mapping file)
DELETED = "deleted"  # gone from the input since it was last seen

# Columns every event row has (images and features datasets alike).
EVENT_SCHEMA = (
    "path string, source string, source_root string, class_path string, label string, "
    "split string, image_id string, length long, modificationTime timestamp, "
    "status string, stage string, reason string"
)
IMAGES_SCHEMA = f"{EVENT_SCHEMA}, format string, width int, height int, mode string, content binary"
# view_features: the image's extra views (featurize --views; null without), view 1 first.
FEATURES_SCHEMA = (
    f"{EVENT_SCHEMA}, features array<float>, model_id string, view_features array<array<float>>"
)


def columns(schema: str) -> list[str]:
    """The column names of a DDL schema string, in order."""
    return [field.split()[0] for field in schema.split(", ")]


def as_events(rows: DataFrame, schema: str = FEATURES_SCHEMA) -> DataFrame:
    """``rows`` in the dataset's column order, the columns it lacks added as typed nulls (to
    publish features computed elsewhere as a corpus, e.g. in tests and benchmarks)."""
    for name, kind in (field.split() for field in schema.split(", ")):
        if name not in rows.columns:
            rows = rows.withColumn(name, F.lit(None).cast(kind))
    return rows.select(*columns(schema))


def latest_per_path(events: DataFrame) -> DataFrame:
    """The latest event of each path (by ``ds``; dates are ISO strings, so they sort)."""
    newest_first = Window.partitionBy("path").orderBy(F.col("ds").desc())
    return (
        events.withColumn("_rank", F.row_number().over(newest_first))
        .filter(F.col("_rank") == 1)
        .drop("_rank")
    )


def events(
    spark: SparkSession, paths: RunPaths, before: str | None = None, until: str | None = None
) -> DataFrame:
    """Every date's current feature events (with ``ds``): only dates < ``before`` / <=
    ``until`` when given."""
    return catalog.read_current(spark, paths.dataset("features"), FEATURES_SCHEMA, before, until)


def state_before(spark: SparkSession, paths: RunPaths) -> DataFrame:
    """The corpus as the run of ``paths.ds`` finds it: latest event per path of earlier dates."""
    columns = ("path", "source_root", "length", "modificationTime", "status", "image_id", "ds")
    return latest_per_path(events(spark, paths, before=paths.ds).select(*columns))


def with_views(features: DataFrame) -> DataFrame:
    """One row per view: the image's (``view`` 0, ``features``), then one per vector of its
    ``view_features`` (``view`` 1, 2, …, the vector as ``features``)."""
    rest = [c for c in features.columns if c not in ("features", "view_features")]
    images = features.select(*rest, "features", F.lit(0).alias("view"))
    extra = features.select(*rest, F.posexplode("view_features").alias("position", "features"))
    views = extra.select(*rest, "features", (F.col("position") + 1).alias("view"))
    return images.unionByName(views)


def current_features(spark: SparkSession, paths: RunPaths) -> DataFrame:
    """What pca and train learn from: every path whose latest event up to the run's date is
    featurized (a backfilled date sees the corpus as it was then)."""
    latest = latest_per_path(events(spark, paths, until=paths.ds))
    return latest.filter(F.col("status") == FEATURIZED).drop("status", "reason", "stage")


def one_network(features: DataFrame, models: Sequence[str]) -> str | None:
    """The model id every feature vector of ``features`` was computed with, given the distinct
    ``models`` an aggregation found (None: no rows).

    Features of two networks (other weights, input size or views) do not share a space: a
    corpus mixing them — a run changed the network while earlier dates' images kept their
    vectors — is refused with what to do, instead of fitting a meaningless model (their counts
    are read for the message only).
    """
    if len(models) > 1:
        counts = {r.model_id: r["count"] for r in features.groupBy("model_id").count().collect()}
        found = ", ".join(f"{m}: {n} vectors" for m, n in sorted(counts.items()))
        raise InputError(
            f"the corpus holds features of {len(counts)} networks ({found}): the weights, input "
            "size or views changed after earlier dates were featurized; run this date again "
            "with full_rescan (--full-rescan) so that featurize computes every image alike"
        )
    return models[0] if models else None
