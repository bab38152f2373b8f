"""One EMR run through ``dag.test()`` against moto — real operators, sensors, hooks and DB —
then what it asked of AWS, test by test."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from aws_fakes import BUCKET, INPUT_BUCKET, REGION, emr_backend, fake_aws, steps_finish
from dag_harness import parse_dag, rendered, reschedules, states

from fruits.config import PRODUCTION_INPUT_SIZE
from fruits.stages import STAGES
from fruits_airflow import capacity
from fruits_airflow.capacity import ClusterShape
from fruits_airflow.cluster_python import CONSTRAINTS_FILE, EMR_PYTHON, pins

LOGICAL_DATE = dt.datetime(2024, 3, 5, tzinfo=dt.UTC)
DS = "2024-03-05"
STAGE_NAMES = [stage.name for stage in STAGES]
OUT = f"s3://{BUCKET}/output"


def content_addressed(kind: str, name: str) -> re.Pattern[str]:
    return re.compile(rf"s3://{BUCKET}/artifacts/{kind}/[0-9a-f]{{64}}/{re.escape(name)}")


@pytest.fixture(scope="module")
def emr_run(module_monkeypatch: pytest.MonkeyPatch, weights_path: Path) -> Iterator:
    """A manual run with params: 3 core nodes, 2 task nodes (Spot), k = 7, a local weights file
    from the folder the workers allow (FRUITS_EMR_WEIGHTS_DIR)."""
    with fake_aws(module_monkeypatch):
        module_monkeypatch.setenv("FRUITS_EMR_WEIGHTS_DIR", str(weights_path.parent))
        dag = parse_dag(
            module_monkeypatch,
            FRUITS_EXECUTION="emr",
            FRUITS_DEFERRABLE="false",
            FRUITS_POKE_INTERVAL="0.2",
        )
        conf = {
            "core_instance_count": 3,
            "task_instance_count": 2,
            "k": 7,
            "weights": str(weights_path),
        }
        with steps_finish():
            run = dag.test(logical_date=LOGICAL_DATE, run_conf=conf)
        yield run


@pytest.fixture(scope="module")
def emr(emr_run):
    return boto3.client("emr", region_name=REGION)


@pytest.fixture(scope="module")
def cluster(emr_run):
    """moto's record of the one cluster the run created."""
    (only,) = emr_backend().clusters.values()
    return only


def split_submit(args: list[str]) -> tuple[dict[str, str], dict[str, str], list[str], list[str]]:
    """A step's spark-submit → (options, --conf pairs, [py-files, script], stage arguments)."""
    assert args[0] == "spark-submit"
    options, conf, rest = {}, {}, args[1:]
    while rest[0].startswith("--"):
        name, value, rest = rest[0], rest[1], rest[2:]
        if name == "--conf":
            key, _, conf[key] = value.partition("=")
        else:
            options[name] = value
    return options, conf, [options.get("--py-files", ""), rest[0]], rest[1:]


@pytest.fixture(scope="module")
def step_args(cluster) -> dict[str, list[str]]:
    """Stage → the stage's own arguments (after spark-submit's options and the script)."""
    return {
        stage: split_submit(step.args)[3]
        for stage, step in zip(STAGE_NAMES, cluster.steps, strict=True)
    }


def test_the_run_succeeds_with_every_task(emr_run):
    assert emr_run.state == "success"
    assert set(states(emr_run).values()) == {"success"}, states(emr_run)


def test_one_cluster_in_eu_west_3_with_the_pinned_release_spark_logs_and_encryption(emr, cluster):
    for elsewhere in ("eu-west-1", "us-east-1"):
        assert emr_backend(elsewhere).clusters == {}
    described = emr.describe_cluster(ClusterId=cluster.id)["Cluster"]
    assert described["ReleaseLabel"] == "emr-7.12.0"
    assert [app["Name"] for app in described["Applications"]] == ["Spark"]
    assert described["LogUri"] == f"s3://{BUCKET}/logs/emr/"
    assert described["SecurityConfiguration"] == "fruits-encryption-at-rest"
    assert described["ServiceRole"] == "EMR_DefaultRole_V2"  # AmazonEMRServicePolicy_v2


