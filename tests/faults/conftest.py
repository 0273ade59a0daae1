"""Fixtures of the fault suite; its helpers are in faultkit.py. The fixtures of
``tests/conftest.py`` (``tracking_env``, ``prefect_harness``, ``small_train``, ``small_test``)
apply here too."""
from __future__ import annotations


import pytest




@pytest.fixture
def no_proxy(monkeypatch):
    for var in ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")


@pytest.fixture
def http_server(no_proxy, server):
    """A misbehaving-on-demand HTTP server on 127.0.0.1 (httpserver.HttpState): the shared
    ``server`` fixture of tests/fetchkit.py, with NO_PROXY set too."""
    return server


@pytest.fixture
def no_backoff(monkeypatch):
    """Retries happen for real; only their sleeps are recorded instead of slept."""
    from mynn import download

    slept: list[float] = []
    monkeypatch.setattr(download.time, "sleep", slept.append)
    return slept
