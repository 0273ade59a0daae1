"""Each task of flows/tasks.py on its own, through ``task.fn(...)``: no orchestrator, but real
parts everywhere else: a real HTTP server on 127.0.0.1, the digest-keyed cache under tmp_path
and a real SQLite MLflow store (fixture ``tracking_env`` in conftest.py).
"""
from __future__ import annotations

import gzip
import hashlib
import http.server
import shutil
import threading
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
from mlflow import MlflowClient

from flows import tasks
from mynn import paths
from mynn.config import NetworkConfig
from mynn.arrays import load_npy
from mynn.dataset import KNOWN_DIGESTS, DataFormatError
from mynn.encoding import scale_inputs
from mynn.fetch import FetchResult, UnverifiedDownloadWarning
from mynn.sources import known_digests
from mynn.network import Network
from tests.trainkit import fit_in_process, same_bits
from mynn.prepare import PreparedData, prepare
from tracking.runs import start_run
from tracking.store import ensure_experiment

SHIPPED = paths.data_dir()
TRAIN_100 = SHIPPED / "mnist_train_100.csv"
TEST_10 = SHIPPED / "mnist_test_10.csv"
GOOD = NetworkConfig(hidden_nodes=20, learning_rate=0.3, epochs=2)
WORSE = NetworkConfig(hidden_nodes=2, learning_rate=0.01, epochs=1)
PLOTS = {"confusion_matrix.png", "learning_curve.png", "misclassified.png", "output_layer.png"}


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# ----------------------------------------------------------------------------- HTTP server


@dataclass
class ServerState:
    """What the test server does; tests set ``root`` and ``drop_next``, and read the log."""

    root: Path | None = None  # files served from here (GET /<name>); anything else is 404
    drop_next: int = 0  # the next N responses with a body send a third of it and hang up
    requests: list[str] = field(default_factory=list)  # every GET path, in order
    bytes_sent: int = 0  # body bytes sent, complete responses and cut ones
    lock: threading.Lock = field(default_factory=threading.Lock)
    base: str = ""


