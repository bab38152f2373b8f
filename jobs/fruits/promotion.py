"""Which trained model the app serves: a quality gate, then the "current model" pointer.

After the train stage, :func:`promote` reads the new model's ``report.json``, takes its accuracy
per evaluation domain (:func:`domain_metrics`), checks it against configured floors and against
the model served now (:class:`GateConfig`), and only when every check passes replaces the
pointer: one small JSON object (:class:`Pointer`) naming the train output folder, written
atomically (local: temporary file then rename; S3: one PUT). The prediction service reads the
same pointer to load the model and to notice a newer one.

No Airflow, Spark or web framework here: the DAG's ``publish_model`` task and the service both
import it. S3 goes through boto3 (a client may be passed in: the DAG passes its connection's).
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import json
import os
import tempfile
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, cast

POINTER_FORMAT = "fruits-current-model/1"
# Default place of the pointer, under the run's output root (local folder or s3:// prefix).
POINTER_NAME = "serving/current-model.json"
# Today's train report evaluates one domain: the Fruits-360 Test split.
LEGACY_DOMAIN = "fruits360_test"

DEFAULT_FLOOR = 0.80
# Floors by a domain's level (its name's last part, see fruits.domains), from the measured
# 2026-12 model (varieties: Fruits-360 97 %, grocery 85 %; grocery fruit 73 %; refusals 99 %)
# with room.
DEFAULT_LEVEL_FLOORS = {"variety": 0.80, "fruit": 0.60, "unknown": 0.80}
DEFAULT_MAX_REGRESSION = 0.02
# The figure each level is judged by: top-1 accuracy, or for images of no known fruit, the
# share answered "unknown".
LEVEL_METRIC = {"variety": "top1", "fruit": "top1", "unknown": "unknown_rate"}


class PromotionError(ValueError):
    """The gate cannot decide: a missing or unreadable report or pointer, bad settings."""


# --- metrics ----------------------------------------------------------------------------------


def domain_metrics(report: Mapping[str, Any]) -> dict[str, float]:
    """The figure of each evaluation domain of a train ``report.json``; ``{}`` if none.

    A report with ``"domains": {name: {"level": ..., "n": int, "top1": float, ...}}`` gives one
    entry per domain with images: its top-1 accuracy, or for the ``unknown`` level its
    ``unknown_rate`` (:data:`LEVEL_METRIC`). A report without domains gives its Test accuracy
    (``report["test"]["accuracy"]``) as the domain ``fruits360_test``.
    """
    domains = report.get("domains")
    if isinstance(domains, Mapping):
        out = {}
        for name, scores in domains.items():
            level = (scores.get("level") or _level(str(name))) if scores else None
            value = scores.get(LEVEL_METRIC.get(level or "", "top1")) if scores else None
            if scores and scores.get("n", 1) and value is not None:
                out[str(name)] = float(value)
        return out
    test = report.get("test")
    if isinstance(test, Mapping) and test.get("accuracy") is not None:
        return {LEGACY_DOMAIN: float(test["accuracy"])}
    return {}


# --- the gate ---------------------------------------------------------------------------------


def _level(domain: str) -> str | None:
    """``images/Test/variety`` → ``variety``; None for names without a known level."""
    level = domain.rsplit("/", 1)[-1]
    return level if level in LEVEL_METRIC else None


@dataclass(frozen=True)
class GateConfig:
    """Floors per domain (the domains named are required) and the allowed drop.

    A domain not named takes its level's floor (``level_floors``, e.g. every ``…/fruit``
    domain), else ``default_floor``; ``max_regression`` is how much lower than the current
    model's a domain's figure may be (absolute).
    """

    floors: Mapping[str, float] = field(default_factory=dict)
    default_floor: float = DEFAULT_FLOOR
    max_regression: float = DEFAULT_MAX_REGRESSION
    level_floors: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_LEVEL_FLOORS))

    @classmethod
    def parse(cls, floors: str | None = None, max_regression: str | None = None) -> GateConfig:
        """From settings text: ``floors`` = ``"*=0.8,*/fruit=0.7,images/Test/variety=0.95"``
        (``*``: every domain, replacing the level defaults; ``*/LEVEL``: every domain of that
        level), ``max_regression`` = ``"0.02"``. Empty or None: the defaults."""
        named: dict[str, float] = {}
        levels: dict[str, float] = {}
        default_floor: float | None = None
        for item in (floors or "").split(","):
            if not item.strip():
                continue
            name, sep, value = (part.strip() for part in item.partition("="))
            if not sep or not name:
                raise PromotionError(f"gate floors: expected DOMAIN=ACCURACY, got {item.strip()!r}")
            floor = _fraction(value, f"gate floor of {name}")
            if name == "*":
                default_floor = floor
            elif name.startswith("*/"):
                if name[2:] not in LEVEL_METRIC:
                    raise PromotionError(
                        f"gate floors: {name!r} names no level (one of {', '.join(LEVEL_METRIC)})"
                    )
                levels[name[2:]] = floor
            else:
                named[name] = floor
        margin = (
            _fraction(max_regression, "gate max regression")
            if max_regression and max_regression.strip()
            else DEFAULT_MAX_REGRESSION
        )
        if default_floor is None:  # no "*": the level defaults stand where not overridden
            default_floor, levels = DEFAULT_FLOOR, {**DEFAULT_LEVEL_FLOORS, **levels}
        return cls(named, default_floor, margin, levels)

    def floor(self, domain: str) -> float:
        if domain in self.floors:
            return self.floors[domain]
        return self.level_floors.get(_level(domain) or "", self.default_floor)


def _fraction(text: str, what: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise PromotionError(f"{what}: {text.strip()!r} is not a number") from None
    if not 0.0 <= value <= 1.0:
        raise PromotionError(f"{what}: {value} is not between 0 and 1")
    return value


def gate_reasons(
    candidate: Mapping[str, float], current: Mapping[str, float] | None, config: GateConfig
) -> list[str]:
    """Why ``candidate`` (domain → accuracy) must not replace ``current``; empty: it may."""
    if not candidate:
        return ["the train report has no evaluation (no test images?): nothing to judge it by"]
    reasons = [
        f"no evaluation on domain {domain!r} (a floor of {floor:.3f} is configured)"
        for domain, floor in sorted(config.floors.items())
        if domain not in candidate
    ]
    for domain, accuracy in sorted(candidate.items()):
        if accuracy < config.floor(domain):
            reasons.append(
                f"{domain} accuracy {accuracy:.4f} is below its floor {config.floor(domain):.4f}"
            )
        served = (current or {}).get(domain)
        if served is not None and accuracy < served - config.max_regression - 1e-12:
            reasons.append(
                f"{domain} accuracy {accuracy:.4f} is {served - accuracy:.4f} below the current "
                f"model's {served:.4f} (at most {config.max_regression:.4f} allowed)"
            )
    return reasons


# --- storage: local paths, file:// and s3:// ---------------------------------------------------


def _s3_parts(uri: str) -> tuple[str, str]:
    bucket, _, key = uri.removeprefix("s3://").removeprefix("s3a://").partition("/")
    if not bucket or not key:
        raise PromotionError(f"not an S3 object URI (s3://bucket/key): {uri!r}")
    return bucket, key


def _is_s3(uri: str) -> bool:
    return uri.startswith(("s3://", "s3a://"))


def _local(uri: str) -> Path:
    return Path(uri.removeprefix("file://").removeprefix("file:"))


def _client(s3: Any) -> Any:
    return s3 if s3 is not None else _default_client()


@functools.cache
def _default_client() -> Any:
    import boto3

    return boto3.client("s3")  # thread-safe; made once (the service polls with it)


def read_bytes(uri: str, s3: Any = None) -> bytes | None:
    """The object's bytes, or None when it does not exist."""
    if _is_s3(uri):
        bucket, key = _s3_parts(uri)
        client = _client(s3)
        try:
            return cast(bytes, client.get_object(Bucket=bucket, Key=key)["Body"].read())
        except client.exceptions.NoSuchKey:
            return None
    try:
        return _local(uri).read_bytes()
    except FileNotFoundError:
        return None


