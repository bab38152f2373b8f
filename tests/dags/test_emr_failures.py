"""The EMR graph when things go wrong, against moto: a failed step, a cluster already started
or left behind by a failed creation, a request refused before any AWS call, a region or bucket
outside what the run may use."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from unittest import mock

import boto3
import pytest
from airflow.models.dagrun import DagRun
from airflow.providers.amazon.aws.hooks.emr import EmrHook
from aws_fakes import (
    BUCKET,
    DRIVER_TRACEBACK,
    LOG_PREFIX,
    REGION,
    SPARK_AFTER,
    STEP_FAILURE_REASON,
    create_bucket,
    emr_backend,
    fake_aws,
    put_log,
    steps_finish,
)
from botocore.exceptions import WaiterError
from dag_harness import parse_dag, states

from fruits.stages import STAGES

LOGICAL_DATE = dt.datetime(2024, 3, 5, tzinfo=dt.UTC)
US_BUCKET = "fruits-test-us"
STAGE_NAMES = [stage.name for stage in STAGES]


@pytest.fixture
def emr_dag(monkeypatch: pytest.MonkeyPatch) -> Iterator:
    with fake_aws(monkeypatch):
        create_bucket(US_BUCKET, "us-east-1")
        yield parse_dag(
            monkeypatch,
            FRUITS_EXECUTION="emr",
            FRUITS_DEFERRABLE="false",
            FRUITS_POKE_INTERVAL="0.2",
        )


def test_a_failed_step_fails_the_run_once_with_the_drivers_traceback_and_the_teardown_runs(
    emr_dag, capsys, caplog
):
    with steps_finish(fail_stage="featurize"):
        run = emr_dag.test(logical_date=LOGICAL_DATE)

    assert run.state == "failed"
    after = STAGE_NAMES[STAGE_NAMES.index("featurize") + 1 :]
    assert states(run) == {
        "validate_params": "success",
        "check_region": "success",
        "prepare": "success",
        "create_cluster": "success",
        "load": "success",
        "wait_for_load": "success",
        "featurize": "success",
        "wait_for_featurize": "failed",
        **{task: "upstream_failed" for stage in after for task in (stage, f"wait_for_{stage}")},
        "publish_model": "upstream_failed",
        "terminate_cluster": "success",
    }
    (cluster,) = emr_backend().clusters.values()
    # one step per stage: the failed step was not submitted again
    assert [step.state for step in cluster.steps] == ["COMPLETED", "FAILED"]
    assert run.get_task_instance("wait_for_featurize").try_number == 1  # no retry
    emr = boto3.client("emr", region_name=REGION)
    assert emr.describe_cluster(ClusterId=cluster.id)["Cluster"]["Status"]["State"] == "TERMINATED"
    log = capsys.readouterr().out + caplog.text  # the sensor's task log says why
    failed = cluster.steps[1].id
    assert f"{cluster.id}/steps/{failed}/stderr.gz" in log
    assert STEP_FAILURE_REASON in log
    assert "Python traceback of the driver" in log
    for line in DRIVER_TRACEBACK.splitlines():
        assert line in log, line
    for line in SPARK_AFTER.splitlines():  # the traceback, not the log's tail
        assert line not in log, line
    assert "not retried" in log


RUN_ID = "manual__2024-03-05-retried"


def start_tagged_cluster(run_id: str) -> str:
    """A cluster of ``run_id`` already up, as a retried or cleared create_cluster finds it."""
    return boto3.client("emr", region_name=REGION).run_job_flow(
        Name="fruits-pipeline ds=2024-03-05",
        ReleaseLabel="emr-7.12.0",
        Instances={"InstanceCount": 1, "KeepJobFlowAliveWhenNoSteps": True},
        JobFlowRole="EMR_EC2_DefaultRole",
        ServiceRole="EMR_DefaultRole",
        Tags=[{"Key": "project", "Value": "fruits"}, {"Key": "dag_run_id", "Value": run_id}],
    )["JobFlowId"]


def test_a_cluster_already_started_for_the_run_is_reused_not_doubled(emr_dag):
    started = start_tagged_cluster(RUN_ID)
    start_tagged_cluster("manual__another-run")  # another run's cluster is left alone

    # dag.test() names its run after the clock: give it the id the cluster is tagged with.
    with steps_finish(), mock.patch.object(DagRun, "generate_run_id", return_value=RUN_ID):
        run = emr_dag.test(logical_date=LOGICAL_DATE)

    assert (run.run_id, run.state) == (RUN_ID, "success"), states(run)
    clusters = emr_backend().clusters
    assert len(clusters) == 2  # nothing new
    assert len(clusters[started].steps) == len(STAGE_NAMES)
    emr = boto3.client("emr", region_name=REGION)
    described = {c["Id"]: c["Status"]["State"] for c in emr.list_clusters()["Clusters"]}
    assert described[started] == "TERMINATED"
    assert sorted(described.values()) == ["TERMINATED", "WAITING"]


def test_a_failed_creation_is_retried_on_the_same_cluster_then_the_teardown_ends_it(emr_dag):
    """The provider cleans up after a WaiterError only; any other failure (here a throttled
    DescribeCluster while waiting) leaves a cluster and no id pushed. create_cluster's retries
    find the run's cluster instead of starting others; the teardown finds it by its tags."""
    real_get_waiter = EmrHook.get_waiter

    def waiter_that_breaks(hook, name, *args, **kwargs):
        waiter = real_get_waiter(hook, name, *args, **kwargs)
        if name == "job_flow_waiting":  # create_cluster's wait for the cluster to be up
            waiter.wait = mock.Mock(side_effect=RuntimeError("throttled: worker gave up"))
        return waiter

    create = emr_dag.get_task("create_cluster")
    create.retry_delay, create.retry_exponential_backoff = dt.timedelta(0), 0
    with mock.patch.object(EmrHook, "get_waiter", waiter_that_breaks):
        run = emr_dag.test(logical_date=LOGICAL_DATE)

    assert run.state == "failed"
    assert states(run)["create_cluster"] == "failed"
    assert run.get_task_instance("create_cluster").try_number == 1 + create.retries == 4
    assert states(run)["terminate_cluster"] == "success"
    (cluster,) = emr_backend().clusters.values()  # one cluster for the four tries
    emr = boto3.client("emr", region_name=REGION)
    assert emr.describe_cluster(ClusterId=cluster.id)["Cluster"]["Status"]["State"] == "TERMINATED"


