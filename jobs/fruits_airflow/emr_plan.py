"""A run's EMR plan — the ``RunJobFlow`` request, one step per stage, the capacity — made
without any AWS call.

``prepare`` makes it with the URIs of the files it uploaded; ``fruits-emr plan`` with the URIs
an upload would give, which are the same (content-addressed, :mod:`fruits_airflow.artifacts`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fruits.stages import STAGES
from fruits_airflow import capacity, emr_cluster, emr_steps
from fruits_airflow.artifacts import RunFiles
from fruits_airflow.capacity import Capacity
from fruits_airflow.deployment import AwsSettings
from fruits_airflow.run_params import InvalidRun, RunRequest, run_capacity


@dataclass(frozen=True)
class RunPlan:
    cluster: dict[str, Any]  # RunJobFlow request (EmrCreateJobFlowOperator's job_flow_overrides)
    steps: dict[str, list[dict[str, Any]]]  # stage → its AddJobFlowSteps list
    capacity: Capacity


def plan_run(
    settings: AwsSettings, request: RunRequest, files: RunFiles, *, ds: str, run_id: str
) -> RunPlan:
    """The plan of the run ``run_id`` writing the ``ds`` partitions."""
    planned = run_capacity(settings, request)
    if planned.sizing is None or planned.problems:
        raise InvalidRun(f"the cluster cannot run the jobs:\n{capacity.summary(planned)}")
    paths, options = request.paths(ds), request.options()
    return RunPlan(
        cluster=emr_cluster.job_flow_overrides(
            settings, request, files.cluster, ds=ds, run_id=run_id
        ),
        steps={
            stage.name: [emr_steps.stage_step(stage, paths, options, files.code, planned.sizing)]
            for stage in STAGES
        },
        capacity=planned,
    )
