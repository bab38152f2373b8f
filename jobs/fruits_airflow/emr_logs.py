"""Why an EMR step or cluster failed, read from the logs EMR writes under the cluster's LogUri.

EMR's layout, under ``<LogUri>/<cluster id>/``:

* ``steps/<step id>/stderr.gz`` — the step's own output. In client mode the Spark driver runs
  in the step's ``spark-submit``, so the driver's Python traceback is here; in cluster mode it
  only says that the application failed, and names it (``Submitted application application_…``);
* ``containers/<application id>/<container id>/stderr.gz`` — YARN container logs. In cluster
  mode the driver is the application master: the first container of the attempt,
  ``container_[e<epoch>_]<cluster ts>_<app>_<attempt>_000001``;
* ``node/<instance id>/bootstrap-actions/<n>/stderr.gz`` — a bootstrap action's output.

EMR uploads step logs when the step ends and the others every few minutes: a report waits for
them, up to a bound, before it gives up and says where to look.
"""

from __future__ import annotations

import gzip
import re
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from fruits_airflow.uris import split_s3

if TYPE_CHECKING:
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

TRACEBACK = "Traceback (most recent call last):"
# log4j records (EMR's Spark pattern "yy/MM/dd HH:mm:ss LEVEL …", or ISO dates) end a traceback
LOG_RECORD = re.compile(r"^(\d{2}/\d{2}/\d{2}|\d{4}-\d{2}-\d{2})[ T]\d{2}:\d{2}:\d{2}")
APPLICATION = re.compile(r"\bapplication_\d+_\d+\b")
DRIVER_CONTAINER = re.compile(r"/container_(?:e\d+_)?\d+_\d+_(\d+)_000001/stderr\.gz$")
TRACEBACK_HEAD, TRACEBACK_TAIL = 30, 150  # lines kept of a very long traceback
STDERR_TAIL_LINES = 40
LOG_WAIT_S = 300.0  # how long a report waits for EMR to upload the logs it needs
LOG_POLL_S = 15.0


def python_traceback(text: str) -> str | None:
    """The last Python traceback in a log, with its chained causes, up to the next log record.

    Log4j lines split a log into blocks; the last block holding a line that *is*
    ``Traceback (most recent call last):`` is the driver's fatal error (an executor's traceback
    inside a Spark warning starts mid-line and is part of a record). Very long tracebacks keep
    their head and their tail, where the exception is."""
    blocks: list[list[str]] = [[]]
    for line in text.splitlines():
        if LOG_RECORD.match(line):
            blocks.append([])
        else:
            blocks[-1].append(line)
    for block in reversed(blocks):
        starts = [i for i, line in enumerate(block) if line.strip() == TRACEBACK]
        if starts:
            lines = block[starts[0] :]
            while lines and not lines[-1].strip():
                lines.pop()
            if len(lines) > TRACEBACK_HEAD + TRACEBACK_TAIL:
                omitted = len(lines) - TRACEBACK_HEAD - TRACEBACK_TAIL
                lines = [
                    *lines[:TRACEBACK_HEAD],
                    f"    … {omitted} lines omitted …",
                    *lines[-TRACEBACK_TAIL:],
                ]
            return "\n".join(lines)
    return None


def application_ids(text: str) -> list[str]:
    """YARN application ids a step's output names, in order of appearance."""
    return list(dict.fromkeys(APPLICATION.findall(text)))


