"""Load stage on real files: every listed file accounted for, labels, hostile names and links."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from fruits import load
from fruits.errors import InputError
from pipeline import current, paths, run_stages
from samples import FEATURIZED, SMALL_CLASSES, copy_subset


def _relative(path: str, root: Path) -> str:
    return str(Path(path.removeprefix("file:")).relative_to(root))


def test_every_listed_file_is_loaded_quarantined_or_skipped_file_by_file(stages_run, spark):
    report = stages_run.load
    entries = [p for p in stages_run.input.rglob("*") if p.is_file() or p.is_symlink()]
    entries += [p for p in stages_run.input.rglob("*") if p.is_fifo()]
    listed = {str(p.relative_to(stages_run.input)) for p in entries}
    assert report["listed"] == report["new"] == len(listed)
    assert report["listed"] == report["loaded"] + report["quarantined"] + report["skipped"]

    events = current(spark, stages_run.paths, "images").collect()
    by_path = {_relative(r.path, stages_run.input): r for r in events}
    assert set(by_path) == listed  # each file exactly once, no link followed into more rows
    for path, (status, reason) in stages_run.bad_inputs.items():
        expected_status = "loaded" if status == FEATURIZED else status
        assert by_path[path].status == expected_status, (path, by_path[path].reason)
        assert (by_path[path].reason or "").startswith(reason), (path, by_path[path].reason)
    others = [r for p, r in by_path.items() if p not in stages_run.bad_inputs]
    assert others and all(r.status == "loaded" for r in others)


def test_links_are_never_followed(stages_run, spark):
    events = current(spark, stages_run.paths, "images").collect()
    assert not [r for r in events if "/loop/" in r.path]  # the loop added no file
    outside = next(r for r in events if r.path.endswith("outside-link.jpg"))
    assert (outside.status, outside.content, outside.image_id) == ("skipped", None, None)


def test_labels_keep_spaces_accents_and_emoji_in_one_unicode_form(stages_run, spark):
    rows = current(spark, stages_run.paths, "images").filter("status = 'loaded'").collect()
    labels = {r.label for r in rows}
    assert set(SMALL_CLASSES) <= labels
    assert "Crème brûlée 🍓" in labels
    assert "Café" in labels and "Cafe\u0301" not in labels  # NFD folder name normalised
    assert stages_run.load["labels_normalised"] == {"Café": "Cafe\u0301"}
    by_name = {r.path.rsplit("/", 1)[-1]: r for r in rows}
    assert by_name["photo één.jpeg"].split is None
    assert by_name["mac.jpg"].class_path == "Odd/Café" and by_name["mac.jpg"].source == "input"
    splits = {r.split for r in rows if r.label == "Apple Braeburn"}
    assert splits == {"Training", "Test"}
    assert stages_run.load["images_by_split"]["Training"] == len(SMALL_CLASSES) * 4


def test_loaded_rows_keep_file_metadata_and_content_hash(stages_run, spark):
    row = next(
        r
        for r in current(spark, stages_run.paths, "images").collect()
        if r.label == "Kiwi" and r.split == "Test"
    )
    local = stages_run.input / "Test" / "Kiwi" / row.path.rsplit("/", 1)[-1]
    data = local.read_bytes()
    assert row.length == len(data)
    assert row.image_id == hashlib.sha256(data).hexdigest()
    assert bytes(row.content) == data
    assert (row.format, row.width, row.height, row.mode) == ("JPEG", 100, 100, "RGB")
    assert row.modificationTime is not None


def test_reasons_are_readable_and_reproducible(stages_run, spark):
    rows = current(spark, stages_run.paths, "images").filter("reason IS NOT NULL").collect()
    reasons = {r.path.rsplit("/", 1)[-1]: r.reason for r in rows}
    assert reasons["bomb.png"] == (
        "image too large: 10000x8000 pixels exceeds the 50000000 pixel limit"
    )
    assert reasons["gif-named.jpg"] == (
        "unsupported image format: GIF (only JPEG, PNG, WEBP are read)"
    )
    assert not [r for r in reasons.values() if " at 0x" in r]  # no object addresses


def test_input_paths_are_taken_literally(spark, sample_dir, weights_path, tmp_path):
    """``photos[1]`` is a folder name, not a glob matching ``photos1``."""
    literal = copy_subset(sample_dir, tmp_path / "photos[1]", ["Kiwi"], 1, ("Training",))
    copy_subset(sample_dir, tmp_path / "photos1", ["Banana", "Lemon"], 1, ("Training",))
    report = run_stages(spark, paths([literal], tmp_path / "out", "2026-05-01"), weights_path,
                        ("load",))["load"]  # fmt: skip
    assert (report["listed"], report["images_by_label"]) == (1, {"Kiwi": 1})
    assert report["sources"] == {"photos[1]": str(literal)}


def test_missing_or_empty_input_is_a_clear_error_and_nothing_is_written(spark, tmp_path):
    (tmp_path / "empty").mkdir()
    for missing in (tmp_path / "nope", tmp_path / "empty"):
        run_paths = paths([missing], tmp_path / "out", "2026-05-02")
        with pytest.raises(InputError, match=r"input not found|has no files"):
            run_stages(spark, run_paths, "imagenet", ("load",))
    assert not (tmp_path / "out" / "images").exists()


def test_command_line_reports_bad_input_in_one_line(tmp_path, capsys):
    good = tmp_path / "in" / "Kiwi"
    good.mkdir(parents=True)
    for argv, message in (
        (["--input", str(tmp_path / "nope"), "--ds", "2026-01-01"], "input not found"),
        (
            ["--input", str(good.parent), "--ds", "x/../../elsewhere"],
            "--date/--ds must be an ISO date",
        ),
    ):
        with pytest.raises(SystemExit) as exited:
            load.main([*argv, "--root", str(tmp_path / "out")])
        assert exited.value.code == 2
        assert f"fruits load: error: {message}" in capsys.readouterr().err
    assert not (tmp_path / "elsewhere").exists() and not (tmp_path / "out" / "images").exists()
