"""The network's input size (featurize --input-size): features at that size, named by the model
id, recorded in the trained model's rules and applied by fruits-predict; a corpus mixing two
sizes is refused until a full rescan featurizes every image alike."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from fruits import pca, train
from fruits.errors import InputError
from fruits.model import input_size, load_network
from fruits.predict import Predictor, model_input_size
from pipeline import current, current_uri, job, paths, run_stages
from samples import copy_subset

SIZE = 256  # the smallest larger size: a multiple of 32, cheap on CPU


@pytest.fixture(scope="module")
def sized(spark, sample_dir, weights_path, tmp_path_factory):
    """Three classes, 3 images per split, featurized at SIZE and trained on."""
    root = tmp_path_factory.mktemp("input-size")
    images = copy_subset(sample_dir, root / "in", ["Banana", "Kiwi", "Lemon"], 3)
    run_paths = paths([images], root / "out", "2026-03-01")
    reports = run_stages(
        spark, run_paths, weights_path, ("load", "featurize", "train"), input_size=SIZE
    )
    return images, run_paths, reports


def test_features_at_another_size_are_keras_at_that_size_under_their_own_model_id(
    spark, sized, weights_path
):
    import keras
    from keras.applications.mobilenet_v2 import preprocess_input

    _, run_paths, reports = sized
    model = reports["featurize"]["model_id"]
    assert model.endswith(f"@{SIZE}") and input_size(model) == SIZE
    assert reports["featurize"]["input_size"] == SIZE
    rows = current(spark, run_paths, "features").filter("status = 'featurized'").collect()
    network = keras.applications.MobileNetV2(
        input_shape=(SIZE, SIZE, 3), include_top=False, weights=None, pooling="avg"
    )
    network.load_weights(str(weights_path))
    batch = np.stack(
        [
            keras.utils.img_to_array(
                keras.utils.load_img(
                    r.path.removeprefix("file:"), target_size=(SIZE, SIZE), interpolation="bilinear"
                )
            )
            for r in rows
        ]
    )
    expected = network.predict(preprocess_input(batch), verbose=0)
    actual = np.stack([np.asarray(r.features, dtype=np.float32) for r in rows])
    np.testing.assert_allclose(actual, expected, atol=1e-4)
    at_224 = load_network(str(weights_path)).predict(
        preprocess_input(batch[:, :224, :224]), verbose=0
    )
    assert not np.allclose(actual, at_224, atol=1e-2)  # another size, other features


def test_the_model_records_its_input_size_and_fruits_predict_decodes_to_it(sized, weights_path):
    images, run_paths, _ = sized
    model = current_uri(run_paths, "model")
    rules = json.loads((Path(model) / "classes.json").read_text())["rules"]
    assert rules["input_size"] == SIZE and model_input_size(model) == SIZE
    predictor = Predictor(model, str(weights_path))
    assert predictor.input_size == SIZE and predictor.network.input_shape[1:3] == (SIZE, SIZE)
    photo = next((images / "Test" / "Kiwi").iterdir())
    assert predictor.predict(photo).label.lower() == "kiwi"
    with pytest.raises(ValueError, match=f"features of {SIZE}x{SIZE}"):
        Predictor(model, network=load_network(str(weights_path)))  # a 224 network


def test_a_corpus_of_two_input_sizes_is_refused_until_a_full_rescan(
    spark, sample_dir, weights_path, tmp_path
):
    images = copy_subset(sample_dir, tmp_path / "in", ["Banana", "Kiwi"], 2)
    run_stages(spark, paths([images], tmp_path / "out", "2026-03-01"), weights_path)
    new = images / "Training" / "Banana" / "new.jpg"
    new.write_bytes(sorted((sample_dir / "Training" / "Banana").glob("*.jpg"))[2].read_bytes())
    day_2 = paths([images], tmp_path / "out", "2026-03-02")
    run_stages(spark, day_2, weights_path, input_size=SIZE)  # only the new photo at SIZE
    for stage in (lambda: pca.run(spark, job(day_2), k=2), lambda: train.run(spark, job(day_2))):
        with pytest.raises(InputError, match=r"features of 2 networks.*full_rescan"):
            stage()
    assert not (tmp_path / "out" / "model").exists()

    stages = ("load", "featurize", "train")
    reports = run_stages(spark, day_2, weights_path, stages, full_rescan=True, input_size=SIZE)
    featurized = reports["featurize"]
    assert (featurized["computed"], featurized["reused"]) == (8, 1)  # the new one was at SIZE
    assert reports["train"]["rules"]["input_size"] == SIZE


def test_the_input_size_reaches_featurize_only_and_is_checked_before_any_work(tmp_path):
    from fruits import featurize as featurize_job
    from fruits.stages import STAGES, PipelineOptions

    run_paths = paths(["/in"], "s3://bucket/out", "2026-03-01")
    args = {s.name: s.args(run_paths, PipelineOptions(input_size=416)) for s in STAGES}
    assert args["featurize"][-2:] == ["--input-size", "416"]
    assert all("--input-size" not in a for name, a in args.items() if name != "featurize")
    plain = {s.name: s.args(run_paths, PipelineOptions()) for s in STAGES}
    assert "--input-size" not in plain["featurize"]  # 224: the arguments of earlier releases
    for wrong in (100, 1024, 64):
        with pytest.raises(InputError, match="multiple of 32 between 96 and 640"):
            featurize_job.run(None, job(paths([], tmp_path, "2026-03-01")), size=wrong)  # type: ignore[arg-type]


def test_the_service_builds_a_network_per_input_size_and_refuses_a_photo_of_the_old_size(
    sized, weights_path
):
    """The served model's size decides how photos are decoded; a photo decoded for the model
    served before a swap (another size) is refused with a retry, never answered wrongly; the
    batcher runs photos of two sizes as two inference calls."""
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    from fruits_service import decoding
    from fruits_service.batching import Batcher
    from fruits_service.models import ModelChanged, ModelHolder

    images, run_paths, _ = sized
    built: list[int] = []

    def network(size: int):
        built.append(size)
        return load_network(str(weights_path), size=size)

    holder = ModelHolder(None, current_uri(run_paths, "model"), network, threshold=0.4)
    assert holder.input_size == 224 and holder.refresh() and built == [SIZE]
    assert holder.input_size == SIZE
    photo = next((images / "Test" / "Kiwi").iterdir()).read_bytes()
    decoded = decoding.decode(photo, 50_000_000, size=holder.input_size).array
    assert decoded.shape == (SIZE, SIZE, 3)
    _, (answer,) = holder.predict(decoded[None])
    assert answer.label.lower() == "kiwi"
    old = decoding.decode(photo, 50_000_000).array  # decoded for a 224 model
    with pytest.raises(ModelChanged, match="send it again"):
        holder.predict(old[None])

    async def both() -> list:
        batcher = Batcher(lambda stacked: (stacked.shape, list(stacked)), 8, 8)
        batcher.start()
        try:
            return await asyncio.gather(batcher.submit(decoded), batcher.submit(old))
        finally:
            await batcher.stop()

    with ThreadPoolExecutor(1) as thread:  # its own event loop, whatever this thread runs
        (shape_a, _), (shape_b, _) = thread.submit(asyncio.run, both()).result()
    assert {shape_a, shape_b} == {(1, SIZE, SIZE, 3), (1, 224, 224, 3)}