def write_atomic(uri: str, data: bytes, s3: Any = None) -> None:
    """Replace the object at once: readers see the old bytes or the new, never a mix."""
    if _is_s3(uri):
        bucket, key = _s3_parts(uri)
        _client(s3).put_object(
            Bucket=bucket, Key=key, Body=data, ContentType="application/json"
        )  # one PUT: atomic
        return
    target = _local(uri)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def default_pointer(output_root: str) -> str:
    """The pointer's default URI under a run's output root."""
    return f"{output_root.rstrip('/')}/{POINTER_NAME}"


# --- the pointer ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Pointer:
    """The served model: its train output folder, a version and the metrics it passed with."""

    model: str
    version: str
    metrics: dict[str, float]
    promoted_at: str
    ds: str | None = None
    run_id: str | None = None
    previous: str | None = None  # the version it replaced

    def to_json(self) -> bytes:
        body = {"format": POINTER_FORMAT, **asdict(self)}
        return (json.dumps(body, indent=2, sort_keys=True) + "\n").encode("utf-8")

    @classmethod
    def from_json(cls, data: bytes, uri: str = "pointer") -> Pointer:
        try:
            body = json.loads(data.decode("utf-8"))
            if body.get("format") != POINTER_FORMAT:
                raise ValueError(f"format {body.get('format')!r}, expected {POINTER_FORMAT!r}")
            return cls(
                model=str(body["model"]),
                version=str(body["version"]),
                metrics={str(k): float(v) for k, v in body.get("metrics", {}).items()},
                promoted_at=str(body.get("promoted_at", "")),
                ds=body.get("ds"),
                run_id=body.get("run_id"),
                previous=body.get("previous"),
            )
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise PromotionError(f"unreadable current-model pointer {uri}: {exc}") from exc


