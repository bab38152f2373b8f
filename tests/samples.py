"""Test inputs built from the real Fruits-360 sample: subsets and a corpus of odd files."""

from __future__ import annotations

import io
import os
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


FEATURIZED, QUARANTINED, SKIPPED = "featurized", "quarantined", "skipped"


def write_bad_inputs(sample: Path, target: Path) -> dict[str, tuple[str, str]]:
    """Odd, broken and hostile files built from real sample images, written under ``target``
    (the input root, which already holds ``Training/<Class>/``).

    Returns ``{relative path: (status, start of the reason)}``; featurized files have reason "".
    """
    real = sorted((sample / "Training" / "Banana").glob("*.jpg"))[0].read_bytes()
    photo = Image.open(io.BytesIO(real)).convert("RGB")
    outcomes: dict[str, tuple[str, str]] = {}

    def put(relative: str, data: bytes, status: str, reason: str = "") -> None:
        path = target / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        outcomes[relative] = (status, reason)

    def link(relative: str, to: str, reason: str = "symbolic link: not followed") -> None:
        path = target / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.symlink_to(to)
        outcomes[relative] = (SKIPPED, reason)

    def encode(image: Image.Image, fmt: str, **kwargs) -> bytes:
        buffer = io.BytesIO()
        image.save(buffer, fmt, **kwargs)
        return buffer.getvalue()

    put("Odd/Banana/zero.jpg", b"", QUARANTINED, "empty file")
    put("Odd/Banana/truncated.jpg", real[: len(real) // 2], QUARANTINED, "corrupt image data")
    put("Odd/Banana/notes.jpg", b"this is a text file, not a photo\n", QUARANTINED,
        "not a decodable image")  # fmt: skip
    put("Odd/Banana/readme.txt", b"a stray text file\n", QUARANTINED, "not a decodable image")
    put("Odd/Banana/png-named.jpg", encode(photo, "PNG"), FEATURIZED)
    put("Odd/Banana/webp-named.jpg", encode(photo, "WEBP", quality=90), FEATURIZED)
    put("Odd/Banana/gif-named.jpg", encode(photo, "GIF"), QUARANTINED,
        "unsupported image format: GIF")  # fmt: skip
    put("Odd/Banana/eps-named.jpg", b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 1 1\n",
        QUARANTINED, "unsupported image format: PostScript/EPS")  # fmt: skip
    put("Odd/Banana/cmyk.jpg", encode(photo.convert("CMYK"), "JPEG"), FEATURIZED)
    put("Odd/Banana/gray.jpg", encode(photo.convert("L"), "JPEG"), FEATURIZED)
    put("Odd/Banana/rgba.png", encode(photo.convert("RGBA"), "PNG"), FEATURIZED)
    sixteen = Image.fromarray(np.asarray(photo.convert("L"), "uint16") * 257)
    put("Odd/Banana/gray16.png", encode(sixteen, "PNG"), FEATURIZED)
    put("Odd/Banana/tiny.png", encode(Image.new("RGB", (1, 1), (200, 30, 30)), "PNG"), FEATURIZED)
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90° clockwise on display
    put("Odd/Banana/rotated.JPG", encode(photo, "JPEG", exif=exif), FEATURIZED)
    put("Odd/Banana/bomb.png", encode(Image.new("1", (10_000, 8_000)), "PNG"), QUARANTINED,
        "image too large")  # fmt: skip
    put("Odd/Crème brûlée 🍓/photo één.jpeg", real, FEATURIZED)
    put("Odd/Banana copy/same-bytes.jpg", real, FEATURIZED)
    # Any legal file name loads: a colon (Hadoop's checksum file could not be named), URI and
    # glob characters, a newline.
    put("Odd/Banana/time 12:30 #1 50% [a]{b}*?.jpg", real, FEATURIZED)
    put("Odd/Banana/two\nlines.jpg", real, FEATURIZED)
    # One class typed on a Mac (NFD) and on Linux (NFC): one label.
    put("Odd/Cafe\u0301/mac.jpg", real, FEATURIZED)
    put("Odd/Caf\u00e9/linux.jpg", real, FEATURIZED)
    # No label folder: at the root, or right under a split folder.
    put("loose.jpg", real, QUARANTINED, "no label folder")
    put("Training/loose.jpg", real, QUARANTINED, "no label folder")
    put("Odd/Banana/.DS_Store", b"\x00\x00\x00\x01Bud1", SKIPPED, "hidden file")
    # Links are never followed: not into the input, not out of it, not in a loop, not dangling.
    link("Odd/Banana/inside-link.jpg", "same-bytes.jpg")
    link("Odd/Banana/outside-link.jpg", "/etc/hostname")
    link("Odd/Banana/dangling.jpg", "no-such-file.jpg")
    link("Odd/loop", "..")
    fifo = target / "Odd" / "Banana" / "fifo.jpg"
    os.mkfifo(fifo)
    outcomes["Odd/Banana/fifo.jpg"] = (SKIPPED, "not a regular file")
    return outcomes
