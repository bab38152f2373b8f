"""Run the pipeline on an embedded Spark: each stage of :data:`fruits.stages.STAGES` through
a local ``spark-submit``, exactly as EMR runs it, one line per stage, then a short summary.

    fruits-local --input ../shared/data/fruits360-sample --output output \\
        --weights ../shared/models/mobilenet_v2_1.0_224_imagenet_no_top.weights.h5

Every argument is checked before the first stage starts (:mod:`fruits.validation`): a bad
date, k, variance, weights file, input or output fails in a second with one line, exit 2, and
nothing is written.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from fruits import promotion, storage, validation
from fruits.config import DEFAULT_VARIANCE, DEFAULT_WEIGHTS, IMAGE_SIZE, RUN_RETENTION_HOURS
from fruits.errors import InputError
from fruits.layout import DEFAULT_INPUT, DEFAULT_OUTPUT, JOBS_DIR, SPARK_CONF_DIR, spark_submit
from fruits.stages import STAGES, PipelineOptions, RunPaths, Stage

DEFAULT_MASTER = "local[2]"
DRIVER_MEMORY = "4g"


class StageFailed(RuntimeError):
    """A stage's spark-submit exited non-zero."""


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
    stage: Stage,
    paths: RunPaths,
    options: PipelineOptions,
    master: str = DEFAULT_MASTER,
    quiet: bool = False,
) -> dict[str, Any]:
    """Run one stage; return its report. Its output streams through to this process's, or
    (``quiet``) is kept and shown only when the stage fails."""
    env = {
        "SPARK_CONF_DIR": str(SPARK_CONF_DIR),
        **os.environ,
        "PYSPARK_PYTHON": sys.executable,
        "PYTHONUNBUFFERED": "1",
    }
    command = stage_command(stage, paths, options, master)
    completed = subprocess.run(command, env=env, check=False, capture_output=quiet, text=True)
    if completed.returncode != 0:
        shown = f":\n{completed.stdout[-3000:]}{completed.stderr[-3000:]}" if quiet else ""
        raise StageFailed(f"stage {stage.name} failed (exit {completed.returncode}){shown}")
    return storage.read_json(paths.report(stage.name))


def validate(paths: RunPaths, options: PipelineOptions) -> None:
    """Every check a run can make before it writes anything (InputError, one line)."""
    validation.iso_date(paths.ds)
    validation.pca_choice(options.k, options.variance)
    validation.inputs(paths.inputs)
    validation.weights(options.weights)
    validation.input_size(options.input_size)
    validation.output_root(paths.root)


def stage_line(name: str, report: dict[str, Any], seconds: float) -> str:
    """One line for a finished stage: its counts and its time."""
    if name == "load":
        counts = (
            f"{report['listed']} listed: {report['new']} new, {report['changed']} changed, "
            f"{report['unchanged']} unchanged, {report['deleted']} deleted; "
            f"{report['loaded']} loaded, {report['quarantined']} quarantined, "
            f"{report['skipped']} skipped"
        )
    elif name == "featurize":
        counts = (
            f"{report['featurized']} featurized ({report['computed']} computed, "
            f"{report['reused']} reused), {report['quarantined']} quarantined, "
            f"{report['skipped']} skipped, {report['deleted']} deleted"
        )
    elif name == "pca":
        counts = f"{report['n_images']} images, k = {report['k']}"
    else:
        counts = _classifier(report)
    reused = f" (unchanged input: reused {report['reused']})" if report.get("reused") else ""
    return f"  {name:<10} {counts}{reused} — {seconds:.1f} s"


def run_pipeline(
    paths: RunPaths, options: PipelineOptions, master: str = DEFAULT_MASTER
) -> dict[str, dict[str, Any]]:
    """All stages in order, a line printed as each finishes; returns the reports by stage."""
    reports = {}
    for stage in STAGES:
        started = time.monotonic()
        reports[stage.name] = run_stage(stage, paths, options, master)
        print(stage_line(stage.name, reports[stage.name], time.monotonic() - started), flush=True)
    return reports


