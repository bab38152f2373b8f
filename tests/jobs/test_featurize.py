"""Featurize stage: real MobileNetV2 weights, broadcast to real Spark workers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from fruits import featurize
from fruits.errors import InputError
from fruits.model import WeightsUnavailable, load_network


@pytest.fixture(scope="module")
def features(stages_run, spark) -> dict[str, object]:
    rows = spark.read.parquet(stages_run.paths.features).collect()
    return {r.path.removeprefix("file:"): r for r in rows}


def test_features_have_1280_dims_and_match_plain_keras(stages_run, features, weights_path):
    """The broadcast weights are the driver's: Spark features = single-process Keras predict."""
    import keras
    from keras.applications.mobilenet_v2 import preprocess_input

    network = keras.applications.MobileNetV2(
        input_shape=(224, 224, 3), include_top=False, weights=None, pooling="avg"
    )
    network.load_weights(str(weights_path))
    paths = sorted(p for p in features if "/Odd/" not in p)
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
    expected = {p for p, outcome in stages_run.bad_inputs.items() if outcome == "features"}
    assert featurized_odd == expected
    report = stages_run.featurize
    assert report["images_in"] == stages_run.load["images_loaded"]
    assert report["featurized"] + report["quarantined"] == report["images_in"]


def test_identical_images_are_featurized_once_and_every_path_keeps_its_vector(stages_run, features):
    report = stages_run.featurize
    assert report["distinct_images"] == stages_run.load["distinct_images"]
    assert report["distinct_images"] < report["images_in"]
    same = [r for r in features.values() if r.path.endswith(("same-bytes.jpg", "photo één.jpeg"))]
    assert len(same) == 2
    assert same[0].image_id == same[1].image_id
    assert same[0].features == same[1].features
    assert {r.label for r in same} == {"Banana copy", "Crème brûlée 🍓"}


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


def test_missing_input_is_a_clear_error(spark, tmp_path, weights_path):
    with pytest.raises(InputError, match="run the load stage first"):
        featurize.run(spark, str(tmp_path / "none"), "o", "q", str(weights_path))