def test_a_bootstrap_failure_is_logged_with_its_stderr_and_not_retried(emr_dag, capsys, caplog):
    """The cluster ends TERMINATED_WITH_ERRORS (what the waiter saw): create_cluster logs EMR's
    reason and the bootstrap action's stderr and fails once — another try would fail the same."""
    real_get_waiter = EmrHook.get_waiter
    bootstrap_error = "fruits bootstrap: not at constraints.txt's versions: numpy==2.1.0"
    failed = {
        "State": "TERMINATED_WITH_ERRORS",
        "StateChangeReason": {
            "Code": "BOOTSTRAP_FAILURE",
            "Message": "On the master instance (i-0abc), bootstrap action 1 returned a non-zero "
            "return code",
        },
    }

    def bootstrap_fails(**kwargs):
        cluster_id = kwargs["ClusterId"]
        put_log(
            f"{LOG_PREFIX}/{cluster_id}/node/i-0abc/bootstrap-actions/1/stderr.gz",
            f"{bootstrap_error}\n",
        )
        raise WaiterError(
            "JobFlowWaiting", "terminal failure state", {"Cluster": {"Status": failed}}
        )

    def waiter_that_fails(hook, name, *args, **kwargs):
        waiter = real_get_waiter(hook, name, *args, **kwargs)
        if name == "job_flow_waiting":
            waiter.wait = mock.Mock(side_effect=bootstrap_fails)
        return waiter

    with mock.patch.object(EmrHook, "get_waiter", waiter_that_fails):
        run = emr_dag.test(logical_date=LOGICAL_DATE)

    assert states(run)["create_cluster"] == "failed"
    assert run.get_task_instance("create_cluster").try_number == 1  # not retried
    (cluster,) = emr_backend().clusters.values()
    assert cluster.state == "TERMINATED"  # the provider ended it; the teardown had nothing left
    log = capsys.readouterr().out + caplog.text
    for text in (
        "BOOTSTRAP_FAILURE",
        "bootstrap action 1 returned",
        bootstrap_error,
        "not retried",
    ):
        assert text in log, text


