"""Sweeps end to end: Prefect (one temporary server per session, fixture ``prefect_harness``),
a real SQLite MLflow store under tmp_path (fixture ``tracking_env``), the book's shipped
100/10 subsets, trainings in worker threads or on a real local Dask cluster.
Nothing is mocked.
"""
from __future__ import annotations

import json
import os

import numpy as np
import pytest
from mlflow import MlflowClient

from flows.cli import main as cli_main
from flows.params import SweepGrid
from flows.runners import task_runner
from flows.sweep_flow import sweep_flow
from flows.training import train_points
from mynn import paths
from mynn.config import NetworkConfig
from mynn.arrays import save_npy
from mynn.csvfile import read_csv
from mynn.grid import Training, code_digest
from mynn.network import Network
from mynn.prepare import Prepared, PreparedData
from mynn.train import fit
from tracking import compare as compare_mod
from tracking.store import ensure_experiment
from tracking.sweeps import Sweep

pytestmark = pytest.mark.usefixtures("prefect_harness")

SMALL = dict(source="shipped-small")


def sweep(experiment: str, runner=None, **grid):
    """Run the sweep flow on the book's 100/10 subsets with 2 worker threads (unless given)."""
    flow = sweep_flow.with_options(task_runner=runner or task_runner(2))
    return flow(grid=SweepGrid(**grid), experiment=experiment, **SMALL)


def client_and_exp(env, experiment: str) -> tuple[MlflowClient, str]:
    client = MlflowClient(env.uri)
    exp = client.get_experiment_by_name(experiment)
    assert exp is not None, experiment
    return client, exp.experiment_id


def children(client: MlflowClient, experiment_id: str, parent_run_id: str) -> list:
    return client.search_runs([experiment_id], filter_string=f"tags.`mlflow.parentRunId` = '{parent_run_id}'")


def key(run) -> tuple[int, float, int]:
    p = run.data.params
    return int(p["hidden_nodes"]), float(p["learning_rate"]), int(p["epochs"])


# ------------------------------------------------------------------------ 1. the main sweep


