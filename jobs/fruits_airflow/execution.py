"""Which graph the DAG file builds — EMR or the local twin — and the other parse-time knobs.

Decided from the environment only, when the file is parsed: the graph's shape never depends on
the metadata database, and a dag-processor loop makes no Variable or Connection lookup.

* ``FRUITS_EXECUTION``: ``emr`` or ``local`` (default ``local``: a fresh install without AWS
  runs the local twin; a production deployment sets ``emr``);
* ``FRUITS_DEFERRABLE`` (``true``/``false``): EMR sensors and waits deferred to the triggerer;
  default: when ``aiobotocore`` (the provider's async extra) is installed;
* ``FRUITS_POKE_INTERVAL``: seconds between two looks at a step or cluster (default 60).
"""

from __future__ import annotations

import enum
import importlib.util
import os
from collections.abc import Mapping
from dataclasses import dataclass

EXECUTION_ENV = "FRUITS_EXECUTION"
DEFAULT_POKE_INTERVAL_S = 60.0


class Mode(enum.StrEnum):
    EMR = "emr"
    LOCAL = "local"


@dataclass(frozen=True)
class Execution:
    mode: Mode
    deferrable: bool
    poke_interval_s: float


def resolve_mode(env: Mapping[str, str]) -> Mode:
    """The mode named by ``FRUITS_EXECUTION``; the local twin when it is unset."""
    chosen = (env.get(EXECUTION_ENV) or Mode.LOCAL.value).strip().lower()
    try:
        return Mode(chosen)
    except ValueError:
        raise ValueError(
            f"{EXECUTION_ENV} must be 'emr' or 'local', got {env.get(EXECUTION_ENV)!r}"
        ) from None


def execution(env: Mapping[str, str] | None = None) -> Execution:
    """The parse-time settings of the ``fruits_pipeline`` DAG (environment only)."""
    env = os.environ if env is None else env
    return Execution(
        mode=resolve_mode(env),
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
