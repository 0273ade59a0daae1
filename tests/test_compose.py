"""The compose stack (docker-compose.yml, Dockerfile, .env.example, docker/), checked without Docker.

``docker compose config`` (v2) or ``docker-compose config`` (v1, Debian's ``docker-compose``
package) validates and renders the file without a Docker daemon; the rendered YAML is then
checked: four services, only the two UIs published and only on 127.0.0.1, health checks and
healthy-dependencies everywhere, named volumes, and no password outside .env. Tests that need
a compose command skip when there is none; the others always run.
"""
from __future__ import annotations

import http.server
import os
import re
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
COMPOSE_FILE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / ".env.example"
SERVICES = {"postgres", "mlflow", "prefect", "worker", "model"}
PASSWORD_VARS = ("POSTGRES_PASSWORD", "PREFECT_DB_PASSWORD", "MLFLOW_DB_PASSWORD", "OPTUNA_DB_PASSWORD")
SECRET_NAME = re.compile(r"PASSWORD|SECRET|AUTH_STRING")


def _env_example() -> dict[str, str]:
    """Every ``NAME=value`` of .env.example, commented-out ones (``# NAME=value``) included."""
    out = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        m = re.match(r"^\s*#?\s*([A-Z][A-Z0-9_]*)=(.*)$", line)
        if m:
            out[m[1]] = m[2].strip()
    return out


def _compose_command() -> list[str] | None:
    if shutil.which("docker"):
        probe = subprocess.run(["docker", "compose", "version"], capture_output=True, text=True)
        if probe.returncode == 0:
            return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    return None


@pytest.fixture(scope="module")
def compose() -> list[str]:
    cmd = _compose_command()
    if cmd is None:
        pytest.skip("no compose command on PATH: install Debian's 'docker-compose' package "
                    "(apt-get install docker-compose) or Docker's compose plugin "
                    "('docker-compose-plugin', for `docker compose`)")
    return cmd


def _run_config(compose: list[str], env_file: Path) -> subprocess.CompletedProcess:
    # Only the env file may supply the stack's variables: drop any the caller has exported,
    # and compose's own settings, so the result does not depend on this shell.
    names = set(_env_example()) | set(re.findall(r"(?<!\$)\$\{([A-Z][A-Z0-9_]*)", COMPOSE_FILE.read_text()))
    env = {k: v for k, v in os.environ.items() if k not in names and not k.startswith("COMPOSE_")}
    return subprocess.run([*compose, "--env-file", str(env_file), "-f", str(COMPOSE_FILE), "config"],
                          capture_output=True, text=True, env=env, cwd=ROOT, timeout=120)


@pytest.fixture(scope="module")
def config(compose, tmp_path_factory) -> dict:
    env_file = tmp_path_factory.mktemp("compose") / ".env.test"
    shutil.copy(ENV_EXAMPLE, env_file)
    result = _run_config(compose, env_file)
    assert result.returncode == 0, f"{' '.join(compose)} config failed:\n{result.stderr}"
    return yaml.safe_load(result.stdout)


def _ports(service: dict) -> list[tuple[str | None, str, str]]:
    """(host ip, published port, container port) of each published port, short or long syntax."""
    out = []
    for p in service.get("ports", []):
        if isinstance(p, dict):  # v2 renders the long syntax
            out.append((p.get("host_ip"), str(p.get("published")), str(p["target"])))
        else:  # v1: "127.0.0.1:5000:5000/tcp"
            parts = str(p).split("/")[0].split(":")
            host_ip = parts[0] if len(parts) == 3 else None
            out.append((host_ip, parts[-2] if len(parts) >= 2 else "", parts[-1]))
    return out


def _volumes(service: dict) -> dict[str, tuple[str, str]]:
    """Container path -> (type, source) of each mount, short or long syntax."""
    out = {}
    for v in service.get("volumes", []):
        if isinstance(v, dict):
            out[v["target"]] = (v["type"], v.get("source", ""))
        else:
            source, target = str(v).split(":")[:2]
            kind = "bind" if source.startswith(("/", ".", "~")) else "volume"
            out[target] = (kind, source)
    return out


def _environment(service: dict) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {k: "" if v is None else str(v) for k, v in env.items()}


def _command(service: dict) -> list[str]:
    cmd = service.get("command")
    return cmd.split() if isinstance(cmd, str) else list(cmd or [])


# --------------------------------------------------------------------- rendered by compose


def test_config_has_the_five_services(config):
    assert set(config["services"]) == SERVICES


def test_only_the_two_uis_and_the_model_page_are_published_on_loopback(config):
    published = {name: _ports(svc) for name, svc in config["services"].items() if _ports(svc)}
    assert published == {"mlflow": [("127.0.0.1", "5000", "5000")],
                         "prefect": [("127.0.0.1", "4200", "4200")],
                         "model": [("127.0.0.1", "5001", "5001")]}


def test_every_service_has_a_health_check(config):
    for name, svc in config["services"].items():
        check = svc.get("healthcheck")
        assert check and not check.get("disable"), f"{name} has no health check"
        assert check["test"] and check["test"][0] in ("CMD", "CMD-SHELL"), (name, check)


