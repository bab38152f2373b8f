"""publish_model in the DAG, both outcomes, in both graphs: the local twin (pointer in a local
folder) and EMR against moto (pointer in S3).

Only publish_model (and validate_params, whose request it reads) runs; the stages before it are
marked successful. On EMR the train step's report is where a real step writes it (S3); in the
local twin the train task's spark-submit is replaced by the report of a real, small train run
made in this process (tests/small_models.py), which the task returns as its XCom as usual.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path

import boto3
import pytest
from aws_fakes import BUCKET, REGION, fake_aws, put_json
from dag_harness import parse_dag, states

from fruits import promotion
from fruits.stages import STAGES, RunPaths
from fruits_airflow import local_stages

DAY_1 = dt.datetime(2024, 5, 1, tzinfo=dt.UTC)
DAY_2 = dt.datetime(2024, 5, 2, tzinfo=dt.UTC)
LOCAL_SKIPPED = "|".join(stage.name for stage in STAGES if stage.name != "train")
EMR_SKIPPED = "check_region|prepare|create_cluster|terminate_cluster|" + "|".join(
    f"{stage.name}|wait_for_{stage.name}" for stage in STAGES
)


def failure_log(capsys, caplog) -> str:
    return capsys.readouterr().out + caplog.text


@pytest.fixture
def local_dag(monkeypatch, small_models, sample_dir, weights_path, tmp_path):
    """The local twin whose train task returns the small models' real train reports in turn."""
    output = tmp_path / "output"
    trained = iter([small_models.a, small_models.b])

    def train_stage(name, request, ds):
        assert name == "train"
        model = output / f"model-{ds}"  # a train output folder of this run
        shutil.copytree(next(trained), model)
        return {"stage": "train", "output": str(model)}

    monkeypatch.setattr(local_stages, "run_local_stage", train_stage)
    dag = parse_dag(
        monkeypatch,
        FRUITS_EXECUTION="local",
        FRUITS_INPUT=str(small_models.images),
        FRUITS_OUTPUT=str(output),
        FRUITS_WEIGHTS=str(weights_path),
    )
    return dag, output


def test_local_twin_promotes_a_good_model_then_keeps_it_when_the_next_fails_the_gate(
    local_dag, monkeypatch, capsys, caplog
):
    dag, output = local_dag
    pointer = Path(promotion.default_pointer(str(output)))
    monkeypatch.setenv("FRUITS_GATE_FLOORS", "*=0.75")
    first = dag.test(logical_date=DAY_1, mark_success_pattern=LOCAL_SKIPPED)
    assert states(first)["publish_model"] == "success", states(first)
    served = json.loads(pointer.read_text())
    assert served["model"] == str(output / "model-2024-05-01")
    assert served["ds"] == "2024-05-01" and served["run_id"] == first.run_id
    decision = first.get_task_instance("publish_model").xcom_pull(task_ids="publish_model")
    assert decision["outcome"] == "promoted" and decision["version"] == served["version"]

    # The second model has no evaluation on a domain the deployment now requires.
    monkeypatch.setenv("FRUITS_GATE_FLOORS", "*=0.75,grocery_real=0.5")
    before = pointer.read_bytes()
    second = dag.test(logical_date=DAY_2, mark_success_pattern=LOCAL_SKIPPED)
    assert second.state == "failed"
    assert states(second)["publish_model"] == "failed"
    assert pointer.read_bytes() == before
    log = failure_log(capsys, caplog)
    assert "NOT promoted, current model " + served["version"] + " stays" in log
    assert "no evaluation on domain 'grocery_real'" in log


@pytest.fixture
def emr_dag(monkeypatch):
    with fake_aws(monkeypatch):
        yield parse_dag(monkeypatch, FRUITS_EXECUTION="emr", FRUITS_DEFERRABLE="false")


def put_train_outputs(ds: str, report: dict) -> str:
    """The train step's two reports in S3, where the run's paths put them: the stage report
    and the model folder's report.json."""
    paths = RunPaths(inputs=(f"s3://{BUCKET}/input",), root=f"s3://{BUCKET}/output", ds=ds)
    model = f"{paths.partition('model')}/run=20240501T000000Z-0000000{ds[-1]}"
    put_json(paths.report("train"), {"output": model})
    put_json(f"{model}/report.json", report)
    return model


def test_emr_promotes_in_s3_then_refuses_a_model_worse_than_the_served_one(
    emr_dag, small_models, capsys, caplog
):
    real = json.loads((small_models.a / "report.json").read_text())
    metrics = promotion.domain_metrics(real)
    domain = next(name for name in metrics if name.endswith("/variety"))
    accuracy = metrics[domain]
    model_1 = put_train_outputs("2024-05-01", real)
    first = emr_dag.test(logical_date=DAY_1, mark_success_pattern=EMR_SKIPPED)
    assert states(first)["publish_model"] == "success", states(first)
    s3 = boto3.client("s3", region_name=REGION)
    key = f"output/{promotion.POINTER_NAME}"  # the default pointer under the output root
    served = json.loads(s3.get_object(Bucket=BUCKET, Key=key)["Body"].read())
    assert served["model"] == model_1
    assert served["metrics"] == metrics

    worse_domain = {**real["domains"][domain], "top1": accuracy - 0.1}
    worse = {**real, "domains": {**real["domains"], domain: worse_domain}}
    put_train_outputs("2024-05-02", worse)
    second = emr_dag.test(logical_date=DAY_2, mark_success_pattern=EMR_SKIPPED)
    assert states(second)["publish_model"] == "failed"
    assert json.loads(s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()) == served
    log = failure_log(capsys, caplog)
    assert f"is 0.1000 below the current model's {accuracy:.4f}" in log
