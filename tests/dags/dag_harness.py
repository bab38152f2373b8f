"""Parse the DAG as the scheduler does and read what a ``dag.test()`` run did."""

from __future__ import annotations

from pathlib import Path

import pytest
from airflow.models.renderedtifields import RenderedTaskInstanceFields
from airflow.models.taskreschedule import TaskReschedule
from airflow.utils.session import create_session

DAGS_FOLDER = Path(__file__).resolve().parents[2] / "dags"
DAG_ID = "fruits_pipeline"


def dag_bag(monkeypatch: pytest.MonkeyPatch, **env: str):
    """dags/ parsed as the scheduler does, with ``env`` (``FRUITS_EXECUTION`` …) set first."""
    from airflow.dag_processing.dagbag import DagBag

    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return DagBag(dag_folder=DAGS_FOLDER)


def parse_dag(monkeypatch: pytest.MonkeyPatch, **env: str):
    """The ``fruits_pipeline`` DAG from :func:`dag_bag`; fails on any import error or warning."""
    bag = dag_bag(monkeypatch, **env)
    assert bag.import_errors == {}
    assert bag.captured_warnings == {}
    return bag.dags[DAG_ID]


def states(run) -> dict[str, str | None]:
    """Task id → final state of a DAG run."""
    return {ti.task_id: ti.state for ti in run.get_task_instances()}


def rendered(ti) -> dict:
    """The task's templated fields as rendered for that run."""
    return RenderedTaskInstanceFields.get_templated_fields(ti)


def reschedules(ti) -> int:
    """How many times a sensor in reschedule mode found its target unfinished."""
    with create_session() as session:
        return len(session.scalars(TaskReschedule.stmt_for_task_instance(ti)).all())
