"""Deterministic image variants for training and test-time augmentation. Pillow and numpy only.

Every function takes a decoded RGB ``PIL.Image`` and returns new images; randomness comes from
a seed derived from the image's content hash and the variant number
(:func:`variant_seed`), so the same image always gives the same variants — on any machine, in
any task order — and their features can be cached like any other image's.

* :func:`random_view` — a random resized crop (scale, aspect ratio), a horizontal flip and a
  colour jitter (brightness, contrast, saturation): a phone photo's framing and light;
* :func:`composite` — a studio photo (object on white) pasted, at a random size and place, one
  or several times, onto a background photo: a shop shelf instead of a white table;
* :func:`test_views` — the fixed crops of test-time augmentation (full image, mirror, centre
  and corner crops).
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageEnhance, ImageFilter, ImageOps

from fruits.config import IMAGE_SIZE
from fruits.images import decode_for_model, to_rgb

Array = NDArray[Any]  # numpy arrays, any shape and dtype

# A pixel is background (studio white) when all channels are at least this bright.
WHITE_LEVEL = 235


@dataclass(frozen=True)
class ViewParams:
    """Ranges of :func:`random_view` (torchvision's ``RandomResizedCrop`` defaults, milder)."""

    scale: tuple[float, float] = (0.35, 1.0)
    ratio: tuple[float, float] = (3 / 4, 4 / 3)
    brightness: float = 0.25
    contrast: float = 0.25
    saturation: float = 0.25
    flip: bool = True


def variant_seed(image_id: str, variant: int) -> int:
    """A 64-bit seed from the image's content hash and the variant number."""
    digest = hashlib.sha256(f"{image_id}/{variant}".encode()).digest()
    return int.from_bytes(digest[:8], "little")


def _crop_box(
    rng: np.random.Generator, width: int, height: int, params: ViewParams
) -> tuple[int, int, int, int]:
    area = width * height
    for _ in range(10):
        target = area * rng.uniform(*params.scale)
        log_ratio = rng.uniform(np.log(params.ratio[0]), np.log(params.ratio[1]))
        aspect = float(np.exp(log_ratio))
        w = round(np.sqrt(target * aspect))
        h = round(np.sqrt(target / aspect))
        if 0 < w <= width and 0 < h <= height:
            left = int(rng.integers(0, width - w + 1))
            top = int(rng.integers(0, height - h + 1))
            return left, top, left + w, top + h
    side = min(width, height)  # fall back to the central square
    left, top = (width - side) // 2, (height - side) // 2
    return left, top, left + side, top + side


def _jitter(image: Image.Image, rng: np.random.Generator, params: ViewParams) -> Image.Image:
    for enhancer, amount in (
        (ImageEnhance.Brightness, params.brightness),
        (ImageEnhance.Contrast, params.contrast),
        (ImageEnhance.Color, params.saturation),
    ):
        image = enhancer(image).enhance(float(rng.uniform(1 - amount, 1 + amount)))
    return image


def random_view(image: Image.Image, seed: int, params: ViewParams = ViewParams()) -> Image.Image:
    """A random crop of ``image``, maybe mirrored, with jittered colours (same size out)."""
    rng = np.random.default_rng(seed)
    view = image.crop(_crop_box(rng, image.width, image.height, params))
    if params.flip and rng.random() < 0.5:
        view = ImageOps.mirror(view)
    return _jitter(view, rng, params).resize(image.size, Image.Resampling.BILINEAR)


def foreground_mask(image: Image.Image, white_level: int = WHITE_LEVEL) -> Image.Image:
    """``L`` mask of what is not studio-white background, slightly grown and softened."""
    rgb = np.asarray(image.convert("RGB"))
    solid = (rgb < white_level).any(axis=2).astype(np.uint8) * 255
    mask = Image.fromarray(solid, "L").filter(ImageFilter.MaxFilter(3))
    return mask.filter(ImageFilter.GaussianBlur(1))


def composite(
    studio: Image.Image,
    background: Image.Image,
    seed: int,
    copies: tuple[int, int] = (1, 6),
    size: int = 224,
) -> Image.Image:
    """``studio`` (object on white) pasted 1–6 times at random sizes and places onto a random
    square crop of ``background``; a square RGB image of ``size`` pixels."""
    rng = np.random.default_rng(seed)
    side = min(background.size)
    left = int(rng.integers(0, background.width - side + 1))
    top = int(rng.integers(0, background.height - side + 1))
    canvas = background.convert("RGB").crop((left, top, left + side, top + side))
    canvas = canvas.resize((size, size), Image.Resampling.BILINEAR)
    mask = foreground_mask(studio)
    n = int(rng.integers(copies[0], copies[1] + 1))
    for _ in range(n):
        scale = rng.uniform(0.6, 0.95) if n == 1 else rng.uniform(0.3, 0.6)
        w = max(8, round(size * scale))
        piece = studio.convert("RGB").resize((w, w), Image.Resampling.BILINEAR)
        piece_mask = mask.resize((w, w), Image.Resampling.BILINEAR)
        angle = float(rng.uniform(0, 360))
        piece = piece.rotate(angle, resample=Image.Resampling.BILINEAR, fillcolor=(255,) * 3)
        piece_mask = piece_mask.rotate(angle, resample=Image.Resampling.BILINEAR)
        x = int(rng.integers(-w // 4, size - 3 * w // 4 + 1))
        y = int(rng.integers(-w // 4, size - 3 * w // 4 + 1))
        canvas.paste(piece, (x, y), piece_mask)
    return canvas


def test_views(image: Image.Image, crop: float = 0.75) -> list[Image.Image]:
    """Full image, its mirror, and five crops of ``crop`` of each side (centre, 4 corners)."""
    w, h = image.size
    cw, ch = round(w * crop), round(h * crop)
    boxes = [
        ((w - cw) // 2, (h - ch) // 2),
        (0, 0),
        (w - cw, 0),
        (0, h - ch),
        (w - cw, h - ch),
    ]
    crops = [image.crop((x, y, x + cw, y + ch)) for x, y in boxes]
    return [image, ImageOps.mirror(image), *crops]


def sample(options: Sequence[Image.Image], seed: int) -> Image.Image:
    """One of ``options``, chosen by ``seed``."""
    return options[int(np.random.default_rng(seed).integers(0, len(options)))]


def to_model_input(image: Image.Image, size: int = IMAGE_SIZE) -> Array:
    """A view as the network takes it: bilinear resize to ``size×size``, float32 RGB."""
    return np.asarray(image.resize((size, size), Image.Resampling.BILINEAR), dtype=np.float32)


def _decoded_rgb(content: bytes) -> Image.Image:
    opened = Image.open(io.BytesIO(content))
    return to_rgb(ImageOps.exif_transpose(opened) or opened)


def decode_training_views(
    content: bytes, image_id: str, views: int, size: int = IMAGE_SIZE
) -> Array:
    """``views×size×size×3``: views 1..``views`` of a training image (:func:`random_view`,
    seeded by its content hash ``image_id`` and the view number); view 0 is the image itself,
    :func:`fruits.images.decode_for_model`. Raises ``ImageRejected`` as decoding does."""
    decode_for_model(content, size)  # validates: empty, undecodable, too large, corrupt
    image = _decoded_rgb(content)
    seeds = (variant_seed(image_id, view) for view in range(1, views + 1))
    return np.stack([to_model_input(random_view(image, seed), size) for seed in seeds])


def decode_views(content: bytes, views: int, size: int = IMAGE_SIZE) -> Array:
    """``views×size×size×3``: the image as :func:`fruits.images.decode_for_model` gives it,
    then (``views`` > 1) the rest of :func:`test_views`. Raises ``ImageRejected`` as decoding
    does."""
    first = decode_for_model(content, size)  # validates: empty, undecodable, too large, corrupt
    if views <= 1:
        return first[None]
    rest = [to_model_input(view, size) for view in test_views(_decoded_rgb(content))[1:views]]
    return np.stack([first, *rest])
