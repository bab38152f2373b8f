"""The ``fruits_pipeline`` DAG as the scheduler parses it: both graphs, their order and rules."""

from __future__ import annotations

import datetime as dt

import pytest
from airflow.providers.amazon.aws.operators.emr import (
    EmrAddStepsOperator,
    EmrCreateJobFlowOperator,
    EmrTerminateJobFlowOperator,
)
from airflow.providers.amazon.aws.sensors.emr import EmrStepSensor
from airflow.sdk import TriggerRule
from airflow.sdk.exceptions import ParamValidationError
from dag_harness import DAG_ID, dag_bag, parse_dag

from fruits.stages import STAGES
from fruits_airflow.emr_operators import RunStepAddOperator, RunStepSensor

STAGE_NAMES = [stage.name for stage in STAGES]


def emr_upstreams() -> dict[str, set[str]]:
    """validate → guard → prepare → create → (submit → wait) per stage → terminate, and
    publish_model after the last wait; every submit also reads its steps from prepare, every
    EMR task the cluster id from create."""
    expected = {
        "validate_params": set(),
        "check_region": {"validate_params"},
        "prepare": {"validate_params", "check_region"},
        "create_cluster": {"prepare"},
    }
    previous = "create_cluster"
    for stage in STAGE_NAMES:
        expected[stage] = {"prepare", "create_cluster", previous}
        expected[f"wait_for_{stage}"] = {"create_cluster", stage}
        previous = f"wait_for_{stage}"
    expected["terminate_cluster"] = {"create_cluster", previous}
    expected["publish_model"] = {"validate_params", previous}  # reads the run's settings
    return expected


def local_upstreams() -> dict[str, set[str]]:
    """validate → one task per stage, in order; each stage reads the validated request;
    publish_model last."""
    expected, previous = {"validate_params": set()}, "validate_params"
    for stage in STAGE_NAMES:
        expected[stage] = {"validate_params", previous}
        previous = stage
    expected["publish_model"] = {"validate_params", "train"}  # train's report names the model
    return expected


@pytest.fixture
def emr_dag(monkeypatch):
    return parse_dag(monkeypatch, FRUITS_EXECUTION="emr", FRUITS_DEFERRABLE="false")


@pytest.fixture
def local_dag(monkeypatch):
    return parse_dag(monkeypatch, FRUITS_EXECUTION="local")


def upstreams(dag) -> dict[str, set[str]]:
    return {task.task_id: set(task.upstream_task_ids) for task in dag.tasks}


@pytest.mark.parametrize("mode", ["emr", "local"])
def test_daily_one_run_at_a_time_no_catchup(monkeypatch, mode):
    dag = parse_dag(monkeypatch, FRUITS_EXECUTION=mode)
    assert dag.dag_id == DAG_ID
    assert dag.schedule == "@daily"
    assert dag.max_active_runs == 1
    assert dag.catchup is False
    assert mode in dag.tags


def test_the_pipeline_starts_load_featurize_pca():
    assert STAGE_NAMES[:3] == ["load", "featurize", "pca"]


def test_emr_graph_reads_as_the_pipeline(emr_dag):
    assert upstreams(emr_dag) == emr_upstreams()


def test_local_graph_reads_as_the_pipeline_with_the_same_stage_task_ids(local_dag):
    assert upstreams(local_dag) == local_upstreams()


def test_each_stage_submits_a_step_then_a_sensor_waits_for_it(emr_dag):
    for stage in STAGE_NAMES:
        submit, wait = emr_dag.get_task(stage), emr_dag.get_task(f"wait_for_{stage}")
        assert isinstance(submit, EmrAddStepsOperator)
        assert isinstance(submit, RunStepAddOperator)  # a retry does not add the step twice
        assert isinstance(wait, EmrStepSensor)
        assert isinstance(wait, RunStepSensor)  # a failed step: StepFailed, never retried
        assert wait.step_id == f"{{{{ ti.xcom_pull(task_ids='{stage}')[0] }}}}"
        assert wait.mode == "reschedule"
        assert (submit.deferrable, wait.deferrable) == (False, False)


def test_termination_is_the_teardown_of_the_cluster_creation(emr_dag):
    create, terminate = emr_dag.get_task("create_cluster"), emr_dag.get_task("terminate_cluster")
    assert isinstance(create, EmrCreateJobFlowOperator)
    assert isinstance(terminate, EmrTerminateJobFlowOperator)
    assert create.is_setup
    assert terminate.is_teardown
    assert terminate.trigger_rule == TriggerRule.ALL_DONE  # also after a failed creation
    assert not terminate.on_failure_fail_dagrun  # the stages' outcome decides the run's state


def test_tasks_calling_aws_retry_with_exponential_backoff_and_validation_does_not(emr_dag):
    """Throttling or a network blip costs a retry, 30 s then 60 s, 120 s; a failed step, a
    refused region or an invalid request fail at once (AirflowFailException, see
    fruits_airflow.emr_operators)."""
    waits = [f"wait_for_{stage}" for stage in STAGE_NAMES]
    for task_id in ("check_region", "prepare", "create_cluster", *STAGE_NAMES, *waits):
        task = emr_dag.get_task(task_id)
        assert task.retries == 3, task_id
        assert task.retry_delay == dt.timedelta(seconds=30), task_id
        assert task.retry_exponential_backoff == 2.0, task_id
        assert task.max_retry_delay == dt.timedelta(minutes=10), task_id
    assert emr_dag.get_task("terminate_cluster").retries == 3
    assert emr_dag.get_task("validate_params").retries == 0


