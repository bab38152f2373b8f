"""Shared pieces of every stage: argument parsing, quarantine records and the stage report."""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable, Sequence
from typing import Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from fruits import storage
from fruits.errors import InputError

QUARANTINE_COLUMNS = (
    "path",
    "label",
    "split",
    "length",
    "modificationTime",
    "image_id",
    "stage",
    "reason",
)


def stage_parser(description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--input", required=True, help="input URI (local path, file://, s3://)")
    parser.add_argument("--output", required=True, help="output URI (replaced atomically)")
    parser.add_argument("--report", help="URI of this stage's JSON report")
    return parser


def reason_category(reason_col: str = "reason"):
    """The reason's text before the first ':' ("corrupt image data (JPEG): …" → category)."""
    return F.trim(F.split(F.col(reason_col), ":").getItem(0))


def to_quarantine(df: DataFrame, stage: str) -> DataFrame:
    """Quarantine records in one shape, whatever stage set the files aside."""
    return df.withColumn("stage", F.lit(stage)).select(*QUARANTINE_COLUMNS)


def count_by(df: DataFrame, column) -> dict[str, int]:
    rows = df.groupBy(column.alias("key")).count().collect()
    return {str(row.key): int(row["count"]) for row in sorted(rows, key=lambda r: str(r.key))}


def write_parquet(spark: SparkSession, df: DataFrame, target: str) -> None:
    """Write ``df`` as Parquet to ``target`` through a staging folder (see storage.publish)."""
    with storage.staged(spark, target) as staging:
        df.write.mode("overwrite").parquet(staging)


def run_stage(
    name: str,
    argv: Sequence[str] | None,
    parser: argparse.ArgumentParser,
    body: Callable[[SparkSession, argparse.Namespace], dict[str, Any]],
) -> dict[str, Any]:
    """Parse args, run ``body`` on a session, write and print its report; exit 2 on bad input."""
    from fruits.spark import get_spark

    args = parser.parse_args(argv)
    spark = get_spark(f"fruits-{name}")
    started = time.time()
    try:
        report = body(spark, args)
    except InputError as exc:
        parser.exit(2, f"fruits {name}: error: {exc}\n")
    report = {"stage": name, "seconds": round(time.time() - started, 2), **report}
    if args.report:
        storage.write_json(spark, args.report, report)
    print(f"fruits {name} report: " + json.dumps(report, ensure_ascii=False, default=str))
    return report
