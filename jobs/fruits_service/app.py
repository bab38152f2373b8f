"""The FastAPI application: the prediction API, the fruit catalogue, health, metrics, the page.

POST /v1/predictions     a photo (multipart or raw body) → the fruit, or "unknown" and why
GET  /v1/fruits          the catalogue;  GET /v1/fruits/{id}  one fruit and its facts
GET  /healthz            the served model (503 while none is loaded)
GET  /metrics            Prometheus text
GET  /                   the mobile page;  GET /docs  the OpenAPI documentation
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
from fastapi import FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import HTMLResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from fruits.model import configure_tensorflow, load_network
from fruits.predict import Prediction, read_image
from fruits_service import catalogue, decoding, errors, privacy, upload
from fruits_service.batching import Batcher, Overloaded
from fruits_service.errors import ApiError
from fruits_service.metrics import Metrics
from fruits_service.models import LoadedModel, ModelChanged, ModelHolder, NoModel
from fruits_service.schemas import ERROR_RESPONSES, PHOTO_BODY, Health, PredictionAnswer
from fruits_service.settings import Settings

log = logging.getLogger("fruits_service")
STATIC = Path(__file__).resolve().parent / "static"


class Service:
    """Everything a running app holds: settings, metrics, the model, the inference queue."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.metrics = Metrics()
        self.holder = ModelHolder(
            settings.pointer,
            settings.model,
            lambda size: load_network(settings.weights, read_bytes=read_image, size=size),
            settings.threshold,
            settings.retry_failed_s,
            on_change=lambda m: self.metrics.serving(m.version, m.model),
            on_load=lambda ok: self.metrics.model_loads.labels(
                "success" if ok else "failure"
            ).inc(),
        )
        self.decoder = ThreadPoolExecutor(settings.decode_threads, thread_name_prefix="decode")
        self.loader = ThreadPoolExecutor(1, thread_name_prefix="model-loader")
        self.batcher = Batcher(
            self.holder.predict,
            settings.max_batch,
            settings.max_queue,
            on_batch=self.metrics.batch_size.observe,
        )
        self._poller: asyncio.Task[None] | None = None
        self._warm = False

    async def refresh(self) -> bool:
        """Load the source's model if it changed; the first one warms the network up."""
        loop = asyncio.get_running_loop()
        swapped = await loop.run_in_executor(self.loader, self.holder.refresh)
        if swapped and not self._warm:
            await loop.run_in_executor(self.batcher.executor, self.warm_up)
            self._warm = True
        return swapped

    async def start(self) -> None:
        configure_tensorflow(self.settings.tf_threads)
        await self.refresh()
        self.batcher.start()
        if self.settings.pointer and self.settings.poll_s > 0:
            self._poller = asyncio.get_running_loop().create_task(self._poll())

    def warm_up(self) -> None:
        """Trace the network's predict step for one photo and for a batch, so that the first
        requests do not pay for it (Keras then reuses one trace for every batch size)."""
        for size in sorted({1, min(2, self.settings.max_batch)}):
            side = self.holder.input_size
            self.holder.predict(np.zeros((size, side, side, 3), np.float32))

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(self.settings.poll_s)
            await self.refresh()

    async def stop(self) -> None:
        if self._poller:
            self._poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poller
        await self.batcher.stop()
        self.decoder.shutdown(wait=True)
        self.loader.shutdown(wait=True)


