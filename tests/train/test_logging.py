"""A clean run prints no library chatter, and a genuine problem still shows (conf/spark)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import fruits

REPO = Path(__file__).resolve().parents[2]

JOB = """
from fruits.spark import get_spark

spark = get_spark("fruits-logging-test")
print("rows", spark.range(100).count())

def broken(x):
    raise ValueError("a genuine problem in row %d" % x)

try:
    spark.sparkContext.parallelize([1], 1).map(broken).collect()
except Exception:
    print("the job failed, as it should")
spark.stop()
"""


def test_spark_prints_real_failures_but_not_harmless_chatter(tmp_path):
    job = tmp_path / "job.py"
    job.write_text(JOB)
    jobs = str(Path(fruits.__file__).resolve().parents[1])
    env = {
        **os.environ,
        "SPARK_CONF_DIR": str(REPO / "conf" / "spark"),
        "PYSPARK_PYTHON": sys.executable,
        "PYTHONPATH": os.pathsep.join([jobs, os.environ.get("PYTHONPATH", "")]),
    }
    spark_submit = str(Path(sys.executable).with_name("spark-submit"))
    done = subprocess.run(
        [spark_submit, "--master", "local[1]", "--conf", "spark.task.maxFailures=1", str(job)],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "rows 100" in done.stdout and "the job failed, as it should" in done.stdout
    # The failure is shown: Spark's error lines and the Python traceback with its message.
    assert " ERROR " in done.stderr
    assert "ValueError: a genuine problem in row 1" in done.stderr
    # Nothing else: no INFO lines, no banner, no native-library or hostname warnings.
    lines = done.stderr.splitlines()
    assert not [line for line in lines if " INFO " in line]
    assert "NativeCodeLoader" not in done.stderr
    assert "Setting default log level" not in done.stderr
