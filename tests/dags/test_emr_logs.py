"""Why a step or a cluster failed, read from logs laid out in (moto) S3 as EMR writes them."""

from __future__ import annotations

from collections.abc import Iterator

import boto3
import pytest
from airflow.providers.amazon.aws.hooks.s3 import S3Hook
from airflow.sdk.exceptions import AirflowException
from aws_fakes import (
    BUCKET,
    CLIENT_MODE_STDERR,
    DRIVER_TRACEBACK,
    LOG_PREFIX,
    REGION,
    SPARK_AFTER,
    STEP_FAILURE_REASON,
    container_log_key,
    emr_backend,
    fake_aws,
    put_log,
    write_client_mode_logs,
    write_cluster_mode_logs,
)

from fruits_airflow import emr_logs
from fruits_airflow.emr_operators import RunStepSensor, StepFailed, in_flight_step, is_transient


def test_the_traceback_is_the_drivers_last_one_without_sparks_records_around_it():
    assert emr_logs.python_traceback(CLIENT_MODE_STDERR) == DRIVER_TRACEBACK


def test_chained_exceptions_stay_and_a_long_traceback_keeps_its_end():
    chained = (
        "Traceback (most recent call last):\n  File 'a.py', line 1\nKeyError: 'x'\n\n"
        "During handling of the above exception, another exception occurred:\n\n"
        "Traceback (most recent call last):\n  File 'b.py', line 2\nValueError: bad"
    )
    assert emr_logs.python_traceback(f"26/12/01 10:00:00 INFO x: y\n{chained}\n") == chained
    frames = "".join(f"  File 'f{i}.py', line {i}\n" for i in range(400))
    long = emr_logs.python_traceback(f"Traceback (most recent call last):\n{frames}OSError: end")
    assert long.splitlines()[0] == emr_logs.TRACEBACK
    assert long.splitlines()[-1] == "OSError: end"
    assert "lines omitted" in long
    assert emr_logs.python_traceback("26/12/01 10:00:00 ERROR no python here\n") is None


@pytest.fixture
def cluster(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple]:
    """A moto cluster logging to the test bucket, with one step; and the S3 hook."""
    with fake_aws(monkeypatch):
        emr = boto3.client("emr", region_name=REGION)
        cluster_id = emr.run_job_flow(
            Name="fruits-pipeline ds=2024-03-05",
            ReleaseLabel="emr-7.12.0",
            LogUri=f"s3://{BUCKET}/{LOG_PREFIX}/",
            Instances={"InstanceCount": 1, "KeepJobFlowAliveWhenNoSteps": True},
            JobFlowRole="EMR_EC2_DefaultRole",
            ServiceRole="EMR_DefaultRole_V2",
        )["JobFlowId"]
        (step_id,) = emr.add_job_flow_steps(
            JobFlowId=cluster_id,
            Steps=[
                {
                    "Name": "fruits featurize ds=2024-03-05",
                    "HadoopJarStep": {"Jar": "command-runner.jar", "Args": ["spark-submit"]},
                }
            ],
        )["StepIds"]
        (step,) = emr_backend().clusters[cluster_id].steps
        step.last_state_change_reason = STEP_FAILURE_REASON
        step.state = "FAILED"
        yield emr, S3Hook(aws_conn_id="aws_default", region_name=REGION), cluster_id, step_id


def report(cluster, **kwargs) -> str:
    emr, s3, cluster_id, step_id = cluster
    return emr_logs.step_failure_report(emr, s3, cluster_id, step_id, wait_s=0, **kwargs)


def test_client_mode_the_traceback_is_in_the_steps_stderr(cluster):
    _, _, cluster_id, step_id = cluster
    write_client_mode_logs(cluster_id, step_id)
    text = report(cluster)
    assert f"EMR step {step_id} (fruits featurize ds=2024-03-05)" in text
    assert f"Reason:  {STEP_FAILURE_REASON}" in text
    where = f"s3://{BUCKET}/{LOG_PREFIX}/{cluster_id}/steps/{step_id}/stderr.gz"
    assert f"Python traceback of the driver ({where}):" in text
    for line in DRIVER_TRACEBACK.splitlines():
        assert f"    {line}" in text
    for line in SPARK_AFTER.splitlines():
        assert line not in text


def test_cluster_mode_the_traceback_is_in_the_drivers_container_log(cluster):
    """The step's stderr names the application; the driver is its attempt's first container.
    A second attempt (two were allowed before) is the one read."""
    _, _, cluster_id, step_id = cluster
    write_cluster_mode_logs(cluster_id, step_id)
    put_log(container_log_key(cluster_id, 2, 1), f"{DRIVER_TRACEBACK}\nOSError: attempt 2\n")
    text = report(cluster)
    where = f"s3://{BUCKET}/{container_log_key(cluster_id, 2, 1)}"
    assert f"Python traceback of the driver ({where}):" in text
    assert "    OSError: attempt 2" in text


