"""Load test of the prediction service on loopback: N clients posting photos for T seconds.

    .venv/bin/python bench/service_load.py                       # default scenarios, 20 s each
    .venv/bin/python bench/service_load.py --seconds 10 --model output/model/ds=2026-11-26

Starts ``fruits-serve`` as a separate process on 127.0.0.1 for each service configuration,
then runs each scenario: ``clients`` threads, each posting one photo after another (a new
request as soon as its answer came) for ``--seconds``. Photos are real photos of the shared
grocery set upscaled to a phone camera's size (~1 MP: 1155×866, ~12 MP: 4000×3000) with
sensor-like noise, JPEG quality 90. Prints throughput, p50/p95/p99 latency, errors and the mean
inference batch (from the service's /metrics) per scenario. The clients run on the same cores as
the service: figures are for the whole machine. Speed is measured here, never asserted in tests.

Model: ``--model``, else the last local run under ``output/``, else a small model trained here
on 4 classes of the sample (the network, not the classifier, is what costs).
"""

from __future__ import annotations

import argparse
import io
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
from benchmark import table  # bench/ is this script's folder, first on sys.path
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
SAMPLE = Path(os.environ.get("FRUITS_SAMPLE_DIR", SHARED / "data" / "fruits360-sample"))
REAL = SAMPLE.parent / "grocery-store-real"
WEIGHTS = Path(
    os.environ.get(
        "FRUITS_WEIGHTS", SHARED / "models" / "mobilenet_v2_1.0_224_imagenet_no_top.weights.h5"
    )
)
SIZES = {"1 MP": (1155, 866), "12 MP": (4000, 3000)}
PORT = 8765

# (service configuration, environment) and the scenarios run against it: (size, clients).
CONFIGS = {
    "default (batch ≤ 4, JPEG draft)": ({}, [("1 MP", 1), ("1 MP", 4), ("1 MP", 16),
                                            ("12 MP", 4), ("12 MP", 16)]),
    "no batching (batch = 1)": ({"FRUITS_SERVICE_MAX_BATCH": "1"}, [("1 MP", 4), ("1 MP", 16)]),
    "no JPEG draft": ({"FRUITS_SERVICE_JPEG_DRAFT": "false"}, [("12 MP", 4)]),
}  # fmt: skip


def photos(size: tuple[int, int], count: int = 4) -> list[bytes]:
    """Real phone photos at a camera's size, with noise so that JPEG entropy is realistic."""
    sources = sorted((REAL / "val" / "Fruit").glob("*/*.jpg"))[::7][:count]
    rng = np.random.default_rng(0)
    out = []
    for source in sources:
        image = Image.open(source).convert("RGB").resize(size, Image.Resampling.BICUBIC)
        noisy = np.asarray(image, np.float32) + rng.normal(0, 6, (size[1], size[0], 3))
        buffer = io.BytesIO()
        Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8)).save(buffer, "JPEG", quality=90)
        out.append(buffer.getvalue())
    return out


def small_model(root: Path) -> str:
    """Train a 4-class model on the sample (load → featurize → train, embedded Spark); its run
    folder."""
    sys.path.insert(0, str(REPO / "tests"))
    from pipeline import current_uri, paths, run_stages
    from samples import copy_subset
    from small_models import CLASSES

    bench = __import__("benchmark")
    spark = bench.spark_session(driver_memory="2g")
    images = copy_subset(SAMPLE, root / "images", CLASSES, 8)
    run = paths([images], root / "output", "2026-11-26")
    run_stages(spark, run, WEIGHTS, ("load", "featurize", "train"))
    spark.stop()
    return current_uri(run, "model")


def find_model(given: str | None, work: Path) -> str:
    if given:
        return given
    from fruits_service.cli import last_local_model

    return last_local_model(str(REPO / "output")) or small_model(work)


