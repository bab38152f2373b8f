"""The EMR graph when things go wrong, against moto: a failed step, a region outside the EU."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import boto3
import pytest
from aws_fakes import BUCKET, REGION, create_bucket, emr_backend, fake_aws, steps_finish
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


def test_a_failed_step_fails_the_run_and_the_teardown_still_terminates_the_cluster(emr_dag):
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
        "terminate_cluster": "success",
    }
    (cluster,) = emr_backend().clusters.values()
    assert [step.state for step in cluster.steps] == ["COMPLETED", "FAILED"]
    emr = boto3.client("emr", region_name=REGION)
    assert emr.describe_cluster(ClusterId=cluster.id)["Cluster"]["Status"]["State"] == "TERMINATED"


@pytest.mark.parametrize(
    ("variables", "conf", "refused"),
    [
        ({"AIRFLOW_VAR_FRUITS_AWS_REGION": "us-east-1"}, None, "'us-east-1', outside the EU"),
        ({"AIRFLOW_VAR_FRUITS_AWS_REGION": "eu-west-2"}, None, "'eu-west-2', outside the EU"),
        ({"AIRFLOW_VAR_FRUITS_BUCKET": US_BUCKET}, None, f"bucket '{US_BUCKET}'"),
        ({}, {"input": f"s3://{US_BUCKET}/images"}, f"bucket '{US_BUCKET}'"),
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
