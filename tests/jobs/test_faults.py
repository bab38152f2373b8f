"""Faults: a Python worker killed mid-featurization is retried by Spark, nothing lost or doubled."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import psutil
import pytest

from fruits.layout import SPARK_CONF_DIR
from fruits.local import stage_command
from fruits.stages import STAGES, PipelineOptions
from pipeline import current, paths, run_stages
from samples import copy_subset


def _forked_python_workers(root: psutil.Process) -> list[psutil.Process]:
    """Workers forked by pyspark.daemon (the daemon itself is their parent)."""
    workers = []
    for child in root.children(recursive=True):
        try:
            parent = child.parent()
            if (
                "pyspark.daemon" in " ".join(child.cmdline())
                and parent
                and ("pyspark.daemon" in " ".join(parent.cmdline()))
            ):
                workers.append(child)
        except psutil.Error:
            continue
    return workers


@pytest.mark.slow
def test_killed_worker_is_retried_and_output_is_complete(spark, sample_dir, weights_path, tmp_path):
    classes = ["Apricot", "Avocado", "Cactus fruit", "Clementine", "Grape White", "Lychee", "Kaki"]
    images = copy_subset(sample_dir, tmp_path / "in", classes, per_class=10, splits=("Training",))
    run_paths = paths([images], tmp_path / "out", "2026-04-01")
    run_stages(spark, run_paths, weights_path, ("load",))

    featurize = next(stage for stage in STAGES if stage.name == "featurize")
    options = PipelineOptions(weights=str(weights_path))
    # local[2,4]: up to 4 attempts per task; small inference batches, many of them.
    command = [*stage_command(featurize, run_paths, options, "local[2,4]"), "--batch-size", "8"]
    env = {**os.environ, "SPARK_CONF_DIR": str(SPARK_CONF_DIR)}
    job = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    killed = None
    deadline = time.time() + 240
    while killed is None and time.time() < deadline and job.poll() is None:
        busy = [w for w in _forked_python_workers(psutil.Process(job.pid)) if _rss(w) > 400e6]
        if busy:  # TensorFlow and the network loaded: let it start batches, then kill it
            time.sleep(2)
            killed = busy[0].pid
            os.kill(killed, signal.SIGKILL)
        time.sleep(0.5)
    output, _ = job.communicate(timeout=600)
    log = output.decode(errors="replace")
    assert killed is not None, "no busy Python worker was seen:\n" + log[-2000:]
    assert job.returncode == 0, "\n".join(
        line for line in log.splitlines() if "Exception" in line or "Lost task" in line
    )[-4000:]
    assert "Lost task" in log or "Python worker exited unexpectedly" in log

    report = json.loads((tmp_path / "out/reports/ds=2026-04-01/featurize.json").read_text())
    assert report["featurized"] == len(classes) * 10 and report["quarantined"] == 0
    rows = current(spark, run_paths, "features").select("path").collect()
    assert len(rows) == len({r.path for r in rows}) == len(classes) * 10


def _rss(process: psutil.Process) -> float:
    try:
        return process.memory_info().rss
    except psutil.Error:
        return 0.0
