"""The local twin end to end: ``dag.test()`` runs the real stages through a local spark-submit.

Two runs on 3 classes × 3 images × 2 splits of the real sample: 2024-01-01 with the default
params, every stage; then 2024-01-02 as a manual run with ``k=3`` over the same images (nothing
new to read) that stops paying after pca (the later stages are marked successful by
``dag.test(mark_success_pattern=…)``: the first run covers them).
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from dag_harness import parse_dag, states

from fruits import catalog, promotion
from fruits.stages import STAGES
from samples import copy_subset

pytestmark = pytest.mark.slow

DAY_1, DAY_2 = "2024-01-01", "2024-01-02"
CLASSES = ["Apple Braeburn", "Banana", "Kiwi"]
PER_CLASS = 3
STAGE_NAMES = [stage.name for stage in STAGES]
UP_TO_PCA = STAGE_NAMES[: STAGE_NAMES.index("pca") + 1]
AFTER_PCA = [*STAGE_NAMES[len(UP_TO_PCA) :], "publish_model"]


def local_dag(monkeypatch: pytest.MonkeyPatch, images: Path, output: Path, weights: Path):
    """The DAG parsed as the local twin, reading ``images`` and writing under ``output``."""
    return parse_dag(
        monkeypatch,
        FRUITS_EXECUTION="local",
        FRUITS_INPUT=str(images),
        FRUITS_OUTPUT=str(output),
        FRUITS_WEIGHTS=str(weights),
    )


def report(output: Path, ds: str, stage: str) -> dict[str, Any]:
    return json.loads((output / "reports" / f"ds={ds}" / f"{stage}.json").read_text())


def snapshot(folder: Path) -> dict[str, tuple[bytes, int]]:
    """Every file under ``folder``: relative path → (bytes, mtime)."""
    return {
        str(file.relative_to(folder)): (file.read_bytes(), file.stat().st_mtime_ns)
        for file in sorted(folder.rglob("*"))
        if file.is_file()
    }


@dataclass(frozen=True)
class Runs:
    output: Path
    states: list[dict[str, str | None]]  # task → state, per run, read right after it
    manual: Any  # the second run (DagRun)
    day_1_before: dict[str, tuple[bytes, int]]  # 2024-01-01's reports before the second run
    day_1_after: dict[str, tuple[bytes, int]]


@pytest.fixture(scope="module")
def runs(module_monkeypatch, sample_dir, weights_path, tmp_path_factory) -> Runs:
    root = tmp_path_factory.mktemp("local-twin")
    images = copy_subset(sample_dir, root / "images", CLASSES, per_class=PER_CLASS)
    output = root / "output"
    dag = local_dag(module_monkeypatch, images, output, weights_path)
    scheduled = dag.test(logical_date=dt.datetime(2024, 1, 1, tzinfo=dt.UTC))
    first = states(scheduled)
    before = day_1(output)
    manual = dag.test(
        logical_date=dt.datetime(2024, 1, 2, tzinfo=dt.UTC),
        run_conf={"k": 3},
        mark_success_pattern="|".join(AFTER_PCA) or None,
    )
    return Runs(output, [first, states(manual)], manual, before, day_1(output))


def day_1(output: Path) -> dict[str, tuple[bytes, int]]:
    """2024-01-01's reports and the pointers that name its current runs."""
    files = snapshot(output / "reports" / f"ds={DAY_1}")
    for dataset in ("images", "features", "quarantine", "pca", "model"):
        files |= snapshot(output / dataset / f"ds={DAY_1}")
    return files


def test_each_run_goes_through_every_stage(runs):
    every_task = dict.fromkeys(["validate_params", *STAGE_NAMES, "publish_model"], "success")
    assert runs.states == [every_task, every_task]


def test_a_run_writes_its_outputs_under_its_logical_date(runs):
    for ds in (DAY_1, DAY_2):
        for dataset in ("images", "features", "pca"):
            current = catalog.current(str(runs.output / dataset / f"ds={ds}"))
            assert current is not None and current.uri.startswith(str(runs.output / dataset))
        for stage in STAGE_NAMES if ds == DAY_1 else UP_TO_PCA:
            assert report(runs.output, ds, stage)["stage"] == stage
    images = len(CLASSES) * PER_CLASS * 2  # Training and Test
    assert report(runs.output, DAY_1, "load")["new"] == images
    features = catalog.current(str(runs.output / "features" / f"ds={DAY_1}"))
    assert pq.read_table(features.uri).num_rows == images


def test_a_second_day_with_nothing_new_reads_and_computes_nothing(runs):
    load, featurize = report(runs.output, DAY_2, "load"), report(runs.output, DAY_2, "featurize")
    images = len(CLASSES) * PER_CLASS * 2
    assert (load["listed"], load["unchanged"], load["loaded"]) == (images, images, 0)
    assert (featurize["computed"], featurize["networks_built"]) == (0, 0)


def test_two_logical_dates_give_two_partitions(runs):
    for dataset in ("images", "features", "pca", "reports"):
        partitions = sorted(p.name for p in (runs.output / dataset).iterdir() if p.is_dir())
        assert partitions == [f"ds={DAY_1}", f"ds={DAY_2}"], dataset


def test_a_manual_runs_params_change_the_result(runs):
    scheduled, manual = report(runs.output, DAY_1, "pca"), report(runs.output, DAY_2, "pca")
    assert scheduled["k_selection"] == "variance"
    assert (manual["k"], manual["k_selection"]) == (3, "given")
    assert runs.manual.get_task_instance("pca").xcom_pull(task_ids="pca")["k"] == 3


def test_the_first_run_promotes_its_model_to_the_served_one(runs):
    pointer = json.loads(Path(promotion.default_pointer(str(runs.output))).read_text())
    train = report(runs.output, DAY_1, "train")
    assert pointer["model"] == train["output"]
    assert pointer["ds"] == DAY_1
    model_report, _ = promotion.read_model_report(train["output"])
    assert pointer["metrics"] == promotion.domain_metrics(model_report)
    assert any(name.endswith("/variety") for name in pointer["metrics"]), pointer["metrics"]


def test_a_run_leaves_other_dates_untouched(runs):
    assert runs.day_1_after == runs.day_1_before


def test_a_run_without_logical_date_writes_under_the_day_it_ran(
    monkeypatch, sample_dir, weights_path, tmp_path
):
    """``airflow dags trigger`` without ``--logical-date`` (or the API with ``logical_date:
    null``) gives a run with no ``ds``: it partitions by its ``run_after`` day, never ds=None."""
    images = copy_subset(sample_dir, tmp_path / "images", CLASSES[:1], per_class=1)
    output = tmp_path / "output"
    dag = local_dag(monkeypatch, images, output, weights_path)
    run = dag.test(
        logical_date=None,
        run_after=dt.datetime(2024, 3, 5, 23, 30, tzinfo=dt.UTC),
        mark_success_pattern="|".join(STAGE_NAMES[1:]),
    )
    assert run.logical_date is None
    assert states(run)["load"] == "success"
    assert sorted(p.name for p in (output / "images").iterdir()) == ["ds=2024-03-05"]
    assert report(output, "2024-03-05", "load")["listed"] == 2