@pytest.mark.parametrize(
    ("variables", "conf", "refused"),
    [
        (
            {},
            {"input": "s3://someone-else/x"},
            "bucket 'someone-else' is neither the deployment bucket",
        ),
        (
            {"FRUITS_EMR_WEIGHTS_DIR": "{models}"},
            {"weights": "{secret}"},
            "only files there are uploaded",
        ),
        (
            {
                "AIRFLOW_VAR_FRUITS_EMR_CORE_INSTANCE_TYPE": "c5.xlarge",
                "AIRFLOW_VAR_FRUITS_EMR_DEPLOY_MODE": "cluster",
            },
            None,
            "no executor can start: a c5.xlarge node gives YARN 6144 MB",
        ),
        ({}, {"core_spot": True}, "core nodes stay on demand"),
    ],
    ids=["input-bucket", "weights-outside-the-allowed-folder", "no-executor", "spot-core"],
)
def test_validate_params_refuses_before_any_aws_call(
    emr_dag, monkeypatch, tmp_path, capsys, variables, conf, refused
):
    """Nothing read, uploaded or created: here a secret file outside the allowed weights
    folder, which must never reach the bucket."""
    (tmp_path / "models").mkdir()
    secret = tmp_path / "secret.h5"
    secret.write_bytes(b"api-key: do not upload")
    paths = {"models": str(tmp_path / "models"), "secret": str(secret)}
    for name, value in variables.items():
        monkeypatch.setenv(name, value.format(**paths))
    conf = {
        key: value.format(**paths) if isinstance(value, str) else value
        for key, value in (conf or {}).items()
    }
    create_bucket("someone-else", REGION)

    run = emr_dag.test(logical_date=LOGICAL_DATE, run_conf=conf)

    assert run.state == "failed"
    assert states(run)["validate_params"] == "failed"
    assert {states(run)[task] for task in ("check_region", "prepare", "terminate_cluster")} <= {
        "upstream_failed",
        "skipped",
    }
    assert refused in capsys.readouterr().out
    assert emr_backend().clusters == {}
    s3 = boto3.client("s3", region_name=REGION)
    assert s3.list_objects_v2(Bucket=BUCKET)["KeyCount"] == 0


@pytest.mark.parametrize(
    ("variables", "conf", "refused"),
    [
        ({"AIRFLOW_VAR_FRUITS_AWS_REGION": "us-east-1"}, None, "'us-east-1', outside the EU"),
        ({"AIRFLOW_VAR_FRUITS_AWS_REGION": "eu-west-2"}, None, "'eu-west-2', outside the EU"),
        ({"AIRFLOW_VAR_FRUITS_BUCKET": US_BUCKET}, None, f"bucket '{US_BUCKET}'"),
        (
            {"AIRFLOW_VAR_FRUITS_S3_ALLOWED_BUCKETS": US_BUCKET},
            {"input": f"s3://{US_BUCKET}/images"},
            f"bucket '{US_BUCKET}'",
        ),
    ],
    ids=["region-variable", "london-is-not-eu", "bucket-variable", "input-param"],
)
def test_outside_the_eu_the_run_stops_before_anything_is_created(
    emr_dag, monkeypatch, capsys, variables, conf, refused
):
    for name, value in variables.items():
        monkeypatch.setenv(name, value)

    run = emr_dag.test(logical_date=LOGICAL_DATE, run_conf=conf)

    assert run.state == "failed"
    assert states(run)["check_region"] == "failed"
    assert {states(run)[task] for task in ("prepare", "create_cluster", "terminate_cluster")} <= {
        "upstream_failed",
        "skipped",
    }
    assert refused in capsys.readouterr().out  # the task log says why
    for region in ("eu-west-3", "eu-west-2", "us-east-1"):
        assert emr_backend(region).clusters == {}
    s3 = boto3.client("s3", region_name=REGION)
    for bucket in (BUCKET, US_BUCKET):
        assert s3.list_objects_v2(Bucket=bucket)["KeyCount"] == 0
