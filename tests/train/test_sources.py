"""Sources: a class folder's fruit and varieties, from a source's mapping CSV or the catalogue."""

from __future__ import annotations

import pytest

from fruits import sources
from fruits.fruit_info import catalogue, fruit_table, table
from fruits.sources import ClassTarget

MAP = """grocery_class,fruit,fruits360_labels
Fruit/Apple/Granny-Smith,apple,Apple Granny Smith
Fruit/Apple/Golden-Delicious,apple,Apple Golden 1;Apple Golden 2;Apple Golden 3
Fruit/Apple,apple,
Fruit/Passion-Fruit,Passion-Fruit,Passion Fruit;Maracuja
Packages/Milk/Arla-Standard-Milk,,
Vegetables,,
"""


@pytest.fixture(scope="module")
def fruit_map():
    return sources.parse_fruit_map(MAP, catalogue())


def test_a_mapping_row_gives_the_fruit_and_its_candidate_varieties(fruit_map):
    granny = sources.target("Fruit/Apple/Granny-Smith", "Granny-Smith", fruit_map, catalogue())
    assert granny == ClassTarget("apple", ("Apple Granny Smith",), "map")
    assert granny.variety == "Apple Granny Smith"
    golden = sources.target("Fruit/Apple/Golden-Delicious", "x", fruit_map, catalogue())
    assert golden.fruit == "apple" and golden.variety is None  # three candidates: no one variety
    passion = sources.target("Fruit/Passion-Fruit", "Passion-Fruit", fruit_map, catalogue())
    assert passion.fruit == "passion fruit"  # spelt as the catalogue spells fruits


def test_an_unmapped_class_takes_its_nearest_mapped_parent(fruit_map):
    new_apple = sources.target("Fruit/Apple/Pink-Lady", "Pink-Lady", fruit_map, catalogue())
    assert new_apple == ClassTarget("apple", (), "map")
    carrots = sources.target("Vegetables/Carrots", "Carrots", fruit_map, catalogue())
    assert carrots.fruit is None  # "not a fruit we know": a negative


def test_without_a_mapping_the_folder_names_a_catalogue_variety_or_a_fruit():
    assert sources.target("Pear Abate", "Pear Abate", None, catalogue()) == ClassTarget(
        "pear", ("Pear Abate",), "catalogue"
    )
    assert sources.target("Fig", "Fig", None, catalogue()) == ClassTarget("fig", (), "label")
    # A mapped source's class the mapping does not cover at all falls back the same way.
    unmapped = sources.parse_fruit_map("class_path,fruit\nFruit/Kiwi,kiwi\n")
    assert sources.target("Exotic/Kaki", "Kaki", unmapped, catalogue()).fruit == "persimmon"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("grocery_class,fruit,fruits360_labels\nFruit/Pear,pear,Apple Braeburn\n", "is a apple"),
        ("class_path,fruit\nFruit/Pear,pear\nFruit/Pear,pear\n", "mapped twice"),
        ("class_path,fruit,varieties\nPackages/Milk,,Apple Braeburn\n", "but no fruit"),
        ("just,a,header\n", "expected a header"),
    ],
)
def test_a_wrong_mapping_is_refused_with_its_line(text, message):
    with pytest.raises(ValueError, match=message):
        sources.parse_fruit_map(text, catalogue())


def test_the_class_table_names_classes_by_source_and_class_path(fruit_map):
    folders = [
        ("fruits360-sample", "Apple Braeburn", "Apple Braeburn"),
        ("grocery-store-real", "Fruit/Apple/Granny-Smith", "Granny-Smith"),
        ("grocery-store-real", "Packages/Milk/Arla-Standard-Milk", "Arla-Standard-Milk"),
    ]
    classes = sources.class_table(folders, {"grocery-store-real": fruit_map}, catalogue())
    assert list(classes) == [
        "fruits360-sample/Apple Braeburn",
        "grocery-store-real/Fruit/Apple/Granny-Smith",
        "grocery-store-real/Packages/Milk/Arla-Standard-Milk",
    ]
    braeburn = classes["fruits360-sample/Apple Braeburn"]
    assert (braeburn.fruit, braeburn.variety, braeburn.mapped_by) == (
        "apple",
        "Apple Braeburn",
        "catalogue",
    )
    milk = classes["grocery-store-real/Packages/Milk/Arla-Standard-Milk"]
    assert milk.fruit is None and milk.as_dict()["class"] == milk.name


def test_the_shared_grocery_mapping_agrees_with_the_catalogue(grocery_dir):
    """Every fruit of the grocery photos' mapping has facts, every variety is the fruit the
    catalogue says, and only tomatoes among vegetables are catalogue fruits."""
    text = (grocery_dir / sources.FRUIT_MAP).read_text(encoding="utf-8")
    fruit_map = sources.parse_fruit_map(text, catalogue())
    assert len(fruit_map) == 82
    fruits = {t.fruit for t in fruit_map.values() if t.fruit}
    assert fruits <= set(fruit_table())
    assert {"apple", "pear", "melon", "watermelon", "tomato"} <= fruits
    for path, t in fruit_map.items():
        if path.startswith("Packages/"):
            assert t.fruit is None, path
        if path.startswith("Vegetables/"):
            assert (t.fruit is not None) == path.startswith("Vegetables/Tomato/"), path
        assert all(table()[v].fruit == t.fruit for v in t.varieties), path


def test_every_variety_and_fruit_has_complete_facts():
    for info in [*table().values(), *fruit_table().values()]:
        assert all(str(v).strip() for v in info.as_dict().values()), info.label
    assert set(catalogue().values()) <= set(fruit_table())
    assert fruit_table()["pear"].level == "fruit" and table()["Pear Abate"].level == "variety"
