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

from fruits import validation
from fruits.config import (
    DEFAULT_VARIANCE,
    DEFAULT_WEIGHTS,
    FEATURE_DIM,
    IMAGE_SIZE,
    INPUT_SIZE_STEP,
    MAX_INPUT_SIZE,
    MIN_INPUT_SIZE,
    PRODUCTION_INPUT_SIZE,
)
from fruits.errors import InputError
from fruits.stages import PipelineOptions, RunPaths
from fruits_airflow import capacity
from fruits_airflow.capacity import Capacity, ClusterShape, DeployMode, Workload
from fruits_airflow.deployment import WEIGHTS_DIR_ENV, AwsSettings, LocalSettings
from fruits_airflow.execution import Mode
from fruits_airflow.instance_types import UnknownInstanceType
from fruits_airflow.uris import is_s3, split_s3

DEFAULT_CORE_INSTANCES = 2
MAX_CORE_INSTANCES = 20
MAX_TASK_INSTANCES = 20
WEIGHTS_SUFFIXES = (".h5", ".keras")  # Keras weights files; nothing else is uploaded


class InvalidRun(AirflowFailException):
    """The run's params or settings are unusable: the run stops, without retries."""


def dag_params(mode: Mode) -> dict[str, Param]:
    """Params of a manual run; EMR adds the cluster's size and market."""
    params = {
        "input": Param(
            None,
            type=["null", "string", "array"],
            minLength=1,
            items={"type": "string", "minLength": 1},
            title="Input images (sources)",
            description="A source's root, or a list of them: Training/<Class>/*.jpg … under a "
            "local folder (local) or an s3:// prefix (EMR). Empty: the deployment's default "
            "(FRUITS_INPUT / fruits_input; several roots separated by ',').",
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
        "full_rescan": Param(
            False,
            type="boolean",
            title="Re-read every input file",
            description="Off: only files new or changed since earlier runs are read (a daily "
            "run costs what the new photos cost). On: every file is read and hashed again.",
        ),
        "views": Param(
            False,
            type="boolean",
            title="Featurize views too",
            description="On: featurize also computes 4 augmented views of each training photo "
            "and 6 test-time views of each held-out one, and train learns from them (better on "
            "phone photos; featurize costs about 5.5 times as much, once per image).",
        ),
        "input_size": Param(
            None,
            type=["null", "integer"],
            minimum=MIN_INPUT_SIZE,
            maximum=MAX_INPUT_SIZE,
            multipleOf=INPUT_SIZE_STEP,
            title="Network input size",
            description=f"Side of the square image MobileNetV2 sees. {IMAGE_SIZE}: the fastest; "
            f"{PRODUCTION_INPUT_SIZE}: more accurate on phone photos, featurize costs about 3.5 "
            "times as much. Empty: the deployment's default (FRUITS_INPUT_SIZE, else "
            f"{IMAGE_SIZE}, locally; fruits_input_size, else {PRODUCTION_INPUT_SIZE}, on EMR). "
            "Changing it on a bucket featurized before needs full_rescan (every image again).",
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
                description="On demand: they hold HDFS and the Spark application master.",
            ),
            "task_instance_count": Param(
                0,
                type="integer",
                minimum=0,
                maximum=MAX_TASK_INSTANCES,
                title="EMR task nodes",
                description="Executors only (the core instance type); on Spot unless task_spot "
                "is off.",
            ),
            "task_spot": Param(
                True,
                type="boolean",
                title="Task nodes on Spot",
                description="Cheaper; a reclaimed task node costs its Spark tasks a retry on the "
                "other nodes, never the step.",
            ),
        }
    return params


@dataclass(frozen=True)
class RunRequest:
    """A validated run: what to read, where to write, the knobs; JSON-able for XCom."""

    inputs: tuple[str, ...]
    output_root: str
    weights: str
    k: int | None
    variance: float
    full_rescan: bool = False
    views: bool = False
    input_size: int = IMAGE_SIZE
    core_instance_count: int = DEFAULT_CORE_INSTANCES
    task_instance_count: int = 0
    task_spot: bool = True

    def paths(self, ds: str) -> RunPaths:
        return RunPaths(inputs=self.inputs, root=self.output_root, ds=ds)

    def options(self) -> PipelineOptions:
        return PipelineOptions(
            weights=self.weights,
            k=self.k,
            variance=self.variance,
            full_rescan=self.full_rescan,
            views=self.views,
            input_size=self.input_size,
        )

    def s3_buckets(self) -> set[str]:
        """Every bucket the run reads or writes."""
        uris = (*self.inputs, self.output_root, self.weights)
        return {split_s3(uri)[0] for uri in uris if is_s3(uri)}

    @classmethod
    def from_xcom(cls, values: Mapping[str, Any]) -> RunRequest:
        request = {f.name: values[f.name] for f in fields(cls)}
        return cls(**{**request, "inputs": tuple(request["inputs"])})


def requested_inputs(params: Mapping[str, Any], default: str) -> list[str]:
    """The run's source roots: the ``input`` param (one or a list), else the deployment's
    default (several separated by ',')."""
    given = params.get("input")
    if isinstance(given, str):
        given = [given]
    roots = given or [root for root in default.split(",") if root.strip()]
    return [root.strip() for root in roots]


def _checked(roots: list[str]) -> None:
    try:
        validation.inputs(roots)
    except InputError as error:
        raise InvalidRun(str(error)) from None


def validate_local(params: Mapping[str, Any], settings: LocalSettings) -> RunRequest:
    """The local twin reads and writes local folders only."""
    folders = []
    for source in requested_inputs(params, settings.input):
        if is_s3(source):
            raise InvalidRun(f"input {source!r}: a local run reads a local folder, not S3")
        folder = Path(source.removeprefix("file://")).expanduser().resolve()
        if not folder.is_dir():
            raise InvalidRun(f"input folder {folder} not found (param input or FRUITS_INPUT)")
        folders.append(str(folder))
    _checked(folders)
    weights = params.get("weights") or settings.weights
    if weights != DEFAULT_WEIGHTS:
        if is_s3(weights):
            raise InvalidRun(f"weights {weights!r}: a local run reads a local file, not S3")
        weights = str(_existing_file(weights, "weights (param weights or FRUITS_WEIGHTS)"))
        try:
            validation.weights(weights)
        except InputError as error:
            raise InvalidRun(str(error)) from None
    return RunRequest(
        inputs=tuple(folders),
        output_root=str(Path(settings.output_root).expanduser().resolve()),
        weights=weights,
        k=params.get("k"),
        variance=params.get("variance", DEFAULT_VARIANCE),
        full_rescan=bool(params.get("full_rescan", False)),
        views=bool(params.get("views", False)),
        input_size=_input_size(params, settings.input_size),
    )


def _input_size(params: Mapping[str, Any], default: int) -> int:
    """The ``input_size`` param, else the deployment's default; checked."""
    try:
        return validation.input_size(params.get("input_size") or default)
    except InputError as error:
        raise InvalidRun(f"{error} (param input_size or the deployment's default)") from None


def validate_emr(params: Mapping[str, Any], settings: AwsSettings) -> RunRequest:
    """EMR reads S3; weights are ``imagenet``, an S3 URI, or a file of the allowed folder
    (uploaded by prepare). The cluster must give the jobs room: see :func:`run_capacity`."""
    if params.get("core_spot"):
        raise InvalidRun(
            "core_spot is gone: core nodes stay on demand (they hold HDFS and the Spark "
            "application master, and losing one fails the step); put Spot capacity on task "
            "nodes with task_instance_count (task_spot is on by default)"
        )
    sources = requested_inputs(params, settings.input)
    for source in sources:
        try:
            split_s3(source)
        except ValueError as error:
            raise InvalidRun(f"input: an EMR run reads S3 — {error}") from None
        _check_allowed(source, "input", settings)
    weights = params.get("weights") or settings.weights
    if is_s3(weights):
        try:
            split_s3(weights)
        except ValueError as error:
            raise InvalidRun(f"weights: {error}") from None
        _check_allowed(weights, "weights", settings)
    elif weights != DEFAULT_WEIGHTS:
        weights = str(local_weights_file(weights, settings.weights_dir))
    request = RunRequest(
        inputs=tuple(source.rstrip("/") for source in sources),
        output_root=settings.output_root,
        weights=weights,
        k=params.get("k"),
        variance=params.get("variance", DEFAULT_VARIANCE),
        full_rescan=bool(params.get("full_rescan", False)),
        views=bool(params.get("views", False)),
        input_size=_input_size(params, settings.input_size),
        core_instance_count=params.get("core_instance_count", DEFAULT_CORE_INSTANCES),
        task_instance_count=params.get("task_instance_count", 0),
        task_spot=bool(params.get("task_spot", True)),
    )
    planned = run_capacity(settings, request)
    if planned.problems:
        raise InvalidRun(
            "the cluster cannot run the jobs:\n"
            + "\n".join(f"  - {problem}" for problem in planned.problems)
            + f"\n{capacity.summary(planned)}"
        )
    return request


def cluster_shape(settings: AwsSettings, request: RunRequest) -> ClusterShape:
    return ClusterShape(
        primary_type=settings.master_instance_type,
        core_type=settings.core_instance_type,
        core_count=request.core_instance_count,
        task_count=request.task_instance_count,
        task_spot=request.task_spot,
        deploy_mode=DeployMode(settings.deploy_mode),
    )


def run_capacity(settings: AwsSettings, request: RunRequest) -> Capacity:
    """The capacity model for the run (images of any size up to featurize's Arrow byte bound);
    :class:`InvalidRun` for an instance type the model cannot size."""
    try:
        workload = Workload(input_size=request.input_size)
        return capacity.plan(cluster_shape(settings, request), workload)
    except UnknownInstanceType as error:
        raise InvalidRun(f"{error} (Variables fruits_emr_*_instance_type)") from None


def local_weights_file(path: str, allowed_dir: str | None) -> Path:
    """A weights file on the Airflow worker that an EMR run may upload: an existing ``.h5`` or
    ``.keras`` file whose real path (symlinks resolved) lies in ``allowed_dir``
    (``FRUITS_EMR_WEIGHTS_DIR``). Anything else is refused before it is read."""
    if not allowed_dir:
        raise InvalidRun(
            f"weights {path!r}: an EMR run takes 'imagenet', an s3:// URI in the allowed "
            f"buckets, or a file in the folder named by {WEIGHTS_DIR_ENV} on the Airflow "
            "workers, which is not set: no local file may be uploaded"
        )
    folder = Path(allowed_dir).expanduser().resolve()
    file = Path(path).expanduser().resolve()
    if not file.is_relative_to(folder):
        raise InvalidRun(
            f"weights {path!r}: not inside {folder} ({WEIGHTS_DIR_ENV}); only files there are "
            "uploaded"
        )
    if file.suffix not in WEIGHTS_SUFFIXES:
        kinds = ", ".join(WEIGHTS_SUFFIXES)
        raise InvalidRun(f"weights {path!r}: not a Keras weights file ({kinds})")
    if not file.is_file():
        raise InvalidRun(f"weights {path!r}: no such file in {folder}")
    return file


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