def test_without_a_traceback_the_stderr_tail_is_shown(cluster):
    _, _, cluster_id, step_id = cluster
    put_log(f"{LOG_PREFIX}/{cluster_id}/steps/{step_id}/stderr.gz", "spark-submit: bad option\n")
    text = report(cluster)
    assert "no Python traceback in" in text
    assert "    spark-submit: bad option" in text


def test_while_the_logs_are_not_uploaded_the_report_waits_then_says_where_to_look(cluster):
    """EMR uploads logs a little after the step ends: the report polls up to its bound."""
    emr, s3, cluster_id, step_id = cluster
    naps: list[float] = []

    def nap(seconds: float) -> None:  # the logs arrive during the second wait
        naps.append(seconds)
        if len(naps) == 2:
            write_client_mode_logs(cluster_id, step_id)

    text = emr_logs.step_failure_report(
        emr, s3, cluster_id, step_id, wait_s=60, poll_s=0.01, sleep=nap
    )
    assert len(naps) == 2
    assert DRIVER_TRACEBACK.splitlines()[-1] in text

    boto3.client("s3", region_name=REGION).delete_object(
        Bucket=BUCKET, Key=f"{LOG_PREFIX}/{cluster_id}/steps/{step_id}/stderr.gz"
    )
    assert "no step log at" in report(cluster)


def test_a_cluster_that_did_not_start_shows_its_reason_and_the_bootstrap_stderr(cluster):
    emr, s3, cluster_id, _ = cluster
    moto_cluster = emr_backend().clusters[cluster_id]
    moto_cluster.state = "TERMINATED_WITH_ERRORS"
    moto_cluster.last_state_change_reason = "bootstrap action 1 returned a non-zero return code"
    put_log(
        f"{LOG_PREFIX}/{cluster_id}/node/i-0abc/bootstrap-actions/1/stderr.gz",
        "fruits bootstrap: not at constraints.txt's versions: numpy==2.1.0\n",
    )
    text = emr_logs.cluster_failure_report(emr, s3, cluster_id)
    assert f"EMR cluster {cluster_id}: TERMINATED_WITH_ERRORS" in text
    assert "bootstrap action 1 returned a non-zero return code" in text
    assert "    fruits bootstrap: not at constraints.txt's versions: numpy==2.1.0" in text


@pytest.mark.parametrize(
    ("status", "transient"),
    [
        ({"State": "STARTING"}, True),  # the wait gave up on a slow start
        (
            {"State": "TERMINATED_WITH_ERRORS", "StateChangeReason": {"Code": "INTERNAL_ERROR"}},
            True,
        ),
        (
            {"State": "TERMINATED_WITH_ERRORS", "StateChangeReason": {"Code": "BOOTSTRAP_FAILURE"}},
            False,
        ),
        (
            {"State": "TERMINATED_WITH_ERRORS", "StateChangeReason": {"Code": "VALIDATION_ERROR"}},
            False,
        ),
        ({"State": "TERMINATED", "StateChangeReason": {"Code": "USER_REQUEST"}}, False),
    ],
)
def test_only_transient_cluster_failures_are_retried(status, transient):
    assert is_transient(status) is transient


def test_a_step_still_pending_or_running_is_found_by_name_not_added_twice(cluster):
    emr, _, cluster_id, failed = cluster
    assert in_flight_step(emr, cluster_id, "fruits featurize ds=2024-03-05") is None  # FAILED
    (again,) = emr.add_job_flow_steps(
        JobFlowId=cluster_id,
        Steps=[
            {
                "Name": "fruits featurize ds=2024-03-05",
                "HadoopJarStep": {"Jar": "command-runner.jar", "Args": ["spark-submit"]},
            }
        ],
    )["StepIds"]
    assert again != failed
    assert in_flight_step(emr, cluster_id, "fruits featurize ds=2024-03-05") == again
    assert in_flight_step(emr, cluster_id, "fruits pca ds=2024-03-05") is None


def test_a_deferred_sensor_fails_a_failed_step_for_good_and_any_other_error_as_usual(cluster):
    """After the triggerer: a failed step raises StepFailed (no retry) with the traceback
    logged; a failure of the wait itself stays an ordinary error, which Airflow retries."""
    _, _, cluster_id, step_id = cluster
    write_client_mode_logs(cluster_id, step_id)
    sensor = RunStepSensor(
        task_id="wait_for_featurize",
        job_flow_id=cluster_id,
        step_id=step_id,
        aws_conn_id="aws_default",
        region_name=REGION,
    )
    sensor.log_wait_s = 0
    event = {"status": "failure", "message": "Waiter StepComplete failed"}
    with pytest.raises(StepFailed, match=f"EMR step {step_id} FAILED") as failed:
        sensor.execute_complete({}, event)
    assert "not retried" in str(failed.value)

    emr_backend().clusters[cluster_id].steps[0].state = "RUNNING"  # the wait gave up early
    with pytest.raises(AirflowException) as waited:
        sensor.execute_complete({}, event)
    assert not isinstance(waited.value, StepFailed)
