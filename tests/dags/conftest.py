"""A real Airflow for the DAG tests: throwaway AIRFLOW_HOME, SQLite, the repo's dags/.

Airflow reads its settings once, on import: they are set here, when pytest imports this file,
before any test module imports Airflow.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
DAGS_FOLDER = REPO_ROOT / "dags"
AIRFLOW_HOME = Path(tempfile.mkdtemp(prefix="fruits-airflow-home-"))

if "airflow" in sys.modules:  # its settings would already point at the developer's Airflow
    raise RuntimeError("tests/dags/conftest.py must be imported before anything imports Airflow")

os.environ.update(
    {
        "AIRFLOW_HOME": str(AIRFLOW_HOME),
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS_FOLDER),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{AIRFLOW_HOME / 'airflow.db'}",
    }
)


@pytest.fixture(scope="session", autouse=True)
def airflow_db() -> Iterator[Path]:
    """A migrated metadata database (SQLite) in the throwaway AIRFLOW_HOME."""
    from airflow.utils import db

    db.initdb()
    yield AIRFLOW_HOME
    shutil.rmtree(AIRFLOW_HOME, ignore_errors=True)


@pytest.fixture(scope="module")
def module_monkeypatch() -> Iterator[pytest.MonkeyPatch]:
    """Env changes that last for one test module (one DAG run shared by its tests)."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        yield monkeypatch
