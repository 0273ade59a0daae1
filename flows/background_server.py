"""Prefect's server in the background, started once and reused by later ``mynn`` commands.

State lives in ``PREFECT_HOME``: ``mynn-server.json`` (pid, URL, Prefect version, home),
``server.pid`` (Prefect's own pid file, so ``prefect server stop`` stops it too),
``mynn-server.log`` (the server's output) and ``mynn-server.lock`` (one starter at a time).
The recorded URL is a name: :func:`find` trusts it only after checking the process and the API.

Nothing here imports Prefect: the URL must be in the environment before Prefect loads, because
the threads Prefect starts itself read the settings it loaded then (see flows.local_server).
"""
from __future__ import annotations

import fcntl
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
from dataclasses import asdict, dataclass, field
from pathlib import Path

from mynn.files import AtomicWrite

DEFAULT_PORT = 4200
STATE, PID_FILE, LOG, LOCK = "mynn-server.json", "server.pid", "mynn-server.log", "mynn-server.lock"
APP = "prefect.server.api.server:create_app"


class ServerStartError(RuntimeError):
    """The background Prefect server did not come up; the message names its log."""


@dataclass(frozen=True)
class Server:
    pid: int      # the uvicorn process (leader of its own process group)
    url: str      # e.g. http://127.0.0.1:4200 (the UI; the API is url + "/api")
    version: str  # Prefect's version that started it
    home: str     # the PREFECT_HOME whose database it serves

    @property
    def api_url(self) -> str:
        return f"{self.url}/api"


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


def _get(url: str, timeout: float = 3.0):
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return json.loads(response.read())


def _is_prefect_server(pid: int) -> bool:
    """The process exists and runs Prefect's server app (read from /proc where there is one)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return False
    cmdline = Path(f"/proc/{pid}/cmdline")
    if not cmdline.parent.exists():
        return True  # no /proc (macOS): the API checks below decide
    try:
        return APP in cmdline.read_bytes().decode(errors="replace")
    except OSError:
        return False


def check(server: Server, home: Path) -> str | None:
    """Why ``server`` is not this home's live Prefect server of this version, or None if it is."""
    if server.home != str(home):
        return f"it was started for {server.home}"
    if not _is_prefect_server(server.pid):
        return f"process {server.pid} is not a running Prefect server"
    try:
        if _get(f"{server.api_url}/health") is not True:
            return f"{server.api_url}/health is not healthy"
        version = _get(f"{server.api_url}/admin/version")
        if version != prefect_version():
            return f"it runs Prefect {version}, this is {prefect_version()}"
        served = _get(f"{server.api_url}/admin/settings").get("home")
    except (OSError, ValueError) as exc:
        return f"{server.api_url} does not answer ({exc})"
    if served is None or Path(served).expanduser().resolve() != home:
        return f"{server.url} serves {served}, not {home}"
    return None


def find(home: Path | None = None) -> Server | None:
    """The recorded background server of ``home``, if the checks pass; else None."""
    home = home or prefect_home()
    try:
        server = Server(**json.loads((home / STATE).read_text()))
    except (OSError, ValueError, TypeError):
        return None
    return server if check(server, home) is None else None


