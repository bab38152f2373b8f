"""The EMR bootstrap action, run for real under a temporary root: fake ``sudo``, ``dnf`` and
``aws`` on the PATH, the real python3.11 ``venv`` and pip, and small wheels served offline.

Also: what the cluster gets to install (requirements pinned from constraints.txt), and
shellcheck on the script when shellcheck is installed.
"""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
import stat
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from fruits_airflow import cluster_python
from fruits_airflow.artifacts import BOOTSTRAP_SCRIPT
from fruits_airflow.cluster_python import EMR_PYTHON, EMR_VENV, LockError

FAKE_TOOLS = {
    "sudo": 'echo "sudo $*" >> "$TOOL_LOG"\nexec "$@"\n',
    "dnf": 'echo "dnf $*" >> "$TOOL_LOG"\n',
    # aws s3 cp [--only-show-errors] s3://bucket/key DEST, from a folder standing for S3
    "aws": 'echo "aws $*" >> "$TOOL_LOG"\n'
    'for last; do :; done\nsrc="${*: -2:1}"\ncp "$FAKE_S3/${src#s3://}" "$last"\n',
    "python3.11": f'echo "python3.11 $*" >> "$TOOL_LOG"\nexec {sys.executable} "$@"\n',
}


def wheel(folder: Path, name: str, version: str, requires: tuple[str, ...] = ()) -> None:
    """A pure-Python wheel ``name`` ``version`` (module ``name`` with ``VERSION``)."""
    info = f"{name}-{version}.dist-info"
    files = {
        f"{name}/__init__.py": f'VERSION = "{version}"\n',
        f"{info}/METADATA": "Metadata-Version: 2.1\n"
        f"Name: {name}\nVersion: {version}\n"
        + "".join(f"Requires-Dist: {requirement}\n" for requirement in requires),
        f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\n"
        "Tag: py3-none-any\n",
    }
    record = []
    for path, text in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=")
        record.append(f"{path},sha256={digest.decode()},{len(text.encode())}")
    files[f"{info}/RECORD"] = "\n".join([*record, f"{info}/RECORD,,"]) + "\n"
    with zipfile.ZipFile(folder / f"{name}-{version}-py3-none-any.whl", "w") as archive:
        for path, text in files.items():
            archive.writestr(path, text)


