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
    features: Path  # the corpus's featurized rows (Parquet) of every image
    a: Path  # a model run folder: model/, reference/, report.json (4 classes)
    b: Path  # the same without LEFT_OUT_OF_B (3 classes)
    broken: Path  # a train output folder whose model cannot be loaded


def train_small_models(spark, sample_dir: Path, weights: Path, root: Path) -> SmallModels:
    from pyspark.sql import functions as F

    from fruits import corpus, train
    from pipeline import current_uri, job, paths, publish_corpus, run_stages

    images = copy_subset(sample_dir, root / "images", CLASSES, PER_CLASS)
    run_a = paths([images], root / "out-a", "2026-11-26")
    run_stages(spark, run_a, weights, ("load", "featurize", "train"))
    features = root / "features"
    every = corpus.current_features(spark, run_a).drop("ds")
    every.write.parquet(str(features))
    run_b = paths([], root / "out-b", "2026-11-26")
    publish_corpus(every.filter(F.col("label") != LEFT_OUT_OF_B), run_b)
    train.run(spark, job(run_b))
    a, b = Path(current_uri(run_a, "model")), Path(current_uri(run_b, "model"))
    broken = root / "model-broken"
    shutil.copytree(a, broken)
    shutil.rmtree(broken / "model" / "stages")  # metadata says PipelineModel, no stages
    return SmallModels(images, features, a, b, broken)