class Service:
    """``fruits-serve`` in its own process."""

    def __init__(self, model: str, env: dict[str, str]) -> None:
        command = [str(Path(sys.executable).with_name("fruits-serve")), "--model", model,
                   "--port", str(PORT), "--log-level", "warning"]  # fmt: skip
        self.process = subprocess.Popen(
            command, env={**os.environ, "FRUITS_WEIGHTS": str(WEIGHTS), **env}
        )
        self.url = f"http://127.0.0.1:{PORT}"
        deadline = time.monotonic() + 300
        while True:
            try:
                if httpx.get(f"{self.url}/healthz", timeout=5).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()  # never leave a server holding the port
                raise RuntimeError("fruits-serve did not start (its log is above)")
            time.sleep(0.5)

    def batch_totals(self) -> tuple[float, float]:
        text = httpx.get(f"{self.url}/metrics").text
        total = float(re.search(r"fruits_inference_batch_size_sum (\S+)", text)[1])
        count = float(re.search(r"fruits_inference_batch_size_count (\S+)", text)[1])
        return total, count

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=60)


@dataclass
class Result:
    latencies: list[float]
    errors: dict[str, int]
    seconds: float


def load(url: str, data: list[bytes], clients: int, seconds: float) -> Result:
    latencies: list[float] = []
    errors: dict[str, int] = {}
    lock = threading.Lock()
    stop = time.monotonic() + seconds

    def client(index: int) -> None:
        with httpx.Client(base_url=url, timeout=120) as http:
            n = index
            while time.monotonic() < stop:
                body = data[n % len(data)]
                n += 1
                start = time.perf_counter()
                try:
                    response = http.post(
                        "/v1/predictions", content=body, headers={"content-type": "image/jpeg"}
                    )
                    outcome = None if response.status_code == 200 else str(response.status_code)
                except httpx.HTTPError as exc:
                    outcome = type(exc).__name__
                elapsed = time.perf_counter() - start
                with lock:
                    if outcome:
                        errors[outcome] = errors.get(outcome, 0) + 1
                    else:
                        latencies.append(elapsed)

    started = time.monotonic()
    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return Result(latencies, errors, time.monotonic() - started)


def percentile(values: list[float], p: float) -> str:
    return f"{np.percentile(values, p) * 1000:.0f}" if values else "–"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", help="train output folder (default: see the module doc)")
    parser.add_argument("--seconds", type=float, default=20.0, help="per scenario")
    parser.add_argument("--configs", default=",".join(str(i) for i in range(len(CONFIGS))),
                        help="indexes of the service configurations to run")  # fmt: skip
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="fruits-service-bench-"))
    model = find_model(args.model, work)
    data = {name: photos(size) for name, size in SIZES.items()}
    sizes = {name: statistics.mean(len(d) for d in photos_) for name, photos_ in data.items()}
    print(f"model {model}; {os.cpu_count()} CPUs; load average before: {os.getloadavg()}")
    print("photos: " + ", ".join(f"{n} JPEG {sizes[n] / 1e6:.2f} MB" for n in SIZES))
    rows = []
    chosen = [list(CONFIGS.items())[int(i)] for i in args.configs.split(",")]
    for name, (env, scenarios) in chosen:
        service = Service(model, env)
        try:
            for size, clients in scenarios:
                load(service.url, data[size][:1], 1, 0.5)  # warm-up
                before = service.batch_totals()
                result = load(service.url, data[size], clients, args.seconds)
                after = service.batch_totals()
                batches = after[1] - before[1]
                mean_batch = (after[0] - before[0]) / batches if batches else 0
                ok = result.latencies
                rows.append([
                    name, size, clients, len(ok),
                    ", ".join(f"{k}: {v}" for k, v in result.errors.items()) or "0",
                    f"{len(ok) / result.seconds:.1f}",
                    percentile(ok, 50), percentile(ok, 95), percentile(ok, 99),
                    f"{mean_batch:.2f}",
                ])  # fmt: skip
                print(" | ".join(str(c) for c in rows[-1]), flush=True)
        finally:
            service.stop()
    table(
        f"Prediction service under load ({args.seconds:.0f} s per row, loopback, "
        f"{os.cpu_count()} CPUs; load average after: {os.getloadavg()[0]:.1f})",
        ["service", "photo", "clients", "answers", "errors", "answers/s", "p50 ms", "p95 ms",
         "p99 ms", "mean batch"],
        rows,
    )  # fmt: skip


if __name__ == "__main__":
    main()
