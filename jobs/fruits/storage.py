"""Reading and writing through Spark's Hadoop filesystem: local paths, file://, s3:// alike.

Directory outputs are published by :func:`publish`: written to a hidden staging folder beside
the target, then swapped in, so a failed write never damages the previous good output.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from pyspark.sql import SparkSession


def _fs_path(spark: SparkSession, uri: str):
    jvm = spark.sparkContext._jvm
    path = jvm.org.apache.hadoop.fs.Path(uri)
    return path.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration()), path


def exists(spark: SparkSession, uri: str) -> bool:
    fs, path = _fs_path(spark, uri)
    return bool(fs.exists(path))


def delete(spark: SparkSession, uri: str) -> None:
    fs, path = _fs_path(spark, uri)
    if fs.exists(path):
        fs.delete(path, True)


def list_files(spark: SparkSession, uri: str) -> list[tuple[str, int, int]]:
    """Every file under ``uri``, recursively: ``(path, length, modification time in ms)``.

    Unlike Spark's file sources this keeps empty and hidden files, so callers can account for
    each of them.
    """
    fs, path = _fs_path(spark, uri)
    files, iterator = [], fs.listFiles(path, True)
    while iterator.hasNext():
        status = iterator.next()
        files.append((status.getPath().toString(), status.getLen(), status.getModificationTime()))
    return files


def read_bytes(spark: SparkSession, uri: str) -> bytes:
    fs, path = _fs_path(spark, uri)
    if not fs.exists(path):
        raise FileNotFoundError(uri)
    row = spark.read.format("binaryFile").load(uri).select("content").head()
    return bytes(row.content)


def write_bytes(spark: SparkSession, uri: str, data: bytes) -> None:
    fs, path = _fs_path(spark, uri)
    stream = fs.create(path, True)
    try:
        stream.write(bytearray(data))
    finally:
        stream.close()


def write_json(spark: SparkSession, uri: str, payload: dict[str, Any]) -> None:
    text = json.dumps(payload, indent=2, sort_keys=True, ensure_ascii=False, default=str)
    write_bytes(spark, uri, text.encode("utf-8") + b"\n")


def read_json(spark: SparkSession, uri: str) -> dict[str, Any]:
    return json.loads(read_bytes(spark, uri).decode("utf-8"))


def staging_uri(target: str) -> str:
    """A hidden sibling of ``target`` (Spark ignores names starting with ``_``)."""
    parent, _, name = target.rstrip("/").rpartition("/")
    return f"{parent}/_staging-{name}-{uuid.uuid4().hex[:12]}"


def publish(spark: SparkSession, staging: str, target: str) -> None:
    """Swap a fully written ``staging`` folder in as ``target``; the old one goes only after."""
    fs, target_path = _fs_path(spark, target.rstrip("/"))
    _, staging_path = _fs_path(spark, staging)
    fs.mkdirs(target_path.getParent())
    previous = None
    if fs.exists(target_path):
        _, previous = _fs_path(spark, staging_uri(target) + "-previous")
        if not fs.rename(target_path, previous):
            raise OSError(f"could not move the previous output {target} aside")
    if not fs.rename(staging_path, target_path):
        if previous is not None:
            fs.rename(previous, target_path)
        raise OSError(f"could not publish {staging} as {target}")
    if previous is not None:
        fs.delete(previous, True)


@contextmanager
def staged(spark: SparkSession, target: str) -> Iterator[str]:
    """Yield a staging folder to write ``target`` into; publish it on success, drop it on error."""
    staging = staging_uri(target)
    try:
        yield staging
    except BaseException:
        _wait_for_running_tasks(spark)
        delete(spark, staging)
        raise
    publish(spark, staging, target)


def _wait_for_running_tasks(spark: SparkSession, timeout_s: float = 60.0) -> None:
    """Wait until no task runs: a failed job returns while its sibling tasks are still being
    killed, and one of them could write into the staging folder after it was deleted."""
    tracker = spark.sparkContext._jsc.sc().statusTracker()
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if sum(info.numRunningTasks() for info in tracker.getExecutorInfos()) == 0:
            return
        time.sleep(0.1)
