"""MobileNetV2 feature extractor: one network definition for the driver, executors and prediction.

The driver resolves the weights once (Keras' ``imagenet`` download, a local file or an S3 URI)
and hands executors a plain list of numpy arrays; an executor rebuilds the same architecture
with ``weights=None`` and sets those arrays.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from fruits.config import FEATURE_DIM, IMAGE_SIZE, INFERENCE_BATCH_SIZE, TEST_VIEWS, TRAINING_VIEWS
from fruits.errors import InputError

if TYPE_CHECKING:  # Keras ships no type information: to mypy, keras.Model is Any
    import keras

# Before TensorFlow is first imported: hide its C++ INFO lines (oneDNN and CPU-instruction
# notices, printed by every process), keep its warnings (e.g. an allocation over 10 % of memory).
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")


class WeightsUnavailable(InputError):
    """The weights source cannot be read; the message says how to fix it."""


def configure_tensorflow(threads: int | None) -> None:
    """Limit TensorFlow's thread pools; must run before TensorFlow executes anything."""
    if not threads:
        return
    import tensorflow as tf

    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
    except RuntimeError:  # already initialised in this process: keep its settings
        pass


def build_network(weights: str | None = None, size: int = IMAGE_SIZE) -> keras.Model:
    """MobileNetV2, ImageNet layout, no top, global average pooling → 1280 features, for
    ``size×size`` RGB inputs (the same weights at any size)."""
    import keras

    return keras.applications.MobileNetV2(
        input_shape=(size, size, 3),
        include_top=False,
        weights=weights,
        pooling="avg",
    )


def _fetch_to_local(uri: str, read_bytes: Callable[[str], bytes]) -> Path:
    """Copy a remote weights file to a local temporary file Keras can open."""
    suffix = ".weights.h5" if uri.endswith(".weights.h5") else Path(uri).suffix or ".h5"
    target = Path(tempfile.mkdtemp(prefix="fruits-weights-")) / f"mobilenet_v2{suffix}"
    target.write_bytes(read_bytes(uri))
    return target


def load_network(
    source: str, read_bytes: Callable[[str], bytes] | None = None, size: int = IMAGE_SIZE
) -> keras.Model:
    """Build the network for ``size×size`` inputs with weights from ``imagenet``, a local path
    or a remote URI.

    ``read_bytes`` reads a remote URI (the jobs pass Spark's Hadoop filesystem, so ``s3://``
    works wherever Spark can read it).
    """
    if source == "imagenet":
        try:
            return build_network("imagenet", size)
        except Exception as exc:
            raise WeightsUnavailable(
                "Could not download Keras' MobileNetV2 ImageNet weights "
                f"({type(exc).__name__}: {exc}). Without internet access pass a local or S3 "
                "weights file, e.g. --weights /path/mobilenet_v2_1.0_224_imagenet_no_top.weights.h5"
            ) from exc
    local = Path(source.removeprefix("file://"))
    if "://" in source and not source.startswith("file://"):
        if read_bytes is None:
            raise WeightsUnavailable(f"No reader for remote weights URI {source!r}.")
        try:
            local = _fetch_to_local(source, read_bytes)
        except Exception as exc:
            raise WeightsUnavailable(
                f"Cannot read weights from {source!r} ({type(exc).__name__}: {exc}). Check the "
                "URI and that this cluster's role may read it, or pass --weights imagenet."
            ) from exc
    if not local.is_file():
        raise WeightsUnavailable(
            f"Weights file not found: {source!r}. Pass --weights imagenet (Keras download, "
            "needs internet) or the path/S3 URI of mobilenet_v2_1.0_224_imagenet_no_top.weights.h5."
        )
    network = build_network(None, size)
    try:
        network.load_weights(str(local))
    except Exception as exc:
        raise WeightsUnavailable(
            f"{source!r} is not a MobileNetV2 (no top, 224x224) Keras weights file: {exc}"
        ) from exc
    return network


def network_from_arrays(weights: list[NDArray[Any]], size: int = IMAGE_SIZE) -> keras.Model:
    """Rebuild the network on an executor from the driver's broadcast weight arrays."""
    network = build_network(None, size)
    network.set_weights(weights)
    return network


def extract_features(
    network: keras.Model, images: NDArray[np.float32], batch_size: int = INFERENCE_BATCH_SIZE
) -> NDArray[np.float32]:
    """``n×size×size×3`` RGB floats in [0, 255] → ``n×1280`` float32 features.

    ``predict_on_batch`` runs Keras' compiled (``tf.function``) predict step: on CPU about 25 %
    faster than calling the network eagerly (bench/benchmark.py).
    """
    from keras.applications.mobilenet_v2 import preprocess_input

    if len(images) == 0:
        return np.zeros((0, FEATURE_DIM), dtype=np.float32)
    outputs = [
        np.asarray(network.predict_on_batch(preprocess_input(images[i : i + batch_size].copy())))
        for i in range(0, len(images), batch_size)
    ]
    features: NDArray[Any] = np.concatenate(outputs)  # numpy 1.26 types this call as Any
    return features.astype(np.float32, copy=False)


# Appended to the weights' fingerprint in a model id when featurize computes views.
VIEWS_SUFFIX = f"+views{TRAINING_VIEWS}x{TEST_VIEWS}"


def model_id(weight_arrays: list[NDArray[Any]], size: int = IMAGE_SIZE, views: bool = False) -> str:
    """What features were computed with: a short fingerprint of the weights, then ``@size``
    for an input size other than 224 and ``+views4x7`` with views. Features are reused only
    under the same id, and a corpus mixes no two ids."""
    digest = hashlib.sha256()
    for array in weight_arrays:
        digest.update(np.ascontiguousarray(array).tobytes())
    size_part = f"@{size}" if size != IMAGE_SIZE else ""
    return digest.hexdigest()[:16] + size_part + (VIEWS_SUFFIX if views else "")


def input_area(size: int) -> float:
    """How many times a 224 × 224 input's pixels a ``size`` input holds: MobileNetV2's work
    and its activations grow by this factor."""
    return (size / IMAGE_SIZE) ** 2


def input_size(model: str) -> int:
    """The network input size a model id names (224 when it names none)."""
    found = re.search(r"@(\d+)", model)
    return int(found.group(1)) if found else IMAGE_SIZE
