"""The curated fruit table: one complete row for every class of the sample."""

from __future__ import annotations

from dataclasses import fields

from fruits.fruit_info import FruitInfo, info_for, table


def test_every_class_of_the_sample_has_a_complete_row(sample_dir):
    classes = {p.name for split in ("Training", "Test") for p in (sample_dir / split).iterdir()}
    rows = table()
    assert len(classes) == 81
    assert classes <= set(rows)
    for label in classes:
        info = rows[label]
        assert info.label == label
        assert all(getattr(info, f.name).strip() for f in fields(FruitInfo)), label


def test_lookup():
    assert info_for("Kiwi").species == "Actinidia deliciosa"
    assert info_for("Banana").family == "Musaceae"
    assert info_for("unknown") is None
