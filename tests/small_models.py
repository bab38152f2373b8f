"""Two real, small classifiers for the service and promotion tests, trained once per session.

Real images of a few classes of the shared sample go through the real load, featurize
(MobileNetV2, real weights) and train stages on the session's embedded Spark; the second model
is trained on the same features without one class, so the two differ in labels and version.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from samples import copy_subset

CLASSES = ["Apple Braeburn", "Banana", "Kiwi", "Strawberry"]
PER_CLASS = 4  # per split (Training and Test)
LEFT_OUT_OF_B = "Apple Braeburn"


@dataclass(frozen=True)
class SmallModels:
    images: Path  # Training/<Class>/*.jpg and Test/<Class>/*.jpg
    features: Path  # featurize output (Parquet) of every image
    a: Path  # train output folder: model/, reference/, report.json (4 classes)
    b: Path  # the same without LEFT_OUT_OF_B (3 classes)
    broken: Path  # a train output folder whose model cannot be loaded


def train_small_models(spark, sample_dir: Path, weights: Path, root: Path) -> SmallModels:
    from pyspark.sql import functions as F

    from fruits import featurize, load, train

    images = copy_subset(sample_dir, root / "images", CLASSES, PER_CLASS)
    loaded, features = root / "loaded", root / "features"
    load.run(spark, str(images), str(loaded), str(root / "quarantine" / "load"))
    featurize.run(
        spark, str(loaded), str(features), str(root / "quarantine" / "featurize"), str(weights)
    )
    a, b = root / "model-a", root / "model-b"
    train.run(spark, str(features), str(a))
    without = root / "features-b"
    spark.read.parquet(str(features)).filter(F.col("label") != LEFT_OUT_OF_B).write.parquet(
        str(without)
    )
    train.run(spark, str(without), str(b))
    broken = root / "model-broken"
    shutil.copytree(a, broken)
    shutil.rmtree(broken / "model" / "stages")  # metadata says PipelineModel, no stages
    return SmallModels(images, features, a, b, broken)
