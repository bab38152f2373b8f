"""A real Airflow 3 for the UI and CLI tests: api-server, scheduler and dag-processor processes.

Started the way ``airflow standalone`` starts them (LocalExecutor, SQLite, SimpleAuthManager),
but each component is its own process with its own log file, bound to 127.0.0.1 on a free port,
in a throwaway ``AIRFLOW_HOME``. Nothing is inherited from the test process's Airflow settings:
``tests/dags/conftest.py`` points ``AIRFLOW_HOME`` elsewhere when the whole suite runs.

The scheduler does not create scheduled runs (``[scheduler] use_job_schedule = False``): only
what a test triggers or backfills runs, so unpausing the ``@daily`` DAG starts nothing by itself.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx
import psutil

REPO_ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
AIRFLOW = VENV_BIN / "airflow"
DAG_ID = "fruits_pipeline"
ADMIN = "admin"
COMPONENTS = ("api-server", "scheduler", "dag-processor")
FINISHED = {"success", "failed"}
# One pipeline run (4 spark-submits, TensorFlow included) takes 2 to 6 minutes on two cores.
RUN_TIMEOUT_S = 8 * 60
HTTP_TIMEOUT_S = 60
HTTP_TRIES = 3

T = TypeVar("T")


class AirflowDidNotStart(RuntimeError):
    """A component died or Airflow was not healthy in time; the message has its log's tail."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(what: str, probe: Callable[[], T | None], timeout_s: float, every_s: float = 2) -> T:
    """Call ``probe`` until it returns something truthy; TimeoutError after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        result = probe()
        if result:
            return result
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not within {timeout_s:.0f} s")
        time.sleep(every_s)


def tail(path: Path, lines: int = 40) -> str:
    if not path.exists():
        return f"({path} does not exist)"
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def airflow_env(
    home: Path, port: int, password_file: Path, fruits: Mapping[str, str], dags_folder: Path
) -> dict[str, str]:
    """The environment of every Airflow process and CLI call: ours, none of the caller's."""
    inherited = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("AIRFLOW", "FRUITS_", "PYTEST_"))
    }
    url = f"http://127.0.0.1:{port}"
    return {
        **inherited,
        "PATH": f"{VENV_BIN}{os.pathsep}{inherited.get('PATH', '')}",
        "PYSPARK_PYTHON": sys.executable,
        "TF_CPP_MIN_LOG_LEVEL": "2",
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags_folder),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__CORE__PARALLELISM": "2",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{url}/execution/",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{ADMIN}:admin",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(password_file),
        # Four processes write to one SQLite file (Airflow puts it in WAL mode): wait up to 60 s
        # for its write lock, not sqlite3's default 5 s (a starved process on two busy cores
        # holds it longer).
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}?timeout=60",
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__API__BASE_URL": url,
        "AIRFLOW__API__WORKERS": "1",
        "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(32),
        "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",
        # Parsed at start; not again every 30 s (a CPU matters here, the file does not change).
        "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "600",
        "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(home / "logs"),
        **fruits,
    }


