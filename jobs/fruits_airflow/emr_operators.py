"""What the DAG adds to the provider's EMR operators: one cluster per run, submissions that a
retry does not double, failures that say why, and the retry policy of the tasks calling AWS.

* :class:`RunClusterCreateOperator` reuses an active cluster tagged with this run (a retried or
  cleared ``create_cluster``) instead of starting a second one; when the cluster fails to start
  it logs EMR's reason and a failed bootstrap's stderr, and only a transient cause is retried.
* :class:`RunStepAddOperator` returns the step already pending or running under the same name
  (a retry after a lost ``AddJobFlowSteps`` answer) instead of adding it twice.
* :class:`RunStepSensor` fails a failed step with :class:`StepFailed` — never retried — after
  logging EMR's reason and the driver's Python traceback (:mod:`fruits_airflow.emr_logs`).
* :class:`RunClusterTerminateOperator` terminates the run's cluster even when ``create_cluster``
  failed without pushing its id: it finds the cluster by its tags.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, NoReturn

from airflow.providers.amazon.aws.hooks.s3 import S3Hook
from airflow.providers.amazon.aws.operators.emr import (
    EmrAddStepsOperator,
    EmrCreateJobFlowOperator,
    EmrTerminateJobFlowOperator,
)
from airflow.providers.amazon.aws.sensors.emr import EmrStepSensor
from airflow.providers.amazon.aws.utils.waiter import WAITER_POLICY_NAME_MAPPING, WaitPolicy
from airflow.sdk.exceptions import AirflowException, AirflowFailException, AirflowSkipException
from botocore.exceptions import WaiterError

from fruits_airflow import emr_logs

ACTIVE_STATES = ("STARTING", "BOOTSTRAPPING", "RUNNING", "WAITING")
IN_FLIGHT_STEP_STATES = ("PENDING", "RUNNING")
PROJECT_TAG = ("project", "fruits")
# Retries of the tasks that call AWS: throttling, a network blip, an AWS-side error. Delays
# 30 s, 60 s, 120 s (capped at 10 min). Failures that a retry cannot fix are
# AirflowFailException subclasses, which Airflow never retries: a failed step (StepFailed), a
# cluster that cannot start for a lasting reason (ClusterFailed), a refused region or bucket.
AWS_RETRIES: dict[str, Any] = {
    "retries": 3,
    "retry_delay": dt.timedelta(seconds=30),
    "retry_exponential_backoff": 2.0,
    "max_retry_delay": dt.timedelta(minutes=10),
}
# Cluster failures worth another try (EMR's StateChangeReason codes); any other code — a
# bootstrap failure, a validation error (roles, KMS key, subnet), a user's termination — fails.
TRANSIENT_CLUSTER_FAILURES = frozenset({"INTERNAL_ERROR", "INSTANCE_FAILURE"})


class StepFailed(AirflowFailException):
    """The EMR step failed: the run stops. Airflow does not retry a step; an operator reruns it
    by clearing the stage (docs/airflow.md)."""


class ClusterFailed(AirflowFailException):
    """The cluster could not start for a reason a retry would meet again."""


def find_run_cluster(emr: Any, run_id: str) -> str | None:
    """The id of an active cluster tagged ``project=fruits`` and ``dag_run_id=run_id``."""
    pages = emr.get_paginator("list_clusters").paginate(ClusterStates=list(ACTIVE_STATES))
    for page in pages:
        for summary in page["Clusters"]:
            cluster = emr.describe_cluster(ClusterId=summary["Id"])["Cluster"]
            tags = {tag["Key"]: tag["Value"] for tag in cluster.get("Tags", [])}
            if tags.get(PROJECT_TAG[0]) == PROJECT_TAG[1] and tags.get("dag_run_id") == run_id:
                return str(summary["Id"])
    return None


def in_flight_step(emr: Any, cluster_id: str, name: str) -> str | None:
    """The id of a step named ``name`` still pending or running on the cluster."""
    pages = emr.get_paginator("list_steps").paginate(
        ClusterId=cluster_id, StepStates=list(IN_FLIGHT_STEP_STATES)
    )
    for page in pages:
        for step in page["Steps"]:
            if step["Name"] == name:
                return str(step["Id"])
    return None


def is_transient(cluster_status: dict[str, Any]) -> bool:
    """Whether a cluster that ended before it was up may start on a second try."""
    state = cluster_status.get("State")
    code = (cluster_status.get("StateChangeReason") or {}).get("Code")
    if state not in {"TERMINATING", "TERMINATED", "TERMINATED_WITH_ERRORS"}:
        return True  # still starting when the waiter gave up: a slow start, try again
    return code in TRANSIENT_CLUSTER_FAILURES


class RunClusterCreateOperator(EmrCreateJobFlowOperator):
    """``EmrCreateJobFlowOperator`` that first looks for this run's active cluster, and says why
    a cluster did not start."""

    def execute(self, context: Any) -> str | None:
        run_id = context["run_id"]
        found = find_run_cluster(self.hook.conn, run_id)
        try:
            if found is None:
                return super().execute(context)
            self.log.info("Reusing cluster %s, already started for run %s", found, run_id)
            if self.wait_for_completion:
                policy = self.wait_policy or WaitPolicy.WAIT_FOR_COMPLETION
                config = {"Delay": self.waiter_delay, "MaxAttempts": self.waiter_max_attempts}
                waiter = self.hook.get_waiter(WAITER_POLICY_NAME_MAPPING[policy])
                waiter.wait(ClusterId=found, WaiterConfig=config)
            return found
        except WaiterError as error:
            cluster_id = found or getattr(self, "_job_flow_id", None)
            if cluster_id is None:
                raise
            self._explain(cluster_id, error)

    def _explain(self, cluster_id: str, error: WaiterError) -> NoReturn:
        """Log why the cluster failed; raise :class:`ClusterFailed` unless it may be transient."""
        emr = self.hook.conn
        # The state that stopped the waiter (the provider may have begun a termination since).
        waited = (getattr(error, "last_response", None) or {}).get("Cluster") or {}
        status = (
            waited.get("Status") or emr.describe_cluster(ClusterId=cluster_id)["Cluster"]["Status"]
        )
        try:
            s3 = S3Hook(aws_conn_id=self.aws_conn_id, region_name=self.region_name)
            self.log.error("%s", emr_logs.cluster_failure_report(emr, s3, cluster_id, status))
        except Exception as failure:  # the report must never hide the failure itself
            self.log.warning("could not read the cluster's logs: %s", failure)
        if is_transient(status):
            raise error
        raise ClusterFailed(
            f"cluster {cluster_id} did not start: {status['State']} "
            f"{(status.get('StateChangeReason') or {}).get('Code', '')} (details above); "
            "not retried"
        ) from error


class RunStepAddOperator(EmrAddStepsOperator):
    """``EmrAddStepsOperator`` that does not add a step twice: a retry whose first try added
    the step (and lost the answer) gets the step still pending or running under its name."""

    def execute(self, context: Any) -> list[str]:
        steps = self.steps if isinstance(self.steps, list) else []
        if self.job_flow_id and len(steps) == 1:
            found = in_flight_step(self.hook.conn, self.job_flow_id, steps[0]["Name"])
            if found:
                self.log.info("Step %r already submitted as %s", steps[0]["Name"], found)
                return [found]
        return super().execute(context)


class RunStepSensor(EmrStepSensor):
    """``EmrStepSensor`` whose failed step fails the task for good (:class:`StepFailed`), after
    logging why: EMR's reason and the driver's Python traceback from the cluster's logs. An AWS
    error while looking (throttling…) stays an ordinary, retried failure."""

    log_wait_s = emr_logs.LOG_WAIT_S

    def poke(self, context: Any) -> bool:
        response = self.get_emr_response(context=context)
        state = self.state_from_response(response)
        self.log.info("Step %s is %s", self.step_id, state)
        if state in self.failed_states:
            raise StepFailed(self._explain(state, response))
        return state in self.target_states

    def execute_complete(self, context: Any, event: dict[str, Any] | None = None) -> None:
        try:
            return super().execute_complete(context, event)
        except AirflowException:
            response = self.hook.conn.describe_step(ClusterId=self.job_flow_id, StepId=self.step_id)
            state = self.state_from_response(response)
            if state in self.failed_states:
                raise StepFailed(self._explain(state, response)) from None
            raise

    def _explain(self, state: str, response: dict[str, Any]) -> str:
        message = (
            f"EMR step {self.step_id} {state}: "
            f"{self.failure_message_from_response(response) or 'no failure details'}"
        )
        try:
            s3 = S3Hook(aws_conn_id=self.aws_conn_id, region_name=self.region_name)
            report = emr_logs.step_failure_report(
                self.hook.conn, s3, self.job_flow_id, self.step_id, wait_s=self.log_wait_s
            )
        except Exception as error:  # the report must never hide the failure itself
            self.log.warning("could not read the failed step's logs: %s", error)
            return message
        self.log.error("%s", report)
        return f"{message} (the driver's traceback is in the log above; not retried)"


class RunClusterTerminateOperator(EmrTerminateJobFlowOperator):
    """``EmrTerminateJobFlowOperator`` that falls back on the run's tags when it has no id."""

    def execute(self, context: Any) -> None:
        if context["ti"].xcom_pull(task_ids="check_region") is None:
            raise AirflowSkipException("no approved region: nothing was created")
        if not self.job_flow_id:
            cluster_id = find_run_cluster(self.hook.conn, context["run_id"])
            if cluster_id is None:
                raise AirflowSkipException(f"no active cluster tagged with run {context['run_id']}")
            self.job_flow_id = cluster_id
            self.log.info("create_cluster pushed no id; found cluster %s by tags", self.job_flow_id)
        return super().execute(context)
