"""Image helpers with no Spark in them: path metadata, validation and model-ready decoding.

Every function here is plain Python on bytes or strings so it can be unit-tested and reused by
the Spark UDFs and by single-image prediction alike.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageOps

from fruits.config import IMAGE_EXTENSIONS, IMAGE_SIZE, MAX_IMAGE_PIXELS, SPLITS

# Pillow's own bomb check would raise (or only warn) at other limits: ours is explicit.
Image.MAX_IMAGE_PIXELS = None


class ImageRejected(ValueError):
    """An input file that cannot become a feature vector; ``str()`` is the quarantine reason."""


@dataclass(frozen=True)
class ImageInfo:
    """What the load stage records about a decodable image."""

    format: str
    width: int
    height: int
    mode: str


def _segments(path: str) -> list[str]:
    """Path components of a local path or URI (``file:/a/b``, ``s3://bucket/a/b``)."""
    without_scheme = path.split("://", 1)[-1] if "://" in path else path.split(":", 1)[-1]
    return [part for part in without_scheme.split("/") if part]


def label_from_path(path: str) -> str:
    """The parent folder's name, kept exactly (spaces, accents, emoji)."""
    parts = _segments(path)
    return parts[-2] if len(parts) >= 2 else ""


def split_from_path(path: str) -> str | None:
    """``Training``/``Test``/``Validation`` when a folder of the path is named so, else None."""
    by_lower = {name.lower(): name for name in SPLITS}
    for part in reversed(_segments(path)[:-1]):
        if part.lower() in by_lower:
            return by_lower[part.lower()]
    return None


def has_image_extension(path: str) -> bool:
    return path.lower().endswith(IMAGE_EXTENSIONS)


def _open(content: bytes | None) -> Image.Image:
    if not content:
        raise ImageRejected("empty file (0 bytes)")
    try:
        image = Image.open(io.BytesIO(content))
    except Exception as exc:  # Pillow raises several types for unknown formats
        raise ImageRejected(f"not a decodable image: {exc}") from exc
    width, height = image.size
    if width * height > MAX_IMAGE_PIXELS:
        raise ImageRejected(
            f"image too large: {width}x{height} pixels exceeds the {MAX_IMAGE_PIXELS} pixel limit"
        )
    return image


def inspect_image(content: bytes | None) -> ImageInfo:
    """Validate by fully decoding; raise :class:`ImageRejected` with a readable reason."""
    image = _open(content)
    info = ImageInfo(image.format or "unknown", image.width, image.height, image.mode)
    try:
        image.load()
    except Exception as exc:
        raise ImageRejected(f"corrupt image data ({info.format}): {exc}") from exc
    return info


def _to_rgb(image: Image.Image) -> Image.Image:
    """Any Pillow mode to 8-bit RGB; transparency is flattened on white (Fruits-360 style)."""
    if image.mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):
        array = np.asarray(image, dtype=np.float64)
        scale = 65535.0 if image.mode.startswith("I;16") or array.max() > 255 else 255.0
        image = Image.fromarray(np.clip(array / scale * 255.0, 0, 255).astype(np.uint8), "L")
    elif image.mode == "F":
        image = Image.fromarray(np.clip(np.asarray(image), 0, 255).astype(np.uint8), "L")
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA"):
        background = Image.new("RGBA", image.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, image.convert("RGBA"))
    return image.convert("RGB")


def decode_for_model(content: bytes | None, size: int = IMAGE_SIZE) -> np.ndarray:
    """Bytes to a ``size×size×3`` float32 RGB array in [0, 255], EXIF orientation applied.

    Resizing is bilinear to the square input, as ``keras.utils.load_img(target_size=…,
    interpolation="bilinear")`` does; Keras' ``preprocess_input`` is applied by the model.
    """
    return prepare_for_model(_open(content), size)


def prepare_for_model(image: Image.Image, size: int = IMAGE_SIZE) -> np.ndarray:
    """An opened Pillow image to the model's input, as :func:`decode_for_model` does.

    For callers that open (and check) images themselves, e.g. the prediction service.
    """
    try:
        image = ImageOps.exif_transpose(image) or image
        image = _to_rgb(image).resize((size, size), Image.Resampling.BILINEAR)
    except ImageRejected:
        raise
    except Exception as exc:
        raise ImageRejected(f"corrupt image data: {exc}") from exc
    return np.asarray(image, dtype=np.float32)
