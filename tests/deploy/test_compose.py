"""docker-compose.yml, Dockerfile, .env.example and constraints.txt, checked without an engine.

Compose's own semantics (interpolation, merges, validation) are left to ``docker compose
config``, run when the compose CLI plugin is installed and skipped otherwise. The other tests
read the files plainly: the compose file with PyYAML (anchors and ``<<`` merge keys are YAML),
its ``${VAR:-default}`` values left as written.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO_ROOT / "docker-compose.yml"
DOCKERFILE = REPO_ROOT / "Dockerfile"
ENV_EXAMPLE = REPO_ROOT / ".env.example"
CONSTRAINTS = REPO_ROOT / "constraints.txt"

AIRFLOW_SERVICES = (
    "airflow-apiserver",
    "airflow-scheduler",
    "airflow-dag-processor",
    "airflow-triggerer",
    "airflow-init",
)
LONG_RUNNING = AIRFLOW_SERVICES[:-1]
REQUIRED_SECRETS = ("_AIRFLOW_WWW_USER_PASSWORD", "POSTGRES_PASSWORD", "AIRFLOW_JWT_SECRET")
PIPELINE_ENV = (
    "FRUITS_EXECUTION",
    "FRUITS_INPUT",
    "FRUITS_OUTPUT",
    "FRUITS_WEIGHTS",
    "FRUITS_EMR_WEIGHTS_DIR",
)
# The image's layout (Dockerfile): a checkout at /opt/fruits/repo beside /opt/fruits/shared.
IMAGE_REPO = PurePosixPath("/opt/fruits/repo")
IMAGE_SHARED = PurePosixPath("/opt/fruits/shared")
# Compose variables referenced in the file; `$${NAME}` is bash's, not compose's.
COMPOSE_VARIABLE = re.compile(r"(?<!\$)\$\{([A-Za-z_]\w*)")


def dockerfile() -> str:
    """The Dockerfile without comments, continuation lines joined."""
    lines = [line for line in DOCKERFILE.read_text().splitlines() if not line.startswith("#")]
    return re.sub(r"[ \t]*\\\n[ \t]*", " ", "\n".join(lines))


@pytest.fixture(scope="module")
def services() -> dict[str, dict[str, Any]]:
    """The compose file's services as written (YAML anchors and merge keys resolved)."""
    services: dict[str, dict[str, Any]] = yaml.safe_load(COMPOSE_FILE.read_text())["services"]
    return services


def written_default(value: str) -> str:
    """``default`` of a value written ``${NAME:-default}``."""
    match = re.fullmatch(r"\$\{\w+:?-([^}]*)\}", value)
    assert match, f"{value!r} is not ${{NAME:-default}}"
    return match[1]


def mounts(service: dict[str, Any]) -> dict[str, tuple[str, str]]:
    """Container path -> (host path as written, mode) of a service's short-syntax volumes."""
    found = {}
    for volume in service["volumes"]:
        match = re.fullmatch(r"(?P<source>.+?):(?P<target>/[^:]*)(?::(?P<mode>ro|rw))?", volume)
        assert match, volume
        found[match["target"]] = (match["source"], match["mode"] or "rw")
    return found


# --- compose file ---------------------------------------------------------------------------------


def test_services_share_one_image_and_the_local_executor(services):
    assert {"postgres", *AIRFLOW_SERVICES} <= set(services)
    assert not {"redis", "airflow-worker", "flower"} & set(services)
    commands = {name: name.removeprefix("airflow-") for name in LONG_RUNNING}
    commands["airflow-apiserver"] = "api-server"
    assert {name: services[name]["command"] for name in LONG_RUNNING} == commands
    common = {(s["image"], json.dumps(s["build"])) for s in map(services.get, AIRFLOW_SERVICES)}
    assert len(common) == 1, "the Airflow services must run the same image"
    image, build = common.pop()
    assert written_default(image) == "fruits-airflow:latest"
    assert (REPO_ROOT / json.loads(build)["dockerfile"]).resolve() == DOCKERFILE
    for name in AIRFLOW_SERVICES:
        env = services[name]["environment"]
        assert env["AIRFLOW__CORE__EXECUTOR"] == "LocalExecutor", name
        assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"].startswith(
            "http://airflow-apiserver:8080/"
        )


