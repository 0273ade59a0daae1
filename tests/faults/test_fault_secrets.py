"""Case 9 (data source): a source URL with credentials, ``http://user:secret@127.0.0.1:PORT/``.
The credentials are used (the test server refuses requests without them) but never recorded:
not in a parameter, tag, dataset input, artifact or model version of the run, not in an error
message that becomes the run's failure tag. (The tracking URI with a password is in
test_fault_servers.py: it needs a real MLflow server.)"""
from __future__ import annotations

import warnings

import pytest
from mlflow import MlflowClient

from tests.faults.faultkit import TEST_10, TRAIN_100, recorded_text
from flows import tasks
from flows.params import TrainConfig
from flows.train_flow import train_flow
from mynn import fetch as F
from mynn import sources as S
from mynn.config import NetworkConfig
from tracking.runs import start_run
from tracking.store import ensure_experiment, run_ui_url

SECRET = "s3cr3t-pass"


@pytest.fixture
def private_server(http_server):
    http_server.files["/mnist_train.csv"] = TRAIN_100.read_bytes()
    http_server.files["/mnist_test.csv"] = TEST_10.read_bytes()
    http_server.auth = f"user:{SECRET}"
    http_server.private = http_server.base.replace("http://", f"http://user:{SECRET}@")
    return http_server


def test_redact_url():
    assert S.redact_url(f"http://user:{SECRET}@127.0.0.1:8/a/") == "http://***@127.0.0.1:8/a/"
    assert S.redact_url(f"https://{SECRET}@host/x", mask="") == "https://host/x"
    assert S.redact_url(f"postgresql://mlflow:{SECRET}@db:5432/mlflow") == "postgresql://***@db:5432/mlflow"
    for plain in ("shipped", "/data/a@b/mnist", "http://host/path@x", "file:///tmp/m"):
        assert S.redact_url(plain) == plain
    assert SECRET not in run_ui_url(f"http://u:{SECRET}@127.0.0.1:5000", "1", "abc")
    source = S.resolve_source(f"http://user:{SECRET}@127.0.0.1:8/m")
    assert SECRET not in repr(source) and source.auth == ("user", SECRET)
    assert source.url("mnist_train.csv") == "http://127.0.0.1:8/m/mnist_train.csv"


def test_credentials_are_sent_but_not_recorded_by_the_tasks(private_server, tracking_env, tmp_path):
    with pytest.warns(F.UnverifiedDownloadWarning) as warned:
        downloaded = tasks.download.fn(private_server.private)
    assert all(a is not None and a.startswith("Basic ") for a in private_server.authorizations)  # sent
    assert SECRET not in " ".join(str(w.message) for w in warned)
    assert downloaded.source.spec == private_server.base.replace("http://", "http://***@")
    data = tasks.preprocess.fn(downloaded)
    client, exp = ensure_experiment(tracking_env.uri, "secrets")
    run_id = start_run(client, exp, NetworkConfig(hidden_nodes=5, epochs=1))
    tasks.log_data.fn(data, tracking_env.uri, run_id)
    recorded = recorded_text(client, run_id, tmp_path / "artifacts")
    assert recorded["param source"] == downloaded.source.spec
    assert [where for where, text in recorded.items() if SECRET in text] == []


def test_a_wrong_password_fails_without_showing_it(private_server, tmp_path):
    wrong = private_server.base.replace("http://", "http://user:not-the-pass@")
    with warnings.catch_warnings(), pytest.raises(F.FetchError, match=r"HTTP 401") as info:
        warnings.simplefilter("ignore")
        tasks.download.fn(wrong, cache_dir=str(tmp_path / "cache"))
    assert "not-the-pass" not in str(info.value) and info.value.url.startswith(private_server.base)


@pytest.mark.usefixtures("prefect_harness")
def test_a_whole_flow_records_no_credentials(private_server, tracking_env, tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", F.UnverifiedDownloadWarning)
        summary = train_flow(config=TrainConfig(hidden_nodes=10, epochs=1), source=private_server.private,
                             model_name="secret-model", experiment="secrets")
    client = MlflowClient(tracking_env.uri, registry_uri=tracking_env.uri)
    recorded = recorded_text(client, summary["run_id"], tmp_path / "artifacts")
    assert recorded["param source"].startswith("http://***@127.0.0.1:")
    assert any(where.startswith("model version secret-model/") for where in recorded)  # all was looked at
    assert any(where.startswith("model artifact MLmodel") for where in recorded)  # the LoggedModel's files
    assert [where for where, text in recorded.items() if SECRET in text] == []
    assert SECRET not in repr(summary)
