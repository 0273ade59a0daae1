# syntax=docker/dockerfile:1
# One image for the compose stack (docker-compose.yml): the MLflow server, the Prefect server
# and `mynn serve` all run from it, so every service has the versions pinned in constraints.txt.
#
#   docker build -t mynn:local .
#   docker run --rm mynn:local mynn --help
FROM python:3.11-slim

# Server-only extras, not in constraints.txt (which pins the developer environment):
# psycopg2-binary is MLflow's driver for its postgresql+psycopg2:// backend store (asyncpg,
# Prefect's driver, is pinned there); Flask-WTF is what `mlflow server --app-name basic-auth`
# needs (mlflow[auth]), so switching MLflow's authentication on needs no rebuild.
ARG PSYCOPG2_VERSION=2.9.13
ARG FLASK_WTF_VERSION=1.3.0
ARG WTFORMS_VERSION=3.3.2
ARG APP_UID=10001

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    DO_NOT_TRACK=true \
    MLFLOW_DISABLE_TELEMETRY=true \
    PREFECT_SERVER_ANALYTICS_ENABLED=false \
    MPLBACKEND=Agg \
    MYNN_CACHE_DIR=/app/.cache \
    MYNN_RUNS_DIR=/app/.runs \
    NUMBA_CACHE_DIR=/app/.cache/numba

RUN groupadd --gid "${APP_UID}" mynn \
 && useradd --create-home --uid "${APP_UID}" --gid "${APP_UID}" --shell /usr/sbin/nologin mynn

WORKDIR /app

# Dependencies first, in their own layer: editing the code does not reinstall them.
COPY pyproject.toml constraints.txt ./
# (with the tune extra: the worker serves the tune deployment)
RUN python -c "import tomllib; p = tomllib.load(open('pyproject.toml', 'rb'))['project']; print('\n'.join(p['dependencies'] + p['optional-dependencies']['tune']))" > /tmp/requirements.txt \
 && pip install --no-cache-dir -c constraints.txt -r /tmp/requirements.txt \
        "psycopg2-binary==${PSYCOPG2_VERSION}" "Flask-WTF==${FLASK_WTF_VERSION}" "WTForms==${WTFORMS_VERSION}" \
 && rm /tmp/requirements.txt

# The project itself, installed in place (-e): mynn/paths.py anchors the shipped data at the
# folder above the package (/app/data/mnist), which a copy in site-packages would not have.
# (the license files named in pyproject.toml, data/mnist/README.md among them, must be there first)
COPY README.md LICENSE ./
COPY data ./data
COPY mynn ./mynn
COPY tracking ./tracking
COPY flows ./flows
RUN pip install --no-cache-dir --no-deps -c constraints.txt -e . \
 && pip check \
 && DO_NOT_TRACK=true mynn server prepare
COPY docker/healthcheck.py docker/mlflow-basic-auth.ini ./docker/

# Writable places for the non-root user; named volumes mounted here start with this ownership.
RUN mkdir -p /app/.cache/numba /app/.runs /mlartifacts /mlflow-auth \
 && chown -R mynn:mynn /app/.cache /app/.runs /mlartifacts /mlflow-auth

# Numeric, so runtimes can verify it is not root without reading /etc/passwd.
USER ${APP_UID}:${APP_UID}

CMD ["mynn", "serve"]
