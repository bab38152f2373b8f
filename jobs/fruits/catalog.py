"""Publishing without renaming data: a folder per run, one small pointer per partition.

A stage run writes its output for a partition (``<dataset>/ds=<date>``) once, with Spark's
normal committer, into a folder of its own: ``<partition>/run=<run id>/``. It then makes that
run current by writing ONE small object, ``<partition>/_current.json`` (run id, folder, row
count, schema, details) — a single PUT, atomic on S3. Nothing is ever renamed or copied, so the
cost of publishing does not grow with the data, and a crash at any instant leaves readers on a
complete output: before the pointer is written they read the previous run, after it the new one;
a half-written run folder is never named by a pointer, so no reader sees it.

Superseded and abandoned run folders are deleted after the flip, once older than a retention
period (readers that resolved the old pointer a moment ago can finish), and only when no
pointer of the dataset names them (a date may reuse another date's run).

Every reader resolves a dataset's current data through :func:`current_runs` (or
:func:`read_current` for Spark, :func:`read_current_pandas` for pandas).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from fruits import storage

if TYPE_CHECKING:
    import pandas as pd
    from pyspark.sql import DataFrame, SparkSession

POINTER = "_current.json"
RUN_PREFIX = "run="
DATE_PREFIX = "ds="
_RUN_TIME_FORMAT = "%Y%m%dT%H%M%SZ"


def new_run_id(now: dt.datetime | None = None) -> str:
    """A unique, time-ordered run id: ``20261203T071502Z-1f3a9c0e``."""
    now = now or dt.datetime.now(dt.UTC)
    return f"{now.strftime(_RUN_TIME_FORMAT)}-{uuid.uuid4().hex[:8]}"


def run_time(run_id: str) -> dt.datetime | None:
    """When a run id was made (None for a name this module did not make)."""
    try:
        return dt.datetime.strptime(run_id.split("-", 1)[0], _RUN_TIME_FORMAT).replace(
            tzinfo=dt.UTC
        )
    except ValueError:
        return None


def run_uri(partition: str, run_id: str) -> str:
    """The folder a run writes its output for ``partition`` into."""
    return storage.join(partition, RUN_PREFIX + run_id)


@dataclass(frozen=True)
class Run:
    """What a partition's pointer says: the current run and where its output is."""

    partition: str
    run_id: str
    uri: str
    rows: int | None = None
    written_at: str = ""
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def ds(self) -> str:
        """The date of the partition (``ds=<date>`` segment), '' when there is none."""
        for part in self.partition.split("/"):
            if part.startswith(DATE_PREFIX):
                return part.removeprefix(DATE_PREFIX)
        return ""


def publish(
    partition: str,
    run_id: str,
    *,
    uri: str | None = None,
    rows: int | None = None,
    details: dict[str, Any] | None = None,
) -> Run:
    """Make ``run_id`` current for ``partition``: one small object write, nothing moved.

    ``uri`` is the run's output folder (default :func:`run_uri`); it must be complete before
    this is called. Another partition's run may be named (a reused output).
    """
    run = Run(
        partition=partition.rstrip("/"),
        run_id=run_id,
        uri=uri or run_uri(partition, run_id),
        rows=rows,
        written_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        details=details or {},
    )
    storage.write_json(storage.join(partition, POINTER), asdict(run))
    return run


def current(partition: str) -> Run | None:
    """The partition's current run, None when no run of it was ever published."""
    pointer = storage.join(partition, POINTER)
    try:
        return Run(**storage.read_json(pointer))
    except FileNotFoundError:
        return None


def current_runs(dataset: str, before: str | None = None, until: str | None = None) -> list[Run]:
    """The current run of every date of ``dataset`` (oldest date first); dates with no
    published run are left out. ``before``/``until``: only dates < / <= that one."""
    runs = []
    for name in storage.children(dataset):
        if not name.startswith(DATE_PREFIX):
            continue
        date = name.removeprefix(DATE_PREFIX)
        if (before is not None and date >= before) or (until is not None and date > until):
            continue
        run = current(storage.join(dataset, name))
        if run is not None:
            runs.append(run)
    return runs


def read_current(
    spark: SparkSession,
    dataset: str,
    schema: str,
    before: str | None = None,
    until: str | None = None,
) -> DataFrame:
    """Every date's current rows of a Parquet dataset, with a ``ds`` column (string).

    One scan over the current run folders; the ``schema`` (DDL) is given, so no job infers it
    and dates written before a column existed read with nulls there. Empty when no date has
    been published.
    """
    from pyspark.sql import functions as F

    uris = [run.uri for run in current_runs(dataset, before, until)]
    if not uris:
        return spark.createDataFrame([], f"{schema}, ds string")
    date = F.regexp_extract(F.col("_metadata.file_path"), r"/ds=([^/]+)/run=", 1)
    return spark.read.schema(schema).parquet(*uris).withColumn("ds", date)


def read_current_pandas(dataset: str, columns: Sequence[str] | None = None) -> pd.DataFrame:
    """The same rows as :func:`read_current`, as one pandas DataFrame (no Spark needed)."""
    import pandas as pd
    import pyarrow.parquet as pq

    frames = []
    for run in current_runs(dataset):
        fs, path = storage.filesystem(run.uri)
        table = pq.read_table(path, filesystem=fs, columns=list(columns) if columns else None)
        frames.append(table.to_pandas().assign(ds=run.ds))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=columns)


def cleanup(
    dataset: str,
    partition: str,
    retention: dt.timedelta,
    now: dt.datetime | None = None,
) -> list[str]:
    """Delete the run folders of ``partition`` that no pointer of ``dataset`` names and that
    are older than ``retention``; return the deleted folders. A crash here only leaves a
    folder for the next run to delete."""
    now = now or dt.datetime.now(dt.UTC)
    named = {run.uri.rstrip("/") for run in current_runs(dataset)}
    own = current(partition)
    if own is not None:
        named.add(own.uri.rstrip("/"))
    deleted = []
    for name in storage.children(partition):
        if not name.startswith(RUN_PREFIX):
            continue
        folder = storage.join(partition, name)
        made = run_time(name.removeprefix(RUN_PREFIX))
        if folder in named or made is None or now - made < retention:
            continue
        storage.delete_tree(folder)
        deleted.append(folder)
    return deleted
