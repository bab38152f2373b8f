"""docker-compose.yml, Dockerfile, .env.example and constraints.txt, checked without Docker.

The compose file is parsed with PyYAML (anchors and ``<<`` merge keys resolved) and its
``${VAR...}`` references are expanded by :func:`interpolate`, which follows compose's rules, so the
checks see what compose would run. The Dockerfile is parsed instruction by instruction. When the
``docker compose`` CLI plugin is present, the file also goes through ``docker compose config``
(which parses, merges and interpolates without an engine); that test alone is skipped otherwise.

Airflow itself is imported only in a subprocess with its own AIRFLOW_HOME, so that these tests
neither write an airflow.cfg anywhere nor change the configuration other tests see.
"""

from __future__ import annotations

import fnmatch
import importlib.metadata
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO_ROOT / "docker-compose.yml"
DOCKERFILE = REPO_ROOT / "Dockerfile"
DOCKERIGNORE = REPO_ROOT / ".dockerignore"
ENV_EXAMPLE = REPO_ROOT / ".env.example"
CONSTRAINTS = REPO_ROOT / "constraints.txt"
DOCS = REPO_ROOT / "docs" / "docker.md"

AIRFLOW_SERVICES = (
    "airflow-apiserver",
    "airflow-scheduler",
    "airflow-dag-processor",
    "airflow-triggerer",
    "airflow-init",
)
LONG_RUNNING = tuple(s for s in AIRFLOW_SERVICES if s != "airflow-init")
REQUIRED_SECRETS = ("_AIRFLOW_WWW_USER_PASSWORD", "POSTGRES_PASSWORD", "AIRFLOW_JWT_SECRET")

# Layout in the image (see Dockerfile): a checkout at /opt/fruits/repo beside /opt/fruits/shared.
IMAGE_REPO = PurePosixPath("/opt/fruits/repo")
IMAGE_SHARED = PurePosixPath("/opt/fruits/shared")


# --- compose-style interpolation ------------------------------------------------------------------


class MissingVariable(ValueError):
    """A ``${VAR:?message}`` (or ``${VAR?message}``) whose variable is missing."""


_REFERENCE = re.compile(r"\$\$|\$\{(?P<braced>[^}]*)\}|\$(?P<bare>[A-Za-z_][A-Za-z0-9_]*)")
_BRACED = re.compile(r"(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?+])(?P<arg>.*))?", re.S)