@pytest.fixture
def node(tmp_path: Path):
    """A node's tools and a package index: fruitapp 1.0 needs fruitdep, of which 1.0 and 2.0
    are published; a runner for the bootstrap with given requirements and constraints."""
    bin_dir, wheels, s3 = tmp_path / "bin", tmp_path / "wheels", tmp_path / "s3" / "bucket"
    for folder in (bin_dir, wheels, s3):
        folder.mkdir(parents=True)
    for tool, body in FAKE_TOOLS.items():
        script = bin_dir / tool
        script.write_text(f"#!/usr/bin/env bash\n{body}")
        script.chmod(script.stat().st_mode | stat.S_IEXEC)
    wheel(wheels, "fruitapp", "1.0", ("fruitdep",))
    wheel(wheels, "fruitdep", "1.0")
    wheel(wheels, "fruitdep", "2.0")
    root, log = tmp_path / "root", tmp_path / "tools.log"

    def run(requirements: str, constraints: str) -> subprocess.CompletedProcess:
        (s3 / "requirements.txt").write_text(requirements)
        (s3 / "constraints.txt").write_text(constraints)
        env = {
            "PATH": f"{bin_dir}:/usr/bin:/bin",
            "HOME": str(tmp_path),
            "TOOL_LOG": str(log),
            "FAKE_S3": str(tmp_path / "s3"),
            "FRUITS_BOOTSTRAP_ROOT": str(root),
            "PIP_CONFIG_FILE": os.devnull,
            "PIP_NO_INDEX": "1",
            "PIP_FIND_LINKS": str(wheels),
        }
        args = ["s3://bucket/requirements.txt", "s3://bucket/constraints.txt"]
        return subprocess.run(
            ["bash", str(BOOTSTRAP_SCRIPT), *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )

    run.root, run.log = root, log
    return run


def test_the_bootstrap_builds_the_venv_spark_uses_with_the_constrained_versions(node):
    done = node("fruitapp==1.0\n", "fruitapp==1.0\nfruitdep==1.0\n")

    assert done.returncode == 0, done.stderr
    venv_python = node.root / EMR_PYTHON.lstrip("/")
    assert venv_python.parent.parent == node.root / EMR_VENV.lstrip("/")
    installed = subprocess.run(
        [venv_python, "-c", "import fruitapp, fruitdep; print(fruitapp.VERSION, fruitdep.VERSION)"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert installed.stdout.split() == ["1.0", "1.0"]  # not fruitdep 2.0, the newest
    calls = node.log.read_text().splitlines()
    assert "dnf install -y -q python3.11 python3.11-pip" in calls
    venv = node.root / EMR_VENV.lstrip("/")
    # the distribution's python3.11 only creates the venv: its pip installs nothing
    assert [c for c in calls if c.startswith("python3.11")] == [f"python3.11 -m venv {venv}"]
    pip_calls = [c for c in calls if " pip " in f"{c} "]
    assert pip_calls and all(c.startswith(f"sudo {venv}/bin/python -m pip") for c in pip_calls)
    assert f"{venv} ready" in done.stdout


def test_a_package_installed_at_another_version_than_constraints_fails_the_node(node):
    """fruitdep is missing from the constraints: pip takes the newest, the check refuses it."""
    done = node("fruitapp==1.0\n", "fruitapp==1.0\n")

    assert done.returncode != 0
    assert "not at constraints.txt's versions: fruitdep==2.0 (constraints.txt: not pinned)" in (
        done.stderr
    )


def test_the_bootstrap_wants_its_two_files(node):
    done = subprocess.run(["bash", str(BOOTSTRAP_SCRIPT)], capture_output=True, text=True)
    assert done.returncode == 2
    assert "usage:" in done.stderr


def test_the_script_is_executable_and_points_at_the_venv_spark_uses():
    assert BOOTSTRAP_SCRIPT.stat().st_mode & 0o111
    assert f'VENV="$ROOT{EMR_VENV}"' in BOOTSTRAP_SCRIPT.read_text()
    assert EMR_PYTHON.removesuffix("/bin/python") == EMR_VENV


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="shellcheck is not installed")
def test_the_script_is_shellcheck_clean():
    done = subprocess.run(["shellcheck", str(BOOTSTRAP_SCRIPT)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout


def test_the_cluster_installs_the_jobs_dependencies_at_constraints_versions():
    text = cluster_python.requirements_text()
    pinned = cluster_python.pins(cluster_python.constraints_text())
    lines = [Requirement(line) for line in text.splitlines() if not line.startswith("#")]
    names = {line.name.replace("_", "-").lower() for line in lines}
    assert names >= {"tensorflow-cpu", "numpy", "pyarrow", "pandas", "pillow", "boto3"}
    assert "pyspark" not in names  # EMR's own Spark
    for line in lines:
        (spec,) = line.specifier
        assert spec.operator == "=="
        assert pinned[line.name.replace("_", "-").lower()][1] == spec.version


def test_pins_outside_pyproject_or_missing_are_refused():
    wanted = [Requirement("numpy>=1.26,<2"), Requirement("pillow>=10")]
    assert "numpy==1.26.4" in cluster_python.requirements_text(
        wanted, "numpy==1.26.4\npillow==13.0.0\n"
    )
    with pytest.raises(LockError, match=r"pins numpy==2\.1\.0, outside pyproject"):
        cluster_python.requirements_text(wanted, "numpy==2.1.0\npillow==13.0.0\n")
    with pytest.raises(LockError, match=r"pillow is not pinned in constraints\.txt"):
        cluster_python.requirements_text(wanted, "numpy==1.26.4\n")
    with pytest.raises(LockError, match="is not name==version"):
        cluster_python.pins("numpy>=1.26\n")
