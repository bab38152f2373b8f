"""What a file's place under its source root says: label, split and class path.

    <root>/[<anything>/]<split>/<class folders…>/<file>      e.g. Training/Apple Braeburn/1.jpg
    <root>/<class folders…>/<file>                           e.g. Fruit/Apple/Granny-Smith/1.jpg

* ``split``: the nearest folder named a split or one of its aliases (``train`` → ``Training``,
  ``val`` → ``Validation``, …, any case); None when there is none.
* ``class_path``: the folders between the split folder (or the root) and the file,
  ``/``-joined (``Fruit/Apple/Granny-Smith``): what a source's mapping file keys on.
* ``label``: the parent folder, kept as written (spaces, accents, emoji) but in Unicode NFC, so
  ``Café`` typed on a Mac (NFD) and on Linux (NFC) is one class.

A file with no class folder (directly under the root or a split folder) has no label: the load
stage quarantines it rather than inventing one from the root's name.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

from fruits.config import SPLIT_ALIASES


@dataclass(frozen=True)
class PathLabels:
    label: str | None
    split: str | None
    class_path: str | None
    spelling: str | None  # the folder name as written, when NFC changed it


def segments(uri: str) -> list[str]:
    """Path components of a local path or URI (``file:/a/b``, ``s3://bucket/a/b``)."""
    without_scheme = uri.split("://", 1)[-1] if "://" in uri else uri.split(":", 1)[-1]
    return [part for part in without_scheme.split("/") if part]


def describe(path: str, root: str) -> PathLabels:
    """Label, split and class path of ``path``, a file under the source root ``root``."""
    inside = segments(path)[len(segments(root)) :]
    folders = inside[:-1]
    split, start = None, 0
    for index in range(len(folders) - 1, -1, -1):
        if folders[index].lower() in SPLIT_ALIASES:
            split, start = SPLIT_ALIASES[folders[index].lower()], index + 1
            break
    classes = folders[start:]
    if not classes:
        return PathLabels(None, split, None, None)
    written = classes[-1]
    label = unicodedata.normalize("NFC", written)
    class_path = "/".join(unicodedata.normalize("NFC", part) for part in classes)
    return PathLabels(label, split, class_path, written if written != label else None)


def source_name(root: str) -> str:
    """A source is named after its root folder (``…/fruits360-sample`` → ``fruits360-sample``)."""
    parts = segments(root)
    return unicodedata.normalize("NFC", parts[-1]) if parts else root