def test_sweep_logs_parent_and_children_then_reuses_finished_points(tracking_env):
    exp_name = "t-sweep"
    grid = dict(hidden_nodes=[10, 20], learning_rate=[0.1, 0.3], epochs=[1])
    first = sweep(exp_name, **grid)

    client, exp_id = client_and_exp(tracking_env, exp_name)
    parents = client.search_runs([exp_id], filter_string="tags.`mynn.kind` = 'sweep'")
    assert [p.info.run_id for p in parents] == [first["parent_run_id"]]
    parent = parents[0]
    assert parent.info.status == "FINISHED"
    assert parent.data.params["source"] == "shipped-small" and parent.data.params["data"] == "small"
    assert parent.data.params["code_version"] == code_digest()
    # the datasets are the parent's inputs too, logged before any child (children racing to add
    # one new dataset to the experiment failed MLflow's unique constraint)
    assert sorted((d.dataset.name, [t.value for t in d.tags]) for d in parent.inputs.dataset_inputs) == [
        ("mnist_test_10", ["evaluation"]), ("mnist_train_100", ["training"])]
    # the Prefect flow run shows a table of the points and a progress artifact at 100 %
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    with get_client(sync_client=True) as prefect:
        found = prefect.read_artifacts(artifact_filter=ArtifactFilter(
            flow_run_id=ArtifactFilterFlowRunId(any_=[parent.data.tags["prefect.flow_run_id"]])))
    by_key = {a.key: a for a in found}
    assert {"sweep-points", "sweep-summary", "trainings", "mlflow-sweep"} <= set(by_key)
    assert by_key["trainings"].type == "progress" and float(by_key["trainings"].data) == 100.0
    table = by_key["sweep-points"].data
    table = json.loads(table) if isinstance(table, str) else table
    assert sorted((r["hidden_nodes"], r["learning_rate"]) for r in table) == [(10, 0.1), (10, 0.3), (20, 0.1), (20, 0.3)]
    # one name for the job in both UIs; links both ways; descriptions in MLflow
    with get_client(sync_client=True) as prefect:
        fr = prefect.read_flow_run(parent.data.tags["prefect.flow_run_id"])
    assert fr.name == parent.info.run_name == parent.data.tags["mlflow.runName"]
    prefect_url = parent.data.tags["prefect.flow_run_url"]
    assert prefect_url.endswith(str(fr.id))
    assert "Best: **" in parent.data.tags["mlflow.note.content"] and prefect_url in parent.data.tags["mlflow.note.content"]

    points = client.search_runs([exp_id], filter_string="tags.`mynn.kind` = 'point'")
    assert len(points) == 4
    assert {r.info.run_id for r in points} == {r.info.run_id for r in children(client, exp_id, parent.info.run_id)}
    assert sorted(key(r) for r in points) == [(10, 0.1, 1), (10, 0.3, 1), (20, 0.1, 1), (20, 0.3, 1)]
    for run in points:
        assert run.data.tags["mlflow.parentRunId"] == parent.info.run_id
        assert run.info.status == "FINISHED", run.info.run_name
        assert run.data.tags["mynn.origin"] == "trained"
        assert run.data.tags["prefect.flow_run_url"] == prefect_url
        note = run.data.tags["mlflow.note.content"]
        assert parent.info.run_id in note and prefect_url in note and "trained in this run" in note
        (output,) = run.outputs.model_outputs  # its LoggedModel, with the performance measured on the test set
        assert {m.key: m.value for m in client.get_logged_model(output.model_id).metrics} == {
            "performance": run.data.metrics["performance"]}
        assert len(run.data.tags["mynn.point_id"]) >= 16 and "point_id" not in run.data.params  # a tag: not compared
        assert run.data.tags["mynn.epochs_trained"] == "1"
        assert 0.0 <= run.data.metrics["performance"] <= 1.0
        mse = client.get_metric_history(run.info.run_id, "train_mse")
        assert [m.step for m in mse] == [1] and mse[0].value > 0
        perf = client.get_metric_history(run.info.run_id, "epoch_performance")
        assert [m.value for m in perf] == [run.data.metrics["performance"]]
        # the checkpoint of the one epoch was written by the worker under MYNN_RUNS_DIR
        assert (tracking_env.runs / run.info.run_id / "checkpoints" / "epoch-001.npz").is_file()
        # a full run, as a single run records it (the one train-and-log path)
        assert {"config.json", "weights.npz"} <= {a.path for a in client.list_artifacts(run.info.run_id)}
        assert {(d.dataset.name, d.dataset.digest) for d in run.inputs.dataset_inputs} == {
            ("mnist_train_100", run.data.params["train_digest"][:32]), ("mnist_test_10", run.data.params["test_digest"][:32])}
        assert run.data.params["train_file"].endswith("mnist_train_100.csv")
        assert run.data.metrics["timing/training_seconds"] > 0 and run.data.metrics["timing/records_per_s"] > 0

    # the parent's summary: metrics and artifacts
    m = parent.data.metrics
    assert (m["points"], m["trained_points"], m["derived_points"], m["reused_points"]) == (4, 4, 0, 0)
    assert m["best_mean_performance"] == max(r.data.metrics["performance"] for r in points)
    root = {a.path for a in client.list_artifacts(parent.info.run_id)}
    assert {"summary.csv", "summary.md", "summary.json", "best.json", "plots"} <= root  # summary.json: log_table
    assert {a.path for a in client.list_artifacts(parent.info.run_id, "plots")} == {
        "plots/performance_vs_hidden_nodes.png", "plots/performance_vs_learning_rate.png"}
    local = client.download_artifacts(parent.info.run_id, "", str(tracking_env.db.parent / "dl1"))
    csv_lines = open(os.path.join(local, "summary.csv")).read().strip().splitlines()
    assert len(csv_lines) == 1 + 4 and csv_lines[0].startswith("data,hidden_nodes,learning_rate")
    best = json.load(open(os.path.join(local, "best.json")))
    assert best["mean_performance"] == m["best_mean_performance"]
    assert set(best["runs"]) <= {r.info.run_id for r in points}
    with open(os.path.join(local, "plots", "performance_vs_hidden_nodes.png"), "rb") as fh:
        assert fh.read(8) == b"\x89PNG\r\n\x1a\n"
    # the flow's return value agrees with the store
    assert first["trained"] == 4 and first["points"] == 4 and len(first["results"]) == 4

    # the four trainings ran as Prefect tasks of the flow, all completed
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId, TaskRunFilter, TaskRunFilterName

    flow_run_id = parent.data.tags["prefect.flow_run_id"]
    with get_client(sync_client=True) as pc:
        task_runs = pc.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])),
                                      task_run_filter=TaskRunFilter(name=TaskRunFilterName(like_="train-points")))
    assert len(task_runs) == 4
    assert all(t.state is not None and t.state.is_completed() for t in task_runs)

    # ---- the same sweep again: nothing is trained, every point is reused
    first_children = {r.info.run_id: r for r in points}
    second = sweep(exp_name, **grid)
    assert second["parent_run_id"] != first["parent_run_id"]
    p2 = client.get_run(second["parent_run_id"])
    assert p2.info.status == "FINISHED"
    assert (p2.data.metrics["points"], p2.data.metrics["trained_points"], p2.data.metrics["reused_points"]) == (4, 0, 4)
    kids2 = children(client, exp_id, second["parent_run_id"])
    assert len(kids2) == 4
    for run in kids2:
        assert run.info.status == "FINISHED"
        origin = run.data.tags["mynn.origin"]
        assert origin.startswith("reused:")
        source = first_children[origin.split(":", 1)[1]]  # a child of the first sweep ...
        assert key(source) == key(run)  # ... of the same point, with the same numbers
        assert run.data.tags["mynn.point_id"] == source.data.tags["mynn.point_id"]
        assert run.data.metrics["performance"] == source.data.metrics["performance"]
        assert [m.value for m in client.get_metric_history(run.info.run_id, "train_mse")] == \
               [m.value for m in client.get_metric_history(source.info.run_id, "train_mse")]
        assert not (tracking_env.runs / run.info.run_id).exists()  # nothing trained for it

    # ---- one more hidden size: only its two points are trained
    third = sweep(exp_name, **{**grid, "hidden_nodes": [10, 20, 30]})
    p3 = client.get_run(third["parent_run_id"])
    assert (p3.data.metrics["points"], p3.data.metrics["trained_points"], p3.data.metrics["reused_points"]) == (6, 2, 4)
    kids3 = children(client, exp_id, third["parent_run_id"])
    trained = sorted(key(r) for r in kids3 if r.data.tags["mynn.origin"] == "trained")
    assert trained == [(30, 0.1, 1), (30, 0.3, 1)]
    reused = [r for r in kids3 if r.data.tags["mynn.origin"].startswith("reused:")]
    # reuse prefers the run that trained the point, not the copy made by the second sweep
    assert {r.data.tags["mynn.origin"].split(":", 1)[1] for r in reused} == set(first_children)
    assert all(r.info.status == "FINISHED" for r in kids3)
    assert len(client.search_runs([exp_id], filter_string="tags.`mynn.kind` = 'point'")) == 4 + 4 + 6