def test_healthchecks_and_start_order(services):
    for name in ("postgres", *LONG_RUNNING):
        assert services[name]["healthcheck"]["test"][0] in ("CMD", "CMD-SHELL"), name
    assert "pg_isready" in services["postgres"]["healthcheck"]["test"]
    scheduler = services["airflow-scheduler"]
    assert scheduler["environment"]["AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK"] == "true"
    assert "http://localhost:8974/health" in scheduler["healthcheck"]["test"]
    for name in LONG_RUNNING:
        depends = services[name]["depends_on"]
        assert depends["airflow-init"]["condition"] == "service_completed_successfully", name
        assert depends["postgres"]["condition"] == "service_healthy", name


def test_airflow_settings_are_options_of_the_installed_airflow(services, tmp_path):
    """Every AIRFLOW__SECTION__KEY is a real option (a typo would be silently ignored)."""
    names = {key for name in AIRFLOW_SERVICES for key in services[name]["environment"]}
    settings = sorted(key for key in names if key.startswith("AIRFLOW__"))
    code = (
        "import json\n"
        "from airflow.configuration import retrieve_configuration_description as describe\n"
        "print(json.dumps({s: sorted(d['options']) for s, d in describe().items()}))"
    )
    # Own AIRFLOW_HOME: no airflow.cfg written where other tests would read it.
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW__")}
    env["AIRFLOW_HOME"] = str(tmp_path)
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    options = json.loads(result.stdout.splitlines()[-1])
    for key in settings:
        _, section, option = key.split("__", 2)
        assert option.lower() in options.get(section.lower(), []), key


def test_project_folders_are_mounted(services):
    for name in AIRFLOW_SERVICES:
        found = mounts(services[name])
        for target, folder, mode in (
            ("/opt/airflow/dags", "dags", "rw"),
            (str(IMAGE_REPO / "jobs"), "jobs", "ro"),
            (str(IMAGE_REPO / "output"), "output", "rw"),
        ):
            source, written_mode = found[target]
            assert source.endswith(f"/{folder}") and written_mode == mode, (name, target)
        assert found[str(IMAGE_SHARED)][1] == "ro", name
    assert (REPO_ROOT / "dags" / "fruits_pipeline.py").is_file()
    assert (REPO_ROOT / "jobs" / "fruits_airflow" / "__init__.py").is_file()


def test_pipeline_environment(services):
    """The FRUITS_* settings reach every Airflow service, their defaults inside the mounts."""
    for name in AIRFLOW_SERVICES:
        env = services[name]["environment"]
        defaults = {key: written_default(env[key]) for key in PIPELINE_ENV}
        assert defaults["FRUITS_EXECUTION"] == "local"
        assert PurePosixPath(defaults["FRUITS_INPUT"]).is_relative_to(IMAGE_SHARED / "data")
        assert PurePosixPath(defaults["FRUITS_OUTPUT"]) == IMAGE_REPO / "output"
        weights = PurePosixPath(defaults["FRUITS_WEIGHTS"])
        assert weights.name == "mobilenet_v2_1.0_224_imagenet_no_top.weights.h5"
        # The only folder local weights may be uploaded from (EMR): the read-only models.
        assert PurePosixPath(defaults["FRUITS_EMR_WEIGHTS_DIR"]) == weights.parent
        assert weights.parent == IMAGE_SHARED / "models"