def interpolate(text: str, env: dict[str, str]) -> str:
    """Expand ``$VAR``, ``${VAR}``, ``${VAR:-default}``, ``${VAR-default}``, ``${VAR:?err}``,
    ``${VAR?err}``, ``${VAR:+alt}``, ``${VAR+alt}`` and ``$$`` as compose does."""

    def expand(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        if match.group("bare"):
            return env.get(match.group("bare"), "")
        parsed = _BRACED.fullmatch(match.group("braced"))
        if not parsed:
            raise ValueError(f"invalid interpolation: {match.group(0)}")
        name, op, arg = parsed.group("name", "op", "arg")
        value = env.get(name)
        unset_or_empty = not value
        if op is None:
            return value or ""
        missing = unset_or_empty if op.startswith(":") else value is None
        if op.endswith("-"):
            return arg if missing else value
        if op.endswith("?"):
            if missing:
                raise MissingVariable(f"{name}: {arg}")
            return value
        return "" if missing else arg  # ':+' / '+'

    return _REFERENCE.sub(expand, text)


def interpolate_all(node: Any, env: dict[str, str]) -> Any:
    if isinstance(node, str):
        return interpolate(node, env)
    if isinstance(node, dict):
        return {key: interpolate_all(value, env) for key, value in node.items()}
    if isinstance(node, list):
        return [interpolate_all(value, env) for value in node]
    return node


def referenced_variables(text: str) -> set[str]:
    names = set()
    for match in _REFERENCE.finditer(text):
        if match.group("bare"):
            names.add(match.group("bare"))
        elif match.group("braced") is not None:
            names.add(_BRACED.fullmatch(match.group("braced")).group("name"))
    return names


# --- fixtures -----------------------------------------------------------------------------------

# Values for the required variables, so that the file can be rendered.
DUMMY_SECRETS = {name: f"dummy-{name.lower().strip('_')}" for name in REQUIRED_SECRETS}


@pytest.fixture(scope="module")
def raw() -> dict[str, Any]:
    """docker-compose.yml as written (anchors and merge keys resolved, nothing interpolated)."""
    return yaml.safe_load(COMPOSE_FILE.read_text())


@pytest.fixture(scope="module")
def compose(raw: dict[str, Any]) -> dict[str, Any]:
    """docker-compose.yml as compose runs it with only the required variables set."""
    return interpolate_all(raw, dict(DUMMY_SECRETS))


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return compose["services"]


def environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment", {})
    if isinstance(env, list):  # the KEY=value list form
        env = dict(item.split("=", 1) for item in env)
    return {key: str(value) for key, value in env.items()}


def volume_targets(service: dict[str, Any]) -> dict[str, tuple[str, str]]:
    """container path -> (host path, mode) for the short-syntax volumes of ``service``."""
    targets = {}
    for volume in service.get("volumes", []):
        source, target, *mode = volume.split(":")
        targets[target] = (source, mode[0] if mode else "rw")
    return targets


def env_example() -> dict[str, str]:
    """Assignments of .env.example, commented-out ones (``# NAME=value``) included."""
    values = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        match = re.fullmatch(r"\s*(?:#\s*)?([A-Za-z_][A-Za-z0-9_]*)=(.*)", line)
        if match:
            values.setdefault(match.group(1), match.group(2).strip())
    return values


def run_airflow_probe(code: str, tmp_path: Path) -> Any:
    """Run ``code`` (which prints JSON) with Airflow importable, in a throwaway AIRFLOW_HOME."""
    env = {**os.environ, "AIRFLOW_HOME": str(tmp_path / "airflow_home")}
    env = {k: v for k, v in env.items() if not k.startswith("AIRFLOW__")}
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


# --- services -------------------------------------------------------------------------------------


def test_services_of_the_official_layout(services):
    assert {"postgres", *AIRFLOW_SERVICES} <= set(services)
    assert services["airflow-apiserver"]["command"] == "api-server"
    assert services["airflow-scheduler"]["command"] == "scheduler"
    assert services["airflow-dag-processor"]["command"] == "dag-processor"
    assert services["airflow-triggerer"]["command"] == "triggerer"
    assert services["airflow-apiserver"]["ports"] == ["8080:8080"]


def test_local_executor_without_celery_or_redis(raw, services):
    for name in AIRFLOW_SERVICES:
        assert environment(services[name])["AIRFLOW__CORE__EXECUTOR"] == "LocalExecutor", name
    assert not {"redis", "airflow-worker", "flower"} & set(services)
    # Nowhere in what compose uses (images, commands, variables), comments aside.
    as_data = json.dumps(raw).lower()
    assert "celery" not in as_data
    assert "redis" not in as_data


def test_airflow_services_share_the_common_image_env_and_volumes(raw, services):
    common = interpolate_all(raw["x-airflow-common"], dict(DUMMY_SECRETS))
    assert common["image"] == "fruits-airflow:latest"
    assert common["build"] == {"context": ".", "dockerfile": "Dockerfile"}
    assert (REPO_ROOT / common["build"]["context"] / common["build"]["dockerfile"]).is_file()
    for name in AIRFLOW_SERVICES:
        service = services[name]
        assert service["image"] == common["image"], name
        assert service["build"] == common["build"], name
        assert service["volumes"] == common["volumes"], name
        env = environment(service)
        for key, value in common["environment"].items():
            assert env.get(key) == str(value), f"{name}: {key}"
    for name in LONG_RUNNING:
        assert services[name]["user"] == "50000:0", name  # ${AIRFLOW_UID:-50000}:0
    # The image name can be overridden.
    assert interpolate(raw["x-airflow-common"]["image"], {"AIRFLOW_IMAGE_NAME": "x:1"}) == "x:1"


def test_auth_manager_and_execution_api(services):
    env = environment(services["airflow-scheduler"])
    assert env["AIRFLOW__CORE__AUTH_MANAGER"] in (
        # FAB: ships with the apache/airflow image and backs `airflow users create`.
        "airflow.providers.fab.auth_manager.fab_auth_manager.FabAuthManager",
        "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager",
    )
    # Tasks reach the api-server by its service name, on the port it listens on.
    url = env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"]
    assert re.fullmatch(r"http://airflow-apiserver:8080/execution/", url)
    # One JWT secret for every component, or the api-server rejects the scheduler's task tokens.
    secrets = {
        environment(services[name])["AIRFLOW__API_AUTH__JWT_SECRET"] for name in LONG_RUNNING
    }
    assert secrets == {DUMMY_SECRETS["AIRFLOW_JWT_SECRET"]}


def test_airflow_settings_are_options_of_the_installed_airflow(services, tmp_path):
    """Every AIRFLOW__SECTION__KEY is a real option (a typo would be silently ignored)."""
    names = {key for name in AIRFLOW_SERVICES for key in environment(services[name])}
    settings = sorted(key for key in names if key.startswith("AIRFLOW__"))
    assert settings
    options = run_airflow_probe(
        "import json\n"
        "from airflow.configuration import retrieve_configuration_description as describe\n"
        "print(json.dumps({s: sorted(d['options']) for s, d in describe().items()}))",
        tmp_path,
    )
    for key in settings:
        _, section, option = key.split("__", 2)
        assert option.lower() in options.get(section.lower(), []), key


# --- secrets --------------------------------------------------------------------------------------


@pytest.mark.parametrize("variable", REQUIRED_SECRETS)
def test_required_secrets_have_no_default(raw, variable):
    text = COMPOSE_FILE.read_text()
    references = re.findall(r"\$\{" + re.escape(variable) + r"([^}]*)\}", text)
    assert references, f"{variable} is not used"
    for rest in references:
        assert rest.startswith(":?"), f"${{{variable}{rest}}} must be ${{{variable}:?message}}"
    # Unset or empty: compose refuses the whole file, with a message naming the variable.
    unset = {name: value for name, value in DUMMY_SECRETS.items() if name != variable}
    with pytest.raises(MissingVariable, match=variable):
        interpolate_all(raw, unset)
    with pytest.raises(MissingVariable, match=variable):
        interpolate_all(raw, {**DUMMY_SECRETS, variable: ""})


def test_admin_user_is_created_by_init_from_the_environment(raw, services):
    init = environment(services["airflow-init"])
    assert init["_AIRFLOW_DB_MIGRATE"] == "true"
    assert init["_AIRFLOW_WWW_USER_CREATE"] == "true"
    assert init["_AIRFLOW_WWW_USER_USERNAME"] == "airflow"
    assert init["_AIRFLOW_WWW_USER_PASSWORD"] == DUMMY_SECRETS["_AIRFLOW_WWW_USER_PASSWORD"]
    written = raw["services"]["airflow-init"]["environment"]["_AIRFLOW_WWW_USER_PASSWORD"]
    assert re.fullmatch(r"\$\{_AIRFLOW_WWW_USER_PASSWORD:\?[^}]+\}", written)
    # Only the init service gets the admin password.
    for name in LONG_RUNNING:
        assert "_AIRFLOW_WWW_USER_PASSWORD" not in environment(services[name]), name


def test_no_literal_password_or_secret_anywhere(raw):
    sensitive = re.compile(r"PASSWORD|SECRET|FERNET|TOKEN|_KEY$")
    for name, service in raw["services"].items():
        for key, value in environment(service).items():
            if sensitive.search(key):
                # A bare reference; a default, if any, must be empty.
                assert re.fullmatch(r"\$\{[A-Za-z_]\w*(:\?[^}]+|:-)?\}", value), f"{name}: {key}"
    # No credentials written into a URL (user:password@host) other than through a variable.
    for url in re.findall(r"[a-z][a-z0-9+.-]*://[^\s'\"]+", COMPOSE_FILE.read_text()):
        userinfo = url.split("://", 1)[1].split("@", 1)
        if len(userinfo) == 2 and ":" in userinfo[0]:
            password = userinfo[0].split(":", 1)[1]
            assert password.startswith("${") and ":?" in password, url
    # Postgres' own password is the one in the database URL.
    postgres = raw["services"]["postgres"]["environment"]["POSTGRES_PASSWORD"]
    assert postgres.startswith("${POSTGRES_PASSWORD:?")


def test_env_example_documents_every_variable_without_real_secrets():
    example = env_example()
    used = referenced_variables(COMPOSE_FILE.read_text())  # $${HOSTNAME} etc. are bash's
    undocumented = used - set(example)
    assert not undocumented, f"add to .env.example: {sorted(undocumented)}"
    for name in REQUIRED_SECRETS:
        assert example[name] == "", f"{name} must be left empty in .env.example"
    for name, value in example.items():
        if re.search(r"PASSWORD|SECRET|FERNET", name):
            assert value == "", f"{name} has a value in .env.example"
    assert example["FRUITS_EXECUTION"] == "local"
    assert example["AIRFLOW_UID"] == "50000"


def test_local_files_with_secrets_stay_out_of_git_and_the_image():
    ignored = subprocess.run(
        ["git", "check-ignore", "--no-index", ".env"], cwd=REPO_ROOT, capture_output=True
    )
    assert ignored.returncode == 0, ".env must be git-ignored"
    assert dockerignore_excludes(".env")
    assert not dockerignore_excludes(".env.example")


# --- dependencies between services ----------------------------------------------------------------


def test_start_order(services):
    for name in LONG_RUNNING:
        depends = services[name]["depends_on"]
        assert depends["airflow-init"]["condition"] == "service_completed_successfully", name
        assert depends["postgres"]["condition"] == "service_healthy", name
    assert services["airflow-init"]["depends_on"]["postgres"]["condition"] == "service_healthy"


def test_healthchecks(services, tmp_path):
    for name in ("postgres", *LONG_RUNNING):
        test = services[name].get("healthcheck", {}).get("test")
        assert test and test[0] in ("CMD", "CMD-SHELL"), name
    assert "pg_isready" in services["postgres"]["healthcheck"]["test"]
    scheduler = services["airflow-scheduler"]
    assert environment(scheduler)["AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK"] == "true"
    assert "http://localhost:8974/health" in scheduler["healthcheck"]["test"]

    # The api-server's URL and the job types exist in the installed Airflow.
    probe = run_airflow_probe(
        "import json\n"
        "from airflow.cli import cli_config\n"
        "from airflow.api_fastapi.core_api.routes.public import public_router\n"
        "from airflow.api_fastapi.core_api.routes.public.monitor import monitor_router\n"
        "arg = next(a for a in vars(cli_config).values()\n"
        "           if isinstance(a, cli_config.Arg) and '--job-type' in a.flags)\n"
        "paths = [public_router.prefix + r.path for r in monitor_router.routes]\n"
        "print(json.dumps({'job_types': list(arg.kwargs['choices']), 'paths': paths}))",
        tmp_path,
    )
    api_test = services["airflow-apiserver"]["healthcheck"]["test"]
    url = next(part for part in api_test if part.startswith("http://localhost:8080/"))
    assert url.removeprefix("http://localhost:8080") in probe["paths"]
    for name, job in (
        ("airflow-dag-processor", "DagProcessorJob"),
        ("airflow-triggerer", "TriggererJob"),
    ):
        command = services[name]["healthcheck"]["test"][1]
        assert f"airflow jobs check --job-type {job}" in command, name
        assert job in probe["job_types"]


# --- volumes and the pipeline's environment -------------------------------------------------------


def test_project_folders_are_mounted(services, image_layout):
    targets = volume_targets(services["airflow-scheduler"])
    expected = {
        "/opt/airflow/dags": ("./dags", "rw"),
        "/opt/airflow/logs": ("./logs", "rw"),
        "/opt/airflow/config": ("./config", "rw"),
        str(IMAGE_REPO / "jobs"): ("./jobs", "ro"),
        str(IMAGE_REPO / "output"): ("./output", "rw"),
        str(IMAGE_SHARED): ("../shared", "ro"),
    }
    for target, mount in expected.items():
        assert targets.get(target) == mount, target
    # The source folders are in the repository ...
    for folder in ("dags", "jobs"):
        assert (REPO_ROOT / folder).is_dir(), folder
    # ... jobs/ is mounted where the image's installed `fruits` looks for the stage scripts ...
    assert image_layout["jobs"] == str(IMAGE_REPO / "jobs")
    for script in image_layout["scripts"]:
        assert (
            REPO_ROOT / "jobs" / PurePosixPath(script).relative_to(IMAGE_REPO / "jobs")
        ).is_file()
    # ... and the shared folder can be moved.
    volumes = [interpolate(v, {"FRUITS_SHARED_DIR": "/data/x"}) for v in _raw_common_volumes()]
    assert "/data/x:/opt/fruits/shared:ro" in volumes


def _raw_common_volumes() -> list[str]:
    return yaml.safe_load(COMPOSE_FILE.read_text())["x-airflow-common"]["volumes"]


def test_runtime_folders_are_created_by_init_and_ignored_by_git(services, raw):
    """logs/ and output/ are not in git: airflow-init creates them and gives them to AIRFLOW_UID."""
    for path in ("logs/scheduler/x.log", "output/images/x", "config/airflow.cfg"):
        ignored = subprocess.run(
            ["git", "check-ignore", "--no-index", path], cwd=REPO_ROOT, capture_output=True
        )
        assert ignored.returncode == 0, f"{path} must be git-ignored"
    script = init_script(raw, {"AIRFLOW_UID": "1234"})
    mkdir = next(line for line in script.splitlines() if line.strip().startswith("mkdir"))
    chown = next(line for line in script.splitlines() if line.strip().startswith("chown"))
    assert "/opt/airflow/{logs,dags,plugins,config}" in mkdir
    assert str(IMAGE_REPO / "output") in mkdir
    assert '"1234:0"' in chown
    assert "/opt/airflow/{logs,config}" in chown and str(IMAGE_REPO / "output") in chown
    assert services["airflow-init"]["user"] == "0:0"


def init_script(raw: dict[str, Any], env: dict[str, str]) -> str:
    command = raw["services"]["airflow-init"]["command"]
    assert raw["services"]["airflow-init"]["entrypoint"] == "/bin/bash"
    assert command[0] == "-c"
    return interpolate(command[1], {**DUMMY_SECRETS, **env})


def test_init_script_is_valid_bash(raw):
    for env in ({}, {"AIRFLOW_UID": "1000"}):
        script = init_script(raw, env)
        result = subprocess.run(["bash", "-n", "-c", script], capture_output=True, text=True)
        assert result.returncode == 0, result.stderr
    script = init_script(raw, {})
    assert "/entrypoint airflow version" in script  # migrates and creates the admin user
    assert "airflow users list" in script  # and the user's existence is checked


def test_pipeline_environment(services, raw, image_layout):
    env = environment(services["airflow-scheduler"])
    assert env["FRUITS_EXECUTION"] == "local"
    # The defaults are the project's own defaults as seen from the image's layout, so a local
    # run reads the mounted sample and writes to the mounted ./output either way.
    assert env["FRUITS_INPUT"] == image_layout["input"]
    assert env["FRUITS_OUTPUT"] == image_layout["output"]
    assert PurePosixPath(env["FRUITS_INPUT"]).is_relative_to(IMAGE_SHARED)
    weights = PurePosixPath(env["FRUITS_WEIGHTS"])
    assert weights.parent == IMAGE_SHARED / "models"
    assert weights.name == "mobilenet_v2_1.0_224_imagenet_no_top.weights.h5"
    # Each can be overridden.
    overrides = {
        "FRUITS_EXECUTION": "emr",
        "FRUITS_INPUT": "/opt/fruits/shared/data/other",
        "FRUITS_OUTPUT": "/opt/fruits/repo/output/other",
        "FRUITS_WEIGHTS": "imagenet",
    }
    common = interpolate_all(raw["x-airflow-common"]["environment"], {**DUMMY_SECRETS, **overrides})
    assert {key: common[key] for key in overrides} == overrides


# --- Dockerfile -----------------------------------------------------------------------------------


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined and comments dropped."""
    instructions, current = [], ""
    for line in DOCKERFILE.read_text().splitlines():
        if line.lstrip().startswith("#") or not line.strip():
            continue
        current += line.rstrip()
        if current.endswith("\\"):
            current = current[:-1] + " "
            continue
        keyword, _, rest = current.strip().partition(" ")
        instructions.append((keyword.upper(), " ".join(rest.split())))
        current = ""
    return instructions


def dockerfile_args() -> dict[str, str]:
    return dict(
        rest.split("=", 1)
        for keyword, rest in dockerfile_instructions()
        if keyword == "ARG" and "=" in rest
    )


def test_dockerfile_base_image_matches_the_project():
    froms = [rest for keyword, rest in dockerfile_instructions() if keyword == "FROM"]
    assert len(froms) == 1
    match = re.fullmatch(r"apache/airflow:(?P<airflow>[\w.]+)-python(?P<python>\d+\.\d+)", froms[0])
    assert match, froms[0]
    assert match["airflow"] == importlib.metadata.version("apache-airflow")
    assert match["python"] == "3.11" == f"{sys.version_info.major}.{sys.version_info.minor}"
    requires = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"][
        "requires-python"
    ]
    assert ">=3.11" in requires and "<3.12" in requires


def test_dockerfile_installs_java_as_root_then_returns_to_airflow():
    instructions = dockerfile_instructions()
    args = dockerfile_args()
    users = [(i, rest) for i, (keyword, rest) in enumerate(instructions) if keyword == "USER"]
    assert users[-1][1] == "airflow", "the image must end as the airflow user"
    java = next(
        i
        for i, (keyword, rest) in enumerate(instructions)
        if keyword == "RUN" and "apt-get install" in rest
    )
    package = re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], instructions[java][1])
    assert "openjdk-17-jre-headless" in package
    user_at_java = [rest for i, rest in users if i < java][-1]
    assert user_at_java == "root"
    env = " ".join(rest for keyword, rest in instructions if keyword == "ENV")
    assert re.search(r"\bJAVA_HOME=/\S+", env)


def test_dockerfile_installs_the_project_with_the_constraints():
    instructions = dockerfile_instructions()
    pip = [
        (i, rest)
        for i, (keyword, rest) in enumerate(instructions)
        if keyword == "RUN" and "pip install" in rest
    ]
    assert len(pip) == 1
    index, command = pip[0]
    assert "-c constraints.txt" in command
    # Airflow stays at the image's version; FAB (the auth manager) and the Postgres driver (the
    # database URL) are resolved together with the constraints.
    assert '"apache-airflow[fab,postgres]==${AIRFLOW_VERSION}"' in command
    assert '-e ".[airflow,service]"' in command  # service: the predict-api's fruits-serve
    # What the pipeline loads must be consistent (the build fails otherwise) ...
    check = re.search(r"python docker/check_requirements\.py (.*?)(&&|$)", command)
    assert check, "the Dockerfile must run docker/check_requirements.py after pip install"
    assert command.index("pip install") < check.start()
    roots = check.group(1).replace('"', "").split()
    assert {
        "fruits-pipeline[airflow]",
        "apache-airflow==${AIRFLOW_VERSION}",
        "apache-airflow-providers-fab",  # the compose file's auth manager
        "apache-airflow-providers-postgres",  # psycopg2, for the postgresql+psycopg2 URL
    } <= set(roots)
    # ... and aiobotocore, which cannot live with constraints.txt's boto3, is not left half-working.
    assert "pip uninstall --yes aiobotocore" in command
    assert "aiobotocore" not in {_normalize(n) for n in constraint_pins(CONSTRAINTS.read_text())}
    users_before = [rest for i, (k, rest) in enumerate(instructions) if k == "USER" and i < index]
    assert users_before[-1] == "airflow", "pip must run as the airflow user"
    copies = [rest for keyword, rest in instructions if keyword == "COPY"]
    copied = [
        source for rest in copies for source in rest.split()[:-1] if not source.startswith("--")
    ]
    assert {"pyproject.toml", "constraints.txt", "docker/check_requirements.py", "jobs/"} <= set(
        copied
    )
    for source in copied:
        assert (REPO_ROOT / source).exists(), source
        assert not dockerignore_excludes(source.rstrip("/")), f".dockerignore drops {source}"
    for heavy in (".venv", ".git", "output", "logs", ".env"):
        assert dockerignore_excludes(heavy), heavy


def dockerignore_excludes(path: str) -> bool:
    """Whether .dockerignore leaves ``path`` out of the build context (last matching rule wins)."""
    excluded = False
    for line in DOCKERIGNORE.read_text().splitlines():
        pattern = line.strip()
        if not pattern or pattern.startswith("#"):
            continue
        negate = pattern.startswith("!")
        pattern = pattern.lstrip("!").strip("/")
        candidates = [pattern]
        if pattern.startswith("**/"):
            candidates.append(pattern[3:])
        parts = path.split("/")
        prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        if any(fnmatch.fnmatchcase(prefix, c) for prefix in prefixes for c in candidates):
            excluded = not negate
    return excluded


PROBE = """
import json, site, sys, sysconfig
# The simulated image's site-packages first, then the virtualenv's (third-party imports only).
site.addsitedir(sys.argv[1])
site.addsitedir(sysconfig.get_paths()["purelib"])
from fruits import local, stages
print(json.dumps({
    "file": local.__file__,
    "repo": str(local.REPO_ROOT),
    "jobs": str(local.JOBS_DIR),
    "scripts": [str(local.JOBS_DIR / stage.script) for stage in stages.STAGES],
    "input": str(local.DEFAULT_INPUT),
    "output": local.parser().get_default("output"),
}))
"""


@pytest.fixture(scope="module")
def image_layout(tmp_path_factory) -> dict[str, Any]:
    """The Dockerfile's project install, replayed under a temporary root.

    The files the Dockerfile copies before its ``pip install`` are copied, the stub package made,
    the project installed in editable mode (without dependencies, offline), then the files the
    Dockerfile copies afterwards are copied over. A fresh interpreter (``-S``: without this
    virtualenv's own install of ``fruits`` first on sys.path) then reports where the project
    finds its code and its defaults; the paths come back as they would be in the image.
    """
    root = tmp_path_factory.mktemp("image")
    instructions = dockerfile_instructions()
    pip_at = next(
        i for i, (k, rest) in enumerate(instructions) if k == "RUN" and "pip install" in rest
    )
    workdir = next(
        PurePosixPath(rest) for k, rest in reversed(instructions[:pip_at]) if k == "WORKDIR"
    )
    assert workdir == IMAGE_REPO
    repo = root / workdir.relative_to("/")
    (root / IMAGE_SHARED.relative_to("/")).mkdir(parents=True)

    def copy(instruction: str) -> None:
        """COPY into the workdir, leaving out what .dockerignore leaves out."""
        *sources, destination = [a for a in instruction.split() if not a.startswith("--")]
        for source in sources:
            if (REPO_ROOT / source).is_dir():
                ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
                shutil.copytree(REPO_ROOT / source, repo / destination, dirs_exist_ok=True,
                                ignore=ignore)  # fmt: skip
            else:
                assert destination.endswith("/"), instruction
                (repo / destination).mkdir(parents=True, exist_ok=True)
                shutil.copy(REPO_ROOT / source, repo / destination / Path(source).name)

    repo.mkdir(parents=True)
    for keyword, rest in instructions[:pip_at]:
        if keyword == "COPY" and "--from" not in rest:
            copy(rest)
    stub = repo / "jobs" / "fruits" / "__init__.py"
    assert "touch jobs/fruits/__init__.py" in instructions[pip_at][1]
    stub.parent.mkdir(parents=True)
    stub.touch()
    prefix = root / "site"
    install = subprocess.run(
        # --ignore-installed: into the prefix only, never touching this virtualenv's own
        # install of the project (without it, pip would uninstall that one first).
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index",
         "--ignore-installed", "--no-build-isolation", "--prefix", str(prefix), "-e", str(repo)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert install.returncode == 0, install.stderr[-3000:]
    for keyword, rest in instructions[pip_at + 1 :]:
        if keyword == "COPY":
            copy(rest)
    site_packages = next(prefix.glob("lib/python*/site-packages"))
    result = subprocess.run(
        [sys.executable, "-S", "-c", PROBE, str(site_packages)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr[-3000:]

    def in_image(value: Any) -> Any:
        if isinstance(value, list):
            return [in_image(item) for item in value]
        return "/" + Path(value).relative_to(root).as_posix()

    return {key: in_image(value) for key, value in json.loads(result.stdout).items()}


def test_editable_install_layout_of_the_image(image_layout):
    """The installed `fruits` is the code under /opt/fruits/repo/jobs (what compose mounts), the
    copied conf/ sits where fruits-local points SPARK_CONF_DIR, and the project's defaults land
    on the image's mounts."""
    assert image_layout["file"] == str(IMAGE_REPO / "jobs" / "fruits" / "local.py")
    assert image_layout["repo"] == str(IMAGE_REPO)
    assert image_layout["jobs"] == str(IMAGE_REPO / "jobs")
    scripts = [PurePosixPath(script) for script in image_layout["scripts"]]
    assert {"load.py", "featurize.py", "pca.py"} <= {script.name for script in scripts}
    assert all(script.parent == IMAGE_REPO / "jobs" for script in scripts)
    assert image_layout["input"] == str(IMAGE_SHARED / "data" / "fruits360-sample")
    assert image_layout["output"] == str(IMAGE_REPO / "output")
    local_source = (REPO_ROOT / "jobs" / "fruits" / "local.py").read_text()
    if '"conf" / "spark"' in local_source:
        assert (REPO_ROOT / "conf" / "spark").is_dir()
        copies = [rest for k, rest in dockerfile_instructions() if k == "COPY"]
        assert any(rest.split()[-2:] == ["conf/", "conf/"] for rest in copies)


def load_check_requirements():
    spec = importlib.util.spec_from_file_location(
        "check_requirements", REPO_ROOT / "docker" / "check_requirements.py"
    )
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


# --- constraints.txt ------------------------------------------------------------------------------


def _normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def constraint_pins(text: str) -> dict[str, str]:
    """name -> version of the ``name==version`` lines of a constraints file."""
    pins = {}
    for line in text.splitlines():
        match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?\s*==\s*([^\s;#]+)", line)
        if match:
            pins[match.group(1)] = match.group(3)
    return pins


def constraint_problems(text: str, installed: dict[str, str]) -> list[str]:
    """What makes ``text`` unfit as the Dockerfile's constraints for the ``installed`` versions."""
    pins, problems = {}, []
    for number, raw_line in enumerate(text.splitlines(), 1):
        line = raw_line.split("#", 1)[0].strip()
        if not line:
            continue
        if line.startswith("-e") or line.startswith("--editable"):
            problems.append(
                f"line {number}: editable entry ({line}): use pip freeze --exclude-editable"
            )
            continue
        match = re.fullmatch(
            r"([A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?\s*==\s*([^\s;]+)(\s*;.*)?", line
        )
        if not match:
            problems.append(f"line {number}: not a name==version pin: {line}")
            continue
        pins[_normalize(match.group(1))] = match.group(3)
    if "fruits-pipeline" in pins:
        problems.append("pins the project itself (fruits-pipeline)")
    for name, version in installed.items():
        if pins.get(_normalize(name)) != version:
            problems.append(
                f"{name}: constraints {pins.get(_normalize(name))}, installed {version}"
            )
    return problems


PINNED = (
    "apache-airflow",
    "apache-airflow-providers-amazon",
    "pyspark",
    "tensorflow-cpu",
    "numpy",
    "pyarrow",
)


def test_constraint_checker_catches_drift():
    installed = {"apache-airflow": "3.3.2", "pyspark": "3.5.9"}
    assert constraint_problems("apache-airflow==3.3.2\npyspark==3.5.9\n", installed) == []
    assert constraint_problems("Apache_Airflow==3.3.2\nPySpark==3.5.9  # ok\n", installed) == []
    assert constraint_problems("apache-airflow==3.3.1\npyspark==3.5.9\n", installed)
    assert constraint_problems("pyspark==3.5.9\n", installed)  # airflow missing
    assert constraint_problems("-e /work/main\napache-airflow==3.3.2\npyspark==3.5.9\n", installed)
    assert constraint_problems(
        "fruits-pipeline==0.1.0\napache-airflow==3.3.2\npyspark==3.5.9", installed
    )
    assert constraint_problems("pyspark @ file:///tmp/p.whl\napache-airflow==3.3.2\n", installed)


def test_constraints_pin_what_the_virtualenv_has():
    """constraints.txt (`make constraints`, from the virtualenv) pins the versions it runs, so
    the image gets the Airflow, Spark and TensorFlow that the tests ran with."""
    assert CONSTRAINTS.is_file(), "constraints.txt missing: run `make constraints`"
    installed = {name: importlib.metadata.version(name) for name in PINNED}
    problems = constraint_problems(CONSTRAINTS.read_text(), installed)
    assert not problems, "\n".join(problems)


# --- docs -----------------------------------------------------------------------------------------


def test_docs_cover_compose_and_the_no_docker_equivalent():
    text = DOCS.read_text()
    for needle in (
        "cp .env.example .env",
        "docker compose up --build",
        "http://localhost:8080",
        "airflow standalone",
        "AIRFLOW_HOME",
        "./output",
    ):
        assert needle in text, needle


# --- the real compose parser, when there is one ---------------------------------------------------


def compose_cli() -> list[str]:
    docker = shutil.which("docker")
    if docker is None:
        pytest.skip("no docker CLI: `docker compose config` not run (the checks above still ran)")
    version = subprocess.run([docker, "compose", "version"], capture_output=True, text=True)
    if version.returncode != 0:
        pytest.skip(
            "the docker compose CLI plugin is not installed: `docker compose config` not run "
            "(the checks above parse the file themselves)"
        )
    return [docker, "compose"]


def test_docker_compose_config(tmp_path):
    cli = compose_cli()
    empty_env_file = tmp_path / "empty.env"  # keeps a developer's own .env out of the check
    empty_env_file.touch()
    base = [*cli, "--project-directory", str(REPO_ROOT), "-f", str(COMPOSE_FILE),
            "--env-file", str(empty_env_file)]  # fmt: skip
    clean = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AIRFLOW", "_AIRFLOW", "FRUITS_", "POSTGRES_", "COMPOSE_"))
    }

    ok = subprocess.run(
        [*base, "config", "--quiet"], env={**clean, **DUMMY_SECRETS}, capture_output=True, text=True
    )
    assert ok.returncode == 0, ok.stderr

    rendered = subprocess.run(
        [*base, "config", "--format", "json"], env={**clean, **DUMMY_SECRETS},
        capture_output=True, text=True,
    )  # fmt: skip
    assert rendered.returncode == 0, rendered.stderr
    model = json.loads(rendered.stdout)
    assert {"postgres", *AIRFLOW_SERVICES} <= set(model["services"])
    init_env = model["services"]["airflow-init"]["environment"]
    assert init_env["AIRFLOW__CORE__EXECUTOR"] == "LocalExecutor"
    assert init_env["_AIRFLOW_WWW_USER_PASSWORD"] == DUMMY_SECRETS["_AIRFLOW_WWW_USER_PASSWORD"]

    for variable in REQUIRED_SECRETS:
        env = {**clean, **DUMMY_SECRETS}
        del env[variable]
        refused = subprocess.run(
            [*base, "config", "--quiet"], env=env, capture_output=True, text=True
        )
        assert refused.returncode != 0, f"compose accepted a missing {variable}"
        assert variable in refused.stderr
