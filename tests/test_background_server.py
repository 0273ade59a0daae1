"""The background Prefect server that ``mynn`` commands share when PREFECT_API_URL is not set:
started once, reused by later commands, trusted only after checking what answers at the
recorded address, and stopped by ``mynn server stop`` or Prefect's own ``prefect server stop``.
Real processes throughout: ``mynn`` commands, a Prefect server, a plain HTTP server."""
from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from mynn import paths
from tests.servers import BIN, QUIET_ENV


def _env(tmp_path: Path, home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST", "PREFECT_", "MYNN_"))}
    env.update(QUIET_ENV, PREFECT_HOME=str(home), MLFLOW_TRACKING_URI=f"sqlite:///{tmp_path / 'mlflow.db'}",
               MYNN_CACHE_DIR=str(tmp_path / "cache"), MYNN_RUNS_DIR=str(tmp_path / "runs"))
    return env


def _mynn(args: list[str], env: dict[str, str], timeout: float = 600) -> subprocess.CompletedProcess:
    out = subprocess.run([sys.executable, "-m", "flows.cli", *args], env=env, capture_output=True, text=True,
                         cwd=paths.PROJECT_ROOT, timeout=timeout)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    return out


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}").exists() and "Z" not in Path(f"/proc/{pid}/stat").read_text().split()[2]


def _state(home: Path) -> dict:
    return json.loads((home / "mynn-server.json").read_text())


def test_commands_share_one_checked_background_server(tmp_path):
    home, other = tmp_path / "prefect", tmp_path / "other-prefect"
    env = _env(tmp_path, home)
    decoy = subprocess.Popen(["sleep", "600"])  # a live process that is not a Prefect server
    stray = subprocess.Popen([sys.executable, "-m", "http.server", "--bind", "127.0.0.1", "0"],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert "not running" in _mynn(["server", "status"], env).stdout
        # a recorded server that is not one: a live non-server pid and some other HTTP server
        home.mkdir(exist_ok=True)
        line = stray.stdout.readline()  # "Serving HTTP on 127.0.0.1 port N ..."
        port = int(line.split(" port ")[1].split()[0])
        (home / "mynn-server.json").write_text(json.dumps(
            {"pid": decoy.pid, "url": f"http://127.0.0.1:{port}", "version": "3.9.1", "home": str(home)}))
        assert "not running" in _mynn(["server", "status"], env).stdout

        started = _mynn(["server", "start"], env).stdout
        assert started.startswith("started: UI http://127.0.0.1:"), started
        server = _state(home)
        assert server["pid"] != decoy.pid and _alive(decoy.pid)  # the decoy was not touched
        assert (home / "server.pid").read_text() == str(server["pid"])  # Prefect's pid file: `prefect server stop`

        again = _mynn(["server", "start"], env).stdout
        assert again.startswith("already running") and f"(pid {server['pid']})" in again

        # a command uses it: no server of its own, its flow run is in this home's database
        t0 = time.monotonic()
        train = _mynn(["train", "--source", "shipped-small", "--epochs", "1", "--hidden-nodes", "10",
                       "--experiment", "bg"], env)
        took = time.monotonic() - t0
        assert f"Prefect server reused in the background: UI {server['url']}" in train.stderr
        summary = json.loads(train.stdout[train.stdout.index("{"):])
        with sqlite3.connect(f"file:{home / 'prefect.db'}?mode=ro", uri=True) as db:
            names = [r[0] for r in db.execute("SELECT name FROM flow_run")]
        assert summary["run_name"] in names
        print(f"train with the background server reused: {took:.1f} s")

        # the state file copied into another home names a server of another database: not trusted
        other.mkdir(exist_ok=True)
        (other / "mynn-server.json").write_text(json.dumps({**server, "home": str(other)}))
        status = _mynn(["server", "status"], _env(tmp_path, other)).stdout
        assert "not running" in status, status

        stopped = _mynn(["server", "stop"], env).stdout
        assert f"stopped the Prefect server at {server['url']} (pid {server['pid']})" in stopped
        deadline = time.monotonic() + 15
        while _alive(server["pid"]) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not _alive(server["pid"])
        assert not (home / "server.pid").exists() and not (home / "mynn-server.json").exists()
        assert "no server was running" in _mynn(["server", "stop"], env).stdout

        # Prefect's own command stops it too (the same pid file)
        pid = _state(home)["pid"] if "started" in _mynn(["server", "start"], env).stdout else None
        out = subprocess.run([str(BIN / "prefect"), "server", "stop"], env=env, capture_output=True, text=True,
                             timeout=120)
        assert out.returncode == 0, out.stdout + out.stderr
        deadline = time.monotonic() + 15
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not _alive(pid)
        assert "not running" in _mynn(["server", "status"], env).stdout
    finally:
        for proc in (decoy, stray):
            proc.kill()
            proc.wait()
        for h in (home, other):
            subprocess.run([sys.executable, "-m", "flows.cli", "server", "stop"], env=_env(tmp_path, h),
                           capture_output=True, cwd=paths.PROJECT_ROOT, timeout=120)
