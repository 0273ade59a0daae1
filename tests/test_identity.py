"""A run is exactly what it says, on a machine that accumulates state.

One cache, one MLflow store and one Prefect server across several different runs, the way a
user's machine fills up: the shipped MNIST, then a folder of the user's own data, then that
folder with one pixel changed (same size, mtime set back, as a file:// URL), then the shipped
subsets, then gzipped data in the folder, then that folder over http, then other bytes at the
same URL, then the shipped MNIST again. After every run, what the run recorded is checked against the
files it was given, computed independently of the project's reader and cache:

- ``train_file_sha256`` / ``test_file_sha256`` are the SHA-256 of the source's bytes now;
- ``train_digest`` / ``test_digest`` are the digests of the arrays numpy's own ``loadtxt``
  reads from those files;
- the logged weights are those of training on exactly those arrays (bit for bit), and the
  logged ``performance`` is those weights' score on exactly that test set.

The ``mynn`` command is checked on the first reproduction of the defect (a folder after the
shipped data is in the cache) and for one clear line about bad data; the changed file (the
second reproduction) goes through the same code in the flow test.
"""
from __future__ import annotations

import functools
import gzip
import hashlib
import io
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from mlflow import MlflowClient

from flows.params import TrainConfig
from tests.httpserver import start_http
from flows.train_flow import train_flow
from mynn import paths
from mynn.config import NetworkConfig
from mynn.dataset import Dataset
from mynn.encoding import scale_inputs
from mynn.network import Network
from mynn.train import fit

SHIPPED = paths.data_dir()
CONFIG = dict(hidden_nodes=12, epochs=1, learning_rate=0.2)
needs_full = pytest.mark.skipif(not (SHIPPED / "mnist_train.csv.gz").is_file(), reason="no shipped full MNIST")


def _lines(name: str, n: int) -> bytes:
    text = gzip.decompress((SHIPPED / name).read_bytes())
    return b"".join(text.splitlines(keepends=True)[:n])


