"""Image helpers with no Spark in them: validation by content and model-ready decoding.

Every function here is plain Python on bytes or strings so it can be unit-tested and reused by
the Spark UDFs and by single-image prediction alike.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageOps

from fruits.config import (
    DECODE_DRAFT_FACTOR,
    DECODE_DRAFT_SIZE,
    IMAGE_FORMATS,
    IMAGE_SIZE,
    MAX_IMAGE_PIXELS,
)

# Pillow's own bomb check would raise (or only warn) at other limits: ours is explicit.
Image.MAX_IMAGE_PIXELS = None

# File signatures of formats people send that the pipeline does not decode: named in the
# quarantine reason. Pillow itself is only ever asked to open IMAGE_FORMATS, so no other
# plugin (EPS → Ghostscript, …) runs on untrusted bytes.
_SIGNATURES = (
    (b"GIF87a", "GIF"),
    (b"GIF89a", "GIF"),
    (b"BM", "BMP"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
    (b"%!PS", "PostScript/EPS"),
    (b"\xc5\xd0\xd3\xc6", "EPS"),
    (b"%PDF", "PDF"),
    (b"\x00\x00\x01\x00", "ICO"),
)
_OBJECT_ADDRESS = re.compile(r"<[^<>]* at 0x[0-9a-fA-F]+>")


class ImageRejected(ValueError):
    """An input file that cannot become a feature vector; ``str()`` is the quarantine reason."""


@dataclass(frozen=True)
class ImageInfo:
    """What the load stage records about a decodable image."""

    format: str
    width: int
    height: int
    mode: str


def _format_name(content: bytes) -> str | None:
    """The name of a known unsupported format from the first bytes, else None."""
    if content[4:12] in (b"ftypheic", b"ftypheix", b"ftypmif1", b"ftyphevc", b"ftypavif"):
        return "HEIF/AVIF"
    return next((name for magic, name in _SIGNATURES if content.startswith(magic)), None)


def _clean(error: Exception) -> str:
    """An exception's message with object addresses removed (reasons must be reproducible)."""
    return _OBJECT_ADDRESS.sub("<data>", str(error)) or type(error).__name__


def _open(content: bytes | None) -> Image.Image:
    if not content:
        raise ImageRejected("empty file (0 bytes)")
    try:
        image = Image.open(io.BytesIO(content), formats=list(IMAGE_FORMATS))
    except Exception:  # Pillow raises several types for unknown formats
        found = _format_name(content)
        supported = ", ".join(IMAGE_FORMATS)
        if found:
            raise ImageRejected(
                f"unsupported image format: {found} (only {supported} are read)"
            ) from None
        raise ImageRejected(f"not a decodable image: not {supported} data") from None
    width, height = image.size
    if width * height > MAX_IMAGE_PIXELS:
        raise ImageRejected(
            f"image too large: {width}x{height} pixels exceeds the {MAX_IMAGE_PIXELS} pixel limit"
        )
    return image


def inspect_image(content: bytes | None) -> ImageInfo:
    """Validate by decoding every byte of image data; raise :class:`ImageRejected` with a
    readable, reproducible reason. JPEGs decode at reduced scale (``draft``): the whole
    entropy-coded stream is still read, so truncation and corruption are still caught."""
    image = _open(content)
    info = ImageInfo(image.format or "unknown", image.width, image.height, image.mode)
    try:
        image.draft("RGB", (DECODE_DRAFT_SIZE, DECODE_DRAFT_SIZE))
        image.load()
    except Exception as exc:
        raise ImageRejected(f"corrupt image data ({info.format}): {_clean(exc)}") from None
    return info


def to_rgb(image: Image.Image) -> Image.Image:
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


def decode_for_model(content: bytes | None, size: int = IMAGE_SIZE) -> npt.NDArray[np.float32]:
    """Bytes to a ``size×size×3`` float32 RGB array in [0, 255], EXIF orientation applied.

    Resizing is bilinear to the square input, as ``keras.utils.load_img(target_size=…,
    interpolation="bilinear")`` does; Keras' ``preprocess_input`` is applied by the model.
    Large JPEGs are first decoded at reduced scale (``DECODE_DRAFT_FACTOR`` × ``size``).
    """
    return prepare_for_model(_open(content), size)


def prepare_for_model(
    image: Image.Image, size: int = IMAGE_SIZE, draft: bool = True
) -> npt.NDArray[np.float32]:
    """An opened Pillow image to the model's input, as :func:`decode_for_model` does.

    For callers that open (and check) images themselves, e.g. the prediction service.
    ``draft=False`` decodes a JPEG at full size (for comparisons).
    """
    try:
        if draft:  # JPEG: libjpeg scales down while decoding, never below twice the input size
            image.draft("RGB", (DECODE_DRAFT_FACTOR * size,) * 2)
        image = ImageOps.exif_transpose(image) or image
        image = to_rgb(image).resize((size, size), Image.Resampling.BILINEAR)
    except ImageRejected:
        raise
    except Exception as exc:
        raise ImageRejected(f"corrupt image data: {_clean(exc)}") from None
    return np.asarray(image, dtype=np.float32)
