"""REST serving: ``mlflow models serve`` of the champion, asked over HTTP on 127.0.0.1.

A model trained on the shipped 100-record subset is registered in a real SQLite store under
a temporary folder (fixture ``store``, one per module), then served by MLflow's own scoring server
(``--env-manager local``: this virtual environment, nothing installed, nothing downloaded)
in its own process group, which is killed at the end whatever happens.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from flows import tasks
from mynn import paths
from mynn.config import NetworkConfig
from mynn.encoding import scale_inputs
from mynn.network import Network
from tracking.flavour import OUTPUT_COLUMNS
from tracking.runs import start_run
from tracking.store import ensure_experiment

CONFIG = NetworkConfig(hidden_nodes=20, learning_rate=0.3, epochs=2)
MODEL = "served-model"
STARTUP_SECONDS = 90
# talk to 127.0.0.1 directly, whatever proxy the environment names
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def post_json(url: str, body: dict, timeout: float = 30.0) -> tuple[int, dict | str]:
    """(status, parsed JSON or text) of a POST; HTTP errors are returned, not raised."""
    req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    try:
        with OPENER.open(req, timeout=timeout) as resp:
            status, text = resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        status, text = exc.code, exc.read().decode()
    try:
        return status, json.loads(text)
    except json.JSONDecodeError:
        return status, text


def wait_until_up(proc: subprocess.Popen, base: str, log: Path) -> float:
    """Poll GET /ping until it answers 200; seconds it took. Fails if the server exits."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < STARTUP_SECONDS:
        if proc.poll() is not None:
            pytest.fail(f"mlflow models serve exited with {proc.returncode}:\n{log.read_text()[-4000:]}")
        try:
            with OPENER.open(f"{base}/ping", timeout=2) as resp:
                if resp.status == 200:
                    return time.monotonic() - t0
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.25)
    pytest.fail(f"mlflow models serve did not answer /ping within {STARTUP_SECONDS} s:\n{log.read_text()[-4000:]}")


