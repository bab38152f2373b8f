"""Name the fruit in one photo: MobileNetV2 features, then the saved classifier, no Spark.

    python -m fruits.predict photo.jpg --model output/model/ds=2026-11-26 --weights WEIGHTS

:class:`Predictor` loads the network and the train stage's output once; each prediction then
decodes the image as the pipeline does (:func:`fruits.images.decode_for_model`), extracts its
features (:func:`fruits.model.extract_features`) and applies the saved Spark ML pipeline with
numpy (:class:`fruits.saved_pipeline.NumpyPipeline`). The answer is ``"unknown"`` when the top
probability is below the threshold, or when the photo is unlike every training image
(:mod:`fruits.novelty`). Undecodable files raise :class:`fruits.images.ImageRejected`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq

from fruits import catalog, novelty
from fruits.config import DEFAULT_WEIGHTS, MIN_SIMILARITY, PREDICT_THRESHOLD
from fruits.errors import InputError
from fruits.fruit_info import FruitInfo, info_for
from fruits.images import ImageRejected, decode_for_model
from fruits.model import extract_features, load_network
from fruits.saved_pipeline import NumpyPipeline, filesystem, is_dir

UNKNOWN = "unknown"
TOP_K = 3


@dataclass(frozen=True)
class Prediction:
    """The answer for one photo: ``label`` is a class name or ``"unknown"`` (see ``reason``)."""

    label: str
    probability: float
    similarity: float | None
    top: list[tuple[str, float]]
    info: FruitInfo | None
    reason: str | None = None

    @property
    def known(self) -> bool:
        return self.label != UNKNOWN

    def as_dict(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "probability": round(self.probability, 6),
            "similarity": None if self.similarity is None else round(self.similarity, 6),
            "top": [{"label": label, "probability": round(p, 6)} for label, p in self.top],
            "info": self.info.as_dict() if self.info else None,
            "reason": self.reason,
        }


def _read(fs, path: str) -> bytes:
    with fs.open_input_stream(path) as stream:
        return stream.read()


def read_image(source: str | Path | bytes) -> bytes:
    """Bytes as given, or read from a local path / ``file://`` / ``s3://`` URI."""
    if isinstance(source, bytes | bytearray):
        return bytes(source)
    fs, path = filesystem(str(source))
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


def _read_report(root: str) -> dict[str, Any]:
    fs, path = filesystem(f"{root}/report.json")
    try:
        return json.loads(_read(fs, path).decode("utf-8"))
    except FileNotFoundError:
        return {}


def _read_reference(root: str) -> np.ndarray | None:
    fs, path = filesystem(f"{root}/reference")
    if not is_dir(fs, path):
        return None
    column = pq.read_table(path, filesystem=fs, columns=["features"]).column("features")
    flat = column.combine_chunks().flatten().to_numpy(zero_copy_only=False)
    return novelty.unit_rows(flat.reshape(len(column), -1))


class Predictor:
    """Loads the network and the trained model once; :meth:`predict` answers per photo."""

    def __init__(
        self,
        model: str,
        weights: str = DEFAULT_WEIGHTS,
        threshold: float = PREDICT_THRESHOLD,
        min_similarity: float | None = None,
    ) -> None:
        root, model_dir = _model_folders(model)
        self.pipeline = NumpyPipeline.load(model_dir)
        self.reference = _read_reference(root)
        report_novelty = _read_report(root).get("novelty", {})
        self.threshold = threshold
        self.min_similarity = (
            min_similarity
            if min_similarity is not None
            else report_novelty.get("min_similarity", MIN_SIMILARITY)
        )
        self.network = load_network(weights, read_bytes=read_image)

    @property
    def labels(self) -> tuple[str, ...]:
        return self.pipeline.labels

    def features(self, images: Sequence[str | Path | bytes]) -> np.ndarray:
        """``n×1280`` MobileNetV2 features; raises ImageRejected for an undecodable image."""
        arrays = [decode_for_model(read_image(image)) for image in images]
        return extract_features(self.network, np.stack(arrays))

    def predict(self, image: str | Path | bytes) -> Prediction:
        """The answer for one photo (path, URI or bytes)."""
        return self.answer(self.features([image])[0])

    def answer(self, features: np.ndarray) -> Prediction:
        """The answer for one feature vector."""
        probabilities = self.pipeline.predict_proba(features)[0]
        order = np.argsort(probabilities)[::-1][:TOP_K]
        top = [(self.labels[i], float(probabilities[i])) for i in order]
        best, probability = top[0]
        similarity = None
        if self.reference is not None:
            unit = novelty.unit_rows(features)
            similarity = float(novelty.nearest_similarity(unit, self.reference)[0])
        reason = None
        if similarity is not None and similarity < self.min_similarity:
            reason = (
                f"unlike every training image (similarity {similarity:.2f} "
                f"< {self.min_similarity:.2f})"
            )
        elif probability < self.threshold:
            reason = f"low confidence ({probability:.2f} < {self.threshold:.2f})"
        if reason:
            return Prediction(UNKNOWN, probability, similarity, top, None, reason)
        return Prediction(best, probability, similarity, top, info_for(best))


def describe(source: str, prediction: Prediction) -> str:
    """A few readable lines for the command line."""
    head = f"{source}: {prediction.label}"
    if prediction.known:
        head += f" ({prediction.probability:.1%})"
    lines = [head + (f" — {prediction.reason}" if prediction.reason else "")]
    lines += [f"  {i}. {label:<24} {p:.1%}" for i, (label, p) in enumerate(prediction.top, 1)]
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
        default=PREDICT_THRESHOLD,
        help="below this top probability the answer is 'unknown' (default %(default)s)",
    )
    p.add_argument(
        "--min-similarity",
        type=float,
        help=f"novelty cut-off (default: the model's report, else {MIN_SIMILARITY})",
    )
    p.add_argument("--json", action="store_true", help="one JSON object per image")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Exit 0 when every image was answered, 2 when an input or the model is unusable."""
    args = parser().parse_args(argv)
    try:
        predictor = Predictor(args.model, args.weights, args.threshold, args.min_similarity)
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
