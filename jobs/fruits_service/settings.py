"""The service's settings, from environment variables (documented in docs/service.md)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from fruits.config import DEFAULT_WEIGHTS, MAX_IMAGE_PIXELS, PREDICT_THRESHOLD

MIB = 1024 * 1024


@dataclass(frozen=True)
class Settings:
    """What to serve, the input limits, privacy opt-ins, CORS and the inference knobs."""

    pointer: str | None = None  # current-model pointer (fruits.promotion); polled for swaps
    model: str | None = None  # or a fixed train output folder, never swapped
    weights: str = DEFAULT_WEIGHTS  # MobileNetV2 weights: 'imagenet' or a file/URI
    poll_s: float = 10.0  # seconds between two looks at the pointer
    retry_failed_s: float = 300.0  # a model that failed to load is tried again after this
    threshold: float = PREDICT_THRESHOLD
    max_upload_bytes: int = 20 * MIB  # request body; more: 413
    max_pixels: int = MAX_IMAGE_PIXELS  # width x height; more: 413
    jpeg_draft: bool = True  # decode large JPEGs at a reduced scale (see decoding.py)
    max_batch: int = 4  # requests sharing one inference call
    max_queue: int = 64  # photos waiting for inference; more: 503
    decode_threads: int = 2
    tf_threads: int | None = None  # TensorFlow intra/inter-op threads (None: TF's default)
    cors_origins: tuple[str, ...] = ()  # origins allowed to call the API from a browser
    keep_photos_dir: str | None = None  # opt-in: keep uploads and answers here (GDPR)
    log_exif: bool = False  # opt-in: log each upload's EXIF, GPS included (GDPR)

    def __post_init__(self) -> None:
        if not (self.pointer or self.model):
            raise ValueError("set a model pointer (FRUITS_MODEL_POINTER) or a model folder")
        if self.max_batch < 1 or self.max_queue < 1 or self.decode_threads < 1:
            raise ValueError("max_batch, max_queue and decode_threads must be at least 1")

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: object) -> Settings:
        """``FRUITS_MODEL_POINTER``, ``FRUITS_WEIGHTS`` and ``FRUITS_SERVICE_<FIELD>``."""
        env = os.environ if env is None else env
        values: dict[str, Any] = {}  # field name → value of the field's type
        for f in fields(cls):
            name = {"pointer": "FRUITS_MODEL_POINTER", "weights": "FRUITS_WEIGHTS"}.get(
                f.name, f"FRUITS_SERVICE_{f.name.upper()}"
            )
            text = (env.get(name) or "").strip()
            if text:
                values[f.name] = _convert(f.name, text)
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)


def _convert(name: str, text: str) -> object:
    kinds = {f.name: f.type for f in fields(Settings)}
    kind = str(kinds[name])
    try:
        if name == "cors_origins":
            return tuple(o.strip() for o in text.split(",") if o.strip())
        if kind.startswith("bool"):
            return _flag(text)
        if kind.startswith("int"):
            return int(text)
        if kind.startswith("float"):
            return float(text)
    except ValueError:
        raise ValueError(f"FRUITS_SERVICE_{name.upper()}: bad value {text!r}") from None
    return text


def _flag(text: str) -> bool:
    lowered = text.lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise ValueError(text)
