"""Train stage: a real Spark ML pipeline trained on the whole sample's MobileNetV2 features."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from grocery_subset import GROCERY_CLASSES, GROCERY_TRAIN_PER_CLASS
from pyspark.ml import PipelineModel
from pyspark.ml.functions import array_to_vector, vector_to_array
from pyspark.sql import functions as F

from fruits import train
from fruits.classifier import ClassifierConfig, fit_arrays, fit_dataframe, fits_on_driver
from fruits.errors import InputError
from fruits.saved_pipeline import NumpyPipeline
from fruits.stages import STAGES, PipelineOptions
from pipeline import current_uri, job, paths, publish_corpus


def _train(spark, features: str, root: Path, config: ClassifierConfig | None = None, **kwargs):
    """Publish ``features`` (Parquet) as a corpus under ``root``; train on it."""
    run_paths = paths([], root, "2026-11-27")
    if not (root / "features").exists():
        publish_corpus(spark.read.parquet(features), run_paths)
    report = train.run(spark, job(run_paths), config, **kwargs)
    return report, Path(current_uri(run_paths, "model"))


SMALL = ["Banana", "Kiwi", "Lemon", "Pear", "Strawberry"]
SAMPLE, GROCERY = "fruits360-sample", "grocery-store-real"
N_GROCERY_TRAIN = len(GROCERY_CLASSES) * GROCERY_TRAIN_PER_CLASS


def test_test_split_accuracy_and_macro_f1_are_reported_and_high(trained):
    test = trained.report["test"]
    assert trained.report["n_train"] == 81 * 30 + N_GROCERY_TRAIN
    assert trained.report["n_test"] == 81 * 10  # the Test split: Fruits-360's only
    assert trained.report["classes"] == 81 + len(GROCERY_CLASSES)
    assert test["accuracy"] > 0.95
    assert test["macro_f1"] > 0.95
    assert trained.summary["test"]["accuracy"] == test["accuracy"]
    assert trained.report["stages"] == [
        "StringIndexerModel",
        "StandardScalerModel",
        "PCAModel",
        "LogisticRegressionModel",
        "IndexToString",
    ]


def test_report_has_per_class_figures_and_the_confusion_matrix(trained):
    test = trained.report["test"]
    n = len(trained.labels)
    assert set(test["per_class"]) == set(trained.labels)
    for name, figures in test["per_class"].items():
        assert figures["support"] == (10 if name.startswith(f"{SAMPLE}/") else 0), name
    assert all(0.0 <= c["precision"] <= 1.0 for c in test["per_class"].values())
    matrix = np.array(test["confusion_matrix"])
    assert matrix.shape == (n, n) and matrix.sum() == 810
    assert np.trace(matrix) / 810 == pytest.approx(test["accuracy"])
    assert sum(c["count"] for c in test["confusions"]) == 810 - np.trace(matrix)
    png = (trained.output / "confusion_matrix.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"


def test_saved_pipeline_reloads_in_spark_and_numpy_gives_the_same_probabilities(trained, spark):
    model = PipelineModel.load(str(trained.output / "model"))
    test = (
        spark.read.parquet(trained.features)
        .filter("split = 'Test'")
        .withColumn("vector", array_to_vector("features"))
    )
    rows = (
        model.transform(test.drop("label"))  # no label column: prediction time
        .select("features", "predicted_label", vector_to_array("probability").alias("p"))
        .collect()
    )
    numpy_model = NumpyPipeline.load(str(trained.output / "model"))
    probabilities = numpy_model.predict_proba(np.array([r.features for r in rows]))
    np.testing.assert_allclose(probabilities, np.array([r.p for r in rows]), atol=1e-9)
    predicted = [numpy_model.labels[i] for i in probabilities.argmax(axis=1)]
    assert predicted == [r.predicted_label for r in rows]


def test_reference_set_and_novelty_calibration(trained, spark):
    reference = spark.read.parquet(str(trained.output / "reference"))
    n = 2430 + N_GROCERY_TRAIN
    assert reference.count() == trained.report["novelty"]["reference_images"] == n
    assert {r.label for r in reference.select("label").distinct().collect()} == set(trained.labels)
    novelty = trained.report["novelty"]
    sample_test = novelty["similarity_by_source_split"][f"{SAMPLE}/Test"]
    assert sample_test["p0"] > novelty["min_similarity"]


@pytest.fixture(scope="module")
def small_features(trained, spark, tmp_path_factory) -> str:
    """5 classes of the real features, plus a Test image of a class never trained on and a
    Test copy of a Training image."""
    features = spark.read.parquet(trained.features)
    subset = features.filter(F.col("label").isin(SMALL))
    training_copy = (
        subset.filter("split = 'Training'")
        .limit(1)
        .withColumn("split", F.lit("Test"))
        .withColumn("path", F.concat("path", F.lit(".copy.jpg")))  # same bytes, another file
    )
    unseen = features.filter("label = 'Walnut' AND split = 'Test'").limit(1)
    target = str(tmp_path_factory.mktemp("small") / "features")
    subset.unionByName(training_copy).unionByName(unseen).write.parquet(target)
    return target


def test_small_run_counts_skipped_test_images_and_caps_k(small_features, spark, tmp_path):
    report, _ = _train(spark, small_features, tmp_path, ClassifierConfig(k=500))
    assert report["classes"] == 5 and report["n_train"] == 150
    assert report["k_requested"] == 500 and report["config"]["k"] == 149
    assert report["test_skipped_unseen_label"] == 1
    assert report["test_skipped_also_in_training"] == 1
    assert report["n_test"] == 50
    assert report["test"]["accuracy"] > 0.9


def test_rerun_replaces_the_output_and_the_mlp_alternative_matches_numpy(
    small_features, spark, tmp_path
):
    _, first = _train(spark, small_features, tmp_path, ClassifierConfig(k=8))
    mlp = ClassifierConfig(classifier="mlp", k=16, hidden=(12,), max_iter=100)
    report, target = _train(spark, small_features, tmp_path, mlp)
    assert json.loads((target / "report.json").read_text())["config"]["classifier"] == "mlp"
    assert report["stages"][-2] == "MultilayerPerceptronClassificationModel"
    assert target != first and not first.exists()  # a new run; the superseded one deleted

    model = PipelineModel.load(str(target / "model"))
    data = spark.read.parquet(small_features).withColumn("vector", array_to_vector("features"))
    rows = model.transform(data).select("features", vector_to_array("probability").alias("p"))
    rows = rows.collect()
    numpy_model = NumpyPipeline.load(str(target / "model"))
    np.testing.assert_allclose(
        numpy_model.predict_proba(np.array([r.features for r in rows])),
        np.array([r.p for r in rows]),
        atol=1e-9,
    )


def test_bad_inputs_are_clear_errors(small_features, spark, tmp_path):
    with pytest.raises(InputError, match="at least 2 classes"):
        train.run(spark, job(paths([], tmp_path / "none", "2026-11-27")))
    with pytest.raises(InputError, match="at least 2 classes in the 'Validation' split"):
        _train(spark, small_features, tmp_path, train_split="Validation")
    with pytest.raises(InputError, match="--k must be at least 1"):
        _train(spark, small_features, tmp_path, ClassifierConfig(k=0))
    assert not (tmp_path / "model").exists()


def test_command_line_reports_bad_input_in_one_line(tmp_path, capsys):
    with pytest.raises(SystemExit) as exited:
        train.main(["--root", str(tmp_path), "--ds", "26/11/2026"])
    assert exited.value.code == 2
    assert "fruits train: error: --date/--ds must be an ISO date" in capsys.readouterr().err


def test_train_is_the_last_stage_and_works_under_the_root_and_date():
    run_paths = paths(["/in"], "s3://bucket/out/", "2026-11-26")
    stage = STAGES[-1]
    assert (stage.name, stage.script) == ("train", "train.py")
    assert (Path(__file__).parents[2] / "jobs" / stage.script).is_file()
    args = stage.args(run_paths, PipelineOptions())
    assert args[:4] == ["--root", "s3://bucket/out/", "--ds", "2026-11-26"]
    assert run_paths.partition("model") == "s3://bucket/out/model/ds=2026-11-26"


def test_the_driver_fit_reaches_sparks_optimum_and_gives_the_same_model(small_features, spark):
    """fit_arrays (numpy, on the driver) against fit_dataframe (Spark's own LR) on real
    features: same objective, so the same predictions, and at least as low a loss."""
    data = spark.read.parquet(small_features).withColumn("vector", array_to_vector("features"))
    train_rows = data.filter("split = 'Training'")
    labels = sorted(SMALL)
    rows = train_rows.select("label", "features").toPandas()
    x = np.stack(rows["features"].to_numpy())
    y = rows["label"].map({label: i for i, label in enumerate(labels)}).to_numpy()
    config = ClassifierConfig(k=16, reg_param=0.01)
    on_driver, driver_info = fit_arrays(config, labels, x, y)
    by_spark, spark_info = fit_dataframe(config, labels, train_rows)
    assert (driver_info["fitted_on"], spark_info["fitted_on"]) == ("driver", "spark")
    assert driver_info["converged"]
    assert driver_info["loss"] <= spark_info["loss"] * (1 + 1e-6)

    test = data.filter("split = 'Test' AND label IN ('Banana', 'Kiwi', 'Lemon', 'Pear')")
    out = [
        model.transform(test).select(vector_to_array("probability").alias("p"), "predicted_label")
        for model in (on_driver, by_spark)
    ]
    driver_rows, spark_rows = out[0].collect(), out[1].collect()
    assert [r.predicted_label for r in driver_rows] == [r.predicted_label for r in spark_rows]
    np.testing.assert_allclose([r.p for r in driver_rows], [r.p for r in spark_rows], atol=0.01)
    assert [type(s).__name__ for s in on_driver.stages] == [
        type(s).__name__ for s in by_spark.stages
    ]


def test_only_small_lr_fits_on_the_driver():
    lr, mlp = ClassifierConfig(), ClassifierConfig(classifier="mlp")
    assert fits_on_driver(lr, 2430, 1280)
    assert not fits_on_driver(lr, 10_000_000, 1280)
    assert not fits_on_driver(mlp, 2430, 1280)


def test_every_source_is_evaluated_per_domain_in_the_report(trained):
    domains = trained.report["domains"]
    assert set(domains) == {
        f"{SAMPLE}/Test/variety",
        f"{SAMPLE}/Test/fruit",
        f"{GROCERY}/Validation/variety",  # Granny Smith: one Fruits-360 variety
        f"{GROCERY}/Validation/fruit",
        f"{GROCERY}/Validation/unknown",
    }
    variety, fruit = domains[f"{SAMPLE}/Test/variety"], domains[f"{SAMPLE}/Test/fruit"]
    assert variety["level"] == "variety" and variety["n"] == 810 and variety["top1"] > 0.95
    assert fruit["level"] == "fruit" and fruit["n"] == 810
    assert fruit["top1"] >= variety["top1"] and fruit["top3"] >= fruit["top1"]
    shop, refused = domains[f"{GROCERY}/Validation/fruit"], domains[f"{GROCERY}/Validation/unknown"]
    val = trained.output.parents[3] / GROCERY / "val"
    n_val = {c: len(list((val / c).glob("*.jpg"))) for c in GROCERY_CLASSES}
    assert shop["n"] == sum(n for c, n in n_val.items() if c.startswith(("Fruit/", "Vegetables/T")))
    assert refused["n"] == sum(n_val.values()) - shop["n"] and refused["level"] == "unknown"
    assert 0.0 <= shop["answered"] <= 1.0 and shop["top3"] >= shop["top1"]
    # Trained on 8 photos per grocery class, it still refuses most packages and carrots.
    assert refused["unknown_rate"] >= 0.6
    for name, figures in domains.items():
        png = trained.output / figures["confusion_png"]
        assert png.read_bytes()[:4] == b"\x89PNG", name
    assert trained.summary["domains"] == domains


def test_classes_json_says_what_each_class_is(trained):
    saved = json.loads((trained.output / "classes.json").read_text())
    classes = {c["class"]: c for c in saved["classes"]}
    assert list(classes) == trained.labels  # the model's class order
    assert classes[f"{SAMPLE}/Pear Abate"] | {"mapped_by": None} == {
        "class": f"{SAMPLE}/Pear Abate",
        "source": SAMPLE,
        "class_path": "Pear Abate",
        "fruit": "pear",
        "variety": "Pear Abate",
        "mapped_by": None,
    }
    assert classes[f"{GROCERY}/Fruit/Apple/Granny-Smith"]["variety"] == "Apple Granny Smith"
    assert classes[f"{GROCERY}/Fruit/Pear/Conference"]["variety"] is None
    assert classes[f"{GROCERY}/Fruit/Melon/Watermelon"]["fruit"] == "watermelon"
    assert classes[f"{GROCERY}/Vegetables/Tomato/Vine-Tomato"]["fruit"] == "tomato"
    assert classes[f"{GROCERY}/Vegetables/Carrots"]["fruit"] is None
    assert saved["rules"]["test_views"] == 1  # no test-time views in this corpus
    sources = trained.report["sources"]
    assert sources[GROCERY]["fruit_map"] == "fruit_map.csv" and sources[SAMPLE]["fruit_map"] is None
    assert trained.report["calibration"]["images"] == sum(
        1 for _ in (trained.output.parents[3] / GROCERY / "val").rglob("*.jpg")
    )
    assert 0.2 <= trained.report["calibration"]["temperature"] <= 5.0


@pytest.mark.parametrize(
    ("predicted", "truth", "message"),
    [([0, 0, 0, 0], [0, 0, 1, 1], "the same class"),
     ([0, 0, 0, 1, 0, 0], [0, 0, 0, 0, 1, 1], "no better than always answering"),
     ([0, 0, 1, 1], [0, 0, 1, 1], None),
     ([0, 1, 2, 2], [0, 1, 2, 0], None),
     ([1, 1], [1, 1], None)],  # one class: nothing to separate, nothing to judge
)  # fmt: skip
def test_a_degenerate_fit_is_named(predicted, truth, message):
    why = train.degenerate_fit(np.array(predicted), np.array(truth))
    assert why is None if message is None else message in why


def test_constant_training_features_fail_the_stage_and_publish_nothing(
    small_features, spark, tmp_path
):
    """All training images with the same features (e.g. one photo under many names): the fit
    cannot separate the classes; before, the stage published a constant model with exit 0."""
    features = spark.read.parquet(small_features)
    constant = F.array_repeat(F.lit(0.5).cast("float"), 1280)
    flat = features.withColumn(
        "features", F.when(F.col("split") == "Training", constant).otherwise(F.col("features"))
    )
    target = str(tmp_path / "flat-features")
    flat.write.parquet(target)
    with pytest.raises(train.DegenerateFit, match=r"no model published: .*same class"):
        _train(spark, target, tmp_path / "root", ClassifierConfig(k=8))
    run_paths = paths([], tmp_path / "root", "2026-11-27")
    assert not Path(run_paths.partition("model"), "_current.json").exists()
