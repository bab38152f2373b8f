"""Publishing and listing on S3 (moto's server, through the same pyarrow code as on EMR).

Spark's S3 committer cannot run here (no hadoop-aws jars), so the run's data objects are put as
it would put them; everything the pipeline itself does on S3 — list the inputs, write and read
pointers, delete superseded runs — runs unchanged against moto's S3 API.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import boto3
import pytest
from moto.server import ThreadedMotoServer

from fruits import catalog, listing, storage

BUCKET = "fruits-s3-test"
REGION = "eu-west-3"


@pytest.fixture(scope="module")
def s3(monkeypatch_module: pytest.MonkeyPatch) -> Iterator:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    for name, value in {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
    }.items():
        monkeypatch_module.setenv(name, value)
    client = boto3.client("s3", endpoint_url=endpoint, region_name=REGION)
    client.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
    yield client
    server.stop()


@pytest.fixture(scope="module")
def monkeypatch_module() -> Iterator[pytest.MonkeyPatch]:
    with pytest.MonkeyPatch.context() as patch:
        yield patch


def _objects(client, prefix: str) -> dict[str, tuple[str, dt.datetime]]:
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix)
    return {
        o["Key"]: (o["ETag"], o["LastModified"]) for page in pages for o in page.get("Contents", [])
    }


def _write_run(client, partition_key: str, run_id: str, parts: int) -> None:
    """What Spark's committer leaves in a run folder: part files and _SUCCESS."""
    for i in range(parts):
        key = f"{partition_key}/run={run_id}/part-{i:05d}.snappy.parquet"
        client.put_object(Bucket=BUCKET, Key=key, Body=f"rows of {run_id} #{i}".encode())
    client.put_object(Bucket=BUCKET, Key=f"{partition_key}/run={run_id}/_SUCCESS", Body=b"")


def test_inputs_are_listed_with_any_key(s3):
    keys = ["in/Training/Kiwi/a b:1 #%.jpg", "in/Test/Kiwi/ü.jpg", "in/fruit_map.csv", "in2/x.jpg"]
    for key in keys:
        s3.put_object(Bucket=BUCKET, Key=key, Body=b"123")
    listed = list(listing.list_root(f"s3://{BUCKET}/in"))
    assert {entry.path for entry in listed} == {f"s3://{BUCKET}/{k}" for k in keys[:3]}
    assert {(e.length, e.kind) for e in listed} == {(3, listing.FILE)}
    assert listing.root_exists(f"s3://{BUCKET}/in") and not listing.root_exists(f"s3://{BUCKET}/x")


def test_publishing_writes_one_object_and_never_copies_or_renames_data(s3):
    partition_key = "out/features/ds=2026-01-01"
    partition = f"s3://{BUCKET}/{partition_key}"
    old, new = catalog.new_run_id(), catalog.new_run_id()
    _write_run(s3, partition_key, old, parts=3)
    catalog.publish(partition, old, rows=30)
    _write_run(s3, partition_key, new, parts=5)
    data_before = _objects(s3, f"{partition_key}/run=")

    before = storage.OPERATIONS.copy()
    catalog.publish(partition, new, rows=50)
    assert storage.OPERATIONS - before == {"put": 1}  # one small PUT: the pointer
    assert _objects(s3, f"{partition_key}/run=") == data_before  # no object moved or rewritten
    assert catalog.current(partition).uri == f"{partition}/run={new}"
    assert [run.rows for run in catalog.current_runs(f"s3://{BUCKET}/out/features")] == [50]

    # The superseded run stays for the retention (a reader may still be on it), then goes.
    assert catalog.cleanup(f"s3://{BUCKET}/out/features", partition, dt.timedelta(hours=1)) == []
    later = dt.datetime.now(dt.UTC) + dt.timedelta(hours=2)
    deleted = catalog.cleanup(
        f"s3://{BUCKET}/out/features", partition, dt.timedelta(hours=1), later
    )
    assert deleted == [f"{partition}/run={old}"]
    assert set(_objects(s3, f"{partition_key}/run=")) == {
        k for k in data_before if f"run={new}/" in k
    }


def test_a_crash_before_the_pointer_leaves_readers_on_the_previous_run(s3):
    partition_key = "out/pca/ds=2026-01-02"
    partition = f"s3://{BUCKET}/{partition_key}"
    good = catalog.new_run_id()
    _write_run(s3, partition_key, good, parts=2)
    catalog.publish(partition, good, rows=2)
    crashed = catalog.new_run_id()
    s3.put_object(Bucket=BUCKET, Key=f"{partition_key}/run={crashed}/part-00000.parquet", Body=b"h")
    # (the writer died here: no _SUCCESS, no pointer)
    assert catalog.current(partition).run_id == good
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=2)
    assert catalog.cleanup(f"s3://{BUCKET}/out/pca", partition, dt.timedelta(hours=1), later) == [
        f"{partition}/run={crashed}"
    ]
    assert catalog.current(partition).run_id == good
