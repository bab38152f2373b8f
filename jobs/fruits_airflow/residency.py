"""EU data residency: the cluster and every bucket a run touches must be in the EU.

The ``check_region`` task runs this before anything is uploaded or created. The region comes
from the deployment (a Variable) and the buckets from the deployment *and* the run's params, so
no param can send images or features outside the EU.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from airflow.sdk.exceptions import AirflowFailException
from botocore.exceptions import ClientError

if TYPE_CHECKING:
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

# AWS regions located in EU member states. eu-west-2 (London) and eu-central-2 (Zurich) are
# named "eu-" but lie outside the EU: refused.
EU_REGIONS = frozenset(
    {"eu-central-1", "eu-north-1", "eu-south-1", "eu-south-2", "eu-west-1", "eu-west-3"}
)


class OutsideEu(AirflowFailException):
    """A region or bucket outside the EU: the run stops, without retries."""


def require_eu(region: str, what: str) -> str:
    """``region`` when it is an EU region, else :class:`OutsideEu` naming ``what``."""
    if region not in EU_REGIONS:
        raise OutsideEu(
            f"{what} is in {region!r}, outside the EU: data must stay in an EU region "
            f"({', '.join(sorted(EU_REGIONS))}; default eu-west-3). Nothing was created."
        )
    return region


class UnknownBucket(AirflowFailException):
    """A bucket whose region cannot be read: missing, or not readable by ``aws_default``."""


def bucket_region(s3: S3Hook, bucket: str) -> str:
    """The region a bucket lives in (HeadBucket, as AWS recommends)."""
    try:
        return str(s3.conn.head_bucket(Bucket=bucket)["BucketRegion"])
    except ClientError as error:
        raise UnknownBucket(
            f"bucket {bucket!r}: cannot read its region ({error}); it must exist and the "
            "aws_default identity needs s3:ListBucket on it"
        ) from error


def check_residency(region: str, buckets: Iterable[str], s3: S3Hook) -> str:
    """Refuse a non-EU cluster region or bucket; return the approved region."""
    require_eu(region, "the EMR cluster region (Variable fruits_aws_region)")
    for bucket in sorted(set(buckets)):
        require_eu(bucket_region(s3, bucket), f"bucket {bucket!r}")
    return region
