"""The files an EMR run needs in S3 — job code, bootstrap script and the Python versions it
installs, weights — content-addressed.

Each file goes to ``<root>/<kind>/<sha256 of its bytes>/<name>``: an unchanged file keeps its
key and is not uploaded again, and a run's steps read exactly the bytes it was planned with. The
keys depend on the bytes only, so a plan (``fruits-emr plan``) names the same URIs an upload
gives.
"""

from __future__ import annotations

import hashlib
import io
import logging
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

import fruits
from fruits.config import DEFAULT_WEIGHTS
from fruits.layout import JOBS_DIR
from fruits.stages import STAGES
from fruits_airflow import cluster_python
from fruits_airflow.run_params import local_weights_file
from fruits_airflow.uris import is_s3, s3_uri, split_s3

if TYPE_CHECKING:
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

log = logging.getLogger(__name__)

BOOTSTRAP_SCRIPT = Path(__file__).parent / "bootstrap" / "install_python_deps.sh"
_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)  # fixed timestamps: same sources, same zip, same key


@dataclass(frozen=True)
class Artifact:
    kind: str  # code | bootstrap | python | models
    name: str
    data: bytes

    @cached_property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    def uri(self, root: str) -> str:
        """Where it lives under ``root`` (``s3://bucket/prefix``)."""
        bucket, prefix = split_s3(root)
        return s3_uri(bucket, prefix, self.kind, self.sha256, self.name)


def code_package() -> Artifact:
    """The ``fruits`` package, data files included, as a zip for ``spark-submit --py-files``.

    Entries are sorted and timestamps fixed: the same sources give the same bytes, hence key.
    """
    package = Path(fruits.__file__).parent
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for source in sorted(package.rglob("*")):
            if not source.is_file() or "__pycache__" in source.parts or source.suffix == ".pyc":
                continue
            info = zipfile.ZipInfo(f"fruits/{source.relative_to(package).as_posix()}", _ZIP_EPOCH)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, source.read_bytes())
    return Artifact("code", "fruits.zip", buffer.getvalue())


def stage_scripts() -> dict[str, Artifact]:
    """The ``spark-submit`` entry point of each stage (``jobs/<stage>.py``)."""
    return {
        stage.name: Artifact("code", stage.script, (JOBS_DIR / stage.script).read_bytes())
        for stage in STAGES
    }


def bootstrap_script() -> Artifact:
    return Artifact("bootstrap", BOOTSTRAP_SCRIPT.name, BOOTSTRAP_SCRIPT.read_bytes())


def python_requirements() -> Artifact:
    """The jobs' direct dependencies at constraints.txt's versions (the bootstrap's first arg)."""
    return Artifact("python", "requirements.txt", cluster_python.requirements_text().encode())


def python_constraints() -> Artifact:
    """The repository's constraints.txt, verbatim (the bootstrap's second arg)."""
    return Artifact("python", "constraints.txt", cluster_python.constraints_text().encode())


def publish(s3: S3Hook, root: str, artifact: Artifact) -> str:
    """Upload ``artifact`` under ``root`` unless its key already exists; return its URI."""
    uri = artifact.uri(root)
    bucket, key = split_s3(uri)
    if s3.head_object(key=key, bucket_name=bucket) is not None:
        log.info("unchanged, not uploaded: %s", uri)
    else:
        s3.load_bytes(artifact.data, key=key, bucket_name=bucket, replace=True)
        log.info("uploaded %s (%d bytes)", uri, len(artifact.data))
    return uri


@dataclass(frozen=True)
class JobCode:
    """URIs of the job code: the package zip and each stage's entry script."""

    py_files: str
    scripts: dict[str, str]


@dataclass(frozen=True)
class ClusterFiles:
    """URIs of the bootstrap action and its arguments (requirements, constraints)."""

    bootstrap: str
    requirements: str
    constraints: str


@dataclass(frozen=True)
class RunFiles:
    code: JobCode
    cluster: ClusterFiles


def run_files(store: Callable[[Artifact], str]) -> RunFiles:
    """Every file of a run, each passed through ``store`` (upload, or only name its URI)."""
    return RunFiles(
        code=JobCode(
            py_files=store(code_package()),
            scripts={name: store(script) for name, script in stage_scripts().items()},
        ),
        cluster=ClusterFiles(
            bootstrap=store(bootstrap_script()),
            requirements=store(python_requirements()),
            constraints=store(python_constraints()),
        ),
    )


def planned_run_files(root: str) -> RunFiles:
    """The URIs an upload under ``root`` gives, without uploading (nor any AWS call)."""
    return run_files(lambda artifact: artifact.uri(root))


def publish_run_files(s3: S3Hook, root: str) -> RunFiles:
    return run_files(lambda artifact: publish(s3, root, artifact))


def weights_artifact(weights: str, allowed_dir: str | None) -> Artifact | None:
    """A local weights file as an artifact, checked again against the allowed folder; None for
    ``imagenet`` and S3 URIs, which the cluster reads as they are."""
    if weights == DEFAULT_WEIGHTS or is_s3(weights):
        return None
    path = local_weights_file(weights, allowed_dir)
    return Artifact("models", path.name, path.read_bytes())


def publish_weights(s3: S3Hook, root: str, weights: str, allowed_dir: str | None) -> str:
    """``imagenet`` and S3 URIs as they are; a local weights file uploaded, its URI returned."""
    artifact = weights_artifact(weights, allowed_dir)
    return weights if artifact is None else publish(s3, root, artifact)
