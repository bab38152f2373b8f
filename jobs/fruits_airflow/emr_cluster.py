"""The ``RunJobFlow`` request of a run's transient EMR cluster.

Pinned release (:data:`EMR_RELEASE_LABEL`), Spark only; a bootstrap action builds
the jobs' virtualenv on every node (:mod:`fruits_airflow.cluster_python`) and Spark's Python is
that virtualenv's, for the driver and the executors in either deploy mode; YARN application
masters on core nodes (on demand); Spot capacity only in a task instance group; encryption at
rest through a security configuration, logs in S3, an idle timeout as the safety net behind the
DAG's teardown. The Spark memory settings are per step (:mod:`fruits_airflow.emr_steps`).
"""

from __future__ import annotations

from typing import Any

from fruits.config import SPARK_CONF
from fruits_airflow.artifacts import ClusterFiles
from fruits_airflow.cluster_python import EMR_PYTHON
from fruits_airflow.deployment import AwsSettings
from fruits_airflow.run_params import RunRequest

# Every way Spark picks the Python of the driver and of the executors, in client and cluster
# mode: the spark-defaults properties take precedence, the environment covers other launchers.
# EMR release targeted in production and the Spark it ships (pyproject pins pyspark to its minor).
EMR_RELEASE_LABEL = "emr-7.12.0"

PYTHON_PROPERTIES = {
    "spark.pyspark.python": EMR_PYTHON,
    "spark.pyspark.driver.python": EMR_PYTHON,
    "spark.executorEnv.PYSPARK_PYTHON": EMR_PYTHON,
    "spark.yarn.appMasterEnv.PYSPARK_PYTHON": EMR_PYTHON,
}
PYTHON_ENVIRONMENT = {"PYSPARK_PYTHON": EMR_PYTHON, "PYSPARK_DRIVER_PYTHON": EMR_PYTHON}
# YARN node labels (EMR >= 6 leaves them off): application masters — client mode's
# ExecutorLauncher, cluster mode's driver — only on CORE nodes, never on a Spot task node.
YARN_PROPERTIES = {
    "yarn.node-labels.enabled": "true",
    "yarn.node-labels.am.default-node-label-expression": "CORE",
}


def configurations() -> list[dict[str, Any]]:
    """spark-env and spark-defaults: the virtualenv's Python and the project's Spark settings;
    yarn-site: application masters on core nodes."""
    return [
        {
            "Classification": "spark-env",
            "Configurations": [{"Classification": "export", "Properties": PYTHON_ENVIRONMENT}],
        },
        {"Classification": "spark-defaults", "Properties": {**SPARK_CONF, **PYTHON_PROPERTIES}},
        {"Classification": "yarn-site", "Properties": YARN_PROPERTIES},
    ]


def instance_groups(settings: AwsSettings, request: RunRequest) -> list[dict[str, Any]]:
    """Primary and core nodes on demand; task nodes (the core type) on Spot when asked."""
    groups = [
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
            "Market": "ON_DEMAND",
            "InstanceType": settings.core_instance_type,
            "InstanceCount": request.core_instance_count,
        },
    ]
    if request.task_instance_count:
        groups.append(
            {
                "Name": "task",
                "InstanceRole": "TASK",
                # Spot without BidPrice: capped at the On-Demand price.
                "Market": "SPOT" if request.task_spot else "ON_DEMAND",
                "InstanceType": settings.core_instance_type,
                "InstanceCount": request.task_instance_count,
            }
        )
    return groups


def job_flow_overrides(
    settings: AwsSettings, request: RunRequest, files: ClusterFiles, *, ds: str, run_id: str
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
                "Name": "fruits python virtualenv",
                "ScriptBootstrapAction": {
                    "Path": files.bootstrap,
                    "Args": [files.requirements, files.constraints],
                },
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
