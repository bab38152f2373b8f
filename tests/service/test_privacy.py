"""GDPR: by default no photo is kept and no EXIF (GPS included) reaches the logs; the two
documented settings opt in to each."""

from __future__ import annotations

import logging

import pytest
from PIL import ExifTags, Image
from service_harness import LiveServer, jpeg, promote

GPS_LATITUDE = (48.0, 51.0, 29.64)  # a place in Paris


def photo_with_gps(path) -> bytes:
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "FruitPhone"
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    gps[ExifTags.GPS.GPSLatitudeRef] = "N"
    gps[ExifTags.GPS.GPSLatitude] = GPS_LATITUDE
    return jpeg(Image.open(path), exif=exif, quality=95)


@pytest.fixture(scope="module")
def opted_in(small_models, settings_for, tmp_path_factory):
    root = tmp_path_factory.mktemp("opted-in")
    promote(root / "current-model.json", small_models.a, "2024-08-01")
    settings = settings_for(
        root / "current-model.json", keep_photos_dir=str(root / "kept"), log_exif=True
    )
    server = LiveServer(settings).start()
    try:
        yield server, root / "kept"
    finally:
        server.stop()


def test_by_default_exif_and_gps_never_reach_the_logs(served, banana, caplog):
    data = photo_with_gps(banana)
    assert b"FruitPhone" in data
    with caplog.at_level(logging.DEBUG), served.client() as client:
        assert client.post("/v1/predictions", content=data).json()["label"] == "Banana"
    assert "prediction " in caplog.text  # the request was logged, without its metadata
    for secret in ("FruitPhone", "GPS", "29.64"):
        assert secret not in caplog.text
    assert served.settings.keep_photos_dir is None
    with served.client() as client:
        assert "it is not stored" in client.get("/").text


def test_opting_in_keeps_the_photo_with_its_answer_and_logs_its_exif(opted_in, banana, caplog):
    server, kept = opted_in
    data = photo_with_gps(banana)
    with caplog.at_level(logging.INFO), server.client() as client:
        answer = client.post("/v1/predictions", content=data).json()
    (photo,) = kept.glob("*/*.jpg")
    assert photo.read_bytes() == data
    assert photo.stem == answer["request_id"]
    assert '"label": "Banana"' in photo.with_suffix(".json").read_text()
    assert "FruitPhone" in caplog.text and "GPSLatitude" in caplog.text
    with server.client() as client:
        assert "Your photo and its answer are kept" in client.get("/").text
