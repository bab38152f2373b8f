"""get_spark: project defaults apply, but what spark-submit (or EMR) sets always wins."""

from __future__ import annotations

import os
import subprocess
import sys

from fruits.layout import spark_submit

PROBE = """
from fruits.spark import get_spark
spark = get_spark("probe")
conf = spark.sparkContext.getConf()
print("MASTER", spark.sparkContext.master)
print("ARROW", conf.get("spark.sql.execution.arrow.maxRecordsPerBatch"))
print("REUSE", conf.get("spark.python.worker.reuse"))
"""


def test_spark_submit_settings_win_over_project_defaults(tmp_path):
    script = tmp_path / "probe.py"
    script.write_text(PROBE)
    done = subprocess.run(
        [
            spark_submit(),
            "--master",
            "local[1,3]",
            "--conf",
            "spark.sql.execution.arrow.maxRecordsPerBatch=7",
            "--conf",
            f"spark.pyspark.python={sys.executable}",
            str(script),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYSPARK_PYTHON": sys.executable},
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "MASTER local[1,3]" in done.stdout
    assert "ARROW 7" in done.stdout
    assert "REUSE true" in done.stdout  # a project default nobody overrode
