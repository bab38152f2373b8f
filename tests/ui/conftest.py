"""A real Airflow started by the tests (api-server, scheduler, dag-processor on 127.0.0.1) and a
headless Chromium driven by Playwright.

The Airflow runs the ``fruits_pipeline`` DAG's local twin: each stage is a local spark-submit on
a small subset of the real sample, with the real weights, into a throwaway output folder.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from airflow_server import REPO_ROOT, Airflow, start_airflow

from samples import copy_subset

# FRUITS_INPUT of the session's Airflow: what a run reads when its params name no input.
UI_CLASSES = ["Apple Braeburn", "Banana", "Kiwi"]
UI_PER_CLASS = 2
STARTUP_TIMEOUT_S = 300

SCREENSHOTS = REPO_ROOT / "output" / "ui-screenshots"  # git-ignored


@pytest.fixture(scope="session")
def airflow(sample_dir: Path, weights_path: Path, tmp_path_factory) -> Iterator[Airflow]:
    """A running Airflow with the DAG parsed and unpaused; stopped, tasks included, at the end."""
    root = tmp_path_factory.mktemp("airflow")
    images = copy_subset(sample_dir, root / "images", UI_CLASSES, UI_PER_CLASS)
    output = root / "output"
    server = start_airflow(
        root / "home",
        output,
        {
            "FRUITS_EXECUTION": "local",
            "FRUITS_INPUT": str(images),
            "FRUITS_OUTPUT": str(output),
            "FRUITS_WEIGHTS": str(weights_path),
            # A model tested on 6 images says nothing about quality: publish_model's gate
            # (tested in tests/dags/test_publish_model.py) lets it through here.
            "FRUITS_GATE_FLOORS": "*=0",
        },
        timeout_s=STARTUP_TIMEOUT_S,
    )
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def screenshots(tmp_path: Path) -> Iterator[Path]:
    """The test's screenshot folder; on the way out, pass or fail, its screenshots replace those
    of ``output/ui-screenshots/`` in the repository."""
    folder = tmp_path / "screenshots"
    folder.mkdir()
    yield folder
    taken = sorted(folder.glob("*.png"))
    if taken:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        for old in SCREENSHOTS.glob("*.png"):
            old.unlink()
        for shot in taken:
            shutil.copy(shot, SCREENSHOTS / shot.name)
