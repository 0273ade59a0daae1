"""tracking.models: the run's network as an MLflow 3 LoggedModel, against a real SQLite store.

Saving raises no warning, a model that fails half-way leaves nothing in the Models tab, and a
version registered the MLflow 2 way (a run's ``model/`` artifact) on a used machine's store is
still read and compared with."""
from __future__ import annotations

import tempfile
import warnings
from pathlib import Path

import numpy as np
import pytest
from mlflow import MlflowClient

from mynn.config import NetworkConfig
from mynn.csvfile import read_csv
from mynn.encoding import scale_inputs
from mynn.network import Network
from mynn.paths import data_dir
from mynn.train import fit
from tracking import flavour, models, registry
from tracking.runs import end_run, start_run
from tracking.store import ensure_experiment

CFG = NetworkConfig(hidden_nodes=20, learning_rate=0.3, epochs=2)


@pytest.fixture
def env(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    _, exp = ensure_experiment(uri, "models")
    train = read_csv(data_dir() / "mnist_train_100.csv")
    test = read_csv(data_dir() / "mnist_test_10.csv")
    net, _ = fit(CFG, train.pixels, train.labels)
    weights = net.save(tmp_path / "weights.npz")
    return MlflowClient(uri, registry_uri=uri), exp, weights, test, net


def test_logging_a_model_raises_no_warning_and_reads_back_bit_for_bit(env):
    client, exp, weights, test, net = env
    run_id = start_run(client, exp, CFG)
    import mlflow.pyfunc  # noqa: F401 - (importing it warns about a type hint of MLflow's own, once)

    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # e.g. MLflow's "Inferred schema contains integer column(s)"
        uri = models.log_model(client, run_id, weights, test.pixels[:2], step=CFG.epochs)
    end_run(client, run_id, "FINISHED")
    back = models.load_network(client, uri, weights_sha256=models.sha256_file(weights))
    assert back.wih.tobytes() == net.wih.tobytes() and back.who.tobytes() == net.who.tobytes()
    model = client.get_logged_model(models.model_id(uri))
    assert (str(model.status), model.model_type, model.tags["weights_sha256"]) == ("READY", "mynn",
                                                                                   models.sha256_file(weights))
    with tempfile.TemporaryDirectory() as tmp:
        from mlflow.artifacts import download_artifacts

        local = Path(download_artifacts(artifact_uri=model.artifact_location, dst_path=tmp,
                                        tracking_uri=client.tracking_uri))
        mlmodel = (local / "MLmodel").read_text()
        assert f"model_id: {model.model_id}" in mlmodel and "inputs: '[{\"type\": \"tensor\"" in mlmodel
        reqs = sorted(line.split("==")[0] for line in (local / "requirements.txt").read_text().split())
    assert reqs == ["mlflow", "numpy", "pandas", "scipy"]  # what inference imports: no numba, no threadpoolctl


def test_a_model_that_fails_half_way_is_deleted(env, tmp_path):
    client, exp, weights, test, _ = env
    run_id = start_run(client, exp, CFG)
    with pytest.raises(Exception, match="784"):  # an input example that is not 784 pixels: refused by MLflow
        models.log_model(client, run_id, weights, test.pixels[:2, :100])
    assert client.search_logged_models(experiment_ids=[exp]) == []
    with pytest.raises(Exception):  # weights that are not a network: refused before anything is created
        models.log_model(client, run_id, tmp_path / "missing.npz", test.pixels[:2])
    assert client.search_logged_models(experiment_ids=[exp]) == []


def test_a_version_registered_the_mlflow_2_way_is_still_loaded_and_compared_with(env):
    """A used machine: its champion was registered from a run's ``model/`` artifact, before
    LoggedModels. It is read from there (its weights digest checked) and a new version is compared
    with it on the same test records."""
    client, exp, weights, test, net = env
    old_run = start_run(client, exp, CFG)
    with tempfile.TemporaryDirectory() as tmp:
        path = flavour.save_model(weights, Path(tmp) / "model", test.pixels[:2])
        client.log_artifacts(old_run, str(path), "model")
    end_run(client, old_run, "FINISHED")
    source = f"{client.get_run(old_run).info.artifact_uri.rstrip('/')}/model"
    client.create_registered_model("legacy")
    mv = client.create_model_version("legacy", source=source, run_id=old_run,
                                     tags={registry.TAG_WEIGHTS_SHA256: models.sha256_file(weights),
                                           "mynn.promotion": "promoted: no 'champion' yet"})
    client.set_registered_model_alias("legacy", "champion", mv.version)
    old = registry.load_version_network(client, "legacy", "1")
    assert old.wih.tobytes() == net.wih.tobytes()

    other = Network.initial(NetworkConfig(**{**CFG.to_dict(), "seed": 5}))  # untrained: worse
    other_weights = other.save(weights.parent / "other" / "weights.npz")
    new_run = start_run(client, exp, CFG)
    uri = models.log_model(client, new_run, other_weights, test.pixels[:2])
    perf = other.performance(scale_inputs(test.pixels), test.labels)
    reg = registry.register(client, new_run, "legacy", uri, performance=perf, test_pixels=test.pixels,
                            test_labels=test.labels, test_digest="t" * 64, network=other_weights,
                            promotion="at-least")
    champion_perf = net.performance(scale_inputs(test.pixels), test.labels)
    assert (reg.version, reg.champion_version, reg.champion_performance) == ("2", "1", champion_perf)
    assert reg.promoted == (perf >= champion_perf)
    assert np.isclose(registry.load_version_network(client, "legacy", "2").who, other.who).all()
