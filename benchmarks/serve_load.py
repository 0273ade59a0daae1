"""Load on ``mynn serve-model``: 200 clients at once, one prediction (one row) each, several rounds.

    python -m benchmarks.serve_load [--clients 200] [--rounds 5]

A champion (the book's config on the shipped 100/10 subsets: the network's size is the book's,
so a prediction costs what it costs in use) is registered in a temporary SQLite store, served by
``mynn serve-model`` as a subprocess, and asked by ``--clients`` threads at once, each one POST
of one MNIST test row to /invocations. Prints the errors, the rate and the latency percentiles.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import numpy as np

OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def champion(root: Path) -> str:
    """A registered champion in a store under ``root``; the store's URI."""
    from flows import tasks
    from mynn.config import NetworkConfig
    from tracking.runs import start_run
    from tracking.store import ensure_experiment

    uri = f"sqlite:///{root / 'mlflow.db'}"
    os.environ.update(MLFLOW_TRACKING_URI=uri, MYNN_CACHE_DIR=str(root / "cache"), MYNN_RUNS_DIR=str(root / "runs"))
    data = tasks.preprocess.fn(tasks.download.fn("shipped-small"))
    client, experiment_id = ensure_experiment(uri, "serve-load")
    run_id = start_run(client, experiment_id, NetworkConfig())
    trained = tasks.train.fn(data, NetworkConfig(), uri, run_id)
    ev = tasks.evaluate.fn(trained, data, uri, run_id)
    tasks.register.fn(trained, data, ev.performance, uri, run_id, model_name="load")
    client.set_terminated(run_id)
    return uri


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    from mynn import paths
    from tests.servers import free_port

    rows = np.loadtxt(paths.data_dir() / "mnist_test_10.csv", delimiter=",", dtype=np.uint8)[:, 1:]
    with tempfile.TemporaryDirectory(prefix="mynn-serve-load-") as tmp:
        root = Path(tmp)
        uri = champion(root)
        port = free_port()
        proc = subprocess.Popen([sys.executable, "-m", "flows.cli", "serve-model", "--model-uri", "models:/load@champion",
                                 "--port", str(port)], env={**os.environ, "MLFLOW_TRACKING_URI": uri},
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        url = f"http://127.0.0.1:{port}"
        try:
            for _ in range(600):
                try:
                    if OPENER.open(f"{url}/ping", timeout=2).status == 200:
                        break
                except OSError:
                    time.sleep(0.1)
            latencies, errors = [], []
            t_all = 0.0
            for _ in range(args.rounds):
                go = threading.Barrier(args.clients + 1)

                def one(i: int) -> None:
                    body = json.dumps({"inputs": [rows[i % 10].tolist()]}).encode()
                    req = urllib.request.Request(f"{url}/invocations", data=body,
                                                 headers={"Content-Type": "application/json"})
                    go.wait()
                    t0 = time.perf_counter()
                    try:
                        with OPENER.open(req, timeout=60) as resp:
                            json.loads(resp.read())
                        latencies.append(time.perf_counter() - t0)
                    except Exception as exc:  # counted and reported: the benchmark's result
                        errors.append(repr(exc))
                threads = [threading.Thread(target=one, args=(i,)) for i in range(args.clients)]
                for t in threads:
                    t.start()
                go.wait()
                t0 = time.perf_counter()
                for t in threads:
                    t.join()
                t_all += time.perf_counter() - t0
        finally:
            proc.terminate()
            proc.wait(timeout=10)
    ms = sorted(x * 1000 for x in latencies)
    q = statistics.quantiles(ms, n=100)
    print(json.dumps({"clients": args.clients, "rounds": args.rounds, "requests": args.clients * args.rounds,
                      "ok": len(latencies), "errors": len(errors), "first_error": errors[0] if errors else None,
                      "requests_per_s": round(len(latencies) / t_all, 1), "latency_ms": {
                          "p50": round(q[49], 1), "p90": round(q[89], 1), "p99": round(q[98], 1),
                          "max": round(ms[-1], 1)}}, indent=2))


if __name__ == "__main__":
    main()
