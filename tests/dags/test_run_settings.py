"""What a run is made of before any task touches data: execution mode, Variables, params."""

from __future__ import annotations

from pathlib import Path

import pytest

from fruits_airflow.deployment import LocalSettings, MissingSetting, aws_settings, local_settings
from fruits_airflow.execution import Mode, execution, resolve_mode
from fruits_airflow.run_params import InvalidRun, local_weights_file, validate_emr, validate_local

NO_VARIABLE = {}.get


@pytest.mark.parametrize(
    ("env", "mode"),
    [
        ({}, Mode.LOCAL),
        ({"FRUITS_EXECUTION": "EMR"}, Mode.EMR),
        ({"FRUITS_EXECUTION": "local"}, Mode.LOCAL),
    ],
    ids=["default-local", "emr", "local"],
)
def test_execution_mode_comes_from_the_environment_only(env, mode):
    assert resolve_mode(env) is mode


def test_parse_time_knobs():
    knobs = execution({"FRUITS_EXECUTION": "local", "FRUITS_DEFERRABLE": "false"})
    assert (knobs.mode, knobs.deferrable, knobs.poke_interval_s) == (Mode.LOCAL, False, 60.0)
    with pytest.raises(ValueError, match="FRUITS_DEFERRABLE must be true or false"):
        execution({"FRUITS_EXECUTION": "local", "FRUITS_DEFERRABLE": "maybe"})


def test_aws_settings_need_a_bucket_and_default_the_rest():
    with pytest.raises(MissingSetting, match="set the Airflow Variable fruits_bucket"):
        aws_settings(NO_VARIABLE)
    settings = aws_settings({"fruits_bucket": "fruits-prod"}.get)
    assert settings.region == "eu-west-3"
    assert settings.input == "s3://fruits-prod/input"
    assert settings.output_root == "s3://fruits-prod/output"
    assert settings.log_uri == "s3://fruits-prod/logs/emr/"
    assert settings.security_configuration == "fruits-encryption-at-rest"
    assert (settings.idle_timeout_s, settings.subnet_id) == (3600, None)
    assert settings.service_role == "EMR_DefaultRole_V2"
    assert (settings.deploy_mode, settings.weights_dir) == ("client", None)
    from_env = aws_settings(
        {"fruits_bucket": "fruits-prod", "fruits_emr_deploy_mode": "Cluster"}.get,
        {"FRUITS_EMR_WEIGHTS_DIR": "/opt/models"},
    )
    assert (from_env.deploy_mode, from_env.weights_dir) == ("cluster", "/opt/models")


@pytest.mark.parametrize(
    ("variables", "error"),
    [
        ({"fruits_bucket": "s3://fruits-prod"}, "fruits_bucket must be a bucket name"),
        (
            {"fruits_bucket": "fruits-prod", "fruits_emr_idle_timeout_s": "1h"},
            "fruits_emr_idle_timeout_s must be a number",
        ),
        (
            {"fruits_bucket": "fruits-prod", "fruits_emr_deploy_mode": "local"},
            "fruits_emr_deploy_mode must be client or cluster",
        ),
        (
            {"fruits_bucket": "fruits-prod", "fruits_input_size": "big"},
            "fruits_input_size must be a number of pixels",
        ),
    ],
)
def test_aws_settings_refuse_bad_values(variables, error):
    with pytest.raises(MissingSetting, match=error):
        aws_settings(variables.get, {})


def test_local_defaults_come_from_fruits_env_vars():
    env = {"FRUITS_INPUT": "/in", "FRUITS_OUTPUT": "/out", "FRUITS_WEIGHTS": "/w.h5"}
    assert local_settings(env) == LocalSettings("/in", "/out", "/w.h5")
    defaults = local_settings({})
    assert (defaults.weights, defaults.input_size) == ("imagenet", 224)
    assert local_settings({"FRUITS_INPUT_SIZE": "416"}).input_size == 416
    with pytest.raises(MissingSetting, match="FRUITS_INPUT_SIZE must be a number of pixels"):
        local_settings({"FRUITS_INPUT_SIZE": "416px"})
    assert Path(defaults.output_root).name == "output"


@pytest.fixture
def local(tmp_path: Path):
    (tmp_path / "images").mkdir()
    return local_settings({"FRUITS_INPUT": str(tmp_path / "images"), "FRUITS_OUTPUT": "out"})


def test_a_local_run_reads_the_default_folder_and_resolves_paths(local):
    request = validate_local({"k": None, "variance": 0.9}, local)
    assert request.inputs == (local.input,)
    assert request.output_root == str(Path("out").resolve())
    assert (request.weights, request.k, request.variance) == ("imagenet", None, 0.9)
    assert request.paths("2024-01-01").partition("features").endswith("out/features/ds=2024-01-01")
    assert request.input_size == 224  # locally: the fast size unless asked
    assert validate_local({"input_size": 416}, local).input_size == 416