# ------------------------------------------------------------------- 2. epochs from one training


def small_data():
    train = read_csv(paths.data_dir() / "mnist_train_100.csv")
    test = read_csv(paths.data_dir() / "mnist_test_10.csv")
    return train, test


def test_smaller_epoch_counts_are_derived_from_one_training_and_equal_separate_trainings(tracking_env):
    exp_name = "t-epochs"
    out = sweep(exp_name, hidden_nodes=[10], learning_rate=[0.3], epochs=[1, 2, 3], seed=[4])
    client, exp_id = client_and_exp(tracking_env, exp_name)
    kids = children(client, exp_id, out["parent_run_id"])
    assert len(kids) == 3
    by_epochs = {int(r.data.params["epochs"]): r for r in kids}
    assert sorted(by_epochs) == [1, 2, 3]
    trained = by_epochs[3]
    assert trained.data.tags["mynn.origin"] == "trained"
    assert trained.data.tags["mynn.epochs_trained"] == "3"
    for e in (1, 2):
        assert by_epochs[e].data.tags["mynn.origin"] == f"derived:{trained.info.run_id}"
        assert "mynn.epochs_trained" not in by_epochs[e].data.tags
    assert all(r.info.status == "FINISHED" for r in kids)
    m = client.get_run(out["parent_run_id"]).data.metrics
    assert (m["points"], m["trained_points"], m["derived_points"], m["reused_points"]) == (3, 1, 2, 0)

    train, test = small_data()
    for e in (1, 2, 3):
        cfg = NetworkConfig(hidden_nodes=10, learning_rate=0.3, epochs=e, seed=4)
        net, history = fit(cfg, train.pixels, train.labels, test=(test.pixels, test.labels))
        run = by_epochs[e]
        assert run.data.metrics["performance"] == history[-1].performance, e
        mse = [m.value for m in sorted(client.get_metric_history(run.info.run_id, "train_mse"), key=lambda m: m.step)]
        assert mse == [h.train_mse for h in history], e
        perf = [m.value for m in sorted(client.get_metric_history(run.info.run_id, "epoch_performance"),
                                        key=lambda m: m.step)]
        assert perf == [h.performance for h in history], e
        # the longer training's checkpoint after epoch e is this e-epoch network, bit for bit
        ckpt = Network.load(tracking_env.runs / trained.info.run_id / "checkpoints" / f"epoch-{e:03d}.npz")
        assert np.array_equal(ckpt.wih, net.wih) and np.array_equal(ckpt.who, net.who), e
        assert ckpt.wih.dtype == net.wih.dtype == np.float64
    # a different seed gives different weights: the comparison above could fail
    other, _ = fit(NetworkConfig(hidden_nodes=10, learning_rate=0.3, epochs=2, seed=5), train.pixels, train.labels)
    ckpt2 = Network.load(tracking_env.runs / trained.info.run_id / "checkpoints" / "epoch-002.npz")
    assert not np.array_equal(ckpt2.wih, other.wih)


