"""The HTTP API on a real uvicorn: answers, formats, every error code, catalogue, health,
metrics, CORS and the OpenAPI docs."""

from __future__ import annotations

import io
import json
import re
import tempfile

import numpy as np
import pytest
from PIL import Image
from service_harness import ALLOWED_ORIGIN, MAX_PIXELS, MAX_UPLOAD, jpeg

from fruits.fruit_info import table


@pytest.fixture(scope="module")
def client(served):
    with served.client() as http:
        yield http


@pytest.fixture(scope="module")
def photo(banana) -> Image.Image:
    return Image.open(banana).convert("RGB")


def encoded(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def error_of(response, status: int, code: str) -> str:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()["error"]
    assert (body["status"], body["code"]) == (status, code)
    assert body["message"]
    return body["message"]


def test_a_banana_photo_gets_the_fruit_its_facts_and_the_top_3(client, served, banana):
    response = client.post("/v1/predictions", files={"photo": ("b.jpg", banana.read_bytes())})
    assert response.status_code == 200, response.text
    answer = response.json()
    assert (answer["label"], answer["known"], answer["reason"]) == ("Banana", True, None)
    assert (answer["id"], answer["fruit"], answer["variety"]) == ("banana", "Banana", None)
    assert (answer["level"], answer["fruit_key"], answer["variety_label"]) == (
        "variety",
        "banana",
        "Banana",
    )
    assert answer["top_fruits"][0]["label"] == "banana"
    assert answer["info"] == table()["Banana"].as_dict()
    assert answer["probability"] >= 0.5 and answer["similarity"] >= 0.7
    assert answer["top"][0]["label"] == "Banana" and len(answer["top"]) == 3
    assert {"id", "fruit", "probability"} <= set(answer["top"][1])
    assert answer["model_version"] == served.service.holder.version
    assert answer["image"] == {"format": "JPEG", "width": 100, "height": 100}
    assert re.fullmatch(r"[0-9a-f]{32}", answer["request_id"])


def test_the_raw_body_gives_the_same_answer_as_the_form(client, banana):
    data = banana.read_bytes()
    form = client.post("/v1/predictions", files={"photo": ("b.jpg", data)}).json()
    raw = client.post("/v1/predictions", content=data, headers={"content-type": "image/jpeg"})
    assert raw.status_code == 200
    for key in ("label", "probability", "top", "info"):
        assert raw.json()[key] == form[key]


def test_a_variety_is_named_from_the_facts(client, sample_dir):
    braeburn = sorted((sample_dir / "Test" / "Apple Braeburn").glob("*.jpg"))[0]
    answer = client.post("/v1/predictions", content=braeburn.read_bytes()).json()
    assert (answer["label"], answer["id"]) == ("Apple Braeburn", "apple-braeburn")
    assert (answer["fruit"], answer["variety"]) == ("Braeburn apple", "Braeburn")
    assert (answer["fruit_key"], answer["variety_label"]) == ("apple", "Apple Braeburn")


@pytest.mark.parametrize(
    ("fmt", "options"),
    [("PNG", {}), ("WEBP", {"quality": 95}), ("HEIF", {"quality": 95})],
)
def test_png_webp_and_heic_photos_are_read(client, photo, fmt, options):
    answer = client.post("/v1/predictions", content=encoded(photo, fmt, **options)).json()
    assert (answer["label"], answer["image"]["format"]) == ("Banana", fmt)


def test_a_non_fruit_is_unknown_with_its_reason(client):
    noise = np.random.default_rng(3).integers(0, 256, (120, 120, 3), dtype=np.uint8)
    answer = client.post("/v1/predictions", content=encoded(Image.fromarray(noise), "PNG")).json()
    assert (answer["label"], answer["known"], answer["id"]) == ("unknown", False, None)
    assert (answer["fruit"], answer["info"]) == (None, None)
    assert "unlike every training image" in answer["reason"]
    assert len(answer["top"]) == 3


def test_413_when_the_upload_is_larger_than_the_limit(client):
    big = b"\xff\xd8" + bytes(MAX_UPLOAD)
    message = error_of(client.post("/v1/predictions", content=big), 413, "payload_too_large")
    assert "3 MiB" in message
    form = client.post("/v1/predictions", files={"photo": ("big.jpg", big)})
    error_of(form, 413, "payload_too_large")


def test_413_while_reading_a_body_sent_without_its_length(client):
    chunks = (bytes(256 * 1024) for _ in range(16))  # chunked transfer: no Content-Length
    response = client.post("/v1/predictions", content=chunks)
    error_of(response, 413, "payload_too_large")


def test_413_when_the_photo_has_too_many_pixels(client):
    wide = encoded(Image.new("RGB", (2500, 2000), (200, 180, 40)), "PNG")  # 5 MP, few bytes
    assert len(wide) < MAX_UPLOAD
    message = error_of(client.post("/v1/predictions", content=wide), 413, "too_many_pixels")
    assert f"{MAX_PIXELS / 1e6:.1f}" in message


@pytest.mark.parametrize(
    "data",
    [b"this is a text file, not a photo\n", b"%PDF-1.4\n%...", None],
    ids=["text", "pdf", "gif"],
)
def test_415_for_what_is_not_a_supported_image(client, photo, data):
    data = data or encoded(photo, "GIF")  # an image, but not a photo format the app sends
    message = error_of(
        client.post("/v1/predictions", files={"photo": ("x.jpg", data)}),
        415,
        "unsupported_media_type",
    )
    assert "JPEG, PNG, WebP or HEIC/HEIF" in message


def test_422_for_a_damaged_photo(client, banana):
    data = banana.read_bytes()
    error_of(
        client.post("/v1/predictions", content=data[: len(data) // 2]), 422, "unreadable_image"
    )


def test_400_without_a_photo(client):
    error_of(client.post("/v1/predictions", content=b""), 400, "missing_photo")
    form = client.post("/v1/predictions", data={"note": "no file"}, files={"x": ("", b"")})
    error_of(form, 400, "missing_photo")


def test_404_and_405_are_json_too(client):
    error_of(client.get("/v1/nothing-here"), 404, "not_found")
    error_of(client.get("/v1/predictions"), 405, "method_not_allowed")
    message = error_of(client.get("/v1/fruits/durian"), 404, "unknown_fruit")
    assert "durian" in message


def test_the_catalogue_lists_every_fruit_with_facts_and_the_models_classes(client):
    body = client.get("/v1/fruits").json()
    assert body["count"] == len(body["fruits"]) == len(table())
    by_id = {item["id"]: item for item in body["fruits"]}
    assert len(by_id) == body["count"]  # ids are unique
    assert by_id["banana"]["in_model"] and not by_id["walnut"]["in_model"]
    assert sum(item["in_model"] for item in body["fruits"]) == 4
    one = client.get("/v1/fruits/apple-braeburn").json()
    assert one["info"] == table()["Apple Braeburn"].as_dict()
    assert client.get("/v1/fruits/Apple Braeburn").json() == one  # the exact label works too


def test_healthz_names_the_served_model(client, served):
    health = client.get("/healthz")
    assert health.status_code == 200
    body = health.json()
    assert body["status"] == "ok" and body["last_error"] is None
    assert body["model"]["version"].startswith("2024-06-01-")
    assert body["model"]["classes"] == 4
    assert body["source"] == served.settings.pointer


def test_metrics_count_requests_latency_unknowns_and_the_model(client, banana):
    client.post("/v1/predictions", content=banana.read_bytes())
    client.post("/v1/predictions", content=b"not a photo")
    text = client.get("/metrics").text
    version = client.get("/healthz").json()["model"]["version"]
    assert re.search(
        r'fruits_http_requests_total\{method="POST",route="/v1/predictions",status="200"\} '
        r"[1-9]",
        text,
    )
    assert 'route="/v1/predictions",status="415"' in text
    assert 'fruits_http_request_duration_seconds_bucket{le="0.3",method="POST"' in text
    assert re.search(r'fruits_predictions_total\{result="known"\} [1-9]', text)
    assert "fruits_predictions_unknown_ratio " in text
    assert re.search(rf'fruits_model_info\{{model="[^"]+",version="{version}"\}} 1\.0', text)
    assert 'fruits_model_loads_total{result="success"} 1.0' in text
    assert "fruits_inference_batch_size_bucket" in text


def test_cors_only_for_the_configured_origins(client):
    allowed = client.get("/v1/fruits", headers={"origin": ALLOWED_ORIGIN})
    assert allowed.headers["access-control-allow-origin"] == ALLOWED_ORIGIN
    other = client.get("/v1/fruits", headers={"origin": "https://elsewhere.example"})
    assert "access-control-allow-origin" not in other.headers
    preflight = client.options(
        "/v1/predictions",
        headers={"origin": ALLOWED_ORIGIN, "access-control-request-method": "POST"},
    )
    assert preflight.status_code == 200
    assert "POST" in preflight.headers["access-control-allow-methods"]


def test_openapi_docs(client):
    assert "swagger-ui" in client.get("/docs").text
    spec = client.get("/openapi.json").json()
    assert {"/v1/predictions", "/v1/fruits", "/v1/fruits/{fruit_id}", "/healthz"} <= set(
        spec["paths"]
    )
    body = spec["paths"]["/v1/predictions"]["post"]["requestBody"]["content"]
    assert {"multipart/form-data", "image/jpeg", "image/heic"} <= set(body)
    assert "413" in spec["paths"]["/v1/predictions"]["post"]["responses"]


def test_a_large_upload_is_never_written_to_disk(client, photo, monkeypatch, tmp_path):
    """Starlette would spool form files over 1 MB to a temporary file: this service does not."""
    rng = np.random.default_rng(5)
    large = photo.resize((1600, 1200))
    noisy = np.clip(np.asarray(large, np.int16) + rng.integers(-20, 21, (1200, 1600, 3)), 0, 255)
    data = jpeg(Image.fromarray(noisy.astype(np.uint8)), quality=97)
    assert 1_100_000 < len(data) < MAX_UPLOAD
    spool = tmp_path / "tmp"
    spool.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(spool))
    response = client.post("/v1/predictions", files={"photo": ("large.jpg", data)})
    assert response.status_code == 200, response.text
    assert json.loads(response.text)["image"]["width"] == 1600
    assert list(spool.iterdir()) == []