@dataclass
class Airflow:
    """A running Airflow: its URL, admin credentials, environment and component processes."""

    home: Path
    port: int
    password: str = field(repr=False)
    env: dict[str, str] = field(repr=False)
    output: Path
    processes: dict[str, subprocess.Popen] = field(default_factory=dict, repr=False)
    _token: str | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def username(self) -> str:
        return ADMIN

    def log(self, component: str) -> Path:
        return self.home / f"{component}.log"

    def logs_tail(self, lines: int = 30) -> str:
        return "\n\n".join(
            f"--- {name} ({self.log(name)}) ---\n{tail(self.log(name), lines)}"
            for name in COMPONENTS
        )

    # Processes ---------------------------------------------------------------------------------

    def cli(self, *args: str, timeout_s: float = 180) -> subprocess.CompletedProcess:
        """``airflow <args>`` against this Airflow; fails with its output when it exits non-zero."""
        done = subprocess.run(
            [str(AIRFLOW), *args],
            env=self.env,
            cwd=self.home,
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(
                f"airflow {' '.join(args)} exited {done.returncode}\n{done.stdout}\n{done.stderr}"
            )
        return done

    def start(self) -> None:
        for name in COMPONENTS:
            with self.log(name).open("ab") as log:
                self.processes[name] = subprocess.Popen(
                    [str(AIRFLOW), name],
                    env=self.env,
                    cwd=self.home,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,  # its own process group, killed as one
                )

    def check_alive(self) -> None:
        for name, process in self.processes.items():
            if process.poll() is not None:
                raise AirflowDidNotStart(
                    f"airflow {name} exited with {process.returncode}\n{self.logs_tail()}"
                )

    def stop(self, grace_s: float = 20) -> None:
        """Stop every component and everything it started (tasks, spark-submit, JVMs).

        Task processes get process groups of their own, so the whole tree is collected first.
        """
        tree: list[psutil.Process] = []
        for process in self.processes.values():
            try:
                parent = psutil.Process(process.pid)
                tree += [parent, *parent.children(recursive=True)]
            except psutil.NoSuchProcess:
                pass
        for process in self.processes.values():
            _signal_group(process.pid, signal.SIGTERM)
        for member in tree:
            _signal(member, signal.SIGTERM)
        _, alive = psutil.wait_procs(tree, timeout=grace_s)
        for process in self.processes.values():
            _signal_group(process.pid, signal.SIGKILL)
        for member in alive:
            _signal(member, signal.SIGKILL)
        psutil.wait_procs(alive, timeout=5)
        for process in self.processes.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=5)

    # REST API ------------------------------------------------------------------------------------

    def _request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        """One HTTP call, tried again (3 tries in all) when the server does not answer in time
        or answers 502-504: on a loaded two-core machine the api-server may lag a while."""
        for attempt in range(1, HTTP_TRIES + 1):
            try:
                response = httpx.request(method, url, timeout=HTTP_TIMEOUT_S, **kwargs)
            except httpx.TransportError:
                if attempt == HTTP_TRIES:
                    raise
            else:
                if response.status_code not in {502, 503, 504} or attempt == HTTP_TRIES:
                    response.raise_for_status()
                    return response
            time.sleep(2 * attempt)
        raise AssertionError("unreachable")

    def token(self) -> str:
        if self._token is None:
            credentials = {"username": self.username, "password": self.password}
            response = self._request("POST", f"{self.url}/auth/token", json=credentials)
            self._token = response.json()["access_token"]
        return self._token

    def api(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """``/api/v2/<path>`` as the admin; raises on an HTTP error."""
        return self._request(
            method,
            f"{self.url}/api/v2/{path.lstrip('/')}",
            headers={"Authorization": f"Bearer {self.token()}"},
            **kwargs,
        )

    def healthy(self) -> bool:
        self.check_alive()
        try:
            health = httpx.get(f"{self.url}/api/v2/monitor/health", timeout=10).json()
        except (httpx.HTTPError, ValueError):
            return False
        return all(
            health.get(part, {}).get("status") == "healthy"
            for part in ("metadatabase", "scheduler", "dag_processor")
        )

    def dag(self) -> dict[str, Any] | None:
        """The DAG as the API shows it, once the dag-processor has parsed it; else None."""
        self.check_alive()
        try:
            return self.api("GET", f"dags/{DAG_ID}").json()
        except httpx.HTTPStatusError as error:
            if error.response.status_code == 404:
                return None
            raise

    def set_paused(self, paused: bool) -> None:
        self.api("PATCH", f"dags/{DAG_ID}", json={"is_paused": paused})

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        """The DAG paused inside the block (its queued runs wait), unpaused after it."""
        self.set_paused(True)
        try:
            yield
        finally:
            self.set_paused(False)

    def import_errors(self) -> list[dict[str, Any]]:
        return self.api("GET", "importErrors").json()["import_errors"]

    def runs(self, **query: Any) -> list[dict[str, Any]]:
        return self.api("GET", f"dags/{DAG_ID}/dagRuns", params=query).json()["dag_runs"]

    def run(self, run_id: str) -> dict[str, Any]:
        return self.api("GET", f"dags/{DAG_ID}/dagRuns/{run_id}").json()

    def task_states(self, run_id: str) -> dict[str, str | None]:
        instances = self.api("GET", f"dags/{DAG_ID}/dagRuns/{run_id}/taskInstances").json()
        return {ti["task_id"]: ti["state"] for ti in instances["task_instances"]}

    def task_log(self, run_id: str, task_id: str, lines: int = 25) -> str:
        """The last lines (messages only) of the task's latest attempt log."""
        folder = self.home / "logs" / f"dag_id={DAG_ID}" / f"run_id={run_id}" / f"task_id={task_id}"
        attempts = sorted(folder.glob("attempt=*.log"), key=lambda path: path.stat().st_mtime)
        if not attempts:
            return f"(no log under {folder})"
        messages = []
        for line in attempts[-1].read_text(errors="replace").splitlines()[-lines:]:
            try:
                record = json.loads(line)
            except ValueError:
                messages.append(line)
                continue
            messages.append(str(record.get("event", line)))
            for error in record.get("error_detail") or []:  # the exception, frames last
                frames = error.get("frames") or []
                where = [f"  {f.get('filename')}:{f.get('lineno')} {f.get('name')}" for f in frames]
                messages += [*where[-6:], f"  {error.get('exc_type')}: {error.get('exc_value')}"]
        return f"{attempts[-1]}:\n" + "\n".join(messages)

    def explain(self, run_id: str) -> str:
        """A run's task states and the log tail of each task that did not succeed."""
        states = self.task_states(run_id)
        failed = [task for task, state in states.items() if state in {"failed", "up_for_retry"}]
        return "\n\n".join(
            [f"run {run_id}: {states}", *(self.task_log(run_id, task) for task in failed)]
        )

    def wait_until_finished(self, run_ids: list[str], timeout_s: float) -> list[dict[str, Any]]:
        """Poll the runs until each is success or failed (bounded); return them."""

        def finished() -> list[dict[str, Any]] | None:
            self.check_alive()
            runs = [self.run(run_id) for run_id in run_ids]
            return runs if all(run["state"] in FINISHED for run in runs) else None

        try:
            return wait_for(f"runs {run_ids} finished", finished, timeout_s, every_s=5)
        except TimeoutError as error:
            states = {run_id: self.run(run_id)["state"] for run_id in run_ids}
            raise TimeoutError(f"{error}; states now {states}\n{self.logs_tail()}") from None


def _signal_group(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)  # started with start_new_session: its group id is its pid


def _signal(process: psutil.Process, sig: int) -> None:
    with contextlib.suppress(psutil.NoSuchProcess):
        process.send_signal(sig)


def start_airflow(
    home: Path,
    output: Path,
    fruits: Mapping[str, str],
    timeout_s: float,
    dags_folder: Path = REPO_ROOT / "dags",
) -> Airflow:
    """Migrate a fresh SQLite database, start the components, wait until healthy and the DAG is
    parsed without import errors, unpause it. Stops what it started when any of that fails."""
    home.mkdir(parents=True, exist_ok=True)
    port = free_port()
    password = secrets.token_urlsafe(16)
    # SimpleAuthManager reads the admin's password from this file and keeps it when it exists.
    password_file = home / "simple_auth_manager_passwords.json.generated"
    password_file.write_text(json.dumps({ADMIN: password}) + "\n")
    password_file.chmod(0o600)
    env = airflow_env(home, port, password_file, fruits, dags_folder)
    airflow = Airflow(home=home, port=port, password=password, env=env, output=output)
    deadline = time.monotonic() + timeout_s
    try:
        airflow.cli("db", "migrate", timeout_s=timeout_s)
        airflow.start()
        wait_for("Airflow healthy", airflow.healthy, deadline - time.monotonic())
        dag = wait_for("DAG parsed", airflow.dag, max(1, deadline - time.monotonic()))
        errors = airflow.import_errors()
        if errors:
            raise AirflowDidNotStart(f"DAG import errors: {errors}")
        if dag["is_paused"]:
            airflow.set_paused(False)
    except BaseException as error:
        airflow.stop()
        if isinstance(error, TimeoutError):
            raise AirflowDidNotStart(f"{error}\n{airflow.logs_tail()}") from None
        raise
    return airflow
