"""Compare classifier variants with the real train stage: per-domain figures and fit time.

    .venv/bin/python bench/classifier_variants.py --root output --ds 2026-11-26 \\
        --variant "k=256" --variant "k=128,reg_param=0.01" --variant "classifier='mlp',k=128"

Reads the corpus of ``--root`` as of ``--ds`` (every source, as the train stage sees it),
copies it once into a scratch root and runs :func:`fruits.train.run` there for each variant
(``fruits.classifier.ClassifierConfig`` fields, ``name=value`` pairs, values as Python literals).
Prints a Markdown table: Fruits-360-like ``variety`` domains, ``fruit`` domains (top-1/top-3,
answered) and ``unknown`` domains (refused), the stage's seconds and how the fit ran.
"""

from __future__ import annotations

import argparse
import ast
import os
import sys
import tempfile
import time
from typing import Any

DEFAULT_VARIANTS = (
    "k=256",
    "k=128,reg_param=0.01",
    "k=512",
    "classifier='mlp',k=256,hidden=(512,)",
)


def parse_variant(text: str) -> dict[str, Any]:
    """``"k=256,hidden=(512,)"`` → ``{"k": 256, "hidden": (512,)}`` (literals only)."""
    fields: dict[str, Any] = {}
    for part in ast.parse(f"f({text})", mode="eval").body.keywords:  # type: ignore[attr-defined]
        fields[part.arg] = ast.literal_eval(part.value)
    return fields


def _cell(domain: dict[str, Any]) -> str:
    if domain["level"] == "unknown":
        return f"refused {domain['unknown_rate']:.1%} (n {domain['n']})"
    answered = f", answered {domain['answered']:.1%}" if domain["level"] == "fruit" else ""
    return f"{domain['top1']:.1%} / {domain['top3']:.1%}{answered} (n {domain['n']})"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--root", required=True, help="a pipeline output root (its features)")
    p.add_argument("--ds", required=True, help="the date whose corpus is compared")
    p.add_argument("--variant", action="append", help="ClassifierConfig fields, name=value,…")
    args = p.parse_args()
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)

    from pyspark.sql import functions as F

    from fruits import corpus, job, train
    from fruits.classifier import ClassifierConfig
    from fruits.spark import get_spark
    from fruits.stages import RunPaths

    spark = get_spark("fruits-classifier-variants")
    spark.sparkContext.setLogLevel("ERROR")
    features = corpus.current_features(spark, RunPaths((), args.root, args.ds))
    scratch = RunPaths((), tempfile.mkdtemp(prefix="fruits-variants-"), args.ds)
    copy = job.JobRun.create(scratch, retention_hours=0)
    events = features.withColumn("status", F.lit(corpus.FEATURIZED))
    corpus.as_events(events).write.parquet(copy.output("features"))
    copy.publish("features", None, {})

    rows = []
    for variant in args.variant or DEFAULT_VARIANTS:
        config = ClassifierConfig(**parse_variant(variant))
        started = time.time()
        report = train.run(spark, job.JobRun.create(scratch, retention_hours=0), config)
        seconds = time.time() - started
        rows.append((variant, report, seconds))
        print(f"{variant}: {seconds:.0f} s", file=sys.stderr, flush=True)
    names = sorted({name for _, report, _ in rows for name in report["domains"]})
    print("| variant | " + " | ".join(names) + " | fit | train s |")
    print("|---" * (len(names) + 3) + "|")
    for variant, report, seconds in rows:
        cells = [_cell(report["domains"][n]) if n in report["domains"] else "—" for n in names]
        fit = report["fit"]
        print(
            f"| `{variant}` | " + " | ".join(cells) + f" | {fit['fitted_on']}, "
            f"{fit.get('iterations')} it. | {seconds:.0f} |"
        )
    spark.stop()


if __name__ == "__main__":
    main()
