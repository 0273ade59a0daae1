"""A Prefect server as a process: launched (uvicorn on Prefect's app factory, as ``prefect server
start`` runs it) in a process group of its own, checked over HTTP, stopped by its group. No
Prefect import: what runs here may run before Prefect is loaded."""
from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import time
import tomllib
import urllib.request
from pathlib import Path

from flows import prefect_db

APP = "prefect.server.api.server:create_app"


def get_json(url: str, timeout: float = 3.0):
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return json.loads(response.read())


def _process(pid: int) -> str:
    """"gone", "ours" (we may signal it) or "foreign" (it exists, another user's)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return "gone"
    except PermissionError:
        return "foreign"
    return "ours"


def pid_alive(pid: int) -> bool:
    return _process(pid) != "gone"


def is_prefect_server(pid: int) -> bool:
    """The process is ours and runs Prefect's server app (read from /proc where there is one)."""
    if _process(pid) != "ours":
        return False
    cmdline = Path(f"/proc/{pid}/cmdline")
    if not cmdline.parent.exists():
        return True  # no /proc (macOS): the API checks below decide
    try:
        return APP in cmdline.read_bytes().decode(errors="replace")
    except OSError:
        return False


def port_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def any_free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(home: Path, port: int, log_name: str, ui: bool = True) -> subprocess.Popen:
    """Prefect's server (uvicorn on its app factory, as ``prefect server start`` runs it) on
    127.0.0.1:``port`` for ``home``, in a process group of its own, output to ``home/log_name``."""
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "PREFECT_HOME": str(home), "PREFECT__SERVER_FINAL": "1", "PREFECT_API_URL": "",
           "PREFECT_SERVER_API_HOST": "127.0.0.1", "PREFECT_SERVER_API_PORT": str(port),
           "PREFECT_UI_API_URL": f"{url}/api", "PREFECT_UI_ENABLED": "true" if ui else "false"}
    env.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    spec = importlib.util.find_spec("prefect")
    app_dir = Path(next(iter(spec.submodule_search_locations))).parent
    prefect_db.seed(home, env)  # a new home starts from the installation's migrated database
    with open(home / log_name, "ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "--app-dir", str(app_dir), "--factory", APP,
             "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning", "--lifespan", "on"],
            env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def wait_healthy(proc: subprocess.Popen, url: str, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        try:
            if get_json(f"{url}/api/health", timeout=2) is True:
                return True
        except (OSError, ValueError):
            pass
        time.sleep(0.2)
    return False


def stop_group(pid: int, wait: float = 10) -> None:
    try:
        os.killpg(pid, signal.SIGTERM)
    except (ProcessLookupError, PermissionError):
        return
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline and is_prefect_server(pid):
        time.sleep(0.1)
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def prefect_home() -> Path:
    """Prefect's home as Prefect finds it: ``PREFECT_HOME`` or ``~/.prefect``."""
    return Path(os.environ.get("PREFECT_HOME") or "~/.prefect").expanduser().resolve()


def prefect_version() -> str:
    return importlib.metadata.version("prefect")


def configured_api_url(home: Path | None = None) -> str | None:
    """``PREFECT_API_URL`` from the environment or from the active Prefect profile, if any."""
    if os.environ.get("PREFECT_API_URL"):
        return os.environ["PREFECT_API_URL"]
    try:
        profiles = tomllib.loads(((home or prefect_home()) / "profiles.toml").read_text())
    except (OSError, ValueError):
        return None
    active = os.environ.get("PREFECT_PROFILE") or profiles.get("active", "ephemeral")
    return (profiles.get("profiles", {}).get(active) or {}).get("PREFECT_API_URL") or None


def start_temporary() -> tuple[subprocess.Popen, str]:
    """A server without UI on a free port for one command (the caller waits and stops it)."""
    home = prefect_home()
    home.mkdir(parents=True, exist_ok=True)
    port = any_free_port()
    return launch(home, port, "mynn-temporary-server.log", ui=False), f"http://127.0.0.1:{port}"
