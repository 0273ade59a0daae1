"""The validation set and early stopping (issue #15): the split, what fit trains on, where it
stops and which weights it keeps, and what a tracked run records (a real SQLite MLflow store).
The references are independent: a training on the explicitly chosen records, and a plain run of
the best epoch's length."""
from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
from mlflow import MlflowClient

from flows import tasks
from flows.training import train_and_log
from mynn import paths
from mynn.config import NetworkConfig
from mynn.encoding import scale_inputs
from mynn.network import Network
from mynn.train import best_epoch, fit
from mynn.validation import indices_digest, split, split_digest
from tracking.runs import start_run
from tracking.store import ensure_experiment
from tests.trainkit import same_bits

#: 100 records, 30 held out: stops at epoch 6 with its best at 4 (checked below, not assumed).
STOPS = NetworkConfig(hidden_nodes=20, learning_rate=0.3, epochs=20, seed=2, validation_records=30, patience=2)


# ------------------------------------------------------------------------------- the split


def test_the_split_is_disjoint_complete_sorted_and_drawn_by_the_seed():
    train, held = split(1000, 100, seed=3)
    assert len(held) == 100 and len(train) == 900
    assert not set(train) & set(held)
    assert np.array_equal(np.sort(np.concatenate([train, held])), np.arange(1000))
    assert np.all(np.diff(held) > 0) and np.all(np.diff(train) > 0)
    again_train, again_held = split(1000, 100, seed=3)
    assert np.array_equal(held, again_held) and np.array_equal(train, again_train)
    other = split(1000, 100, seed=4)[1]
    assert not np.array_equal(held, other)
    assert indices_digest(held) == indices_digest(again_held) != indices_digest(other)
    # spread over the file, not its first records
    assert held.max() > 500 and held.min() < 500


def test_the_split_digest_names_the_data_and_the_records():
    d = split_digest("a" * 64, 1000, 100, 3)
    assert d == split_digest("a" * 64, 1000, 100, 3)
    assert len({d, split_digest("b" * 64, 1000, 100, 3), split_digest("a" * 64, 1000, 100, 4),
                split_digest("a" * 64, 1000, 101, 3)}) == 4


@pytest.mark.parametrize("k", [0, 100, 101])
def test_a_split_that_leaves_no_training_record_is_refused(k):
    with pytest.raises(ValueError, match=f"validation_records {k} must be between 1 and 99"):
        split(100, k, seed=0)


def test_patience_needs_a_validation_set():
    with pytest.raises(ValueError, match="patience: 3 needs a validation set"):
        NetworkConfig(patience=3)


def test_the_validation_draw_leaves_the_initial_weights_alone():
    a, b = Network.initial(NetworkConfig(hidden_nodes=10)), Network.initial(NetworkConfig(hidden_nodes=10,
                                                                                          validation_records=5))
    assert np.array_equal(a.wih, b.wih) and np.array_equal(a.who, b.who)


# ------------------------------------------------------------------------------------ fit


def test_fit_trains_on_the_other_records_in_file_order_and_scores_the_held_out_ones(small_train):
    pixels, labels = small_train
    cfg = NetworkConfig(hidden_nodes=15, learning_rate=0.3, epochs=3, seed=1, validation_records=25)
    net, history = fit(cfg, pixels, labels)
    train, held = split(100, 25, seed=1)
    plain = dataclasses.replace(cfg, validation_records=0)
    ref, _ = fit(plain, pixels[train], labels[train])
    assert ref.wih.tobytes() == net.wih.tobytes() and ref.who.tobytes() == net.who.tobytes()
    # and not the same as training on all 100
    everything, _ = fit(plain, pixels, labels)
    assert everything.wih.tobytes() != net.wih.tobytes()
    assert history[-1].validation_performance == ref.performance(scale_inputs(pixels[held], "float64"), labels[held])
    assert all(h.validation_performance is not None for h in history)


