"""Answers at two levels, per-domain figures, calibration and augmentation: plain numpy/PIL."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from fruits import augmentation, calibration, domains
from fruits.answers import ClassLevels, Rules, decide
from fruits.images import ImageRejected

WHAT = {
    "f360/Pear Abate": ("pear", "Pear Abate"),
    "f360/Pear Williams": ("pear", "Pear Williams"),
    "f360/Kiwi": ("kiwi", "Kiwi"),
    "shop/Fruit/Pear/Kaiser": ("pear", None),
    "shop/Packages/Milk": (None, None),
}
CLASSES = list(WHAT)


@pytest.fixture
def levels() -> ClassLevels:
    return ClassLevels.build(CLASSES, WHAT)


def test_fruit_and_variety_probabilities_add_up_their_classes(levels):
    assert levels.fruits == ("kiwi", "pear") and levels.varieties == (
        "Kiwi",
        "Pear Abate",
        "Pear Williams",
    )
    p = np.array([[0.2, 0.1, 0.05, 0.45, 0.2]])
    fruits, not_fruit = levels.fruit_probabilities(p)
    np.testing.assert_allclose(fruits, [[0.05, 0.75]])
    np.testing.assert_allclose(not_fruit, [0.2])
    np.testing.assert_allclose(levels.variety_probabilities(p), [[0.05, 0.2, 0.1]])


def test_the_answer_is_the_fruit_then_the_variety_when_sure(levels):
    rules = Rules(threshold=0.5, variety_threshold=0.5, min_similarity=0.6)
    p = np.array(
        [
            [0.7, 0.1, 0.0, 0.1, 0.1],  # pear, sure of Abate
            [0.2, 0.2, 0.0, 0.5, 0.1],  # pear (0.9), no variety reaches 0.5: "pear"
            [0.1, 0.1, 0.1, 0.1, 0.6],  # not a fruit we know
            [0.0, 0.0, 0.45, 0.0, 0.55],  # not a fruit beats kiwi
            [0.3, 0.0, 0.4, 0.0, 0.3],  # kiwi 0.4 < 0.5
            [0.9, 0.0, 0.0, 0.1, 0.0],  # sure, but unlike every training image
        ]
    )
    similarity = np.array([0.9, 0.9, 0.9, 0.9, 0.9, 0.5])
    answers = decide(levels, p, rules, similarity)
    pear, kiwi = levels.fruits.index("pear"), levels.fruits.index("kiwi")
    assert answers.fruit.tolist() == [pear, pear, -1, -1, -1, -1]
    assert answers.variety.tolist() == [levels.varieties.index("Pear Abate"), -1, -1, -1, -1, -1]
    assert answers.reason[2].startswith("not a fruit we know")
    assert answers.reason[3].startswith("not a fruit we know")
    assert answers.reason[4].startswith("low confidence")
    assert answers.reason[5].startswith("unlike every training image")
    assert kiwi not in answers.fruit  # never answered below the rules


def _scored(levels: ClassLevels) -> pd.DataFrame:
    """Four images of one source: a sure Abate pear, a Kaiser pear, milk, and milk taken for
    a kiwi."""
    rows = [
        ("a.jpg", "f360/Pear Abate", [0.8, 0.1, 0.0, 0.05, 0.05]),
        ("b.jpg", "shop/Fruit/Pear/Kaiser", [0.1, 0.1, 0.0, 0.7, 0.1]),
        ("c.jpg", "shop/Packages/Milk", [0.0, 0.0, 0.1, 0.0, 0.9]),
        ("d.jpg", "shop/Packages/Milk", [0.0, 0.0, 0.8, 0.0, 0.2]),
    ]
    frame = pd.DataFrame(
        {
            "path": [r[0] for r in rows],
            "source": "src",
            "split": "Test",
            "class": [r[1] for r in rows],
            "view": 0,
            "features": [np.array(r[2], dtype=np.float32) for r in rows],
        }
    )

    class Identity:  # the "pipeline": the features are the probabilities
        labels = tuple(CLASSES)

        def predict_proba(self, x):
            return np.asarray(x, dtype=np.float64)

    rules = Rules(0.5, 0.5, None)
    return domains.score(Identity(), levels, rules, WHAT, frame, None)


def test_domains_report_each_level_of_each_source_and_split(levels):
    figures = domains.domains(_scored(levels), levels)
    assert set(figures) == {"src/Test/fruit", "src/Test/variety", "src/Test/unknown"}
    fruit = figures["src/Test/fruit"]
    assert (fruit["n"], fruit["top1"], fruit["answered"], fruit["level"]) == (2, 1.0, 1.0, "fruit")
    variety = figures["src/Test/variety"]
    assert (variety["n"], variety["top1"], variety["level"]) == (1, 1.0, "variety")
    unknown = figures["src/Test/unknown"]
    assert unknown["n"] == 2 and unknown["unknown_rate"] == 0.5
    assert unknown["answered_as"] == {"kiwi": 1}
    matrix, rows, columns = domains.confusion(
        _scored(levels)[lambda f: f["class"] == "shop/Packages/Milk"], "unknown", levels
    )
    assert rows == ["Packages/Milk"] and columns == ["kiwi", "unknown"]
    assert matrix.tolist() == [[1, 1]]


def test_an_images_views_are_averaged_and_its_similarity_is_its_own(levels):
    frame = pd.DataFrame(
        {
            "path": ["x.jpg", "x.jpg"],
            "source": "src",
            "split": "Test",
            "class": "f360/Kiwi",
            "view": [1, 0],
            "features": [np.array([0.0, 0.0, 0.2, 0.0, 0.8]), np.array([0.0, 0.0, 1.0, 0.0, 0.0])],
        }
    )

    class Identity:
        labels = tuple(CLASSES)

        def predict_proba(self, x):
            return np.asarray(x, dtype=np.float64)

    reference = np.array([[0.0, 0.0, 1.0, 0.0, 0.0]], dtype=np.float32)
    scored = domains.score(Identity(), levels, Rules(0.5, 0.5, 0.9), WHAT, frame, reference)
    assert len(scored) == 1
    assert scored["fruit_p1"][0] == pytest.approx(0.6)  # mean of 0.2 and 1.0 for kiwi
    assert scored["similarity"][0] == pytest.approx(1.0)  # view 0 is the image itself
    assert levels.fruits[scored["answer_fruit"][0]] == "kiwi"


def test_temperature_scaling_recovers_a_known_temperature(levels):
    rng = np.random.default_rng(3)
    n, true_t = 4000, 2.5
    logits = rng.normal(0, 3, size=(n, len(CLASSES)))
    sharp = np.exp(logits - logits.max(axis=1, keepdims=True))
    sharp /= sharp.sum(axis=1, keepdims=True)
    real = calibration.tempered(sharp, true_t)  # the world is less sure than the model
    class_of = np.array([rng.choice(len(CLASSES), p=p) for p in real])
    index = {f: i for i, f in enumerate(levels.fruits)}
    truth = np.array([index.get(WHAT[CLASSES[c]][0], -1) for c in class_of])
    t, before, after = calibration.fit_temperature(sharp, np.arange(n), truth, levels)
    assert t == pytest.approx(true_t, rel=0.15)
    assert after < before
    np.testing.assert_allclose(calibration.tempered(sharp, 1.0), sharp, atol=1e-12)


def _photo(size=(120, 90)) -> Image.Image:
    rng = np.random.default_rng(0)
    array = np.full((size[1], size[0], 3), 255, dtype=np.uint8)
    array[20:70, 30:90] = rng.integers(0, 200, (50, 60, 3))
    return Image.fromarray(array)


def test_augmented_views_are_deterministic_per_image_and_variant():
    photo = _photo()
    seed = augmentation.variant_seed("abc", 1)
    assert seed == augmentation.variant_seed("abc", 1) != augmentation.variant_seed("abc", 2)
    one, again = augmentation.random_view(photo, seed), augmentation.random_view(photo, seed)
    assert one.size == photo.size and np.array_equal(np.asarray(one), np.asarray(again))
    other = augmentation.random_view(photo, augmentation.variant_seed("abc", 2))
    assert not np.array_equal(np.asarray(one), np.asarray(other))
    views = augmentation.test_views(photo)
    assert len(views) == 7 and views[0] is photo
    assert views[2].size == (90, 68)  # the centre crop: 3/4 of each side


def test_a_studio_object_is_pasted_on_a_background_without_its_white():
    studio = _photo()
    mask = np.asarray(augmentation.foreground_mask(studio))
    assert mask[0, 0] == 0 and mask[45, 60] == 255
    background = Image.new("RGB", (300, 200), (0, 128, 0))
    out = np.asarray(augmentation.composite(studio, background, seed=5, copies=(1, 1)))
    assert out.shape == (224, 224, 3)
    white = (out > 240).all(axis=2).mean()
    assert white < 0.02  # the studio white did not come along


def test_decoded_views_start_with_the_image_as_the_pipeline_decodes_it():
    buffer = io.BytesIO()
    _photo().save(buffer, "PNG")
    views = augmentation.decode_views(buffer.getvalue(), 7)
    assert views.shape == (7, 224, 224, 3) and views.dtype == np.float32
    from fruits.images import decode_for_model

    np.testing.assert_array_equal(views[0], decode_for_model(buffer.getvalue()))
    assert augmentation.decode_views(buffer.getvalue(), 1).shape == (1, 224, 224, 3)


def test_a_model_saved_without_classes_json_reads_its_labels_as_varieties():
    from fruits.predict import class_levels

    levels = class_levels(["Pear Abate", "Kiwi", "Fig"], {})
    assert levels.fruits == ("fig", "kiwi", "pear")
    assert levels.varieties == ("Kiwi", "Pear Abate")
    listed = {"classes": [{"class": "Fig", "fruit": None, "variety": None}]}
    assert class_levels(["Fig", "Kiwi"], listed).fruits == ("kiwi",)


def test_training_views_are_the_seeded_random_views_of_the_decoded_image():
    buffer = io.BytesIO()
    _photo((160, 120)).save(buffer, "JPEG")
    content = buffer.getvalue()
    views = augmentation.decode_training_views(content, "f00d", 3)
    assert views.shape == (3, 224, 224, 3) and views.dtype == np.float32
    np.testing.assert_array_equal(views, augmentation.decode_training_views(content, "f00d", 3))
    decoded = Image.open(io.BytesIO(content)).convert("RGB")
    second = augmentation.random_view(decoded, augmentation.variant_seed("f00d", 2))
    np.testing.assert_array_equal(views[1], augmentation.to_model_input(second))
    assert not np.array_equal(views[0], views[1])
    with pytest.raises(ImageRejected, match="empty file"):
        augmentation.decode_training_views(b"", "f00d", 3)


def test_views_of_one_image_split_across_arrow_batches_are_scored_together(levels):
    """train._score_batches (the mapInPandas body): an image's rows in two batches."""
    from fruits.train import _score_batches

    def rows(path: str, views: list[int]) -> pd.DataFrame:
        kiwi = np.array([0.0, 0.0, 1.0, 0.0, 0.0], dtype=np.float32)
        return pd.DataFrame(
            {
                "path": path,
                "source": "src",
                "split": "Test",
                "class": "f360/Kiwi",
                "view": views,
                "features": [kiwi] * len(views),
            }
        )

    class Identity:
        labels = tuple(CLASSES)

        def predict_proba(self, x):
            return np.asarray(x, dtype=np.float64)

    class Shared:  # what a broadcast variable gives the executors
        value = (Identity(), levels, Rules(0.5, 0.5, None), WHAT, None)

    batches = [rows("a.jpg", [0, 1]), pd.concat([rows("a.jpg", [2]), rows("b.jpg", [0, 1])])]
    out = pd.concat(list(_score_batches(Shared(), iter(batches))))
    assert out["path"].tolist() == ["a.jpg", "b.jpg"]
    assert (out["fruit_p1"] == 1.0).all()