def _arrays(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(pixels (n, 784), labels (n,)) uint8 read by pandas alone (not mynn's reader) from a
    plain or gzipped CSV; remembered by the file's SHA-256."""
    raw = path.read_bytes()
    return _parse(hashlib.sha256(raw).hexdigest(), raw)


@functools.lru_cache(maxsize=8)
def _parse(sha: str, raw: bytes) -> tuple[np.ndarray, np.ndarray]:
    import pandas as pd

    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    table = pd.read_csv(io.BytesIO(raw), header=None, dtype=np.uint8).to_numpy()
    return np.ascontiguousarray(table[:, 1:]), np.ascontiguousarray(table[:, 0])


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def check_run(client: MlflowClient, run_id: str, train_file: Path, test_file: Path, tmp: Path,
              origins: tuple[str, str] | None = None) -> float:
    """Assert the run recorded and used exactly these files (known to the user as ``origins``,
    default their paths); return its performance."""
    run = client.get_run(run_id)
    params, metrics = run.data.params, run.data.metrics
    assert run.info.status == "FINISHED"
    assert params["train_file_sha256"] == _sha(train_file)
    assert params["test_file_sha256"] == _sha(test_file)
    (trp, trl), (tep, tel) = _arrays(train_file), _arrays(test_file)
    assert params["train_digest"] == Dataset(trl, trp).digest
    assert params["test_digest"] == Dataset(tel, tep).digest
    assert params["train_records"] == str(len(trl)) and params["test_records"] == str(len(tel))
    assert (params["train_file"], params["test_file"]) == (origins or (str(train_file), str(test_file)))
    cfg = NetworkConfig(**CONFIG)
    expected, _ = fit(cfg, trp, trl)
    got = Network.load(client.download_artifacts(run_id, "weights.npz", str(tmp / run_id)))
    assert np.array_equal(got.wih, expected.wih) and np.array_equal(got.who, expected.who)
    assert metrics["performance"] == expected.performance(scale_inputs(tep), tel)
    return metrics["performance"]


@pytest.fixture
def own_data(tmp_path) -> Path:
    """A folder of the user's own data: the first 1,500/400 MNIST records, plain CSV."""
    folder = tmp_path / "own"
    folder.mkdir()
    (folder / "mnist_train.csv").write_bytes(_lines("mnist_train.csv.gz", 1500))
    (folder / "mnist_test.csv").write_bytes(_lines("mnist_test.csv.gz", 400))
    return folder


def change_one_pixel_keep_size_and_mtime(path: Path) -> None:
    st = path.stat()
    data = bytearray(path.read_bytes())
    i = data.index(b",0,") + 1  # a pixel of the first record that is 0
    data[i:i + 1] = b"9"
    path.write_bytes(bytes(data))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert path.stat().st_size == st.st_size and path.stat().st_mtime_ns == st.st_mtime_ns


@needs_full
@pytest.mark.usefixtures("prefect_harness")
def test_runs_sharing_one_cache_and_store_each_record_their_own_data(tracking_env, own_data, tmp_path):
    client = MlflowClient(tracking_env.uri)

    def run(source: str) -> str:
        return train_flow(config=TrainConfig(**CONFIG), source=source, model_name="ident", experiment="ident")["run_id"]

    shipped = check_run(client, run("shipped"), SHIPPED / "mnist_train.csv.gz", SHIPPED / "mnist_test.csv.gz", tmp_path)

    # the user's folder after the shipped data is in the cache: the folder's data, not the cache's
    own = check_run(client, run(str(own_data)), own_data / "mnist_train.csv", own_data / "mnist_test.csv", tmp_path)
    assert own != shipped

    # one pixel changed, same size, mtime set back: the new bytes are what the run trains on
    before = client.get_run(client.search_runs([client.get_experiment_by_name("ident").experiment_id],
                                               max_results=1)[0].info.run_id).data.params["train_file_sha256"]
    change_one_pixel_keep_size_and_mtime(own_data / "mnist_train.csv")
    changed_id = run(own_data.as_uri())  # the same folder as a file:// URL
    check_run(client, changed_id, own_data / "mnist_train.csv", own_data / "mnist_test.csv", tmp_path)
    assert client.get_run(changed_id).data.params["train_file_sha256"] != before

    # the shipped subsets, after all that
    check_run(client, run("shipped-small"), SHIPPED / "mnist_train_100.csv", SHIPPED / "mnist_test_10.csv", tmp_path)

    # the user's own gzipped files, beside the plain ones: .gz is taken, and not refused for not being
    # the shipped mnist_train.csv.gz
    (own_data / "mnist_train.csv.gz").write_bytes(gzip.compress(_lines("mnist_train.csv.gz", 800), mtime=0))
    (own_data / "mnist_test.csv.gz").write_bytes(gzip.compress(_lines("mnist_test.csv.gz", 300), mtime=0))
    check_run(client, run(str(own_data)), own_data / "mnist_train.csv.gz", own_data / "mnist_test.csv.gz", tmp_path)

    # the same folder over http: the URL's bytes now; then other bytes at the same URL
    state, stop = start_http()
    try:
        state.serve_folder(own_data)
        urls = (state.base + "mnist_train.csv.gz", state.base + "mnist_test.csv.gz")
        check_run(client, run(state.base), own_data / "mnist_train.csv.gz", own_data / "mnist_test.csv.gz", tmp_path,
                  urls)
        served = tmp_path / "served"
        served.mkdir()
        (served / "mnist_train.csv.gz").write_bytes(gzip.compress(_lines("mnist_train.csv.gz", 900), mtime=0))
        (served / "mnist_test.csv.gz").write_bytes((own_data / "mnist_test.csv.gz").read_bytes())
        state.files["/mnist_train.csv.gz"] = (served / "mnist_train.csv.gz").read_bytes()
        check_run(client, run(state.base), served / "mnist_train.csv.gz", served / "mnist_test.csv.gz", tmp_path, urls)
    finally:
        stop()

    # and the shipped data once more: still right, whatever the cache holds now
    assert check_run(client, run("shipped"), SHIPPED / "mnist_train.csv.gz", SHIPPED / "mnist_test.csv.gz",
                     tmp_path) == shipped


# ----------------------------------------------------------------------------- the mynn command


def _mynn(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "flows.cli", *args], env=env, capture_output=True, text=True,
                          timeout=300, cwd=paths.PROJECT_ROOT)


@pytest.fixture
def cli_env(tracking_env, prefect_harness, tmp_path) -> dict[str, str]:
    """The environment of a user's shell: the test's store, cache and runs folders, and the
    session's Prefect server (so each command does not start a temporary one)."""
    from prefect.settings import PREFECT_API_URL

    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    env.update(MLFLOW_TRACKING_URI=tracking_env.uri, MYNN_CACHE_DIR=str(tracking_env.cache),
               MYNN_RUNS_DIR=str(tracking_env.runs), PREFECT_API_URL=str(PREFECT_API_URL.value()),
               HOME=str(tmp_path / "home"))
    return env


@needs_full
def test_the_command_trains_on_the_folder_it_is_given_after_the_shipped_data(cli_env, tracking_env, own_data,
                                                                              tmp_path):
    common = ["train", "--epochs", "1", "--hidden-nodes", "12", "--learning-rate", "0.2", "--experiment", "cli"]
    first = _mynn(common, cli_env)
    assert first.returncode == 0, first.stderr[-3000:]
    second = _mynn(common + ["--source", str(own_data)], cli_env)
    assert second.returncode == 0, second.stderr[-3000:]
    assert "cache hit" not in second.stderr and str(own_data / "mnist_train.csv") in second.stderr
    client = MlflowClient(tracking_env.uri)
    runs = sorted(client.search_runs([client.get_experiment_by_name("cli").experiment_id]),
                  key=lambda r: r.info.start_time)
    assert len(runs) == 2
    check_run(client, runs[0].info.run_id, SHIPPED / "mnist_train.csv.gz", SHIPPED / "mnist_test.csv.gz", tmp_path)
    check_run(client, runs[1].info.run_id, own_data / "mnist_train.csv", own_data / "mnist_test.csv", tmp_path)

    # malformed rows in the folder: one clear line naming the user's file, line and value; no traceback
    lines = (own_data / "mnist_train.csv").read_bytes().splitlines(keepends=True)
    lines[99] = lines[99].replace(b",0,", b",x7,", 1)
    (own_data / "mnist_train.csv").write_bytes(b"".join(lines))
    bad = _mynn(common + ["--source", str(own_data)], cli_env)
    assert bad.returncode == 1
    assert f"mynn train: error: {own_data / 'mnist_train.csv'} line 100: field" in bad.stderr
    assert "'x7'" in bad.stderr and "Traceback" not in bad.stderr
    refused = hashlib.sha256((own_data / "mnist_train.csv").read_bytes()).hexdigest()
    assert not (tracking_env.cache / "files" / refused).exists()
    failed = [r for r in client.search_runs([client.get_experiment_by_name("cli").experiment_id])
              if r.info.status == "FAILED"]
    assert len(failed) == 1 and "line 100" in failed[0].data.tags["mynn.failure"]
