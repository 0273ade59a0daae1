"""tracking.store: the one MLflow client factory and its defaults, where artifacts go, run links."""
from __future__ import annotations

import os

from tracking import store


def test_the_client_applies_the_retry_bounds_unless_the_user_set_them(monkeypatch, tmp_path):
    for key in store.CLIENT_DEFAULTS:
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "7")  # the user's own value
    client = store.client(f"sqlite:///{tmp_path / 'm.db'}")
    assert client.tracking_uri == f"sqlite:///{tmp_path / 'm.db'}"
    assert os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] == "3"
    assert os.environ["MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR"] == "1"
    assert os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] == "7"
    from mlflow.environment_variables import MLFLOW_HTTP_REQUEST_MAX_RETRIES

    assert MLFLOW_HTTP_REQUEST_MAX_RETRIES.get() == 3  # what MLflow's HTTP layer reads per request


def test_artifacts_go_beside_a_sqlite_store_in_a_folder_named_by_digest(tmp_path):
    loc = store.artifact_location(f"sqlite:///{tmp_path / 'mlflow.db'}", "../../etc")
    assert loc.startswith((tmp_path / "mlartifacts").as_uri() + "/exp-") and ".." not in loc
    assert store.artifact_location("http://127.0.0.1:5000", "x") is None


def test_run_links_leave_credentials_out(monkeypatch):
    monkeypatch.delenv("MYNN_MLFLOW_UI_URL", raising=False)
    assert store.run_ui_url("https://me:secret@mlflow.example", "3", "abc") == \
        "https://mlflow.example/#/experiments/3/runs/abc?workflowType=machine_learning"
    assert store.run_ui_url("sqlite:///x.db", "1", "r") == "http://127.0.0.1:5000/#/experiments/1/runs/r?workflowType=machine_learning"
