"""One EMR step per stage of :data:`fruits.stages.STAGES` — the only place steps are built.

A step runs ``spark-submit`` through ``command-runner.jar`` in the deploy mode of the deployment
(client by default: the driver runs in the step on the primary node, its traceback lands in the
step's ``stderr``), with the memory settings of the capacity model, one YARN application attempt
(Airflow decides about reruns, not YARN), the ``fruits`` package as ``--py-files`` and the stage's
own arguments from :meth:`fruits.stages.Stage.args`, exactly as the local twin passes them.
"""

from __future__ import annotations

from typing import Any

from fruits.stages import PipelineOptions, RunPaths, Stage
from fruits_airflow.artifacts import JobCode
from fruits_airflow.capacity import SparkSizing

# The DAG waits on each step and terminates the cluster itself (teardown), so a failed step
# leaves the cluster to that teardown; the idle auto-termination is the safety net.
ACTION_ON_FAILURE = "CONTINUE"
# YARN relaunches a failed application master (the driver, in cluster mode) twice by default:
# a failed stage would run again, unseen by Airflow. One attempt; reruns are Airflow's call.
APP_ATTEMPTS = {"spark.yarn.maxAppAttempts": "1"}


def submit_conf(sizing: SparkSizing) -> dict[str, str]:
    """Every ``--conf`` of a step: one attempt, then the capacity model's memory settings."""
    return {**APP_ATTEMPTS, **sizing.conf()}


def spark_submit_args(
    stage: Stage, paths: RunPaths, options: PipelineOptions, code: JobCode, sizing: SparkSizing
) -> list[str]:
    conf = [
        arg for key, value in submit_conf(sizing).items() for arg in ("--conf", f"{key}={value}")
    ]
    return [
        "spark-submit",
        "--master", "yarn",
        "--deploy-mode", str(sizing.deploy_mode),
        *conf,
        "--py-files", code.py_files,
        code.scripts[stage.name],
        *stage.args(paths, options),
    ]  # fmt: skip


def stage_step(
    stage: Stage, paths: RunPaths, options: PipelineOptions, code: JobCode, sizing: SparkSizing
) -> dict[str, Any]:
    """The ``AddJobFlowSteps`` entry of ``stage`` for the run of ``paths.ds``."""
    return {
        "Name": step_name(stage, paths.ds),
        "ActionOnFailure": ACTION_ON_FAILURE,
        "HadoopJarStep": {
            "Jar": "command-runner.jar",
            "Args": spark_submit_args(stage, paths, options, code, sizing),
        },
    }


def step_name(stage: Stage, ds: str) -> str:
    return f"fruits {stage.name} ds={ds}"
