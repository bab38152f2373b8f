"""Benchmarks: what one image costs, where the time goes and how it grows. Prints tables.

    .venv/bin/python bench/benchmark.py                      # everything, default sizes
    .venv/bin/python bench/benchmark.py --only featurize --images 640 --repeats 3
    .venv/bin/python bench/benchmark.py --only pipeline --scales 1,4,16

Sections:
* featurize — images/s through the Spark job on local[2], against a plain single-process Keras
  loop on the same cores and against a naive pandas UDF that rebuilds the network every batch
  (same images, same run; medians of --repeats, ratios of the medians), plus where the time goes;
* broadcast — size of the broadcast weights and time to broadcast and read them back;
* pca — fit + transform time for 10 k, 50 k and 100 k × 1280 vectors, and the k chosen;
* pipeline — end-to-end wall time and peak memory of `fruits-local` at several data scales.
Speed is measured here, never asserted in tests.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
SAMPLE = Path(os.environ.get("FRUITS_SAMPLE_DIR", SHARED / "data" / "fruits360-sample"))
WEIGHTS = Path(
    os.environ.get(
        "FRUITS_WEIGHTS", SHARED / "models" / "mobilenet_v2_1.0_224_imagenet_no_top.weights.h5"
    )
)
CORES = 2


def table(title: str, header: list[str], rows: list[list[object]]) -> None:
    cells = [header, *[[str(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    print(f"\n## {title}")
    for n, row in enumerate(cells):
        print("| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |")
        if n == 0:
            print("|" + "|".join("-" * (w + 2) for w in widths) + "|")


def timed(fn: Callable[[], object]) -> tuple[float, object]:
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def replicate_sample(target: Path, images: int) -> Path:
    """``images`` real sample files (cycled through copies when more than the sample holds)."""
    files = sorted(SAMPLE.rglob("*.jpg"))
    for i in range(images):
        source = files[i % len(files)]
        copy = i // len(files)
        dest = target / f"copy{copy}" / source.parent.parent.name / source.parent.name
        dest.mkdir(parents=True, exist_ok=True)
        # A byte appended after the JPEG end marker makes copies distinct images (new image_id)
        # that decode to the same pixels: the pipeline cannot skip them as duplicates.
        data = source.read_bytes() + (b"" if copy == 0 else bytes([copy % 251]))
        (dest / source.name).write_bytes(data)
    return target


def spark_session(cores: int = CORES, driver_memory: str = "6g"):
    from pyspark.sql import SparkSession

    from fruits.config import SPARK_CONF

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    builder = (
        SparkSession.builder.master(f"local[{cores}]")
        .appName("fruits-bench")
        .config("spark.driver.memory", driver_memory)
        .config("spark.ui.enabled", "false")
    )
    for key, value in SPARK_CONF.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    return spark


# --------------------------------------------------------------------------- featurize


def naive_udf(weights_path: str):
    """The common mistake: load the network inside the UDF, once per Arrow batch."""
    from pyspark.sql import functions as F
    from pyspark.sql.types import ArrayType, FloatType

    @F.pandas_udf(ArrayType(FloatType()))
    def featurize(contents: Iterator[pd.Series]) -> Iterator[pd.Series]:
        from fruits.images import decode_for_model
        from fruits.model import configure_tensorflow, extract_features, load_network

        configure_tensorflow(1)
        for batch in contents:
            network = load_network(weights_path)  # rebuilt for every batch
            arrays = np.stack([decode_for_model(c) for c in batch])
            yield pd.Series(list(extract_features(network, arrays)))

    return featurize


def plain_keras(paths: list[Path], threads: int) -> tuple[float, float, float]:
    """Single process, all cores to TensorFlow: (total s, decode s, inference s)."""
    from fruits.images import decode_for_model
    from fruits.model import configure_tensorflow, extract_features, load_network

    configure_tensorflow(threads)
    network = load_network(str(WEIGHTS))
    extract_features(network, np.zeros((8, 224, 224, 3), np.float32))  # warm-up, as Spark's is
    start = time.perf_counter()
    decode = infer = 0.0
    for i in range(0, len(paths), 64):
        t0 = time.perf_counter()
        batch = np.stack([decode_for_model(p.read_bytes()) for p in paths[i : i + 64]])
        t1 = time.perf_counter()
        extract_features(network, batch)
        t2 = time.perf_counter()
        decode, infer = decode + t1 - t0, infer + t2 - t1
    return time.perf_counter() - start, decode, infer


def bench_featurize(n_images: int, repeats: int) -> None:
    from fruits import featurize, load

    work = Path(tempfile.mkdtemp(prefix="fruits-bench-"))
    images = replicate_sample(work / "in", n_images)
    spark = spark_session()
    load.run(spark, str(images), str(work / "images"), str(work / "q"))
    loaded = spark.read.parquet(str(work / "images")).cache()
    loaded.count()

    spark_s, naive_s, reports = [], [], []
    for r in range(repeats):
        seconds, report = timed(
            lambda r=r: featurize.run(
                spark, str(work / "images"), str(work / f"f{r}"), str(work / f"fq{r}"), str(WEIGHTS)
            )
        )
        spark_s.append(seconds)
        reports.append(report)
        udf = naive_udf(str(WEIGHTS))
        seconds, _ = timed(
            lambda udf=udf: (
                loaded.repartition(2 * CORES)
                .select(udf("content").alias("f"))
                .write.mode("overwrite")
                .format("noop")
                .save()
            )
        )
        naive_s.append(seconds)
    spark.stop()

    # The plain loop runs in a fresh process so TensorFlow gets the two cores to itself.
    plain = [_plain_in_subprocess(images) for _ in range(repeats)]
    med = statistics.median
    spark_rate, naive_rate = n_images / med(spark_s), n_images / med(naive_s)
    plain_rate = n_images / med(p[0] for p in plain)
    table(
        f"Featurization throughput — {n_images} images, {CORES} cores, median of {repeats}",
        ["path", "median s", "images/s", "vs plain Keras", "vs naive UDF"],
        [
            ["Spark job (broadcast, cached network)", f"{med(spark_s):.1f}", f"{spark_rate:.1f}",
             f"{spark_rate / plain_rate:.2f}x", f"{spark_rate / naive_rate:.1f}x"],
            ["plain Keras loop, 1 process, 2 threads", f"{med(p[0] for p in plain):.1f}",
             f"{plain_rate:.1f}", "1.00x", f"{plain_rate / naive_rate:.1f}x"],
            ["naive pandas UDF (network per batch)", f"{med(naive_s):.1f}", f"{naive_rate:.1f}",
             f"{naive_rate / plain_rate:.2f}x", "1.0x"],
        ],
    )  # fmt: skip
    report = reports[-1]  # the workers' own timings, summed over both cores
    core_ms = med(spark_s) * CORES / n_images * 1000
    parts = {
        "JPEG decode + RGB + resize (Pillow)": report["decode_seconds"],
        "MobileNetV2 inference (TensorFlow)": report["inference_seconds"],
        "network rebuilt from the broadcast (once per worker)": report["build_seconds"],
    }
    rest = core_ms - sum(parts.values()) / n_images * 1000
    rows = [[name, f"{s / n_images * 1000:.1f}", f"{s / n_images * 1000 / core_ms:.0%}"]
            for name, s in parts.items()]  # fmt: skip
    rows += [
        ["rest: TF import, driver model load, Arrow, scheduling, writes, report counts",
         f"{rest:.1f}", f"{rest / core_ms:.0%}"],
        ["whole Spark job", f"{core_ms:.1f}", "100%"],
        ["plain Keras loop, for comparison (2 threads)",
         f"{med(p[0] for p in plain) * CORES / n_images * 1000:.1f}", ""],
    ]  # fmt: skip
    table("Where the Spark job's time goes (core-milliseconds per image)",
          ["part", "core-ms/image", "share"], rows)  # fmt: skip
    print(
        f"networks built {report['networks_built']}, arrow batches {report['arrow_batches']}, "
        f"broadcast {report['broadcast_bytes'] / 1e6:.1f} MB"
    )
    shutil.rmtree(work, ignore_errors=True)


def _plain_in_subprocess(images: Path) -> tuple[float, float, float]:
    code = (
        "import sys, json; from pathlib import Path; "
        f"sys.path.insert(0, {str(Path(__file__).parent)!r}); from benchmark import plain_keras; "
        f"print(json.dumps(plain_keras(sorted(Path({str(images)!r}).rglob('*.jpg')), {CORES})))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return tuple(__import__("json").loads(out.stdout.strip().splitlines()[-1]))


# --------------------------------------------------------------------------- broadcast


def bench_broadcast(repeats: int) -> None:
    from fruits.model import load_network

    spark = spark_session()
    sc = spark.sparkContext
    weights = load_network(str(WEIGHTS)).get_weights()
    size = sum(a.nbytes for a in weights)
    send, read = [], []
    for _ in range(repeats):
        seconds, bc = timed(lambda: sc.broadcast(weights))
        send.append(seconds)
        seconds, _ = timed(
            lambda bc=bc: (
                sc.parallelize(range(CORES), CORES)
                .map(lambda _: sum(a.size for a in bc.value))
                .collect()
            )
        )
        read.append(seconds)
        bc.destroy()
    spark.stop()
    table(
        f"Broadcast of the MobileNetV2 weights (median of {repeats})",
        ["arrays", "MB", "broadcast s", "read on every worker s"],
        [[len(weights), f"{size / 1e6:.1f}", f"{statistics.median(send):.2f}",
          f"{statistics.median(read):.2f}"]],
    )  # fmt: skip


# --------------------------------------------------------------------------- pca


def bench_pca(sizes: list[int]) -> None:
    from pyspark.ml.functions import array_to_vector
    from pyspark.sql import functions as F

    from fruits import pca

    spark = spark_session(driver_memory="10g")
    features = _real_features(spark)
    rows = []
    for n in sizes:
        work = Path(tempfile.mkdtemp(prefix="fruits-pca-"))
        # n vectors: the real features cycled, with 1 % noise so no two rows are equal.
        base = features[np.arange(n) % len(features)]
        noisy = base * (1 + 0.01 * np.random.default_rng(0).standard_normal(base.shape))
        frame = spark.createDataFrame(
            [(str(i), f"p{i}", "x", None, v.tolist()) for i, v in enumerate(noisy.astype("f4"))],
            "image_id string, path string, label string, split string, features array<float>",
        )
        frame.write.parquet(str(work / "features"))
        seconds, report = timed(lambda w=work: pca.run(spark, str(w / "features"), str(w / "out")))
        t_fixed, _ = timed(
            lambda w=work: pca.fit_pca(
                spark.read.parquet(str(w / "features")).withColumn(
                    "vector", array_to_vector(F.col("features"))
                ),
                64,
            )
        )
        rows.append([f"{n:,}", report["k"], f"{seconds:.1f}", f"{t_fixed:.1f}"])
        shutil.rmtree(work, ignore_errors=True)
    spark.stop()
    table(
        "PCA (pyspark.ml) on n × 1280 vectors",
        ["n", "k for 95 %", "stage s (fit k_max, choose k, refit, write)", "one fit, k=64, s"],
        rows,
    )


def _real_features(spark) -> np.ndarray:
    """Real features: the last local run's, else the sample's first 400 images featurized."""
    runs = sorted((REPO / "output" / "features").glob("ds=*"))
    if runs:
        rows = spark.read.parquet(str(runs[-1])).select("features").collect()
        return np.array([r.features for r in rows], dtype=np.float32)
    from fruits import featurize, load

    work = Path(tempfile.mkdtemp(prefix="fruits-feat-"))
    images = replicate_sample(work / "in", 400)
    load.run(spark, str(images), str(work / "i"), str(work / "q"))
    featurize.run(spark, str(work / "i"), str(work / "f"), str(work / "fq"), str(WEIGHTS))
    rows = spark.read.parquet(str(work / "f")).select("features").collect()
    return np.array([r.features for r in rows], dtype=np.float32)


# --------------------------------------------------------------------------- pipeline


def bench_pipeline(scales: list[float]) -> None:
    n_sample = len(list(SAMPLE.rglob("*.jpg")))
    rows = []
    for scale in scales:
        n = int(n_sample * scale)
        work = Path(tempfile.mkdtemp(prefix="fruits-e2e-"))
        images = replicate_sample(work / "in", n)
        command = [
            "/usr/bin/time", "-v", sys.executable, "-m", "fruits.local",
            "--input", str(images), "--output", str(work / "out"), "--weights", str(WEIGHTS),
        ]  # fmt: skip
        seconds, done = timed(lambda c=command: subprocess.run(c, capture_output=True, text=True))
        if done.returncode != 0:
            raise RuntimeError(done.stderr[-3000:])
        peak_kb = max(
            int(line.split(":")[1])
            for line in done.stderr.splitlines()
            if "Maximum resident set size" in line
        )
        per_stage = _stage_seconds(work / "out")
        rows.append([f"{scale:g}x", f"{n:,}", f"{seconds:.0f}", f"{n / seconds:.1f}",
                     f"{peak_kb / 1e6:.1f}", per_stage])  # fmt: skip
        shutil.rmtree(work, ignore_errors=True)
    table(
        "End to end: fruits-local (load → featurize → pca → …), local[2]",
        ["scale", "images", "wall s", "images/s", "peak RSS of one process GB", "stage seconds"],
        rows,
    )


def _stage_seconds(out: Path) -> str:
    import json

    reports = sorted(out.glob("reports/ds=*/*.json"))
    return ", ".join(f"{p.stem} {json.loads(p.read_text())['seconds']:.0f}" for p in reports)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", default="featurize,broadcast,pca,pipeline")
    parser.add_argument("--images", type=int, default=640, help="featurize benchmark images")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--pca-sizes", default="10000,50000,100000")
    parser.add_argument("--scales", default="0.25,1", help="pipeline scales of the sample")
    args = parser.parse_args()
    sections = set(args.only.split(","))
    print(f"# Fruits! benchmarks — {os.cpu_count()} CPUs visible, Spark local[{CORES}]")
    if "featurize" in sections:
        bench_featurize(args.images, args.repeats)
    if "broadcast" in sections:
        bench_broadcast(args.repeats)
    if "pca" in sections:
        bench_pca([int(s) for s in args.pca_sizes.split(",")])
    if "pipeline" in sections:
        bench_pipeline([float(s) for s in args.scales.split(",")])


if __name__ == "__main__":
    main()
