"""The quality gate and the current-model pointer (fruits.promotion): rules, then both outcomes
on a local folder and on S3 (moto)."""

from __future__ import annotations

import json
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from fruits import promotion
from fruits.promotion import GateConfig, Pointer, PromotionError

REGION = "eu-west-3"


def legacy_report(accuracy: float | None) -> dict:
    return {"classes": 4, "test": None if accuracy is None else {"n": 16, "accuracy": accuracy}}


def test_todays_report_gives_one_domain_the_fruits360_test_split():
    assert promotion.domain_metrics(legacy_report(0.93)) == {"fruits360_test": 0.93}
    assert promotion.domain_metrics(legacy_report(None)) == {}


def test_a_report_with_domains_gives_top1_per_domain_with_images():
    report = {
        "test": {"accuracy": 0.5},  # superseded by the domains
        "domains": {
            "fruits360": {"n": 810, "top1": 0.97, "top3": 0.99},
            "grocery_real": {"n": 296, "top1": 0.81, "top3": 0.93},
            "empty": {"n": 0, "top1": None},
        },
    }
    assert promotion.domain_metrics(report) == {"fruits360": 0.97, "grocery_real": 0.81}


def test_each_level_is_judged_by_its_figure_and_its_default_floor():
    report = {
        "domains": {
            "fruits360-sample/Test/variety": {"level": "variety", "n": 810, "top1": 0.97},
            "grocery-store-real/val/fruit": {"level": "fruit", "n": 300, "top1": 0.73},
            "grocery-store-real/val/unknown": {"level": "unknown", "n": 90, "unknown_rate": 0.7},
        }
    }
    metrics = promotion.domain_metrics(report)
    assert metrics == {
        "fruits360-sample/Test/variety": 0.97,
        "grocery-store-real/val/fruit": 0.73,
        "grocery-store-real/val/unknown": 0.7,
    }
    reasons = promotion.gate_reasons(metrics, None, GateConfig())
    assert reasons == [
        "grocery-store-real/val/unknown accuracy 0.7000 is below its floor 0.8000"
    ]  # 0.73 on phone photos passes the fruit level's 0.60; 0.70 refused is too few
    stricter = GateConfig.parse("*/fruit=0.75")
    assert stricter.floor("grocery-store-real/val/fruit") == 0.75
    assert (
        stricter.floor("fruits360-sample/Test/variety") == promotion.DEFAULT_LEVEL_FLOORS["variety"]
    )
    flat = GateConfig.parse("*=0.5")
    assert {flat.floor(name) for name in metrics} == {0.5}


def test_gate_settings_parse_floors_default_floor_and_margin():
    config = GateConfig.parse("*=0.7, fruits360=0.95", "0.05")
    assert config.floors == {"fruits360": 0.95}
    assert (config.default_floor, config.max_regression) == (0.7, 0.05)
    assert config.floor("grocery_real") == 0.7
    defaults = GateConfig.parse(None, "")
    assert (defaults.floors, defaults.default_floor, defaults.max_regression) == (
        {},
        promotion.DEFAULT_FLOOR,
        promotion.DEFAULT_MAX_REGRESSION,
    )


@pytest.mark.parametrize(
    ("floors", "margin", "message"),
    [("fruits360", None, "expected DOMAIN=ACCURACY"), ("a=high", None, "not a number"),
     ("a=1.5", None, "not between 0 and 1"), (None, "-0.1", "not between 0 and 1"),
     ("*/apple=0.5", None, "names no level")],
)  # fmt: skip
def test_bad_gate_settings_say_what_is_wrong(floors, margin, message):
    with pytest.raises(PromotionError, match=message):
        GateConfig.parse(floors, margin)


@pytest.mark.parametrize(
    ("candidate", "current", "expected"),
    [
        ({"d": 0.90}, None, []),
        ({"d": 0.79}, None, ["d accuracy 0.7900 is below its floor 0.8000"]),
        ({"d": 0.90}, {"d": 0.91}, []),  # within the 0.02 margin
        ({"d": 0.92}, {"d": 0.94}, []),  # exactly the margin
        ({"d": 0.90}, {"d": 0.95}, ["d accuracy 0.9000 is 0.0500 below the current model's"]),
        ({"d": 0.90}, {"other": 0.99}, []),  # a domain the candidate lacks is not compared
        ({}, None, ["the train report has no evaluation"]),
    ],
)
def test_the_gate_rules(candidate, current, expected):
    reasons = promotion.gate_reasons(candidate, current, GateConfig())
    assert len(reasons) == len(expected)
    for reason, start in zip(reasons, expected, strict=True):
        assert reason.startswith(start)


