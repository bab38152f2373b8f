"""``fruits-emr plan``: the request, steps and capacity of a run, printed without AWS."""

from __future__ import annotations

import json
from collections.abc import Iterator

import boto3
import pytest
from aws_fakes import BUCKET, REGION, emr_backend, fake_aws

from fruits.stages import STAGES
from fruits_airflow.plan_cli import main

PLAN = ["plan", "--date", "2026-12-01", "--bucket", BUCKET]


@pytest.fixture
def no_aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """moto, to show that a plan uploads nothing and creates nothing."""
    with fake_aws(monkeypatch):
        yield
        assert (
            boto3.client("s3", region_name=REGION).list_objects_v2(Bucket=BUCKET)["KeyCount"] == 0
        )
        assert emr_backend().clusters == {}


def sections(text: str) -> tuple[dict, dict, str]:
    """The printed plan → (RunJobFlow request, steps by stage, the capacity comment lines)."""
    request_at = text.index("{")
    steps_header = text.index("# Steps")
    request = json.loads(text[request_at:steps_header])
    capacity_at = text.index("# Capacity")
    steps = json.loads(text[text.index("\n", steps_header) + 1 : capacity_at])
    return request, steps, text[capacity_at:]


def test_the_plan_prints_the_request_the_steps_and_the_capacity(no_aws, capsys):
    args = [*PLAN, "--core-instance-count", "3", "--task-instance-count", "2"]
    assert main([*args, "--images", "1000000"]) == 0
    request, steps, summary = sections(capsys.readouterr().out)

    groups = {
        g["InstanceRole"]: (g["InstanceCount"], g["Market"])
        for g in request["Instances"]["InstanceGroups"]
    }
    assert groups == {"MASTER": (1, "ON_DEMAND"), "CORE": (3, "ON_DEMAND"), "TASK": (2, "SPOT")}
    assert request["Tags"][1] == {"Key": "dag_run_id", "Value": "manual__2026-12-01"}
    assert list(steps) == [stage.name for stage in STAGES]
    for (step,) in steps.values():
        args = step["HadoopJarStep"]["Args"]
        assert args[args.index("--deploy-mode") + 1] == "client"
        assert "spark.yarn.maxAppAttempts=1" in args
        assert "spark.dynamicAllocation.maxExecutors=5" in args
    assert "# Capacity (deploy mode client):" in summary
    assert "executors  5 (20 task slots on 20 core/task vCPUs)" in summary
    assert "1.632 USD/h" in summary  # 6 x m5.xlarge at 0.224 + 0.048
    assert "# run over 1,000,000 new images: about" in summary


def test_a_workload_of_phone_photos_shows_its_arrow_batches(no_aws, capsys):
    assert main([*PLAN, "--image-mb", "4"]) == 0
    out = capsys.readouterr().out
    assert "2 x 64 MB Arrow batch of 16 rows" in out
    assert "PROBLEM" not in out


def test_a_plan_the_dag_would_refuse_is_refused(no_aws, capsys):
    assert main([*PLAN, "--core-type", "c5.xlarge", "--deploy-mode", "cluster"]) == 2
    assert "refused: the cluster cannot run the jobs" in capsys.readouterr().err
    assert main([*PLAN, "--weights", "/etc/passwd"]) == 2
    assert "no local file may be uploaded" in capsys.readouterr().err
