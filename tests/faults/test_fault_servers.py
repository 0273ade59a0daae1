"""Against real servers (tests/servers.py): ``mlflow server`` on a SQLite store under the
test's folder and ``prefect server``, both on 127.0.0.1, and ``mynn train`` as a subprocess.

* Case 9 (tracking URI): MLFLOW_TRACKING_URI carries a password (and the data source one
  too): the run works and records neither, nor does Prefect's record of the flow run's logs
  and artifacts.
* Case 6: the tracking server dies mid-run (SIGKILL after the first epoch's metrics). The
  MLflow client's retries are bounded (MLFLOW_HTTP_REQUEST_MAX_RETRIES 3, BACKOFF_FACTOR 1,
  TIMEOUT 20), so ``mynn train`` fails within a bounded time; nothing is registered; the run
  stays RUNNING (nobody could close it) until ``mynn reconcile``, with the server back on the
  same store and port, closes it FAILED from the flow run's state in Prefect.
"""
from __future__ import annotations

import os
import subprocess
import threading
import time

import pytest
from mlflow import MlflowClient

from flows.prefect_db import copy_template
from tests.faults.faultkit import TEST_10, TRAIN_100, kill_server, recorded_text, start_mlflow_at, wait_for
from tests.httpserver import start_http
from tests.servers import BIN, QUIET_ENV, free_port, start_prefect

pytestmark = pytest.mark.timeout(600)

CLIENT_RETRIES = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "3", "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
                  "MLFLOW_HTTP_REQUEST_TIMEOUT": "20"}


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    """MLflow and Prefect servers, started side by side (each takes 10-20 s)."""
    root = tmp_path_factory.mktemp("servers")
    copy_template(root / "prefect.db")  # Prefect's schema from the installation's template (make setup)
    stack = {"root": root, "backend": f"sqlite:///{root / 'mlflow.db'}", "port": free_port()}
    errors = []

    def start(name, fn):
        try:
            stack[name] = fn()
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=start, args=("mlflow", lambda: start_mlflow_at(
                   stack["backend"], root / "mlartifacts", root / "mlflow.log", stack["port"]))),
               threading.Thread(target=start, args=("prefect", lambda: start_prefect(
                   root / "prefect-home", f"sqlite+aiosqlite:///{root / 'prefect.db'}", root / "prefect.log")))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    try:
        if errors:
            raise errors[0]
        yield stack
    finally:
        for name in ("mlflow", "prefect"):
            if name in stack:
                stack[name].stop()


def _env(stack, tmp_path, tracking_uri=None) -> dict:
    return {**os.environ, **QUIET_ENV, **CLIENT_RETRIES, "PREFECT_API_URL": stack["prefect"].url,
            "MLFLOW_TRACKING_URI": tracking_uri or stack["mlflow"].url, "MYNN_CACHE_DIR": str(tmp_path / "cache"),
            "MYNN_RUNS_DIR": str(tmp_path / "runs"), "PATH": f"{BIN}:{os.environ.get('PATH', '')}",
            "NO_PROXY": "127.0.0.1,localhost"}


def _runs(client: MlflowClient, experiment: str) -> list:
    exp = client.get_experiment_by_name(experiment)
    return client.search_runs([exp.experiment_id]) if exp else []


