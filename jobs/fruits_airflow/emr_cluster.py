"""The ``RunJobFlow`` request of a run's transient EMR cluster.

Pinned release (:data:`fruits.config.EMR_RELEASE_LABEL`), Spark only, the jobs' Python
dependencies installed for python3.11 on every node by a bootstrap action, Spark pointed at that
interpreter, the project's Spark defaults, encryption at rest through a security configuration,
logs in S3, an idle timeout as the safety net behind the DAG's teardown.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, requires
from typing import Any

from packaging.requirements import Requirement

from fruits.config import EMR_RELEASE_LABEL, SPARK_CONF
from fruits_airflow.deployment import AwsSettings
from fruits_airflow.run_params import RunRequest

PROJECT = "fruits-pipeline"
EMR_PYTHON = "/usr/bin/python3.11"  # installed by bootstrap/install_python_deps.sh
PROVIDED_BY_EMR = frozenset({"pyspark"})

# Executors sized for TensorFlow in the Python workers. Each task slot runs one Python worker
# that peaks at ~1.3 GB with MobileNetV2 loaded (bench/benchmark.py), outside the JVM heap:
# YARN must grant it as memory overhead, or it kills the container in the middle of featurize.
# 4 cores x 1.5 GB + 2 GB of heap = an 8 GB container: one per m5.xlarge core node (4 vCPU,
# 12 GB for YARN), two per m5.2xlarge. The driver (cluster mode) loads the network too.
EXECUTOR_CORES = 4
PYTHON_WORKER_GB = 1.5
EXECUTOR_CONF = {
    "spark.executor.cores": str(EXECUTOR_CORES),
    "spark.executor.memory": "2g",
    "spark.executor.memoryOverhead": f"{int(EXECUTOR_CORES * PYTHON_WORKER_GB * 1024)}m",
    "spark.driver.memory": "2g",
    "spark.driver.memoryOverhead": f"{int(2 * PYTHON_WORKER_GB * 1024)}m",
}


def job_requirements() -> list[str]:
    """The project's runtime dependencies as pinned in pyproject.toml, minus EMR's Spark."""
    try:
        declared = requires(PROJECT) or []
    except PackageNotFoundError:
        raise RuntimeError(
            f"{PROJECT} is not installed where Airflow runs: pip install -e . (see docs/aws.md)"
        ) from None
    pins = [Requirement(line) for line in declared]
    return [str(pin) for pin in pins if pin.marker is None and pin.name not in PROVIDED_BY_EMR]


def configurations() -> list[dict[str, Any]]:
    """spark-env: PYSPARK_PYTHON; spark-defaults: the project's Spark settings and the
    executor sizing."""
    return [
        {
            "Classification": "spark-env",
            "Configurations": [
                {
                    "Classification": "export",
                    "Properties": {
                        "PYSPARK_PYTHON": EMR_PYTHON,
                        "PYSPARK_DRIVER_PYTHON": EMR_PYTHON,
                    },
                }
            ],
        },
        {
            "Classification": "spark-defaults",
            "Properties": {**SPARK_CONF, **EXECUTOR_CONF, "spark.pyspark.python": EMR_PYTHON},
        },
    ]


def instance_groups(settings: AwsSettings, request: RunRequest) -> list[dict[str, Any]]:
    return [
        {
            "Name": "primary",
            "InstanceRole": "MASTER",
            "Market": "ON_DEMAND",
            "InstanceType": settings.master_instance_type,
            "InstanceCount": 1,
        },
        {
            "Name": "core",
            "InstanceRole": "CORE",
            "Market": "SPOT" if request.core_spot else "ON_DEMAND",
            "InstanceType": settings.core_instance_type,
            "InstanceCount": request.core_instance_count,
        },
    ]


def job_flow_overrides(
    settings: AwsSettings, request: RunRequest, bootstrap_uri: str, *, ds: str, run_id: str
) -> dict[str, Any]:
    """The full ``RunJobFlow`` request for the run ``run_id`` of logical date ``ds``."""
    instances: dict[str, Any] = {
        "InstanceGroups": instance_groups(settings, request),
        "KeepJobFlowAliveWhenNoSteps": True,  # steps come one by one; the DAG terminates it
        "TerminationProtected": False,
    }
    if settings.subnet_id:
        instances["Ec2SubnetId"] = settings.subnet_id
    return {
        "Name": f"fruits-pipeline ds={ds}",
        "ReleaseLabel": EMR_RELEASE_LABEL,
        "Applications": [{"Name": "Spark"}],
        "LogUri": settings.log_uri,
        "Instances": instances,
        "BootstrapActions": [
            {
                "Name": "install python deps",
                "ScriptBootstrapAction": {"Path": bootstrap_uri, "Args": job_requirements()},
            }
        ],
        "Configurations": configurations(),
        "AutoTerminationPolicy": {"IdleTimeout": settings.idle_timeout_s},
        "SecurityConfiguration": settings.security_configuration,
        "ServiceRole": settings.service_role,
        "JobFlowRole": settings.instance_profile,
        "VisibleToAllUsers": True,
        "StepConcurrencyLevel": 1,
        "Tags": [
            {"Key": "project", "Value": "fruits"},
            {"Key": "dag_run_id", "Value": run_id},
            {"Key": "ds", "Value": ds},
        ],
    }
