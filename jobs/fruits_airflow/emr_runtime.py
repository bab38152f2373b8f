"""What the DAG adds to the provider's EMR operators: one cluster per run, and why a step failed.

* :class:`RunClusterCreateOperator` reuses an active cluster tagged with this run (a retried or
  cleared ``create_cluster``) instead of starting a second one.
* :class:`RunClusterTerminateOperator` terminates the run's cluster even when ``create_cluster``
  failed without pushing its id: it finds the cluster by its tags.
* :func:`report_failed_step`, the step sensors' ``on_failure_callback``, logs the step's
  ``FailureDetails`` and the tail of its ``stderr.gz`` from the cluster's log URI.
"""

from __future__ import annotations

import gzip
from typing import Any

from airflow.providers.amazon.aws.hooks.emr import EmrHook
from airflow.providers.amazon.aws.hooks.s3 import S3Hook
from airflow.providers.amazon.aws.operators.emr import (
    EmrCreateJobFlowOperator,
    EmrTerminateJobFlowOperator,
)
from airflow.providers.amazon.aws.utils.waiter import WAITER_POLICY_NAME_MAPPING, WaitPolicy
from airflow.sdk.exceptions import AirflowSkipException

from fruits_airflow.uris import split_s3

ACTIVE_STATES = ("STARTING", "BOOTSTRAPPING", "RUNNING", "WAITING")
PROJECT_TAG = ("project", "fruits")
STDERR_TAIL_LINES = 40


def find_run_cluster(emr: Any, run_id: str) -> str | None:
    """The id of an active cluster tagged ``project=fruits`` and ``dag_run_id=run_id``."""
    pages = emr.get_paginator("list_clusters").paginate(ClusterStates=list(ACTIVE_STATES))
    for page in pages:
        for summary in page["Clusters"]:
            cluster = emr.describe_cluster(ClusterId=summary["Id"])["Cluster"]
            tags = {tag["Key"]: tag["Value"] for tag in cluster.get("Tags", [])}
            if tags.get(PROJECT_TAG[0]) == PROJECT_TAG[1] and tags.get("dag_run_id") == run_id:
                return summary["Id"]
    return None


class RunClusterCreateOperator(EmrCreateJobFlowOperator):
    """``EmrCreateJobFlowOperator`` that first looks for this run's active cluster."""

    def execute(self, context: Any) -> str | None:
        found = find_run_cluster(self.hook.conn, context["run_id"])
        if found is None:
            return super().execute(context)
        self.log.info("Reusing cluster %s, already started for run %s", found, context["run_id"])
        if self.wait_for_completion:
            waiter = WAITER_POLICY_NAME_MAPPING[self.wait_policy or WaitPolicy.WAIT_FOR_COMPLETION]
            self.hook.get_waiter(waiter).wait(
                ClusterId=found,
                WaiterConfig={"Delay": self.waiter_delay, "MaxAttempts": self.waiter_max_attempts},
            )
        return found


class RunClusterTerminateOperator(EmrTerminateJobFlowOperator):
    """``EmrTerminateJobFlowOperator`` that falls back on the run's tags when it has no id."""

    def execute(self, context: Any) -> None:
        if context["ti"].xcom_pull(task_ids="check_region") is None:
            raise AirflowSkipException("no approved region: nothing was created")
        if not self.job_flow_id:
            self.job_flow_id = find_run_cluster(self.hook.conn, context["run_id"])
            if self.job_flow_id is None:
                raise AirflowSkipException(f"no active cluster tagged with run {context['run_id']}")
            self.log.info("create_cluster pushed no id; found cluster %s by tags", self.job_flow_id)
        return super().execute(context)


def failed_step_report(emr: Any, s3: S3Hook, cluster_id: str, step_id: str) -> str:
    """The step's state, ``FailureDetails`` and the tail of its stderr, as log text."""
    step = emr.describe_step(ClusterId=cluster_id, StepId=step_id)["Step"]
    status = step["Status"]
    details = status.get("FailureDetails") or {}
    lines = [
        f"EMR step {step_id} ({step.get('Name')}) on cluster {cluster_id}: {status['State']}",
        f"  Reason:  {details.get('Reason', '-')}",
        f"  Message: {details.get('Message', '-')}",
        f"  LogFile: {details.get('LogFile', '-')}",
    ]
    log_uri = emr.describe_cluster(ClusterId=cluster_id)["Cluster"].get("LogUri")
    if log_uri:
        bucket, prefix = split_s3(log_uri.replace("s3n://", "s3://"))
        key = "/".join(p for p in (prefix.strip("/"), cluster_id, "steps", step_id) if p)
        key += "/stderr.gz"
        if s3.check_for_key(key, bucket):
            raw = s3.get_key(key, bucket).get()["Body"].read()
            tail = gzip.decompress(raw).decode(errors="replace").splitlines()[-STDERR_TAIL_LINES:]
            lines += [f"  stderr (s3://{bucket}/{key}, last {len(tail)} lines):", *tail]
        else:
            lines.append(f"  no stderr at s3://{bucket}/{key} (yet)")
    return "\n".join(lines)


def report_failed_step(context: Any) -> None:
    """``on_failure_callback`` of the step sensors: log why the step failed."""
    sensor = context["task"]
    try:
        emr = EmrHook(aws_conn_id=sensor.aws_conn_id, region_name=sensor.region_name).conn
        s3 = S3Hook(aws_conn_id=sensor.aws_conn_id, region_name=sensor.region_name)
        report = failed_step_report(emr, s3, sensor.job_flow_id, sensor.step_id)
    except Exception as error:  # the report must never hide the failure itself
        sensor.log.warning("could not read the failed step's details: %s", error)
        return
    sensor.log.error("%s", report)
