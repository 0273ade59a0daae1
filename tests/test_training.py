"""The one train-and-log path (flows.training.train_and_log with tracking.training.RunRecorder):
per-epoch metrics and checkpoints, the weights and config.json, and resume from a checkpoint bit
for bit; against a real SQLite store under tmp_path, on the book's 100/10 subsets, no Prefect."""
from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import numpy as np
import pytest

from flows.training import train_and_log
from mynn.config import NetworkConfig
from mynn.fetch import fetch
from mynn.network import Network
from tests.trainkit import fit_in_process, same_bits
from mynn.prepare import PreparedData, prepare_fetched
from tracking import store
from tracking.runs import ResumeError, open_run


@pytest.fixture
def prepared(tracking_env) -> PreparedData:
    return prepare_fetched(fetch("shipped-small", tracking_env.cache), tracking_env.cache)


def new_run(env, config: NetworkConfig):
    run_id, _, _ = open_run(env.uri, "training", config, runs_dir=env.runs)
    return store.client(env.uri), run_id


def artifact_paths(client, run_id: str, path: str | None = None) -> set[str]:
    return {a.path for a in client.list_artifacts(run_id, path)}


def test_train_logs_every_epoch_and_writes_checkpoints(tracking_env, prepared):
    config = NetworkConfig(hidden_nodes=20, learning_rate=0.3, epochs=3)
    client, run_id = new_run(tracking_env, config)

    trained = train_and_log(prepared, config, tracking_env.uri, run_id)

    run_dir = tracking_env.runs / run_id  # MYNN_RUNS_DIR/<run id> by default
    mse = client.get_metric_history(run_id, "train_mse")
    perf = client.get_metric_history(run_id, "epoch_performance")
    assert sorted(m.step for m in mse) == [1, 2, 3]
    assert sorted(m.step for m in perf) == [1, 2, 3]
    assert [h["epoch"] for h in trained.history] == [1, 2, 3]
    assert {m.step: m.value for m in mse} == {h["epoch"]: h["train_mse"] for h in trained.history}
    assert {m.step: m.value for m in perf} == {h["epoch"]: h["performance"] for h in trained.history}
    ckpts = sorted(p.name for p in (run_dir / "checkpoints").iterdir())
    # each checkpoint with its epoch's stats (logged from there if the run stopped in between)
    assert ckpts == ["epoch-001.json", "epoch-001.npz", "epoch-002.json", "epoch-002.npz",
                     "epoch-003.json", "epoch-003.npz"]
    assert Path(trained.weights_path) == run_dir / "weights.npz"
    final = Network.load(trained.weights_path)
    assert same_bits(final, Network.load(run_dir / "checkpoints" / "epoch-003.npz"))
    assert same_bits(final, fit_in_process(config, prepared))  # the task trains what fit trains
    one_epoch = fit_in_process(NetworkConfig(hidden_nodes=20, learning_rate=0.3, epochs=1), prepared)
    first = Network.load(run_dir / "checkpoints" / "epoch-001.npz")
    assert first.config == config  # the checkpoint carries the run's config (so it can resume)
    assert same_bits(first, Network(config, one_epoch.wih, one_epoch.who))
    assert {"weights.npz", "config.json"} <= artifact_paths(client, run_id)
    metrics = client.get_run(run_id).data.metrics
    assert metrics["timing/training_seconds"] == pytest.approx(trained.training_seconds) and trained.training_seconds > 0
    assert metrics["timing/records_per_s"] == pytest.approx(trained.records_per_s) and trained.records_per_s > 0
    assert trained.resumed_from_epoch == 0
    assert "mynn.resumed_from_epoch" not in client.get_run(run_id).data.tags


def test_train_resumes_from_a_checkpoint_bit_for_bit(tracking_env, prepared, tmp_path):
    config = NetworkConfig(hidden_nodes=20, learning_rate=0.3, epochs=3)
    client, whole_id = new_run(tracking_env, config)
    whole = train_and_log(prepared, config, tracking_env.uri, whole_id, run_dir=str(tmp_path / "whole"))
    _, resumed_id = new_run(tracking_env, config)
    ckpts = tmp_path / "resumed" / "checkpoints"
    ckpts.mkdir(parents=True)
    shutil.copyfile(tmp_path / "whole" / "checkpoints" / "epoch-001.npz", ckpts / "epoch-001.npz")

    resumed = train_and_log(prepared, config, tracking_env.uri, resumed_id, run_dir=str(tmp_path / "resumed"))

    assert resumed.resumed_from_epoch == 1
    assert client.get_run(resumed_id).data.tags["mynn.resumed_from_epoch"] == "1"
    assert same_bits(Network.load(resumed.weights_path), Network.load(whole.weights_path))
    for epoch in (2, 3):
        name = f"epoch-{epoch:03d}.npz"
        assert same_bits(Network.load(ckpts / name), Network.load(tmp_path / "whole" / "checkpoints" / name))
    # only epochs 2 and 3 ran in the resumed run, with the same numbers as in the whole run
    whole_mse = {m.step: m.value for m in client.get_metric_history(whole_id, "train_mse")}
    resumed_mse = {m.step: m.value for m in client.get_metric_history(resumed_id, "train_mse")}
    assert resumed_mse == {2: whole_mse[2], 3: whole_mse[3]}
    assert [h["epoch"] for h in resumed.history] == [2, 3]


