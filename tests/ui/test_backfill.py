"""``airflow backfill create`` over two dates, run by the session's scheduler: two backfill
runs, one after the other, each writing its own ``ds=`` partitions.

The backfill reads its own tiny input (``--dag-run-conf``), two classes that the browser test's
input does not have, so whichever test runs first, the first date featurizes these images and
the next finds them already featurized (featurize is incremental over every date's features).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from airflow_server import DAG_ID, RUN_TIMEOUT_S, Airflow, wait_for

from fruits import catalog
from fruits.stages import STAGES
from samples import copy_subset

pytestmark = pytest.mark.slow

DATES = ["2024-01-01", "2024-01-02"]  # two dates show it all; each one is a pipeline run
CLASSES = ["Apricot", "Avocado"]
PER_CLASS = 2
IMAGES = len(CLASSES) * PER_CLASS * 2  # Training and Test
TASKS = ["validate_params", *(stage.name for stage in STAGES), "publish_model"]


@dataclass(frozen=True)
class Backfill:
    airflow: Airflow
    input: Path
    cli_output: str
    runs: list[dict[str, Any]]  # by logical date, as the API shows them once finished

    @property
    def output(self) -> Path:
        return self.airflow.output

    def report(self, ds: str, stage: str) -> dict[str, Any]:
        return json.loads((self.output / "reports" / f"ds={ds}" / f"{stage}.json").read_text())


def backfill_runs(airflow: Airflow) -> list[dict[str, Any]]:
    runs = [run for run in airflow.runs(limit=100) if run["run_type"] == "backfill"]
    return sorted(runs, key=lambda run: run["logical_date"])


@pytest.fixture(scope="module")
def backfill(airflow: Airflow, sample_dir: Path, tmp_path_factory) -> Backfill:
    images = copy_subset(
        sample_dir, tmp_path_factory.mktemp("backfill") / "images", CLASSES, PER_CLASS
    )
    # Paused while the CLI creates the runs: the CLI commits one run at a time, each in a
    # SAVEPOINT that reads then writes, and on SQLite that write fails at once ("database is
    # locked", no waiting) when the scheduler has committed in between — which it does as soon
    # as it starts the first run. A server database (PostgreSQL in production) has no such race.
    with airflow.paused():
        created = airflow.cli(
            "backfill", "create",
            "--dag-id", DAG_ID,
            "--from-date", DATES[0],
            "--to-date", DATES[-1],
            "--max-active-runs", "1",
            "--dag-run-conf", json.dumps({"input": str(images)}),
        )  # fmt: skip
    wait_for(f"{len(DATES)} backfill runs", lambda: len(backfill_runs(airflow)) == len(DATES), 60)
    ids = [run["dag_run_id"] for run in backfill_runs(airflow)]
    airflow.wait_until_finished(ids, RUN_TIMEOUT_S * len(DATES))
    # The scheduler marks a backfill complete within 30 s of its last run.
    wait_for("backfill marked complete", lambda: all_complete(airflow), 120, every_s=5)
    return Backfill(airflow, images, created.stdout + created.stderr, backfill_runs(airflow))


def backfills(airflow: Airflow) -> list[dict[str, Any]]:
    return airflow.api("GET", "backfills", params={"dag_id": DAG_ID}).json()["backfills"]


def all_complete(airflow: Airflow) -> bool:
    return all(backfill["completed_at"] for backfill in backfills(airflow))


def test_the_cli_creates_one_run_per_date_and_the_backfill_completes(backfill):
    assert [run["logical_date"][:10] for run in backfill.runs] == DATES
    for run in backfill.runs:
        assert run["conf"]["input"] == str(backfill.input)
    (created,) = backfills(backfill.airflow)
    assert (created["from_date"][:10], created["to_date"][:10]) == (DATES[0], DATES[-1])
    assert created["max_active_runs"] == 1
    assert created["completed_at"]


def test_every_run_succeeds(backfill):
    for run in backfill.runs:
        states = backfill.airflow.task_states(run["dag_run_id"])
        assert (run["state"], states) == ("success", dict.fromkeys(TASKS, "success")), (
            backfill.airflow.explain(run["dag_run_id"])
        )


def test_each_date_gets_its_own_partitions(backfill):
    for dataset in ("images", "features", "pca", "reports"):
        partitions = {p.name for p in (backfill.output / dataset).iterdir() if p.is_dir()}
        assert {f"ds={ds}" for ds in DATES} <= partitions, dataset
    first = DATES[0]
    images = catalog.current(str(backfill.output / "images" / f"ds={first}"))
    assert pq.read_table(images.uri).num_rows == IMAGES
    for ds in DATES:
        pca = catalog.current(str(backfill.output / "pca" / f"ds={ds}"))
        assert (Path(pca.uri) / "report.json").is_file()
        for stage in STAGES:
            assert backfill.report(ds, stage.name)["stage"] == stage.name
    assert not list(backfill.output.glob("*/ds=None"))


def test_only_the_first_date_featurizes(backfill):
    first, *later = DATES
    assert backfill.report(first, "featurize")["featurized"] == IMAGES
    features = catalog.current(str(backfill.output / "features" / f"ds={first}"))
    assert pq.read_table(features.uri).num_rows == IMAGES
    for ds in later:  # nothing new to read, nothing to compute
        load, featurize = backfill.report(ds, "load"), backfill.report(ds, "featurize")
        assert (load["unchanged"], load["loaded"]) == (IMAGES, 0), ds
        assert (featurize["featurized"], featurize["networks_built"]) == (0, 0), ds


def test_every_date_has_pca_of_the_whole_corpus_fitted_once(backfill):
    reports = [backfill.report(ds, "pca") for ds in DATES]
    assert {report["n_images"] for report in reports} == {reports[0]["n_images"]}
    assert reports[0]["n_images"] >= IMAGES
    assert all(report["k_selection"] == "variance" for report in reports)
    first = reports[0]["output"]  # the run folder fitted on the first date, reused by the others
    assert first.startswith(str(backfill.output / "pca" / f"ds={DATES[0]}" / "run="))
    assert [report["reused"] for report in reports] == [None, *[first] * len(DATES[1:])]
