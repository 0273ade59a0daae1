"""Load: eight sweeps' children (32 runs) in parallel against one MLflow server and one
Prefect server, on SQLite and on PostgreSQL.

    python -m benchmarks.load_test [--backend sqlite postgres] [--sweeps 8]

Starts the servers on free 127.0.0.1 ports (tests/servers.py: PostgreSQL through initdb as
the ``postgres`` user when run as root), then runs ``--sweeps`` ``mynn sweep`` processes at
once, each with 4 points (hidden 10/20 x lr 0.1/0.3, its own seed) on the book's 100/10
subsets and 2 worker threads. Checks every run in MLflow: parents, FINISHED children with
the right params, performance and train_mse, and parent links; counts lost or failed runs
and prints one JSON line per backend with the wall time.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import tempfile
import time
from pathlib import Path

from tests.servers import BIN, QUIET_ENV, start_tracking_stack


def run_backend(backend: str, sweeps: int) -> dict:
    from mlflow import MlflowClient

    root = Path(tempfile.mkdtemp(prefix=f"mynn-load-{backend}-"))
    stops = []
    try:
        mlflow, prefect = start_tracking_stack(backend, root, stops)
        env = {**os.environ, **QUIET_ENV, "PREFECT_API_URL": prefect.url, "MLFLOW_TRACKING_URI": mlflow.url,
               "MYNN_CACHE_DIR": str(root / "cache"), "MYNN_RUNS_DIR": str(root / "runs"),
               "PATH": f"{BIN}:{os.environ.get('PATH', '')}"}
        # create the experiment (and warm the cache) once, before the parallel sweeps
        subprocess.run([str(BIN / "mynn"), "sweep", "--source", "shipped-small", "--hidden-nodes", "5",
                        "--epochs", "1", "--experiment", "load", "--name", "warm-up", "--workers", "1"],
                       env=env, check=True, capture_output=True, timeout=600)
        t0 = time.perf_counter()
        procs = [subprocess.Popen([str(BIN / "mynn"), "sweep", "--source", "shipped-small",
                                   "--hidden-nodes", "10", "20", "--learning-rate", "0.1", "0.3",
                                   "--seed", str(100 + i), "--epochs", "2", "--experiment", "load",
                                   "--name", f"load-{i}", "--workers", "2"],
                                  env=env, stdout=open(root / f"sweep-{i}.log", "wb"), stderr=subprocess.STDOUT)
                 for i in range(sweeps)]
        codes = [p.wait(timeout=1800) for p in procs]
        wall = time.perf_counter() - t0
        client = MlflowClient(mlflow.url)
        exp = client.get_experiment_by_name("load")
        runs = client.search_runs([exp.experiment_id], max_results=5000)
        parents = {r.data.tags.get("mlflow.runName"): r for r in runs if r.data.tags.get("mynn.kind") == "sweep"}
        problems = []
        children_ok = 0
        for i in range(sweeps):
            parent = parents.get(f"load-{i}")
            if parent is None or parent.info.status != "FINISHED":
                problems.append(f"sweep {i}: parent {'missing' if parent is None else parent.info.status}")
                continue
            kids = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
            expected = {(h, lr) for h in ("10", "20") for lr in ("0.1", "0.3")}
            got = {(k.data.params.get("hidden_nodes"), k.data.params.get("learning_rate")) for k in kids
                   if k.info.status == "FINISHED" and k.data.params.get("seed") == str(100 + i)
                   and "performance" in k.data.metrics and "train_mse" in k.data.metrics}
            children_ok += len(got & expected)
            if got != expected or len(kids) != 4:
                problems.append(f"sweep {i}: {len(kids)} children, complete: {sorted(got)}")
        return {"backend": backend, "sweeps": sweeps, "children_expected": 4 * sweeps, "children_ok": children_ok,
                "lost_or_failed": 4 * sweeps - children_ok, "exit_codes": codes, "wall_seconds": round(wall, 1),
                "problems": problems, "logs": str(root)}
    finally:
        for stop in reversed(stops):
            stop()


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--backend", nargs="+", default=["sqlite", "postgres"], choices=["sqlite", "postgres"])
    ap.add_argument("--sweeps", type=int, default=8)
    args = ap.parse_args(argv)
    for backend in args.backend:
        print(json.dumps(run_backend(backend, args.sweeps)), flush=True)


if __name__ == "__main__":
    main()