def test_a_checkpoint_of_another_config_is_not_resumed(tracking_env, prepared, tmp_path):
    config = NetworkConfig(hidden_nodes=20, learning_rate=0.3, epochs=2)
    _, first = new_run(tracking_env, config)
    train_and_log(prepared, config, tracking_env.uri, first, run_dir=tmp_path / "a")
    other = dataclasses.replace(config, learning_rate=0.1)
    _, second = new_run(tracking_env, other)
    (tmp_path / "b" / "checkpoints").mkdir(parents=True)
    shutil.copyfile(tmp_path / "a" / "checkpoints" / "epoch-001.npz", tmp_path / "b" / "checkpoints" / "epoch-001.npz")
    with pytest.raises(ResumeError, match="not a checkpoint of this run"):
        train_and_log(prepared, other, tracking_env.uri, second, run_dir=tmp_path / "b")


def test_a_run_stopped_between_an_epochs_files_and_its_metrics_logs_every_epoch_once(tracking_env, prepared,
                                                                                    tmp_path, monkeypatch):
    import tracking.training as recording

    config = NetworkConfig(hidden_nodes=20, learning_rate=0.3, epochs=3)
    client, run_id = new_run(tracking_env, config)
    run_dir = tmp_path / "run"
    write_stats, log_metrics = recording._write_json_atomic, recording.log_epoch_metrics

    def stop_writing_stats_of_epoch_2(path, stats):
        if stats["epoch"] == 2:
            raise KeyboardInterrupt("stopped (SIGTERM)")
        write_stats(path, stats)

    monkeypatch.setattr(recording, "_write_json_atomic", stop_writing_stats_of_epoch_2)
    with pytest.raises(KeyboardInterrupt):
        train_and_log(prepared, config, tracking_env.uri, run_id, run_dir=run_dir)
    # stopped before epoch 2's checkpoint: a resume trains epoch 2 again
    assert sorted(p.name for p in (run_dir / "checkpoints").glob("*.npz")) == ["epoch-001.npz"]
    monkeypatch.setattr(recording, "_write_json_atomic", write_stats)

    def stop_logging_epoch_3(client_, run_id_, stats):
        if stats["epoch"] == 3:
            raise KeyboardInterrupt("stopped (SIGTERM)")
        log_metrics(client_, run_id_, stats)

    monkeypatch.setattr(recording, "log_epoch_metrics", stop_logging_epoch_3)
    with pytest.raises(KeyboardInterrupt):
        train_and_log(prepared, config, tracking_env.uri, run_id, run_dir=run_dir)
    assert sorted(m.step for m in client.get_metric_history(run_id, "train_mse")) == [1, 2]
    monkeypatch.setattr(recording, "log_epoch_metrics", log_metrics)

    trained = train_and_log(prepared, config, tracking_env.uri, run_id, run_dir=run_dir)
    # epoch 3 was checkpointed but not logged: its metrics come from its stats file, once
    assert trained.resumed_from_epoch == 3
    assert sorted(m.step for m in client.get_metric_history(run_id, "train_mse")) == [1, 2, 3]
    assert same_bits(Network.load(trained.weights_path), fit_in_process(config, prepared))


def test_warming_the_kernels_loads_exactly_what_a_training_calls():
    """mynn.kernels.warm must dispatch the signatures fit uses (a read-only pixel array
    included), or the first training compiles again instead of finding them loaded. In a new
    process: this one's dispatchers already hold what earlier tests called."""
    import subprocess
    import sys

    code = """
from mynn import kernels
from mynn.config import NetworkConfig
from mynn.train import fit
from tests.datakit import synthetic
kernels.warm()
warmed = [len(kernels.sparse_inputs.signatures), len(kernels.train_epoch.signatures)]
ds = synthetic(20)
fit(NetworkConfig(hidden_nodes=7, learning_rate=0.1, epochs=1, seed=0), ds.pixels, ds.labels)
print(warmed, [len(kernels.sparse_inputs.signatures), len(kernels.train_epoch.signatures)])
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parent.parent).stdout.split("\n")[-2]
    assert out == "[1, 1] [1, 1]"


def test_trainings_on_one_read_only_dataset_share_its_derived_inputs_and_train_the_same():
    """The sparse and scaled inputs of a loaded (read-only) dataset are built once and shared;
    the networks are bit-identical to ones trained from writable copies, which share nothing."""
    from mynn import train as train_module
    from mynn.config import NetworkConfig
    from mynn.train import fit
    from tests.datakit import synthetic

    ds, test = synthetic(30, seed=1), synthetic(10, seed=2)
    cfg = NetworkConfig(hidden_nodes=6, learning_rate=0.2, epochs=2, seed=3)
    before = set(train_module._DERIVED)
    shared = [fit(cfg, ds.pixels, ds.labels, (test.pixels, test.labels))[0] for _ in range(2)]
    added = set(train_module._DERIVED) - before
    assert {kind for _, kind, _ in added} == {"sparse", "scaled"} and len(added) == 2
    copies = fit(cfg, ds.pixels.copy(), ds.labels, (test.pixels.copy(), test.labels))[0]
    assert set(train_module._DERIVED) - before == added
    for net in shared:
        assert np.array_equal(net.wih, copies.wih) and np.array_equal(net.who, copies.who)
    del ds, test, shared
    import gc

    gc.collect()
    assert not added & set(train_module._DERIVED)  # dropped with the arrays