# --------------------------------------------------------------------------------- 3. on Dask


def test_sweep_on_a_local_dask_cluster(tracking_env, monkeypatch):
    from distributed import LocalCluster
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as c:
        api_url = str(c.api_url).rstrip("/")
    # the workers inherit the environment when they start: the Prefect API and the
    # MLflow/MYNN variables (set by tracking_env) must be there before the cluster is made
    monkeypatch.setenv("PREFECT_API_URL", api_url)
    assert os.environ["MLFLOW_TRACKING_URI"] == tracking_env.uri
    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None)
    try:
        out = sweep("t-dask", runner=task_runner(dask_address=cluster.scheduler_address),
                    hidden_nodes=[10, 20], learning_rate=[0.3], epochs=[1])
    finally:
        cluster.close()
    client, exp_id = client_and_exp(tracking_env, "t-dask")
    parent = client.get_run(out["parent_run_id"])
    assert parent.info.status == "FINISHED"
    assert parent.data.metrics["trained_points"] == 2
    kids = children(client, exp_id, out["parent_run_id"])
    assert sorted(key(r) for r in kids) == [(10, 0.3, 1), (20, 0.3, 1)]
    assert all(r.info.status == "FINISHED" and r.data.tags["mynn.origin"] == "trained" for r in kids)
    assert all(0.0 <= r.data.metrics["performance"] <= 1.0 for r in kids)
    for r in kids:
        assert (tracking_env.runs / r.info.run_id / "checkpoints" / "epoch-001.npz").is_file()


# ------------------------------------------------------------------------------ 4. failures


def _job(tracking_env, exp_name: str, data: PreparedData) -> tuple[MlflowClient, str, Sweep, Training]:
    client, exp_id = ensure_experiment(tracking_env.uri, exp_name)
    parent = client.create_run(exp_id, run_name="parent", tags={"mynn.kind": "sweep"}).info.run_id
    cfg = NetworkConfig(hidden_nodes=10, learning_rate=0.3, epochs=2)
    return client, exp_id, Sweep(tracking_env.uri, exp_id, parent, data, code_digest()), Training(cfg, (1, 2))


def _prepared(directory, ds) -> Prepared:
    return Prepared(directory, ds.digest, len(ds), None, False)


def test_train_points_with_missing_data_raises_and_leaves_nothing_running(tracking_env, tmp_path):
    train, test = small_data()
    missing = PreparedData("shipped-small", _prepared(tmp_path / "no-train", train), _prepared(tmp_path / "no-test", test))
    client, exp_id, job, training = _job(tracking_env, "t-fail", missing)
    with pytest.raises(Exception, match="no-train"):
        train_points(job, training, tmp_path / "runs")
    runs = client.search_runs([exp_id])
    assert [r.data.tags.get("mynn.kind") for r in runs] == ["sweep"]  # no child was left behind
    assert not [r for r in runs if r.data.tags.get("mynn.kind") == "point" and r.info.status == "RUNNING"]
    assert not (tmp_path / "runs").exists()


