"""A sweep's overhead before its first training: ``mynn sweep`` of 4 one-epoch points on the
book's 100/10 subsets, N times in one home and store (the background Prefect server reused), each
in a new experiment so nothing is reused. From Prefect's log lines: the flow's start until the
points are planned, and until the first epoch is logged. Target (issue #14): under 3 s.

    python -m benchmarks.sweep_start [--runs 3]

Everything lives in a temporary folder (HOME, store, cache, runs) removed at the end; the
background server it started is stopped.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.main_job import MYNN, STAMP, _seconds


def spans(log: str) -> dict[str, float]:
    """Seconds from 'Beginning flow run' to the planned points and to the first epoch logged."""
    marks: dict[str, float] = {}
    for line in log.splitlines():
        m = STAMP.match(line)
        if not m:
            continue
        t, text = _seconds(*m.groups()[:3]), m.group(4)
        if "Beginning flow run" in text:
            marks.setdefault("begin", t)
        elif "training(s) to run" in text:
            marks.setdefault("planned", t)
        elif " - epoch 1:" in text:
            marks.setdefault("first epoch", t)
    if len(marks) < 3:
        sys.exit("the sweep's log lacks its start, its plan or an epoch:\n" + log[-3000:])
    return {"planned": marks["planned"] - marks["begin"], "first epoch": marks["first epoch"] - marks["begin"]}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=3)
    opts = ap.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="mynn-sweep-start-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "MYNN_", "MLFLOW_"))}
    env.update(HOME=str(work / "home"), MYNN_CACHE_DIR=str(work / "cache"), MYNN_RUNS_DIR=str(work / "runs"),
               MLFLOW_TRACKING_URI=f"sqlite:///{work / 'mlflow.db'}", MYNN_PROGRESS="plain")
    (work / "home").mkdir()
    try:
        for i in range(opts.runs + 1):  # run 0 warms the home, the server and the caches
            t0 = time.time()
            done = subprocess.run([str(MYNN), "sweep", "--hidden-nodes", "10", "20", "30", "40", "--epochs", "1",
                                   "--source", "shipped-small", "--experiment", f"sweep-start-{i}"],
                                  env=env, capture_output=True, text=True)
            if done.returncode != 0:
                sys.exit(f"mynn sweep failed ({done.returncode}):\n{done.stderr[-3000:]}")
            s = spans(done.stderr)
            verdict = "met" if s["first epoch"] < 3 else "NOT met"
            print(f"{'warm-up' if i == 0 else f'run {i}'}: flow start -> points planned {s['planned']:.1f} s, "
                  f"-> first epoch logged {s['first epoch']:.1f} s (target < 3 s: {verdict}); "
                  f"command {time.time() - t0:.1f} s")
    finally:
        subprocess.run([str(MYNN), "server", "stop"], env=env, capture_output=True, timeout=120)
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
