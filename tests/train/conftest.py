"""One real training run on the whole shared sample (load → featurize → train), shared by the
classifier and prediction tests: featurizing 3,240 images costs minutes, so it happens once."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from fruits import featurize, load, train


@dataclass
class Trained:
    features: str  # featurize output (Parquet)
    output: Path  # train output folder: model/, reference/, report.json, confusion_matrix.png
    summary: dict[str, Any]  # what train.run returned (the stage report)
    report: dict[str, Any]  # report.json

    @property
    def labels(self) -> list[str]:
        return self.report["labels"]


@pytest.fixture(scope="session")
def trained(spark, sample_dir, weights_path, tmp_path_factory) -> Trained:
    root = tmp_path_factory.mktemp("train")
    images, features = str(root / "images"), str(root / "features")
    load.run(spark, str(sample_dir), images, str(root / "quarantine" / "load"))
    featurize.run(
        spark, images, features, str(root / "quarantine" / "featurize"), str(weights_path)
    )
    output = root / "model"
    summary = train.run(spark, features, str(output))
    report = json.loads((output / "report.json").read_text())
    return Trained(features, output, summary, report)


@pytest.fixture(scope="session")
def predictor(trained, weights_path):
    from fruits.predict import Predictor

    return Predictor(str(trained.output), str(weights_path))