@pytest.mark.parametrize(
    ("params", "error"),
    [
        ({"input": "/no/such/folder"}, "input folder /no/such/folder not found"),
        ({"input": "s3://fruits-prod/images"}, "a local run reads a local folder, not S3"),
        ({"weights": "/no/such.weights.h5"}, "neither 'imagenet' nor an existing file"),
        ({"weights": "s3://fruits-prod/w.h5"}, "a local run reads a local file, not S3"),
        ({"input_size": 200}, "--input-size must be a multiple of 32"),
    ],
)
def test_a_local_run_refuses_what_it_cannot_read(local, params, error):
    with pytest.raises(InvalidRun, match=error):
        validate_local(params, local)


@pytest.fixture
def aws():
    return aws_settings({"fruits_bucket": "fruits-prod"}.get, {})


@pytest.fixture
def models(weights_path: Path, tmp_path: Path) -> Path:
    """A folder the workers allow weights from (FRUITS_EMR_WEIGHTS_DIR), with a weights file."""
    folder = tmp_path / "models"
    folder.mkdir()
    (folder / weights_path.name).write_bytes(b"weights")
    return folder


def allowing(folder: Path | None, **variables: str):
    return aws_settings(
        {"fruits_bucket": "fruits-prod", **variables}.get,
        {"FRUITS_EMR_WEIGHTS_DIR": str(folder) if folder else ""},
    )


def test_an_emr_run_reads_s3_and_takes_the_cluster_params(weights_path):
    settings = allowing(weights_path.parent)
    params = {"core_instance_count": 4, "task_instance_count": 2, "weights": str(weights_path)}
    request = validate_emr({**params, "task_spot": False, "k": 5}, settings)
    assert request.inputs == ("s3://fruits-prod/input",)
    assert request.output_root == "s3://fruits-prod/output"
    assert request.weights == str(weights_path.resolve())  # uploaded by prepare
    assert (request.core_instance_count, request.task_instance_count) == (4, 2)
    assert (request.task_spot, request.k) == (False, 5)
    assert request.s3_buckets() == {"fruits-prod"}
    assert request.input_size == 416  # on EMR: the accurate size unless asked
    assert validate_emr({"input_size": 224}, settings).input_size == 224
    assert validate_emr({}, allowing(None, fruits_input_size="320")).input_size == 320
    other_buckets = allowing(None, fruits_s3_allowed_buckets="other-bucket, w-bucket")
    other = validate_emr(
        {"input": "s3://other-bucket/x/", "weights": "s3://w-bucket/m.h5"}, other_buckets
    )
    assert other.inputs == ("s3://other-bucket/x",)
    assert other.s3_buckets() == {"fruits-prod", "other-bucket", "w-bucket"}
    assert (other.task_instance_count, other.task_spot) == (0, True)


@pytest.mark.parametrize(
    ("params", "error"),
    [
        ({"input": "/local/folder"}, "an EMR run reads S3"),
        ({"input": "s3://Bad_Bucket/x"}, "not an S3 URI"),
        ({"input": "s3://someone-else/x"}, "bucket 'someone-else' is neither the deployment"),
        ({"weights": "s3://someone-else/w.h5"}, "fruits_s3_allowed_buckets"),
        ({"core_spot": True}, "core nodes stay on demand"),
    ],
)
def test_an_emr_run_refuses_what_the_cluster_cannot_read(aws, params, error):
    with pytest.raises(InvalidRun, match=error):
        validate_emr(params, aws)


def test_weights_from_the_worker_only_from_the_allowed_folder(models, weights_path, tmp_path):
    """/etc/passwd, a secret beside the folder, a link out of it, another kind of file: all
    refused before anything is read; with no folder set, no local file at all."""
    inside = models / weights_path.name
    secret = tmp_path / "secret.h5"
    secret.write_bytes(b"api-key")
    (models / "escape.h5").symlink_to(secret)
    (models / "notes.txt").write_text("not weights")
    assert local_weights_file(str(inside), str(models)) == inside.resolve()
    refused = {
        "/etc/passwd": "not inside",
        str(secret): "not inside",
        str(models / "escape.h5"): "not inside",  # the link's target is outside
        str(models / "notes.txt"): "not a Keras weights file",
        str(models / "missing.h5"): "no such file",
    }
    for path, error in refused.items():
        with pytest.raises(InvalidRun, match=error):
            local_weights_file(path, str(models))
    with pytest.raises(InvalidRun, match="FRUITS_EMR_WEIGHTS_DIR on the Airflow workers"):
        validate_emr({"weights": str(inside)}, allowing(None))
    with pytest.raises(InvalidRun, match="not inside"):
        validate_emr({"weights": "/etc/passwd"}, allowing(models))


def test_a_cluster_where_no_executor_fits_is_refused_before_any_aws_call():
    small = allowing(
        None, fruits_emr_core_instance_type="c5.xlarge", fruits_emr_deploy_mode="cluster"
    )
    with pytest.raises(InvalidRun, match="no executor can start") as refused:
        validate_emr({}, small)
    assert "Capacity (deploy mode cluster)" in str(refused.value)
    with pytest.raises(InvalidRun, match=r"'t3\.micro' is not in the capacity model"):
        validate_emr({}, allowing(None, fruits_emr_core_instance_type="t3.micro"))
    assert validate_emr({}, allowing(None, fruits_emr_core_instance_type="c5.xlarge"))
