"""S3 URI helpers: split, join, recognise."""

from __future__ import annotations

import re

_S3_URI = re.compile(r"^s3://(?P<bucket>[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9])(?:/(?P<key>.*))?$")


def is_s3(uri: str) -> bool:
    return uri.startswith("s3://")


def split_s3(uri: str) -> tuple[str, str]:
    """``s3://bucket/some/key`` → ``("bucket", "some/key")``; ValueError when not an S3 URI."""
    match = _S3_URI.match(uri)
    if not match:
        raise ValueError(f"not an S3 URI (s3://<bucket>/<key>): {uri!r}")
    return match["bucket"], match["key"] or ""


def s3_uri(bucket: str, *parts: str) -> str:
    """``s3://bucket/part1/part2`` (slashes between parts normalised)."""
    key = "/".join(part.strip("/") for part in parts if part.strip("/"))
    return f"s3://{bucket}/{key}" if key else f"s3://{bucket}"
