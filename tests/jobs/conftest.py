"""One real run of the first three stages (in-process, local[2]) shared by the stage tests."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from fruits.stages import RunPaths
from pipeline import paths, run_stages
from samples import SMALL_CLASSES, copy_subset, write_bad_inputs


@dataclass
class StagesRun:
    input: Path
    paths: RunPaths
    bad_inputs: dict[str, str]
    load: dict[str, Any]
    featurize: dict[str, Any]
    pca: dict[str, Any]


@pytest.fixture(scope="session")
def stages_run(spark, sample_dir, weights_path, tmp_path_factory) -> StagesRun:
    root = tmp_path_factory.mktemp("stages")
    images = copy_subset(sample_dir, root / "input", SMALL_CLASSES, per_class=4)
    bad = write_bad_inputs(sample_dir, images)
    run_paths = paths([images], root / "out", "2026-11-26")
    reports = run_stages(spark, run_paths, weights_path, ("load", "featurize", "pca"), variance=0.9)
    return StagesRun(images, run_paths, bad, reports["load"], reports["featurize"], reports["pca"])