class RequestMetrics:
    """ASGI middleware: count and time every HTTP request by route template and status."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start, status = time.perf_counter(), 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            route = getattr(scope.get("route"), "path", "unmatched")
            method = scope["method"]
            self.metrics.requests.labels(method, route, str(status)).inc()
            self.metrics.latency.labels(method, route).observe(time.perf_counter() - start)


def answer(
    prediction: Prediction, model: LoadedModel, request_id: str, image: decoding.Decoded
) -> dict[str, Any]:
    """``Prediction.as_dict()`` and around it what the app needs: ids, names, model, image.

    ``fruit`` and ``variety`` are the names to show (the facts' common name and cultivar);
    the prediction's own keys stay as ``fruit_key`` (``apple``) and ``variety_label``
    (``Apple Braeburn``).
    """
    payload = prediction.as_dict()
    payload["fruit_key"], payload["variety_label"] = payload.pop("fruit"), payload.pop("variety")
    shown = catalogue.names(prediction.label if prediction.known else None)
    payload["fruit"] = shown["fruit"] or payload["fruit_key"]
    payload["variety"] = shown["variety"]
    payload["id"] = catalogue.fruit_id(prediction.label) if prediction.known else None
    for candidate in payload["top"]:
        candidate.setdefault("id", catalogue.fruit_id(candidate["label"]))
        candidate.setdefault("fruit", catalogue.names(candidate["label"])["fruit"])
    return {
        **payload,
        "known": prediction.known,
        "request_id": request_id,
        "model_version": model.version,
        "image": {"format": image.format, "width": image.width, "height": image.height},
    }


def create_app(settings: Settings) -> FastAPI:
    service = Service(settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await service.start()
        try:
            yield
        finally:
            await service.stop()

    app = FastAPI(
        title="Fruits! prediction service",
        description="Name the fruit in a photo, with its facts. Every error is JSON: "
        '`{"error": {"status", "code", "message"}}`.',
        version="1",
        lifespan=lifespan,
    )
    app.state.service = service
    errors.install(app)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(settings.cors_origins),
            allow_methods=["GET", "POST"],
            allow_headers=["Content-Type"],
        )
    app.add_middleware(RequestMetrics, metrics=service.metrics)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    def model_labels() -> tuple[str, ...]:
        current = service.holder.current
        return current.predictor.labels if current else ()

    @app.post(
        "/v1/predictions",
        summary="Name the fruit in a photo",
        response_model=PredictionAnswer,
        responses=ERROR_RESPONSES,
        openapi_extra=PHOTO_BODY,
    )
    async def predict(request: Request) -> dict[str, Any]:
        """A JPEG, PNG, WebP or HEIC/HEIF photo, as the file part of a form or as the raw
        body. The answer is the fruit, its probability, the top 3 and the fruit's facts, or
        ``label: "unknown"`` with its ``reason``."""
        data = await upload.read_photo(request, settings.max_upload_bytes)
        if service.holder.current is None:
            raise ApiError(503, "no_model", service.holder.last_error or "no model loaded yet")
        loop = asyncio.get_running_loop()
        started = time.perf_counter()
        image = await loop.run_in_executor(
            service.decoder,
            decoding.decode,
            data,
            settings.max_pixels,
            settings.jpeg_draft,
            service.holder.input_size,
        )
        request_id = uuid.uuid4().hex
        if settings.log_exif:
            privacy.log_exif(request_id, decoding.open_image(data, settings.max_pixels))
        try:
            model, prediction = await service.batcher.submit(image.array)
        except Overloaded as exc:
            raise ApiError(503, "overloaded", f"{exc}: retry in a moment") from None
        except NoModel as exc:
            raise ApiError(503, "no_model", str(exc)) from None
        except ModelChanged as exc:
            raise ApiError(503, "model_changed", str(exc)) from None
        service.metrics.answered(prediction.known)
        body = answer(prediction, model, request_id, image)
        log.info(
            "prediction %s: %s %dx%d %d bytes → %s (%.2f) model %s in %.0f ms",
            request_id, image.format, image.width, image.height, len(data),
            prediction.label, prediction.probability, model.version,
            (time.perf_counter() - started) * 1000,
        )  # fmt: skip
        if settings.keep_photos_dir:
            await loop.run_in_executor(
                service.decoder,
                privacy.keep_photo,
                settings.keep_photos_dir, request_id, data, image.format, body,
            )  # fmt: skip
        return body

    @app.get("/v1/fruits", summary="The catalogue: every fruit and its facts")
    async def fruits() -> dict[str, Any]:
        items = catalogue.catalogue(model_labels())
        return {"count": len(items), "fruits": items}

    @app.get(
        "/v1/fruits/{fruit_id}",
        summary="One fruit and its facts",
        responses={404: ERROR_RESPONSES[404]},
    )
    async def fruit(fruit_id: str) -> dict[str, Any]:
        found = catalogue.find(fruit_id, model_labels())
        if found is None:
            raise ApiError(404, "unknown_fruit", f"no fruit with id {fruit_id!r} (GET /v1/fruits)")
        return found

    @app.get(
        "/healthz",
        summary="Which model is served",
        response_model=Health,
        responses={503: ERROR_RESPONSES[503]},
    )
    async def healthz() -> Any:
        holder = service.holder
        body: dict[str, Any] = {
            "status": "ok" if holder.current else "no_model",
            "model": holder.current.describe() if holder.current else None,
            "source": settings.pointer or settings.model,
            "last_error": holder.last_error,
        }
        if holder.current is None:
            return Response(Health(**body).model_dump_json(), 503, media_type="application/json")
        return body

    @app.get("/metrics", summary="Prometheus metrics", response_class=Response)
    async def metrics() -> Response:
        return Response(service.metrics.render(), media_type=service.metrics.content_type)

    page_html = (
        (STATIC / "index.html")
        .read_text(encoding="utf-8")
        .replace("{{privacy}}", privacy.notice(settings.keep_photos_dir is not None))
    )

    @app.get("/", include_in_schema=False)
    async def page() -> HTMLResponse:
        return HTMLResponse(page_html)

    return app