def test_early_stopping_keeps_the_best_epoch_bit_identical_to_a_run_of_that_length(small_train):
    pixels, labels = small_train
    net, history = fit(STOPS, pixels, labels)
    best, stopped = best_epoch(history), history[-1].epoch
    assert (best, stopped) == (4, 6)  # it did stop early, and not at its best epoch
    scores = [h.validation_performance for h in history]
    assert max(scores[best:]) <= scores[best - 1]  # no later epoch was better
    shorter, _ = fit(dataclasses.replace(STOPS, epochs=best, patience=0), pixels, labels)
    assert shorter.wih.tobytes() == net.wih.tobytes() and shorter.who.tobytes() == net.who.tobytes()
    last, _ = fit(dataclasses.replace(STOPS, epochs=stopped, patience=0), pixels, labels)
    assert last.wih.tobytes() != net.wih.tobytes()  # the epochs after the best were trained, then dropped
    # a run as long as the best epoch stops nowhere earlier and keeps the same weights
    same, _ = fit(dataclasses.replace(STOPS, epochs=best), pixels, labels)
    assert same.wih.tobytes() == net.wih.tobytes() and same.who.tobytes() == net.who.tobytes()


def test_a_resumed_run_with_early_stopping_stops_and_keeps_as_an_uninterrupted_one(small_train):
    pixels, labels = small_train
    whole, whole_history = fit(STOPS, pixels, labels)
    kept = {}

    def stop_after_5(stats, net):
        kept[stats.epoch] = (stats.validation_performance, net.copy())
        return True if stats.epoch == 5 else None
    _, first = fit(STOPS, pixels, labels, callback=stop_after_5)
    assert first[-1].epoch == 5
    best = best_epoch(first)
    resumed, rest = fit(STOPS, pixels, labels, network=kept[5][1], start_epoch=5,
                        best=(best, kept[best][0], kept[best][1]))
    assert [h.epoch for h in rest] == [6]
    assert resumed.wih.tobytes() == whole.wih.tobytes() and resumed.who.tobytes() == whole.who.tobytes()
    assert [h.validation_performance for h in first + rest] == [h.validation_performance for h in whole_history]


# ----------------------------------------------------------------------------- tracked runs


def test_a_tracked_run_records_its_validation_set_scores_and_the_epoch_it_kept(tracking_env):
    data = tasks.preprocess.fn(tasks.download.fn("shipped-small"))
    client, exp_id = ensure_experiment(tracking_env.uri, "t-validation")
    run_id = start_run(client, exp_id, STOPS)
    trained = train_and_log(data, STOPS, tracking_env.uri, run_id)
    run = client.get_run(run_id)
    assert run.data.tags["mynn.best_epoch"] == "4" and run.data.tags["mynn.stopped_epoch"] == "6"
    assert run.data.params["validation_records"] == "30" and run.data.params["patience"] == "2"
    assert run.data.params["validation_digest"] == split_digest(data.train.digest, 100, 30, 2)
    inputs = {i.dataset.name: i for i in run.inputs.dataset_inputs}
    held = inputs["mnist_train_100-validation"]
    assert [t.value for t in held.tags if t.key == "mlflow.data.context"] == ["validation"]
    assert json.loads(held.dataset.profile)["num_rows"] == 30
    val = sorted(client.get_metric_history(run_id, "validation_performance"), key=lambda m: m.step)
    assert [m.step for m in val] == [1, 2, 3, 4, 5, 6]
    assert run.data.metrics["model_validation_performance"] == val[3].value == max(m.value for m in val)
    # the weights logged are the best epoch's checkpoint, and the run's score is theirs
    saved = Network.load(trained.weights_path)
    ckpt = Network.load(tracking_env.runs / run_id / "checkpoints" / "epoch-004.npz")
    assert same_bits(saved, ckpt)
    perf = {m.step: m.value for m in client.get_metric_history(run_id, "epoch_performance")}
    assert trained.performance == perf[4] and trained.best_epoch == 4 and trained.stopped_epoch == 6
    assert MlflowClient(tracking_env.uri).get_run(run_id).data.metrics["timing/records_per_s"] > 0


