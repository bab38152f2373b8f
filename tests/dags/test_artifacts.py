"""Uploads to S3 (moto, real S3Hook): content-addressed, skipped when unchanged; the EU guard."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from airflow.providers.amazon.aws.hooks.s3 import S3Hook
from aws_fakes import BUCKET, REGION, create_bucket, fake_aws

import fruits
from fruits_airflow import artifacts
from fruits_airflow.residency import (
    EU_REGIONS,
    OutsideEu,
    UnknownBucket,
    check_residency,
    require_eu,
)
from fruits_airflow.run_params import InvalidRun

ROOT = f"s3://{BUCKET}/artifacts"


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[S3Hook]:
    with fake_aws(monkeypatch):
        boto3.client("s3", region_name=REGION).put_bucket_versioning(
            Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"}
        )
        yield S3Hook(aws_conn_id="aws_default", region_name=REGION)


def versions(prefix: str = "artifacts/") -> dict[str, int]:
    """Key → number of stored versions (the bucket is versioned: each PUT adds one)."""
    listed = boto3.client("s3", region_name=REGION).list_object_versions(
        Bucket=BUCKET, Prefix=prefix
    )
    counts: dict[str, int] = {}
    for version in listed.get("Versions", []):
        counts[version["Key"]] = counts.get(version["Key"], 0) + 1
    return counts


def test_the_code_zip_is_reproducible_and_holds_the_whole_package():
    first, second = artifacts.code_package(), artifacts.code_package()
    assert first.data == second.data
    names = set(zipfile.ZipFile(io.BytesIO(first.data)).namelist())
    package = Path(fruits.__file__).parent
    expected = {
        f"fruits/{file.relative_to(package).as_posix()}"
        for file in package.rglob("*")
        if file.is_file() and "__pycache__" not in file.parts
    }
    assert names == expected
    assert "fruits/stages.py" in names


def test_run_files_are_uploaded_once_then_skipped_while_unchanged(s3):
    files = artifacts.publish_run_files(s3, ROOT)
    uploaded = versions()
    # zip, entry scripts, bootstrap, its requirements and constraints
    assert len(uploaded) == 1 + len(files.code.scripts) + 3
    assert files.code.py_files == artifacts.code_package().uri(ROOT)
    assert files.cluster.bootstrap.startswith(f"{ROOT}/bootstrap/")
    assert files.cluster.requirements.startswith(f"{ROOT}/python/")
    assert files == artifacts.planned_run_files(ROOT)  # a plan names what an upload gives

    again = artifacts.publish_run_files(s3, ROOT)
    assert again == files
    assert versions() == uploaded  # no second PUT of anything
    assert set(uploaded.values()) == {1}


def test_changed_content_gets_a_new_key_and_the_old_one_stays(s3):
    old = artifacts.publish(s3, ROOT, artifacts.Artifact("code", "load.py", b"print(1)\n"))
    new = artifacts.publish(s3, ROOT, artifacts.Artifact("code", "load.py", b"print(2)\n"))
    assert old != new
    assert old.rsplit("/", 2)[0] == new.rsplit("/", 2)[0] == f"{ROOT}/code"
    assert versions() == {
        old.removeprefix(f"s3://{BUCKET}/"): 1,
        new.removeprefix(f"s3://{BUCKET}/"): 1,
    }


def test_weights_a_local_file_is_uploaded_imagenet_and_s3_are_kept(s3, weights_path):
    allowed = str(weights_path.parent)
    uri = artifacts.publish_weights(s3, ROOT, str(weights_path), allowed)
    assert uri.startswith(f"{ROOT}/models/") and uri.endswith("/" + weights_path.name)
    stored = s3.get_key(uri.removeprefix(f"s3://{BUCKET}/"), BUCKET).get()["Body"].read()
    assert stored == weights_path.read_bytes()
    assert artifacts.publish_weights(s3, ROOT, "imagenet", allowed) == "imagenet"
    assert artifacts.publish_weights(s3, ROOT, "s3://e/w.h5", None) == "s3://e/w.h5"
    assert list(versions("artifacts/models/").values()) == [1]


def test_prepare_checks_the_weights_folder_again_before_reading(s3, weights_path):
    for path, allowed in (("/etc/passwd", str(weights_path.parent)), (str(weights_path), None)):
        with pytest.raises(InvalidRun):
            artifacts.publish_weights(s3, ROOT, path, allowed)
    assert versions("artifacts/models/") == {}


def test_eu_regions_pass_and_others_are_refused():
    for region in EU_REGIONS:
        assert require_eu(region, "x") == region
    for region in ("us-east-1", "eu-west-2", "eu-central-2", "me-central-1"):
        with pytest.raises(OutsideEu, match=f"'{region}', outside the EU"):
            require_eu(region, "x")


def test_the_guard_looks_up_where_each_bucket_really_is(s3):
    create_bucket("fruits-test-frankfurt", "eu-central-1")
    create_bucket("fruits-test-virginia", "us-east-1")
    assert check_residency(REGION, {BUCKET, "fruits-test-frankfurt"}, s3) == REGION
    with pytest.raises(OutsideEu, match="bucket 'fruits-test-virginia' is in 'us-east-1'"):
        check_residency(REGION, {BUCKET, "fruits-test-virginia"}, s3)
    with pytest.raises(UnknownBucket, match="bucket 'fruits-test-nowhere': cannot read its region"):
        check_residency(REGION, {"fruits-test-nowhere"}, s3)
