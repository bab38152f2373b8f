"""Where runs live: AWS settings from Airflow Variables (EMR), folders from env vars (local).

Read at run time, in the ``validate_params`` task, so changing a Variable needs no redeploy.
One EMR setting is an environment variable of the Airflow workers instead, because it names a
folder of their file system: ``FRUITS_EMR_WEIGHTS_DIR``, the only folder a run's ``weights`` may
upload a local file from (unset: none; see :func:`fruits_airflow.run_params.local_weights_file`).
A Variable can be edited by any UI user with Variable rights; the workers' environment only by
whoever deploys them.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from typing import Any

from airflow.sdk.exceptions import AirflowFailException

from fruits.config import DEFAULT_WEIGHTS, IMAGE_SIZE, PRODUCTION_INPUT_SIZE
from fruits.layout import DEFAULT_INPUT, DEFAULT_OUTPUT
from fruits_airflow.uris import s3_uri, split_s3

AWS_CONN_ID = "aws_default"
DEFAULT_REGION = "eu-west-3"
WEIGHTS_DIR_ENV = "FRUITS_EMR_WEIGHTS_DIR"
DEPLOY_MODES = ("client", "cluster")


class MissingSetting(AirflowFailException):
    """A required Airflow Variable is not set or has a bad value: the run stops, no retries."""


@dataclass(frozen=True)
class AwsSettings:
    """The EMR deployment: one Airflow Variable per field (see :data:`AWS_VARIABLES`)."""

    region: str
    bucket: str
    input: str
    weights: str
    master_instance_type: str
    core_instance_type: str
    security_configuration: str
    service_role: str
    instance_profile: str
    idle_timeout_s: int
    subnet_id: str | None
    input_size: int = PRODUCTION_INPUT_SIZE  # the network input side of a run by default
    allowed_buckets: str = ""  # comma-separated, besides ``bucket``
    deploy_mode: str = "client"  # where the Spark driver runs (fruits_airflow.capacity)
    weights_dir: str | None = None  # FRUITS_EMR_WEIGHTS_DIR of the Airflow workers

    @property
    def readable_buckets(self) -> frozenset[str]:
        """Buckets a run's ``input`` and S3 ``weights`` may lie in."""
        extra = (name.strip() for name in self.allowed_buckets.split(","))
        return frozenset({self.bucket, *(name for name in extra if name)})

    @property
    def output_root(self) -> str:
        return s3_uri(self.bucket, "output")

    @property
    def artifacts_root(self) -> str:
        return s3_uri(self.bucket, "artifacts")

    @property
    def log_uri(self) -> str:
        return s3_uri(self.bucket, "logs", "emr") + "/"


# field: (Airflow Variable, default). None: required; a default may name other fields.
AWS_VARIABLES: dict[str, tuple[str, str | None]] = {
    "region": ("fruits_aws_region", DEFAULT_REGION),
    "bucket": ("fruits_bucket", None),
    "input": ("fruits_input", "s3://{bucket}/input"),
    "weights": ("fruits_weights", DEFAULT_WEIGHTS),
    "input_size": ("fruits_input_size", str(PRODUCTION_INPUT_SIZE)),
    "master_instance_type": ("fruits_emr_master_instance_type", "m5.xlarge"),
    "core_instance_type": ("fruits_emr_core_instance_type", "m5.xlarge"),
    "security_configuration": ("fruits_emr_security_configuration", "fruits-encryption-at-rest"),
    "service_role": ("fruits_emr_service_role", "EMR_DefaultRole_V2"),
    "instance_profile": ("fruits_emr_instance_profile", "EMR_EC2_DefaultRole"),
    "idle_timeout_s": ("fruits_emr_idle_timeout_s", "3600"),
    "subnet_id": ("fruits_emr_subnet_id", ""),
    "allowed_buckets": ("fruits_s3_allowed_buckets", ""),
    "deploy_mode": ("fruits_emr_deploy_mode", "client"),
}


def aws_settings(
    get: Callable[[str], str | None] | None = None, env: Mapping[str, str] | None = None
) -> AwsSettings:
    """The settings from Airflow Variables and the workers' environment (``get(name)`` → value
    or None, and ``env``, for tests)."""
    get = get or variable
    env = os.environ if env is None else env
    raw = {field: (get(name) or "").strip() for field, (name, _) in AWS_VARIABLES.items()}
    for field, (name, default) in AWS_VARIABLES.items():
        if not raw[field]:
            if default is None:
                raise MissingSetting(f"set the Airflow Variable {name} (see docs/aws.md)")
            raw[field] = default.format(**raw)
    try:
        split_s3(f"s3://{raw['bucket']}")
    except ValueError:
        raise MissingSetting(
            f"{AWS_VARIABLES['bucket'][0]} must be a bucket name (no s3://), got {raw['bucket']!r}"
        ) from None
    try:
        idle_timeout = int(raw["idle_timeout_s"])
    except ValueError:
        raise MissingSetting(
            f"{AWS_VARIABLES['idle_timeout_s'][0]} must be a number of seconds, "
            f"got {raw['idle_timeout_s']!r}"
        ) from None

    raw["deploy_mode"] = raw["deploy_mode"].lower()
    if raw["deploy_mode"] not in DEPLOY_MODES:
        raise MissingSetting(
            f"{AWS_VARIABLES['deploy_mode'][0]} must be client or cluster, "
            f"got {raw['deploy_mode']!r}"
        )
    values: dict[str, Any] = {
        **raw,
        "idle_timeout_s": idle_timeout,
        "input_size": _pixels(AWS_VARIABLES["input_size"][0], raw["input_size"]),
        "subnet_id": raw["subnet_id"] or None,
    }
    return AwsSettings(**values, weights_dir=(env.get(WEIGHTS_DIR_ENV) or "").strip() or None)


def aws_settings_from(values: Mapping[str, Any]) -> AwsSettings:
    """Rebuild settings passed between tasks (XCom) as a dict."""
    return AwsSettings(**{f.name: values[f.name] for f in fields(AwsSettings)})


def variable(name: str) -> str | None:
    """An Airflow Variable's value, None when unset."""
    from airflow.sdk import Variable

    value: str | None = Variable.get(name, default=None)
    return value


@dataclass(frozen=True)
class LocalSettings:
    """The local twin's defaults: ``FRUITS_INPUT``, ``FRUITS_OUTPUT``, ``FRUITS_WEIGHTS``,
    ``FRUITS_INPUT_SIZE``."""

    input: str
    output_root: str
    weights: str
    input_size: int = IMAGE_SIZE


def local_settings(env: Mapping[str, str] | None = None) -> LocalSettings:
    env = os.environ if env is None else env
    return LocalSettings(
        input=env.get("FRUITS_INPUT") or str(DEFAULT_INPUT),
        output_root=env.get("FRUITS_OUTPUT") or str(DEFAULT_OUTPUT),
        weights=env.get("FRUITS_WEIGHTS") or DEFAULT_WEIGHTS,
        input_size=_pixels("FRUITS_INPUT_SIZE", env.get("FRUITS_INPUT_SIZE") or str(IMAGE_SIZE)),
    )


def _pixels(name: str, value: str) -> int:
    if not value.strip().isdigit():
        raise MissingSetting(f"{name} must be a number of pixels, got {value!r}")
    return int(value)