def summary(paths: RunPaths, reports: dict[str, dict[str, Any]], seconds: float) -> str:
    load, featurize, pca = reports["load"], reports["featurize"], reports["pca"]
    read = load["new"] + load["changed"]
    accounted = featurize["featurized"] + featurize["quarantined"] + featurize["skipped"]
    balanced = read == accounted
    return "\n".join(
        [
            f"Fruits! pipeline, run {paths.ds}: {', '.join(paths.inputs)} ({seconds:.0f} s)",
            f"  files listed      {load['listed']} ({load['unchanged']} unchanged since earlier "
            f"runs, {load['deleted']} deleted)",
            f"  new or changed    {read}",
            f"  featurized        {featurize['featurized']} ({featurize['computed']} computed, "
            f"{featurize['reused']} reused)",
            f"  set aside         {featurize['quarantined']} quarantined, "
            f"{featurize['skipped']} skipped {_reasons(featurize)}",
            f"  check             new + changed = featurized + set aside: "
            f"{'OK' if balanced else 'FAIL'}",
            f"  PCA               k = {pca['k']} ({pca['k_selection']}), "
            f"explained variance {pca['total_explained_variance']:.1%}",
            f"  classifier        {_classifier(reports.get('train'))}",
            *_domains(reports.get("train")),
            f"  outputs           {paths.root}/<dataset>/ds={paths.ds}/_current.json names "
            "each dataset's current run",
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


def _domains(train: dict[str, Any] | None) -> list[str]:
    """One line per evaluation domain: its figure (top-1, or the share refused) and size."""
    figures = promotion.domain_metrics(train or {})
    lines = []
    for name, scores in sorted(((train or {}).get("domains") or {}).items()):
        figure = figures.get(name)
        if figure is None:
            continue
        what = "answered unknown" if scores.get("level") == "unknown" else "top-1"
        top3 = f", top-3 {scores['top3']:.1%}" if scores.get("top3") is not None else ""
        lines.append(f"    {name:<38} {what} {figure:.1%}{top3} ({scores['n']} images)")
    return lines


def _reasons(report: dict[str, Any]) -> str:
    reasons = report["set_aside_by_reason"]
    return "(" + ", ".join(f"{r}: {n}" for r, n in sorted(reasons.items())) + ")" if reasons else ""


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="fruits-local", description="Run load → featurize → pca → train on an embedded Spark."
    )
    p.add_argument(
        "--input",
        action="append",
        help="a source: folder of images, labels = folders (repeat for several sources; "
        f"default {DEFAULT_INPUT})",
    )
    p.add_argument(
        "--output", default=str(DEFAULT_OUTPUT), help="output root (default %(default)s)"
    )
    p.add_argument("--date", default=dt.date.today().isoformat(), help="logical date (ds)")
    p.add_argument(
        "--weights",
        default=os.environ.get("FRUITS_WEIGHTS", DEFAULT_WEIGHTS),
        help="'imagenet' (Keras download) or a weights file (default: $FRUITS_WEIGHTS)",
    )
    choice = p.add_mutually_exclusive_group()
    choice.add_argument("--k", type=int, help="PCA components")
    choice.add_argument("--variance", type=float, default=DEFAULT_VARIANCE)
    p.add_argument(
        "--full-rescan", action="store_true", help="re-read every input file, not only new ones"
    )
    p.add_argument(
        "--views",
        action="store_true",
        help="featurize augmented views of training photos and test-time views of held-out "
        "ones, and train on them (featurize ~5.5x longer)",
    )
    p.add_argument(
        "--input-size",
        type=int,
        default=IMAGE_SIZE,
        help="side of the network's square input, a multiple of 32 (default %(default)s; 416 "
        "is more accurate on phone photos, featurize ~3.5x longer)",
    )
    p.add_argument(
        "--retention-hours",
        type=float,
        default=RUN_RETENTION_HOURS,
        help="keep superseded run folders this long (default %(default)s)",
    )
    p.add_argument("--master", default=DEFAULT_MASTER, help="Spark master (default %(default)s)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    inputs = tuple(str(Path(i).resolve()) for i in (args.input or [str(DEFAULT_INPUT)]))
    paths = RunPaths(inputs=inputs, root=str(Path(args.output).resolve()), ds=args.date)
    weights = str(Path(args.weights).resolve()) if Path(args.weights).is_file() else args.weights
    options = PipelineOptions(
        weights=weights,
        k=args.k,
        variance=args.variance,
        full_rescan=args.full_rescan,
        views=args.views,
        input_size=args.input_size,
        retention_hours=args.retention_hours,
    )
    try:
        validate(paths, options)
    except InputError as exc:
        print(f"fruits-local: error: {exc}", file=sys.stderr)
        return 2
    started = time.monotonic()
    try:
        reports = run_pipeline(paths, options, args.master)
    except StageFailed as exc:
        print(f"fruits-local: {exc}", file=sys.stderr)
        return 1
    print(summary(paths, reports, time.monotonic() - started))
    return 0


if __name__ == "__main__":
    sys.exit(main())
