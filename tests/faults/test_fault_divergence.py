"""Case 5: training that produces NaN stops with TrainingDivergedError naming the epoch; at the
flow level the MLflow run ends FAILED and nothing is registered.

The book's rule does not diverge on its own: its sigmoids saturate, so the updates stay
bounded (at the largest learning rate allowed, 100, on the 100 records, the largest weight
after 3 epochs is about 50 with the book's rule, 7 with exact backprop, 1,400 with summed
mini-batches of 100; and a checkpoint at +-1e200 only saturates). What does reach NaN is a
run resumed from a checkpoint whose weights are finite (so ``Network.load`` accepts them)
but huge, +-1e308: the first product overflows to inf, inf - inf and 0 * inf make NaN in the
first resumed epoch. That is the path used here, for real, through the train task and
through the flow's ``resume`` (which reopens an interrupted run and continues from its last
checkpoint)."""
from __future__ import annotations

import numpy as np
import pytest
from mlflow import MlflowClient

from flows import tasks
from flows.params import TrainConfig
from flows.train_flow import train_flow
from mynn import paths
from mynn.config import NetworkConfig
from mynn.network import Network
from mynn.train import TrainingDivergedError
from tracking.runs import end_run, start_run
from tracking.store import ensure_experiment

CONFIG = NetworkConfig(hidden_nodes=20, learning_rate=0.3, epochs=3)


def _huge_checkpoint(path) -> None:
    """Finite weights at the edge of float64: +-1e308, the signs of the seeded start."""
    start = Network.initial(CONFIG)
    Network(CONFIG, np.sign(start.wih) * 1e308, np.sign(start.who) * 1e308).save(path)
    assert np.isfinite(Network.load(path).wih).all()  # a valid weights file


def test_the_train_task_stops_naming_the_epoch(tracking_env, tmp_path):
    data = tasks.preprocess.fn(tasks.download.fn("shipped-small"))
    client, exp = ensure_experiment(tracking_env.uri, "faults")
    run_id = start_run(client, exp, CONFIG)
    run_dir = tmp_path / "run"
    _huge_checkpoint(run_dir / "checkpoints" / "epoch-001.npz")
    with np.errstate(over="ignore", invalid="ignore"), \
            pytest.raises(TrainingDivergedError, match=r"training diverged in epoch 2: NaN or inf in the "
                                                       r"weights or the error \(learning rate 0\.3\)") as info:
        tasks.train.fn(data, CONFIG, tracking_env.uri, run_id, run_dir=str(run_dir))
    assert info.value.epoch == 2
    assert sorted(p.name for p in (run_dir / "checkpoints").glob("*.npz")) == ["epoch-001.npz"]
    assert not (run_dir / "weights.npz").exists()
    assert MlflowClient(tracking_env.uri).get_metric_history(run_id, "train_mse") == []  # no NaN logged


@pytest.mark.usefixtures("prefect_harness")
def test_the_flow_ends_the_run_failed_and_registers_nothing(tracking_env):
    client, exp = ensure_experiment(tracking_env.uri, "diverge")
    run_id = start_run(client, exp, CONFIG)  # an interrupted run of this config ...
    end_run(client, run_id, "KILLED")
    _huge_checkpoint(paths.runs_dir() / run_id / "checkpoints" / "epoch-001.npz")  # ... left this checkpoint

    with np.errstate(over="ignore", invalid="ignore"), \
            pytest.raises(TrainingDivergedError, match="training diverged in epoch 2"):
        train_flow(config=TrainConfig(**CONFIG.to_dict()), source="shipped-small", model_name="diverged",
                   experiment="diverge", resume=run_id)

    client = MlflowClient(tracking_env.uri, registry_uri=tracking_env.uri)
    run = client.get_run(run_id)
    assert run.info.status == "FAILED"
    assert run.data.tags["mynn.resumed_from_epoch"] == "1"
    assert run.data.tags["mynn.failure"].startswith("TrainingDivergedError: training diverged in epoch 2")
    assert "mynn.model_version" not in run.data.tags and "performance" not in run.data.metrics
    assert client.search_registered_models() == [] and client.search_model_versions() == []
    assert [a.path for a in client.list_artifacts(run_id)] == []  # no weights, no model
