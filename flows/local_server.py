"""Where a ``mynn`` command finds Prefect's API when ``PREFECT_API_URL`` is not set.

By default (``MYNN_PREFECT_SERVER=background``) the first command starts Prefect's server in the
background on ``127.0.0.1:4200`` (another free port if 4200 is taken), with its UI, on the
database in ``PREFECT_HOME``, and later commands reuse it: no server start and stop per command,
and the UI stays up to browse the runs. ``mynn server stop`` (or ``prefect server stop``: the
same pid file) stops it. A recorded server is trusted only after checking what answers there:
the recorded process is alive and is a Prefect server, its API is healthy, runs this Prefect
version and serves this ``PREFECT_HOME``'s database; anything else is started afresh.

With ``MYNN_PREFECT_SERVER=temporary`` each command starts a temporary server for itself instead.
Prefect's own temporary server (1) gives up after
``PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS`` (20 s), about what its first start in an
empty home takes on 2 cores, and (2) stays running, re-parented to PID 1, when the command is
killed with SIGKILL. :func:`temporary_prefect_server` starts the same server (Prefect's own
``SubprocessASGIServer``, on the same database in ``PREFECT_HOME``) with a start-up limit that
only bounds a hung start, points the command's Prefect settings at it, and starts a watchdog
process that stops the server as soon as the command is gone, however it ended.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from typing import Iterator

#: A slow first start (database creation on an empty home) must not fail; a hung one ends.
STARTUP_TIMEOUT_SECONDS = 600


#: ``MYNN_PREFECT_SERVER``: "background" (default) or "temporary".
MODES = ("background", "temporary")


@contextmanager
def prefect_api(timeout: int = STARTUP_TIMEOUT_SECONDS) -> Iterator[str | None]:
    """Within the block, Prefect's API is ``PREFECT_API_URL`` if set (None is yielded), else this
    home's background server (started if needed) or, with ``MYNN_PREFECT_SERVER=temporary``, a
    temporary one; the API URL is yielded."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from flows import background_server

    if os.environ.get("PREFECT_API_URL") or PREFECT_API_URL.value():
        yield None
        return
    mode = os.environ.get("MYNN_PREFECT_SERVER", "background") or "background"
    if mode not in MODES:
        raise ValueError(f"MYNN_PREFECT_SERVER must be one of {', '.join(MODES)} (got {mode!r})")
    if mode == "temporary":
        with temporary_prefect_server(timeout) as url:
            yield url
        return
    server, started = background_server.ensure(timeout)
    print(f"Prefect server {'started' if started else 'reused'} in the background: UI {server.url} "
          f"(stop it with: mynn server stop)", file=sys.stderr, flush=True)
    with temporary_settings(updates={PREFECT_API_URL: server.api_url}):
        try:
            yield server.api_url
        finally:
            _drain_prefect_workers()


@contextmanager
def temporary_prefect_server(timeout: int = STARTUP_TIMEOUT_SECONDS) -> Iterator[str | None]:
    """Within the block, Prefect's API is a temporary local server (its URL is yielded); with
    ``PREFECT_API_URL`` set already, nothing is started and None is yielded."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    if os.environ.get("PREFECT_API_URL") or PREFECT_API_URL.value():
        yield None
        return
    from prefect.server.api.server import SubprocessASGIServer

    server = SubprocessASGIServer()
    server.start(timeout=timeout)
    watchdog = subprocess.Popen([sys.executable, "-m", "flows.local_server", str(os.getpid()),
                                 str(server.server_process.pid)], stdin=subprocess.DEVNULL,
                                start_new_session=True)
    try:
        with temporary_settings(updates={PREFECT_API_URL: server.api_url}):
            try:
                yield server.api_url
            finally:
                _drain_prefect_workers()
    finally:
        server.stop()
        watchdog.terminate()
        watchdog.wait(timeout=10)


def _drain_prefect_workers(timeout: float = 10) -> None:
    """Send the logs and events Prefect still holds while the server is up: once it is stopped,
    Prefect would try to send them at exit, to nobody, for more than a minute."""
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker

    for worker in (APILogWorker, EventsWorker):
        worker.drain_all(timeout=timeout)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def watch(owner: int, server: int, interval: float = 0.25) -> int:
    """Wait while ``owner`` lives (and is still our parent); then stop ``server`` (SIGTERM, then
    SIGKILL after 5 s). Returns when the server is gone or its owner ended it."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # the owner ending normally stops us
    while _alive(server):
        if os.getppid() != owner or not _alive(owner):
            try:
                os.kill(server, signal.SIGTERM)
                deadline = time.monotonic() + 5
                while _alive(server) and time.monotonic() < deadline:
                    time.sleep(0.1)
                if _alive(server):
                    os.kill(server, signal.SIGKILL)
            except ProcessLookupError:
                pass
            return 0
        time.sleep(interval)
    return 0


if __name__ == "__main__":
    sys.exit(watch(int(sys.argv[1]), int(sys.argv[2])))
