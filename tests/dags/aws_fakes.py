"""moto as the AWS account of the EMR tests, and a stand-in for EMR's step runner.

Operators, sensors and hooks stay the provider's own; only AWS behind boto3 is moto, reached
through its public API (``mock_aws``) and its documented backend state (``emr_backends``):
nothing of moto is patched. moto leaves steps PENDING/RUNNING forever, so :func:`steps_finish`
plays EMR's part from a thread: once the step's sensor has found it unfinished — a reschedule
recorded in Airflow's metadata database — it moves the step to COMPLETED, or to FAILED for one
chosen stage after writing the logs EMR would (:func:`write_client_mode_logs`).
"""

from __future__ import annotations

import gzip
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import boto3
import pytest
from moto import mock_aws
from moto.core import DEFAULT_ACCOUNT_ID
from moto.emr.models import ElasticMapReduceBackend, emr_backends

REGION = "eu-west-3"
BUCKET = "fruits-test-eu"
INPUT_BUCKET = "fruits-test-images"
LOG_PREFIX = "logs/emr"
SECURITY_CONFIGURATION = "fruits-encryption-at-rest"
UNFINISHED = ("PENDING", "RUNNING")
APPLICATION = "application_1764583200000_0002"


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
    monkeypatch.delenv("FRUITS_EMR_WEIGHTS_DIR", raising=False)
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


# What a featurize step that ran out of memory prints in client mode: the driver's traceback
# (with the executor's, as pyspark re-raises it) between Spark's log records.
DRIVER_TRACEBACK = """\
Traceback (most recent call last):
  File "/mnt/tmp/spark-5d1c/featurize.py", line 9, in <module>
    main()
  File "/mnt/tmp/spark-5d1c/fruits.zip/fruits/featurize.py", line 212, in main
pyspark.errors.exceptions.captured.PythonException:
  An exception was thrown from the Python worker. Please see the stack trace below.
Traceback (most recent call last):
  File "/mnt/yarn/usercache/hadoop/appcache/fruits.zip/fruits/featurize.py", line 141, in embed
MemoryError: featurize ran out of memory"""
SPARK_BEFORE = f"""\
26/12/01 10:00:01 INFO SparkContext: Running Spark version 3.5.6-amzn-1
26/12/01 10:00:09 INFO YarnClientImpl: Submitted application {APPLICATION}
26/12/01 10:03:41 WARN TaskSetManager: Lost task 3.0 in stage 2.0 (TID 7): \
org.apache.spark.api.python.PythonException: Traceback (most recent call last):
  File "/mnt/yarn/usercache/hadoop/appcache/fruits.zip/fruits/featurize.py", line 141, in embed
MemoryError: featurize ran out of memory
26/12/01 10:03:58 ERROR TaskSetManager: Task 3 in stage 2.0 failed 4 times; aborting job"""
SPARK_AFTER = """\
26/12/01 10:03:59 INFO SparkContext: Invoking stop() from shutdown hook
26/12/01 10:03:59 INFO SparkUI: Stopped Spark web UI at http://ip-10-0-1-5:4040"""
CLIENT_MODE_STDERR = f"{SPARK_BEFORE}\n{DRIVER_TRACEBACK}\n{SPARK_AFTER}\n"
# Cluster mode: the step's stderr only names the failed application; the traceback is in the
# driver's container log.
CLUSTER_MODE_STDERR = f"""\
26/12/01 10:00:09 INFO YarnClientImpl: Submitted application {APPLICATION}
26/12/01 10:04:02 INFO Client: Application report for {APPLICATION} (state: FINISHED)
Exception in thread "main" org.apache.spark.SparkException: Application {APPLICATION} \
finished with failed status
"""
STEP_FAILURE_REASON = "Spark application failed (see the step's stderr)"


def put_log(key: str, text: str) -> None:
    boto3.client("s3", region_name=REGION).put_object(
        Bucket=BUCKET, Key=key, Body=gzip.compress(text.encode())
    )


def step_log_key(cluster_id: str, step_id: str) -> str:
    return f"{LOG_PREFIX}/{cluster_id}/steps/{step_id}/stderr.gz"


def put_json(uri: str, body: dict) -> None:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    boto3.client("s3", region_name=REGION).put_object(
        Bucket=bucket, Key=key, Body=json.dumps(body).encode()
    )