def test_create_cluster_waits_for_the_cluster_explicitly(emr_dag):
    create = emr_dag.get_task("create_cluster")
    assert create.wait_for_completion is True
    assert create.wait_policy == "wait_for_completion"


def test_every_emr_operator_works_in_the_region_the_guard_approved(emr_dag):
    waits = [f"wait_for_{stage}" for stage in STAGE_NAMES]
    for task_id in ("create_cluster", *STAGE_NAMES, *waits, "terminate_cluster"):
        task = emr_dag.get_task(task_id)
        assert task.region_name == "{{ ti.xcom_pull(task_ids='check_region') }}", task_id
        assert task.aws_conn_id == "aws_default"


def test_sensors_and_cluster_waits_defer_when_asked(monkeypatch):
    dag = parse_dag(
        monkeypatch, FRUITS_EXECUTION="emr", FRUITS_DEFERRABLE="true", FRUITS_POKE_INTERVAL="30"
    )
    for task_id in ("create_cluster", "terminate_cluster", *(f"wait_for_{s}" for s in STAGE_NAMES)):
        assert dag.get_task(task_id).deferrable, task_id
    sensor = dag.get_task("wait_for_load")
    assert sensor.mode == "poke"
    assert sensor.poke_interval == 30
    assert sensor.max_attempts * 30 == 6 * 3600  # a step may run 6 hours
    assert not dag.get_task("load").deferrable  # submitting is quick; the sensor waits


def test_params_of_a_manual_run(emr_dag, local_dag):
    common = {"input", "weights", "k", "variance", "full_rescan", "views", "input_size"}
    assert set(local_dag.params) == common
    cluster = {"core_instance_count", "task_instance_count", "task_spot"}
    assert set(emr_dag.params) == common | cluster
    assert emr_dag.params["core_instance_count"] == 2
    assert emr_dag.params["task_instance_count"] == 0
    assert emr_dag.params["task_spot"] is True
    assert local_dag.params["full_rescan"] is False
    assert local_dag.params["input_size"] is None and emr_dag.params["input_size"] is None


@pytest.mark.parametrize(
    "conf",
    [
        {"k": 0},
        {"variance": 1.5},
        {"variance": 0},
        {"core_instance_count": 0},
        {"task_instance_count": -1},
        {"task_spot": "yes"},
        {"full_rescan": "yes"},
        {"input": [""]},
        {"input_size": 100},
        {"input_size": 1024},
    ],
)
def test_a_trigger_with_bad_params_is_refused(emr_dag, conf):
    with pytest.raises(ParamValidationError):
        emr_dag.test(logical_date=dt.datetime(2024, 2, 1, tzinfo=dt.UTC), run_conf=conf)


def test_without_fruits_execution_the_local_twin_is_built_even_with_aws_configured(monkeypatch):
    """The graph is decided from the environment alone: an aws_default connection or a
    fruits_execution Variable (which would need the metadata database) changes nothing."""
    monkeypatch.delenv("FRUITS_EXECUTION", raising=False)
    dag = parse_dag(
        monkeypatch,
        AIRFLOW_CONN_AWS_DEFAULT='{"conn_type": "aws"}',
        AIRFLOW_VAR_FRUITS_EXECUTION="emr",
    )
    assert upstreams(dag) == local_upstreams()


def test_an_unknown_execution_mode_is_an_import_error_that_says_why(monkeypatch):
    bag = dag_bag(monkeypatch, FRUITS_EXECUTION="kubernetes")
    assert DAG_ID not in bag.dags
    (error,) = bag.import_errors.values()
    assert "must be 'emr' or 'local', got 'kubernetes'" in error


@pytest.mark.parametrize("mode", ["emr", "local", None])
def test_parsing_the_dag_file_reads_nothing_from_the_database(monkeypatch, mode):
    """No Variable, no Connection, no SQL while the file is parsed (every dag-processor loop)."""
    from airflow import settings
    from airflow.sdk import Connection, Variable
    from sqlalchemy import event

    def refuse(*args, **kwargs):
        raise AssertionError("the DAG file touched the metadata database while being parsed")

    monkeypatch.setattr(Variable, "get", refuse)
    monkeypatch.setattr(Connection, "get", refuse)
    monkeypatch.delenv("FRUITS_EXECUTION", raising=False)
    env = {"FRUITS_EXECUTION": mode} if mode else {}
    event.listen(settings.engine, "before_cursor_execute", refuse)
    try:
        dag = parse_dag(monkeypatch, FRUITS_DEFERRABLE="false", **env)
    finally:
        event.remove(settings.engine, "before_cursor_execute", refuse)
    assert set(dag.tags) == {"fruits", mode or "local"}
