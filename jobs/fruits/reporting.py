"""Counting for the stage reports."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from pyspark.sql import Column, DataFrame, Row
from pyspark.sql import functions as F


class Phases:
    """Wall seconds per named phase of a stage, for its report (``phase_seconds``)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = round(time.perf_counter() - started, 2)


def reason_category(reason_col: str = "reason") -> Column:
    """The reason's text before the first ':' ("corrupt image data (JPEG): …" → category)."""
    return F.trim(F.split(F.col(reason_col), ":").getItem(0))


def count_by(df: DataFrame, column: Column) -> dict[str, int]:
    """Rows per value of ``column``, sorted by value (one Spark job)."""
    rows = df.groupBy(column.alias("key")).count().collect()
    return {str(row.key): int(row["count"]) for row in sorted(rows, key=lambda r: str(r.key))}


def sum_counts(rows: list[Row], key: Callable[[Row], Any]) -> dict[str, int]:
    """Rows of a ``groupBy(...).count()`` summed by ``key`` (one grouping, several views of
    it, no further Spark job), sorted by key."""
    out: dict[str, int] = {}
    for row in rows:
        out[str(key(row))] = out.get(str(key(row)), 0) + int(row["count"])
    return dict(sorted(out.items()))
