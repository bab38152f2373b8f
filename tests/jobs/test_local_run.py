"""The local pipeline command: every stage through a real spark-submit, as on EMR."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from samples import copy_subset


@pytest.mark.slow
def test_fruits_local_runs_the_three_stages_and_prints_a_summary(
    sample_dir, weights_path, tmp_path
):
    images = copy_subset(sample_dir, tmp_path / "in", ["Apple Red 1", "Lemon", "Pear"], 3)
    (images / "Training" / "Lemon" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 broken")
    command = [
        sys.executable, "-m", "fruits.local",
        "--input", str(images),
        "--output", str(tmp_path / "out"),
        "--date", "2026-01-02",
        "--weights", str(weights_path),
        "--k", "4",
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]

    out = tmp_path / "out"
    for dataset in ("images", "features", "pca", "quarantine", "reports"):
        assert (out / dataset / "ds=2026-01-02").is_dir(), dataset
    pca_report = json.loads((out / "pca/ds=2026-01-02/report.json").read_text())
    assert pca_report["k"] == 4 and pca_report["n_images"] == 18
    assert "images loaded     18" in done.stdout
    assert "quarantined       1 (not a decodable image" in done.stdout
    assert "seen = featurized + quarantined: OK" in done.stdout


def test_a_failing_stage_stops_the_pipeline_with_its_name(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "fruits.local", "--input", str(tmp_path / "missing")],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=Path(__file__).parent,
    )
    assert done.returncode == 1
    # spark-submit's Python driver writes its stderr to stdout.
    assert "fruits load: error: input not found" in done.stdout + done.stderr
    assert "stage load failed" in done.stderr
