"""The served model: loaded at start, swapped for a newly promoted one without a restart.

The source is the current-model pointer of :mod:`fruits.promotion` (polled), or a fixed train output
folder. MobileNetV2 is loaded once per network input size and shared by every model of that size (a
model is the classifier on top of the same features), so a swap only reads the small classifier and
its reference set, in a background thread, while requests go on being answered by the model in
place; a pointed model whose ``report.json`` no longer matches the promoted version is refused. The
new model is switched in with one assignment; if it fails to load, the old one stays, the error is
reported by ``/healthz`` and ``fruits_model_loads{result="failure"}``, and the same version is tried
again only after ``retry_failed_s``.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from fruits import promotion
from fruits.config import IMAGE_SIZE
from fruits.predict import Prediction, Predictor, model_input_size

log = logging.getLogger(__name__)


class NoModel(RuntimeError):
    """No model could be loaded yet."""


class ModelChanged(RuntimeError):
    """The photo was decoded for the model served before, whose network input differs."""


@dataclass(frozen=True)
class LoadedModel:
    predictor: Predictor
    version: str
    model: str  # the train output folder
    loaded_at: str
    metrics: dict[str, float] = field(default_factory=dict)

    def describe(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "model": self.model,
            "loaded_at": self.loaded_at,
            "classes": len(self.predictor.labels),
            "metrics": self.metrics,
        }


@dataclass(frozen=True)
class Target:
    """What the source says should be served."""

    version: str
    model: str
    metrics: dict[str, float]
    pointer: promotion.Pointer | None = None


class ModelHolder:
    """Holds the served model; :meth:`refresh` loads the source's model when it changed."""

    def __init__(
        self,
        pointer: str | None,
        model: str | None,
        load_network: Callable[[int], Any],
        threshold: float,
        retry_failed_s: float = 300.0,
        on_change: Callable[[LoadedModel], None] | None = None,
        on_load: Callable[[bool], None] | None = None,
    ) -> None:
        self.pointer, self.fixed_model = pointer, model
        self.threshold, self.retry_failed_s = threshold, retry_failed_s
        self._load_network = load_network  # input size → MobileNetV2 for it
        self._networks: dict[int, Any] = {}
        self.on_change, self.on_load = on_change, on_load
        self.current: LoadedModel | None = None
        self.last_error: str | None = None
        self._failed: dict[str, float] = {}  # version → when its load failed
        self._lock = threading.Lock()  # one refresh at a time

    def target(self) -> Target:
        if self.fixed_model:
            report, raw = promotion.read_model_report(self.fixed_model)
            metrics = promotion.domain_metrics(report)
            return Target(promotion.model_version(raw), self.fixed_model, metrics)
        if self.pointer is None:
            raise NoModel("neither a model pointer nor a model folder is set")
        found = promotion.read_pointer(self.pointer)
        if found is None:
            raise NoModel(f"no model promoted yet: {self.pointer} does not exist")
        return Target(found.version, found.model, found.metrics, found)

    def refresh(self) -> bool:
        """Load the source's model if it is not the one served; True when it was swapped in."""
        with self._lock:
            try:
                target = self.target()
            except Exception as exc:
                self.last_error = f"cannot read the model source: {exc}"
                log.warning(self.last_error)
                return False
            if self.current and self.current.version == target.version:
                return False
            failed_at = self._failed.get(target.version)
            if failed_at is not None and time.monotonic() - failed_at < self.retry_failed_s:
                return False
            try:
                if target.pointer is not None:
                    promotion.check_model(target.pointer)
                size = model_input_size(target.model)
                if size not in self._networks:
                    self._networks[size] = self._load_network(size)
                network = self._networks[size]
                predictor = Predictor(target.model, threshold=self.threshold, network=network)
            except Exception as exc:
                self._failed[target.version] = time.monotonic()
                self.last_error = f"model {target.version} ({target.model}) failed to load: {exc}"
                log.error("%s; still serving %s", self.last_error, self.version or "nothing")
                if self.on_load:
                    self.on_load(False)
                return False
            loaded = LoadedModel(
                predictor,
                target.version,
                target.model,
                dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                target.metrics,
            )
            previous, self.current, self.last_error = self.version, loaded, None
            log.info("serving model %s (%s), was %s", loaded.version, loaded.model, previous)
            if self.on_load:
                self.on_load(True)
            if self.on_change:
                self.on_change(loaded)
            return True

    @property
    def version(self) -> str | None:
        return self.current.version if self.current else None

    @property
    def input_size(self) -> int:
        """The side photos are decoded to for the model served now."""
        return self.current.predictor.input_size if self.current else IMAGE_SIZE

    def predict(self, arrays: npt.NDArray[np.float32]) -> tuple[LoadedModel, list[Prediction]]:
        """Answers for decoded photos from the model served now (one inference call)."""
        model = self.current
        if model is None:
            raise NoModel(self.last_error or "no model loaded yet")
        if arrays.shape[1] != model.predictor.input_size:
            raise ModelChanged(
                f"model {model.version} takes {model.predictor.input_size} px photos; it was "
                "swapped in while this one was decoded: send it again"
            )
        return model, model.predictor.predict_arrays(arrays)
