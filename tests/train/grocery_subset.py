"""A few classes of the grocery phone photos, copied as a source of their own."""

from __future__ import annotations

import shutil
from pathlib import Path

# Grocery classes of the shared run: a variety the catalogue knows, a fruit, a fruit Fruits-360
# lacks, tomatoes (a vegetable, yet a catalogue fruit) and three real negatives.
GROCERY_CLASSES = [
    "Fruit/Apple/Granny-Smith",
    "Fruit/Pear/Conference",
    "Fruit/Melon/Watermelon",
    "Vegetables/Tomato/Vine-Tomato",
    "Packages/Milk/Arla-Standard-Milk",
    "Packages/Juice/Bravo-Orange-Juice",
    "Vegetables/Carrots",
]
GROCERY_TRAIN_PER_CLASS = 8


def copy_grocery(grocery: Path, target: Path) -> Path:
    """``GROCERY_CLASSES``: 8 ``train`` images each, every ``val`` image, and the source's
    ``fruit_map.csv``, under a root named like the shared one (the source's name)."""
    for split, limit in (("train", GROCERY_TRAIN_PER_CLASS), ("val", None)):
        for class_path in GROCERY_CLASSES:
            files = sorted((grocery / split / class_path).glob("*.jpg"))[:limit]
            (target / split / class_path).mkdir(parents=True, exist_ok=True)
            for file in files:
                shutil.copy(file, target / split / class_path / file.name)
    shutil.copy(grocery / "fruit_map.csv", target / "fruit_map.csv")
    return target
