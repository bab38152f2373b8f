"""PCA stage: k from explained variance or given, exact on any input, reuse, saved outputs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from pyspark.ml.feature import PCAModel
from pyspark.ml.functions import array_to_vector, vector_to_array

from fruits import catalog, corpus, pca
from fruits.errors import InputError
from pipeline import current_uri, job, paths, publish_corpus


def _corpus(stages_run, spark):
    return corpus.current_features(spark, stages_run.paths)


def test_k_is_the_smallest_meeting_the_variance_target(stages_run):
    report = stages_run.pca
    cumulative = report["cumulative_explained_variance"]
    assert report["k_selection"] == "variance" and report["variance_target"] == 0.9
    assert len(cumulative) == report["k"]
    assert cumulative[-1] >= 0.9
    assert report["k"] == 1 or cumulative[-2] < 0.9
    assert np.all(np.diff(report["explained_variance"]) <= 1e-12)


def test_outputs_rows_report_and_plot(stages_run, spark):
    out = Path(current_uri(stages_run.paths, "pca"))
    vectors = spark.read.parquet(str(out / "vectors"))
    assert vectors.columns == ["image_id", "path", "label", "split", "source", "pca_features"]
    assert vectors.count() == stages_run.featurize["featurized"] == stages_run.pca["n_images"]
    assert {len(r.pca_features) for r in vectors.collect()} == {stages_run.pca["k"]}
    report = json.loads((out / "report.json").read_text())
    assert report["k"] == stages_run.pca["k"]
    assert sum(report["images_by_label"].values()) == report["n_images"]
    assert (out / "explained_variance.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_saved_model_reloads_and_projects_the_same_vectors(stages_run, spark):
    out = Path(current_uri(stages_run.paths, "pca"))
    model = PCAModel.load(str(out / "model"))
    features = _corpus(stages_run, spark).withColumn("vector", array_to_vector("features"))
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


def test_a_new_k_publishes_a_new_run_and_the_same_input_reuses_the_old(stages_run, spark, tmp_path):
    run_paths = paths([], tmp_path, "2026-06-01")
    publish_corpus(_corpus(stages_run, spark), run_paths)
    first = pca.run(spark, job(run_paths), k=3)
    assert first["k"] == 3 and first["k_selection"] == "given" and first["reused"] is None
    second = pca.run(spark, job(run_paths), k=5)
    assert second["k"] == 5
    rows = spark.read.parquet(f"{current_uri(run_paths, 'pca')}/vectors").collect()
    assert {len(r.pca_features) for r in rows} == {5}
    assert len(rows) == first["n_images"]
    runs = [p.name for p in (tmp_path / "pca" / "ds=2026-06-01").iterdir()]
    assert sorted(runs) == ["_current.json", Path(second["output"]).name]  # k=3 run deleted

    next_day = paths([], tmp_path, "2026-06-02")
    again = pca.run(spark, job(next_day), k=5)  # same corpus, same k: nothing to fit
    assert again["reused"] == second["output"]  # the run folder made current again
    assert catalog.current(next_day.partition("pca")).uri == second["output"]
    assert [p.name for p in (tmp_path / "pca" / "ds=2026-06-02").iterdir()] == ["_current.json"]


def test_choose_k():
    assert pca.choose_k([0.5, 0.3, 0.1, 0.1], 0.8) == 2
    assert pca.choose_k([0.5, 0.3, 0.1, 0.1], 0.81) == 3
    assert pca.choose_k([0.5, 0.3], 0.99) == 2


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"k": 0}, "--k must be between 1"), ({"variance": 1.5}, "--variance must be in")],
)
def test_bad_options_are_clear_errors_before_any_work(stages_run, spark, tmp_path, kwargs, message):
    run_paths = paths([], tmp_path, "2026-06-03")
    with pytest.raises(InputError, match=message):
        pca.run(spark, job(run_paths), **kwargs)
    assert not (tmp_path / "pca").exists()


def _numpy_pca(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    cov = np.cov(x, rowvar=False)
    values = np.sort(np.linalg.eigvalsh(cov))[::-1]
    return cov, values / values.sum()


@pytest.mark.parametrize("rows", ["all", "fewer_than_k_max", "rank_deficient"])
def test_the_fit_is_exact_on_any_input_size(stages_run, spark, tmp_path, rows):
    """Explained variance as numpy computes it, and every component an eigenvector of the
    covariance: with fewer images than features and with duplicated rows (Spark's own PCA
    gets both wrong)."""
    data = _corpus(stages_run, spark).select("image_id", "path", "label", "split", "features")
    if rows == "fewer_than_k_max":
        data = data.limit(20)
    elif rows == "rank_deficient":
        data = data.limit(12).unionByName(data.limit(12)).unionByName(data.limit(12))
    run_paths = paths([], tmp_path, "2026-06-04")
    publish_corpus(data, run_paths)
    report = pca.run(spark, job(run_paths), k=8)
    x = np.asarray([r.features for r in data.collect()], dtype=np.float64)
    cov, expected = _numpy_pca(x)
    np.testing.assert_allclose(report["explained_variance"], expected[:8], rtol=1e-4, atol=1e-7)
    components = PCAModel.load(f"{report['output']}/model").pc.toArray()
    for i in range(8):
        v = components[:, i]
        np.testing.assert_allclose(cov @ v, (v @ cov @ v) * v, atol=1e-6 * np.abs(cov).max())


def test_first_components_equal_a_fit_with_k(stages_run, spark, tmp_path):
    """The variance path fits once and truncates: exactly what a second fit with k gives."""
    data = _corpus(stages_run, spark).withColumn("vector", array_to_vector("features"))
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
