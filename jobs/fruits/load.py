"""Stage 1, load: find the day's new, changed and deleted files; read and validate the new ones.

1. List every input root (one per source) as it is — no glob, no link followed
   (:mod:`fruits.listing`), one call per root.
2. Compare the listing (path, size, modification time) with the corpus as earlier dates left it
   (:func:`fruits.corpus.state_before`): each file is *new*, *changed* or *unchanged*; a known
   file no longer listed is *deleted*. ``--full-rescan`` treats every listed file as changed.
3. Read only new and changed files, with Spark's ``binaryFile`` source given exactly those paths,
   hash them (``image_id`` = SHA-256 of the bytes) and decode each fully by content.
4. Write one row per event of the day (``fruits.corpus.IMAGES_SCHEMA``): ``loaded`` (with its
   bytes, for featurize), ``quarantined`` (read, refused, with a reason), ``skipped`` (never read:
   links, special files, hidden files, the source's mapping file) or ``deleted``; publish it as
   the date's current ``images`` run. Unchanged files cost one listing entry, nothing more.

Labels come from the file's place under its root (:mod:`fruits.labels`).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

import pandas as pd
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import IntegerType, StringType, StructField, StructType

from fruits import corpus, job, labels, listing, validation
from fruits.config import MAX_FILE_BYTES, SOURCE_MAPPING_FILE
from fruits.errors import InputError
from fruits.images import ImageRejected, inspect_image
from fruits.reporting import Phases, count_by, reason_category, sum_counts
from fruits.spark import struct_pandas_udf

NEW, CHANGED, UNCHANGED = "new", "changed", "unchanged"

_LISTED_SCHEMA = (
    "path string, source string, source_root string, length long, modification_ms long, kind string"
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
_LABELS_SCHEMA = StructType(
    [StructField(name, StringType()) for name in ("label", "split", "class_path", "spelling")]
)


@struct_pandas_udf(_LABELS_SCHEMA)
def path_labels(paths: pd.Series, roots: pd.Series) -> pd.DataFrame:
    """Label, split, class path (and the label as written, when NFC changed it) of each file."""
    described = [labels.describe(path, root) for path, root in zip(paths, roots, strict=True)]
    return pd.DataFrame(
        [(d.label, d.split, d.class_path, d.spelling) for d in described],
        columns=["label", "split", "class_path", "spelling"],
    )


@struct_pandas_udf(_INSPECT_SCHEMA)
def inspect_images(contents: pd.Series) -> pd.DataFrame:
    """Decode every image fully; a failure becomes a ``reason`` instead of an exception."""
    # format, width, height, mode, reason: the decoded image's or the reason it was refused
    rows: list[tuple[str | None, int | None, int | None, str | None, str | None]] = []
    for content in contents:
        try:
            info = inspect_image(content)
            rows.append((info.format, info.width, info.height, info.mode, None))
        except ImageRejected as exc:
            rows.append((None, None, None, None, str(exc)))
    frame = pd.DataFrame(rows, columns=["format", "width", "height", "mode", "reason"])
    return frame.astype({"width": "Int32", "height": "Int32"})


def list_inputs(spark: SparkSession, roots: Sequence[str]) -> DataFrame:
    """Every entry under every root, with its source; InputError when a root lists nothing."""
    frames = []
    for root in roots:
        entries = list(listing.list_root(root))
        if not entries:
            raise InputError(f"input {root} has no files")
        frame = pd.DataFrame(entries, columns=["path", "length", "modification_ms", "kind"])
        frames.append(frame.assign(source=labels.source_name(root), source_root=root))
    listed = pd.concat(frames, ignore_index=True)
    return spark.createDataFrame(listed[corpus.columns(_LISTED_SCHEMA)], _LISTED_SCHEMA)


def compare(
    listed: DataFrame, state: DataFrame, roots: Sequence[str], full_rescan: bool = False
) -> tuple[DataFrame, DataFrame]:
    """(listed entries with ``change`` new/changed/unchanged, known paths deleted since).

    Deletions are only looked for under today's roots: a source left out of a run is not gone.
    """
    known = state.filter(F.col("status") != corpus.DELETED).select(
        "path",
        F.col("length").alias("known_length"),
        F.col("modificationTime").alias("known_time"),
    )
    listed = listed.withColumn("modificationTime", F.timestamp_millis("modification_ms"))
    same = (F.col("length") == F.col("known_length")) & (
        F.col("modificationTime") == F.col("known_time")
    )
    change = (
        F.when(F.col("known_length").isNull(), NEW)
        .when(F.lit(full_rescan) | ~same, CHANGED)
        .otherwise(UNCHANGED)
    )
    compared = listed.join(known, "path", "left").withColumn("change", change)
    deleted = (
        state.filter((F.col("status") != corpus.DELETED) & F.col("source_root").isin(list(roots)))
        .join(listed.select("path"), "path", "left_anti")
        .select("path", "source_root")
    )
    return compared.drop("known_length", "known_time"), deleted


def _name() -> Column:
    return F.element_at(F.split("path", "/"), -1)


def outcome_before_reading(entries: DataFrame) -> DataFrame:
    """Why a new or changed entry is not read (status and reason), or null status: read it."""
    name = _name()
    # A source's mapping file is the one directly under its root.
    is_mapping = (
        (name == SOURCE_MAPPING_FILE) & F.col("class_path").isNull() & F.col("split").isNull()
    )
    rules = [
        (F.col("kind") == listing.SYMLINK, corpus.SKIPPED, "symbolic link: not followed"),
        (F.col("kind") == listing.OTHER, corpus.SKIPPED, "not a regular file"),
        (is_mapping, corpus.SKIPPED, "source mapping file: read by the train stage"),
        (
            name.rlike(r"^[._]"),
            corpus.SKIPPED,
            "hidden file: names starting with '.' or '_' are not read",
        ),
        (F.col("length") == 0, corpus.QUARANTINED, "empty file (0 bytes)"),
        (
            F.col("length") > MAX_FILE_BYTES,
            corpus.QUARANTINED,
            f"file too large: more than {MAX_FILE_BYTES} bytes",
        ),
        (
            F.col("label").isNull(),
            corpus.QUARANTINED,
            "no label folder: put images in <source>/[<split>/]<Label>/",
        ),
    ]
    status, reason = F.lit(None).cast("string"), F.lit(None).cast("string")
    for condition, rule_status, rule_reason in reversed(rules):
        status = F.when(condition, rule_status).otherwise(status)
        reason = F.when(condition, rule_reason).otherwise(reason)
    return entries.withColumn("status", status).withColumn("reason", reason)


def read_files(spark: SparkSession, paths: list[str]) -> DataFrame:
    """``binaryFile`` rows (path, length, modificationTime, content) of exactly these files.

    The list crosses to the JVM as one string (split there), so no call is made per file;
    globbing is off, so ``photos[1].jpg`` is that file, not a pattern. Local files are read
    through Hadoop's raw local filesystem (this read only): the checksummed one looks for a
    ``.crc`` side file it cannot even name when the file's name has a ``:``.
    """
    jvm = spark.sparkContext._jvm
    if jvm is None:
        raise RuntimeError("the Spark session has no JVM (stopped?)")
    array = jvm.org.apache.commons.lang3.StringUtils.split("\0".join(paths), "\0")
    reader = (
        spark._jsparkSession.read()
        .format("binaryFile")
        .option("__globPaths__", "false")
        .option("recursiveFileLookup", "true")
        .option("ignoreMissingFiles", "true")
        .option("fs.file.impl", "org.apache.hadoop.fs.RawLocalFileSystem")
        .option("fs.file.impl.disable.cache", "true")
    )
    return DataFrame(reader.load(array), spark)


def run(spark: SparkSession, run: job.JobRun, full_rescan: bool = False) -> dict[str, Any]:
    """Load the day's new and changed files under ``run.paths.inputs``; return the report."""
    roots = list(run.paths.inputs)
    validation.inputs(roots)
    phase = Phases()
    with phase("list"):
        listed = list_inputs(spark, roots).cache()
    state = corpus.state_before(spark, run.paths)
    compared, deleted = compare(listed, state, roots, full_rescan)
    compared = compared.cache()

    todo = compared.filter(F.col("change") != UNCHANGED)
    described = path_labels("path", "source_root")
    todo = outcome_before_reading(
        todo.withColumn("labels", described).select("*", "labels.*").drop("labels")
    ).cache()
    with phase("compare with the corpus"):
        to_read = [r.path for r in todo.filter(F.col("status").isNull()).select("path").collect()]

    inspect = inspect_images.asNondeterministic()  # decode once, not once per struct field
    meta = todo.drop("length", "modificationTime", "status", "reason")
    if to_read:
        content = read_files(spark, to_read).withColumn("check", inspect("content"))
        read = meta.join(content, "path").select(
            *meta.columns, "length", "modificationTime", "content",
            F.sha2("content", 256).alias("image_id"), "check.*",
        )  # fmt: skip
    else:
        read = spark.createDataFrame([], f"{corpus.IMAGES_SCHEMA}")
    good = F.col("reason").isNull()
    read = (
        read.withColumn("status", F.when(good, corpus.LOADED).otherwise(corpus.QUARANTINED))
        .withColumn("content", F.when(good, F.col("content")))
        .withColumn("stage", F.lit("load"))
    )
    vanished = (
        todo.filter(F.col("status").isNull())
        .join(read.select("path"), "path", "left_anti")
        .withColumn("status", F.lit(corpus.QUARANTINED))
        .withColumn("reason", F.lit("not returned by Spark's binaryFile reader (gone?)"))
    )
    set_aside = todo.filter(F.col("status").isNotNull()).unionByName(vanished)
    gone = deleted.withColumn("status", F.lit(corpus.DELETED)).withColumn(
        "reason", F.lit("no longer in the input")
    )
    columns = corpus.columns(corpus.IMAGES_SCHEMA)
    day = (
        read.unionByName(set_aside.withColumn("stage", F.lit("load")), allowMissingColumns=True)
        .unionByName(gone.withColumn("stage", F.lit("load")), allowMissingColumns=True)
        .select(*columns)
    )
    output = run.output("images")
    with phase("read, hash, decode, write"):
        day.write.parquet(output)
    written = spark.read.parquet(output).drop("content")
    try:
        with phase("report"):
            report = _report(roots, compared, written, todo, full_rescan)
        report["phase_seconds"] = phase.seconds
    finally:
        for frame in (listed, compared, todo):
            frame.unpersist()
    run.publish("images", report["events"], {"report": _brief(report)})
    return report