def _free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _any_free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _launch(home: Path, port: int, ui: bool = True, log_name: str = LOG) -> subprocess.Popen:
    """Prefect's server (uvicorn on its app factory, as ``prefect server start`` runs it) on
    127.0.0.1:``port`` for ``home``, in a process group of its own, output to ``home/log_name``."""
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "PREFECT_HOME": str(home), "PREFECT__SERVER_FINAL": "1", "PREFECT_API_URL": "",
           "PREFECT_SERVER_API_HOST": "127.0.0.1", "PREFECT_SERVER_API_PORT": str(port),
           "PREFECT_UI_API_URL": f"{url}/api", "PREFECT_UI_ENABLED": "true" if ui else "false"}
    env.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    spec = importlib.util.find_spec("prefect")
    app_dir = Path(next(iter(spec.submodule_search_locations))).parent
    with open(home / log_name, "ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "--app-dir", str(app_dir), "--factory", APP,
             "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning", "--lifespan", "on"],
            env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def _wait_healthy(proc: subprocess.Popen, url: str, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        try:
            if _get(f"{url}/api/health", timeout=2) is True:
                return True
        except (OSError, ValueError):
            pass
        time.sleep(0.2)
    return False


def _stop_pid(pid: int, wait: float = 10) -> None:
    try:
        os.killpg(pid, signal.SIGTERM)
    except (ProcessLookupError, PermissionError):
        return
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline and _is_prefect_server(pid):
        time.sleep(0.1)
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _clear(home: Path) -> None:
    for name in (STATE, PID_FILE):
        (home / name).unlink(missing_ok=True)


@dataclass
class Starting:
    """A background server being made ready: found already (``proc`` None) or just launched.
    The start lock is held until :meth:`wait` (another command waits, then reuses it)."""

    server: Server
    home: Path
    proc: subprocess.Popen | None = None
    lock: object = field(default=None, repr=False)

    def wait(self, timeout: float) -> tuple[Server, bool]:
        """``(server, started_now)`` once it answers; :class:`ServerStartError` if it does not."""
        try:
            if self.proc is None:
                return self.server, False
            if not _wait_healthy(self.proc, self.server.url, timeout):
                if self.proc.poll() is None:
                    _stop_pid(self.proc.pid)
                self.proc.wait()
                raise ServerStartError(f"the Prefect server did not start at {self.server.url} "
                                       f"(log: {self.home / LOG}); set PREFECT_API_URL to use another server")
            with AtomicWrite(self.home / STATE) as tmp:
                tmp.write_text(json.dumps(asdict(self.server)))
            with AtomicWrite(self.home / PID_FILE) as tmp:
                tmp.write_text(str(self.proc.pid))
            return self.server, True
        finally:
            self.release()

    def release(self) -> None:
        if self.lock is not None:
            self.lock.close()
            self.lock = None


def begin(port: int = DEFAULT_PORT) -> Starting:
    """This home's background server: the recorded one if the checks pass, else a new one
    launched on ``port`` (a free port if that is taken), not waited for yet."""
    home = prefect_home()
    home.mkdir(parents=True, exist_ok=True)
    lock = open(home / LOCK, "w")  # noqa: SIM115 (held until Starting.wait)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another command starting one: wait for it, then reuse it
        found = find(home)
        if found:
            lock.close()
            return Starting(found, home)
        stale = _read(home)
        if stale and stale.home == str(home) and _is_prefect_server(stale.pid):
            _stop_pid(stale.pid)  # ours but not answering as it should: replace it
        _clear(home)
        chosen = port if _free(port) else _any_free_port()
        proc = _launch(home, chosen)
        server = Server(pid=proc.pid, url=f"http://127.0.0.1:{chosen}", version=prefect_version(), home=str(home))
        return Starting(server, home, proc, lock)
    except BaseException:
        lock.close()
        raise


def ensure(timeout: float, port: int = DEFAULT_PORT) -> tuple[Server, bool]:
    """This home's background server, started if there is none: ``(server, started_now)``."""
    return begin(port).wait(timeout)


def start_temporary() -> tuple[subprocess.Popen, str]:
    """A server without UI on a free port for one command (the caller waits and stops it)."""
    home = prefect_home()
    home.mkdir(parents=True, exist_ok=True)
    port = _any_free_port()
    return _launch(home, port, ui=False, log_name="mynn-temporary-server.log"), f"http://127.0.0.1:{port}"


def _read(home: Path) -> Server | None:
    try:
        return Server(**json.loads((home / STATE).read_text()))
    except (OSError, ValueError, TypeError):
        return None


def stop() -> Server | None:
    """Stop this home's background server (if the recorded process is one); returns what was stopped."""
    home = prefect_home()
    with open(_lock_path(home), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        server = _read(home)
        if server and _is_prefect_server(server.pid):
            _stop_pid(server.pid)
        else:
            server = None
        _clear(home)
        return server


def _lock_path(home: Path) -> Path:
    home.mkdir(parents=True, exist_ok=True)
    return home / LOCK