def test_dependencies_wait_for_healthy_services(config):
    services = config["services"]
    expected = {"mlflow": {"postgres"}, "prefect": {"postgres"}, "worker": {"prefect", "mlflow", "postgres"},
                "model": {"mlflow"}}
    for name, deps in expected.items():
        depends_on = services[name].get("depends_on")
        assert isinstance(depends_on, dict) and set(depends_on) == deps, (name, depends_on)
        for dep, spec in depends_on.items():
            assert spec.get("condition") == "service_healthy", (name, dep, spec)
    assert not services["postgres"].get("depends_on")


def test_state_lives_in_named_volumes(config):
    declared = set(config.get("volumes") or {})
    expected = {"postgres": "/var/lib/postgresql/data", "mlflow": "/mlartifacts",
                "worker": ("/app/.cache", "/app/.runs")}
    for name, targets in expected.items():
        mounts = _volumes(config["services"][name])
        for target in (targets,) if isinstance(targets, str) else targets:
            kind, source = mounts.get(target, (None, None))
            assert kind == "volume" and source in declared, (name, target, mounts, declared)
    init = _volumes(config["services"]["postgres"])
    assert any(t.startswith("/docker-entrypoint-initdb.d/") and k == "bind" and s.endswith("postgres-init.sh")
               for t, (k, s) in init.items()), init


