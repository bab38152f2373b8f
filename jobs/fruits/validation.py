"""Checks made before a run writes anything: each raises InputError with a one-line reason.

The local runner calls them all before its first stage, every stage calls those of its own
arguments before it starts Spark work, and the Airflow tasks reuse them, so a bad value fails in
seconds, never after minutes of work with earlier stages of the date already published.
"""

from __future__ import annotations

import datetime as dt
import math

from fruits import listing, storage
from fruits.config import FEATURE_DIM, INPUT_SIZE_STEP, MAX_INPUT_SIZE, MIN_INPUT_SIZE
from fruits.errors import InputError

# MobileNetV2 (alpha 1.0, no top) in Keras' layout: 260 arrays, among them the first
# convolution's 3x3x3x32 kernel and the last 1x1x320x1280 one.
_WEIGHT_ARRAYS = 260
_WEIGHT_SHAPES = {(3, 3, 3, 32), (1, 1, 320, 1280)}


def iso_date(value: str) -> str:
    """A logical date as ``YYYY-MM-DD``; anything else (``x/../..``) is refused."""
    try:
        parsed = dt.date.fromisoformat(value)
    except (TypeError, ValueError):
        raise InputError(f"--date/--ds must be an ISO date (YYYY-MM-DD), got {value!r}") from None
    if parsed.isoformat() != value:
        raise InputError(f"--date/--ds must be written YYYY-MM-DD, got {value!r}")
    return value


def pca_choice(k: int | None, variance: float | None) -> None:
    """k in [1, 1280] when given; else the variance target in (0, 1]."""
    if k is not None and not 1 <= k <= FEATURE_DIM:
        raise InputError(f"--k must be between 1 and {FEATURE_DIM}, got {k}")
    if k is None and (variance is None or not 0.0 < variance <= 1.0 or math.isnan(variance)):
        raise InputError(f"--variance must be in (0, 1], got {variance}")


def input_size(size: int) -> int:
    """The network's input side: a multiple of 32 (MobileNetV2's total stride) in [96, 640]."""
    if not MIN_INPUT_SIZE <= size <= MAX_INPUT_SIZE or size % INPUT_SIZE_STEP:
        raise InputError(
            f"--input-size must be a multiple of {INPUT_SIZE_STEP} between {MIN_INPUT_SIZE} "
            f"and {MAX_INPUT_SIZE}, got {size}"
        )
    return size


def probability(name: str, value: float) -> float:
    """A threshold in [0, 1]."""
    if not 0.0 <= value <= 1.0 or math.isnan(value):
        raise InputError(f"{name} must be in [0, 1], got {value}")
    return value


def inputs(roots: tuple[str, ...] | list[str]) -> None:
    """Every input root exists, taken literally (no glob), and source names do not collide."""
    from fruits.labels import source_name

    if not roots:
        raise InputError("no --input given")
    names: dict[str, str] = {}
    for root in roots:
        if not listing.root_exists(root):
            raise InputError(f"input not found: {root}")
        name = source_name(root)
        if name in names:
            raise InputError(f"two inputs are named {name!r}: {names[name]} and {root}")
        names[name] = root


def output_root(root: str) -> None:
    """The output root is a folder this process can write (created when missing)."""
    try:
        storage.check_writable(root)
    except OSError as error:
        raise InputError(str(error)) from None


def weights(source: str) -> None:
    """``imagenet`` (downloaded by Keras), or a readable MobileNetV2 no-top weights file.

    Local files are opened with h5py and their arrays counted and shaped (no TensorFlow needed);
    remote ones (s3://) must exist; the job that loads them checks them fully.
    """
    if source == "imagenet":
        return
    if not storage.is_local(source):
        if not storage.exists(source):
            raise InputError(f"weights not found: {source}")
        return
    import h5py

    path = storage.local_path(source)
    shapes: list[tuple[int, ...]] = []
    try:
        with h5py.File(path, "r") as file:
            file.visititems(
                lambda _, item: (
                    shapes.append(item.shape) if isinstance(item, h5py.Dataset) else None
                )
            )
    except FileNotFoundError:
        raise InputError(
            f"weights file not found: {source!r} (pass 'imagenet' or the path of "
            "mobilenet_v2_1.0_224_imagenet_no_top.weights.h5)"
        ) from None
    except OSError as error:
        raise InputError(f"weights {source!r} is not a readable HDF5 file: {error}") from None
    if len(shapes) != _WEIGHT_ARRAYS or not set(shapes) >= _WEIGHT_SHAPES:
        raise InputError(
            f"weights {source!r} are not MobileNetV2 (alpha 1.0, 224, no top) weights: "
            f"{len(shapes)} arrays, expected {_WEIGHT_ARRAYS}"
        )