def test_the_cluster_ends_itself_when_idle_and_waits_between_steps(emr_run):
    """What moto does not model, read from the request the operator rendered and sent."""
    request = rendered(emr_run.get_task_instance("create_cluster"))["job_flow_overrides"]
    assert request["AutoTerminationPolicy"] == {"IdleTimeout": 3600}
    assert request["Instances"]["KeepJobFlowAliveWhenNoSteps"] is True
    assert request["Instances"]["TerminationProtected"] is False


def test_the_cluster_is_tagged_with_the_project_run_and_date(emr, emr_run, cluster):
    tags = emr.describe_cluster(ClusterId=cluster.id)["Cluster"]["Tags"]
    assert {tag["Key"]: tag["Value"] for tag in tags} == {
        "project": "fruits",
        "dag_run_id": emr_run.run_id,
        "ds": DS,
    }


def test_core_nodes_on_demand_and_spot_only_on_task_nodes(emr, cluster):
    listed = emr.list_instance_groups(ClusterId=cluster.id)["InstanceGroups"]
    groups = {
        group["InstanceGroupType"]: (
            group["RequestedInstanceCount"],
            group["Market"],
            group["InstanceType"],
        )
        for group in listed
    }
    assert groups == {
        "MASTER": (1, "ON_DEMAND", "m5.xlarge"),
        "CORE": (3, "ON_DEMAND", "m5.xlarge"),
        "TASK": (2, "SPOT", "m5.xlarge"),
    }


def uploaded(uri: str) -> str:
    s3 = boto3.client("s3", region_name=REGION)
    return s3.get_object(Bucket=BUCKET, Key=uri.removeprefix(f"s3://{BUCKET}/"))["Body"].read()


def test_every_node_builds_the_venv_at_constraints_versions_and_spark_uses_it(emr, cluster):
    (bootstrap,) = emr.list_bootstrap_actions(ClusterId=cluster.id)["BootstrapActions"]
    assert content_addressed("bootstrap", "install_python_deps.sh").fullmatch(
        bootstrap["ScriptPath"]
    )
    requirements, constraints = bootstrap["Args"]
    assert content_addressed("python", "requirements.txt").fullmatch(requirements)
    assert content_addressed("python", "constraints.txt").fullmatch(constraints)
    assert uploaded(constraints) == CONSTRAINTS_FILE.read_bytes()
    pinned = {name: version for name, version in pins(CONSTRAINTS_FILE.read_text()).values()}
    lines = [line for line in uploaded(requirements).decode().splitlines() if "==" in line]
    assert {line.split("==")[0] for line in lines} >= {"tensorflow_cpu", "numpy", "pyarrow"}
    for line in lines:
        name, version = line.split("==")
        assert pinned[name] == version
    assert not [line for line in lines if line.startswith("pyspark")]

    by_class = {c["Classification"]: c for c in cluster.configurations}
    exports = by_class["spark-env"]["Configurations"][0]["Properties"]
    assert exports == {"PYSPARK_PYTHON": EMR_PYTHON, "PYSPARK_DRIVER_PYTHON": EMR_PYTHON}
    assert EMR_PYTHON == "/opt/fruits/venv/bin/python"
    defaults = by_class["spark-defaults"]["Properties"]
    for key in (
        "spark.pyspark.python",
        "spark.pyspark.driver.python",
        "spark.executorEnv.PYSPARK_PYTHON",
        "spark.yarn.appMasterEnv.PYSPARK_PYTHON",
    ):
        assert defaults[key] == EMR_PYTHON, key
    assert defaults["spark.sql.execution.arrow.pyspark.enabled"] == "true"
    yarn = by_class["yarn-site"]["Properties"]
    assert yarn["yarn.node-labels.am.default-node-label-expression"] == "CORE"


