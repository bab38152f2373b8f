"""Name the fruit in one photo: MobileNetV2 features, then the saved classifier, no Spark.

    python -m fruits.predict photo.jpg --model output/model/ds=2026-11-26 --weights WEIGHTS

:class:`Predictor` loads the network and the train stage's output once; each prediction then
decodes the image as the pipeline does (:func:`fruits.images.decode_for_model`; with the
model's test-time views, :func:`fruits.augmentation.decode_views`), extracts its features
(:func:`fruits.model.extract_features`) and applies the saved Spark ML pipeline with numpy
(:class:`fruits.saved_pipeline.NumpyPipeline`). The answer (:mod:`fruits.answers`) is the fruit
and, when the model is sure, its variety; or ``"unknown"`` when the photo is unlike every
training image (:mod:`fruits.novelty`), is more likely "not a fruit we know" than any fruit, or
no fruit reaches the threshold. Undecodable files raise :class:`fruits.images.ImageRejected`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.fs as pafs
import pyarrow.parquet as pq
from numpy.typing import NDArray

from fruits import catalog, novelty, validation
from fruits.answers import UNKNOWN, ClassLevels, Rules, decide
from fruits.augmentation import decode_views
from fruits.config import (
    DEFAULT_WEIGHTS,
    IMAGE_SIZE,
    MIN_SIMILARITY,
    PREDICT_THRESHOLD,
    VARIETY_THRESHOLD,
)
from fruits.errors import InputError
from fruits.fruit_info import FruitInfo, catalogue, fruit_facts, info_for
from fruits.images import ImageRejected
from fruits.model import extract_features, load_network
from fruits.saved_pipeline import NumpyPipeline, is_dir
from fruits.sources import normalise_fruit
from fruits.storage import filesystem

TOP_K = 3


@dataclass(frozen=True)
class Prediction:
    """The answer for one photo at two levels.

    ``fruit`` (``pear``) or None when the answer is ``unknown`` (see ``reason``); ``variety``
    (``Pear Abate``) when the model is sure of it, else None. ``label`` is the most precise
    answer (the variety, else the fruit, else ``"unknown"``) and ``probability`` its
    probability; ``top``: the three likeliest varieties (the classifier's labels, as before
    fruits existed), ``top_fruits``: the three likeliest fruits; ``info``: the facts of the
    variety, else of the fruit (None when unknown).
    """

    label: str
    probability: float
    similarity: float | None
    top: list[tuple[str, float]]
    info: FruitInfo | None
    reason: str | None = None
    fruit: str | None = None
    fruit_probability: float = 0.0
    variety: str | None = None
    variety_probability: float | None = None
    top_fruits: list[tuple[str, float]] = field(default_factory=list)
    not_fruit_probability: float = 0.0

    @property
    def known(self) -> bool:
        return self.label != UNKNOWN

    @property
    def level(self) -> str:
        """``variety``, ``fruit`` or ``unknown``: how precise the answer is."""
        return "variety" if self.variety else "fruit" if self.fruit else UNKNOWN

    def as_dict(self) -> dict[str, Any]:
        def pairs(items: list[tuple[str, float]]) -> list[dict[str, Any]]:
            return [{"label": label, "probability": round(p, 6)} for label, p in items]

        return {
            "label": self.label,
            "level": self.level,
            "probability": round(self.probability, 6),
            "fruit": self.fruit,
            "fruit_probability": round(self.fruit_probability, 6),
            "variety": self.variety,
            "variety_probability": (
                None if self.variety_probability is None else round(self.variety_probability, 6)
            ),
            "not_fruit_probability": round(self.not_fruit_probability, 6),
            "similarity": None if self.similarity is None else round(self.similarity, 6),
            "top": pairs(self.top),
            "top_fruits": pairs(self.top_fruits),
            "info": self.info.as_dict() if self.info else None,
            "reason": self.reason,
        }


def _read(fs: pafs.FileSystem, path: str) -> bytes:
    with fs.open_input_stream(path) as stream:
        content: bytes = stream.read()
    return content


def read_image(source: str | Path | bytes) -> bytes:
    """Bytes as given, or read from a local path / ``file://`` / ``s3://`` URI."""
    if isinstance(source, bytes | bytearray):
        return bytes(source)
    fs, path = filesystem(str(source))
    if is_dir(fs, path):
        raise InputError("a folder, not a photo (give the photos in it)")
    try:
        return _read(fs, path)
    except FileNotFoundError as exc:
        raise InputError(f"image not found: {source}") from exc


