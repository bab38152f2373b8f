"""The local twin's stage task: one stage of :data:`fruits.stages.STAGES` on a local Spark.

Same stage list, same job arguments as on EMR; ``spark-submit`` runs on the Airflow worker
through :func:`fruits.local.run_stage`. No S3, no EMR.
"""

from __future__ import annotations

from typing import Any

from fruits.local import run_stage
from fruits.stages import STAGES, Stage
from fruits_airflow.run_params import RunRequest

STAGE_BY_NAME: dict[str, Stage] = {stage.name: stage for stage in STAGES}


def run_local_stage(name: str, request: RunRequest, ds: str) -> dict[str, Any]:
    """Run stage ``name`` for logical date ``ds``; return its JSON report (the task's XCom)."""
    return run_stage(STAGE_BY_NAME[name], request.paths(ds), request.options())
