"""Predicting one photo with the trained model: real weights, real images, no Spark."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import fruits
from fruits.images import ImageRejected
from fruits.predict import UNKNOWN, Predictor

KNOWN = ["Apple Braeburn", "Banana", "Kiwi", "Strawberry", "Pineapple", "Walnut"]


def _png(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array.astype(np.uint8)).save(buffer, "PNG")
    return buffer.getvalue()


def _test_image(sample_dir: Path, label: str) -> Path:
    return sorted((sample_dir / "Test" / label).glob("*.jpg"))[0]


@pytest.fixture(scope="module")
def odd_images(tmp_path_factory) -> dict[str, Path]:
    rng = np.random.default_rng(7)
    files = {
        "noise.png": _png(rng.integers(0, 256, (100, 100, 3))),
        "white.png": _png(np.full((100, 100, 3), 255)),
        "red.png": _png(np.tile(np.array([200, 30, 30]), (100, 100, 1))),
    }
    folder = tmp_path_factory.mktemp("odd")
    for name, data in files.items():
        (folder / name).write_bytes(data)
    return {name: folder / name for name in files}


@pytest.mark.parametrize("label", KNOWN)
def test_a_known_test_image_gets_its_class_and_the_fruit_facts(predictor, sample_dir, label):
    prediction = predictor.predict(_test_image(sample_dir, label))
    assert prediction.label == label
    assert prediction.reason is None
    assert prediction.info is not None and prediction.info.label == label
    assert prediction.variety == label and prediction.level == "variety"
    assert prediction.fruit == prediction.info.fruit == prediction.top_fruits[0][0]
    assert prediction.top[0] == (label, prediction.probability)  # varieties, as before
    assert prediction.fruit_probability >= prediction.probability
    assert len(prediction.top) == len(prediction.top_fruits) == 3
    probabilities = [p for _, p in prediction.top_fruits]
    assert probabilities == sorted(probabilities, reverse=True) and sum(probabilities) <= 1 + 1e-9
    assert prediction.probability >= predictor.threshold
    assert prediction.similarity > predictor.min_similarity


def test_bytes_path_and_string_give_the_same_answer(predictor, sample_dir):
    path = _test_image(sample_dir, "Kiwi")
    answers = [predictor.predict(x) for x in (path, str(path), path.read_bytes())]
    assert answers[0] == answers[1] == answers[2]


@pytest.mark.parametrize("name", ["noise.png", "white.png", "red.png"])
def test_non_fruit_images_are_unknown(predictor, odd_images, name):
    prediction = predictor.predict(odd_images[name])
    assert prediction.label == UNKNOWN
    assert prediction.info is None
    assert "unlike every training image" in prediction.reason
    assert len(prediction.top) == 3  # the candidates are still shown


def test_a_high_threshold_turns_answers_into_unknown(trained, weights_path, sample_dir):
    strict = Predictor(str(trained.output / "model"), str(weights_path), threshold=1.01)
    prediction = strict.predict(_test_image(sample_dir, "Banana"))
    assert prediction.label == UNKNOWN
    assert prediction.reason.startswith("low confidence")
    assert prediction.top_fruits[0][0] == "banana" and prediction.top[0][0] == "Banana"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty file"),
        (b"this is a text file, not a photo\n", "not a decodable image"),
        ("truncated", "corrupt image data"),
    ],
)
def test_corrupt_files_are_rejected_with_a_clear_message(predictor, sample_dir, data, message):
    if data == "truncated":
        real = _test_image(sample_dir, "Banana").read_bytes()
        data = real[: len(real) // 2]
    with pytest.raises(ImageRejected, match=message):
        predictor.predict(data)


def test_a_fresh_process_gives_the_same_predictions(
    predictor, trained, weights_path, sample_dir, odd_images, tmp_path
):
    """The saved model, reloaded by the command line in a new interpreter."""
    images = [_test_image(sample_dir, label) for label in KNOWN] + [odd_images["noise.png"]]
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff\xe0 broken")
    command = [
        sys.executable, "-m", "fruits.predict",
        *map(str, images), str(broken),
        "--model", str(trained.output.parent),  # the date's partition: its pointer is followed
        "--weights", str(weights_path),
        "--json",
    ]  # fmt: skip
    jobs = str(Path(fruits.__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([jobs, os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 2, done.stderr[-2000:]  # answered all, but one file was broken
    assert f"{broken}: not a decodable image" in done.stderr
    answers = [json.loads(line) for line in done.stdout.splitlines()]
    assert [a["image"] for a in answers] == [str(p) for p in images]
    for image, answer in zip(images, answers, strict=True):
        expected = predictor.predict(image).as_dict()
        assert answer["label"] == expected["label"]
        assert [t["label"] for t in answer["top"]] == [t["label"] for t in expected["top"]]
        for got, want in zip(answer["top"], expected["top"], strict=True):
            assert got["probability"] == pytest.approx(want["probability"], abs=1e-4)
    assert [a["label"] for a in answers] == [*KNOWN, UNKNOWN]
    assert answers[0]["info"]["species"] == "Malus domestica 'Braeburn'"


def test_the_command_line_explains_a_missing_model(tmp_path, capsys):
    from fruits.predict import main

    assert main(["x.jpg", "--model", str(tmp_path), "--weights", "imagenet"]) == 2
    assert "no saved model at" in capsys.readouterr().err


def test_real_package_photos_are_not_a_fruit_we_know(predictor, grocery_dir):
    photos = sorted((grocery_dir / "val/Packages/Milk/Arla-Standard-Milk").glob("*.jpg"))
    answers = [predictor.predict(photo) for photo in photos]
    refused = [a for a in answers if a.label == UNKNOWN]
    assert len(photos) >= 4 and len(refused) >= len(photos) - 1
    assert any(a.reason.startswith("not a fruit we know") for a in refused)
    for answer in refused:
        assert answer.fruit is None and answer.info is None
        assert answer.as_dict()["level"] == "unknown" and answer.not_fruit_probability > 0


def test_real_grocery_photos_get_the_fruit_first(predictor, grocery_dir):
    """Conference pears: no Fruits-360 class is that variety, so the answer is "pear"."""
    photos = sorted((grocery_dir / "val/Fruit/Pear/Conference").glob("*.jpg"))
    answers = [predictor.predict(photo) for photo in photos]
    pears = [a for a in answers if a.fruit == "pear"]
    assert len(pears) >= len(photos) - 2
    for answer in pears:
        as_dict = answer.as_dict()
        assert as_dict["fruit"] == "pear" and as_dict["top_fruits"][0]["label"] == "pear"
        if answer.variety is None:
            assert answer.label == "pear" and answer.info.level == "fruit"
            assert answer.info.species == "Pyrus communis"
        else:  # a pear variety the model is sure of
            assert answer.info.fruit == "pear" and answer.info.level == "variety"


def test_test_time_views_average_the_crops(trained, predictor, weights_path, sample_dir):
    multi = Predictor(str(trained.output), str(weights_path), test_views=7)
    image = _test_image(sample_dir, "Kiwi")
    features = multi.features([image])
    assert features.shape == (1, 7, 1280)
    np.testing.assert_allclose(features[0, 0], predictor.features([image])[0, 0], atol=1e-5)
    answer = multi.predict(image)
    assert answer.fruit == "kiwi"
    assert answer.fruit_probability != predictor.predict(image).fruit_probability


def test_the_predictor_names_its_varieties_fruits_and_classes(predictor, trained, sample_dir):
    varieties = {p.name for p in (sample_dir / "Training").iterdir()}
    assert set(predictor.labels) == varieties  # grocery classes add no new variety here
    assert {"apple", "pear", "watermelon", "tomato"} <= set(predictor.fruits)
    assert list(predictor.classes) == trained.labels


@pytest.mark.parametrize(
    ("option", "value"), [("--threshold", "1.5"), ("--variety-threshold", "-0.1"),
                          ("--min-similarity", "nan")],
)  # fmt: skip
def test_the_command_line_refuses_a_probability_outside_0_1(tmp_path, capsys, option, value):
    from fruits.predict import main

    assert main(["x.jpg", "--model", str(tmp_path), option, value]) == 2
    error = capsys.readouterr().err
    assert f"{option} must be in [0, 1], got {value}" in error
    assert len(error.strip().splitlines()) == 1


def test_a_folder_among_the_photos_is_named_and_the_others_answered(
    trained, weights_path, sample_dir, capsys
):
    from fruits.predict import main

    folder = sample_dir / "Test" / "Banana"
    banana = sorted(folder.glob("*.jpg"))[0]
    argv = [
        str(folder),
        str(banana),
        "--model",
        str(trained.output),
        "--weights",
        str(weights_path),
    ]
    assert main([*argv, "--json"]) == 2
    out, err = capsys.readouterr()
    expected = f"fruits-predict: error: {folder}: a folder, not a photo (give the photos in it)"
    assert err.strip() == expected
    assert [json.loads(line)["label"] for line in out.splitlines()] == ["Banana"]
