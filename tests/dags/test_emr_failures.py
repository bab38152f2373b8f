"""The EMR graph when things go wrong, against moto: a failed step, a cluster already started
or left behind by a failed creation, a region or bucket outside what the run may use."""

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
    REGION,
    STDERR_TAIL,
    STEP_FAILURE,
    create_bucket,
    emr_backend,
    fake_aws,
    steps_finish,
)
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


def test_a_failed_step_fails_the_run_and_the_teardown_still_terminates_the_cluster(
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
    assert [step.state for step in cluster.steps] == ["COMPLETED", "FAILED"]
    emr = boto3.client("emr", region_name=REGION)
    assert emr.describe_cluster(ClusterId=cluster.id)["Cluster"]["Status"]["State"] == "TERMINATED"
    log = capsys.readouterr().out + caplog.text  # the sensor's task log says why
    failed = cluster.steps[1].id
    for text in (*STEP_FAILURE.values(), f"{cluster.id}/steps/{failed}/stderr.gz", STDERR_TAIL):
        for line in text.splitlines():
            assert line in log, line


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


def test_a_failed_creation_still_terminates_the_cluster_it_started(emr_dag):
    """The provider cleans up after a WaiterError only; any other failure (here a throttled
    DescribeCluster while waiting) leaves a cluster and no id pushed: the teardown finds it."""
    real_get_waiter = EmrHook.get_waiter

    def waiter_that_breaks(hook, name, *args, **kwargs):
        waiter = real_get_waiter(hook, name, *args, **kwargs)
        if name == "job_flow_waiting":  # create_cluster's wait for the cluster to be up
            waiter.wait = mock.Mock(side_effect=RuntimeError("throttled: worker gave up"))
        return waiter

    with mock.patch.object(EmrHook, "get_waiter", waiter_that_breaks):
        run = emr_dag.test(logical_date=LOGICAL_DATE)

    assert run.state == "failed"
    assert states(run)["create_cluster"] == "failed"
    assert states(run)["terminate_cluster"] == "success"
    (cluster,) = emr_backend().clusters.values()
    emr = boto3.client("emr", region_name=REGION)
    assert emr.describe_cluster(ClusterId=cluster.id)["Cluster"]["Status"]["State"] == "TERMINATED"


def test_an_input_outside_the_allowed_buckets_stops_the_run_before_anything(emr_dag, capsys):
    create_bucket("someone-else", REGION)
    run = emr_dag.test(logical_date=LOGICAL_DATE, run_conf={"input": "s3://someone-else/x"})

    assert run.state == "failed"
    assert states(run)["validate_params"] == "failed"
    assert states(run)["terminate_cluster"] in {"upstream_failed", "skipped"}
    assert "bucket 'someone-else' is neither the deployment bucket" in capsys.readouterr().out
    assert emr_backend().clusters == {}


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
