"""Shared fixtures. The book's small subsets ship in data/mnist, so nothing here needs more."""
from __future__ import annotations

import os

import numpy as np
import pytest

from mynn import paths

# Fixtures shared by the data-layer tests: the HTTP server, the cache folder, a synthetic source
# folder (tests/fetchkit.py) and the shipped 100 records' lines (tests/datakit.py).
pytest_plugins = ["tests.fetchkit", "tests.datakit"]

os.environ.setdefault("DO_NOT_TRACK", "true")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")


@pytest.fixture(scope="session")
def small_train() -> tuple[np.ndarray, np.ndarray]:
    """The book's 100 training records: (pixels (100, 784) uint8, labels (100,) uint8)."""
    d = np.loadtxt(paths.data_dir() / "mnist_train_100.csv", delimiter=",", dtype=np.uint8)
    return d[:, 1:].copy(), d[:, 0].copy()


@pytest.fixture(scope="session")
def small_test() -> tuple[np.ndarray, np.ndarray]:
    """The book's 10 test records: (pixels (10, 784) uint8, labels (10,) uint8)."""
    d = np.loadtxt(paths.data_dir() / "mnist_test_10.csv", delimiter=",", dtype=np.uint8)
    return d[:, 1:].copy(), d[:, 0].copy()


# ----------------------------------------------------------------------------- tasks and flow
# Fixtures of tests/test_tasks.py and tests/test_flow.py: a real SQLite MLflow store per test,
# the cache and runs folders under tmp_path, and one Prefect test server per session.


@pytest.fixture(scope="session")
def _empty_mlflow_db(tmp_path_factory) -> "os.PathLike":
    """A SQLite MLflow store with its schema created once per session (creating the schema
    takes about a second); each test gets a copy of this file, see ``tracking_env``."""
    from mlflow import MlflowClient

    db = tmp_path_factory.mktemp("mlflow-template") / "mlflow.db"
    client = MlflowClient(tracking_uri=f"sqlite:///{db}", registry_uri=f"sqlite:///{db}")
    client.search_experiments()  # creates the tables
    client.search_registered_models()
    return db


@pytest.fixture
def tracking_env(tmp_path, monkeypatch, _empty_mlflow_db):
    """MLFLOW_TRACKING_URI (a fresh real SQLite store in tmp_path), MYNN_CACHE_DIR and
    MYNN_RUNS_DIR under tmp_path; returns them as attributes uri, db, cache, runs."""
    import shutil
    from types import SimpleNamespace

    db = tmp_path / "mlflow.db"
    shutil.copyfile(_empty_mlflow_db, db)
    env = SimpleNamespace(uri=f"sqlite:///{db}", db=db, cache=tmp_path / "cache", runs=tmp_path / "runs")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", env.uri)
    monkeypatch.delenv("MLFLOW_REGISTRY_URI", raising=False)
    monkeypatch.setenv("MYNN_CACHE_DIR", str(env.cache))
    monkeypatch.setenv("MYNN_RUNS_DIR", str(env.runs))
    return env


@pytest.fixture(scope="session")
def prefect_harness():
    """One temporary Prefect server and database for the whole session (about 10 s to start; on
    a loaded 2-core machine over 30 s, Prefect's default limit, so the limit only bounds a hang)."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=300):
        yield
