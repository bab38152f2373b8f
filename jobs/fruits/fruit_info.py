"""Curated facts, shipped as package data: per fruit (``data/fruits.csv``) and per variety
(``data/fruit_info.csv``, one row per Fruits-360 class, with the fruit it is).

A user first wants the fruit ("pear"), then, when the model is sure of it, the variety
("Pear Abate"): :func:`fruit_facts` and :func:`info_for` answer each level; :func:`catalogue`
(variety → fruit) is what :mod:`fruits.sources` maps class folders with.
"""

from __future__ import annotations

import csv
import io
from dataclasses import asdict, dataclass, fields
from functools import cache
from importlib import resources
from typing import Any

TABLE = "data/fruit_info.csv"
FRUITS = "data/fruits.csv"


@dataclass(frozen=True)
class FruitInfo:
    """Facts about a variety (``label``: the class folder name, e.g. ``Pear Abate``) or, for
    fruit-level facts, about a fruit (``label`` = ``fruit``, e.g. ``pear``)."""

    label: str
    fruit: str
    common_name: str
    species: str
    family: str
    origin: str
    season: str
    description: str

    @property
    def level(self) -> str:
        return "fruit" if self.label == self.fruit else "variety"

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "level": self.level}


VARIETY_COLUMNS = [f.name for f in fields(FruitInfo)]
FRUIT_COLUMNS = VARIETY_COLUMNS[1:]  # fruit, common_name, …


def _rows(name: str, columns: list[str]) -> list[dict[str, str]]:
    text = resources.files("fruits").joinpath(name).read_text(encoding="utf-8")
    rows = csv.DictReader(io.StringIO(text))
    if rows.fieldnames != columns:
        raise ValueError(f"{name}: columns {rows.fieldnames}, expected {columns}")
    return list(rows)


@cache
def table() -> dict[str, FruitInfo]:
    """Every variety, by label."""
    return {row["label"]: FruitInfo(**row) for row in _rows(TABLE, VARIETY_COLUMNS)}


@cache
def fruit_table() -> dict[str, FruitInfo]:
    """Every fruit, by name (lower case: ``pear``, ``passion fruit``)."""
    rows = _rows(FRUITS, FRUIT_COLUMNS)
    return {row["fruit"]: FruitInfo(label=row["fruit"], **row) for row in rows}


def catalogue() -> dict[str, str]:
    """Variety label → fruit (``Pear Abate`` → ``pear``)."""
    return {label: info.fruit for label, info in table().items()}


def info_for(label: str) -> FruitInfo | None:
    """The facts for the variety ``label``, or None for one the table does not list."""
    return table().get(label)


def fruit_facts(fruit: str) -> FruitInfo | None:
    """The facts for ``fruit``, or None for a fruit the table does not list."""
    return fruit_table().get(fruit)