def write_step_outputs(step, train_accuracy: float) -> None:
    """What a finished step leaves that later tasks read: its stage report (under
    ``--root``/``--ds``) and, for train, the model run's ``report.json`` (publish_model gates on
    its accuracy)."""
    args = dict(zip(step.args, step.args[1:], strict=False))
    stage = step.name.split()[1]
    root, ds = args["--root"], args["--ds"]
    output = f"{root}/model/ds={ds}/run=emr-fake" if stage == "train" else None
    put_json(f"{root}/reports/ds={ds}/{stage}.json", {"stage": stage, "output": output})
    if output:
        put_json(f"{output}/report.json", {"test": {"accuracy": train_accuracy}})


def container_log_key(cluster_id: str, attempt: int, number: int) -> str:
    container = f"container_1764583200000_0002_{attempt:02d}_{number:06d}"
    return f"{LOG_PREFIX}/{cluster_id}/containers/{APPLICATION}/{container}/stderr.gz"


def write_client_mode_logs(cluster_id: str, step_id: str) -> None:
    put_log(step_log_key(cluster_id, step_id), CLIENT_MODE_STDERR)


def write_cluster_mode_logs(cluster_id: str, step_id: str) -> None:
    """The step's stderr, the driver's container (attempt 1) and an executor's container."""
    put_log(step_log_key(cluster_id, step_id), CLUSTER_MODE_STDERR)
    put_log(container_log_key(cluster_id, 1, 1), f"{SPARK_BEFORE}\n{DRIVER_TRACEBACK}\n")
    put_log(container_log_key(cluster_id, 1, 2), "26/12/01 10:01:00 INFO Executor: started\n")


def sensor_saw_running(run_id: str, task_id: str) -> bool:
    """Whether the sensor ``task_id`` of the run has found its step unfinished (reschedule)."""
    from airflow.models.taskinstance import TaskInstance
    from airflow.models.taskreschedule import TaskReschedule
    from airflow.utils.session import create_session
    from sqlalchemy import func, select

    query = (
        select(func.count())
        .select_from(TaskReschedule)
        .join(TaskInstance, TaskReschedule.ti_id == TaskInstance.id)
        .where(TaskInstance.run_id == run_id, TaskInstance.task_id == task_id)
    )
    with create_session() as session:
        return session.scalar(query) > 0


@contextmanager
def steps_finish(
    fail_stage: str | None = None, unseen_s: float = 120.0, train_accuracy: float = 0.97
) -> Iterator[None]:
    """While inside, each step of a cluster tagged with a DAG run finishes once its sensor has
    found it unfinished: FAILED for ``fail_stage`` (steps are named ``fruits <stage> ds=…``;
    logs written as EMR does in client mode), COMPLETED otherwise, with the reports it writes
    (:func:`write_step_outputs`). A step no sensor looks at within ``unseen_s`` fails, saying
    so, rather than leaving the test waiting."""
    stop = threading.Event()
    first_seen: dict[str, float] = {}

    def finish(cluster, step) -> None:
        stage = step.name.split(" ")[1]
        run_id = dict((tag["Key"], tag["Value"]) for tag in cluster.tags).get("dag_run_id")
        waited = time.monotonic() - first_seen.setdefault(step.id, time.monotonic())
        if run_id and sensor_saw_running(run_id, f"wait_for_{stage}"):
            if stage == fail_stage:
                write_client_mode_logs(cluster.id, step.id)
                step.last_state_change_reason = STEP_FAILURE_REASON
                step.state = "FAILED"
            else:
                write_step_outputs(step, train_accuracy)
                step.state = "COMPLETED"
        elif waited > unseen_s:
            step.last_state_change_reason = "no sensor looked at this step (test fake)"
            step.state = "FAILED"

    def drive() -> None:
        while not stop.wait(0.1):
            for cluster in list(emr_backend().clusters.values()):
                for step in list(cluster.steps):
                    if step.state in UNFINISHED:
                        finish(cluster, step)

    driver = threading.Thread(target=drive, name="emr-step-driver", daemon=True)
    driver.start()
    try:
        yield
    finally:
        stop.set()
        driver.join()
