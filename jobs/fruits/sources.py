"""Labelled sources: what each class folder of a source means — which fruit, which varieties.

A **source** is a folder of labelled photos (its name: the root folder's name). The load stage
gives every image its ``source``, ``source_root`` and ``class_path`` (the folders between the
split folder and the file: ``Fruit/Apple/Granny-Smith`` or ``Apple Braeburn``). A source may
carry a mapping at ``<source_root>/fruit_map.csv``:

    grocery_class,fruit,fruits360_labels
    Fruit/Apple/Granny-Smith,apple,Apple Granny Smith
    Fruit/Melon/Watermelon,watermelon,
    Packages/Milk/Arla-Standard-Milk,,

first column the class path, ``fruit`` the fruit it is (empty: not a fruit we know — a real
negative), then the candidate varieties, ``;``-separated (column ``varieties`` or
``fruits360_labels``). A class path missing from the mapping takes its nearest mapped parent
folder (``Fruit/Apple`` for ``Fruit/Apple/New-Variety``). Without a mapping — or for a class
path the mapping does not cover — a class is named by its folder (``label``): a variety of the
catalogue (``data/fruit_info.csv``: ``Apple Braeburn`` → ``apple``), else a fruit of its own
name (``Fig`` → ``fig``).

Each (source, class path) is one class of the classifier (:func:`class_name`); its fruit and
variety decide the answers. Pure functions: the train stage reads the CSVs and applies them.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

FRUIT_MAP = "fruit_map.csv"
VARIETY_COLUMNS = ("varieties", "fruits360_labels")


@dataclass(frozen=True)
class ClassTarget:
    """What one class folder is. ``fruit`` None: not a fruit we know (a negative)."""

    fruit: str | None
    varieties: tuple[str, ...] = ()
    mapped_by: str = "label"  # "map", "catalogue" or "label"

    @property
    def variety(self) -> str | None:
        """The one variety every image of the class is, when the class names just one."""
        return self.varieties[0] if len(self.varieties) == 1 else None


FruitMap = Mapping[str, ClassTarget]


def _clean_path(path: str) -> str:
    return "/".join(part for part in path.replace("\\", "/").split("/") if part)


def parse_fruit_map(text: str, known_varieties: Mapping[str, str] | None = None) -> FruitMap:
    """The mapping CSV's rows by class path.

    ``known_varieties`` (variety → fruit, the catalogue) checks the varieties: a variety the
    catalogue gives another fruit is an error, so a typo cannot teach the model nonsense.
    """
    reader = csv.reader(io.StringIO(text.lstrip("\ufeff")))
    header = [h.strip().lower() for h in next(reader, [])]
    if len(header) < 2 or "fruit" not in header[1:]:
        raise ValueError(f"{FRUIT_MAP}: expected a header 'class_path,fruit[,varieties]'")
    fruit_at = header.index("fruit", 1)
    variety_at = next((header.index(c) for c in VARIETY_COLUMNS if c in header), None)
    targets: dict[str, ClassTarget] = {}
    for number, row in enumerate(reader, start=2):
        if not row or not "".join(row).strip():
            continue
        cells = [*row, *[""] * len(header)]
        path = _clean_path(cells[0].strip())
        fruit = normalise_fruit(cells[fruit_at]) or None
        varieties = tuple(
            v.strip() for v in (cells[variety_at] if variety_at else "").split(";") if v.strip()
        )
        if fruit is None and varieties:
            raise ValueError(f"{FRUIT_MAP} line {number}: varieties {varieties} but no fruit")
        for variety in varieties:
            known = (known_varieties or {}).get(variety)
            if known_varieties is not None and known is not None and known != fruit:
                raise ValueError(
                    f"{FRUIT_MAP} line {number}: {variety!r} is a {known}, not a {fruit}"
                )
        if path in targets:
            raise ValueError(f"{FRUIT_MAP} line {number}: {path!r} mapped twice")
        targets[path] = ClassTarget(fruit, varieties, "map")
    return targets


def normalise_fruit(name: str) -> str:
    """A fruit name as the catalogue spells it: lower case, single spaces (``Passion-Fruit``
    → ``passion fruit``)."""
    return re.sub(r"[\s_-]+", " ", name).strip().lower()


def target(
    class_path: str,
    label: str,
    fruit_map: FruitMap | None,
    catalogue: Mapping[str, str],
) -> ClassTarget:
    """What the class at ``class_path`` (folder ``label``) of a source is.

    ``fruit_map``: the source's mapping (None without one); ``catalogue``: variety → fruit.
    """
    if fruit_map:
        parts = _clean_path(class_path).split("/")
        for end in range(len(parts), 0, -1):
            mapped = fruit_map.get("/".join(parts[:end]))
            if mapped is not None:
                return mapped
    if label in catalogue:
        return ClassTarget(catalogue[label], (label,), "catalogue")
    return ClassTarget(normalise_fruit(label), (), "label")


def class_name(source: str, class_path: str) -> str:
    """The classifier's class for a source's class folder: ``source/class_path``."""
    return f"{source}/{_clean_path(class_path)}"


@dataclass(frozen=True)
class ClassInfo:
    """One class of the classifier: its name, source and what it is."""

    name: str
    source: str
    class_path: str
    fruit: str | None
    variety: str | None
    mapped_by: str

    def as_dict(self) -> dict[str, str | None]:
        return {
            "class": self.name,
            "source": self.source,
            "class_path": self.class_path,
            "fruit": self.fruit,
            "variety": self.variety,
            "mapped_by": self.mapped_by,
        }


def class_table(
    folders: Iterable[tuple[str, str, str]],
    fruit_maps: Mapping[str, FruitMap | None],
    catalogue: Mapping[str, str],
) -> dict[str, ClassInfo]:
    """Every class, by name, from ``(source, class_path, label)`` triples and each source's
    mapping (``fruit_maps[source]``, None without one)."""
    table: dict[str, ClassInfo] = {}
    for source, class_path, label in folders:
        name = class_name(source, class_path)
        what = target(class_path, label, fruit_maps.get(source), catalogue)
        table[name] = ClassInfo(
            name, source, _clean_path(class_path), what.fruit, what.variety, what.mapped_by
        )
    return dict(sorted(table.items()))
