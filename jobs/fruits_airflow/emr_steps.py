"""One EMR step per stage of :data:`fruits.stages.STAGES` — the only place steps are built.

A step runs ``spark-submit --deploy-mode cluster`` through ``command-runner.jar``, with the
``fruits`` package as ``--py-files`` and the stage's own arguments from
:meth:`fruits.stages.Stage.args`, exactly as the local twin passes them to a local Spark.
"""

from __future__ import annotations

from typing import Any

from fruits.stages import PipelineOptions, RunPaths, Stage
from fruits_airflow.artifacts import JobCode

# The DAG waits on each step and terminates the cluster itself (teardown), so a failed step
# leaves the cluster to that teardown; the idle auto-termination is the safety net.
ACTION_ON_FAILURE = "CONTINUE"


def spark_submit_args(
    stage: Stage, paths: RunPaths, options: PipelineOptions, code: JobCode
) -> list[str]:
    return [
        "spark-submit",
        "--deploy-mode", "cluster",
        "--py-files", code.py_files,
        code.scripts[stage.name],
        *stage.args(paths, options),
    ]  # fmt: skip


def stage_step(
    stage: Stage, paths: RunPaths, options: PipelineOptions, code: JobCode
) -> dict[str, Any]:
    """The ``AddJobFlowSteps`` entry of ``stage`` for the run of ``paths.ds``."""
    return {
        "Name": f"fruits {stage.name} ds={paths.ds}",
        "ActionOnFailure": ACTION_ON_FAILURE,
        "HadoopJarStep": {
            "Jar": "command-runner.jar",
            "Args": spark_submit_args(stage, paths, options, code),
        },
    }
