"""Real servers on 127.0.0.1 for tests: PostgreSQL, MLflow and Prefect, each in its own
process group (started with a new session) and stopped by killing that group."""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

BIN = Path(sys.executable).parent
PG_BIN = Path("/usr/lib/postgresql/15/bin")
QUIET_ENV = {"DO_NOT_TRACK": "true", "MLFLOW_DISABLE_TELEMETRY": "true", "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, timeout: float, proc: subprocess.Popen | None = None, log: Path | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} before {url} answered:\n"
                               f"{log.read_text()[-3000:] if log else ''}")
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                if resp.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.3)
    raise TimeoutError(f"{url} did not answer within {timeout} s:\n{log.read_text()[-3000:] if log else ''}")


@dataclass
class Server:
    name: str
    url: str
    proc: subprocess.Popen
    log: Path
    extra: dict = field(default_factory=dict)

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(timeout=15)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                try:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.proc.wait(timeout=10)


def _spawn(name: str, cmd: list[str], env: dict, log: Path) -> subprocess.Popen:
    full_env = {**os.environ, **QUIET_ENV, **env, "PATH": f"{BIN}:{os.environ.get('PATH', '')}"}
    fh = open(log, "wb")
    return subprocess.Popen(cmd, env=full_env, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True)


def postgres_available() -> str | None:
    """None if a PostgreSQL server can be started here, else what is missing."""
    if not (PG_BIN / "initdb").exists():
        return "PostgreSQL server binaries (Debian package postgresql-15) are not installed"
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        return "runuser is missing (needed to run initdb as a non-root user)"
    try:
        import psycopg2  # noqa: F401
    except ImportError:
        return "psycopg2 (pip psycopg2-binary, MLflow's PostgreSQL driver) is not installed"
    return None


@dataclass
class Postgres:
    port: int
    data: Path
    user: str | None

    def _run(self, *args: str) -> None:
        cmd = list(args)
        if self.user:
            cmd = ["runuser", "-u", self.user, "--", *cmd]
        done = subprocess.run(cmd, capture_output=True, timeout=120, text=True)
        if done.returncode:
            raise RuntimeError(f"{' '.join(cmd)} failed ({done.returncode}): {done.stderr[-2000:]}")

    def createdb(self, name: str) -> str:
        self._run(str(PG_BIN / "createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", name)
        return f"postgres@127.0.0.1:{self.port}/{name}"

    def stop(self) -> None:
        try:
            self._run(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")
        except RuntimeError:
            pass
        shutil.rmtree(self.data.parent, ignore_errors=True)


def start_postgres() -> Postgres:
    """initdb in a fresh folder under /tmp (as the ``postgres`` user when running as root, since
    PostgreSQL refuses root) and start it on a free 127.0.0.1 port, trust auth, fsync off."""
    import tempfile

    root = Path(tempfile.mkdtemp(prefix="mynn-pg-"))
    user = "postgres" if os.geteuid() == 0 else None
    data = root / "pgdata"
    if user:
        shutil.chown(root, user)
    pg = Postgres(free_port(), data, user)
    pg._run(str(PG_BIN / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust", "--no-sync", "-E", "UTF8")
    pg._run(str(PG_BIN / "pg_ctl"), "-D", str(data), "-w", "-l", str(root / "postgres.log"), "-o",
            f"-p {pg.port} -c listen_addresses=127.0.0.1 -k {root} -c fsync=off", "start")
    return pg


def _healthy(server: Server, path: str, timeout: float) -> Server:
    """Wait until ``server.url + path`` answers 200; stop the server if it never does."""
    try:
        wait_http(server.url + path, timeout, server.proc, server.log)
    except BaseException:
        server.stop()
        raise
    return server


def start_mlflow(backend_uri: str, artifacts: Path, log: Path) -> Server:
    port = free_port()
    proc = _spawn("mlflow", [str(BIN / "mlflow"), "server", "--backend-store-uri", backend_uri,
                             "--artifacts-destination", str(artifacts), "--serve-artifacts",
                             "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
                  {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}, log)
    return _healthy(Server("mlflow", f"http://127.0.0.1:{port}", proc, log), "/health", 120)


def start_prefect(home: Path, database_url: str | None, log: Path) -> Server:
    port = free_port()
    env = {"PREFECT_HOME": str(home), "PREFECT_SERVER_API_HOST": "127.0.0.1", "PREFECT_API_URL": "",
           "PREFECT_UI_API_URL": f"http://127.0.0.1:{port}/api"}
    if database_url:
        env["PREFECT_API_DATABASE_CONNECTION_URL"] = database_url
    proc = _spawn("prefect", [str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
                  env, log)
    return _healthy(Server("prefect", f"http://127.0.0.1:{port}/api", proc, log), "/health", 180)


def start_tracking_stack(backend: str, root: Path, stops: list) -> tuple[Server, Server]:
    """An MLflow and a Prefect server on ``backend`` ("sqlite" files under ``root``, or
    "postgres": one PostgreSQL server with a database each). Each stop function is appended
    to ``stops`` as soon as its server runs, so the caller can stop whatever started."""
    if backend == "postgres":
        pg = start_postgres()
        stops.append(pg.stop)
        mlflow_db = f"postgresql+psycopg2://{pg.createdb('mlflow')}"
        prefect_db = f"postgresql+asyncpg://{pg.createdb('prefect')}"
    else:
        mlflow_db, prefect_db = f"sqlite:///{root / 'mlflow.db'}", f"sqlite+aiosqlite:///{root / 'prefect.db'}"
        # Prefect's schema from the installation's template (make setup), as on a used machine:
        # migrating a new database is about 20 s per stack (tests/test_prefect_db.py covers both)
        from flows.prefect_db import copy_template

        copy_template(root / "prefect.db")
    mlflow = start_mlflow(mlflow_db, root / "mlartifacts", root / "mlflow.log")
    stops.append(mlflow.stop)
    prefect = start_prefect(root / "prefect-home", prefect_db, root / "prefect.log")
    stops.append(prefect.stop)
    return mlflow, prefect
