"""Shared fixtures: the real Fruits-360 sample, the real MobileNetV2 weights, a real Spark.

Paths come from FRUITS_SAMPLE_DIR / FRUITS_WEIGHTS (``.ci/run`` points them into ../shared);
by default they are looked up in ../shared beside the checkout.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from fruits.layout import DEFAULT_INPUT as DEFAULT_SAMPLE
from fruits.layout import DEFAULT_WEIGHTS_FILE as DEFAULT_WEIGHTS
from fruits.layout import SPARK_CONF_DIR
from samples import SMALL_CLASSES, copy_subset

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
# The tests' own Spark sessions start as local runs do (logging, JVM options).
os.environ.setdefault("SPARK_CONF_DIR", str(SPARK_CONF_DIR))


def _required(env: str, default: Path) -> Path:
    """The path in ``env`` (else ``default``), made absolute: Airflow's task processes and
    spark-submit run from other folders."""
    path = Path(os.environ.get(env, default)).expanduser().resolve()
    if not path.exists():
        pytest.fail(f"{path} not found: set {env} (see README, 'Tests')", pytrace=False)
    return path


@pytest.fixture(scope="session")
def sample_dir() -> Path:
    """The Fruits-360 sample (read-only): Training/<Class>/*.jpg and Test/<Class>/*.jpg."""
    return _required("FRUITS_SAMPLE_DIR", DEFAULT_SAMPLE)


@pytest.fixture(scope="session")
def weights_path() -> Path:
    """Real ImageNet MobileNetV2 weights (Keras 3 layout, no top)."""
    return _required("FRUITS_WEIGHTS", DEFAULT_WEIGHTS)


@pytest.fixture(scope="session")
def small_sample(sample_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """4 classes (one with a space in its name) × 4 images × 2 splits = 32 real images."""
    return copy_subset(sample_dir, tmp_path_factory.mktemp("small") / "images", SMALL_CLASSES, 4)


@pytest.fixture(scope="session")
def spark() -> Iterator:
    """The jobs' own session (``fruits.spark.get_spark``) on two cores, as in CI."""
    from fruits.spark import get_spark

    os.environ["PYSPARK_SUBMIT_ARGS"] = (
        "--master local[2] --conf spark.sql.shuffle.partitions=4 pyspark-shell"
    )
    session = get_spark("fruits-tests")
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


@pytest.fixture(scope="session")
def small_models(spark, sample_dir: Path, weights_path: Path, tmp_path_factory):
    """Two small real classifiers (and a broken copy) for the service and promotion tests."""
    from small_models import train_small_models

    return train_small_models(spark, sample_dir, weights_path, tmp_path_factory.mktemp("models"))


CHROMIUM = Path(os.environ.get("FRUITS_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="session")
def browser() -> Iterator:
    """Headless Chromium from the system (never a Playwright download). Missing: a failure."""
    if not CHROMIUM.is_file():
        pytest.fail(
            f"{CHROMIUM} not found: install Chromium with scripts/install-browser.sh "
            "(as root: apt-get install -y chromium) or point FRUITS_CHROMIUM at a Chromium",
            pytrace=False,
        )
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail(
            "the playwright package is missing: pip install -c constraints.txt -e '.[dev]'",
            pytrace=False,
        )
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, timeout=60_000
        )
        try:
            yield chromium
        finally:
            chromium.close()
