"""The DAG's Params and the ``validate_params`` task's checks, giving a :class:`RunRequest`.

Airflow checks each Param's JSON schema when a run is triggered (UI, CLI, API); the task then
checks what a schema cannot (a folder exists, a URI fits the execution mode) and fills the
deployment defaults, so that every later task works from one validated request.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from airflow.sdk import Param
from airflow.sdk.exceptions import AirflowFailException

from fruits.config import DEFAULT_VARIANCE, DEFAULT_WEIGHTS, FEATURE_DIM
from fruits.stages import PipelineOptions, RunPaths
from fruits_airflow.deployment import AwsSettings, LocalSettings
from fruits_airflow.execution import Mode
from fruits_airflow.uris import is_s3, split_s3

DEFAULT_CORE_INSTANCES = 2
MAX_CORE_INSTANCES = 20


class InvalidRun(AirflowFailException):
    """The run's params or settings are unusable: the run stops, without retries."""


def dag_params(mode: Mode) -> dict[str, Param]:
    """Params of a manual run; EMR adds the cluster's size and market."""
    params = {
        "input": Param(
            None,
            type=["null", "string"],
            minLength=1,
            title="Input images",
            description="Training/<Class>/*.jpg … under a local folder (local) or an s3:// "
            "prefix (EMR). Empty: the deployment's default (FRUITS_INPUT / fruits_input).",
        ),
        "weights": Param(
            None,
            type=["null", "string"],
            minLength=1,
            title="MobileNetV2 weights",
            description="'imagenet', a weights file or (EMR) an s3:// URI. Empty: the "
            "deployment's default (FRUITS_WEIGHTS / fruits_weights).",
        ),
        "k": Param(
            None,
            type=["null", "integer"],
            minimum=1,
            maximum=FEATURE_DIM,
            title="PCA components",
            description="When set, PCA keeps exactly k components and variance is ignored.",
        ),
        "variance": Param(
            DEFAULT_VARIANCE,
            type="number",
            exclusiveMinimum=0,
            maximum=1,
            title="PCA explained-variance target",
            description="Smallest k whose cumulative explained variance reaches this.",
        ),
    }
    if mode is Mode.EMR:
        params |= {
            "core_instance_count": Param(
                DEFAULT_CORE_INSTANCES,
                type="integer",
                minimum=1,
                maximum=MAX_CORE_INSTANCES,
                title="EMR core nodes",
            ),
            "core_spot": Param(
                False,
                type="boolean",
                title="Core nodes on Spot",
                description="Cheaper; a reclaimed node costs a retry of its tasks.",
            ),
        }
    return params


@dataclass(frozen=True)
class RunRequest:
    """A validated run: what to read, where to write, the knobs; JSON-able for XCom."""

    input: str
    output_root: str
    weights: str
    k: int | None
    variance: float
    core_instance_count: int = DEFAULT_CORE_INSTANCES
    core_spot: bool = False

    def paths(self, ds: str) -> RunPaths:
        return RunPaths(inputs=(self.input,), root=self.output_root, ds=ds)

    def options(self) -> PipelineOptions:
        return PipelineOptions(weights=self.weights, k=self.k, variance=self.variance)

    def s3_buckets(self) -> set[str]:
        """Every bucket the run reads or writes."""
        uris = (self.input, self.output_root, self.weights)
        return {split_s3(uri)[0] for uri in uris if is_s3(uri)}

    @classmethod
    def from_xcom(cls, values: Mapping[str, Any]) -> RunRequest:
        return cls(**{f.name: values[f.name] for f in fields(cls)})


def validate_local(params: Mapping[str, Any], settings: LocalSettings) -> RunRequest:
    """The local twin reads and writes local folders only."""
    source = params.get("input") or settings.input
    if is_s3(source):
        raise InvalidRun(f"input {source!r}: a local run reads a local folder, not S3")
    folder = Path(source.removeprefix("file://")).expanduser().resolve()
    if not folder.is_dir():
        raise InvalidRun(f"input folder {folder} not found (param input or FRUITS_INPUT)")
    weights = params.get("weights") or settings.weights
    if weights != DEFAULT_WEIGHTS:
        if is_s3(weights):
            raise InvalidRun(f"weights {weights!r}: a local run reads a local file, not S3")
        weights = str(_existing_file(weights, "weights (param weights or FRUITS_WEIGHTS)"))
    return RunRequest(
        input=str(folder),
        output_root=str(Path(settings.output_root).expanduser().resolve()),
        weights=weights,
        k=params.get("k"),
        variance=params.get("variance", DEFAULT_VARIANCE),
    )


def validate_emr(params: Mapping[str, Any], settings: AwsSettings) -> RunRequest:
    """EMR reads S3; weights may also be a file on the Airflow worker (uploaded by prepare)."""
    source = params.get("input") or settings.input
    try:
        split_s3(source)
    except ValueError as error:
        raise InvalidRun(f"input: an EMR run reads S3 — {error}") from None
    weights = params.get("weights") or settings.weights
    if weights != DEFAULT_WEIGHTS:
        if is_s3(weights):
            try:
                split_s3(weights)
            except ValueError as error:
                raise InvalidRun(f"weights: {error}") from None
        else:
            weights = str(_existing_file(weights, "weights (param weights or fruits_weights)"))
    _check_allowed(source, "input", settings)
    if is_s3(weights):
        _check_allowed(weights, "weights", settings)
    return RunRequest(
        input=source.rstrip("/"),
        output_root=settings.output_root,
        weights=weights,
        k=params.get("k"),
        variance=params.get("variance", DEFAULT_VARIANCE),
        core_instance_count=params.get("core_instance_count", DEFAULT_CORE_INSTANCES),
        core_spot=bool(params.get("core_spot", False)),
    )


def _check_allowed(uri: str, what: str, settings: AwsSettings) -> None:
    """An EMR run reads S3 only under the deployment bucket or the allow-list Variable."""
    bucket = split_s3(uri)[0]
    if bucket not in settings.readable_buckets:
        allowed = ", ".join(sorted(settings.readable_buckets))
        raise InvalidRun(
            f"{what} {uri!r}: bucket {bucket!r} is neither the deployment bucket nor in the "
            f"Variable fruits_s3_allowed_buckets (allowed: {allowed})"
        )


def _existing_file(path: str, what: str) -> Path:
    file = Path(path).expanduser().resolve()
    if not file.is_file():
        raise InvalidRun(f"{what}: {path!r} is neither 'imagenet' nor an existing file")
    return file
