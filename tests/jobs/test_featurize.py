"""Featurize stage: real MobileNetV2 weights, broadcast to real Spark workers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from fruits import featurize
from fruits.config import ARROW_BATCH_MAX_BYTES, ARROW_BATCH_ROWS
from fruits.errors import InputError
from fruits.model import VIEWS_SUFFIX, WeightsUnavailable, load_network
from pipeline import current, job, paths
from samples import FEATURIZED


@pytest.fixture(scope="module")
def features(stages_run, spark) -> dict[str, object]:
    """The date's featurized rows by local path."""
    rows = current(spark, stages_run.paths, "features").filter("status = 'featurized'").collect()
    return {r.path.removeprefix("file:"): r for r in rows}


def test_features_have_1280_dims_and_match_plain_keras(stages_run, features, weights_path):
    """The broadcast weights are the driver's: Spark features = single-process Keras predict."""
    import keras
    from keras.applications.mobilenet_v2 import preprocess_input

    network = keras.applications.MobileNetV2(
        input_shape=(224, 224, 3), include_top=False, weights=None, pooling="avg"
    )
    network.load_weights(str(weights_path))
    paths = sorted(p for p in features if "/Odd/" not in p and "loose" not in p)
    batch = np.stack(
        [
            keras.utils.img_to_array(
                keras.utils.load_img(p, target_size=(224, 224), interpolation="bilinear")
            )
            for p in paths
        ]
    )
    expected = network.predict(preprocess_input(batch), verbose=0)
    actual = np.stack([np.asarray(features[p].features, dtype=np.float32) for p in paths])
    assert actual.shape == (len(paths), 1280)
    np.testing.assert_allclose(actual, expected, atol=1e-4)
    assert np.abs(actual).sum() > 0


def test_network_is_built_once_per_worker_not_per_batch(stages_run):
    report = stages_run.featurize
    assert 1 <= report["networks_built"] <= 2  # local[2]: at most two Python workers
    assert report["arrow_batches"] > report["networks_built"]
    assert report["broadcast_bytes"] > 8_000_000  # 2.26 M float32 weights travel once


def test_odd_but_decodable_images_are_converted_and_featurized(stages_run, features):
    featurized_odd = {str(Path(p).relative_to(stages_run.input)) for p in features if "/Odd/" in p}
    expected = {p for p, (status, _) in stages_run.bad_inputs.items() if status == FEATURIZED}
    assert featurized_odd == expected
    report = stages_run.featurize
    assert report["loaded_in"] == stages_run.load["loaded"] == report["featurized"]
    assert report["events"] == stages_run.load["events"]
    assert report["quarantined"] == stages_run.load["quarantined"]


def test_identical_images_are_featurized_once_and_every_path_keeps_its_vector(stages_run, features):
    report = stages_run.featurize
    distinct = len({r.image_id for r in features.values()})
    assert report["computed"] == distinct < report["featurized"]
    assert report["reused"] == report["featurized"] - distinct
    same = [r for r in features.values() if r.path.endswith(("same-bytes.jpg", "photo één.jpeg"))]
    assert len(same) == 2
    assert same[0].image_id == same[1].image_id
    assert same[0].features == same[1].features
    assert {r.label for r in same} == {"Banana copy", "Crème brûlée 🍓"}


def test_set_aside_files_are_in_the_quarantine_output_with_their_reason(stages_run, spark):
    rows = current(spark, stages_run.paths, "quarantine").collect()
    by_name = {r.path.rsplit("/", 1)[-1]: r for r in rows}
    expected = {p: o for p, o in stages_run.bad_inputs.items() if o[0] != FEATURIZED}
    assert set(by_name) == {p.rsplit("/", 1)[-1] for p in expected}
    for path, (status, reason) in expected.items():
        row = by_name[path.rsplit("/", 1)[-1]]
        assert (row.status, row.stage) == (status, "load") and row.reason.startswith(reason)


def test_arrow_batches_are_sized_by_bytes():
    assert featurize.arrow_batch_rows(3_000) == ARROW_BATCH_ROWS  # 100x100 studio shots
    phone = 4 * 1024 * 1024  # a 12-megapixel JPEG
    assert featurize.arrow_batch_rows(phone) == ARROW_BATCH_MAX_BYTES // phone == 16
    assert featurize.arrow_batch_rows(10 * ARROW_BATCH_MAX_BYTES) == 1