def _model_folders(uri: str) -> tuple[str, str]:
    """(train output folder, its ``model/``) from either of the two, or from a date's
    partition (``…/model/ds=<date>``), whose pointer names its current run."""
    root = uri.rstrip("/")
    published = catalog.current(root)
    if published is not None:
        root = published.uri.rstrip("/")
    fs, path = filesystem(root)
    if is_dir(fs, f"{path}/model/metadata"):
        return root, f"{root}/model"
    if is_dir(fs, f"{path}/metadata"):
        return root.rsplit("/", 1)[0], root
    raise InputError(f"no saved model at {uri} (expected the train stage's output folder)")


def _read_json(uri: str) -> dict[str, Any]:
    fs, path = filesystem(uri)
    try:
        document: dict[str, Any] = json.loads(_read(fs, path).decode("utf-8"))
    except FileNotFoundError:
        return {}
    return document


def _read_reference(root: str) -> NDArray[np.float32] | None:
    fs, path = filesystem(f"{root}/reference")
    if not is_dir(fs, path):
        return None
    column = pq.read_table(path, filesystem=fs, columns=["features"]).column("features")
    flat = column.combine_chunks().flatten().to_numpy(zero_copy_only=False)
    return novelty.unit_rows(flat.reshape(len(column), -1))


def class_levels(labels: Sequence[str], classes: dict[str, Any]) -> ClassLevels:
    """The classes' fruits and varieties from ``classes.json``; for a model saved before it
    existed, each label is a catalogue variety (its fruit) or a fruit of its own name."""
    listed = {c["class"]: (c["fruit"], c["variety"]) for c in classes.get("classes", [])}
    known = catalogue()
    what = {
        label: listed.get(label)
        or ((known[label], label) if label in known else (normalise_fruit(label), None))
        for label in labels
    }
    return ClassLevels.build(labels, what)


def model_input_size(model: str) -> int:
    """The network input side the features of a trained model (its folder or URI) were
    computed at (:func:`_input_size` of its ``classes.json``)."""
    root, _ = _model_folders(model)
    return _input_size(_read_json(f"{root}/classes.json"))


def _input_size(classes: dict[str, Any]) -> int:
    """The input side a model's ``classes.json`` records; 224 for a model saved before."""
    return int(classes.get("rules", {}).get("input_size", IMAGE_SIZE))


