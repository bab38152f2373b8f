"""Decoding uploads: JPEG draft mode keeps the features, EXIF orientation is applied, HEIC and
WebP decode like the JPEG they were made from."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image
from service_harness import jpeg

from fruits.images import decode_for_model
from fruits.model import extract_features
from fruits_service import decoding

TWELVE_MP = (4000, 3000)


@pytest.fixture(scope="module")
def predictor(served):
    return served.service.holder.current.predictor


def camera_like(path, size: tuple[int, int], seed: int) -> bytes:
    """A real photo at a phone camera's size, with sensor-like noise (realistic JPEG entropy)."""
    image = Image.open(path).convert("RGB").resize(size, Image.Resampling.BICUBIC)
    noise = np.random.default_rng(seed).normal(0, 6, (size[1], size[0], 3))
    pixels = np.clip(np.asarray(image, np.float32) + noise, 0, 255).astype(np.uint8)
    return jpeg(Image.fromarray(pixels), quality=90)


def cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


def test_draft_decoding_of_12_megapixel_jpegs_keeps_features_and_answers(predictor, sample_dir):
    paths = [sorted((sample_dir / "Test" / c).glob("*.jpg"))[1] for c in ("Banana", "Kiwi")]
    photos = [camera_like(path, TWELVE_MP, seed) for seed, path in enumerate(paths)]
    full = np.stack([decoding.decode(data, 50_000_000, draft=False).array for data in photos])
    draft = np.stack([decoding.decode(data, 50_000_000, draft=True).array for data in photos])
    assert not np.array_equal(full, draft)  # draft mode did decode differently
    reference, drafted = (extract_features(predictor.network, x) for x in (full, draft))
    assert cosine(reference, drafted).min() >= 0.999
    assert [p.label for p in predictor.predict_arrays(draft)] == [
        p.label for p in predictor.predict_arrays(full)
    ]


def test_the_service_decodes_exactly_as_the_pipeline(sample_dir):
    data = camera_like(sorted((sample_dir / "Test" / "Kiwi").glob("*.jpg"))[0], (1155, 866), 9)
    served = decoding.decode(data, 50_000_000).array
    assert np.array_equal(served, decode_for_model(data))


def test_exif_orientation_is_applied(banana):
    upright = Image.open(banana).convert("RGB").resize((400, 300))
    exif = Image.Exif()
    exif[0x0112] = 6  # stored turned; display rotated 90° clockwise
    turned = jpeg(upright.transpose(Image.Transpose.ROTATE_90), exif=exif, quality=95)
    decoded = decoding.decode(turned, 50_000_000)
    assert (decoded.width, decoded.height) == (300, 400)  # as stored
    expected = decoding.decode(jpeg(upright, quality=95), 50_000_000).array
    assert np.abs(decoded.array - expected).mean() < 3  # JPEG noise only
    assert np.abs(decoding.decode(turned, 50_000_000, draft=False).array - expected).mean() < 3


@pytest.mark.parametrize("fmt", ["HEIF", "WEBP", "PNG"])
def test_other_formats_decode_like_the_jpeg(banana, fmt):
    image = Image.open(banana).convert("RGB")
    buffer = io.BytesIO()
    image.save(buffer, fmt, **({} if fmt == "PNG" else {"quality": 95}))
    decoded = decoding.decode(buffer.getvalue(), 50_000_000)
    assert decoded.format == fmt
    assert np.abs(decoded.array - decode_for_model(banana.read_bytes())).mean() < 4
