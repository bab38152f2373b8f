"""The local pipeline command: every stage through a real spark-submit, as on EMR."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from samples import copy_subset


def _fruits_local(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "fruits.local", *args],
        capture_output=True,
        text=True,
        timeout=900,
        cwd=cwd,
    )


@pytest.mark.slow
def test_fruits_local_runs_the_stages_and_prints_a_line_each_and_a_summary(
    sample_dir, weights_path, tmp_path
):
    images = copy_subset(sample_dir, tmp_path / "in", ["Apple Red 1", "Lemon", "Pear"], 3)
    (images / "Training" / "Lemon" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 broken")
    done = _fruits_local(
        "--input", str(images),
        "--output", str(tmp_path / "out"),
        "--date", "2026-01-02",
        "--weights", str(weights_path),
        "--k", "4",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]

    out = tmp_path / "out"
    for dataset in ("images", "features", "pca", "quarantine", "model"):
        assert (out / dataset / "ds=2026-01-02" / "_current.json").is_file(), dataset
    pca_report = json.loads((out / "reports/ds=2026-01-02/pca.json").read_text())
    assert pca_report["k"] == 4 and pca_report["n_images"] == 18
    lines = done.stdout.splitlines()
    assert any(line.startswith("  load       19 listed: 19 new") for line in lines)
    assert any(line.startswith("  featurize  18 featurized") for line in lines)
    assert "set aside         1 quarantined, 0 skipped (not a decodable image: 1)" in done.stdout
    assert "new + changed = featurized + set aside: OK" in done.stdout
    train_report = json.loads((out / "reports/ds=2026-01-02/train.json").read_text())
    variety = train_report["domains"]["in/Test/variety"]
    assert "    in/Test/variety" in done.stdout
    assert f"top-1 {variety['top1']:.1%}, top-3 {variety['top3']:.1%} (9 images)" in done.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--input", "missing"], "input not found"),
        (["--date", "x/../../elsewhere"], "must be an ISO date"),
        (["--k", "0"], "--k must be between 1 and 1280"),
        (["--variance", "1.5"], "--variance must be in (0, 1]"),
        (["--weights", "/etc/passwd"], "is not a readable HDF5 file"),
    ],
)
def test_a_bad_argument_stops_the_run_in_one_line_before_anything_is_written(
    tmp_path, sample_dir, args, message
):
    done = _fruits_local("--input", str(sample_dir), "--output", str(tmp_path / "out"), *args,
                         cwd=tmp_path)  # fmt: skip
    assert done.returncode == 2
    assert done.stderr.strip().startswith("fruits-local: error:")
    assert message in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "out" / "images").exists() and not (tmp_path / "elsewhere").exists()


def test_an_output_root_that_is_a_file_is_one_clear_line(tmp_path, sample_dir):
    taken = tmp_path / "output"
    taken.write_text("not a folder")
    done = _fruits_local("--input", str(sample_dir), "--output", str(taken), cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.strip() == f"fruits-local: error: output {taken} is a file, not a folder"
