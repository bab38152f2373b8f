"""The service under test: a real uvicorn on loopback serving a real small model (trained once
per session, tests/small_models.py) through a real current-model pointer."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from service_harness import ALLOWED_ORIGIN, MAX_PIXELS, MAX_UPLOAD, LiveServer, promote

from fruits_service.settings import Settings


@pytest.fixture(scope="session")
def settings_for(weights_path):
    def build(pointer: Path, **overrides) -> Settings:
        values = {
            "pointer": str(pointer),
            "weights": str(weights_path),
            "max_upload_bytes": MAX_UPLOAD,
            "max_pixels": MAX_PIXELS,
            "cors_origins": (ALLOWED_ORIGIN,),
            **overrides,
        }
        return Settings(**values)

    return build


@pytest.fixture(scope="session")
def served(small_models, settings_for, tmp_path_factory) -> Iterator[LiveServer]:
    """The service following a pointer at model A."""
    pointer = tmp_path_factory.mktemp("serving") / "current-model.json"
    promote(pointer, small_models.a, "2024-06-01")
    server = LiveServer(settings_for(pointer)).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def banana(sample_dir) -> Path:
    return sorted((sample_dir / "Test" / "Banana").glob("*.jpg"))[0]
