#!/usr/bin/env bash
# EMR bootstrap action: install the fruits jobs' Python dependencies for python3.11 on a node.
#
#   install_python_deps.sh '<pip requirement>'...
#
# The DAG passes the project's pinned dependencies (pyproject.toml, pyspark excepted: EMR ships
# Spark) and points Spark at this interpreter (spark-env PYSPARK_PYTHON = /usr/bin/python3.11).
# EMR 7.x nodes run Amazon Linux 2023; bootstrap actions run as `hadoop`, with sudo.
set -euo pipefail

PYTHON=/usr/bin/python3.11

if [ "$#" -eq 0 ]; then
  echo "usage: $0 '<pip requirement>'..." >&2
  exit 2
fi

sudo dnf install -y -q python3.11 python3.11-pip
sudo "$PYTHON" -m pip install --quiet --no-cache-dir --upgrade pip
sudo "$PYTHON" -m pip install --quiet --no-cache-dir "$@"
"$PYTHON" -m pip check
echo "fruits bootstrap: installed for $PYTHON: $*"
