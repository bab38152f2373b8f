"""What every stage job shares: its command line, its checks, its session and its report.

    spark-submit jobs/<stage>.py --root OUTPUT_ROOT --ds YYYY-MM-DD [stage options]

A job validates its arguments before any Spark work (exit 2 with one line on bad input), runs
the stage's body with a fresh run id, then writes its JSON report to
``<root>/reports/ds=<ds>/<stage>.json`` and prints one line.
"""

from __future__ import annotations

import argparse
import datetime as dt
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from fruits import catalog, storage, validation
from fruits.config import RUN_RETENTION_HOURS
from fruits.errors import InputError
from fruits.stages import RunPaths


@dataclass(frozen=True)
class JobRun:
    """One execution of a stage: where it works, its run id, how long old runs are kept."""

    paths: RunPaths
    run_id: str
    retention: dt.timedelta

    @classmethod
    def create(cls, paths: RunPaths, retention_hours: float = RUN_RETENTION_HOURS) -> JobRun:
        return cls(paths, catalog.new_run_id(), dt.timedelta(hours=retention_hours))

    def publish(self, dataset: str, rows: int | None, details: dict[str, Any]) -> catalog.Run:
        """Make this run's output of ``dataset`` current for the date, then delete superseded
        runs of the date older than the retention."""
        partition = self.paths.partition(dataset)
        run = catalog.publish(partition, self.run_id, rows=rows, details=details)
        catalog.cleanup(self.paths.dataset(dataset), partition, self.retention)
        return run

    def reuse(self, dataset: str, earlier: catalog.Run, details: dict[str, Any]) -> catalog.Run:
        """Make an earlier run's output (of any date) current for this date: no data written."""
        return catalog.publish(
            self.paths.partition(dataset),
            earlier.run_id,
            uri=earlier.uri,
            rows=earlier.rows,
            details={**earlier.details, **details, "reused_from": earlier.partition},
        )

    def output(self, dataset: str) -> str:
        """The folder this run writes its ``dataset`` output into."""
        return catalog.run_uri(self.paths.partition(dataset), self.run_id)


def parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--root", required=True, help="output root (local path, file://, s3://)")
    p.add_argument("--ds", required=True, help="logical date, YYYY-MM-DD")
    p.add_argument(
        "--retention-hours",
        type=float,
        default=RUN_RETENTION_HOURS,
        help="keep superseded run folders this long (default %(default)s)",
    )
    return p


def run_job(
    name: str,
    argv: Sequence[str] | None,
    parser: argparse.ArgumentParser,
    body: Callable[[Any, JobRun, argparse.Namespace], dict[str, Any]],
) -> dict[str, Any]:
    """Parse and check the arguments, run ``body(spark, job, args)``, write and print its
    report; exit 2 with one line on bad input."""
    args = parser.parse_args(argv)
    try:
        inputs = tuple(getattr(args, "input", None) or ())
        paths = RunPaths(inputs, args.root, validation.iso_date(args.ds))
        validation.output_root(paths.root)
        job = JobRun.create(paths, args.retention_hours)
        from fruits.spark import get_spark

        spark = get_spark(f"fruits-{name}")
        started, operations = time.time(), storage.OPERATIONS.copy()
        report = body(spark, job, args)
    except InputError as exc:
        parser.exit(2, f"fruits {name}: error: {exc}\n")
    # Object-store requests this stage made itself (Spark's committer writes the data files).
    requests = dict(storage.OPERATIONS - operations)
    report = {"stage": name, "ds": paths.ds, "run_id": job.run_id,
              "seconds": round(time.time() - started, 2), **report,
              "storage_requests": requests}  # fmt: skip
    storage.write_json(paths.report(name), report)
    print(f"fruits {name}: done in {report['seconds']} s, report {paths.report(name)}")
    return report
