"""Load stage on real files: labels, splits, quarantine, nothing lost."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from fruits import load
from fruits.errors import InputError
from samples import SMALL_CLASSES


def test_every_listed_file_is_loaded_or_quarantined(stages_run, spark):
    report = stages_run.load
    files = [p for p in stages_run.input.rglob("*") if p.is_file()]
    assert report["files_seen"] == len(files)
    assert report["images_loaded"] + report["quarantined"] == len(files)

    loaded = {r.path for r in spark.read.parquet(stages_run.paths.images).collect()}
    quarantined = {
        r.path for r in spark.read.parquet(stages_run.paths.quarantine("load")).collect()
    }
    assert not loaded & quarantined
    assert {p.removeprefix("file:") for p in loaded | quarantined} == {str(f) for f in files}


def test_labels_keep_spaces_accents_and_emoji_and_splits_are_detected(stages_run, spark):
    rows = spark.read.parquet(stages_run.paths.images).collect()
    labels = {r.label for r in rows}
    assert set(SMALL_CLASSES) <= labels
    assert "Crème brûlée 🍓" in labels
    by_path = {r.path.rsplit("/", 2)[-2] + "/" + r.path.rsplit("/", 1)[-1]: r for r in rows}
    assert by_path["Crème brûlée 🍓/photo één.jpeg"].split is None
    splits = {r.split for r in rows if r.label == "Apple Braeburn"}
    assert splits == {"Training", "Test"}
    assert stages_run.load["images_by_split"]["Training"] == len(SMALL_CLASSES) * 4


def test_loaded_rows_keep_file_metadata_and_content_hash(stages_run, spark):
    row = next(
        r
        for r in spark.read.parquet(stages_run.paths.images).collect()
        if r.label == "Kiwi" and r.split == "Test"
    )
    local = stages_run.input / "Test" / "Kiwi" / row.path.rsplit("/", 1)[-1]
    data = local.read_bytes()
    assert row.length == len(data)
    assert row.image_id == hashlib.sha256(data).hexdigest()
    assert bytes(row.content) == data
    assert (row.format, row.width, row.height, row.mode) == ("JPEG", 100, 100, "RGB")
    assert row.modificationTime is not None


def test_bad_files_are_quarantined_with_their_reason(stages_run, spark):
    rows = spark.read.parquet(stages_run.paths.quarantine("load")).collect()
    reasons = {
        str(Path(r.path.removeprefix("file:")).relative_to(stages_run.input)): r.reason
        for r in rows
    }
    expected = {p: o for p, o in stages_run.bad_inputs.items() if o != "features"}
    assert set(reasons) == set(expected)
    for path, start in expected.items():
        assert reasons[path].startswith(start), (path, reasons[path])
    assert all(r.stage == "load" for r in rows)
    assert reasons["Odd/Banana/bomb.png"] == (
        "image too large: 10000x8000 pixels exceeds the 50000000 pixel limit"
    )


def test_missing_input_is_a_clear_error(spark, tmp_path):
    with pytest.raises(InputError, match="input not found"):
        load.run(spark, str(tmp_path / "nope"), str(tmp_path / "o"), str(tmp_path / "q"))


def test_command_line_reports_bad_input_in_one_line(spark, tmp_path, capsys):
    with pytest.raises(SystemExit) as exited:
        load.main(["--input", str(tmp_path / "nope"), "--output", "o", "--quarantine", "q"])
    assert exited.value.code == 2
    assert "fruits load: error: input not found" in capsys.readouterr().err