def test_an_interrupted_tracked_run_with_early_stopping_resumes_to_the_same_weights(tracking_env):
    data = tasks.preprocess.fn(tasks.download.fn("shipped-small"))
    client, exp_id = ensure_experiment(tracking_env.uri, "t-validation-resume")
    whole = train_and_log(data, STOPS, tracking_env.uri, start_run(client, exp_id, STOPS))

    class Stop(Exception):
        pass

    def crash_after_5(epoch):
        if epoch == 5:
            raise Stop
    run_id = start_run(client, exp_id, STOPS)
    with pytest.raises(Stop):  # epochs 1..5 recorded (checkpoints and metrics), then the process "dies"
        train_and_log(data, STOPS, tracking_env.uri, run_id, on_epoch=crash_after_5)
    assert not (tracking_env.runs / run_id / "weights.npz").exists()
    resumed = train_and_log(data, STOPS, tracking_env.uri, run_id)
    assert resumed.resumed_from_epoch == 5
    assert (resumed.best_epoch, resumed.stopped_epoch) == (whole.best_epoch, whole.stopped_epoch) == (4, 6)
    assert same_bits(Network.load(resumed.weights_path), Network.load(whole.weights_path))
    run = client.get_run(run_id)
    assert run.data.tags["mynn.best_epoch"] == "4" and run.data.tags["mynn.stopped_epoch"] == "6"
    assert [m.step for m in client.get_metric_history(run_id, "validation_performance")] == [1, 2, 3, 4, 5, 6]


def test_the_train_flow_with_early_stopping_evaluates_and_registers_the_best_epoch(tracking_env, prefect_harness):
    from flows.train_flow import train_flow

    cfg = dataclasses.asdict(STOPS)
    out = train_flow(config=cfg, source="shipped-small", experiment="t-validation-flow", promotion="at-least")
    assert (out["best_epoch"], out["stopped_epoch"]) == (4, 6)
    client = MlflowClient(tracking_env.uri)
    perf = {m.step: m.value for m in client.get_metric_history(out["run_id"], "epoch_performance")}
    assert out["performance"] == perf[4]  # the evaluate task scored the kept weights, not epoch 6's
    assert client.get_run(out["run_id"]).data.metrics["performance"] == perf[4]
    version = client.get_model_version("mynn", out["model_version"])
    assert version.run_id == out["run_id"]
    ckpt = Network.load(tracking_env.runs / out["run_id"] / "checkpoints" / "epoch-004.npz")
    import mlflow

    mlflow.set_tracking_uri(tracking_env.uri)
    model = mlflow.pyfunc.load_model(f"models:/mynn/{out['model_version']}")
    rows = np.loadtxt(paths.data_dir() / "mnist_test_10.csv", delimiter=",", dtype=np.uint8)[:, 1:]
    outputs = model.predict(rows.astype(np.float64))[[f"output_{d}" for d in range(10)]].to_numpy()  # (10, 10)
    x = scale_inputs(rows, "float64")
    assert np.allclose(outputs, ckpt.query(x), rtol=0, atol=1e-12)
    last = Network.load(tracking_env.runs / out["run_id"] / "checkpoints" / "epoch-006.npz")
    assert not np.allclose(outputs, last.query(x), rtol=0, atol=1e-6)  # not the last epoch's network


def test_resuming_with_early_stopping_without_the_best_epoch_is_refused(small_train):
    pixels, labels = small_train
    net, _ = fit(dataclasses.replace(STOPS, epochs=3, patience=0), pixels, labels)
    with pytest.raises(ValueError, match="needs the best epoch so far"):
        fit(STOPS, pixels, labels, network=Network(STOPS, net.wih, net.who), start_epoch=3)
