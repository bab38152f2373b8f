"""moto as the AWS account of the EMR tests, and a stand-in for EMR's step runner.

Operators, sensors and hooks stay the provider's own; only AWS behind boto3 is moto. moto
leaves steps PENDING/RUNNING forever, so :func:`steps_finish` plays EMR's part: it moves each
step to COMPLETED (or FAILED for one chosen stage) once a sensor has seen it unfinished.
"""

from __future__ import annotations

import gzip
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from unittest import mock

import boto3
import pytest
from moto import mock_aws
from moto.core import DEFAULT_ACCOUNT_ID
from moto.emr.models import ElasticMapReduceBackend, Step, emr_backends

REGION = "eu-west-3"
BUCKET = "fruits-test-eu"
INPUT_BUCKET = "fruits-test-images"
SECURITY_CONFIGURATION = "fruits-encryption-at-rest"
UNFINISHED = ("PENDING", "RUNNING")


@contextmanager
def fake_aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A moto account with the EU buckets, the security configuration, the ``aws_default``
    connection and the Variables of an EMR deployment (as env vars)."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AIRFLOW_CONN_AWS_DEFAULT": '{"conn_type": "aws"}',
        "AIRFLOW_VAR_FRUITS_BUCKET": BUCKET,
        "AIRFLOW_VAR_FRUITS_INPUT": f"s3://{INPUT_BUCKET}/fruits-360",
        "AIRFLOW_VAR_FRUITS_S3_ALLOWED_BUCKETS": INPUT_BUCKET,
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    with mock_aws():
        create_bucket(BUCKET, REGION)
        create_bucket(INPUT_BUCKET, REGION)
        create_security_configuration()
        yield


def emr_backend(region: str = REGION) -> ElasticMapReduceBackend:
    return emr_backends[DEFAULT_ACCOUNT_ID][region]


def create_bucket(name: str, region: str) -> None:
    s3 = boto3.client("s3", region_name=region)
    if region == "us-east-1":
        s3.create_bucket(Bucket=name)
    else:
        s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": region})


def create_security_configuration(region: str = REGION) -> None:
    boto3.client("emr", region_name=region).create_security_configuration(
        Name=SECURITY_CONFIGURATION,
        SecurityConfiguration='{"EncryptionConfiguration": {"EnableAtRestEncryption": true, '
        '"EnableInTransitEncryption": false, "AtRestEncryptionConfiguration": '
        '{"S3EncryptionConfiguration": {"EncryptionMode": "SSE-S3"}}}}',
    )


STEP_FAILURE = {
    "Reason": "Spark application failed",
    "Message": "Exception in thread main: java.lang.OutOfMemoryError",
}
STDERR_TAIL = "Traceback (most recent call last):\nMemoryError: featurize ran out of memory"


def fail_step(cluster, step) -> None:
    """What EMR leaves behind a failed step: FAILED, FailureDetails, a gzipped stderr in S3."""
    key = f"logs/emr/{cluster.id}/steps/{step.id}/stderr.gz"
    boto3.client("s3", region_name=REGION).put_object(
        Bucket=BUCKET, Key=key, Body=gzip.compress(f"spark noise\n{STDERR_TAIL}\n".encode())
    )
    step.failure_details = {**STEP_FAILURE, "LogFile": f"s3://{BUCKET}/{key}"}
    step.state = "FAILED"


def put_json(uri: str, body: dict) -> None:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    boto3.client("s3", region_name=REGION).put_object(
        Bucket=bucket, Key=key, Body=json.dumps(body).encode()
    )


def write_step_outputs(step, train_accuracy: float) -> None:
    """What a finished step leaves that later tasks read: its stage report (``--report``) and,
    for train, the model folder's ``report.json`` (publish_model gates on its accuracy)."""
    args = dict(zip(step.args, step.args[1:], strict=False))
    stage = step.name.split()[1]
    put_json(args["--report"], {"stage": stage, "output": args.get("--output")})
    if stage == "train":
        put_json(f"{args['--output']}/report.json", {"test": {"accuracy": train_accuracy}})


def _status_with_failure_details(step) -> dict:
    """moto's step status plus the FailureDetails it does not model."""
    status = _moto_status.fget(step)
    if getattr(step, "failure_details", None):
        status["FailureDetails"] = step.failure_details
    return status


_moto_status = Step.status


@contextmanager
def steps_finish(
    fail_stage: str | None = None, fallback_s: float = 30.0, train_accuracy: float = 0.97
) -> Iterator[None]:
    """While inside, every step finishes once a ``DescribeStep`` has seen it unfinished (what
    an ``EmrStepSensor`` does), or after ``fallback_s`` if nobody looks: FAILED for
    ``fail_stage`` (steps are named ``fruits <stage> ds=…``; see :func:`fail_step`),
    COMPLETED otherwise, with the reports it writes (:func:`write_step_outputs`)."""
    stop = threading.Event()
    seen_unfinished: set[str] = set()
    first_seen: dict[str, float] = {}
    describe_step = ElasticMapReduceBackend.describe_step

    def watched_describe_step(backend, cluster_id: str, step_id: str):
        step = describe_step(backend, cluster_id, step_id)
        if step is not None and step.state in UNFINISHED:
            seen_unfinished.add(step.id)
        return step

    def drive() -> None:
        while not stop.wait(0.05):
            for cluster in list(emr_backend().clusters.values()):
                for step in list(cluster.steps):
                    if step.state not in UNFINISHED:
                        continue
                    waited = time.monotonic() - first_seen.setdefault(step.id, time.monotonic())
                    if step.id in seen_unfinished or waited > fallback_s:
                        failed = fail_stage is not None and step.name.startswith(
                            f"fruits {fail_stage} "
                        )
                        if failed:
                            fail_step(cluster, step)
                        else:
                            write_step_outputs(step, train_accuracy)
                            step.state = "COMPLETED"

    driver = threading.Thread(target=drive, name="emr-step-driver", daemon=True)
    with (
        mock.patch.object(ElasticMapReduceBackend, "describe_step", watched_describe_step),
        mock.patch.object(Step, "status", property(_status_with_failure_details)),
    ):
        driver.start()
        try:
            yield
        finally:
            stop.set()
            driver.join()