def read_pointer(uri: str, s3: Any = None) -> Pointer | None:
    """The pointer at ``uri``; None when no model was promoted yet."""
    data = read_bytes(uri, s3)
    return None if data is None else Pointer.from_json(data, uri)


def model_version(report_bytes: bytes, ds: str | None = None) -> str:
    """A short, stable id of a trained model: its date and a hash of its ``report.json``."""
    digest = hashlib.sha256(report_bytes).hexdigest()
    return f"{ds}-{digest[:8]}" if ds else digest[:12]


def read_model_report(model: str, s3: Any = None) -> tuple[dict[str, Any], bytes]:
    """``report.json`` of a train output folder, parsed and raw."""
    uri = f"{model.rstrip('/')}/report.json"
    data = read_bytes(uri, s3)
    if data is None:
        raise PromotionError(f"no report.json in the train output {model} (looked for {uri})")
    try:
        return json.loads(data.decode("utf-8")), data
    except ValueError as exc:
        raise PromotionError(f"{uri} is not JSON: {exc}") from exc


def check_model(pointer: Pointer, s3: Any = None) -> None:
    """Raise :class:`PromotionError` unless the folder still holds the model that was promoted
    (a rerun may have rewritten it since, with a model the gate did not pass)."""
    _, raw = read_model_report(pointer.model, s3)
    if model_version(raw, pointer.ds) != pointer.version:
        raise PromotionError(
            f"{pointer.model} no longer holds model {pointer.version} (its report.json changed "
            "since it was promoted): not serving it"
        )


# --- promotion --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Decision:
    """What :func:`promote` did: ``promoted``, ``rejected`` (see ``reasons``) or ``unchanged``."""

    outcome: str
    model: str
    version: str
    metrics: dict[str, float]
    pointer: str
    reasons: list[str]
    current: Pointer | None

    @property
    def promoted(self) -> bool:
        return self.outcome == "promoted"

    def summary(self) -> str:
        scores = ", ".join(f"{d} {a:.4f}" for d, a in sorted(self.metrics.items())) or "none"
        head = f"model {self.version} ({self.model}; {scores})"
        served = f"current model {self.current.version}" if self.current else "no current model"
        if self.outcome == "promoted":
            return f"{head} promoted: {self.pointer} now names it (was: {served})"
        if self.outcome == "unchanged":
            return f"{head} is already the current model: {self.pointer} unchanged"
        return f"{head} NOT promoted, {served} stays: " + "; ".join(self.reasons)

    def as_dict(self) -> dict[str, Any]:
        return {
            "outcome": self.outcome,
            "model": self.model,
            "version": self.version,
            "metrics": self.metrics,
            "pointer": self.pointer,
            "reasons": self.reasons,
            "current_version": self.current.version if self.current else None,
            "summary": self.summary(),
        }


def promote(
    model: str,
    pointer: str,
    config: GateConfig,
    ds: str | None = None,
    run_id: str | None = None,
    s3: Any = None,
    now: dt.datetime | None = None,
) -> Decision:
    """Gate the train output folder ``model``; when it passes, point ``pointer`` at it."""
    model = model.rstrip("/")
    report, raw = read_model_report(model, s3)
    metrics = domain_metrics(report)
    version = model_version(raw, ds)
    current = read_pointer(pointer, s3)
    if current is not None and (current.model, current.version) == (model, version):
        return Decision("unchanged", model, version, metrics, pointer, [], current)
    reasons = gate_reasons(metrics, current.metrics if current else None, config)
    if reasons:
        return Decision("rejected", model, version, metrics, pointer, reasons, current)
    promoted_at = (now or dt.datetime.now(dt.UTC)).isoformat(timespec="seconds")
    new = Pointer(
        model=model,
        version=version,
        metrics=metrics,
        promoted_at=promoted_at,
        ds=ds,
        run_id=run_id,
        previous=current.version if current else None,
    )
    write_atomic(pointer, new.to_json(), s3)
    return Decision("promoted", model, version, metrics, pointer, [], current)