def test_a_tracking_uri_with_a_password_is_not_recorded(stack, tmp_path):
    secret_uri = stack["mlflow"].url.replace("http://", "http://mlflow:tracking-s3cret@")
    data, stop_data = start_http()
    data.files["/mnist_train.csv"] = TRAIN_100.read_bytes()
    data.files["/mnist_test.csv"] = TEST_10.read_bytes()
    data.auth = "user:source-s3cret"
    try:
        out = subprocess.run([str(BIN / "mynn"), "train", "--hidden-nodes", "10", "--epochs", "1",
                              "--source", data.base.replace("http://", "http://user:source-s3cret@"),
                              "--experiment", "secrets", "--model-name", "secret-model"],
                             env=_env(stack, tmp_path, secret_uri), capture_output=True, text=True, timeout=240)
    finally:
        stop_data()
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    client = MlflowClient(stack["mlflow"].url)
    [run] = _runs(client, "secrets")
    recorded = recorded_text(client, run.info.run_id, tmp_path / "artifacts")
    assert recorded["param source"] == data.base.replace("http://", "http://***@")
    # the link, without the password: in the version's tag mynn.run_url and in its description
    assert recorded["model version secret-model/1"].count(f"{stack['mlflow'].url}/#/experiments/") == 2
    assert [where for where, text in recorded.items() if "s3cret" in text] == []
    assert "s3cret" not in out.stdout and "s3cret" not in out.stderr  # the summary, Prefect's log lines
    # what Prefect keeps of the flow run besides its parameters: logs and artifacts
    from prefect.client.orchestration import SyncPrefectClient
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId, LogFilter, LogFilterFlowRunId

    flow_run_id = run.data.tags["prefect.flow_run_id"]
    with SyncPrefectClient(stack["prefect"].url) as prefect:
        logs = prefect.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id])))
        artifacts = prefect.read_artifacts(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])))
    assert len(logs) > 5 and {a.key for a in artifacts} >= {"mlflow-run", "summary"}
    assert [log.message for log in logs if "s3cret" in log.message] == []
    assert [a.key for a in artifacts if "s3cret" in str(a.data)] == []


def test_the_tracking_server_dying_mid_run_fails_the_run_in_bounded_time_then_reconcile_closes_it(stack, tmp_path):
    env = _env(stack, tmp_path)
    log = tmp_path / "train.log"
    proc = subprocess.Popen([str(BIN / "mynn"), "train", "--source", "shipped-small", "--epochs", "1000",
                             "--hidden-nodes", "50", "--experiment", "gone", "--model-name", "gone"],
                            env=env, stdout=open(log, "wb"), stderr=subprocess.STDOUT, start_new_session=True)
    try:
        client = MlflowClient(stack["mlflow"].url, registry_uri=stack["mlflow"].url)
        run = wait_for(lambda: (_runs(client, "gone") or [None])[0], 120, f"a run ({log.read_text()[-2000:]})")
        wait_for(lambda: client.get_metric_history(run.info.run_id, "train_mse"), 120, "the first epoch's metrics")

        kill_server(stack["mlflow"])  # the tracking server is gone, mid-training
        killed_at = time.monotonic()
        returncode = proc.wait(timeout=120)
        seconds = time.monotonic() - killed_at
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    output = log.read_text()
    print(f"mynn train gave up {seconds:.1f} s after the tracking server died")
    assert returncode != 0, output[-3000:]
    assert seconds < 90, f"took {seconds:.0f} s to give up"
    assert f"127.0.0.1:{stack['port']}" in output and "Max retries exceeded" in output, output[-3000:]

    # the server back, on the same store and port
    stack["mlflow"] = start_mlflow_at(stack["backend"], stack["root"] / "mlartifacts", stack["root"] / "mlflow.log",
                                      stack["port"])
    client = MlflowClient(stack["mlflow"].url, registry_uri=stack["mlflow"].url)
    assert client.search_model_versions("name = 'gone'") == []  # nothing registered
    assert "gone" not in [m.name for m in client.search_registered_models()]
    stuck = client.get_run(run.info.run_id)
    assert stuck.info.status == "RUNNING"  # nobody could close it
    epochs = max(m.step for m in client.get_metric_history(run.info.run_id, "train_mse"))
    assert epochs < 1000

    from prefect.client.orchestration import SyncPrefectClient

    flow_run_id = stuck.data.tags["prefect.flow_run_id"]
    with SyncPrefectClient(stack["prefect"].url) as prefect:
        assert prefect.read_flow_run(flow_run_id).state.type.value in ("FAILED", "CRASHED")

    out = subprocess.run([str(BIN / "mynn"), "reconcile"], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert f"closed {run.info.run_id}" in out.stdout
    closed = client.get_run(run.info.run_id)
    assert closed.info.status == "FAILED"
    assert closed.data.tags["mynn.reconciled"].startswith(f"flow run {flow_run_id} is ")