class Handler(http.server.BaseHTTPRequestHandler):
    """Serves ``server.state.root``; behaviour set through ``server.state``."""

    def log_message(self, *args: object) -> None:  # keep the test output clean
        pass

    def do_GET(self) -> None:  # noqa: N802
        state: ServerState = self.server.state  # type: ignore[attr-defined]
        name = self.path.lstrip("/")
        path = state.root / name if state.root is not None and name and "/" not in name else None
        body = path.read_bytes() if path is not None and path.is_file() else None
        with state.lock:
            state.requests.append(self.path)
            drop = body is not None and state.drop_next > 0
            if drop:
                state.drop_next -= 1
        try:
            if body is None:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            part = body[: len(body) // 3] if drop else body
            with state.lock:  # counted before the write: the client may be done right after it
                state.bytes_sent += len(part)
            self.wfile.write(part)
            self.wfile.flush()
            if drop:  # promised the whole body, sent a third: hang up mid-body
                self.close_connection = True
        except (BrokenPipeError, ConnectionResetError):
            pass


@pytest.fixture
def server(monkeypatch):
    for var in ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    httpd.state = ServerState(base=f"http://127.0.0.1:{httpd.server_address[1]}/")  # type: ignore[attr-defined]
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield httpd.state  # type: ignore[attr-defined]
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


@pytest.fixture
def book_subsets(tmp_path) -> Path:
    """A folder with copies of the 100/10 subsets named mnist_train.csv / mnist_test.csv."""
    d = tmp_path / "served"
    d.mkdir()
    shutil.copyfile(TRAIN_100, d / "mnist_train.csv")
    shutil.copyfile(TEST_10, d / "mnist_test.csv")
    return d


def download_unverified(source: str, cache: Path) -> FetchResult:
    """download.fn for a source with no known digest (plain http warns about that)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnverifiedDownloadWarning)
        return tasks.download.fn(source, cache_dir=str(cache))


def cache_files(cache: Path) -> list[Path]:
    return sorted(p for p in cache.rglob("*") if p.is_file())


# ----------------------------------------------------------------------------- download


def test_download_over_http_reads_the_url_again_on_every_run(server, book_subsets, tmp_path):
    server.root = book_subsets
    cache = tmp_path / "cache"
    train_bytes, test_bytes = TRAIN_100.read_bytes(), TEST_10.read_bytes()

    with pytest.warns(UnverifiedDownloadWarning):  # plain http, no digest pinned for a user's URL
        first = tasks.download.fn(server.base, cache_dir=str(cache))

    assert first.source.spec == server.base
    assert first.bytes_transferred == len(train_bytes) + len(test_bytes) == server.bytes_sent
    assert (first.train.sha256, first.test.sha256) == (sha256(train_bytes), sha256(test_bytes))
    assert first.train.path == cache / "files" / sha256(train_bytes) / "mnist_train.csv"
    assert first.test.path == cache / "files" / sha256(test_bytes) / "mnist_test.csv"
    assert first.train.path.read_bytes() == train_bytes and first.test.path.read_bytes() == test_bytes
    assert (first.train.origin, first.test.origin) == (server.base + "mnist_train.csv", server.base + "mnist_test.csv")
    assert first.verified is False
    # .gz is tried first (404), then the plain name
    assert server.requests == ["/mnist_train.csv.gz", "/mnist_train.csv", "/mnist_test.csv.gz", "/mnist_test.csv"]

    # a URL is a name: what it serves now is read again, and changed bytes are noticed
    (book_subsets / "mnist_test.csv").write_bytes(TEST_10.read_bytes().replace(b"7,", b"1,", 1))
    with pytest.warns(UnverifiedDownloadWarning):
        second = tasks.download.fn(server.base, cache_dir=str(cache))
    assert len(server.requests) == 8
    assert second.train.path == first.train.path and second.train.sha256 == first.train.sha256
    assert second.test.sha256 == sha256((book_subsets / "mnist_test.csv").read_bytes()) != first.test.sha256
    assert second.test.path.read_bytes() == (book_subsets / "mnist_test.csv").read_bytes()


def test_a_users_own_gz_over_http_is_not_checked_against_the_shipped_file_of_that_name(server, tmp_path):
    served = tmp_path / "served"
    served.mkdir()
    fake_gz = gzip.compress(TRAIN_100.read_bytes(), mtime=0)  # not the shipped mnist_train.csv.gz
    (served / "mnist_train.csv.gz").write_bytes(fake_gz)
    (served / "mnist_test.csv.gz").write_bytes(gzip.compress(TEST_10.read_bytes(), mtime=0))
    server.root = served
    cache = tmp_path / "cache"

    with pytest.warns(UnverifiedDownloadWarning):
        got = tasks.download.fn(server.base, cache_dir=str(cache))

    assert got.train.sha256 == sha256(fake_gz) != known_digests()["mnist_train.csv.gz"]
    assert not got.verified and got.train.path.read_bytes() == fake_gz
    data = tasks.preprocess.fn(got, cache_dir=str(cache))
    assert data.train.known_as == "mnist_train_100" and data.train.records == 100


def test_download_retries_a_connection_dropped_mid_body(server, book_subsets, tmp_path):
    server.root = book_subsets
    server.drop_next = 1  # the first response with a body is cut off after a third
    cache = tmp_path / "cache"

    got = download_unverified(server.base, cache)

    train_bytes = TRAIN_100.read_bytes()
    assert server.requests.count("/mnist_train.csv") == 2  # cut, then retried
    assert server.requests.count("/mnist_test.csv") == 1
    assert server.drop_next == 0
    assert got.train.path.read_bytes() == train_bytes
    assert got.train.sha256 == sha256(train_bytes)
    assert got.bytes_transferred == len(train_bytes) + TEST_10.stat().st_size
    assert server.bytes_sent == got.bytes_transferred + len(train_bytes) // 3
    assert sorted(p.name for p in cache_files(cache / "files")) == ["mnist_test.csv", "mnist_train.csv"]
    assert not [p for p in cache_files(cache) if p.suffix in (".part", ".tmp")]


# ----------------------------------------------------------------------------- preprocess


def test_preprocess_parses_the_downloaded_subsets_then_hits_its_cache(tmp_path, small_train, small_test):
    cache = tmp_path / "cache"
    downloaded = tasks.download.fn("shipped-small", cache_dir=str(cache))
    assert downloaded.verified  # the shipped SHA256SUMS lists both subsets

    data = tasks.preprocess.fn(downloaded, cache_dir=str(cache))

    assert (data.train.records, data.test.records) == (100, 10)
    assert data.train.digest == KNOWN_DIGESTS["mnist_train_100"]
    assert data.test.digest == KNOWN_DIGESTS["mnist_test_10"]
    assert (data.train.known_as, data.test.known_as) == ("mnist_train_100", "mnist_test_10")
    assert data.source == "shipped-small"
    assert data.train.directory == cache / "arrays" / data.train.digest
    train, test = load_npy(data.train.directory), load_npy(data.test.directory)
    np.testing.assert_array_equal(train.pixels, small_train[0])
    np.testing.assert_array_equal(train.labels, small_train[1])
    np.testing.assert_array_equal(test.pixels, small_test[0])
    np.testing.assert_array_equal(test.labels, small_test[1])
    stored = {p: p.stat().st_mtime_ns for p in cache_files(cache / "arrays")}

    again = tasks.preprocess.fn(downloaded, cache_dir=str(cache))
    hit = prepare(downloaded.train.path, downloaded.train.sha256, cache)

    assert again == data
    assert hit.cache_hit is True
    assert (hit.directory, hit.digest, hit.records, hit.known_as) == (
        data.train.directory, data.train.digest, 100, "mnist_train_100")
    assert {p: p.stat().st_mtime_ns for p in cache_files(cache / "arrays")} == stored  # nothing rewritten


def test_preprocess_refuses_a_malformed_csv_naming_file_and_line(tmp_path):
    source = tmp_path / "bad-source"
    source.mkdir()
    lines = TRAIN_100.read_text().splitlines(keepends=True)
    fields = lines[16].split(",")
    fields[3] = "abc"
    lines[16] = ",".join(fields)  # line 17
    (source / "mnist_train.csv").write_text("".join(lines))
    shutil.copyfile(TEST_10, source / "mnist_test.csv")
    cache = tmp_path / "cache"
    downloaded = tasks.download.fn(str(source), cache_dir=str(cache))  # a folder: no digest known

    with pytest.raises(DataFormatError) as info:
        tasks.preprocess.fn(downloaded, cache_dir=str(cache))

    err = info.value
    assert err.line == 17
    assert err.path == str(source / "mnist_train.csv")  # the user's file, not the cache's copy
    assert err.value == "abc"
    assert "mnist_train.csv line 17" in str(err) and "abc" in str(err)
    arrays = cache / "arrays"
    left = sorted(p.relative_to(arrays) for p in arrays.rglob("*")) if arrays.exists() else []
    assert left == []  # no arrays folder, no temporary folder, no by-file entry
    assert not downloaded.train.path.exists()  # nor the refused bytes


# ----------------------------------------------------------------------------- train, evaluate, register


@pytest.fixture
def prepared(tracking_env) -> PreparedData:
    """The shipped subsets downloaded and preprocessed into the test's cache."""
    return tasks.preprocess.fn(tasks.download.fn("shipped-small"))


def new_run(env, config: NetworkConfig, experiment: str = "tasks") -> tuple[MlflowClient, str]:
    client, experiment_id = ensure_experiment(env.uri, experiment)
    return client, start_run(client, experiment_id, config)


def artifact_paths(client: MlflowClient, run_id: str, path: str | None = None) -> set[str]:
    return {a.path for a in client.list_artifacts(run_id, path)}


def test_train_task_is_the_train_and_log_path(tracking_env, prepared):
    config = NetworkConfig(hidden_nodes=20, learning_rate=0.3, epochs=2)
    client, run_id = new_run(tracking_env, config)
    trained = tasks.train.fn(prepared, config, tracking_env.uri, run_id)
    assert trained.weights_path == tracking_env.runs / run_id / "weights.npz"
    assert same_bits(Network.load(trained.weights_path), fit_in_process(config, prepared))
    assert sorted(m.step for m in client.get_metric_history(run_id, "train_mse")) == [1, 2]


def test_evaluate_logs_the_performance_and_the_plots(tracking_env, prepared, tmp_path):
    client, run_id = new_run(tracking_env, GOOD)
    trained = tasks.train.fn(prepared, GOOD, tracking_env.uri, run_id)

    result = tasks.evaluate.fn(trained, prepared, tracking_env.uri, run_id)

    test = load_npy(prepared.test.directory)
    expected = Network.load(trained.weights_path).performance(scale_inputs(test.pixels), test.labels)
    assert result.performance == expected
    assert result.records == 10
    metrics = client.get_run(run_id).data.metrics
    assert metrics["performance"] == expected
    # per-digit accuracy, grouped under one prefix (one chart section in the MLflow UI)
    digits = {int(k.split("/")[1]): v for k, v in metrics.items() if k.startswith("accuracy_digit/")}
    assert set(digits) <= set(range(10)) and digits  # digits absent from the 10 test records are not logged
    for d, value in digits.items():
        mask = test.labels == d
        predicted = Network.load(trained.weights_path).predict(scale_inputs(test.pixels[mask]))
        assert value == np.mean(predicted == d)
    # evaluating after the last epoch scores the same network as the last epoch's score
    assert expected == trained.history[-1]["performance"]
    assert artifact_paths(client, run_id, "plots") == {f"plots/{p}" for p in PLOTS}
    assert "output_layer.md" in artifact_paths(client, run_id)
    local = Path(client.download_artifacts(run_id, "", str(tmp_path / "dl")))
    for name in PLOTS:
        assert (local / "plots" / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
    assert (local / "output_layer.md").read_text().strip()


def train_and_evaluate(env, config: NetworkConfig, data: PreparedData):
    client, run_id = new_run(env, config)
    trained = tasks.train.fn(data, config, env.uri, run_id)
    ev = tasks.evaluate.fn(trained, data, env.uri, run_id)
    return client, run_id, trained, ev


def test_register_task_registers_and_returns_the_decision(tracking_env, prepared):
    client, run_id, trained, ev = train_and_evaluate(tracking_env, GOOD, prepared)
    reg = tasks.register.fn(trained, prepared, ev.performance, tracking_env.uri, run_id, model_name="task-model")
    assert (reg.model_name, reg.version, reg.promoted, reg.reason) == ("task-model", "1", True, "no 'champion' yet")
    assert str(client.get_model_version_by_alias("task-model", "champion").version) == "1"
