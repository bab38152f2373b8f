"""Where things are in the repository checkout (one place: the CLI, the Airflow package and the
artifacts all ask here)."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

JOBS_DIR = Path(__file__).resolve().parents[1]  # spark-submit entry scripts: jobs/<stage>.py
REPO_ROOT = JOBS_DIR.parent
SPARK_CONF_DIR = REPO_ROOT / "conf" / "spark"  # log4j2.properties, spark-defaults.conf: local runs
SHARED_DIR = REPO_ROOT.parent / "shared"  # data and weights beside the checkout
DEFAULT_INPUT = SHARED_DIR / "data" / "fruits360-sample"
DEFAULT_WEIGHTS_FILE = SHARED_DIR / "models" / "mobilenet_v2_1.0_224_imagenet_no_top.weights.h5"
DEFAULT_OUTPUT = REPO_ROOT / "output"


def spark_submit() -> str:
    """The ``spark-submit`` of this environment's pyspark."""
    beside = Path(sys.executable).with_name("spark-submit")
    found = str(beside) if beside.exists() else shutil.which("spark-submit")
    if not found:
        raise FileNotFoundError("spark-submit not found: install the project (pip install -e .)")
    return found