def _report(
    roots: Sequence[str],
    compared: DataFrame,
    written: DataFrame,
    todo: DataFrame,
    full_rescan: bool,
) -> dict[str, Any]:
    changes = count_by(compared, F.col("change"))
    tally = (  # one job for every count of the written events
        written.groupBy(
            "status",
            reason_category().alias("why"),
            "label",
            F.coalesce(F.col("split"), F.lit("(none)")).alias("split"),
            "source",
        )
        .count()
        .collect()
    )
    statuses = sum_counts(tally, lambda r: r.status)
    loaded = [r for r in tally if r.status == corpus.LOADED]
    set_aside = [r for r in tally if r.status in (corpus.QUARANTINED, corpus.SKIPPED)]
    respelled = todo.filter(F.col("spelling").isNotNull()).select("label", "spelling").distinct()
    report: dict[str, Any] = {
        "sources": {labels.source_name(root): root for root in roots},
        "full_rescan": full_rescan,
        "listed": sum(changes.values()),
        "new": changes.get(NEW, 0),
        "changed": changes.get(CHANGED, 0),
        "unchanged": changes.get(UNCHANGED, 0),
        "deleted": statuses.get(corpus.DELETED, 0),
        "loaded": statuses.get(corpus.LOADED, 0),
        "quarantined": statuses.get(corpus.QUARANTINED, 0),
        "skipped": statuses.get(corpus.SKIPPED, 0),
        "events": sum(statuses.values()),
        "set_aside_by_reason": sum_counts(set_aside, lambda r: r.why),
        "images_by_label": sum_counts(loaded, lambda r: r.label),
        "images_by_split": sum_counts(loaded, lambda r: r.split),
        "images_by_source": sum_counts(loaded, lambda r: r.source),
        "labels_normalised": {r.label: r.spelling for r in respelled.collect()},
    }
    read = report["new"] + report["changed"]
    if read != report["loaded"] + report["quarantined"] + report["skipped"]:
        raise RuntimeError(f"load lost files: {report}")
    return report


def _brief(report: dict[str, Any]) -> dict[str, Any]:
    keys = ("listed", "new", "changed", "unchanged", "deleted", "loaded", "quarantined", "skipped")
    return {key: report[key] for key in keys}


def parser() -> argparse.ArgumentParser:
    p = job.parser("Load the day's new and changed images (Spark binaryFile), by source.")
    p.add_argument(
        "--input",
        action="append",
        required=True,
        help="a source's root folder or S3 prefix (repeat for several sources)",
    )
    p.add_argument(
        "--full-rescan", action="store_true", help="re-read every file, not only new/changed ones"
    )
    return p


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    return job.run_job(
        "load", argv, parser(), lambda spark, run_, args: run(spark, run_, args.full_rescan)
    )
