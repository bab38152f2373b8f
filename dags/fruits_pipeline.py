"""Fruits! pipeline — load → featurize → pca → train, daily, on EMR (eu-west-3) or locally.

On EMR (``FRUITS_EXECUTION=emr``)::

    validate_params → check_region → prepare → create_cluster
        → load → wait_for_load → featurize → wait_for_featurize → pca → wait_for_pca
        → train → wait_for_train → publish_model
        → terminate_cluster   (teardown of create_cluster: runs even when a stage or the
                               creation fails; finds the run's cluster by tags if no id)

validate_params sizes the cluster (fruits_airflow.capacity) and refuses, before any AWS call, a
cluster where no executor can start or a Python worker would outgrow its memory. Steps run
spark-submit in client mode (the driver on the primary node), one YARN attempt each. The tasks
that call AWS retry with exponential backoff; a failed step is never retried: its sensor logs
EMR's reason and the driver's Python traceback and fails the run. create_cluster reuses an
active cluster tagged with the run (fruits_airflow.emr_operators).

Local twin (``FRUITS_EXECUTION=local``, the default; the graph depends on the environment only)::

    validate_params → load → featurize → pca → train   (spark-submit on the Airflow worker)
        → publish_model

publish_model gates the new model (accuracy floors per evaluation domain, no regression beyond
a margin against the served model) and, when it passes, points the "current model" pointer at
it; otherwise the task fails saying why and the served model stays (fruits_airflow.publish).

Both graphs take their stages from ``fruits.stages.STAGES`` and write under
``<output>/<dataset>/ds=<logical date>/``: a backfill of N dates gives N partitions, a rerun
replaces its own date only. Params, Variables, triggering, backfills: docs/airflow.md.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
from dataclasses import asdict, replace
from typing import Any

from airflow.providers.amazon.aws.hooks.s3 import S3Hook
from airflow.providers.amazon.aws.utils.waiter import WaitPolicy
from airflow.sdk import DAG, BaseOperator, TriggerRule, chain, task

from fruits.stages import STAGES
from fruits_airflow import (
    artifacts,
    capacity,
    cluster_python,
    deployment,
    emr_operators,
    emr_plan,
    local_stages,
    publish,
    residency,
    run_params,
)
from fruits_airflow.deployment import AWS_CONN_ID, AwsSettings
from fruits_airflow.emr_operators import AWS_RETRIES
from fruits_airflow.execution import Mode, execution
from fruits_airflow.run_params import RunRequest

log = logging.getLogger(__name__)

EXECUTION = execution()
STEP_TIMEOUT = dt.timedelta(hours=6)
CLUSTER_START_TIMEOUT = dt.timedelta(minutes=45)
# Every AWS operator works in the region that check_region approved.
APPROVED_REGION = "{{ ti.xcom_pull(task_ids='check_region') }}"


def partition_date(ds: str | None, dag_run: Any) -> str:
    """The ``ds=`` partition a run writes: its logical date, else the day it was triggered.

    Airflow 3 runs may have no logical date (``airflow dags trigger`` without
    ``--logical-date``, the REST API with ``logical_date: null``, the UI's trigger form with the
    date emptied): their context has no ``ds``, so such a run takes the UTC date of its
    ``run_after`` rather than writing under ``ds=None``.
    """
    return ds or dag_run.run_after.astimezone(dt.UTC).date().isoformat()


# EMR tasks ------------------------------------------------------------------------------------


# Tasks returning a dict push it as one XCom (what the next tasks take), except prepare, whose
# keys the operators read one by one (multiple_outputs=True).


@task(task_id="validate_params", multiple_outputs=False)
def validate_emr_params(params: dict[str, Any] | None = None) -> dict[str, Any]:
    """Params and deployment Variables → the run request, its cluster sized and the cluster's
    Python versions pinned. No AWS call, nothing created."""
    settings = deployment.aws_settings()
    request = run_params.validate_emr(params or {}, settings)
    try:
        cluster_python.requirements_text()
    except cluster_python.LockError as error:
        raise run_params.InvalidRun(f"the cluster's Python packages: {error}") from None
    log.info("%s", capacity.summary(run_params.run_capacity(settings, request)))
    return {"aws": asdict(settings), "request": asdict(request)}


def _unpack(run: dict[str, Any]) -> tuple[AwsSettings, RunRequest]:
    return deployment.aws_settings_from(run["aws"]), RunRequest.from_xcom(run["request"])


@task(multiple_outputs=False, **AWS_RETRIES)
def check_region(run: dict[str, Any]) -> str:
    """EU guard: refuse a non-EU cluster region or bucket before anything is created."""
    settings, request = _unpack(run)
    s3 = S3Hook(aws_conn_id=AWS_CONN_ID, region_name=settings.region)
    buckets = {settings.bucket, *request.s3_buckets()}
    return residency.check_residency(settings.region, buckets, s3)


@task(multiple_outputs=True, **AWS_RETRIES)
def prepare(
    run: dict[str, Any],
    ds: str | None = None,
    run_id: str | None = None,
    dag_run: Any = None,
) -> dict[str, Any]:
    """Upload code, bootstrap script, the cluster's Python versions and weights (skipped when
    unchanged); plan the cluster and one step per stage (fruits_airflow.emr_plan). Returns
    ``cluster`` and one step list per stage name."""
    ds = partition_date(ds, dag_run)
    if run_id is None:  # Airflow passes every task its run's id
        raise ValueError("prepare needs the run's run_id (it tags the cluster)")
    settings, request = _unpack(run)
    s3 = S3Hook(aws_conn_id=AWS_CONN_ID, region_name=settings.region)
    root = settings.artifacts_root
    files = artifacts.publish_run_files(s3, root)
    weights = artifacts.publish_weights(s3, root, request.weights, settings.weights_dir)
    plan = emr_plan.plan_run(
        settings, replace(request, weights=weights), files, ds=ds, run_id=run_id
    )
    return {"cluster": plan.cluster, **plan.steps}


@task(task_id="publish_model", multiple_outputs=False)
def publish_emr_model(
    run: dict[str, Any], ds: str | None = None, run_id: str | None = None, dag_run: Any = None
) -> dict[str, Any]:
    """Gate the model whose train report the step wrote to S3; promote it if it passes."""
    settings, request = _unpack(run)
    s3 = S3Hook(aws_conn_id=AWS_CONN_ID, region_name=settings.region).get_conn()
    paths = request.paths(partition_date(ds, dag_run))
    report = publish.read_train_report(paths.report("train"), s3)
    return publish.publish(
        report, request.output_root, paths.ds, run_id, s3, allowed_buckets=settings.readable_buckets
    )


def emr_pipeline(deferrable: bool, poke_interval_s: float) -> None:
    poke = poke_interval_s
    aws: dict[str, Any] = {"aws_conn_id": AWS_CONN_ID, "region_name": APPROVED_REGION}

    run = validate_emr_params()
    plan = prepare(run)
    create_cluster = emr_operators.RunClusterCreateOperator(  # reuses this run's active cluster
        task_id="create_cluster",
        job_flow_overrides=plan["cluster"],
        emr_conn_id=None,
        wait_for_completion=True,  # provider >= 9.39: wait_policy alone will stop waiting
        wait_policy=WaitPolicy.WAIT_FOR_COMPLETION,  # cluster up (bootstrap done) or failed
        waiter_delay=max(1, round(poke)),
        waiter_max_attempts=math.ceil(CLUSTER_START_TIMEOUT.total_seconds() / max(1, poke)),
        deferrable=deferrable,
        **aws,
        **AWS_RETRIES,
    )
    chain(run, check_region(run), plan, create_cluster)

    previous: BaseOperator = create_cluster
    for stage in STAGES:
        submit = emr_operators.RunStepAddOperator(  # a retry does not add the step twice
            task_id=stage.name,
            job_flow_id=create_cluster.output,
            steps=plan[stage.name],
            **aws,
            **AWS_RETRIES,
        )
        wait = emr_operators.RunStepSensor(  # a failed step: its traceback logged, no retry
            task_id=f"wait_for_{stage.name}",
            job_flow_id=create_cluster.output,
            step_id=f"{{{{ ti.xcom_pull(task_ids='{stage.name}')[0] }}}}",
            poke_interval=poke,
            timeout=STEP_TIMEOUT.total_seconds(),
            max_attempts=math.ceil(STEP_TIMEOUT.total_seconds() / max(1, poke)),
            deferrable=deferrable,
            mode="poke" if deferrable else "reschedule",
            **aws,
            **AWS_RETRIES,
        )
        chain(previous, submit, wait)
        previous = wait

    terminate_cluster = emr_operators.RunClusterTerminateOperator(
        task_id="terminate_cluster",
        # No id when create_cluster failed before pushing one: the operator then finds the
        # run's cluster by its tags.
        job_flow_id="{{ ti.xcom_pull(task_ids='create_cluster') or '' }}",
        waiter_delay=max(1, round(poke)),
        deferrable=deferrable,
        **aws,
        **AWS_RETRIES,
    )
    previous >> terminate_cluster.as_teardown(setups=create_cluster)
    # Also after a failed create_cluster, which may have started a cluster anyway.
    terminate_cluster.trigger_rule = TriggerRule.ALL_DONE
    previous >> publish_emr_model(run)


# Local twin -----------------------------------------------------------------------------------


@task(task_id="validate_params", multiple_outputs=False)
def validate_local_params(params: dict[str, Any] | None = None) -> dict[str, Any]:
    """Params and FRUITS_* env vars → the run request (local folders only)."""
    return asdict(run_params.validate_local(params or {}, deployment.local_settings()))


@task(multiple_outputs=False)
def run_local_stage(
    stage: str, request: dict[str, Any], ds: str | None = None, dag_run: Any = None
) -> dict[str, Any]:
    """One stage through a local spark-submit; returns the stage's report."""
    return local_stages.run_local_stage(
        stage, RunRequest.from_xcom(request), partition_date(ds, dag_run)
    )