def test_train_points_failing_mid_training_marks_the_child_failed(tracking_env, tmp_path):
    train, test = small_data()
    data = PreparedData("shipped-small", _prepared(save_npy(train, tmp_path / "train"), train),
                        _prepared(save_npy(test, tmp_path / "test"), test))
    blocker = tmp_path / "runs-is-a-file"
    blocker.write_text("not a folder")  # the checkpoint after epoch 1 cannot be written
    client, exp_id, job, training = _job(tracking_env, "t-fail2", data)
    with pytest.raises(OSError):
        train_points(job, training, blocker)
    points = client.search_runs([exp_id], filter_string="tags.`mynn.kind` = 'point'")
    assert len(points) == 1
    run = points[0]
    assert run.info.status == "FAILED"
    assert run.data.tags["mlflow.parentRunId"] == job.parent_run_id
    assert "mynn.failure" in run.data.tags
    assert not client.search_runs([exp_id], filter_string="attributes.status = 'RUNNING' "
                                                          "and tags.`mynn.kind` = 'point'")
    # checkpoint first (tracking.training.EpochLogger): an epoch whose checkpoint failed has no
    # metrics either; and no derived child for epoch 1 was made
    assert client.get_metric_history(run.info.run_id, "train_mse") == []
    assert "NotADirectoryError" in run.data.tags["mynn.failure"] or "FileExistsError" in run.data.tags["mynn.failure"]


def test_a_sweep_whose_trainings_fail_fails_with_its_parent(tracking_env, tmp_path, monkeypatch):
    blocker = tmp_path / "runs-is-a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("MYNN_RUNS_DIR", str(blocker))
    with pytest.raises(RuntimeError, match="2 of 2 training"):
        sweep("t-fail3", hidden_nodes=[10, 20], learning_rate=[0.3], epochs=[1])
    client, exp_id = client_and_exp(tracking_env, "t-fail3")
    runs = client.search_runs([exp_id])
    parents = [r for r in runs if r.data.tags.get("mynn.kind") == "sweep"]
    kids = [r for r in runs if r.data.tags.get("mynn.kind") == "point"]
    assert len(parents) == 1 and parents[0].info.status == "FAILED"
    assert len(kids) == 2 and all(r.info.status == "FAILED" for r in kids)
    # nothing finished, so a later sweep has nothing to reuse
    from tracking.sweeps import finished_points

    assert finished_points(tracking_env.uri, exp_id) == ({}, {})


# ------------------------------------------------------------------------------- 5. compare


def test_compare_command_after_a_sweep(tracking_env, tmp_path, capsys):
    sweep("t-cmp", hidden_nodes=[10, 20], learning_rate=[0.3], epochs=[1])
    capsys.readouterr()
    out_png = tmp_path / "c.png"
    assert cli_main(["compare", "--experiment", "t-cmp", "--param", "hidden_nodes", "--out", str(out_png)]) == 0
    printed = capsys.readouterr().out
    lines = [ln for ln in printed.splitlines() if ln.startswith("|")]
    assert lines[0].startswith("| series | hidden_nodes | n | mean performance |")
    rows = [[c.strip() for c in ln.strip("|").split("|")] for ln in lines[2:]]
    assert [(r[0], r[1], r[2]) for r in rows] == [("runs", "10", "1"), ("runs", "20", "1")]
    client, exp_id = client_and_exp(tracking_env, "t-cmp")
    perf = {int(r.data.params["hidden_nodes"]): r.data.metrics["performance"]
            for r in client.search_runs([exp_id], filter_string="tags.`mynn.kind` = 'point'")}
    assert [float(r[3]) for r in rows] == [round(perf[10], 4), round(perf[20], 4)]
    assert f"plot: {out_png}" in printed
    assert out_png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    with pytest.raises(LookupError, match="hidden_nodes"):
        compare_mod.compare(client, [exp_id], "performance", "hidden_nodes", "params.hidden_nodes = '999'")
    capsys.readouterr()
    assert cli_main(["compare", "--experiment", "t-nothing-here", "--param", "hidden_nodes"]) == 1
    assert "mynn compare: error: no experiment 't-nothing-here'" in capsys.readouterr().err
