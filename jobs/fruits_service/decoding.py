"""An uploaded photo to the model's input: JPEG, PNG, WebP or HEIC/HEIF, EXIF orientation applied.

The format is read from the bytes, never from a file name or header. The pixel count is checked from
the header before any pixel is decoded. A large JPEG is decoded with Pillow's draft mode: libjpeg
scales it by 1/2, 1/4 or 1/8 while decoding, to no less than ``fruits.config.DECODE_DRAFT_FACTOR``
times the model's input size a side — exactly as the pipeline decodes the images it learns from
(:func:`fruits.images.prepare_for_model`) — which makes a 12 MP photo several times cheaper to
decode (features compared in tests/service/test_decoding.py, speed in bench/service_load.py).
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pillow_heif
from PIL import Image, UnidentifiedImageError

from fruits.config import IMAGE_SIZE
from fruits.images import ImageRejected, prepare_for_model
from fruits_service.errors import ApiError

pillow_heif.register_heif_opener()  # adds the HEIF format (HEIC photos) to Pillow

FORMATS = ("JPEG", "PNG", "WEBP", "HEIF")


@dataclass(frozen=True)
class Decoded:
    array: npt.NDArray[np.float32]  # size×size×3 float32, what Predictor.predict_arrays takes
    format: str
    width: int
    height: int


def open_image(data: bytes, max_pixels: int) -> Image.Image:
    """The opened (not yet decoded) image; 415 if not one of :data:`FORMATS`, 413 if too big."""
    try:
        image = Image.open(io.BytesIO(data), formats=FORMATS)
    except UnidentifiedImageError:
        raise ApiError(
            415,
            "unsupported_media_type",
            "not an image this service reads: send a JPEG, PNG, WebP or HEIC/HEIF photo",
        ) from None
    except Exception as exc:  # a recognised format whose header is broken
        raise ApiError(422, "unreadable_image", f"the image cannot be read: {exc}") from exc
    width, height = image.size
    if width * height > max_pixels:
        raise ApiError(
            413,
            "too_many_pixels",
            f"{width}x{height} is {width * height / 1e6:.1f} megapixels; "
            f"the limit is {max_pixels / 1e6:.1f}",
        )
    return image


def decode(data: bytes, max_pixels: int, draft: bool = True, size: int = IMAGE_SIZE) -> Decoded:
    """Check and decode an upload as the pipeline decodes its images, to the model's input
    ``size`` (``draft=False``: a JPEG at full size, for comparisons); raises :class:`ApiError`
    (413, 415 or 422)."""
    image = open_image(data, max_pixels)
    fmt, (width, height) = image.format or "unknown", image.size
    try:
        array = prepare_for_model(image, size, draft)
    except ImageRejected as exc:
        raise ApiError(422, "unreadable_image", f"the {fmt} image is damaged: {exc}") from exc
    return Decoded(array, fmt, width, height)
