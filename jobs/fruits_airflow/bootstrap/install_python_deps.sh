#!/usr/bin/env bash
# EMR bootstrap action: the fruits jobs' Python packages in a virtualenv, at exactly the versions
# of the project's constraints.txt, on every node.
#
#   install_python_deps.sh s3://…/requirements.txt s3://…/constraints.txt
#
# Both files are uploaded content-addressed by the DAG (fruits_airflow.cluster_python); Spark's
# PYSPARK_PYTHON points at $VENV/bin/python (fruits_airflow.cluster_python.EMR_PYTHON).
# EMR 7.x nodes run Amazon Linux 2023; bootstrap actions run as `hadoop`, with sudo.
#
# * python3.11 comes from the distribution (dnf). Its pip is rpm-owned: it is never upgraded or
#   used to install anything (pip cannot uninstall an rpm's files, pypa/pip#11631).
# * The virtualenv belongs to root and is readable by all: steps run as hadoop, YARN containers
#   as yarn.
# * After the install, every package in the virtualenv must be at its constraints.txt version,
#   and `pip check` runs on the virtualenv only. Any failure fails the cluster's start.
#
# FRUITS_BOOTSTRAP_ROOT (tests only) installs under another root directory.
set -euo pipefail

ROOT="${FRUITS_BOOTSTRAP_ROOT:-}"
VENV="$ROOT/opt/fruits/venv"

if [ "$#" -ne 2 ]; then
  echo "usage: $0 s3://…/requirements.txt s3://…/constraints.txt" >&2
  exit 2
fi

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
aws s3 cp --only-show-errors "$1" "$WORK/requirements.txt"
aws s3 cp --only-show-errors "$2" "$WORK/constraints.txt"

sudo dnf install -y -q python3.11 python3.11-pip
sudo mkdir -p "$(dirname "$VENV")"
sudo python3.11 -m venv "$VENV"
sudo "$VENV/bin/python" -m pip install --quiet --no-cache-dir --disable-pip-version-check \
  --root-user-action=ignore --only-binary=:all: \
  --requirement "$WORK/requirements.txt" --constraint "$WORK/constraints.txt"

"$VENV/bin/python" -m pip check --disable-pip-version-check
"$VENV/bin/python" - "$WORK/constraints.txt" <<'PY'
"""Every package of the virtualenv at its constraints.txt version (pip's own seed excepted)."""
import re
import sys
from importlib.metadata import distributions


def canonical(name):
    return re.sub(r"[-_.]+", "-", name).lower()


pinned = {}
with open(sys.argv[1]) as constraints:
    for line in constraints:
        line = line.split("#", 1)[0].strip()
        if "==" in line:
            name, version = line.split("==", 1)
            pinned[canonical(name)] = version.strip()
seeded = {"pip", "setuptools", "wheel"}
drift = [
    f"{dist.metadata['Name']}=={dist.version} (constraints.txt: "
    f"{pinned.get(canonical(dist.metadata['Name']), 'not pinned')})"
    for dist in distributions()
    if canonical(dist.metadata["Name"]) not in seeded
    and pinned.get(canonical(dist.metadata["Name"])) != dist.version
]
if drift:
    sys.exit("fruits bootstrap: not at constraints.txt's versions: " + ", ".join(sorted(drift)))
PY
echo "fruits bootstrap: $VENV ready, $("$VENV/bin/python" --version), constraints.txt versions"
