"""Compare classifier variants on featurize output: Test accuracy, macro-F1, fit time.

    PYTHONPATH=jobs .venv/bin/python bench/classifier_variants.py output/features \\
        --variant "classifier='lr', k=256" --variant "classifier='mlp', k=128"

Each variant is ``fruits.classifier.ClassifierConfig`` keyword arguments; the defaults below
are the ones recorded in docs/classifier.md. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

DEFAULT_VARIANTS = (
    "k=1280, scale=False, reg_param=0.0",
    "k=1280, scale=False, reg_param=0.001",
    "k=128, scale=False, reg_param=0.01",
    "k=128, scale=True, reg_param=0.01",
    "k=64, reg_param=0.001",
    "k=128, reg_param=0.001",
    "k=256, reg_param=0.001",
    "k=256, reg_param=0.0001",
    "k=512, reg_param=0.001",
    "classifier='mlp', k=128, hidden=(256,), max_iter=300",
    "classifier='mlp', k=256, hidden=(512,), max_iter=300",
)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("features", help="featurize output (Parquet)")
    p.add_argument("--variant", action="append", help="ClassifierConfig keyword arguments")
    args = p.parse_args()
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)

    from pyspark.ml.feature import StringIndexer
    from pyspark.ml.functions import array_to_vector
    from pyspark.sql import SparkSession

    from fruits import evaluation
    from fruits.classifier import LABEL_COL, ClassifierConfig, build_pipeline
    from fruits.config import SPARK_CONF

    builder = SparkSession.builder.master("local[2]").config("spark.ui.enabled", "false")
    for key, value in {**SPARK_CONF, "spark.sql.shuffle.partitions": "4"}.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    data = spark.read.parquet(args.features).withColumn("vector", array_to_vector("features"))
    train = data.filter("split = 'Training'").cache()
    test = data.filter("split = 'Test'").cache()
    labels = StringIndexer(inputCol="label", outputCol=LABEL_COL).fit(train)
    print(f"{train.count()} Training, {test.count()} Test images, {len(labels.labels)} classes")
    print("| variant | Test accuracy | macro-F1 | errors | fit (s) |\n|---|---|---|---|---|")
    for variant in args.variant or DEFAULT_VARIANTS:
        config = ClassifierConfig(**eval(f"dict({variant})"))  # trusted command-line input
        started = time.time()
        model = build_pipeline(config, labels).fit(train)
        seconds = time.time() - started
        counts = model.transform(test).groupBy(LABEL_COL, "prediction").count().collect()
        matrix = evaluation.confusion_matrix(counts, len(labels.labels))
        summary = evaluation.summarize(matrix, labels.labels)
        errors = summary["n"] - int(matrix.trace())
        print(
            f"| `{variant}` | {summary['accuracy']:.2%} | {summary['macro_f1']:.4f} "
            f"| {errors} | {seconds:.0f} |",
            flush=True,
        )
    spark.stop()


if __name__ == "__main__":
    main()
