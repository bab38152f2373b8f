"""The EC2 instance types a fruits EMR cluster may use: what YARN gets on each, and the price.

``yarn_mb`` is EMR's default ``yarn.nodemanager.resource.memory-mb`` for the type (Amazon EMR
Release Guide, "Task configuration": the Hadoop defaults EMR sets per instance type): the memory
YARN hands out as containers on a core or task node, what is left after the OS and EMR's daemons.
On the primary node, which runs no NodeManager, the model uses the same figure as the memory a
client-mode driver may take. ``vcpus``: the EC2 instance type's vCPUs.

Prices (USD per instance-hour, eu-west-3 Paris, Linux): ``ec2_usd`` is the EC2 On-Demand price
(aws.amazon.com/ec2/pricing/on-demand), ``emr_usd`` the Amazon EMR fee charged on top of EC2 for
each instance (aws.amazon.com/emr/pricing). They were recorded on :data:`PRICES_RECORDED` from
those pages as the author knew them, not fetched by this code: check them before budgeting
(docs/aws.md, "Costs", gives the AWS CLI query). Spot is billed at the market price, capped at
the On-Demand price; the EMR fee stays the same.
"""

from __future__ import annotations

from dataclasses import dataclass

PRICES_RECORDED = "2026-12-03"
PRICE_REGION = "eu-west-3"


@dataclass(frozen=True)
class InstanceType:
    name: str
    vcpus: int
    memory_gib: int
    yarn_mb: int
    ec2_usd: float
    emr_usd: float

    @property
    def usd_per_hour(self) -> float:
        """On-Demand EC2 plus the EMR fee, per instance."""
        return self.ec2_usd + self.emr_usd


INSTANCE_TYPES: dict[str, InstanceType] = {
    t.name: t
    for t in (
        # general purpose: 4 GiB per vCPU (the default family)
        InstanceType("m5.xlarge", 4, 16, 12_288, 0.224, 0.048),
        InstanceType("m5.2xlarge", 8, 32, 24_576, 0.448, 0.096),
        InstanceType("m5.4xlarge", 16, 64, 57_344, 0.896, 0.192),
        InstanceType("m6i.xlarge", 4, 16, 12_288, 0.224, 0.048),
        InstanceType("m6i.2xlarge", 8, 32, 24_576, 0.448, 0.096),
        # memory optimised: 8 GiB per vCPU
        InstanceType("r5.xlarge", 4, 32, 24_576, 0.296, 0.063),
        InstanceType("r5.2xlarge", 8, 64, 57_344, 0.592, 0.126),
        # compute optimised: 2 GiB per vCPU, too little for a TensorFlow worker per core
        InstanceType("c5.xlarge", 4, 8, 6_144, 0.202, 0.043),
        InstanceType("c5.2xlarge", 8, 16, 12_288, 0.404, 0.085),
    )
}


class UnknownInstanceType(ValueError):
    """An instance type the capacity model has no YARN figures for."""


def instance_type(name: str) -> InstanceType:
    """The supported type ``name``, else :class:`UnknownInstanceType` listing the supported ones."""
    try:
        return INSTANCE_TYPES[name]
    except KeyError:
        raise UnknownInstanceType(
            f"instance type {name!r} is not in the capacity model (supported: "
            f"{', '.join(INSTANCE_TYPES)}; add its EMR YARN memory and price to "
            "fruits_airflow/instance_types.py to use it)"
        ) from None
