"""The Python the jobs run with on EMR: a virtualenv on every node, at constraints.txt's versions.

The bootstrap action (``bootstrap/install_python_deps.sh``) creates :data:`EMR_VENV` with
Amazon Linux 2023's python3.11, installs :func:`requirements_text` (the jobs' direct
dependencies, pinned ``==``) with the repository's ``constraints.txt`` as constraints — so every
transitive dependency is at the version the project is tested with — and fails the cluster if
anything in the virtualenv differs from ``constraints.txt``. Both files are uploaded
content-addressed beside the code (:mod:`fruits_airflow.artifacts`). The system pip and its
rpm-owned packages are never touched.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, requires
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from fruits.layout import REPO_ROOT

PROJECT = "fruits-pipeline"
EMR_VENV = "/opt/fruits/venv"
EMR_PYTHON = f"{EMR_VENV}/bin/python"
PROVIDED_BY_EMR = frozenset({"pyspark"})  # EMR's own Spark (and its py4j) is on the PYTHONPATH
CONSTRAINTS_FILE = REPO_ROOT / "constraints.txt"


class LockError(ValueError):
    """constraints.txt cannot pin the jobs' dependencies (missing, or outside pyproject's range)."""


def pins(constraints: str) -> dict[str, tuple[str, str]]:
    """``constraints.txt`` text → canonical name → (name, version) of each ``name==version``."""
    pinned: dict[str, tuple[str, str]] = {}
    for number, raw in enumerate(constraints.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        try:
            requirement = Requirement(line)
        except InvalidRequirement as error:
            raise LockError(f"constraints.txt line {number}: {error}") from None
        specs = list(requirement.specifier)
        if len(specs) != 1 or specs[0].operator != "==":
            raise LockError(f"constraints.txt line {number}: {line!r} is not name==version")
        pinned[canonicalize_name(requirement.name)] = (requirement.name, specs[0].version)
    return pinned


def job_requirements() -> list[Requirement]:
    """The project's runtime dependencies (pyproject.toml, no extras), minus EMR's Spark."""
    try:
        declared = requires(PROJECT) or []
    except PackageNotFoundError:
        raise LockError(
            f"{PROJECT} is not installed where Airflow runs: pip install -e . (see docs/aws.md)"
        ) from None
    parsed = [Requirement(line) for line in declared]
    return [r for r in parsed if r.marker is None and r.name not in PROVIDED_BY_EMR]


def requirements_text(
    requirements: list[Requirement] | None = None, constraints: str | None = None
) -> str:
    """The cluster's ``requirements.txt``: each job dependency ``==`` its constraints.txt
    version, which must lie in the range pyproject.toml declares."""
    requirements = job_requirements() if requirements is None else requirements
    pinned = pins(constraints_text() if constraints is None else constraints)
    lines = ["# fruits jobs on EMR: direct dependencies at constraints.txt's versions"]
    for requirement in sorted(requirements, key=lambda r: canonicalize_name(r.name)):
        found = pinned.get(canonicalize_name(requirement.name))
        if found is None:
            raise LockError(f"{requirement.name} is not pinned in constraints.txt")
        name, version = found
        if not requirement.specifier.contains(version, prereleases=True):
            raise LockError(
                f"constraints.txt pins {name}=={version}, outside pyproject.toml's "
                f"{requirement} (run make constraints)"
            )
        lines.append(f"{name}=={version}")
    return "\n".join(lines) + "\n"


def constraints_text(path: Path = CONSTRAINTS_FILE) -> str:
    try:
        return path.read_text()
    except FileNotFoundError:
        raise LockError(
            f"{path} not found: the EMR bootstrap installs its exact versions "
            "(run Airflow from the repository checkout or the project's image)"
        ) from None