class LogReader:
    """Gzipped EMR logs of one cluster, read with the provider's ``S3Hook``."""

    def __init__(self, s3: S3Hook, log_uri: str, cluster_id: str) -> None:
        self.s3 = s3
        self.bucket, prefix = split_s3(log_uri.replace("s3n://", "s3://"))
        self.root = "/".join(p for p in (prefix.strip("/"), cluster_id) if p)

    def uri(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"

    def key(self, *parts: str) -> str:
        return "/".join((self.root, *parts))

    def read(self, key: str) -> str | None:
        """A ``.gz`` log's text, None while it is not there."""
        if not self.s3.check_for_key(key, self.bucket):
            return None
        raw = self.s3.get_key(key, self.bucket).get()["Body"].read()
        return gzip.decompress(raw).decode(errors="replace")

    def keys(self, *parts: str) -> list[str]:
        return sorted(self.s3.list_keys(bucket_name=self.bucket, prefix=self.key(*parts) + "/"))

    def driver_container_stderr(self, application: str) -> str | None:
        """Key of the last attempt's application-master stderr (cluster mode: the driver)."""
        attempts = {
            int(match[1]): key
            for key in self.keys("containers", application)
            if (match := DRIVER_CONTAINER.search(key))
        }
        return attempts[max(attempts)] if attempts else None


def find_traceback(logs: LogReader, step_id: str) -> tuple[str, str | None, str | None]:
    """(where, traceback, step stderr): the step's stderr first (client mode), then the driver
    container of each application it names (cluster mode)."""
    step_key = logs.key("steps", step_id, "stderr.gz")
    stderr = logs.read(step_key)
    if stderr is None:
        return logs.uri(step_key), None, None
    if found := python_traceback(stderr):
        return logs.uri(step_key), found, stderr
    for application in reversed(application_ids(stderr)):
        key = logs.driver_container_stderr(application)
        if key and (text := logs.read(key)) and (found := python_traceback(text)):
            return logs.uri(key), found, stderr
    return logs.uri(step_key), None, stderr


def step_failure_report(
    emr: Any,
    s3: S3Hook,
    cluster_id: str,
    step_id: str,
    *,
    wait_s: float = LOG_WAIT_S,
    poll_s: float = LOG_POLL_S,
    sleep: Callable[[float], None] = time.sleep,
) -> str:
    """The failed step's state, EMR's reason and the driver's Python traceback, as log text."""
    step = emr.describe_step(ClusterId=cluster_id, StepId=step_id)["Step"]
    status = step["Status"]
    details = status.get("FailureDetails") or {}
    changed = (status.get("StateChangeReason") or {}).get("Message")
    lines = [
        f"EMR step {step_id} ({step.get('Name')}) on cluster {cluster_id}: {status['State']}",
        f"  Reason:  {details.get('Reason') or changed or '-'}",
        f"  Message: {details.get('Message', '-')}",
        f"  LogFile: {details.get('LogFile', '-')}",
    ]
    log_uri = emr.describe_cluster(ClusterId=cluster_id)["Cluster"].get("LogUri")
    if not log_uri:
        return "\n".join([*lines, "  the cluster has no LogUri: no logs to read"])
    logs = LogReader(s3, log_uri, cluster_id)
    deadline = time.monotonic() + wait_s
    where, traceback, stderr = find_traceback(logs, step_id)
    while traceback is None and time.monotonic() < deadline:
        sleep(poll_s)
        where, traceback, stderr = find_traceback(logs, step_id)
    if traceback is not None:
        lines += [f"  Python traceback of the driver ({where}):", *_indent(traceback)]
    elif stderr is not None:
        tail = stderr.splitlines()[-STDERR_TAIL_LINES:]
        lines += [f"  no Python traceback in {where}; its last {len(tail)} lines:", *_indent(tail)]
    else:
        lines.append(
            f"  no step log at {where} after {wait_s:.0f} s: EMR uploads logs every few "
            f"minutes; look there and under {logs.uri(logs.key('containers'))}/ later"
        )
    return "\n".join(lines)


def cluster_failure_report(
    emr: Any, s3: S3Hook, cluster_id: str, status: dict[str, Any] | None = None
) -> str:
    """Why a cluster did not start: its state (``status``, else the current one), EMR's reason,
    a failed bootstrap's stderr."""
    cluster = emr.describe_cluster(ClusterId=cluster_id)["Cluster"]
    status = status or cluster["Status"]
    reason = status.get("StateChangeReason") or {}
    lines = [
        f"EMR cluster {cluster_id}: {status['State']}",
        f"  Reason:  {reason.get('Code', '-')}",
        f"  Message: {reason.get('Message', '-')}",
    ]
    if cluster.get("LogUri"):
        logs = LogReader(s3, cluster["LogUri"], cluster_id)
        for key in logs.keys("node"):
            if "/bootstrap-actions/" in key and key.endswith("/stderr.gz"):
                text = logs.read(key) or ""
                if text.strip():
                    tail = text.splitlines()[-STDERR_TAIL_LINES:]
                    lines += [f"  bootstrap stderr ({logs.uri(key)}):", *_indent(tail)]
                    break
    return "\n".join(lines)


def _indent(text: str | list[str]) -> list[str]:
    lines = text.splitlines() if isinstance(text, str) else text
    return [f"    {line}" for line in lines]
