"""Uploads to S3 (moto, real S3Hook): content-addressed, skipped when unchanged; the EU guard."""

from __future__ import annotations

import io
import subprocess
import zipfile
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from airflow.providers.amazon.aws.hooks.s3 import S3Hook
from aws_fakes import BUCKET, REGION, create_bucket, fake_aws

import fruits
from fruits_airflow import artifacts
from fruits_airflow.emr_cluster import EMR_PYTHON
from fruits_airflow.residency import (
    EU_REGIONS,
    OutsideEu,
    UnknownBucket,
    check_residency,
    require_eu,
)

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


def test_job_code_is_uploaded_once_then_skipped_while_unchanged(s3):
    code = artifacts.publish_job_code(s3, ROOT)
    bootstrap = artifacts.publish(s3, ROOT, artifacts.bootstrap_script())
    uploaded = versions()
    assert len(uploaded) == 1 + len(code.scripts) + 1  # zip, entry scripts, bootstrap
    assert code.py_files == artifacts.code_package().uri(ROOT)
    assert bootstrap.startswith(f"{ROOT}/bootstrap/")

    again = artifacts.publish_job_code(s3, ROOT)
    artifacts.publish(s3, ROOT, artifacts.bootstrap_script())
    assert again == code
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
    uri = artifacts.publish_weights(s3, ROOT, str(weights_path))
    assert uri.startswith(f"{ROOT}/models/") and uri.endswith("/" + weights_path.name)
    stored = s3.get_key(uri.removeprefix(f"s3://{BUCKET}/"), BUCKET).get()["Body"].read()
    assert stored == weights_path.read_bytes()
    assert artifacts.publish_weights(s3, ROOT, "imagenet") == "imagenet"
    assert artifacts.publish_weights(s3, ROOT, "s3://elsewhere/w.h5") == "s3://elsewhere/w.h5"
    assert list(versions("artifacts/models/").values()) == [1]


def test_the_bootstrap_script_is_valid_bash_for_the_python_spark_uses():
    script = artifacts.BOOTSTRAP_SCRIPT
    subprocess.run(["bash", "-n", str(script)], check=True)
    assert f"PYTHON={EMR_PYTHON}" in script.read_text()
    assert script.stat().st_mode & 0o111  # executable


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
