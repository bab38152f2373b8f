"""PCA stage: k from explained variance or given, saved model, report and plot."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from pyspark.ml.feature import PCAModel
from pyspark.ml.functions import array_to_vector, vector_to_array

from fruits import pca
from fruits.errors import InputError


def test_k_is_the_smallest_meeting_the_variance_target(stages_run):
    report = stages_run.pca
    cumulative = report["cumulative_explained_variance"]
    assert report["k_selection"] == "variance" and report["variance_target"] == 0.9
    assert len(cumulative) == report["k"]
    assert cumulative[-1] >= 0.9
    assert report["k"] == 1 or cumulative[-2] < 0.9
    assert np.all(np.diff(report["explained_variance"]) <= 1e-12)


def test_outputs_rows_report_and_plot(stages_run, spark):
    out = Path(stages_run.paths.pca)
    vectors = spark.read.parquet(str(out / "vectors"))
    assert vectors.columns == ["image_id", "path", "label", "split", "pca_features"]
    assert vectors.count() == stages_run.featurize["featurized"] == stages_run.pca["n_images"]
    assert {len(r.pca_features) for r in vectors.collect()} == {stages_run.pca["k"]}
    report = json.loads((out / "report.json").read_text())
    assert report["k"] == stages_run.pca["k"]
    assert sum(report["images_by_label"].values()) == report["n_images"]
    assert (out / "explained_variance.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_saved_model_reloads_and_projects_the_same_vectors(stages_run, spark):
    out = Path(stages_run.paths.pca)
    model = PCAModel.load(str(out / "model"))
    features = spark.read.parquet(stages_run.paths.features).withColumn(
        "vector", array_to_vector("features")
    )
    projected = {
        r.image_id: np.asarray(r.p)
        for r in model.setInputCol("vector")
        .setOutputCol("pv")
        .transform(features)
        .select("image_id", vector_to_array("pv").alias("p"))
        .collect()
    }
    saved = spark.read.parquet(str(out / "vectors")).collect()
    for row in saved:
        np.testing.assert_allclose(row.pca_features, projected[row.image_id], rtol=1e-5, atol=1e-4)


def test_given_k_and_rerun_replaces_the_output(stages_run, spark, tmp_path):
    target = tmp_path / "pca"
    first = pca.run(spark, stages_run.paths.features, str(target), k=3)
    assert first["k"] == 3 and first["k_selection"] == "given"
    second = pca.run(spark, stages_run.paths.features, str(target), k=5)
    assert second["k"] == 5
    rows = spark.read.parquet(str(target / "vectors")).collect()
    assert {len(r.pca_features) for r in rows} == {5}
    assert len(rows) == first["n_images"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith("_staging")]


def test_choose_k():
    assert pca.choose_k([0.5, 0.3, 0.1, 0.1], 0.8) == 2
    assert pca.choose_k([0.5, 0.3, 0.1, 0.1], 0.81) == 3
    assert pca.choose_k([0.5, 0.3], 0.99) == 2


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"k": 0}, "--k must be between 1"), ({"variance": 1.5}, "--variance must be in")],
)
def test_bad_options_are_clear_errors(stages_run, spark, tmp_path, kwargs, message):
    with pytest.raises(InputError, match=message):
        pca.run(spark, stages_run.paths.features, str(tmp_path / "x"), **kwargs)


def test_explained_variance_matches_numpy(stages_run, spark):
    """Spark's eigen-decomposition agrees with numpy's on a rank-deficient covariance
    (fewer images than 1280 features), the case where a wrong result was once seen."""
    rows = spark.read.parquet(stages_run.paths.features).select("features").collect()
    x = np.asarray([r.features for r in rows], dtype=np.float64)
    eigenvalues = np.sort(np.linalg.eigvalsh(np.cov(x, rowvar=False)))[::-1]
    expected = eigenvalues / eigenvalues.sum()
    report = stages_run.pca
    np.testing.assert_allclose(
        report["explained_variance"], expected[: report["k"]], rtol=1e-3, atol=1e-6
    )


def test_first_components_equal_a_fit_with_k(stages_run, spark, tmp_path):
    """The variance path fits once and truncates: exactly what a second fit with k gives."""
    data = spark.read.parquet(stages_run.paths.features).withColumn(
        "vector", array_to_vector("features")
    )
    k = 4
    truncated = pca.first_components(pca.fit_pca(data, 20), k)
    direct = pca.fit_pca(data, k)
    np.testing.assert_allclose(truncated.pc.toArray(), direct.pc.toArray(), atol=1e-9)
    np.testing.assert_allclose(
        truncated.explainedVariance.toArray(), direct.explainedVariance.toArray(), atol=1e-12
    )
    truncated.write().save(str(tmp_path / "model"))
    reloaded = PCAModel.load(str(tmp_path / "model"))
    assert reloaded.getK() == k and reloaded.pc.numCols == k

    def project(model: PCAModel) -> np.ndarray:
        rows = model.transform(data).select(vector_to_array("pca_vector").alias("p")).collect()
        return np.asarray([r.p for r in rows])

    np.testing.assert_allclose(project(reloaded), project(direct), atol=1e-6)