def test_a_domain_with_a_configured_floor_is_required():
    config = GateConfig.parse("grocery_real=0.6")
    reasons = promotion.gate_reasons({"fruits360_test": 0.99}, None, config)
    assert reasons == ["no evaluation on domain 'grocery_real' (a floor of 0.600 is configured)"]


def write_model(root: Path, name: str, accuracy: float) -> str:
    folder = root / name
    folder.mkdir(parents=True)
    (folder / "report.json").write_text(json.dumps(legacy_report(accuracy)))
    return str(folder)


def test_local_pointer_promoted_unchanged_rejected_then_promoted_again(tmp_path):
    pointer = str(tmp_path / "serving" / "current-model.json")
    good = write_model(tmp_path, "day1", 0.95)
    first = promotion.promote(good, pointer, GateConfig(), ds="2024-01-01", run_id="r1")
    assert first.outcome == "promoted" and first.current is None
    served = promotion.read_pointer(pointer)
    assert (served.model, served.version, served.ds, served.run_id) == (
        good,
        first.version,
        "2024-01-01",
        "r1",
    )
    assert served.metrics == {"fruits360_test": 0.95} and served.previous is None
    assert first.version.startswith("2024-01-01-")

    again = promotion.promote(good, pointer, GateConfig(), ds="2024-01-01")
    assert again.outcome == "unchanged"

    before = Path(pointer).read_bytes()
    worse = write_model(tmp_path, "day2", 0.90)
    rejected = promotion.promote(worse, pointer, GateConfig(), ds="2024-01-02")
    assert rejected.outcome == "rejected"
    assert "0.0500 below the current model's 0.9500" in rejected.summary()
    assert "NOT promoted, current model " + first.version + " stays" in rejected.summary()
    assert Path(pointer).read_bytes() == before

    better = write_model(tmp_path, "day3", 0.96)
    third = promotion.promote(better, pointer, GateConfig(), ds="2024-01-03")
    assert third.outcome == "promoted"
    assert promotion.read_pointer(pointer).previous == first.version
    assert sorted(p.name for p in Path(pointer).parent.iterdir()) == ["current-model.json"]


def test_a_folder_without_report_or_a_broken_pointer_cannot_be_judged(tmp_path):
    pointer = tmp_path / "current-model.json"
    with pytest.raises(PromotionError, match=r"no report\.json"):
        promotion.promote(str(tmp_path / "missing"), str(pointer), GateConfig())
    pointer.write_text('{"format": "something-else"}')
    model = write_model(tmp_path, "m", 0.99)
    with pytest.raises(PromotionError, match="unreadable current-model pointer"):
        promotion.promote(model, str(pointer), GateConfig())


def test_s3_pointer_both_outcomes_on_moto(monkeypatch):
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    with mock_aws():
        s3 = boto3.client("s3", region_name=REGION)
        s3.create_bucket(Bucket="models", CreateBucketConfiguration={"LocationConstraint": REGION})
        for day, accuracy in (("d1", 0.97), ("d2", 0.70)):
            s3.put_object(
                Bucket="models",
                Key=f"out/model/{day}/report.json",
                Body=json.dumps(legacy_report(accuracy)).encode(),
            )
        pointer = "s3://models/out/serving/current-model.json"
        assert promotion.read_pointer(pointer, s3) is None
        first = promotion.promote("s3://models/out/model/d1/", pointer, GateConfig(), s3=s3)
        assert first.promoted
        stored = s3.get_object(Bucket="models", Key="out/serving/current-model.json")
        assert stored["ContentType"] == "application/json"
        assert Pointer.from_json(stored["Body"].read()).model == "s3://models/out/model/d1"

        second = promotion.promote("s3://models/out/model/d2", pointer, GateConfig(), s3=s3)
        assert second.outcome == "rejected"
        assert promotion.read_pointer(pointer).model == "s3://models/out/model/d1"  # default client


def test_a_promoted_folder_rewritten_since_is_detected(tmp_path):
    pointer = str(tmp_path / "current-model.json")
    model = write_model(tmp_path, "day1", 0.95)
    promotion.promote(model, pointer, GateConfig(), ds="2024-01-01")
    promotion.check_model(promotion.read_pointer(pointer))  # as promoted
    (Path(model) / "report.json").write_text(json.dumps(legacy_report(0.41)))  # a rerun
    with pytest.raises(PromotionError, match="no longer holds model 2024-01-01-"):
        promotion.check_model(promotion.read_pointer(pointer))
