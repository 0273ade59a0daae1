"""Prefect's server in the background, started once and reused by later ``mynn`` commands. State
in ``PREFECT_HOME``: ``mynn-server.json`` (pid, URL, version, home), Prefect's own ``server.pid``
(``prefect server stop`` works too), ``mynn-server.log`` and ``mynn-server.lock`` (one starter at a
time). The recorded URL is a name: :func:`find` trusts it only after checking process and API.
No Prefect import here: the URL goes into the environment before Prefect loads (flows.local_server).
"""
from __future__ import annotations

import fcntl
import json
import subprocess
from dataclasses import asdict, dataclass, field
from pathlib import Path

from flows import server_process
from mynn.files import AtomicWrite

DEFAULT_PORT = 4200
STATE, PID_FILE, LOG, LOCK = "mynn-server.json", "server.pid", "mynn-server.log", "mynn-server.lock"


class ServerStartError(RuntimeError):
    """The Prefect server did not come up; the message names its log."""


@dataclass(frozen=True)
class Server:
    pid: int      # the uvicorn process (leader of its own process group)
    url: str      # e.g. http://127.0.0.1:4200 (the UI; the API is url + "/api")
    version: str  # Prefect's version that started it
    home: str     # the PREFECT_HOME whose database it serves

    @property
    def api_url(self) -> str:
        return f"{self.url}/api"


def check(server: Server, home: Path) -> str | None:
    """Why ``server`` is not this home's live Prefect server of this version, or None if it is."""
    if server.home != str(home):
        return f"it was started for {server.home}"
    if not server_process.is_prefect_server(server.pid):
        return f"process {server.pid} is not a running Prefect server"
    try:
        if server_process.get_json(f"{server.api_url}/health") is not True:
            return f"{server.api_url}/health is not healthy"
        version = server_process.get_json(f"{server.api_url}/admin/version")
        if version != server_process.prefect_version():
            return f"it runs Prefect {version}, this is {server_process.prefect_version()}"
        served = server_process.get_json(f"{server.api_url}/admin/settings").get("home")
    except (OSError, ValueError) as exc:
        return f"{server.api_url} does not answer ({exc})"
    if served is None or Path(served).expanduser().resolve() != home:
        return f"{server.url} serves {served}, not {home}"
    return None


def find(home: Path | None = None) -> Server | None:
    """The recorded background server of ``home``, if the checks pass; else None."""
    home = home or server_process.prefect_home()
    server = _read(home)
    return server if server is not None and check(server, home) is None else None


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
            if not server_process.wait_healthy(self.proc, self.server.url, timeout):
                server_process.stop_group(self.proc.pid)
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
        self.lock, lock = None, self.lock
        if lock is not None:
            lock.close()


def begin(port: int = DEFAULT_PORT) -> Starting:
    """This home's background server: the recorded one if the checks pass, else a new one
    launched on ``port`` (a free port if that is taken), not waited for yet."""
    home = server_process.prefect_home()
    home.mkdir(parents=True, exist_ok=True)
    lock = open(home / LOCK, "w")  # noqa: SIM115 (held until Starting.wait)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another command starting one: wait for it, then reuse it
        if found := find(home):
            lock.close()
            return Starting(found, home)
        stale = _read(home)
        if stale and stale.home == str(home) and server_process.is_prefect_server(stale.pid):
            server_process.stop_group(stale.pid)  # ours but not answering as it should: replace it
        _clear(home)
        chosen = port if server_process.port_free(port) else server_process.any_free_port()
        proc = server_process.launch(home, chosen, log_name=LOG)
        server = Server(proc.pid, f"http://127.0.0.1:{chosen}", server_process.prefect_version(), str(home))
        return Starting(server, home, proc, lock)
    except BaseException:
        lock.close()
        raise


def _read(home: Path) -> Server | None:
    try:
        return Server(**json.loads((home / STATE).read_text()))
    except (OSError, ValueError, TypeError):
        return None


def stop() -> Server | None:
    """Stop this home's background server (if the recorded process is one); returns what was stopped."""
    home = server_process.prefect_home()
    home.mkdir(parents=True, exist_ok=True)
    with open(home / LOCK, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        server = _read(home)
        server = server if server and server_process.is_prefect_server(server.pid) else None
        if server:
            server_process.stop_group(server.pid)
        _clear(home)
        return server
