"""Counting for the stage reports."""

from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F


def reason_category(reason_col: str = "reason") -> Column:
    """The reason's text before the first ':' ("corrupt image data (JPEG): …" → category)."""
    return F.trim(F.split(F.col(reason_col), ":").getItem(0))


def count_by(df: DataFrame, column: Column) -> dict[str, int]:
    """Rows per value of ``column``, sorted by value (one Spark job)."""
    rows = df.groupBy(column.alias("key")).count().collect()
    return {str(row.key): int(row["count"]) for row in sorted(rows, key=lambda r: str(r.key))}
