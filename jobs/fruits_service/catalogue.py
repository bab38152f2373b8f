"""The fruits the app knows: an id per class label, its facts (fruits.fruit_info) and names.

Ids are URL-friendly slugs of the labels (``Apple Braeburn`` → ``apple-braeburn``).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from typing import Any

from fruits.fruit_info import info_for, table

_CULTIVAR = re.compile(r"'([^']+)'")


def fruit_id(label: str) -> str:
    """``Apple Red 1`` → ``apple-red-1``; accents dropped, other characters become dashes."""
    ascii_text = unicodedata.normalize("NFKD", label).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-") or "fruit"


def names(label: str | None) -> dict[str, str | None]:
    """``fruit`` (common name) and ``variety`` (the cultivar the species names, if any) of a
    label, from its facts; both None for a label without facts or no label."""
    info = info_for(label) if label else None
    if info is None:
        return {"fruit": None, "variety": None}
    cultivar = _CULTIVAR.search(info.species)
    return {"fruit": info.common_name, "variety": cultivar.group(1) if cultivar else None}


def entry(label: str, served: bool) -> dict[str, Any]:
    info = info_for(label)
    return {
        "id": fruit_id(label),
        "label": label,
        **names(label),
        "in_model": served,
        "info": info.as_dict() if info else None,
    }


def catalogue(model_labels: Iterable[str]) -> list[dict[str, Any]]:
    """Every fruit with facts and every class of the served model, by id."""
    served = set(model_labels)
    labels = sorted(set(table()) | served, key=fruit_id)
    return [entry(label, label in served) for label in labels]


def find(fruit: str, model_labels: Iterable[str]) -> dict[str, Any] | None:
    """The entry whose id (or exact label) is ``fruit``."""
    for item in catalogue(model_labels):
        if fruit in (item["id"], item["label"]):
            return item
    return None
