"""Speed-up of a sweep from training points in parallel: 1 worker against 2.

    python -m benchmarks.sweep_speedup [--points 4] [--hidden 100] [--epochs 1] [--train-records N]

Runs the same sweep (seeds 0..points-1 of one config on the shipped full MNIST) twice, in
fresh MLflow experiments of a temporary SQLite store so that nothing is reused, once with a
pool of 1 worker thread and once with 2. Prints one JSON line per run (wall seconds,
training seconds summed over points) and the speed-up of the sweep's own wall time (the
first flow call in the process also starts Prefect's temporary server, which is left out).
"""
from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--points", type=int, default=4)
    ap.add_argument("--hidden", type=int, default=100)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--train-records", type=int, default=None)
    args = ap.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="mynn-speedup-"))
    for key, value in {"DO_NOT_TRACK": "true", "MLFLOW_DISABLE_TELEMETRY": "true",
                       "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
                       "MLFLOW_TRACKING_URI": f"sqlite:///{tmp / 'mlflow.db'}",
                       "MYNN_CACHE_DIR": str(tmp / "cache"), "MYNN_RUNS_DIR": str(tmp / "runs")}.items():
        os.environ[key] = value
    from flows.runners import task_runner
    from flows.sweep_flow import sweep_flow
    from tracking.store import ensure_experiment, tracking_uri

    grid = {"hidden_nodes": [args.hidden], "epochs": [args.epochs], "learning_rate": [0.1],
            "seed": list(range(args.points))}
    walls, sweep_walls = {}, {}
    for workers in (1, 2):
        ensure_experiment(tracking_uri(), f"speedup-{workers}")
        t0 = time.perf_counter()
        out = sweep_flow.with_options(task_runner=task_runner(workers))(
            grid=grid, experiment=f"speedup-{workers}", train_records=args.train_records)
        walls[workers] = time.perf_counter() - t0
        sweep_walls[workers] = out["wall_seconds"]
        print(json.dumps({"workers": workers, "points": out["points"], "trained": out["trained"],
                          "wall_seconds": round(walls[workers], 2), "sweep_wall_seconds": round(out["wall_seconds"], 2),
                          "training_seconds_total": round(out["training_seconds_total"], 2)}), flush=True)
    # the flow's own wall time: the first call also starts Prefect's temporary server
    print(json.dumps({"speedup_2_vs_1": round(sweep_walls[1] / sweep_walls[2], 2)}))


if __name__ == "__main__":
    main()
