# syntax=docker/dockerfile:1
#
# Airflow image for the Fruits! pipeline, used by docker-compose.yml (`docker compose up --build`).
#
# It extends the official image the way Airflow's docs recommend
# (https://airflow.apache.org/docs/docker-stack/build.html): apt packages as root, then Python
# packages as the `airflow` user, with Airflow itself held at the image's version.
#
# What it adds:
#   * a Java runtime for the embedded Spark of FRUITS_EXECUTION=local (spark-submit needs a JVM;
#     Spark 3.5 supports Java 8/11/17);
#   * the project (jobs/fruits, the `fruits-local` command; jobs/fruits_service, the `fruits-serve`
#     prediction service of the compose file's predict-api) installed in editable mode, with the
#     exact versions of constraints.txt, i.e. the same pyspark / tensorflow-cpu / numpy / pyarrow /
#     Airflow providers as the project's virtualenv and its tests.
#
# Layout inside the image (mirrors a checkout beside ../shared, so the project's defaults hold):
#   /opt/fruits/repo         pyproject.toml, constraints.txt, conf/, jobs/  (compose mounts ./jobs)
#   /opt/fruits/repo/output  run outputs                             (compose mounts ./output here)
#   /opt/fruits/shared       sample data and model weights           (compose mounts ../shared, read-only)
#   /opt/airflow/{dags,plugins,logs,config}  as in the official image (compose mounts them)
#
# Build context: the repository root (see .dockerignore). constraints.txt is the project's pin
# list, generated from its virtualenv by `make constraints`.

# Keep in step with the apache-airflow pin of constraints.txt and the project's Python (3.11):
# tests/deploy/test_compose.py checks both against the installed virtualenv.
FROM apache/airflow:3.3.2-python3.11

# --- System packages (as root) ------------------------------------------------------------------
USER root

# openjdk-17 is the JRE of the image's Debian (bookworm). Override with --build-arg if the base
# image moves to a Debian release without it (keep to a Java that Spark 3.5 supports).
ARG JAVA_PACKAGE=openjdk-17-jre-headless

# /usr/share/man/man1 is missing on slim Debian images and the JRE's postinst needs it.
# /usr/lib/jvm/fruits-java points at the installed JRE whatever the CPU architecture
# (java-17-openjdk-amd64 or -arm64), so JAVA_HOME does not depend on it.
RUN mkdir -p /usr/share/man/man1 \
    && apt-get update \
    && apt-get install -y --no-install-recommends "${JAVA_PACKAGE}" \
    && ln -sfn "$(dirname "$(dirname "$(readlink -f "$(command -v java)")")")" /usr/lib/jvm/fruits-java \
    && apt-get autoremove -yqq --purge \
    && apt-get clean \
    && rm -rf /var/lib/apt/lists/*

ENV JAVA_HOME=/usr/lib/jvm/fruits-java

# The project's folders, owned by airflow:0 like the rest of the image (any UID, group 0).
RUN mkdir -p /opt/fruits/repo/jobs /opt/fruits/repo/output /opt/fruits/shared \
    && chown -R airflow:0 /opt/fruits \
    && chmod -R g+rwX /opt/fruits

# --- Python packages (as airflow) ---------------------------------------------------------------
USER airflow
WORKDIR /opt/fruits/repo

COPY --chown=airflow:0 pyproject.toml constraints.txt ./
COPY --chown=airflow:0 docker/check_requirements.py docker/

# Dependencies first, in their own layer, so editing jobs/ does not reinstall TensorFlow:
# a stub `fruits` package lets pip build the editable install now; the editable install only
# puts /opt/fruits/repo/jobs on sys.path, so the real code copied below (or mounted by compose)
# is what gets imported. "apache-airflow[fab,postgres]==${AIRFLOW_VERSION}" (the version is set
# by the base image) keeps Airflow at the image's version, and brings the FAB auth manager and the
# Postgres driver that docker-compose.yml uses into the same resolution as constraints.txt (which
# does not pin them: the virtualenv runs SQLite and the SimpleAuthManager), so pip moves them
# to versions that fit its pins if the image's do not.
#
# aiobotocore (the image's async-AWS extra) pins an older botocore than constraints.txt's boto3,
# so it is removed: the project's virtualenv runs without it too (its EMR waits poll rather than
# defer), and a half-working aiobotocore would make the DAG defer to it (FRUITS_DEFERRABLE).
#
# check_requirements.py then fails the build if anything the pipeline loads (the project,
# Airflow, the FAB auth manager, the Postgres driver, and what they need) is missing or at a
# version its dependents exclude. A plain `pip check` follows for the record only: the image
# carries many providers the pipeline never imports, and a conflict there must not block it.
RUN mkdir -p jobs/fruits jobs/fruits_airflow jobs/fruits_service \
    && touch jobs/fruits/__init__.py jobs/fruits_airflow/__init__.py jobs/fruits_service/__init__.py \
    && pip uninstall --yes aiobotocore \
    && pip install --no-cache-dir \
        "apache-airflow[fab,postgres]==${AIRFLOW_VERSION}" \
        -c constraints.txt \
        -e ".[airflow,service]" \
    && python docker/check_requirements.py \
        "fruits-pipeline[airflow]" \
        "fruits-pipeline[service]" \
        "apache-airflow==${AIRFLOW_VERSION}" \
        apache-airflow-providers-fab \
        apache-airflow-providers-postgres \
    && { pip check || echo "pip check: the conflicts above are in packages the pipeline does not load"; }

COPY --chown=airflow:0 jobs/ jobs/
# Spark's log4j settings: fruits-local points SPARK_CONF_DIR at <repo>/conf/spark.
COPY --chown=airflow:0 conf/ conf/

# Fail the build, not the first DAG run, if the pipeline's runtime is incomplete.
RUN "${JAVA_HOME}/bin/java" -version \
    && spark-submit --version \
    && python -c "import fruits.local, fruits.stages, fruits_airflow.artifacts, pyspark, tensorflow, psycopg2" \
    && python -c "import fruits_service.app, uvicorn, pillow_heif" \
    && python -c "import airflow.providers.amazon, airflow.providers.fab.auth_manager.fab_auth_manager"

WORKDIR /opt/airflow
