"""The DAG's ``publish_model`` task: gate the model train just wrote, promote it if it passes.

The train output folder comes from the train stage's report (key ``output``): the local twin's
train task returns that report as XCom; on EMR it is read from ``RunPaths.report("train")`` in
S3. The gate and the pointer are :mod:`fruits.promotion`'s. Settings, read when the task runs
(an Airflow Variable wins over the environment variable; unset: the default):

* ``fruits_gate_floors`` / ``FRUITS_GATE_FLOORS``: floor per evaluation domain of the train
  report (``<source>/<split>/<level>``), e.g. ``*/fruit=0.7,images/Test/variety=0.95``
  (``*/LEVEL``: every domain of that level; ``*``: every domain not named). Default: variety
  0.80, fruit 0.60, unknown (share refused) 0.80; a named domain is required;
* ``fruits_gate_max_regression`` / ``FRUITS_GATE_MAX_REGRESSION``: how much lower than the
  served model's a domain's accuracy may be (default 0.02);
* ``fruits_model_pointer`` / ``FRUITS_MODEL_POINTER``: the pointer's URI (default
  ``<output root>/serving/current-model.json``).

A model that fails the gate fails the task (and so the run) with every reason in its message;
the pointer, and so the served model, stay as they were.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Mapping
from typing import Any, cast

from airflow.sdk.exceptions import AirflowFailException

from fruits import promotion
from fruits_airflow.uris import is_s3, split_s3

log = logging.getLogger(__name__)

SETTINGS = {
    "floors": ("fruits_gate_floors", "FRUITS_GATE_FLOORS"),
    "max_regression": ("fruits_gate_max_regression", "FRUITS_GATE_MAX_REGRESSION"),
    "pointer": ("fruits_model_pointer", "FRUITS_MODEL_POINTER"),
}


class ModelNotPromoted(AirflowFailException):
    """The trained model failed the quality gate: the served model stays, no retries."""


class CannotPublish(AirflowFailException):
    """The gate cannot decide (no report, bad settings): fix and rerun the task."""


Getter = Callable[[str], str | None]


def setting(name: str, get_variable: Getter | None = None) -> str | None:
    """The Airflow Variable of setting ``name``, else its environment variable, else None."""
    variable, env = SETTINGS[name]
    if get_variable is None:
        from fruits_airflow.deployment import variable as airflow_variable

        get_variable = airflow_variable
    for value in (get_variable(variable), os.environ.get(env)):  # a blank Variable is unset
        if value and value.strip():
            return value.strip()
    return None


def gate_config(get_variable: Getter | None = None) -> promotion.GateConfig:
    try:
        return promotion.GateConfig.parse(
            setting("floors", get_variable), setting("max_regression", get_variable)
        )
    except promotion.PromotionError as error:
        raise CannotPublish(f"{error} (Variable fruits_gate_* or FRUITS_GATE_*)") from None


def pointer_uri(output_root: str, get_variable: Getter | None = None) -> str:
    return setting("pointer", get_variable) or promotion.default_pointer(output_root)


def publish(
    train_report: Mapping[str, Any] | None,
    output_root: str,
    ds: str,
    run_id: str | None,
    s3: Any = None,
    get_variable: Getter | None = None,
    allowed_buckets: frozenset[str] | None = None,
) -> dict[str, Any]:
    """Gate the model the train report names; return the decision (XCom) or raise."""
    model = (train_report or {}).get("output")
    if not model:
        raise CannotPublish(f"the train stage's report names no output folder: {train_report!r}")
    pointer = pointer_uri(output_root, get_variable)
    if allowed_buckets is not None and is_s3(pointer):
        bucket = split_s3(pointer)[0]
        if bucket not in allowed_buckets:
            raise CannotPublish(
                f"pointer {pointer}: bucket {bucket!r} is not a bucket of this deployment "
                f"({', '.join(sorted(allowed_buckets))})"
            )
    try:
        decision = promotion.promote(
            model, pointer, gate_config(get_variable), ds=ds, run_id=run_id, s3=s3
        )
    except promotion.PromotionError as error:
        raise CannotPublish(str(error)) from None
    log.info("publish_model: %s", decision.summary())
    if decision.outcome == "rejected":
        raise ModelNotPromoted(decision.summary())
    return decision.as_dict()


def read_train_report(uri: str, s3: Any = None) -> dict[str, Any]:
    """The train stage's report JSON (on EMR: written by the step to S3)."""
    data = promotion.read_bytes(uri, s3)
    if data is None:
        raise CannotPublish(f"no train report at {uri}: did the train step write it?")
    return cast(dict[str, Any], json.loads(data.decode("utf-8")))
