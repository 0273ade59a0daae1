"""Where a ``mynn`` command finds Prefect's API when ``PREFECT_API_URL`` is not set.

By default (``MYNN_PREFECT_SERVER=background``) the first command starts Prefect's server in the
background on ``127.0.0.1:4200`` (another free port if 4200 is taken), with its UI, on the
database in ``PREFECT_HOME``, and later commands reuse it: no server start and stop per command,
and the UI stays up to browse the runs. ``mynn server stop`` (or ``prefect server stop``: the
same pid file) stops it. A recorded server is trusted only after checking what answers there:
the recorded process is alive and is a Prefect server, its API is healthy, runs this Prefect
version and serves this ``PREFECT_HOME``'s database; anything else is started afresh.

With ``MYNN_PREFECT_SERVER=temporary`` each command starts a server of its own instead (no UI,
a free port), with a start-up limit that only bounds a hung start (Prefect's own temporary
server gives up after 20 s, about what its first start in an empty home takes on 2 cores) and
a watchdog process that stops it as soon as the command is gone, however it ended (Prefect's
own stays running, re-parented to PID 1, after SIGKILL).
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

from flows import background_server, server_process

#: A slow first start (database creation on an empty home) must not fail; a hung one ends.
STARTUP_TIMEOUT_SECONDS = 600


#: ``MYNN_PREFECT_SERVER``: "background" (default) or "temporary".
MODES = ("background", "temporary")


class PrefectApi:
    """Where a command's Prefect API is; :meth:`wait` before the first flow runs."""

    def __init__(self, url: str | None, starting: background_server.Starting | None = None,
                 temporary: subprocess.Popen | None = None) -> None:
        self.url = url  # the API URL, None when PREFECT_API_URL (environment or profile) decides
        self.starting = starting
        self.temporary = temporary

    def wait(self, timeout: float = STARTUP_TIMEOUT_SECONDS) -> None:
        if self.starting is not None:
            server, started = self.starting.wait(timeout)
            self.starting = None
            print(f"Prefect server {'started' if started else 'reused'} in the background: UI {server.url} "
                  f"(stop it with: mynn server stop)", file=sys.stderr, flush=True)
        elif self.temporary is not None and not server_process.wait_healthy(
                self.temporary, self.url.removesuffix("/api"), timeout):
            raise background_server.ServerStartError(f"the temporary Prefect server did not start at {self.url}")


@contextmanager
def prefect_api(mode: str | None = None) -> Iterator[PrefectApi]:
    """Within the block, ``PREFECT_API_URL`` is in this process's environment: the configured
    one (environment or active profile: nothing is started), else this home's background server
    (launched if needed, ``MYNN_PREFECT_SERVER=background``, the default) or a temporary server
    of this command's own (``temporary``: stopped with it, a watchdog stops it even after
    ``kill -9``). The environment, not only Prefect's settings context: Prefect's own threads (a
    process pool's forwarder of its workers' logs and events) do not see the settings context,
    and without the URL they started a temporary server and sent the workers' logs to it.""" 
    if server_process.configured_api_url():
        try:
            yield PrefectApi(None)
        finally:
            if "prefect" in sys.modules:
                _drain_prefect_workers()  # while that server is surely up
        return
    mode = mode or os.environ.get("MYNN_PREFECT_SERVER") or "background"
    if mode not in MODES:
        raise ValueError(f"MYNN_PREFECT_SERVER must be one of {', '.join(MODES)} (got {mode!r})")
    watchdog = None
    if mode == "background":
        starting = background_server.begin()
        api = PrefectApi(starting.server.api_url, starting=starting)
    else:
        proc, url = server_process.start_temporary()
        watchdog = subprocess.Popen([sys.executable, "-m", "flows.local_server", str(os.getpid()), str(proc.pid)],
                                    stdin=subprocess.DEVNULL, start_new_session=True)
        api = PrefectApi(f"{url}/api", temporary=proc)
    os.environ["PREFECT_API_URL"] = api.url
    _refresh_prefect_settings()
    try:
        yield api
    finally:
        os.environ.pop("PREFECT_API_URL", None)
        _refresh_prefect_settings()
        if api.starting is not None:
            api.starting.release()
        if "prefect" in sys.modules:
            _drain_prefect_workers()
        if api.temporary is not None:
            server_process.stop_group(api.temporary.pid, wait=5)
            api.temporary.wait()
            watchdog.terminate()
            watchdog.wait(timeout=10)


def _refresh_prefect_settings() -> None:
    """If Prefect is loaded already, make its global settings read the environment again
    (Prefect's own mechanism for environment changes after import)."""
    if "prefect.context" in sys.modules:
        from prefect.context import refresh_global_settings_context

        refresh_global_settings_context()


def _drain_prefect_workers(timeout: float = 10) -> None:
    """Send the logs and events Prefect still holds while the server is up: once it is stopped,
    Prefect would try to send them at exit, to nobody, for more than a minute."""
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker

    for worker in (APILogWorker, EventsWorker):
        worker.drain_all(timeout=timeout)


def watch(owner: int, server: int, interval: float = 0.25) -> int:
    """Wait while ``owner`` lives (and is still our parent); then stop ``server``'s process group
    (SIGTERM, then SIGKILL after 5 s). Returns when the server is gone or its owner ended it."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # the owner ending normally stops us
    while server_process.pid_alive(server):
        if os.getppid() != owner or not server_process.pid_alive(owner):
            server_process.stop_group(server, wait=5)
            return 0
        time.sleep(interval)
    return 0


if __name__ == "__main__":
    sys.exit(watch(int(sys.argv[1]), int(sys.argv[2])))
