"""Which graph the DAG file builds — EMR or the local twin — and the other parse-time knobs.

Decided when the file is parsed:

* ``FRUITS_EXECUTION`` (env) or else the Airflow Variable ``fruits_execution``: ``emr`` or
  ``local``;
* with neither, ``emr`` when the ``aws_default`` connection exists, else ``local``;
* ``FRUITS_DEFERRABLE`` (``true``/``false``): EMR sensors and waits deferred to the triggerer;
  default: when ``aiobotocore`` (the provider's async extra) is installed;
* ``FRUITS_POKE_INTERVAL``: seconds between two looks at a step or cluster (default 60).
"""

from __future__ import annotations

import enum
import importlib.util
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from fruits_airflow.deployment import AWS_CONN_ID, variable

EXECUTION_ENV = "FRUITS_EXECUTION"
EXECUTION_VARIABLE = "fruits_execution"
DEFAULT_POKE_INTERVAL_S = 60.0


class Mode(enum.StrEnum):
    EMR = "emr"
    LOCAL = "local"


@dataclass(frozen=True)
class Execution:
    mode: Mode
    deferrable: bool
    poke_interval_s: float


def resolve_mode(
    env: Mapping[str, str],
    variable: Callable[[str], str | None],
    connection_exists: Callable[[str], bool],
) -> Mode:
    """The mode from the env var, else the Variable, else whether AWS is configured."""
    chosen = env.get(EXECUTION_ENV) or variable(EXECUTION_VARIABLE)
    if chosen:
        try:
            return Mode(chosen.strip().lower())
        except ValueError:
            raise ValueError(
                f"{EXECUTION_ENV} / Variable {EXECUTION_VARIABLE} must be 'emr' or 'local', "
                f"got {chosen!r}"
            ) from None
    return Mode.EMR if connection_exists(AWS_CONN_ID) else Mode.LOCAL


def execution(env: Mapping[str, str] | None = None) -> Execution:
    """The parse-time settings of the ``fruits_pipeline`` DAG."""
    env = os.environ if env is None else env
    return Execution(
        mode=resolve_mode(env, variable, _connection_exists),
        deferrable=_flag(env.get("FRUITS_DEFERRABLE"), default=_async_aws_installed()),
        poke_interval_s=float(env.get("FRUITS_POKE_INTERVAL") or DEFAULT_POKE_INTERVAL_S),
    )


def _flag(value: str | None, default: bool) -> bool:
    if value is None or not value.strip():
        return default
    if value.strip().lower() in {"1", "true", "yes", "on"}:
        return True
    if value.strip().lower() in {"0", "false", "no", "off"}:
        return False
    raise ValueError(f"FRUITS_DEFERRABLE must be true or false, got {value!r}")


def _async_aws_installed() -> bool:
    return importlib.util.find_spec("aiobotocore") is not None


def _connection_exists(conn_id: str) -> bool:
    from airflow.sdk import Connection
    from airflow.sdk.exceptions import AirflowNotFoundException

    try:
        Connection.get(conn_id)
    except AirflowNotFoundException:
        return False
    return True
