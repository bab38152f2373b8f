"""The mobile page in headless Chromium at a phone's size: take or choose a photo, see the fruit,
its facts and the top 3, or a friendly "unknown". Screenshots are kept in
``output/service-screenshots/`` (git-ignored), the first one is the README's."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from service_harness import REPO_ROOT

SCREENSHOTS = REPO_ROOT / "output" / "service-screenshots"
PHONE = {"viewport": {"width": 390, "height": 844}, "device_scale_factor": 2}
UI_TIMEOUT_MS = 120_000


@pytest.fixture
def page(browser, served, tmp_path):
    context = browser.new_context(**PHONE, is_mobile=True, has_touch=True)
    page = context.new_page()
    page.set_default_timeout(UI_TIMEOUT_MS)
    page.goto(served.url + "/")
    shots = tmp_path / "shots"
    shots.mkdir()
    try:
        yield page, shots
    finally:
        context.close()
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        for shot in shots.glob("*.png"):
            shutil.copy(shot, SCREENSHOTS / shot.name)


def test_the_page_offers_the_camera_and_the_library(page):
    page, _ = page
    camera = page.locator("#camera")
    assert camera.get_attribute("accept") == "image/*"
    assert camera.get_attribute("capture") == "environment"
    assert page.locator("#library").get_attribute("accept") == "image/*"
    assert page.get_by_text("Take a photo").is_visible()
    assert page.get_by_text("Choose a photo").is_visible()


def test_a_photo_shows_the_fruit_its_facts_and_the_top_3(page, banana, served):
    page, shots = page
    page.set_input_files("#camera", str(banana))
    page.locator("#result").wait_for(state="visible")
    assert page.locator("#fruit-name").inner_text() == "Banana"
    assert "% sure" in page.locator("#confidence").inner_text()
    facts = page.locator("#facts").inner_text()
    assert "Musaceae" in facts and "Musa acuminata" in facts
    assert page.locator("#top-list li").count() == 3
    assert page.locator("#top-list li").first.inner_text().startswith("Banana")
    assert page.locator("#unknown").is_hidden()
    page.screenshot(path=shots / "01-known-fruit.png", full_page=True)


def test_a_real_phone_photo_is_answered_as_the_api_answers(page, served, sample_dir):
    page, shots = page
    photo = sample_dir.parent / "grocery-store-real" / "val" / "Fruit" / "Banana"
    photo = sorted(photo.glob("*.jpg"))[0]
    with served.client() as client:
        expected = client.post("/v1/predictions", content=photo.read_bytes()).json()
    page.set_input_files("#library", str(photo))
    shown = page.locator("#result" if expected["known"] else "#unknown")
    shown.wait_for(state="visible")
    if expected["known"]:
        assert page.locator("#fruit-name").inner_text() == expected["fruit"]
    else:
        assert page.locator("#unknown-reason").inner_text() == expected["reason"]
    guesses = page.locator("#top-list li").all_inner_texts()
    assert [g.split("\n")[0].strip() for g in guesses] == [c["fruit"] for c in expected["top"]]
    page.screenshot(path=shots / "02-phone-photo.png", full_page=True)


def test_a_non_fruit_gets_a_friendly_unknown(page, tmp_path: Path):
    page, shots = page
    noise = np.random.default_rng(11).integers(0, 256, (300, 300, 3), dtype=np.uint8)
    path = tmp_path / "not-a-fruit.png"
    Image.fromarray(noise).save(path)
    page.set_input_files("#library", str(path))
    page.locator("#unknown").wait_for(state="visible")
    assert "don't know this one" in page.locator("#unknown h2").inner_text()
    assert "unlike every training image" in page.locator("#unknown-reason").inner_text()
    assert page.locator("#result").is_hidden()
    page.screenshot(path=shots / "03-unknown.png", full_page=True)


def test_an_error_is_shown_in_words(page, tmp_path: Path):
    page, _ = page
    path = tmp_path / "notes.jpg"
    path.write_bytes(io.BytesIO(b"a text file named like a photo").getvalue())
    page.set_input_files("#library", str(path))
    status = page.locator("#status.error")
    status.wait_for(state="visible")
    assert "JPEG, PNG, WebP or HEIC/HEIF" in status.inner_text()
