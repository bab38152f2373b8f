"""Test inputs built from the real Fruits-360 sample: subsets and a corpus of odd files."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import numpy as np
from PIL import Image


def copy_subset(
    sample: Path, target: Path, classes: list[str], per_class: int, splits=("Training", "Test")
) -> Path:
    """Copy the first ``per_class`` images of each class and split into ``target``."""
    for split in splits:
        for label in classes:
            files = sorted((sample / split / label).glob("*.jpg"))[:per_class]
            (target / split / label).mkdir(parents=True, exist_ok=True)
            for file in files:
                shutil.copy(file, target / split / label / file.name)
    return target


SMALL_CLASSES = ["Apple Braeburn", "Banana", "Kiwi", "Strawberry"]


def write_bad_inputs(sample: Path, target: Path) -> dict[str, str]:
    """Odd and broken files built from real sample images; returns {relative path: outcome}.

    Outcome is ``"features"`` for files that must be converted and featurized, otherwise the
    expected start of the quarantine reason.
    """
    real = sorted((sample / "Training" / "Banana").glob("*.jpg"))[0].read_bytes()
    photo = Image.open(io.BytesIO(real)).convert("RGB")
    outcomes: dict[str, str] = {}

    def put(relative: str, data: bytes, outcome: str) -> None:
        path = target / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        outcomes[relative] = outcome

    def encode(image: Image.Image, fmt: str, **kwargs) -> bytes:
        buffer = io.BytesIO()
        image.save(buffer, fmt, **kwargs)
        return buffer.getvalue()

    put("Odd/Banana/zero.jpg", b"", "empty file")
    put("Odd/Banana/truncated.jpg", real[: len(real) // 2], "corrupt image data")
    put("Odd/Banana/notes.jpg", b"this is a text file, not a photo\n", "not a decodable image")
    put("Odd/Banana/readme.txt", b"a stray text file\n", "unsupported file type")
    put("Odd/Banana/png-named.jpg", encode(photo, "PNG"), "features")
    put("Odd/Banana/cmyk.jpg", encode(photo.convert("CMYK"), "JPEG"), "features")
    put("Odd/Banana/gray.jpg", encode(photo.convert("L"), "JPEG"), "features")
    put("Odd/Banana/rgba.png", encode(photo.convert("RGBA"), "PNG"), "features")
    sixteen = Image.fromarray(np.asarray(photo.convert("L"), "uint16") * 257)
    put("Odd/Banana/gray16.png", encode(sixteen, "PNG"), "features")
    put("Odd/Banana/tiny.png", encode(Image.new("RGB", (1, 1), (200, 30, 30)), "PNG"), "features")
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90° clockwise on display
    put("Odd/Banana/rotated.JPG", encode(photo, "JPEG", exif=exif), "features")
    put("Odd/Banana/bomb.png", encode(Image.new("1", (10_000, 8_000)), "PNG"), "image too large")
    put("Odd/Crème brûlée 🍓/photo één.jpeg", real, "features")
    put("Odd/Banana copy/same-bytes.jpg", real, "features")
    return outcomes
