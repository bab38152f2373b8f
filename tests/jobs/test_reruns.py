"""Nothing twice: incremental daily runs, reruns that replace one date, failed writes."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import numpy as np
import pytest
from pyspark.sql import functions as F

from fruits import featurize, load, pca
from fruits.errors import InputError
from fruits.reporting import write_parquet
from fruits.stages import RunPaths
from samples import copy_subset


def _run_day(spark, input_dir: Path, root: Path, ds: str, weights: Path) -> dict:
    paths = RunPaths(input=str(input_dir), root=str(root), ds=ds)
    load.run(spark, paths.input, paths.images, paths.quarantine("load"))
    return featurize.run(
        spark,
        paths.images,
        paths.features,
        paths.quarantine("featurize"),
        str(weights),
        known_uri=paths.dataset("features"),
        ds=ds,
    )


def _rows(spark, uri: str) -> dict[str, tuple]:
    return {r.path: (r.image_id, tuple(r.features)) for r in spark.read.parquet(uri).collect()}


@pytest.fixture(scope="module")
def two_days(spark, sample_dir, weights_path, tmp_path_factory):
    """Day 1: 12 images. Day 2: the same 12, two new ones and a copy of a known one."""
    base = tmp_path_factory.mktemp("days")
    images = copy_subset(sample_dir, base / "in", ["Cherry 1", "Peach", "Plum"], per_class=2)
    root = base / "out"
    day1 = _run_day(spark, images, root, "2026-03-01", weights_path)
    copy_subset(sample_dir, base / "extra", ["Mango"], per_class=1)
    shutil.copytree(base / "extra", images, dirs_exist_ok=True)
    known = next((images / "Training" / "Peach").glob("*.jpg"))
    (images / "Training" / "Peach copy").mkdir()
    shutil.copy(known, images / "Training" / "Peach copy" / "again.jpg")
    day2 = _run_day(spark, images, root, "2026-03-02", weights_path)
    return root, images, day1, day2


def test_a_daily_run_featurizes_only_new_images(two_days, spark):
    _, _, day1, day2 = two_days
    assert (day1["images_in"], day1["computed"], day1["featurized"]) == (12, 12, 12)
    assert day2["images_in"] == 15
    assert day2["already_featurized"] == 12
    assert day2["featurized"] == 3  # two new files and a new path to known content
    assert day2["computed"] == 2  # the copy reuses the vector computed on day 1


def test_every_path_keeps_its_vector_and_pca_sees_the_whole_corpus(two_days, spark):
    root, _, _, _ = two_days
    every = _rows(spark, str(root / "features"))
    assert len(every) == 15
    copy = next(v for p, v in every.items() if p.endswith("Peach copy/again.jpg"))
    twins = [v for v in every.values() if v[0] == copy[0]]
    assert len(twins) == 2 and twins[0][1] == twins[1][1]

    report = pca.run(spark, str(root / "features"), str(root / "pca" / "ds=2026-03-02"), k=4)
    assert report["n_images"] == 15


def test_rerunning_a_date_replaces_only_that_date_with_identical_rows(
    two_days, spark, weights_path
):
    root, images, _, _ = two_days
    day1_before = _rows(spark, str(root / "features" / "ds=2026-03-01"))
    day2_before = _rows(spark, str(root / "features" / "ds=2026-03-02"))
    rerun = _run_day(spark, images, root, "2026-03-02", weights_path)
    assert rerun["featurized"] == 3 and rerun["already_featurized"] == 12
    day2_after = _rows(spark, str(root / "features" / "ds=2026-03-02"))
    assert day2_after.keys() == day2_before.keys()
    for path, (image_id, vector) in day2_after.items():
        assert image_id == day2_before[path][0]
        np.testing.assert_allclose(vector, day2_before[path][1], atol=1e-6)
    assert _rows(spark, str(root / "features" / "ds=2026-03-01")) == day1_before
    assert not list((root / "features").glob("_staging*"))


def test_a_write_that_fails_midway_leaves_the_previous_output_readable(spark, tmp_path):
    target = str(tmp_path / "data")
    write_parquet(spark, spark.range(10), target)

    @F.udf("long")
    def explode_on_37(value: int) -> int:
        if value == 37:
            raise ValueError("disk on fire")
        time.sleep(0.01)
        return value

    # Many short tasks: when one fails, a sibling is often just starting to write into the
    # staging folder (without the wait for killed tasks, 6 runs in 15 left it behind).
    failing = spark.range(200).repartition(40).select(explode_on_37("id").alias("id"))
    for _ in range(3):
        with pytest.raises(Exception, match="disk on fire"):
            write_parquet(spark, failing, target)
        assert sorted(r.id for r in spark.read.parquet(target).collect()) == list(range(10))
        assert [p.name for p in tmp_path.iterdir()] == ["data"]


def test_empty_input_gives_empty_outputs_and_pca_a_clear_error(spark, tmp_path, weights_path):
    (tmp_path / "in").mkdir()
    paths = RunPaths(input=str(tmp_path / "in"), root=str(tmp_path / "out"), ds="2026-03-03")
    loaded = load.run(spark, paths.input, paths.images, paths.quarantine("load"))
    assert (loaded["files_seen"], loaded["images_loaded"], loaded["quarantined"]) == (0, 0, 0)
    done = featurize.run(
        spark, paths.images, paths.features, paths.quarantine("featurize"), str(weights_path)
    )
    assert (done["images_in"], done["featurized"]) == (0, 0)
    assert spark.read.parquet(paths.features).count() == 0
    with pytest.raises(InputError, match="PCA needs at least 2 images"):
        pca.run(spark, paths.features, paths.pca)