def test_init_script_is_valid_bash(services):
    """airflow-init's script parses; compose's ${VAR:-x} are bash syntax too, $$ is a `$`."""
    init = services["airflow-init"]
    assert init["entrypoint"] == "/bin/bash" and init["command"][0] == "-c"
    script = init["command"][1].replace("$$", "$")
    result = subprocess.run(["bash", "-n", "-c", script], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "/entrypoint airflow version" in script  # migrates, creates the admin user
    assert "airflow users list" in script  # and checks that the user exists


def test_required_secrets_have_no_default(services):
    text = COMPOSE_FILE.read_text()
    for variable in REQUIRED_SECRETS:
        references = re.findall(r"\$\{" + re.escape(variable) + r"([^}]*)\}", text)
        assert references, f"{variable} is not used"
        for rest in references:
            assert rest.startswith(":?"), f"${{{variable}{rest}}}: must be ${{{variable}:?msg}}"
    # Only the init service gets the admin password.
    for name in LONG_RUNNING:
        assert "_AIRFLOW_WWW_USER_PASSWORD" not in services[name]["environment"], name


def test_env_example_documents_every_compose_variable():
    """Each variable of the compose file has a line (maybe commented out) in .env.example."""
    assignments = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        match = re.fullmatch(r"(?:#\s*)?([A-Za-z_]\w*)=(.*)", line.strip())
        if match:
            assignments.setdefault(match[1], match[2].strip())
    used = set(COMPOSE_VARIABLE.findall(COMPOSE_FILE.read_text()))
    assert used >= set(REQUIRED_SECRETS) | set(PIPELINE_ENV)
    assert not used - set(assignments), f"add to .env.example: {sorted(used - set(assignments))}"
    for name, value in assignments.items():
        if re.search(r"PASSWORD|SECRET|FERNET", name):
            assert value == "", f"{name} has a value in .env.example"
    assert assignments["FRUITS_EXECUTION"] == "local"


def test_local_state_stays_out_of_git_and_the_image():
    for path in (".env", "logs/scheduler/x.log", "output/images/x", "config/airflow.cfg"):
        ignored = subprocess.run(
            ["git", "check-ignore", "--no-index", path], cwd=REPO_ROOT, capture_output=True
        )
        assert ignored.returncode == 0, f"{path} must be git-ignored"
    dockerignore = set((REPO_ROOT / ".dockerignore").read_text().split())
    assert {".env", ".venv", ".git", "output", "logs"} <= dockerignore


# --- Dockerfile -----------------------------------------------------------------------------------


def test_dockerfile_builds_on_the_virtualenvs_airflow_and_python():
    text = dockerfile()
    (base,) = re.findall(r"^FROM (\S+)", text, re.M)
    python = f"{sys.version_info.major}.{sys.version_info.minor}"
    assert base == f"apache/airflow:{importlib.metadata.version('apache-airflow')}-python{python}"
    # Java for the embedded Spark, then the project with the virtualenv's pins, checked.
    assert "openjdk-17-jre-headless" in text and re.search(r"^ENV JAVA_HOME=/", text, re.M)
    assert '-c constraints.txt -e ".[airflow,service]"' in text  # service: predict-api
    assert 'python docker/check_requirements.py "fruits-pipeline[airflow]"' in text
    assert re.findall(r"^USER (\S+)", text, re.M)[-1] == "airflow"


PROBE = """
import json, site, sys, sysconfig
site.addsitedir(sys.argv[1])  # the image's site-packages, then the virtualenv's third parties
site.addsitedir(sysconfig.get_paths()["purelib"])
import fruits, fruits_airflow
from fruits import layout
print(json.dumps({
    "fruits": fruits.__file__, "fruits_airflow": fruits_airflow.__file__,
    "input": str(layout.DEFAULT_INPUT), "output": str(layout.DEFAULT_OUTPUT),
}))
"""


def test_image_imports_the_project_from_the_mounted_jobs(services, tmp_path):
    """The Dockerfile's editable install, replayed under ``tmp_path``: the image imports
    ``fruits`` and ``fruits_airflow`` from /opt/fruits/repo/jobs, where compose mounts ./jobs,
    and the project's defaults land on the compose file's mounts."""
    text = dockerfile()
    install = text.index("pip install")
    assert re.findall(r"^WORKDIR (\S+)", text[:install], re.M)[-1] == str(IMAGE_REPO)
    repo = tmp_path / IMAGE_REPO.relative_to("/")
    (tmp_path / IMAGE_SHARED.relative_to("/")).mkdir(parents=True)
    repo.mkdir(parents=True)

    def copy(before: bool) -> None:
        for match in re.finditer(r"^COPY (?:--\S+ )*(.+) (\S+)$", text, re.M):
            if (match.start() < install) == before:
                for source in match[1].split():  # a folder's content, or a file into a folder
                    if (REPO_ROOT / source).is_dir():
                        ignore = shutil.ignore_patterns("__pycache__", "*.egg-info")
                        shutil.copytree(REPO_ROOT / source, repo / match[2], ignore=ignore,
                                        dirs_exist_ok=True)  # fmt: skip
                    else:
                        (repo / match[2]).mkdir(parents=True, exist_ok=True)
                        shutil.copy(REPO_ROOT / source, repo / match[2])

    copy(before=True)
    for stub in re.findall(r"\btouch ((?:jobs/\S+ ?)+)", text)[0].split():
        (repo / stub).parent.mkdir(parents=True, exist_ok=True)
        (repo / stub).touch()
    prefix = tmp_path / "site"
    pip = subprocess.run(
        # --ignore-installed: into the prefix only, leaving this virtualenv's install alone.
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index",
         "--ignore-installed", "--no-build-isolation", "--prefix", str(prefix), "-e", str(repo)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert pip.returncode == 0, pip.stderr[-3000:]
    copy(before=False)
    site_packages = next(prefix.glob("lib/python*/site-packages"))
    probe = subprocess.run(  # -S: without this virtualenv's own install of the project
        [sys.executable, "-S", "-c", PROBE, str(site_packages)], capture_output=True, text=True
    )
    assert probe.returncode == 0, probe.stderr[-3000:]
    paths = json.loads(probe.stdout)
    found = {key: "/" + Path(path).relative_to(tmp_path).as_posix() for key, path in paths.items()}

    jobs_mount = str(IMAGE_REPO / "jobs")
    assert mounts(services["airflow-scheduler"])[jobs_mount][0].endswith("/jobs")
    assert found["fruits"] == f"{jobs_mount}/fruits/__init__.py"
    assert found["fruits_airflow"] == f"{jobs_mount}/fruits_airflow/__init__.py"
    env = services["airflow-scheduler"]["environment"]
    assert found["input"] == written_default(env["FRUITS_INPUT"])
    assert found["output"] == written_default(env["FRUITS_OUTPUT"])


def load_check_requirements() -> Any:
    path = REPO_ROOT / "docker" / "check_requirements.py"
    spec = importlib.util.spec_from_file_location("check_requirements", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def fake_distribution(folder: Path, name: str, version: str, requires: list[str]) -> None:
    info = folder / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True)
    lines = ["Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}"]
    lines += [f"Requires-Dist: {requirement}" for requirement in requires]
    (info / "METADATA").write_text("\n".join(lines) + "\n")


def test_check_requirements_walks_extras_and_markers(tmp_path, monkeypatch):
    check = load_check_requirements()
    numpy = importlib.metadata.version("numpy")
    fake_distribution(tmp_path, "fruits-fake-root", "1.0", [
        f"numpy=={numpy}",
        "fruits-fake-child>=2",
        'fruits-fake-optional; extra == "more"',
        'fruits-fake-never; python_version < "3"',
    ])  # fmt: skip
    fake_distribution(tmp_path, "fruits-fake-child", "1.5", ["numpy<1"])
    monkeypatch.syspath_prepend(str(tmp_path))

    found = check.problems(["fruits-fake-root"])
    assert any("fruits-fake-child>=2" in p and "1.5 is installed" in p for p in found)
    assert any(p.startswith("numpy<1 (wanted by fruits-fake-child 1.5)") for p in found)
    assert not any("optional" in p or "never" in p for p in found)
    with_extra = check.problems(["fruits-fake-root[more]"])
    assert any("fruits-fake-optional" in p and "not installed" in p for p in with_extra)
    assert check.main(["fruits-fake-root"]) == 1
    assert check.main(["fruits-fake-root-missing"]) == 1


def test_check_requirements_passes_on_the_virtualenv():
    """What the image checks is consistent here (the virtualenv has no FAB and no Postgres)."""
    result = subprocess.run(
        [sys.executable, str(REPO_ROOT / "docker" / "check_requirements.py"),
         "apache-airflow", "apache-airflow-providers-amazon", "pyspark[sql,ml]", "tensorflow-cpu",
         "pyarrow", "pandas", "pillow", "matplotlib", "boto3"],
        capture_output=True, text=True,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr


def test_constraints_pin_what_the_virtualenv_has():
    """constraints.txt (`make constraints`) pins the versions the tests run with, so the image
    gets the same Airflow, Spark and TensorFlow; no editable line, not the project itself."""
    pins = {}
    for line in CONSTRAINTS.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            match = re.fullmatch(r"([A-Za-z0-9][\w.-]*)==(\S+)", line)
            assert match, f"not a name==version pin: {line}"
            pins[re.sub(r"[-_.]+", "-", match[1]).lower()] = match[2]
    assert "fruits-pipeline" not in pins
    assert "aiobotocore" not in pins  # the Dockerfile removes it: it cannot live with boto3's pin
    for name in ("apache-airflow", "apache-airflow-providers-amazon", "pyspark", "tensorflow-cpu",
                 "numpy", "pyarrow"):  # fmt: skip
        assert pins.get(name) == importlib.metadata.version(name), name


def test_docs_cover_compose_and_the_no_docker_equivalent():
    text = (REPO_ROOT / "docs" / "docker.md").read_text()
    for needle in ("cp .env.example .env", "docker compose up --build", "http://localhost:8080",
                   "airflow standalone", "AIRFLOW_HOME", "./output"):  # fmt: skip
        assert needle in text, needle


# --- the real compose parser, when there is one ---------------------------------------------------


def compose_cli() -> list[str]:
    docker = shutil.which("docker")
    if docker is None:
        pytest.skip("no docker CLI: `docker compose config` not run (the file is read plainly)")
    if subprocess.run([docker, "compose", "version"], capture_output=True).returncode != 0:
        pytest.skip(
            "the docker compose CLI plugin is not installed (`docker compose` is an unknown "
            "command): compose's interpolation and validation not checked"
        )
    return [docker, "compose"]


def test_docker_compose_config(tmp_path):
    """What compose itself makes of the file: valid, the secrets required, the defaults."""
    empty_env_file = tmp_path / "empty.env"  # keeps a developer's own .env out of the check
    empty_env_file.touch()
    base = [*compose_cli(), "--project-directory", str(REPO_ROOT), "-f", str(COMPOSE_FILE),
            "--env-file", str(empty_env_file), "config"]  # fmt: skip
    clean = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AIRFLOW", "_AIRFLOW", "FRUITS_", "POSTGRES_", "COMPOSE_"))
    }
    secrets = {name: f"dummy-{name.lower().strip('_')}" for name in REQUIRED_SECRETS}

    def config(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*base, *args], env={**clean, **env}, capture_output=True, text=True)

    rendered = config("--format", "json", **secrets)
    assert rendered.returncode == 0, rendered.stderr
    services = json.loads(rendered.stdout)["services"]
    assert {"postgres", *AIRFLOW_SERVICES} <= set(services)
    assert len({services[name]["image"] for name in AIRFLOW_SERVICES}) == 1
    env = services["airflow-scheduler"]["environment"]
    assert env["AIRFLOW__API_AUTH__JWT_SECRET"] == secrets["AIRFLOW_JWT_SECRET"]
    assert env["FRUITS_EMR_WEIGHTS_DIR"] == str(IMAGE_SHARED / "models")
    init = services["airflow-init"]
    assert (
        init["environment"]["_AIRFLOW_WWW_USER_PASSWORD"] == secrets["_AIRFLOW_WWW_USER_PASSWORD"]
    )

    for variable in REQUIRED_SECRETS:
        refused = config("--quiet", **{k: v for k, v in secrets.items() if k != variable})
        assert refused.returncode != 0, f"compose accepted a missing {variable}"
        assert variable in refused.stderr
