"""The service tests' harness: a real uvicorn serving the app on 127.0.0.1 (a free port) in a
thread of the test process, the limits it is started with, and small helpers."""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import uvicorn
from PIL import Image

from fruits import promotion
from fruits_service.app import create_app
from fruits_service.settings import MIB, Settings

MAX_UPLOAD = 3 * MIB
MAX_PIXELS = 4_000_000
ALLOWED_ORIGIN = "https://app.fruits.example"

START_TIMEOUT_S = 180  # loading MobileNetV2 on two busy cores


class LiveServer:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.app = create_app(settings)
        config = uvicorn.Config(
            self.app, host="127.0.0.1", port=0, log_level="warning", access_log=False
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="uvicorn", daemon=True)

    def start(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + START_TIMEOUT_S
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the service did not start (see the log above)")
            time.sleep(0.05)
        return self

    @property
    def url(self) -> str:
        port = self.server.servers[0].sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    @property
    def service(self):
        return self.app.state.service

    def client(self, **kwargs) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=120, **kwargs)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=60)


def wait_for(condition: Callable[[], object], what: str, timeout_s: float = 120) -> object:
    """Poll ``condition`` until it returns something truthy (the swap is asynchronous)."""
    deadline = time.monotonic() + timeout_s
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.1)


def promote(pointer: Path, model: Path, ds: str) -> str:
    """Make ``model`` the current one (the gate is the DAG's business, tested elsewhere)."""
    decision = promotion.promote(str(model), str(pointer), promotion.GateConfig.parse("*=0"), ds)
    return decision.version


def jpeg(image: Image.Image, **options) -> bytes:
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, "JPEG", **options)
    return buffer.getvalue()


REPO_ROOT = Path(__file__).resolve().parents[2]
