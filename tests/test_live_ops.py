"""Live operation end to end (issue #16): real MLflow and Prefect servers, `mynn serve` watching a
folder of data every few seconds, and `mynn serve-model` following the champion.

The folder first holds 1,000 MNIST training records (and 2,000 test records): the watch flow
sees data no champion was trained on and emits ``mynn.data.changed``; the train deployment's
trigger starts a training, which registers version 1 and promotes it (``mynn.model.promoted``),
and the serving app answers with it. Unchanged data then starts nothing. The folder's training
file is replaced by 6,000 records: a training starts from the event within 60 s, its model is
significantly better (McNemar on the same 2,000 test records) and promoted, and the serving app,
never restarted, answers with version 2.
"""
from __future__ import annotations

import gzip
import itertools
import os
import subprocess
import sys
import time

import pytest
from mlflow import MlflowClient

from mynn import paths
from tests.servers import BIN, QUIET_ENV, Server, start_tracking_stack
from tests.test_operate import _prefect_client, _until, _wait_for_deployments
from tests.test_serve_live import call
from tests.test_serving import free_port

pytestmark = pytest.mark.timeout(600)
WATCH_SECONDS = 5


def _write(folder, train_records: int, test_records: int = 2000) -> None:
    """The first records of the shipped MNIST, as the book's CSV files in ``folder``."""
    folder.mkdir(exist_ok=True)
    for split, n in (("train", train_records), ("test", test_records)):
        with gzip.open(paths.data_dir() / f"mnist_{split}.csv.gz", "rt") as src:
            lines = list(itertools.islice(src, n))
        tmp = folder / f".mnist_{split}.csv.tmp"
        tmp.write_text("".join(lines))
        os.replace(tmp, folder / f"mnist_{split}.csv")  # a watch run never reads half a file


def _train_runs(stack) -> list:
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId

    with _prefect_client(stack) as client:
        dep = client.read_deployment_by_name("mynn-train/train")
        return client.read_flow_runs(deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[dep.id])))


def _watch_runs_done(stack) -> int:
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId

    with _prefect_client(stack) as client:
        dep = client.read_deployment_by_name("mynn-watch/watch")
        runs = client.read_flow_runs(deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[dep.id])))
    return sum(1 for r in runs if r.state and r.state.is_completed())


def _events(stack, name: str) -> list:
    from prefect.events.filters import EventFilter, EventNameFilter

    with _prefect_client(stack) as client:
        return client.read_events(filter=EventFilter(event=EventNameFilter(name=[name])), limit=50).events


def _completed_train(stack, count: int, timeout: float) -> list:
    """The train deployment's runs once ``count`` of them completed (none failed)."""
    def done():
        runs = _train_runs(stack)
        bad = [r for r in runs if r.state and r.state.type.value in ("FAILED", "CRASHED")]
        assert not bad, f"a training failed: {bad[0].state}: {stack['serve_log'].read_text()[-3000:]}"
        return runs if sum(1 for r in runs if r.state and r.state.is_completed()) >= count else None
    return _until(done, timeout, f"{count} completed training(s) ({stack['serve_log'].read_text()[-1500:]})")


def test_new_data_retrains_promotes_and_the_serving_app_follows_without_a_restart(tmp_path):
    stops = []
    try:
        mlflow, prefect = start_tracking_stack("sqlite", tmp_path, stops)
        folder = tmp_path / "source"
        _write(folder, 1000)
        env = {**os.environ, **QUIET_ENV, "PREFECT_API_URL": prefect.url, "MLFLOW_TRACKING_URI": mlflow.url,
               "MYNN_CACHE_DIR": str(tmp_path / "cache"), "MYNN_RUNS_DIR": str(tmp_path / "runs"),
               "MYNN_STUDY_STORAGE": f"sqlite:///{tmp_path / 'optuna.db'}"}
        log = tmp_path / "serve.log"
        serve = subprocess.Popen([str(BIN / "mynn"), "serve", "--source", str(folder), "--no-schedule",
                                  "--watch-every", str(WATCH_SECONDS)], env=env, stdout=open(log, "wb"),
                                 stderr=subprocess.STDOUT, start_new_session=True)
        stops.append(Server("serve", "", serve, log).stop)
        port = free_port()
        model_log = tmp_path / "serve-model.log"
        model = subprocess.Popen([sys.executable, "-m", "flows.cli", "serve-model", "--port", str(port),
                                  "--poll-seconds", "0.5"], env=env, stdout=open(model_log, "wb"),
                                 stderr=subprocess.STDOUT, start_new_session=True, cwd=tmp_path)
        stops.append(Server("serve-model", "", model, model_log).stop)
        base = f"http://127.0.0.1:{port}"
        stack = {"prefect": prefect, "serve_log": log}
        _wait_for_deployments(stack, serve)

        # 1. no champion yet: the first watch run announces the data, a training starts and promotes
        first = _completed_train(stack, 1, 180)
        assert len(first) == 1 and first[0].auto_scheduled is False
        client = MlflowClient(mlflow.url)
        v1 = client.get_model_version_by_alias("mynn", "champion")
        assert v1.version == "1"
        assert client.get_run(v1.run_id).data.params["train_records"] == "1000"
        _until(lambda: call(f"{base}/ping")[0] == 200, 30, "the serving app has version 1")
        assert call(f"{base}/version")[1]["model_version"] == "1"

        # 2. unchanged data starts nothing: another watch run, no training
        watched = _watch_runs_done(stack)
        _until(lambda: _watch_runs_done(stack) >= watched + 1, 90, "another watch run")
        assert len(_train_runs(stack)) == 1
        assert len(_until(lambda: _events(stack, "mynn.data.changed"), 30, "the first data event")) == 1

        # 3. new data: a training from the event within 60 s, promoted, served without a restart
        _write(folder, 6000)
        changed_at = time.time()
        runs = _until(lambda: [r for r in _train_runs(stack) if r.id != first[0].id], 60,
                      "a training started by the new data")
        started = runs[0].created.timestamp() - changed_at
        second = _completed_train(stack, 2, 180)
        assert len(second) == 2
        v2 = client.get_model_version_by_alias("mynn", "champion")
        assert v2.version == "2" and client.get_run(v2.run_id).data.params["train_records"] == "6000"
        _until(lambda: call(f"{base}/version")[1]["model_version"] == "2", 15, "the serving app has version 2")
        assert model.poll() is None  # the same process all along
        status, answer, headers = call(f"{base}/invocations", {"inputs": [[0] * 784]})
        assert status == 200 and answer["model_version"] == headers["X-Model-Version"] == "2"

        # (the server stores events a moment after they arrive)
        _until(lambda: len(_events(stack, "mynn.model.promoted")) >= 2, 30, "both promotions' events")
        promoted = sorted(_events(stack, "mynn.model.promoted"), key=lambda e: e.occurred)
        assert [e.payload["version"] for e in promoted] == ["1", "2"]
        assert promoted[1].payload["replaced_version"] == "1" and promoted[1].payload["run_id"] == v2.run_id
        assert promoted[1].payload["p_value"] < 0.05
        changed = sorted(_events(stack, "mynn.data.changed"), key=lambda e: e.occurred)
        assert len(changed) == 2 and changed[1].payload["train_records"] == 6000
        assert changed[1].payload["champion"]["version"] == "1"
        print(f"training created {started:.1f} s after the data changed")
        assert started < 60
    finally:
        for stop in reversed(stops):
            stop()
