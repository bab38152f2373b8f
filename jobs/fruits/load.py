"""Stage 1, load: list images with Spark's ``binaryFile`` source and validate each one.

Output (Parquet): ``image_id`` (SHA-256 of the bytes), ``path``, ``label`` (parent folder),
``split``, ``length``, ``modificationTime``, ``format``, ``width``, ``height``, ``mode`` and the
raw ``content``. Files that are not images, or do not decode, go to the quarantine output with
their reason; every listed file ends in exactly one of the two.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from functools import reduce
from operator import or_
from typing import Any

import pandas as pd
from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import IntegerType, StringType, StructField, StructType

from fruits import storage
from fruits.config import IMAGE_EXTENSIONS, IMAGE_GLOB
from fruits.errors import InputError
from fruits.images import ImageRejected, inspect_image, label_from_path, split_from_path
from fruits.reporting import (
    count_by,
    reason_category,
    run_stage,
    stage_parser,
    to_quarantine,
    write_parquet,
)

_INSPECT_SCHEMA = StructType(
    [
        StructField("format", StringType()),
        StructField("width", IntegerType()),
        StructField("height", IntegerType()),
        StructField("mode", StringType()),
        StructField("reason", StringType()),
    ]
)
_PATH_SCHEMA = StructType([StructField("label", StringType()), StructField("split", StringType())])


@F.pandas_udf(_PATH_SCHEMA)
def path_metadata(paths: pd.Series) -> pd.DataFrame:
    """Label (parent folder, kept exactly) and split of each path."""
    return pd.DataFrame(
        {"label": paths.map(label_from_path), "split": paths.map(split_from_path)},
    )


@F.pandas_udf(_INSPECT_SCHEMA)
def inspect_images(contents: pd.Series) -> pd.DataFrame:
    """Decode every image fully; a failure becomes a ``reason`` instead of an exception."""
    rows = []
    for content in contents:
        try:
            info = inspect_image(content)
            rows.append((info.format, info.width, info.height, info.mode, None))
        except ImageRejected as exc:
            rows.append((None, None, None, None, str(exc)))
    frame = pd.DataFrame(rows, columns=["format", "width", "height", "mode", "reason"])
    return frame.astype({"width": "Int32", "height": "Int32"})


def _with_path_metadata(files: DataFrame) -> DataFrame:
    meta = path_metadata("path")
    return files.withColumn("label", meta["label"]).withColumn("split", meta["split"])


def _explain_skipped(files: DataFrame) -> DataFrame:
    """Why a listed file was not read as an image: every such file gets a reason."""
    name = F.element_at(F.split("path", "/"), -1)
    lower_name = F.lower(name)
    extension_ok = reduce(or_, [lower_name.endswith(e) for e in IMAGE_EXTENSIONS])
    reason = (
        F.when(F.col("length") == 0, "empty file (0 bytes)")
        .when(name.rlike(r"^[._]"), "hidden file: names starting with '.' or '_' are not read")
        .when(
            ~extension_ok,
            "unsupported file type: only " + ", ".join(IMAGE_EXTENSIONS) + " are read",
        )
        .otherwise("not returned by Spark's binaryFile reader")
    )
    return (
        _with_path_metadata(files)
        .withColumn("image_id", F.lit(None).cast("string"))
        .withColumn("reason", reason)
    )


def run(
    spark: SparkSession, input_uri: str, output_uri: str, quarantine_uri: str
) -> dict[str, Any]:
    """Load and validate every image under ``input_uri``; return the stage report."""
    if not storage.exists(spark, input_uri):
        raise InputError(f"input not found: {input_uri}")

    listed = spark.createDataFrame(
        storage.list_files(spark, input_uri),
        "path string, length long, modificationTime long",
    ).withColumn("modificationTime", F.timestamp_millis("modificationTime"))
    images = (
        spark.read.format("binaryFile")
        .option("recursiveFileLookup", "true")
        .option("pathGlobFilter", IMAGE_GLOB)
        .load(input_uri)
    )
    images = _with_path_metadata(images).withColumn("image_id", F.sha2("content", 256))
    # Non-deterministic keeps Spark from decoding once per extracted struct field.
    inspect = inspect_images.asNondeterministic()
    checked = (
        images.withColumn("check", inspect("content"))
        .select(
            "image_id",
            "path",
            "label",
            "split",
            "length",
            "modificationTime",
            "check.format",
            "check.width",
            "check.height",
            "check.mode",
            "check.reason",
            "content",
        )
        .persist(StorageLevel.MEMORY_AND_DISK)
    )

    others = _explain_skipped(listed.join(checked.select("path"), "path", "left_anti"))
    good = checked.filter(F.col("reason").isNull()).drop("reason")
    rejected = checked.filter(F.col("reason").isNotNull()).drop("content")
    quarantine = to_quarantine(rejected, "load").unionByName(to_quarantine(others, "load"))
    quarantine = quarantine.persist(StorageLevel.MEMORY_AND_DISK)
    try:
        write_parquet(spark, good, output_uri)
        write_parquet(spark, quarantine, quarantine_uri)
        loaded = spark.read.parquet(output_uri)
        report = {
            "input": input_uri,
            "output": output_uri,
            "quarantine": quarantine_uri,
            "files_seen": listed.count(),
            "images_loaded": loaded.count(),
            "distinct_images": loaded.select("image_id").distinct().count(),
            "quarantined": quarantine.count(),
            "quarantined_by_reason": count_by(quarantine, reason_category()),
            "images_by_label": count_by(loaded, F.col("label")),
            "images_by_split": count_by(loaded, F.coalesce(F.col("split"), F.lit("(none)"))),
        }
    finally:
        checked.unpersist()
        quarantine.unpersist()
    if report["files_seen"] != report["images_loaded"] + report["quarantined"]:
        raise RuntimeError(f"load lost files: {report}")
    return report


def parser() -> argparse.ArgumentParser:
    p = stage_parser("Load and validate images with Spark's binaryFile source.")
    p.add_argument("--quarantine", required=True, help="URI for files set aside, with reasons")
    return p


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    return run_stage(
        "load",
        argv,
        parser(),
        lambda spark, a: run(spark, a.input, a.output, a.quarantine),
    )
