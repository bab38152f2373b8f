"""Prometheus metrics of one service instance (its own registry), served at ``/metrics``."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 2.0, 5.0, 10.0)


class Metrics:
    """Requests and latency per route, answers known/unknown, the served model, batches."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = registry = CollectorRegistry()
        self.requests = Counter(
            "fruits_http_requests",
            "HTTP requests by method, route template and status",
            ["method", "route", "status"],
            registry=registry,
        )
        self.latency = Histogram(
            "fruits_http_request_duration_seconds",
            "Time to answer, by method and route template",
            ["method", "route"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.predictions = Counter(
            "fruits_predictions",
            "Answers given, by result: known (a fruit) or unknown",
            ["result"],
            registry=registry,
        )
        self.unknown_ratio = Gauge(
            "fruits_predictions_unknown_ratio",
            "Share of answers that were 'unknown' since the service started",
            registry=registry,
        )
        self.model_info = Gauge(
            "fruits_model_info",
            "The served model (value 1): its version and train output folder",
            ["version", "model"],
            registry=registry,
        )
        self.model_loads = Counter(
            "fruits_model_loads",
            "Model loads, by result (success, failure)",
            ["result"],
            registry=registry,
        )
        self.batch_size = Histogram(
            "fruits_inference_batch_size",
            "Photos per inference call",
            buckets=(1, 2, 3, 4, 6, 8, 12, 16),
            registry=registry,
        )
        self._known = self._unknown = 0

    def answered(self, known: bool) -> None:
        self.predictions.labels("known" if known else "unknown").inc()
        if known:
            self._known += 1
        else:
            self._unknown += 1
        self.unknown_ratio.set(self._unknown / (self._known + self._unknown))

    def serving(self, version: str, model: str) -> None:
        self.model_info.clear()
        self.model_info.labels(version, model).set(1)

    def render(self) -> bytes:
        return generate_latest(self.registry)
