"""Prefect task retries on the steps that talk to the network or the tracking server: a real
HTTP server on 127.0.0.1 that fails for longer than the downloader's own retries, Prefect's
test harness, real MLflow clients. Only what a later attempt may cure is retried, and a retried
registration does not make a second version."""
from __future__ import annotations

import warnings

import pytest
from mlflow import MlflowClient

from tests.fetchkit import csv_bytes, sha256  # (its fixtures server and cache: conftest's plugins)
from tests.httpserver import HttpState
from tests.servers import free_port
from mynn.sources import DigestMismatchError, FetchError
from tracking.store import is_transient


def _serve_two_files(server: HttpState) -> None:
    server.files["/mnist_train.csv"] = csv_bytes(30, 1)
    server.files["/mnist_test.csv"] = csv_bytes(10, 2)
    for name in ("/mnist_train.csv.gz", "/mnist_test.csv.gz"):
        server.actions[name] = ["status:404"]  # (plain files only: the .gz is asked first)


def test_a_download_failing_longer_than_the_downloaders_retries_is_retried_by_prefect(server, cache,
                                                                                     prefect_harness):
    from prefect import flow

    from flows.tasks import download

    _serve_two_files(server)
    server.actions["/mnist_train.csv"] = ["status:503"] * 4  # the downloader's 4 attempts all fail

    @flow
    def fetch_it():
        return download(server.base, str(cache))

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # (unpinned plain-HTTP download: warned about elsewhere)
        result = fetch_it()
    assert result.train.sha256 == sha256(server.files["/mnist_train.csv"])
    assert server.count("/mnist_train.csv") == 4 + 1  # four in the first task run, one in the retry


def test_a_missing_file_is_not_retried(server, cache, prefect_harness):
    from prefect import flow

    from flows.tasks import download

    _serve_two_files(server)
    server.actions["/mnist_train.csv"] = ["status:404"] * 10

    @flow
    def fetch_it():
        return download(server.base, str(cache))

    with pytest.raises(FetchError, match="mnist_train"):
        fetch_it()
    assert server.count("/mnist_train.csv") == 1  # neither the downloader nor Prefect asked again


def test_what_is_transient_and_what_is_not(monkeypatch):
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    with pytest.raises(Exception) as away:  # a tracking server that is not there
        MlflowClient(f"http://127.0.0.1:{free_port()}").search_experiments()
    assert is_transient(away.value)
    assert is_transient(FetchError("x: giving up after 4 attempts: HTTP 503", "x", transient=True))
    assert not is_transient(FetchError("x: HTTP 403 Forbidden", "x"))
    assert not is_transient(DigestMismatchError("x", "a" * 64, "b" * 64))
    assert not is_transient(ValueError("learning rate must be > 0"))
    from mlflow.exceptions import MlflowException

    assert not is_transient(MlflowException("RESOURCE_DOES_NOT_EXIST: no such run"))


def test_a_registration_made_again_for_the_same_run_returns_its_version(tracking_env):
    from tests.test_registry import GOOD, prepared as _prepared, train_and_evaluate  # noqa: F401
    from mynn.fetch import fetch
    from mynn.prepare import prepare_fetched
    from tracking import registry

    data = prepare_fetched(fetch("shipped-small", tracking_env.cache), tracking_env.cache)
    client, run_id, trained, ev = train_and_evaluate(tracking_env, GOOD, data)
    first = registry.register_run(tracking_env.uri, run_id, trained.weights_path, data, ev.performance,
                                  model_name="again", model_uri=trained.model_uri)
    again = registry.register_run(tracking_env.uri, run_id, trained.weights_path, data, ev.performance,
                                  model_name="again", model_uri=trained.model_uri)
    assert again == first
    assert [str(v.version) for v in client.search_model_versions("name = 'again'")] == ["1"]
