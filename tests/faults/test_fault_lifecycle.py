"""Reliability round two, cases 1, 2 and 9: a run's life when its process is killed, when two
processes want it, and when its checkpoints are gone. Everything goes through the ``mynn``
command against a real SQLite store; Prefect is either the default set-up (no PREFECT_API_URL,
an empty home: a background server, or a temporary one per command) or a real server (the session's).

1. ``kill -9`` mid-run, then ``mynn reconcile``: the run is closed FAILED, its flow run is
   marked CRASHED; a temporary Prefect server (``MYNN_PREFECT_SERVER=temporary``) does not
   outlive the command; the default background server does, and reconcile reuses it.
2. ``--resume`` of a run that a live process is still training is refused; that process
   finishes alone (one metric point per epoch, one model version).
9. ``--resume`` where the run's checkpoints are not (another ``MYNN_RUNS_DIR``) is refused
   before the run is touched; with them, the resumed run ends FINISHED, its earlier failure
   moves to ``mynn.previous_failure``, and ``training_seconds`` covers every epoch.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from mlflow import MlflowClient

from mynn import paths

psutil = pytest.importorskip("psutil")


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST", "PREFECT_"))}
    env.update(MLFLOW_TRACKING_URI=f"sqlite:///{tmp_path / 'mlflow.db'}", MYNN_CACHE_DIR=str(tmp_path / "cache"),
               MYNN_RUNS_DIR=str(tmp_path / "runs"), DO_NOT_TRACK="true", MLFLOW_DISABLE_TELEMETRY="true",
               PREFECT_SERVER_ANALYTICS_ENABLED="false", **extra)
    return env


def _mynn(args: list[str], env: dict[str, str], **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "flows.cli", *args], env=env, capture_output=True, text=True,
                          cwd=paths.PROJECT_ROOT, timeout=kw.pop("timeout", 300), **kw)


def _start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "flows.cli", *args], env=env, cwd=paths.PROJECT_ROOT,
                            stdout=open(log, "wb"), stderr=subprocess.STDOUT)


def _wait(predicate, timeout: float, what: str, log: Path | None = None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = predicate()
        if got:
            return got
        time.sleep(0.05)
    raise TimeoutError(f"{what}" + ("" if log is None else ":\n" + log.read_text()[-3000:]))


def _only_run(client: MlflowClient, experiment: str):
    exp = client.get_experiment_by_name(experiment)
    runs = client.search_runs([exp.experiment_id]) if exp else []
    return runs[0] if len(runs) == 1 else None


def _checkpoint(runs: Path, epoch: int):
    found = list(runs.glob(f"*/checkpoints/epoch-{epoch:03d}.npz"))
    return found[0] if found else None


def _flow_run_state(prefect_home: Path, flow_run_id: str) -> str:
    """The flow run's state type, read from the Prefect database that the command's temporary
    server used (``PREFECT_HOME/prefect.db``, SQLite): the record itself, no server needed."""
    import sqlite3

    with sqlite3.connect(f"file:{prefect_home / 'prefect.db'}?mode=ro", uri=True) as db:
        row = db.execute("SELECT state_type FROM flow_run WHERE id = ?", (flow_run_id,)).fetchone()
    assert row is not None, f"no flow run {flow_run_id} in {prefect_home / 'prefect.db'}"
    return row[0]


def _server_of(ps, home: Path, mode: str):
    """The Prefect server serving this command: its child (temporary) or the background one."""
    if mode == "temporary":
        return [c for c in ps.children(recursive=True)
                if "prefect.server.api.server:create_app" in " ".join(c.cmdline())]
    state = home / ".prefect" / "mynn-server.json"
    return [psutil.Process(json.loads(state.read_text())["pid"])] if state.exists() else []


@pytest.mark.parametrize("mode", ["background", "temporary"])
def test_kill_9_in_the_default_set_up_then_reconcile_closes_the_run_and_its_flow_run(tmp_path, mode):
    """No PREFECT_API_URL and an empty home, as a newcomer runs it (case 1), with the default
    background server (it outlives the command, by design, and reconcile reuses it) and with a
    temporary server per command (it does not outlive the command)."""
    home = tmp_path / "home"
    env = _env(tmp_path, HOME=str(home), MYNN_PREFECT_SERVER=mode)
    log = tmp_path / "train.log"
    proc = _start(["train", "--epochs", "5", "--hidden-nodes", "50"], env, log)  # the main job, smaller
    try:
        ps = psutil.Process(proc.pid)
        server = _wait(lambda: _server_of(ps, home, mode), 300, "no Prefect server", log)[0]
        _wait(lambda: _checkpoint(tmp_path / "runs", 2), 300, "no epoch 2", log)
        os.kill(proc.pid, signal.SIGKILL)
        assert proc.wait(timeout=30) == -signal.SIGKILL
        if mode == "temporary":  # the temporary server does not outlive its command
            _wait(lambda: not server.is_running() or server.status() == psutil.STATUS_ZOMBIE, 15,
                  "the temporary Prefect server outlived its command")
        else:
            assert server.is_running()
    finally:
        if proc.poll() is None:
            proc.kill()
    try:
        client = MlflowClient(env["MLFLOW_TRACKING_URI"])
        run = _only_run(client, "mynn")
        assert run.info.status == "RUNNING"  # nobody could close it

        out = _mynn(["reconcile"], env)
        assert out.returncode == 0, out.stderr[-3000:]
        assert "1 run(s) closed" in out.stdout and run.info.run_id in out.stdout, out.stdout
        if mode == "background":
            assert "Prefect server reused in the background" in out.stderr, out.stderr[-3000:]
        closed = client.get_run(run.info.run_id)
        assert closed.info.status == "FAILED"
        assert f"its process {proc.pid} on " in closed.data.tags["mynn.reconciled"]
        assert _flow_run_state(home / ".prefect", closed.data.tags["prefect.flow_run_id"]) == "CRASHED"
    finally:
        stopped = _mynn(["server", "stop"], env)
    if mode == "background":
        assert f"(pid {server.pid})" in stopped.stdout, stopped.stdout + stopped.stderr
        _wait(lambda: not server.is_running() or server.status() == psutil.STATUS_ZOMBIE, 15,
              "mynn server stop left the server running")
        assert not (home / ".prefect" / "server.pid").exists()


@pytest.mark.usefixtures("prefect_harness")
def test_kill_9_with_a_real_prefect_server_then_reconcile(tmp_path):
    from uuid import UUID

    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL

    env = _env(tmp_path, PREFECT_API_URL=str(PREFECT_API_URL.value()))
    log = tmp_path / "train.log"
    proc = _start(["train", "--epochs", "5", "--hidden-nodes", "50", "--experiment", "k9"], env, log)
    try:
        _wait(lambda: _checkpoint(tmp_path / "runs", 2), 300, "no epoch 2", log)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    client = MlflowClient(env["MLFLOW_TRACKING_URI"])
    run = _only_run(client, "k9")
    flow_run_id = run.data.tags["prefect.flow_run_id"]
    with get_client(sync_client=True) as pc:
        assert pc.read_flow_run(UUID(flow_run_id)).state.type.value == "RUNNING"  # nobody could end it
    out = _mynn(["reconcile"], env)
    assert out.returncode == 0 and "1 run(s) closed" in out.stdout, out.stdout + out.stderr[-3000:]
    assert client.get_run(run.info.run_id).info.status == "FAILED"
    with get_client(sync_client=True) as pc:
        assert pc.read_flow_run(UUID(flow_run_id)).state.type.value == "CRASHED"


@pytest.mark.usefixtures("prefect_harness")
def test_resume_is_refused_while_the_run_lives_and_without_its_checkpoints_then_finishes_it_true(tmp_path):
    """Cases 2 and 9, on one run: a resume while its process trains it is refused; SIGTERM after
    epoch 3 ends it KILLED; a resume from another runs folder is refused and changes nothing; a
    resume with its checkpoints finishes it, with true tags and totals."""
    from prefect.settings import PREFECT_API_URL

    env = _env(tmp_path, PREFECT_API_URL=str(PREFECT_API_URL.value()))
    epochs = 30
    cfg = ["--hidden-nodes", "100", "--epochs", str(epochs), "--experiment", "resume", "--model-name", "resume"]
    log = tmp_path / "train.log"
    proc = _start(["train", *cfg], env, log)
    client = MlflowClient(env["MLFLOW_TRACKING_URI"])
    try:
        _wait(lambda: _checkpoint(tmp_path / "runs", 1), 300, "no epoch 1", log)
        run_id = _only_run(client, "resume").info.run_id
        second = _mynn(["train", *cfg, "--resume", run_id], env)
        assert proc.poll() is None, "the first process ended before the resume was tried: make it longer"
        assert second.returncode == 1, second.stdout[-2000:] + second.stderr[-3000:]
        assert f"run {run_id} is still being trained by process {proc.pid} on this host" in second.stderr
        assert "Traceback" not in second.stderr
        _wait(lambda: _checkpoint(tmp_path / "runs", 3), 300, "no epoch 3", log)
        os.kill(proc.pid, signal.SIGTERM)
        assert proc.wait(timeout=60) != 0
    finally:
        if proc.poll() is None:
            proc.kill()
    killed = client.get_run(run_id)
    assert killed.info.status == "KILLED" and killed.data.tags["mynn.failure"].startswith("KeyboardInterrupt")
    steps = sorted(m.step for m in client.get_metric_history(run_id, "train_mse"))
    assert steps == list(range(1, len(steps) + 1)) and len(steps) < epochs  # each epoch once: nobody else trained

    elsewhere = {**env, "MYNN_RUNS_DIR": str(tmp_path / "other-runs")}
    refused = _mynn(["train", *cfg, "--resume", run_id], elsewhere)
    assert refused.returncode == 1
    assert f"run {run_id} has epochs up to {steps[-1]} logged but no checkpoint in" in refused.stderr
    assert "Traceback" not in refused.stderr
    after = client.get_run(run_id)
    assert after.info.status == "KILLED" and after.data.tags == killed.data.tags  # untouched
    assert sorted(m.step for m in client.get_metric_history(run_id, "train_mse")) == steps

    resumed = _mynn(["train", *cfg, "--resume", run_id], env)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    done = client.get_run(run_id)
    assert done.info.status == "FINISHED"
    assert "mynn.failure" not in done.data.tags
    assert done.data.tags["mynn.previous_failure"] == killed.data.tags["mynn.failure"]
    assert sorted(m.step for m in client.get_metric_history(run_id, "train_mse")) == list(range(1, epochs + 1))
    epoch_seconds = {m.step: m.value for m in client.get_metric_history(run_id, "timing/epoch_seconds")}
    assert sorted(epoch_seconds) == list(range(1, epochs + 1))
    assert done.data.metrics["timing/training_seconds"] == pytest.approx(sum(epoch_seconds.values()), rel=1e-9)
    assert done.data.metrics["timing/records_per_s"] == pytest.approx(60000 * epochs / sum(epoch_seconds.values()), rel=1e-9)
    registry = MlflowClient(env["MLFLOW_TRACKING_URI"], registry_uri=env["MLFLOW_TRACKING_URI"])
    assert [str(v.version) for v in registry.search_model_versions("name = 'resume'")] == ["1"]
