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
* pipeline — end-to-end wall time and peak memory of `fruits-local` at several data scales;
* incremental — day 1 on the sample (``--day-1-scale`` × it), day 2 with 5 % new photos, day 3
  with none (load and featurize through spark-submit as in production): day 2's share of day 1's
  time, the stages' fixed cost (day 3) and what the new photos cost above it, and what
  publishing costs in object-store requests (nothing renamed or copied);
* phone — load + featurize of 12-megapixel JPEGs: the Arrow batch rows chosen from their bytes
  and the largest Python worker's peak memory against the EMR capacity model's allotment.
Speed is measured here, never asserted in tests.
"""

from __future__ import annotations

import argparse
import json
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

from fruits.layout import DEFAULT_INPUT, DEFAULT_WEIGHTS_FILE, REPO_ROOT

REPO = REPO_ROOT
SAMPLE = Path(os.environ.get("FRUITS_SAMPLE_DIR", DEFAULT_INPUT))
WEIGHTS = Path(os.environ.get("FRUITS_WEIGHTS", DEFAULT_WEIGHTS_FILE))
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


def replicate_sample(target: Path, images: int, start: int = 0) -> Path:
    """``images`` real sample files (cycled through copies when more than the sample holds),
    the ``start``-th first: a later call with ``start`` adds distinct new photos."""
    files = sorted(SAMPLE.rglob("*.jpg"))
    for i in range(start, start + images):
        source = files[i % len(files)]
        copy = i // len(files)
        dest = target / f"copy{copy}" / source.parent.parent.name / source.parent.name
        dest.mkdir(parents=True, exist_ok=True)
        # A byte appended after the JPEG end marker makes copies distinct images (new image_id)
        # that decode to the same pixels: the pipeline cannot skip them as duplicates.
        data = source.read_bytes() + (b"" if copy == 0 else bytes([copy % 251]))
        (dest / source.name).write_bytes(data)
    return target


def spark_session(cores: int = CORES, driver_memory: str = "10g"):
    """This process's Spark session, the product's (``fruits.spark.get_spark``) on ``cores``
    (one per process: a stopped one cannot be restarted cleanly)."""
    from fruits.spark import get_spark

    os.environ["PYSPARK_SUBMIT_ARGS"] = (
        f"--master local[{cores}] --driver-memory {driver_memory} "
        "--conf spark.ui.enabled=false pyspark-shell"
    )
    spark = get_spark("fruits-bench")
    spark.sparkContext.setLogLevel("ERROR")
    return spark


def run_paths(inputs: list[Path], root: Path, ds: str = "2026-01-01"):
    from fruits.stages import RunPaths

    return RunPaths(tuple(str(i) for i in inputs), str(root), ds)


def stage_run(paths):
    """One execution of a stage, superseded runs deleted at once."""
    from fruits.job import JobRun

    return JobRun.create(paths, retention_hours=0)


# --------------------------------------------------------------------------- featurize
#
# Each path runs in a fresh process, timed from before its first import to its Parquet written,
# so all three pay their own TensorFlow import and model load. Two sizes give each path's
# throughput (the slope: images added / seconds added) and fixed cost (the intercept).

PATHS = {
    "spark": "Spark job (broadcast, cached network)",
    "plain": f"plain Keras loop, 1 process, {CORES} threads",
    "naive": "naive pandas UDF (network per batch)",
}


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


class PeakMemory:
    """Peak resident memory of this process and of its Python children (Spark's workers),
    sampled every 0.2 s in a background thread."""

    def __init__(self) -> None:
        import threading

        import psutil

        self.me = psutil.Process()
        self.peak_total = self.peak_worker = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        import psutil

        while not self._stop.wait(0.2):
            rss = {}
            for proc in [self.me, *self.me.children(recursive=True)]:
                try:
                    rss[proc] = (proc.memory_info().rss, "python" in proc.name())
                except psutil.Error:
                    continue
            self.peak_total = max(self.peak_total, sum(r for r, _ in rss.values()))
            workers = [r for p, (r, py) in rss.items() if py and p is not self.me]
            self.peak_worker = max([self.peak_worker, *workers])

    def stop(self) -> dict[str, float]:
        self._stop.set()
        self._thread.join()
        return {"peak_total_gb": self.peak_total / 1e9, "peak_worker_gb": self.peak_worker / 1e9}


def measure(path: str, work: Path) -> dict[str, float]:
    """One featurization of ``work/images`` (load output) or ``work/in`` (files) by ``path``."""
    started = time.perf_counter()
    memory = PeakMemory()
    out = work / f"out-{path}"
    result: dict[str, float] = {}
    if path == "plain":
        result = plain_keras(sorted((work / "in").rglob("*.jpg")), out)
    else:
        spark = spark_session()
        session_s = time.perf_counter() - started
        images = _images_run(work)
        if path == "spark":
            from fruits import catalog, featurize

            paths = run_paths([], out)  # a fresh root: no features to reuse
            catalog.publish(paths.partition("images"), "bench", uri=images.uri,
                            details=images.details)  # fmt: skip
            report = featurize.run(spark, stage_run(paths), str(WEIGHTS))
            result = {k: v for k, v in report.items() if k.endswith("_seconds")}
        else:
            from fruits.featurize import task_count

            loaded = spark.read.parquet(images.uri).filter("status = 'loaded'")
            partitions = task_count(loaded.count(), spark.sparkContext.defaultParallelism)
            udf = naive_udf(str(WEIGHTS))
            frame = loaded.repartition(partitions).select("image_id", udf("content").alias("f"))
            frame.write.mode("overwrite").parquet(str(out))
        result["session_seconds"] = session_s
        spark.stop()
    return {**result, "seconds": time.perf_counter() - started, **memory.stop()}


def plain_keras(paths: list[Path], out: Path) -> dict[str, float]:
    """Single process, all cores to TensorFlow; writes the features as Parquet like the job."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from fruits.images import decode_for_model
    from fruits.model import configure_tensorflow, extract_features, load_network

    configure_tensorflow(CORES)
    network = load_network(str(WEIGHTS))
    decode = infer = 0.0
    features = []
    for i in range(0, len(paths), 64):
        t0 = time.perf_counter()
        batch = np.stack([decode_for_model(p.read_bytes()) for p in paths[i : i + 64]])
        t1 = time.perf_counter()
        features.extend(extract_features(network, batch))
        decode, infer = decode + t1 - t0, infer + time.perf_counter() - t1
    out.mkdir(parents=True, exist_ok=True)
    table_ = pa.table({"path": [str(p) for p in paths], "features": [f.tolist() for f in features]})
    pq.write_table(table_, out / "features.parquet")
    return {"decode_seconds": decode, "inference_seconds": infer}


def _images_run(work: Path):
    from fruits import catalog

    images = catalog.current(run_paths([], work / "loaded").partition("images"))
    assert images is not None
    return images


def _measure_in_subprocess(path: str, work: Path) -> dict[str, float]:
    command = [sys.executable, __file__, "--measure", path, "--work", str(work)]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{path}: {done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def bench_featurize(n_images: int, repeats: int) -> None:
    from fruits import load

    sizes = [n_images // 4, n_images]
    works = {}
    spark = spark_session()
    for n in sizes:
        works[n] = Path(tempfile.mkdtemp(prefix=f"fruits-bench-{n}-"))
        images = replicate_sample(works[n] / "in", n)
        load.run(spark, stage_run(run_paths([images], works[n] / "loaded")))

    runs: dict[tuple[str, int], list[dict[str, float]]] = {}
    for _ in range(repeats):  # interleaved, so a slow spell of the machine hits every path
        for n in sizes:
            for path in PATHS:
                runs.setdefault((path, n), []).append(_measure_in_subprocess(path, works[n]))
    med = statistics.median
    seconds = {key: med(r["seconds"] for r in values) for key, values in runs.items()}
    small, big = sizes
    rate = {p: (big - small) / (seconds[p, big] - seconds[p, small]) for p in PATHS}
    fixed = {p: seconds[p, big] - big / rate[p] for p in PATHS}
    whole = {p: big / seconds[p, big] for p in PATHS}
    table(
        f"Featurization — {small} and {big} images, {CORES} cores, medians of {repeats} "
        "fresh processes",
        ["path", f"s for {small}", f"s for {big}", "throughput img/s (slope)", "fixed s",
         f"img/s at {big}", "throughput vs plain", "throughput vs naive", f"vs plain at {big}"],
        [[PATHS[p], f"{seconds[p, small]:.1f}", f"{seconds[p, big]:.1f}", f"{rate[p]:.1f}",
          f"{fixed[p]:.1f}", f"{whole[p]:.1f}", f"{rate[p] / rate['plain']:.2f}x",
          f"{rate[p] / rate['naive']:.2f}x", f"{whole[p] / whole['plain']:.2f}x"]
         for p in PATHS],
    )  # fmt: skip

    job = runs["spark", big]
    core_ms = seconds["spark", big] * CORES / big * 1000
    parts = {
        "Spark session start (JVM)": med(r["session_seconds"] for r in job) * CORES,
        "TF import + network rebuild from the broadcast (once per worker)": med(
            r["build_seconds"] for r in job
        ),
        "JPEG decode + RGB + resize (Pillow)": med(r["decode_seconds"] for r in job),
        "MobileNetV2 inference (TensorFlow)": med(r["inference_seconds"] for r in job),
    }
    rows = [[name, f"{s / big * 1000:.1f}", f"{s / big * 1000 / core_ms:.0%}"]
            for name, s in parts.items()]  # fmt: skip
    rest = core_ms - sum(parts.values()) / big * 1000
    rows += [
        ["rest: driver TF import + model load, broadcast, Arrow, scheduling, writes, counts",
         f"{rest:.1f}", f"{rest / core_ms:.0%}"],
        ["whole Spark job", f"{core_ms:.1f}", "100%"],
        [f"plain Keras loop: inference ({CORES} threads)",
         f"{med(r['inference_seconds'] for r in runs['plain', big]) * CORES / big * 1000:.1f}",
         ""],
    ]  # fmt: skip
    table(f"Where the Spark job's time goes at {big} images (core-milliseconds per image)",
          ["part", "core-ms/image", "share"], rows)  # fmt: skip
    table(
        f"Peak resident memory at {big} images (GB, median of {repeats})",
        ["path", "whole process tree (JVM + Python workers)", "largest Python worker"],
        [[PATHS[p], f"{med(r['peak_total_gb'] for r in runs[p, big]):.2f}",
          f"{med(r['peak_worker_gb'] for r in runs[p, big]):.2f}" if p != "plain" else "-"]
         for p in PATHS],
    )  # fmt: skip
    for work in works.values():
        shutil.rmtree(work, ignore_errors=True)


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

    from fruits import corpus, pca

    spark = spark_session()
    features = _real_features(spark)
    rows = []
    for n in sizes:
        work = Path(tempfile.mkdtemp(prefix="fruits-pca-"))
        paths = run_paths([], work)
        # n vectors: the real features cycled, with 1 % noise so no two rows are equal.
        base = features[np.arange(n) % len(features)]
        noisy = base * (1 + 0.01 * np.random.default_rng(0).standard_normal(base.shape))
        frame = spark.createDataFrame(
            [(str(i), f"p{i}", "x", v.tolist()) for i, v in enumerate(noisy.astype("f4"))],
            "image_id string, path string, label string, features array<float>",
        ).withColumn("status", F.lit(corpus.FEATURIZED))
        corpus_run = stage_run(paths)
        corpus.as_events(frame).write.parquet(corpus_run.output("features"))
        corpus_run.publish("features", n, {})
        seconds, report = timed(lambda p=paths: pca.run(spark, stage_run(p)))
        t_fixed, _ = timed(
            lambda p=paths: pca.fit_pca(
                corpus.current_features(spark, p).withColumn(
                    "vector", array_to_vector(F.col("features"))
                ),
                64,
            )
        )
        rows.append([f"{n:,}", report["k"], f"{seconds:.1f}", f"{t_fixed:.1f}"])
        shutil.rmtree(work, ignore_errors=True)
    table(
        "PCA (ExactPCA → pyspark.ml PCAModel) on n × 1280 vectors",
        [
            "n",
            "k for 95 %",
            "stage s (fit all components, keep the first k, write)",
            "one fit, k=64, s",
        ],
        rows,
    )


def _real_features(spark) -> np.ndarray:
    """Real features: the last local run's corpus, else the sample's first 400 images."""
    from fruits import corpus, featurize, load

    paths = run_paths([], REPO / "output")
    if (REPO / "output" / "features").is_dir():
        rows = corpus.current_features(spark, paths).select("features").collect()
        if rows:
            return np.array([r.features for r in rows], dtype=np.float32)
    work = Path(tempfile.mkdtemp(prefix="fruits-feat-"))
    paths = run_paths([replicate_sample(work / "in", 400)], work / "out")
    load.run(spark, stage_run(paths))
    featurize.run(spark, stage_run(paths), str(WEIGHTS))
    rows = corpus.current_features(spark, paths).select("features").collect()
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


# --------------------------------------------------------------------------- incremental


def _written(run_uri: str) -> tuple[int, int]:
    """Objects (files) and bytes in a run folder: what Spark's committer wrote."""
    files = [f for f in Path(run_uri).rglob("*") if f.is_file()]
    return len(files), sum(f.stat().st_size for f in files)


def bench_incremental(new_share: float, scale: float) -> None:
    """Day 1 on ``scale`` × the sample, day 2 with ``new_share`` more photos, day 3 with none
    (the stages' fixed cost), load and featurize through spark-submit."""
    from fruits import catalog
    from fruits.local import run_stage
    from fruits.stages import STAGES, PipelineOptions

    stages = {stage.name: stage for stage in STAGES}
    options = PipelineOptions(weights=str(WEIGHTS), retention_hours=0)
    n = round(len(list(SAMPLE.rglob("*.jpg"))) * scale)
    work = Path(tempfile.mkdtemp(prefix="fruits-incremental-"))
    images = work / "in"
    added = round(n * new_share)
    rows, totals = [], []
    for ds, start, count in (("2026-01-01", 0, n), ("2026-01-02", n, added),
                             ("2026-01-03", n + added, 0)):  # fmt: skip
        replicate_sample(images, count, start)  # distinct new photos beside the earlier ones
        paths = run_paths([images], work / "out", ds)
        seconds = {}
        reports = {}
        for name in ("load", "featurize"):
            seconds[name], reports[name] = timed(
                lambda s=stages[name], p=paths: run_stage(s, p, options, quiet=True)
            )
        total = seconds["load"] + seconds["featurize"]
        totals.append(total)
        objects = bytes_ = 0
        for dataset in ("images", "features", "quarantine"):
            run = catalog.current(paths.partition(dataset))
            count, size = _written(run.uri)
            objects, bytes_ = objects + count, bytes_ + size
        requests: dict[str, int] = {}
        for report in reports.values():
            for kind, count in report["storage_requests"].items():
                requests[kind] = requests.get(kind, 0) + count
        load = reports["load"]
        for name, report in reports.items():
            print(f"# {ds} {name}: {report['seconds']} s in the job; {report['phase_seconds']}")
        rows.append([ds, f"{load['listed']:,}", f"{load['new'] + load['changed']:,}",
                     f"{seconds['load']:.1f}", f"{seconds['featurize']:.1f}", f"{total:.1f}",
                     f"{total / totals[0]:.0%}", f"{objects} / {bytes_ / 1e6:.1f} MB",
                     ", ".join(f"{k} {v}" for k, v in sorted(requests.items())), "0",
                     f"{2 * objects}"])  # fmt: skip
    shutil.rmtree(work, ignore_errors=True)
    table(
        f"Daily increments — {n:,} photos on day 1, {new_share:.0%} new on day 2, none on day 3; "
        f"load + featurize through spark-submit, local[{CORES}]",
        ["day", "listed", "read (new+changed)", "load s", "featurize s", "load+featurize s",
         "of day 1", "objects written by Spark (images+features+quarantine)",
         "requests by the stages (pointers, reports, deletes)", "objects renamed or copied",
         "renames a staged publish would cost on S3 (COPY+DELETE per object)"],
        rows,
    )  # fmt: skip
    fixed = totals[2]
    print(
        f"# fixed cost (day 3, nothing new): {fixed:.1f} s; above it, day 2's {added:,} new photos "
        f"cost {totals[1] - fixed:.1f} s = {(totals[1] - fixed) / (totals[0] - fixed):.0%} of "
        f"day 1's {totals[0] - fixed:.1f} s for {n:,}"
    )


# --------------------------------------------------------------------------- phone photos


def _pyspark_workers_rss() -> list[int]:
    """Resident bytes of each Python worker of Spark (``pyspark.daemon`` and its forks)."""
    import psutil

    sizes = []
    for proc in psutil.process_iter(["cmdline", "memory_info"]):
        cmdline = " ".join(proc.info["cmdline"] or [])
        if "pyspark.daemon" in cmdline or "pyspark.worker" in cmdline:
            sizes.append(proc.info["memory_info"].rss)
    return sizes


def bench_phone_photos(count: int) -> None:
    """load + featurize of ``count`` 12-megapixel JPEGs (real grocery photos upscaled, with
    sensor-like noise) through spark-submit: the Arrow batch rows chosen from their size, and
    the largest Python worker's peak against what the EMR capacity model gives each worker."""
    import threading

    from service_load import photos

    from fruits.local import run_stage
    from fruits.stages import STAGES, PipelineOptions
    from fruits_airflow.capacity import Workload

    stages = {stage.name: stage for stage in STAGES}
    work = Path(tempfile.mkdtemp(prefix="fruits-phone-"))
    sizes = []
    for i, data in enumerate(photos((4000, 3000), 8)):
        for copy in range(count // 8):
            folder = work / "in" / "Training" / f"Fruit {i}"
            folder.mkdir(parents=True, exist_ok=True)
            (folder / f"IMG_{copy:04d}.jpg").write_bytes(data + bytes([copy % 251]))
            sizes.append(len(data))
    paths = run_paths([work / "in"], work / "out")
    options = PipelineOptions(weights=str(WEIGHTS), retention_hours=0)
    peak, done = [0], threading.Event()

    def sample() -> None:
        while not done.wait(0.2):
            peak[0] = max([peak[0], *_pyspark_workers_rss()])

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    seconds = {}
    reports = {}
    for name in ("load", "featurize"):
        seconds[name], reports[name] = timed(
            lambda s=stages[name]: run_stage(s, paths, options, quiet=True)
        )
    done.set()
    sampler.join()
    shutil.rmtree(work, ignore_errors=True)
    workload = Workload()
    featurize = reports["featurize"]
    table(
        f"Phone photos — {len(sizes)} JPEGs of 4000×3000 ({statistics.mean(sizes) / 1e6:.1f} MB "
        f"each), load + featurize through spark-submit, local[{CORES}]",
        ["load s", "featurize s", "featurized", "Arrow batch rows (from bytes)",
         "largest Python worker peak MB", "capacity model: MB per worker (peak + 2 batches)"],
        [[f"{seconds['load']:.1f}", f"{seconds['featurize']:.1f}", featurize["featurized"],
          featurize["arrow_batch_rows"], f"{peak[0] / 2**20:.0f}", workload.worker_mb]],
    )  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", default="featurize,broadcast,pca,pipeline,incremental,phone")
    parser.add_argument("--phone-photos", type=int, default=96, help="phone: 12 MP JPEGs")
    parser.add_argument("--images", type=int, default=3240, help="featurize: largest size")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--pca-sizes", default="10000,50000,100000")
    parser.add_argument("--scales", default="0.25,1", help="pipeline scales of the sample")
    parser.add_argument("--new-share", type=float, default=0.05, help="incremental: day 2")
    parser.add_argument("--day-1-scale", type=float, default=1.0, help="incremental: × sample")
    parser.add_argument("--measure", choices=sorted(PATHS), help=argparse.SUPPRESS)
    parser.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:  # one featurization path in this fresh process (see bench_featurize)
        print(json.dumps(measure(args.measure, args.work)))
        return
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
    if "incremental" in sections:
        bench_incremental(args.new_share, args.day_1_scale)
    if "phone" in sections:
        bench_phone_photos(args.phone_photos)


if __name__ == "__main__":
    main()
