"""`mynn serve` stops cleanly: with its Prefect server up, SIGTERM pauses the deployments'
schedules and exits; with the server gone at the same time, it exits at once, saying the
schedules were left (Prefect's own pause retried for about a minute). Real `prefect server`,
real `mynn serve` processes."""
from __future__ import annotations

import os
import signal
import subprocess
import time

import pytest

from tests.servers import BIN, QUIET_ENV, Server, start_prefect
from tests.test_operate import _wait_for_deployments

pytestmark = pytest.mark.timeout(600)
NAMES = ["mynn-train/train", "mynn-sweep/sweep", "mynn-reproduce/reproduce", "mynn-reconcile/reconcile", "mynn-tune/tune", "mynn-watch/watch"]


def _serve(root, prefect: Server, name: str) -> tuple[subprocess.Popen, dict]:
    env = {**os.environ, **QUIET_ENV, "PREFECT_API_URL": prefect.url, "MYNN_CACHE_DIR": str(root / "cache"),
           "MLFLOW_TRACKING_URI": f"sqlite:///{root / 'mlflow.db'}", "MYNN_RUNS_DIR": str(root / "runs")}
    log = root / f"{name}.log"
    proc = subprocess.Popen([str(BIN / "mynn"), "serve", "--source", "shipped-small", "--watch-every", "0"], env=env,
                            stdout=open(log, "wb"), stderr=subprocess.STDOUT, start_new_session=True)
    stack = {"prefect": prefect, "serve_log": log}
    _wait_for_deployments(stack, proc)
    return proc, stack


def _paused(prefect: Server) -> dict[str, bool]:
    from prefect.client.orchestration import SyncPrefectClient

    with SyncPrefectClient(prefect.url) as client:
        return {name: client.read_deployment_by_name(name).paused for name in NAMES}


def _stop(proc: subprocess.Popen) -> float:
    """SIGTERM, as a service manager sends it; the seconds until the process ended."""
    t0 = time.monotonic()
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=45)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        raise AssertionError("mynn serve did not end within 45 s of SIGTERM")
    return time.monotonic() - t0


def test_serve_pauses_its_schedules_on_sigterm_and_does_not_hang_when_the_server_is_gone(tmp_path):
    prefect = start_prefect(tmp_path / "prefect-home", None, tmp_path / "prefect.log")
    try:
        serve, stack = _serve(tmp_path, prefect, "serve-1")
        assert not any(_paused(prefect).values())
        seconds = _stop(serve)
        assert _paused(prefect) == {name: True for name in NAMES}  # nothing scheduled while nobody serves
        assert seconds < 30, seconds

        serve, stack = _serve(tmp_path, prefect, "serve-2")  # serving again resumes the schedules
        deadline = time.monotonic() + 90
        while any(_paused(prefect).values()) and time.monotonic() < deadline:  # (once it has applied them)
            time.sleep(1)
        assert not any(_paused(prefect).values()), stack["serve_log"].read_text()[-2000:]
        prefect.stop()  # the server goes away, then the service is stopped
        seconds = _stop(serve)
        assert seconds < 20, seconds  # not the minute of Prefect's retries
        assert "does not answer: the deployments' schedules are left as they are" in stack["serve_log"].read_text()
    finally:
        prefect.stop()
