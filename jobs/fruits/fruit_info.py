"""Curated facts about each fruit class, shipped as package data (``data/fruit_info.csv``)."""

from __future__ import annotations

import csv
import io
from dataclasses import asdict, dataclass, fields
from functools import cache
from importlib import resources
from typing import Any

TABLE = "data/fruit_info.csv"


@dataclass(frozen=True)
class FruitInfo:
    """One row of the table; ``label`` is the class (folder) name the model predicts."""

    label: str
    common_name: str
    species: str
    family: str
    origin: str
    season: str
    description: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@cache
def table() -> dict[str, FruitInfo]:
    """Every row, by label."""
    text = resources.files("fruits").joinpath(TABLE).read_text(encoding="utf-8")
    rows = csv.DictReader(io.StringIO(text))
    names = [f.name for f in fields(FruitInfo)]
    if rows.fieldnames != names:
        raise ValueError(f"{TABLE}: columns {rows.fieldnames}, expected {names}")
    return {row["label"]: FruitInfo(**row) for row in rows}


def info_for(label: str) -> FruitInfo | None:
    """The facts for ``label``, or None for a class the table does not list."""
    return table().get(label)