class Predictor:
    """Loads the network and the trained model once; :meth:`predict` answers per photo.

    ``threshold``, ``variety_threshold``, ``min_similarity`` and ``test_views`` default to the
    rules the model was evaluated with (its ``classes.json``), else to the configured ones;
    photos are decoded to the network input size its features were computed at.
    """

    def __init__(
        self,
        model: str,
        weights: str = DEFAULT_WEIGHTS,
        threshold: float | None = None,
        min_similarity: float | None = None,
        variety_threshold: float | None = None,
        test_views: int | None = None,
        network: Any = None,
    ) -> None:
        """``network``: an already loaded MobileNetV2 for the model's :attr:`input_size` to
        share (``weights`` is then unused)."""
        root, model_dir = _model_folders(model)
        self.pipeline = NumpyPipeline.load(model_dir)
        self.reference = _read_reference(root)
        classes = _read_json(f"{root}/classes.json")
        saved = {
            "threshold": PREDICT_THRESHOLD,
            "variety_threshold": VARIETY_THRESHOLD,
            "min_similarity": _read_json(f"{root}/report.json")
            .get("novelty", {})
            .get("min_similarity", MIN_SIMILARITY),
            "test_views": 1,
            **classes.get("rules", {}),
        }
        self.levels = class_levels(self.pipeline.labels, classes)
        self.rules = Rules(
            saved["threshold"] if threshold is None else threshold,
            saved["variety_threshold"] if variety_threshold is None else variety_threshold,
            saved["min_similarity"] if min_similarity is None else min_similarity,
            float(saved.get("temperature", 1.0)),
        )
        self.test_views = int(saved["test_views"] if test_views is None else test_views)
        self.input_size = _input_size(classes)
        if network is None:
            network = load_network(weights, read_bytes=read_image, size=self.input_size)
        elif network.input_shape[1] != self.input_size:
            raise ValueError(
                f"the network takes {network.input_shape[1]}x{network.input_shape[1]} images, "
                f"the model {model} was trained on features of {self.input_size}x{self.input_size}"
            )
        self.network = network

    @property
    def labels(self) -> tuple[str, ...]:
        """The varieties the model can name (what ``top`` lists; the classifier's labels of a
        model trained before sources and fruits existed)."""
        return self.levels.varieties

    @property
    def fruits(self) -> tuple[str, ...]:
        """The fruits the model can answer."""
        return self.levels.fruits

    @property
    def classes(self) -> tuple[str, ...]:
        """The classifier's classes (``<source>/<class path>``)."""
        return self.pipeline.labels

    @property
    def threshold(self) -> float:
        return self.rules.threshold

    @property
    def min_similarity(self) -> float | None:
        return self.rules.min_similarity

    def features(self, images: Sequence[str | Path | bytes]) -> NDArray[np.float32]:
        """``n×views×1280`` MobileNetV2 features of each photo's test views (``views`` =
        ``test_views``); raises ImageRejected for an undecodable image."""
        arrays = [
            decode_views(read_image(image), self.test_views, self.input_size) for image in images
        ]
        flat = extract_features(self.network, np.concatenate(arrays))
        return flat.reshape(len(images), self.test_views, -1)

    def predict(self, image: str | Path | bytes) -> Prediction:
        """The answer for one photo (path, URI or bytes)."""
        return self.answer(self.features([image])[0])

    def predict_arrays(self, arrays: NDArray[np.float32]) -> list[Prediction]:
        """Answers for ``n×size×size×3`` decoded images (:func:`fruits.images.prepare_for_model`
        at :attr:`input_size`),
        in one inference call: one view per photo, whatever ``test_views`` says (the views
        need the full-size image, :func:`fruits.augmentation.decode_views`)."""
        return [self.answer(row) for row in extract_features(self.network, arrays)]

    def answer(self, features: NDArray[Any]) -> Prediction:
        """The answer for one photo's feature vector, or its views' (``views×1280``: class
        probabilities averaged; the novelty check on the first, the photo itself)."""
        views = np.atleast_2d(features)
        mean = self.pipeline.predict_proba(views).mean(axis=0, keepdims=True)
        probabilities = self.rules.calibrated(mean)
        similarity = None
        if self.reference is not None:
            unit = novelty.unit_rows(views[:1])
            similarity = float(novelty.nearest_similarity(unit, self.reference)[0])
        levels = self.levels
        seen = None if similarity is None else np.array([similarity])
        decided = decide(levels, probabilities, self.rules, seen)
        fruit_p, not_fruit = levels.fruit_probabilities(probabilities)
        variety_p = levels.variety_probabilities(probabilities)
        top = _ranked(levels.varieties, variety_p[0])
        top_fruits = _ranked(levels.fruits, fruit_p[0])
        not_fruit_probability = float(not_fruit[0])
        fruit_index, variety_index = int(decided.fruit[0]), int(decided.variety[0])
        if fruit_index < 0:
            best = top_fruits[0][1] if top_fruits else 0.0
            return Prediction(
                UNKNOWN,
                best,
                similarity=similarity,
                top=top,
                info=None,
                reason=decided.reason[0],
                top_fruits=top_fruits,
                not_fruit_probability=not_fruit_probability,
            )
        fruit, fruit_probability = levels.fruits[fruit_index], float(fruit_p[0, fruit_index])
        label, probability = fruit, fruit_probability
        variety: str | None = None
        variety_probability: float | None = None
        if variety_index >= 0:  # the most precise answer (a variety's name is never empty)
            variety = levels.varieties[variety_index]
            variety_probability = float(variety_p[0, variety_index])
            label, probability = variety, variety_probability
        info = (info_for(variety) if variety else None) or fruit_facts(fruit)
        return Prediction(
            label,
            probability,
            similarity=similarity,
            top=top,
            info=info,
            fruit=fruit,
            fruit_probability=fruit_probability,
            variety=variety,
            variety_probability=variety_probability,
            top_fruits=top_fruits,
            not_fruit_probability=not_fruit_probability,
        )