def test_restart_policy_and_wiring(config):
    services = config["services"]
    for name, svc in services.items():
        assert svc.get("restart") == "unless-stopped", name
    assert services["postgres"]["image"].startswith("postgres:16")
    for name in ("mlflow", "prefect", "worker", "model"):
        assert services[name].get("build"), f"{name} is not built from this repository"
    assert _command(services["model"])[:2] == ["mynn", "serve-model"]
    assert "models:/mynn@champion" in _command(services["model"])
    assert _environment(services["model"])["MLFLOW_TRACKING_URI"] == "http://mlflow:5000"
    assert services["model"]["healthcheck"]["test"][-1] == "http://127.0.0.1:5001/health"
    assert not set(services["model"].get("networks") or {}) & {"db"}  # no database for the model server

    values = _env_example()
    mlflow_cmd = " ".join(_command(services["mlflow"]))
    assert (f"--backend-store-uri postgresql+psycopg2://{values['MLFLOW_DB_USER']}:"
            f"{values['MLFLOW_DB_PASSWORD']}@postgres:5432/mlflow") in mlflow_cmd
    for flag in ("--artifacts-destination /mlartifacts", "--serve-artifacts", "--host 0.0.0.0",
                 "--port 5000", "--workers 1"):
        assert flag in mlflow_cmd, flag
    mlflow_env = _environment(services["mlflow"])
    assert mlflow_env["MLFLOW_DISABLE_TELEMETRY"] == "true" and mlflow_env["DO_NOT_TRACK"] == "true"
    assert mlflow_env["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] == "false"
    assert "mlflow:5000" in mlflow_env["MLFLOW_SERVER_ALLOWED_HOSTS"].split(",")

    assert _command(services["prefect"])[:3] == ["prefect", "server", "start"]
    prefect_env = _environment(services["prefect"])
    assert prefect_env["PREFECT_API_DATABASE_CONNECTION_URL"] == (
        f"postgresql+asyncpg://{values['PREFECT_DB_USER']}:{values['PREFECT_DB_PASSWORD']}@postgres:5432/prefect")
    assert prefect_env["PREFECT_SERVER_ANALYTICS_ENABLED"] == "false"
    assert prefect_env["PREFECT_UI_API_URL"] == "http://localhost:4200/api"

    assert _command(services["worker"]) == ["mynn", "serve"]
    worker_env = _environment(services["worker"])
    assert worker_env["PREFECT_API_URL"] == "http://prefect:4200/api"
    assert worker_env["MLFLOW_TRACKING_URI"] == "http://mlflow:5000"

    # Postgres only on its internal network. The worker joins it for mynn tune's studies, with the
    # optuna user's credentials only: neither server's database password is in its environment.
    db_networks = set(services["postgres"].get("networks") or {})
    assert db_networks and all(config["networks"][n].get("internal") for n in db_networks)
    assert worker_env["MYNN_STUDY_STORAGE"] == (
        f"postgresql+psycopg2://{values['OPTUNA_DB_USER']}:{values['OPTUNA_DB_PASSWORD']}@postgres:5432/optuna")
    assert not {values["MLFLOW_DB_PASSWORD"], values["PREFECT_DB_PASSWORD"]} & set(worker_env.values())


def test_config_without_the_env_file_fails_naming_a_password(compose, tmp_path):
    empty = tmp_path / "empty.env"
    empty.write_text("")
    result = _run_config(compose, empty)
    assert result.returncode != 0, "compose accepted the file without any password"
    message = result.stderr + result.stdout
    assert re.search(r"\b(%s) must be set in \.env" % "|".join(PASSWORD_VARS), message), message


# ------------------------------------------------------------------------- static checks


def test_no_password_literal_in_the_compose_file():
    text = COMPOSE_FILE.read_text()
    # 1. None of .env.example's secret values.
    for name, value in _env_example().items():
        if SECRET_NAME.search(name) and value:
            assert value not in text, f"{name}'s value appears in docker-compose.yml"
    # 2. Every secret variable is required (${NAME:?...}), never given a default.
    for m in re.finditer(r"(?<!\$)\$\{([A-Z][A-Z0-9_]*)([^}]*)\}", text):
        if SECRET_NAME.search(m[1]):
            assert m[2].startswith(":?"), f"{m[0]} has a default or is optional"
    # 3. Every KEY: value / KEY=value whose key names a secret takes it from such a variable
    #    (comment lines included: they document how to switch authentication on).
    for line in text.splitlines():
        m = re.search(r"\b([A-Z][A-Z0-9_]*)\s*[:=]\s*(\S.*)$", line)
        if m and SECRET_NAME.search(m[1]):
            assert re.fullmatch(r"\$\{[A-Z][A-Z0-9_]*:\?[^}]*\}", m[2].strip()), line
    # 4. The password part of each URL with credentials is a required variable too.
    urls = re.findall(r"://([^@\n]*)@", text)
    assert urls, "no database URL found"
    for userinfo in urls:
        assert re.fullmatch(r"\$\{[A-Z][A-Z0-9_]*(:-[A-Za-z0-9_.-]*)?\}:\$\{[A-Z][A-Z0-9_]*:\?[^}]*\}",
                            userinfo), userinfo


def test_env_example_lists_every_variable_with_placeholders():
    values = _env_example()
    used = set(re.findall(r"(?<!\$)\$\{([A-Z][A-Z0-9_]*)", COMPOSE_FILE.read_text()))
    assert used - set(values) == set(), "variables of docker-compose.yml missing from .env.example"
    for name in PASSWORD_VARS:
        assert name in values
    for name, value in values.items():
        if SECRET_NAME.search(name):
            assert "change-me" in value, f"{name} in .env.example does not look like a placeholder"
            password = value.split(":", 1)[-1]
            assert re.fullmatch(r"[A-Za-z0-9._~-]+", password), f"{name}: not URL-safe"
    active = {m[1] for m in re.finditer(r"^([A-Z][A-Z0-9_]*)=", ENV_EXAMPLE.read_text(), re.M)}
    assert set(PASSWORD_VARS) <= active, "the required passwords must not be commented out"


def test_dockerfile_and_dockerignore():
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.11-slim\b", dockerfile, re.M)
    users = re.findall(r"^USER\s+(\S+)", dockerfile, re.M)
    assert users and users[-1].split(":")[0] not in ("root", "0"), "the image must not run as root"
    assert re.search(r"PSYCOPG2_VERSION=\d+\.\d+\.\d+", dockerfile) and "psycopg2-binary==" in dockerfile
    assert "-c constraints.txt" in dockerfile and "--no-cache-dir" in dockerfile
    assert re.search(r'^CMD \["mynn", "serve"\]', dockerfile, re.M)
    # pip builds the project's metadata from pyproject.toml: its license files are in the image first
    import tomllib

    install = dockerfile.index("-e .")
    copied = " ".join(m[1] for m in re.finditer(r"^COPY (.+) \S+$", dockerfile[:install], re.M)).split()
    for name in tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["license-files"]:
        assert name in copied or name.split("/")[0] in copied, f"{name} is not copied before the install"
    ignored = set((ROOT / ".dockerignore").read_text().split())
    assert {".venv", ".cache", ".runs", "mlflow.db", "mlartifacts", ".git", ".env"} <= ignored


def test_postgres_init_script_parses():
    script = ROOT / "docker" / "postgres-init.sh"
    bash = shutil.which("bash")
    if bash is None:
        pytest.skip("bash not on PATH")
    result = subprocess.run([bash, "-n", str(script)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    text = script.read_text()
    for name in ("PREFECT_DB_USER", "PREFECT_DB_PASSWORD", "MLFLOW_DB_USER", "MLFLOW_DB_PASSWORD", "OPTUNA_DB_USER",
                 "OPTUNA_DB_PASSWORD"):
        assert name in text
    assert "CREATE DATABASE prefect" in text and "CREATE DATABASE mlflow" in text and "CREATE DATABASE optuna" in text


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 (http.server's name)
        self.send_response(200 if self.path == "/ok" else 503)
        self.end_headers()

    def log_message(self, *args):
        pass


def test_healthcheck_script():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    script = str(ROOT / "docker" / "healthcheck.py")

    def check(*args: str) -> int:
        return subprocess.run([sys.executable, script, *args], capture_output=True, timeout=30).returncode

    try:
        assert check(f"{base}/ok") == 0
        assert check(f"{base}/ok", f"{base}/ok") == 0
        assert check(f"{base}/ok", f"{base}/down") == 1
        assert check("http://127.0.0.1:9/nothing-listens-here") == 1
        assert check() == 2
        # PID 1 here is not `mynn serve`.
        assert check("--process", "no-such-process-name-x", f"{base}/ok") == 1
    finally:
        server.shutdown()
        server.server_close()
