"""Featurize stage: real MobileNetV2 weights, broadcast to real Spark workers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from fruits import featurize
from fruits.config import ARROW_BATCH_MAX_BYTES, ARROW_BATCH_ROWS
from fruits.errors import InputError
from fruits.model import WeightsUnavailable, load_network
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