def _ranked(names: Sequence[str], probabilities: NDArray[Any]) -> list[tuple[str, float]]:
    order = np.argsort(-probabilities, kind="stable")[:TOP_K]
    return [(names[i], float(probabilities[i])) for i in order]


def describe(source: str, prediction: Prediction) -> str:
    """A few readable lines for the command line."""
    head = f"{source}: {prediction.label}"
    if prediction.variety:
        head = f"{source}: {prediction.fruit} ({prediction.fruit_probability:.1%}), " + (
            f"variety {prediction.variety} ({prediction.probability:.1%})"
        )
    elif prediction.known:
        head += f" ({prediction.probability:.1%})"
    lines = [head + (f" — {prediction.reason}" if prediction.reason else "")]
    ranked = enumerate(prediction.top_fruits, 1)
    lines += [f"  {i}. {label:<24} {p:.1%}" for i, (label, p) in ranked]
    if prediction.info:
        info = prediction.info
        lines += [
            f"  {info.common_name} — {info.species} ({info.family})",
            f"  origin: {info.origin}; season: {info.season}",
            f"  {info.description}",
        ]
    return "\n".join(lines)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="fruits-predict", description="Name the fruit in photos with the trained model."
    )
    p.add_argument("images", nargs="+", metavar="IMAGE", help="photo path or URI")
    p.add_argument("--model", required=True, help="the train stage's output folder (URI)")
    p.add_argument(
        "--weights",
        default=os.environ.get("FRUITS_WEIGHTS", DEFAULT_WEIGHTS),
        help="MobileNetV2 weights: 'imagenet' or a file/URI (default: $FRUITS_WEIGHTS)",
    )
    p.add_argument(
        "--threshold",
        type=float,
        help="below this fruit probability the answer is 'unknown' "
        f"(default: the model's rules, else {PREDICT_THRESHOLD})",
    )
    p.add_argument(
        "--variety-threshold",
        type=float,
        help="below this the variety is not named "
        f"(default: the model's rules, else {VARIETY_THRESHOLD})",
    )
    p.add_argument(
        "--min-similarity",
        type=float,
        help=f"novelty cut-off (default: the model's rules, else {MIN_SIMILARITY})",
    )
    p.add_argument(
        "--test-views",
        type=int,
        help="views averaged per photo, 1 or 7 (default: as the model was evaluated)",
    )
    p.add_argument("--json", action="store_true", help="one JSON object per image")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Exit 0 when every image was answered, 2 when an input or the model is unusable."""
    args = parser().parse_args(argv)
    try:
        for name in ("threshold", "variety_threshold", "min_similarity"):
            if getattr(args, name) is not None:
                validation.probability(f"--{name.replace('_', '-')}", getattr(args, name))
        predictor = Predictor(
            args.model,
            args.weights,
            args.threshold,
            args.min_similarity,
            args.variety_threshold,
            args.test_views,
        )
    except InputError as exc:
        print(f"fruits-predict: error: {exc}", file=sys.stderr)
        return 2
    status = 0
    for image in args.images:
        try:
            prediction = predictor.predict(image)
        except (ImageRejected, InputError) as exc:
            print(f"fruits-predict: error: {image}: {exc}", file=sys.stderr)
            status = 2
            continue
        if args.json:
            print(json.dumps({"image": image, **prediction.as_dict()}, ensure_ascii=False))
        else:
            print(describe(image, prediction))
    return status


if __name__ == "__main__":
    sys.exit(main())