def test_exif_orientation_is_applied(stages_run, features):
    rotated = next(r for p, r in features.items() if p.endswith("rotated.JPG"))
    upright = next(r for p, r in features.items() if p.endswith("same-bytes.jpg"))
    # Same photo, displayed rotated: its features must differ from the upright one.
    assert not np.allclose(rotated.features, upright.features, atol=1e-3)


def test_missing_weights_fail_fast_with_a_fix(tmp_path):
    with pytest.raises(WeightsUnavailable, match="--weights imagenet"):
        load_network(str(tmp_path / "missing.weights.h5"))
    not_weights = tmp_path / "bad.weights.h5"
    not_weights.write_bytes(b"not hdf5")
    with pytest.raises(WeightsUnavailable, match="not a MobileNetV2"):
        load_network(str(not_weights))


def test_missing_input_or_weights_are_clear_errors_before_any_work(spark, tmp_path, weights_path):
    run_paths = paths([], tmp_path, "2026-06-05")
    with pytest.raises(InputError, match="run load first"):
        featurize.run(spark, job(run_paths), str(weights_path))
    with pytest.raises(InputError, match="weights file not found"):
        featurize.run(spark, job(run_paths), str(tmp_path / "missing.weights.h5"))
    assert not (tmp_path / "features").exists()


def test_views_are_computed_per_split_reused_the_next_day_and_trained_on(
    spark, sample_dir, weights_path, tmp_path
):
    """--views: view 0 is the plain vector; a Training image gets TRAINING_VIEWS augmented
    views, a held-out one TEST_VIEWS - 1 test-time views; the next day reuses them all; train
    sees one row per view and averages TEST_VIEWS views per held-out image."""
    from fruits import corpus
    from fruits.config import TEST_VIEWS, TRAINING_VIEWS
    from pipeline import run_stages
    from samples import copy_subset

    images = copy_subset(sample_dir, tmp_path / "in", ["Banana", "Kiwi"], 2)
    day_1 = paths([images], tmp_path / "out", "2026-02-01")
    plain = run_stages(spark, paths([images], tmp_path / "plain", "2026-02-01"), weights_path)
    reports = run_stages(spark, day_1, weights_path, views=True)
    assert reports["featurize"]["computed"] == 8 and reports["featurize"]["views"] is True
    assert reports["featurize"]["model_id"].endswith(VIEWS_SUFFIX)
    assert plain["featurize"]["model_id"] + VIEWS_SUFFIX == reports["featurize"]["model_id"]

    rows = {r.path: r for r in current(spark, day_1, "features").collect()}
    plain_paths = paths([images], tmp_path / "plain", "2026-02-01")
    without = {r.path: r for r in current(spark, plain_paths, "features").collect()}
    for path, row in rows.items():
        expected = TRAINING_VIEWS if row.split == "Training" else TEST_VIEWS - 1
        assert len(row.view_features) == expected, path
        np.testing.assert_allclose(row.features, without[path].features, atol=1e-5)
        vectors = np.asarray([row.features, *row.view_features])
        assert len({v.tobytes() for v in vectors}) == len(vectors)  # views differ
        assert without[path].view_features is None

    day_2 = paths([images], tmp_path / "out", "2026-02-02")
    again = run_stages(
        spark, day_2, weights_path, ("load", "featurize"), full_rescan=True, views=True
    )
    assert (again["featurize"]["computed"], again["featurize"]["reused"]) == (0, 8)
    later = {r.path: r for r in current(spark, day_2, "features").collect()}
    assert all(later[p].view_features == rows[p].view_features for p in rows)

    exploded = corpus.with_views(corpus.current_features(spark, day_2)).collect()
    per_view = sorted((r.split, r.view) for r in exploded if r.path.endswith(sorted(rows)[0]))
    assert len(exploded) == 4 * (1 + TRAINING_VIEWS) + 4 * TEST_VIEWS
    assert [v for _, v in per_view] == list(range(len(per_view)))

    trained = run_stages(spark, day_2, weights_path, ("pca", "train"), k=4)["train"]
    assert (trained["n_train"], trained["n_train_rows"]) == (4, 4 * (1 + TRAINING_VIEWS))
    assert trained["rules"]["test_views"] == TEST_VIEWS