def test_each_stage_adds_one_client_mode_step_with_one_attempt_and_the_models_memory(cluster):
    """Client mode (the default): the driver runs in the step on the primary node. Executors
    as the capacity model sizes them for 3 core + 2 task m5.xlarge nodes and the deployment's
    network input size (416): 5 of 4 cores."""
    workload = capacity.Workload(input_size=PRODUCTION_INPUT_SIZE)
    expected = capacity.plan(ClusterShape("m5.xlarge", "m5.xlarge", 3, 2), workload)
    assert expected.executors == 5
    assert [step.name for step in cluster.steps] == [f"fruits {s} ds={DS}" for s in STAGE_NAMES]
    for stage, step in zip(STAGES, cluster.steps, strict=True):
        options, conf, (py_files, script), _ = split_submit(step.args)
        assert step.jar == "command-runner.jar"
        assert (options["--master"], options["--deploy-mode"]) == ("yarn", "client")
        assert conf["spark.yarn.maxAppAttempts"] == "1"
        assert conf == {"spark.yarn.maxAppAttempts": "1", **expected.sizing.conf()}
        assert conf["spark.dynamicAllocation.maxExecutors"] == "5"
        assert content_addressed("code", "fruits.zip").fullmatch(py_files)
        assert content_addressed("code", stage.script).fullmatch(script)
        assert step.state == "COMPLETED"


def test_steps_read_and_write_the_logical_dates_partitions(step_args):
    """Every stage works under the output root for the run's logical date; load reads the
    input prefix (the stages derive their partitions, runs and reports from root and date)."""
    for stage in STAGE_NAMES:
        args = step_args[stage]
        assert args[:4] == ["--root", OUT, "--ds", DS], stage
    load = step_args["load"]
    assert load[load.index("--input") + 1] == f"s3://{INPUT_BUCKET}/fruits-360"


def test_params_reach_the_steps(step_args, weights_path):
    featurize, pca = step_args["featurize"], step_args["pca"]
    weights = featurize[featurize.index("--weights") + 1]
    assert content_addressed("models", weights_path.name).fullmatch(weights)
    assert pca[pca.index("--k") + 1] == "7"
    assert "--variance" not in pca
    assert featurize[featurize.index("--input-size") + 1] == str(PRODUCTION_INPUT_SIZE)


def test_every_artifact_a_step_names_was_uploaded(cluster, step_args, weights_path):
    s3 = boto3.client("s3", region_name=REGION)
    featurize = step_args["featurize"]
    uris = {uri for step in cluster.steps for uri in split_submit(step.args)[2]}
    uris.add(featurize[featurize.index("--weights") + 1])
    for uri in uris:
        key = uri.removeprefix(f"s3://{BUCKET}/")
        s3.head_object(Bucket=BUCKET, Key=key)
    weights_key = featurize[featurize.index("--weights") + 1].removeprefix(f"s3://{BUCKET}/")
    uploaded = s3.get_object(Bucket=BUCKET, Key=weights_key)["Body"].read()
    assert uploaded == weights_path.read_bytes()


def test_each_sensor_waits_on_the_step_its_stage_added(emr_run, cluster):
    for stage, step in zip(STAGE_NAMES, cluster.steps, strict=True):
        sensor = emr_run.get_task_instance(f"wait_for_{stage}")
        fields = rendered(sensor)
        assert (fields["job_flow_id"], fields["step_id"]) == (cluster.id, step.id)
        assert fields["region_name"] == REGION
        assert reschedules(sensor) >= 1  # it found the step running, and came back


def test_the_cluster_is_terminated_at_the_end(emr, cluster):
    state = emr.describe_cluster(ClusterId=cluster.id)["Cluster"]["Status"]["State"]
    assert state == "TERMINATED"
