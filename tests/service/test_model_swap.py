"""The served model follows the current-model pointer without a restart: none yet (503), then
model A, then the newly promoted B, and B stays when the next promoted model fails to load."""

from __future__ import annotations

import re

import pytest
from service_harness import LiveServer, promote, wait_for


@pytest.fixture(scope="module")
def swapping(small_models, settings_for, tmp_path_factory):
    pointer = tmp_path_factory.mktemp("swap") / "current-model.json"  # nothing promoted yet
    server = LiveServer(settings_for(pointer, poll_s=0.2, retry_failed_s=3600)).start()
    try:
        with server.client() as client:
            yield client, pointer
    finally:
        server.stop()


def health(client) -> dict:
    return client.get("/healthz").json()


def test_the_model_is_swapped_when_a_new_one_is_promoted_and_kept_when_it_fails(
    swapping, small_models, banana
):
    client, pointer = swapping
    photo = banana.read_bytes()

    # Nothing promoted yet: the service is up, says so, and answers 503 with JSON.
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["status"] == "no_model"
    assert "no model promoted yet" in response.json()["last_error"]
    refused = client.post("/v1/predictions", content=photo)
    assert refused.status_code == 503 and refused.json()["error"]["code"] == "no_model"

    # A is promoted: picked up, no restart.
    version_a = promote(pointer, small_models.a, "2024-07-01")
    wait_for(lambda: health(client)["model"], "model A to be served")
    assert health(client)["model"]["version"] == version_a
    answer = client.post("/v1/predictions", content=photo).json()
    assert (answer["label"], answer["model_version"]) == ("Banana", version_a)
    braeburn = client.get("/v1/fruits/apple-braeburn").json()
    assert braeburn["in_model"]

    # B (trained without Apple Braeburn) is promoted: swapped in.
    version_b = promote(pointer, small_models.b, "2024-07-02")
    wait_for(lambda: health(client)["model"]["version"] == version_b, "model B to be served")
    assert health(client)["model"]["classes"] == 3
    answer = client.post("/v1/predictions", content=photo).json()
    assert (answer["label"], answer["model_version"]) == ("Banana", version_b)
    assert "Apple Braeburn" not in [c["label"] for c in answer["top"]]
    assert not client.get("/v1/fruits/apple-braeburn").json()["in_model"]

    # A broken model is promoted: it fails to load, B stays and keeps answering.
    broken = promote(pointer, small_models.broken, "2024-07-03")
    wait_for(lambda: health(client)["last_error"], "the broken model's load to fail")
    status = health(client)
    assert status["model"]["version"] == version_b
    assert f"model {broken} " in status["last_error"] and "failed to load" in status["last_error"]
    answer = client.post("/v1/predictions", content=photo).json()
    assert (answer["label"], answer["model_version"]) == ("Banana", version_b)
    metrics = client.get("/metrics").text
    assert 'fruits_model_loads_total{result="success"} 2.0' in metrics
    assert 'fruits_model_loads_total{result="failure"} 1.0' in metrics
    assert re.search(rf'fruits_model_info\{{model="[^"]+",version="{version_b}"\}} 1\.0', metrics)
    assert version_a not in metrics  # the old model's series is gone
