"""The champion is found by a name (an alias): what it stands for is checked before a
registration relies on it.

- A new version tested on other data than the champion is not promoted over it; the decision
  names both data digests on the run and the version (a Fashion-MNIST model is never read as a
  better digit model).
- A champion trained on other training data, tested on the same test set, is compared as
  usual, and the decision says the training data differ.
- A champion whose weights are not the bytes registered is refused, and the new version is
  not left behind without a decision."""
from __future__ import annotations

import pytest
from mlflow import MlflowClient

from tests.faults.faultkit import SHIPPED
from mynn.config import NetworkConfig
from mynn.csvfile import read_csv
from mynn.dataset import Dataset
from mynn.encoding import scale_inputs
from mynn.network import Network
from mynn.train import fit
from tracking.registry import log_model, register
from tracking.runs import end_run, start_run
from tracking.store import ensure_experiment

CFG = NetworkConfig(hidden_nodes=30, learning_rate=0.3, epochs=3)


@pytest.fixture
def store(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client, exp = ensure_experiment(uri, "champions")
    return MlflowClient(uri, registry_uri=uri), exp, tmp_path


def _register(store, name: str, train: Dataset, test: Dataset, seed: int = 0):
    client, exp, root = store
    cfg = NetworkConfig(**{**CFG.to_dict(), "seed": seed})
    net, _ = fit(cfg, train.pixels, train.labels)
    weights = net.save(root / f"{name}-{seed}-{train.digest[:6]}" / "weights.npz")
    run_id = start_run(client, exp, cfg)
    uri = log_model(client, run_id, weights, test.pixels[:2])
    end_run(client, run_id, "FINISHED")
    perf = net.performance(scale_inputs(test.pixels), test.labels)
    reg = register(client, run_id, name, uri, performance=perf, test_pixels=test.pixels, test_labels=test.labels,
                   test_digest=test.digest, network=weights, promotion="at-least", train_digest=train.digest)
    return reg, run_id


@pytest.fixture(scope="module")
def digits():
    return read_csv(SHIPPED / "mnist_train_100.csv"), read_csv(SHIPPED / "mnist_test_10.csv")


def _other(ds: Dataset) -> Dataset:
    """Another data set of the same size: the images mirrored left to right (a stand-in for
    Fashion-MNIST: other pixels, other meaning)."""
    return Dataset(ds.labels.copy(), ds.pixels.reshape(-1, 28, 28)[:, :, ::-1].reshape(-1, 784).copy(), "other")


def test_a_version_tested_on_other_data_is_not_promoted_over_the_champion(store, digits):
    train, test = digits
    client = store[0]
    first, _ = _register(store, "digits", train, test)
    assert first.promoted
    other_train, other_test = _other(train), _other(test)
    second, run_id = _register(store, "digits", other_train, other_test, seed=1)
    assert not second.promoted
    assert "trained and tested on other data" in second.reason
    for digest in (train.digest, test.digest, other_train.digest, other_test.digest):
        assert digest[:12] in second.reason
    version = client.get_model_version("digits", second.version)
    run = client.get_run(run_id)
    for tags in (version.tags, run.data.tags):
        assert tags["mynn.data_differs"] == "train,test"
        assert tags["mynn.champion_train_digest"] == train.digest
        assert tags["mynn.champion_test_digest"] == test.digest
    assert version.tags["train_digest"] == other_train.digest and version.tags["test_digest"] == other_test.digest
    assert str(client.get_model_version_by_alias("digits", "champion").version) == first.version


def test_a_champion_trained_on_other_data_is_compared_on_the_same_test_set_and_said_so(store, digits):
    train, test = digits
    client = store[0]
    first, _ = _register(store, "digits", train, test)
    half = Dataset(train.labels[:50].copy(), train.pixels[:50].copy(), "half")
    second, run_id = _register(store, "digits", half, test, seed=2)
    assert "note: trained on other training data" in second.reason
    assert client.get_model_version("digits", second.version).tags["mynn.data_differs"] == "train"
    assert client.get_run(run_id).data.tags["mynn.data_differs"] == "train"
    assert second.champion_version == first.version  # compared, by the at-least rule
    assert second.promoted == (second.performance >= second.champion_performance)


def test_a_champion_whose_weights_changed_is_refused_and_no_version_is_left(store, digits):
    from pathlib import Path

    from mlflow.models import Model

    train, test = digits
    client, _, root = store
    first, first_run = _register(store, "digits", train, test)
    # replace the champion's registered weights with other (valid) weights
    model_dir = Path(client.get_model_version("digits", "1").source.removeprefix("file://"))  # its LoggedModel's files
    weights = model_dir / Model.load(str(model_dir)).flavors["python_function"]["data"] / "weights.npz"
    Network.initial(NetworkConfig(**{**CFG.to_dict(), "seed": 7})).save(weights)
    with pytest.raises(ValueError, match=r"model 'digits' version 1: its weights .* have sha256 [0-9a-f]{64}, "
                                         r"not the [0-9a-f]{64} recorded when it was registered"):
        _register(store, "digits", train, test, seed=3)
    assert [str(v.version) for v in client.search_model_versions("name = 'digits'")] == ["1"]
    assert str(client.get_model_version_by_alias("digits", "champion").version) == "1"
