"""tracking.runs: starting, reopening and closing runs, and recording their data, against a real
SQLite MLflow store under tmp_path (no Prefect)."""
from __future__ import annotations

import dataclasses
import os

import pytest

from mynn import paths
from mynn.config import NetworkConfig
from mynn.fetch import fetch
from mynn.prepare import prepare_fetched
from tracking import store
from tracking.runs import ResumeError, closing_run, log_data, open_run, prefect_tags

CFG = NetworkConfig(hidden_nodes=10, learning_rate=0.3, epochs=2)


def test_open_run_starts_a_run_with_config_versions_owner_and_prefect_link(tracking_env):
    run_id, url, resumed = open_run(tracking_env.uri, "t-open", CFG, runs_dir=tracking_env.runs,
                                    flow_run_id="fr-1", flow_run_url="http://prefect/runs/fr-1")
    run = store.client(tracking_env.uri).get_run(run_id)
    assert not resumed and run.info.status == "RUNNING"
    assert url.endswith(f"/#/experiments/{run.info.experiment_id}/runs/{run_id}?workflowType=machine_learning")
    # the experiment opens on its runs in the MLflow 3 UI, not on the GenAI view
    exp = store.client(tracking_env.uri).get_experiment(run.info.experiment_id)
    assert exp.tags["mlflow.experimentKind"] == "custom_model_development"
    assert {k: run.data.params[k] for k in ("hidden_nodes", "learning_rate", "epochs")} == {
        "hidden_nodes": "10", "learning_rate": "0.3", "epochs": "2"}
    assert run.data.params["version.numpy"] and run.data.tags["mynn.pid"] == str(os.getpid())
    assert run.data.tags["prefect.flow_run_id"] == "fr-1"
    assert run.data.tags["prefect.flow_run_url"] == "http://prefect/runs/fr-1"
    assert run.data.tags["mlflow.runName"] == CFG.run_name()


def test_closing_run_ends_finished_failed_or_killed_with_the_failure_recorded(tracking_env):
    client = store.client(tracking_env.uri)
    ids = [open_run(tracking_env.uri, "t-close", CFG, runs_dir=tracking_env.runs)[0] for _ in range(3)]
    with closing_run(tracking_env.uri, ids[0]):
        pass
    with pytest.raises(ValueError), closing_run(tracking_env.uri, ids[1]):
        raise ValueError("bad value 7")
    with pytest.raises(KeyboardInterrupt), closing_run(tracking_env.uri, ids[2]):
        raise KeyboardInterrupt
    runs = [client.get_run(i) for i in ids]
    assert [r.info.status for r in runs] == ["FINISHED", "FAILED", "KILLED"]
    assert "mynn.failure" not in runs[0].data.tags
    assert runs[1].data.tags["mynn.failure"] == "ValueError: bad value 7"
    assert runs[2].data.tags["mynn.failure"].startswith("KeyboardInterrupt")


def test_a_finished_run_or_one_of_another_config_is_not_resumed(tracking_env):
    done, _, _ = open_run(tracking_env.uri, "t-resume", CFG, runs_dir=tracking_env.runs)
    with closing_run(tracking_env.uri, done):
        pass
    with pytest.raises(ResumeError, match="finished already"):
        open_run(tracking_env.uri, "t-resume", CFG, runs_dir=tracking_env.runs, resume=done)
    failed, _, _ = open_run(tracking_env.uri, "t-resume", CFG, runs_dir=tracking_env.runs)
    with pytest.raises(RuntimeError), closing_run(tracking_env.uri, failed):
        raise RuntimeError("stopped")
    with pytest.raises(ResumeError, match="has hidden_nodes='10', not 20"):
        open_run(tracking_env.uri, "t-resume", dataclasses.replace(CFG, hidden_nodes=20), runs_dir=tracking_env.runs,
                 resume=failed)
    run_id, _, resumed = open_run(tracking_env.uri, "t-resume", CFG, runs_dir=tracking_env.runs, resume=failed)
    run = store.client(tracking_env.uri).get_run(run_id)
    assert resumed and run_id == failed and run.info.status == "RUNNING"
    assert run.data.tags["mynn.previous_failure"] == "RuntimeError: stopped" and "mynn.failure" not in run.data.tags


def test_log_data_records_digests_files_and_datasets_and_guards_a_resumed_run(tracking_env, tmp_path):
    small = prepare_fetched(fetch("shipped-small", tracking_env.cache), tracking_env.cache)
    run_id, _, _ = open_run(tracking_env.uri, "t-data", CFG, runs_dir=tracking_env.runs)
    log_data(tracking_env.uri, run_id, small)
    run = store.client(tracking_env.uri).get_run(run_id)
    p = run.data.params
    assert (p["train_digest"], p["test_digest"]) == (small.train.digest, small.test.digest)
    assert (p["train_records"], p["test_records"], p["data_verified"]) == ("100", "10", "true")
    assert p["train_file"] == str(paths.data_dir() / "mnist_train_100.csv")
    assert p["train_file_sha256"] == small.train.file_sha256
    assert {(d.dataset.name, d.tags[0].value) for d in run.inputs.dataset_inputs} == {
        ("mnist_train_100", "training"), ("mnist_test_10", "evaluation")}
    # the same data again (a resumed run) is fine; other data is refused, naming both digests
    log_data(tracking_env.uri, run_id, small)
    other = dataclasses.replace(small, train=small.test)
    with pytest.raises(ResumeError, match=f"train_digest {small.train.digest}.*now gives {small.test.digest}"):
        log_data(tracking_env.uri, run_id, other)


def test_prefect_tags_only_with_a_flow_run():
    assert prefect_tags(None, "http://x") == {}
    assert prefect_tags("id-1") == {"prefect.flow_run_id": "id-1"}


def test_runs_adding_one_new_dataset_at_once_all_record_it(tracking_env):
    """MLflow finds or else inserts one dataset row per experiment, name and digest: runs adding
    the same new dataset at the same moment race, and the losers retry and link to the row."""
    import threading

    from mlflow import MlflowClient

    from tracking.runs import log_dataset

    client = MlflowClient(tracking_env.uri)
    exp = client.create_experiment("race")
    run_ids = [client.create_run(exp).info.run_id for _ in range(8)]
    start, errors = threading.Barrier(len(run_ids)), []

    def add(run_id):
        start.wait()
        try:
            log_dataset(client, run_id, name="train", digest="ab" * 32, source="/data/train.csv",
                        records=10, context="training")
        except Exception as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=add, args=(r,)) for r in run_ids]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    for run_id in run_ids:
        assert [d.dataset.name for d in client.get_run(run_id).inputs.dataset_inputs] == ["train"]
