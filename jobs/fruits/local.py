"""Run the pipeline on an embedded Spark: each stage of :data:`fruits.stages.STAGES` through
a local ``spark-submit``, exactly as EMR runs it, then print a short summary.

    fruits-local --input ../shared/data/fruits360-sample --output output \\
        --weights ../shared/models/mobilenet_v2_1.0_224_imagenet_no_top.weights.h5
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from fruits.config import DEFAULT_VARIANCE, DEFAULT_WEIGHTS
from fruits.stages import STAGES, PipelineOptions, RunPaths, Stage

JOBS_DIR = Path(__file__).resolve().parents[1]
REPO_ROOT = JOBS_DIR.parent
DEFAULT_INPUT = REPO_ROOT.parent / "shared" / "data" / "fruits360-sample"
DEFAULT_MASTER = "local[2]"
DRIVER_MEMORY = "4g"


class StageFailed(RuntimeError):
    """A stage's spark-submit exited non-zero; the message carries its last output lines."""


def spark_submit() -> str:
    """The ``spark-submit`` of this environment's pyspark."""
    beside = Path(sys.executable).with_name("spark-submit")
    found = str(beside) if beside.exists() else shutil.which("spark-submit")
    if not found:
        raise FileNotFoundError("spark-submit not found: install the project (pip install -e .)")
    return found


def stage_command(
    stage: Stage, paths: RunPaths, options: PipelineOptions, master: str = DEFAULT_MASTER
) -> list[str]:
    return [
        spark_submit(),
        "--master", master,
        "--driver-memory", DRIVER_MEMORY,
        "--conf", f"spark.pyspark.python={sys.executable}",
        "--conf", f"spark.pyspark.driver.python={sys.executable}",
        str(JOBS_DIR / stage.script),
        *stage.args(paths, options),
    ]  # fmt: skip


def run_stage(
    stage: Stage, paths: RunPaths, options: PipelineOptions, master: str = DEFAULT_MASTER
) -> dict[str, Any]:
    """Run one stage; return its report. Output streams through to this process's."""
    command = stage_command(stage, paths, options, master)
    env = {
        "TF_CPP_MIN_LOG_LEVEL": "2",
        "SPARK_CONF_DIR": str(REPO_ROOT / "conf" / "spark"),
        **os.environ,
        "PYSPARK_PYTHON": sys.executable,
        "PYTHONUNBUFFERED": "1",
    }
    completed = subprocess.run(command, env=env, check=False)
    if completed.returncode != 0:
        raise StageFailed(f"stage {stage.name} failed (exit {completed.returncode})")
    return json.loads(Path(_local(paths.report(stage.name))).read_text())


def _local(uri: str) -> str:
    return uri.removeprefix("file://")


def run_pipeline(
    paths: RunPaths, options: PipelineOptions, master: str = DEFAULT_MASTER
) -> dict[str, dict[str, Any]]:
    """All stages in order; returns the reports by stage name."""
    return {stage.name: run_stage(stage, paths, options, master) for stage in STAGES}


def summary(paths: RunPaths, reports: dict[str, dict[str, Any]]) -> str:
    load, featurize, pca = reports["load"], reports["featurize"], reports["pca"]
    quarantined = load["quarantined"] + featurize["quarantined"]
    featurized = featurize["already_featurized"] + featurize["featurized"]
    balanced = load["files_seen"] == featurized + quarantined
    return "\n".join(
        [
            f"Fruits! pipeline, run {paths.ds}: {paths.input}",
            f"  files seen        {load['files_seen']}",
            f"  images loaded     {load['images_loaded']} ({load['distinct_images']} distinct)",
            f"  featurized        {featurize['featurized']} new"
            f" ({featurize['computed']} computed, {featurize['already_featurized']} done before)",
            f"  quarantined       {quarantined} {_reasons(load, featurize)}",
            f"  check             seen = featurized + quarantined: {'OK' if balanced else 'FAIL'}",
            f"  PCA               k = {pca['k']} ({pca['k_selection']}), "
            f"explained variance {pca['total_explained_variance']:.1%}",
            f"  classifier        {_classifier(reports.get('train'))}",
            f"  outputs           features  {paths.features}",
            f"                    pca       {paths.pca}",
            f"                    model     {paths.model}",
            f"                    quarantine {paths.quarantine('*')}",
            f"                    reports   {paths.report('*')}",
        ]
    )


def _classifier(train: dict[str, Any] | None) -> str:
    if not train:
        return "not trained"
    test, config = train["test"], train["config"]
    scores = (
        f"Test accuracy {test['accuracy']:.1%}, macro-F1 {test['macro_f1']:.3f}"
        if test
        else "no Test split"
    )
    return f"{scores} ({train['classes']} classes, {config['classifier']}, k = {config['k']})"


def _reasons(*reports: dict[str, Any]) -> str:
    merged: dict[str, int] = {}
    for report in reports:
        for reason, count in report["quarantined_by_reason"].items():
            merged[reason] = merged.get(reason, 0) + count
    return "(" + ", ".join(f"{r}: {n}" for r, n in sorted(merged.items())) + ")" if merged else ""


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        description="Run load → featurize → pca → train on an embedded Spark."
    )
    p.add_argument("--input", default=str(DEFAULT_INPUT), help="folder of images (recursive)")
    p.add_argument("--output", default=str(REPO_ROOT / "output"), help="output root folder")
    p.add_argument("--date", default=dt.date.today().isoformat(), help="logical date (ds)")
    p.add_argument(
        "--weights",
        default=os.environ.get("FRUITS_WEIGHTS", DEFAULT_WEIGHTS),
        help="'imagenet' (Keras download) or a weights file (default: $FRUITS_WEIGHTS)",
    )
    choice = p.add_mutually_exclusive_group()
    choice.add_argument("--k", type=int, help="PCA components")
    choice.add_argument("--variance", type=float, default=DEFAULT_VARIANCE)
    p.add_argument("--master", default=DEFAULT_MASTER, help="Spark master (default %(default)s)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    paths = RunPaths(
        input=str(Path(args.input).resolve()),
        root=str(Path(args.output).resolve()),
        ds=args.date,
    )
    weights = str(Path(args.weights).resolve()) if Path(args.weights).is_file() else args.weights
    options = PipelineOptions(weights=weights, k=args.k, variance=args.variance)
    try:
        reports = run_pipeline(paths, options, args.master)
    except StageFailed as exc:
        print(f"fruits-local: {exc}", file=sys.stderr)
        return 1
    print(summary(paths, reports))
    return 0


if __name__ == "__main__":
    sys.exit(main())