@task(task_id="publish_model", multiple_outputs=False)
def publish_local_model(
    train_report: dict[str, Any],
    request: dict[str, Any],
    ds: str | None = None,
    run_id: str | None = None,
    dag_run: Any = None,
) -> dict[str, Any]:
    """Gate the model the train task reported; promote it if it passes."""
    output_root = RunRequest.from_xcom(request).output_root
    return publish.publish(train_report, output_root, partition_date(ds, dag_run), run_id)


def local_pipeline() -> None:
    request = validate_local_params()
    tasks = {s.name: run_local_stage.override(task_id=s.name)(s.name, request) for s in STAGES}
    chain(request, *tasks.values())
    publish_local_model(tasks["train"], request)


with DAG(
    dag_id="fruits_pipeline",
    description="Fruits! images → MobileNetV2 features → PCA, daily (EMR or local Spark)",
    doc_md=__doc__,
    schedule="@daily",
    start_date=dt.datetime(2024, 1, 1, tzinfo=dt.UTC),
    catchup=False,
    max_active_runs=1,
    params=run_params.dag_params(EXECUTION.mode),
    default_args={"owner": "fruits", "retries": 0},
    tags=["fruits", EXECUTION.mode.value],
) as dag:
    if EXECUTION.mode is Mode.EMR:
        emr_pipeline(EXECUTION.deferrable, EXECUTION.poke_interval_s)
    else:
        local_pipeline()
