"""``fruits-emr plan``: what a run would ask of EMR, printed without any AWS call.

    fruits-emr plan --date 2026-12-01 --bucket my-fruits-bucket [--core-instance-count 4 …]

Prints the ``RunJobFlow`` request, the steps (one per stage, added one after the other) and the
capacity summary: where the driver goes, executors and their memory, the hourly price, and with
``--images N`` the cluster time and cost of a run over N new images. The options mirror the
DAG's params and the ``fruits_*`` Variables (docs/aws.md); the same checks as ``validate_params``
apply. Artifact URIs are those an upload would give (content-addressed); nothing is uploaded.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
from collections.abc import Sequence
from dataclasses import replace

from fruits.config import DEFAULT_VARIANCE, DEFAULT_WEIGHTS
from fruits_airflow import artifacts, capacity, run_cost
from fruits_airflow.capacity import MIB, Workload
from fruits_airflow.deployment import AWS_VARIABLES, WEIGHTS_DIR_ENV, MissingSetting, aws_settings
from fruits_airflow.emr_plan import plan_run
from fruits_airflow.instance_types import INSTANCE_TYPES
from fruits_airflow.run_params import DEFAULT_CORE_INSTANCES, InvalidRun, validate_emr

# option → the Variable it stands for (the rest default as the Variables do)
VARIABLE_OPTIONS = {
    "bucket": "bucket",
    "region": "region",
    "default_input": "input",
    "primary_type": "master_instance_type",
    "core_type": "core_instance_type",
    "deploy_mode": "deploy_mode",
    "subnet_id": "subnet_id",
    "allowed_buckets": "allowed_buckets",
    "service_role": "service_role",
    "instance_profile": "instance_profile",
}


def parser() -> argparse.ArgumentParser:
    cli = argparse.ArgumentParser(prog="fruits-emr", description=__doc__.split("\n\n")[0])
    commands = cli.add_subparsers(dest="command", required=True)
    plan = commands.add_parser("plan", help="print a run's EMR request, steps and capacity")
    plan.add_argument("--date", required=True, type=dt.date.fromisoformat, help="logical date")
    plan.add_argument("--run-id", help="DAG run id for the tags (default manual__<date>)")
    variables = plan.add_argument_group("deployment (the fruits_* Variables)")
    variables.add_argument("--bucket", required=True, help="fruits_bucket")
    variables.add_argument("--region", help="fruits_aws_region (default eu-west-3)")
    variables.add_argument("--default-input", help="fruits_input (default s3://<bucket>/input)")
    variables.add_argument("--primary-type", choices=INSTANCE_TYPES, help="default m5.xlarge")
    variables.add_argument("--core-type", choices=INSTANCE_TYPES, help="default m5.xlarge")
    variables.add_argument("--deploy-mode", choices=("client", "cluster"), help="default client")
    variables.add_argument("--subnet-id")
    variables.add_argument("--allowed-buckets", help="fruits_s3_allowed_buckets")
    variables.add_argument("--service-role", help="default EMR_DefaultRole_V2")
    variables.add_argument("--instance-profile", help="default EMR_EC2_DefaultRole")
    params = plan.add_argument_group("run (the DAG's params)")
    params.add_argument("--input", help="s3:// prefix of the images")
    params.add_argument(
        "--weights", help=f"{DEFAULT_WEIGHTS}, s3://…, or a file (default {DEFAULT_WEIGHTS})"
    )
    params.add_argument("--k", type=int)
    params.add_argument("--variance", type=float, default=DEFAULT_VARIANCE)
    params.add_argument(
        "--input-size", type=int, help="network input side (default: fruits_input_size)"
    )
    params.add_argument("--core-instance-count", type=int, default=DEFAULT_CORE_INSTANCES)
    params.add_argument("--task-instance-count", type=int, default=0)
    params.add_argument("--task-on-demand", action="store_true", help="task nodes not on Spot")
    estimate = plan.add_argument_group("workload (summary only)")
    estimate.add_argument("--image-mb", type=float, help="mean input file size, MB")
    estimate.add_argument("--images", type=int, help="new images per run: time and cost")
    return cli


def plan_text(args: argparse.Namespace, env: dict[str, str]) -> str:
    """The printed plan (raises InvalidRun / MissingSetting like the DAG's validation)."""
    names = {field: name for field, (name, _) in AWS_VARIABLES.items()}
    values = {
        names[field]: getattr(args, option)
        for option, field in VARIABLE_OPTIONS.items()
        if getattr(args, option)
    }
    settings = aws_settings(values.get, env)
    request = validate_emr(
        {
            "input": args.input,
            "weights": args.weights,
            "k": args.k,
            "variance": args.variance,
            "input_size": args.input_size,
            "core_instance_count": args.core_instance_count,
            "task_instance_count": args.task_instance_count,
            "task_spot": not args.task_on_demand,
        },
        settings,
    )
    ds = args.date.isoformat()
    files = artifacts.planned_run_files(settings.artifacts_root)
    weights = artifacts.weights_artifact(request.weights, settings.weights_dir)
    if weights is not None:
        request = replace(request, weights=weights.uri(settings.artifacts_root))
    plan = plan_run(settings, request, files, ds=ds, run_id=args.run_id or f"manual__{ds}")
    summary = plan.capacity
    if args.image_mb:
        workload = Workload(
            mean_image_bytes=round(args.image_mb * MIB), input_size=request.input_size
        )
        summary = capacity.plan(plan.capacity.shape, workload, plan.capacity.sizing)
    sections = [
        "# RunJobFlow request (create_cluster's job_flow_overrides)",
        json.dumps(plan.cluster, indent=2),
        "# Steps, one per stage (each added when the previous one has completed)",
        json.dumps(plan.steps, indent=2),
        "# " + capacity.summary(summary).replace("\n", "\n# "),
    ]
    if args.images:
        run = run_cost.estimate(plan.capacity, args.images, request.input_size)
        sections.append(
            f"# run over {run.images:,} new images: about {run.hours:.2f} h of cluster, "
            f"{run.usd:.2f} USD on demand (assumptions: fruits_airflow/run_cost.py)"
        )
    return "\n".join(sections)


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    env = {WEIGHTS_DIR_ENV: os.environ.get(WEIGHTS_DIR_ENV, "")}
    try:
        print(plan_text(args, env))
    except (InvalidRun, MissingSetting) as refused:
        print(f"fruits-emr plan: refused: {refused}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
