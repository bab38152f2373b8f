"""One real training run (load → featurize → train) on two sources — the whole Fruits-360
sample and a few classes of the grocery phone photos with their mapping file — shared by the
classifier and prediction tests: featurizing 3,240 images costs minutes, so it happens once."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from grocery_subset import copy_grocery

from fruits import corpus
from pipeline import current_uri, paths, run_stages


@dataclass
class Trained:
    features: str  # featurize output (Parquet)
    output: Path  # the model run folder: model/, reference/, report.json, confusion_matrix.png
    summary: dict[str, Any]  # what train.run returned (the stage report)
    report: dict[str, Any]  # report.json

    @property
    def labels(self) -> list[str]:
        return self.report["labels"]


@pytest.fixture(scope="session")
def trained(spark, sample_dir, grocery_dir, weights_path, tmp_path_factory) -> Trained:
    root = tmp_path_factory.mktemp("train")
    grocery = copy_grocery(grocery_dir, root / "grocery-store-real")
    run_paths = paths([sample_dir, grocery], root / "out", "2026-11-26")
    reports = run_stages(spark, run_paths, weights_path, ("load", "featurize", "train"))
    features = str(root / "features")  # the corpus, as one Parquet folder for the tests
    corpus.current_features(spark, run_paths).drop("ds").write.parquet(features)
    output = Path(current_uri(run_paths, "model"))
    report = json.loads((output / "report.json").read_text())
    return Trained(features, output, reports["train"], report)


@pytest.fixture(scope="session")
def predictor(trained, weights_path):
    from fruits.predict import Predictor

    return Predictor(str(trained.output), str(weights_path))


@pytest.fixture(scope="session")
def grocery_dir(sample_dir) -> Path:
    """The grocery-store phone photos (read-only): train/ and val/, fruit_map.csv."""
    path = Path(os.environ.get("FRUITS_GROCERY_DIR", sample_dir.parent / "grocery-store-real"))
    if not path.is_dir():
        pytest.fail(f"{path} not found: set FRUITS_GROCERY_DIR", pytrace=False)
    return path.resolve()