def stop(proc: subprocess.Popen) -> None:
    """SIGTERM to the server's whole process group (mlflow, its shell, uvicorn and its
    worker), then SIGKILL to whatever of the group is left."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        pass
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait(timeout=5)


@pytest.fixture(scope="module")
def store(tmp_path_factory, _empty_mlflow_db):
    """A fresh SQLite MLflow store (and cache, runs folders) for this module, set in the
    environment (MLFLOW_TRACKING_URI, MYNN_CACHE_DIR, MYNN_RUNS_DIR) while its tests run."""
    import shutil

    root = tmp_path_factory.mktemp("serving")
    db = root / "mlflow.db"
    shutil.copyfile(_empty_mlflow_db, db)
    uri = f"sqlite:///{db}"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_TRACKING_URI", uri)
        mp.delenv("MLFLOW_REGISTRY_URI", raising=False)
        mp.setenv("MYNN_CACHE_DIR", str(root / "cache"))
        mp.setenv("MYNN_RUNS_DIR", str(root / "runs"))
        yield uri, root


@pytest.fixture(scope="module")
def champion(store) -> Network:
    """A model trained on the 100-record subset, registered as version 1 with alias champion."""
    uri, _ = store
    data = tasks.preprocess.fn(tasks.download.fn("shipped-small"))
    client, experiment_id = ensure_experiment(uri, "serving")
    run_id = start_run(client, experiment_id, CONFIG)
    trained = tasks.train.fn(data, CONFIG, uri, run_id)
    ev = tasks.evaluate.fn(trained, data, uri, run_id)
    reg = tasks.register.fn(trained, data, ev.performance, uri, run_id, model_name=MODEL)
    assert (reg.version, reg.promoted) == ("1", True)
    client.set_terminated(run_id)
    return Network.load(trained.weights_path)


@pytest.fixture(scope="module")
def server(store, champion):
    """``mlflow models serve -m models:/<name>@champion`` on a free port, started once for
    the module in its own session (process group); yields its base URL."""
    uri, root = store
    port = free_port()
    bin_dir = Path(sys.executable).parent
    env = dict(os.environ)
    for var in ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        env.pop(var, None)
    env.update(MLFLOW_TRACKING_URI=uri, DO_NOT_TRACK="true", MLFLOW_DISABLE_TELEMETRY="true",
               PATH=f"{bin_dir}{os.pathsep}{env.get('PATH', '')}")
    env.pop("MLFLOW_REGISTRY_URI", None)
    log = root / "serve.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [str(bin_dir / "mlflow"), "models", "serve", "-m", f"models:/{MODEL}@champion",
             "--env-manager", "local", "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
            env=env, cwd=root, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True)
    try:
        base = f"http://127.0.0.1:{port}"
        seconds = wait_until_up(proc, base, log)
        print(f"mlflow models serve answered /ping after {seconds:.1f} s")
        yield base
    finally:
        stop(proc)


def test_the_served_champion_answers_what_the_model_predicts(server, champion, monkeypatch):
    import mlflow.pyfunc

    test = np.loadtxt(paths.data_dir() / "mnist_test_10.csv", delimiter=",", dtype=np.uint8)
    pixels, labels = test[:, 1:], test[:, 0]
    rows = pixels.astype(int).tolist()  # raw 0..255, as JSON numbers
    assert len(rows) == 10 and all(len(r) == 784 for r in rows)

    t0 = time.perf_counter()
    status, answer = post_json(f"{server}/invocations", {"inputs": rows})
    seconds = time.perf_counter() - t0

    assert status == 200, answer
    predictions = answer["predictions"]
    assert len(predictions) == 10 and all(set(p) == set(OUTPUT_COLUMNS) for p in predictions)
    digits = np.array([p["digit"] for p in predictions])
    outputs = np.array([[p[f"output_{i}"] for i in range(10)] for p in predictions])
    # the same model loaded in this process through MLflow (by alias, from the same store)
    monkeypatch.setattr(sys, "path", list(sys.path))  # load_model prepends the model's code/ folder
    local = mlflow.pyfunc.load_model(f"models:/{MODEL}@champion").predict(pixels.astype(np.float64))
    np.testing.assert_array_equal(digits, local["digit"].to_numpy())
    np.testing.assert_array_equal(outputs, local[[f"output_{i}" for i in range(10)]].to_numpy())
    # and the network itself, on the book's scaling of the same pixels
    x = scale_inputs(pixels, champion.config.dtype)
    np.testing.assert_array_equal(digits, champion.predict(x))
    np.testing.assert_allclose(outputs, champion.query(x), rtol=0, atol=1e-12)
    assert 0.0 <= float(np.mean(digits == labels)) <= 1.0
    print(f"/invocations of 10 rows: {seconds * 1000:.0f} ms; digits {digits.tolist()}, labels {labels.tolist()}")


@pytest.mark.parametrize(("body", "why"), [
    # rows of 10 numbers, not 784: refused by MLflow's schema enforcement (signature (-1, 784))
    ({"inputs": [list(range(10)), [255] * 10]}, "784"),
    # pixel values beyond 255: refused by the model's own check (tracking/flavour.py)
    ({"inputs": [[300] * 784]}, "0..255"),
    # not one of MLflow's input formats
    ({"something": [[0] * 784]}, "inputs"),
], ids=["short-rows", "out-of-range", "unknown-format"])
def test_a_bad_request_gets_an_error_not_digits(server, body, why):
    status, answer = post_json(f"{server}/invocations", body)

    assert 400 <= status < 600, answer
    assert isinstance(answer, dict) and "predictions" not in answer, answer
    assert answer.get("error_code") and why in json.dumps(answer), answer


# ----------------------------------------------------------------------------- refusals (reliability round two, case 7)

def _row_with(value) -> str:
    """A JSON body of one row of 784 zeros with ``value`` (JSON text) as pixel 5."""
    return '{"inputs": [[' + ",".join(["0"] * 5 + [value] + ["0"] * 778) + "]]}"


def post_text(url: str, body: str, timeout: float = 30.0) -> tuple[int, str]:
    req = urllib.request.Request(url, data=body.encode(), method="POST", headers={"Content-Type": "application/json"})
    try:
        with OPENER.open(req, timeout=timeout) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


NOT_PIXELS = ["-1", "NaN", "Infinity", "null", "1e308", "255.5"]


@pytest.mark.parametrize("value", NOT_PIXELS)
def test_mlflow_models_serve_states_the_reason_without_a_trace_or_a_path(server, store, value):
    status, text = post_text(f"{server}/invocations", _row_with(value))
    assert status == 400, text
    answer = json.loads(text)
    assert "stack_trace" not in answer and "Traceback" not in text
    assert "pixel values must be whole numbers in 0..255" in answer["message"], answer["message"]
    _, root = store
    for path in (str(root), sys.prefix, str(paths.PROJECT_ROOT)):
        assert path not in text


@pytest.fixture(scope="module")
def strict_server(store, champion):
    """``mynn serve-model`` of the champion on a free port, in its own session."""
    uri, root = store
    port = free_port()
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    env.update(MLFLOW_TRACKING_URI=uri, DO_NOT_TRACK="true", MLFLOW_DISABLE_TELEMETRY="true")
    log = root / "serve-model.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "flows.cli", "serve-model", "--model-uri",
                                 f"models:/{MODEL}@champion", "--port", str(port)], env=env, cwd=root, stdout=out,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        base = f"http://127.0.0.1:{port}"
        wait_until_up(proc, base, log)
        yield base
    finally:
        stop(proc)


def test_mynn_serve_model_answers_what_the_network_predicts(strict_server, champion):
    test = np.loadtxt(paths.data_dir() / "mnist_test_10.csv", delimiter=",", dtype=np.uint8)
    pixels = test[:, 1:]
    x = scale_inputs(pixels, champion.config.dtype)
    rows = pixels.astype(int).tolist()
    for body in ({"inputs": rows}, {"instances": rows}, {"dataframe_split": {"columns": list(range(784)), "data": rows}},
                 {"dataframe_records": [{str(i): v for i, v in enumerate(r)} for r in rows]}):
        status, answer = post_json(f"{strict_server}/invocations", body)
        assert status == 200, answer
        assert answer["model_version"] == "1"
        digits = [p["digit"] for p in answer["predictions"]]
        outputs = np.array([[p[f"output_{i}"] for i in range(10)] for p in answer["predictions"]])
        assert digits == champion.predict(x).tolist()
        np.testing.assert_array_equal(outputs, champion.query(x))
    with OPENER.open(f"{strict_server}/version", timeout=10) as resp:
        assert json.loads(resp.read())["model_version"] == "1"


@pytest.mark.parametrize("value,says", [("-1", "-1 is outside 0..255"), ("NaN", "NaN is not a number"),
                                        ("Infinity", "Infinity is not a number"), ("null", "null is not a number"),
                                        ("1e308", "1e+308 is outside 0..255"), ("255.5", "255.5 is not a whole number"),
                                        ("true", "true is not a number"), ('"12"', '"12" is not a number')])
def test_mynn_serve_model_refuses_anything_but_pixel_numbers_saying_why(strict_server, store, value, says):
    status, text = post_text(f"{strict_server}/invocations", _row_with(value))
    assert status == 400, text
    answer = json.loads(text)
    assert set(answer) == {"error_code", "message"} and answer["error_code"] == "BAD_REQUEST"
    assert answer["message"].startswith("row 0, pixel 5: ") and says in answer["message"], answer["message"]
    _, root = store
    assert str(root) not in text and sys.prefix not in text and "Traceback" not in text


@pytest.mark.parametrize("body,says", [('{"inputs": [[1, 2, 3]]}', "row 0: expected 784 pixel values, got 3 values"),
                                       ("[1, 2]", "must be a JSON object"), ("{", "the body is not JSON"),
                                       ('{"rows": []}', "exactly one of the keys")])
def test_mynn_serve_model_refuses_malformed_requests(strict_server, body, says):
    status, text = post_text(f"{strict_server}/invocations", body)
    assert status == 400 and says in json.loads(text)["message"], text
