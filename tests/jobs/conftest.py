"""One real run of the three stages (in-process, local[2]) shared by the stage tests."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from fruits import featurize, load, pca
from fruits.stages import RunPaths
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
    paths = RunPaths(input=str(images), root=str(root / "out"), ds="2026-11-26")
    load_report = load.run(spark, paths.input, paths.images, paths.quarantine("load"))
    featurize_report = featurize.run(
        spark, paths.images, paths.features, paths.quarantine("featurize"), str(weights_path)
    )
    pca_report = pca.run(spark, paths.features, paths.pca, variance=0.9)
    return StagesRun(images, paths, bad, load_report, featurize_report, pca_report)
