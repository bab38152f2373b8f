"""Fruits! pipeline — load → featurize → pca → train, daily, on EMR (eu-west-3) or locally.

On EMR (``FRUITS_EXECUTION=emr``)::

    validate_params → check_region → prepare → create_cluster
        → load → wait_for_load → featurize → wait_for_featurize → pca → wait_for_pca
        → train → wait_for_train → publish_model
        → terminate_cluster   (teardown of create_cluster: runs even when a stage or the
                               creation fails; finds the run's cluster by tags if no id)

create_cluster reuses an active cluster tagged with the run; a failed step sensor logs the
step's FailureDetails and stderr tail (fruits_airflow.emr_runtime).

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
import math
from dataclasses import asdict, replace
from typing import Any

from airflow.providers.amazon.aws.hooks.s3 import S3Hook
from airflow.providers.amazon.aws.operators.emr import EmrAddStepsOperator
from airflow.providers.amazon.aws.sensors.emr import EmrStepSensor
from airflow.providers.amazon.aws.utils.waiter import WaitPolicy
from airflow.sdk import DAG, TriggerRule, chain, task

from fruits.stages import STAGES
from fruits_airflow import (
    artifacts,
    deployment,
    emr_cluster,
    emr_runtime,
    emr_steps,
    local_stages,
    publish,
    residency,
    run_params,
)
from fruits_airflow.deployment import AWS_CONN_ID, AwsSettings
from fruits_airflow.execution import Mode, execution
from fruits_airflow.run_params import RunRequest

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


@task(task_id="validate_params")
def validate_emr_params(params: dict[str, Any] | None = None) -> dict[str, Any]:
    """Params and deployment Variables → the run request. No AWS call, nothing created."""
    settings = deployment.aws_settings()
    request = run_params.validate_emr(params or {}, settings)
    return {"aws": asdict(settings), "request": asdict(request)}


def _unpack(run: dict[str, Any]) -> tuple[AwsSettings, RunRequest]:
    return deployment.aws_settings_from(run["aws"]), RunRequest.from_xcom(run["request"])


@task
def check_region(run: dict[str, Any]) -> str:
    """EU guard: refuse a non-EU cluster region or bucket before anything is created."""
    settings, request = _unpack(run)
    s3 = S3Hook(aws_conn_id=AWS_CONN_ID, region_name=settings.region)
    buckets = {settings.bucket, *request.s3_buckets()}
    return residency.check_residency(settings.region, buckets, s3)


@task(multiple_outputs=True)
def prepare(
    run: dict[str, Any],
    ds: str | None = None,
    run_id: str | None = None,
    dag_run: Any = None,
) -> dict[str, Any]:
    """Upload code, bootstrap script and weights (skipped when unchanged); plan the cluster and
    one step per stage. Returns ``cluster`` and one step list per stage name."""
    ds = partition_date(ds, dag_run)
    settings, request = _unpack(run)
    s3 = S3Hook(aws_conn_id=AWS_CONN_ID, region_name=settings.region)
    root = settings.artifacts_root
    code = artifacts.publish_job_code(s3, root)
    bootstrap = artifacts.publish(s3, root, artifacts.bootstrap_script())
    request = replace(request, weights=artifacts.publish_weights(s3, root, request.weights))
    paths, options = request.paths(ds), request.options()
    return {
        "cluster": emr_cluster.job_flow_overrides(
            settings, request, bootstrap, ds=ds, run_id=run_id
        ),
        **{stage.name: [emr_steps.stage_step(stage, paths, options, code)] for stage in STAGES},
    }


@task(task_id="publish_model")
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
    aws = {"aws_conn_id": AWS_CONN_ID, "region_name": APPROVED_REGION}

    run = validate_emr_params()
    plan = prepare(run)
    create_cluster = emr_runtime.RunClusterCreateOperator(  # reuses this run's active cluster
        task_id="create_cluster",
        job_flow_overrides=plan["cluster"],
        emr_conn_id=None,
        wait_policy=WaitPolicy.WAIT_FOR_COMPLETION,  # cluster up (bootstrap done) or failed
        waiter_delay=max(1, round(poke)),
        waiter_max_attempts=math.ceil(CLUSTER_START_TIMEOUT.total_seconds() / max(1, poke)),
        deferrable=deferrable,
        **aws,
    )
    chain(run, check_region(run), plan, create_cluster)

    previous = create_cluster
    for stage in STAGES:
        submit = EmrAddStepsOperator(
            task_id=stage.name,
            job_flow_id=create_cluster.output,
            steps=plan[stage.name],
            **aws,
        )
        wait = EmrStepSensor(
            task_id=f"wait_for_{stage.name}",
            job_flow_id=create_cluster.output,
            step_id=f"{{{{ ti.xcom_pull(task_ids='{stage.name}')[0] }}}}",
            poke_interval=poke,
            timeout=STEP_TIMEOUT.total_seconds(),
            max_attempts=math.ceil(STEP_TIMEOUT.total_seconds() / max(1, poke)),
            deferrable=deferrable,
            mode="poke" if deferrable else "reschedule",
            on_failure_callback=emr_runtime.report_failed_step,  # FailureDetails, stderr tail
            **aws,
        )
        chain(previous, submit, wait)
        previous = wait

    terminate_cluster = emr_runtime.RunClusterTerminateOperator(
        task_id="terminate_cluster",
        # No id when create_cluster failed before pushing one: the operator then finds the
        # run's cluster by its tags.
        job_flow_id="{{ ti.xcom_pull(task_ids='create_cluster') or '' }}",
        waiter_delay=max(1, round(poke)),
        deferrable=deferrable,
        **aws,
    )
    previous >> terminate_cluster.as_teardown(setups=create_cluster)
    # Also after a failed create_cluster, which may have started a cluster anyway.
    terminate_cluster.trigger_rule = TriggerRule.ALL_DONE
    previous >> publish_emr_model(run)


# Local twin -----------------------------------------------------------------------------------


@task(task_id="validate_params")
def validate_local_params(params: dict[str, Any] | None = None) -> dict[str, Any]:
    """Params and FRUITS_* env vars → the run request (local folders only)."""
    return asdict(run_params.validate_local(params or {}, deployment.local_settings()))


@task
def run_local_stage(
    stage: str, request: dict[str, Any], ds: str | None = None, dag_run: Any = None
) -> dict[str, Any]:
    """One stage through a local spark-submit; returns the stage's report."""
    return local_stages.run_local_stage(
        stage, RunRequest.from_xcom(request), partition_date(ds, dag_run)
    )


@task(task_id="publish_model")
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
