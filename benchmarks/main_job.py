"""Where the README's main command spends its time: ``mynn train`` with the defaults (full MNIST,
H=200, 5 epochs), first on an empty home, then warm (same home, store and cache), N times.

For each run: the wall time, the training time inside it, and the span of each step read from
Prefect's log (start-up until the flow begins, each task, the end after the flow), plus the
issue's targets: warm wall <= 2 x training + 5 s; empty home < 30 s.

    python -m benchmarks.main_job                       # background Prefect server (the default)
    python -m benchmarks.main_job --mode temporary      # a temporary server per command (as before)
    python -m benchmarks.main_job --warm 3 --args --hidden-nodes 100

Everything lives in a temporary folder (HOME, store, cache, runs) removed at the end; the
background server it started is stopped.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MYNN = Path(sys.executable).parent / "mynn"
STAMP = re.compile(r"^(\d\d):(\d\d):(\d\d\.\d+) \| \w+ +\| (.*)$")


def _seconds(h: str, m: str, s: str) -> float:
    return int(h) * 3600 + int(m) * 60 + float(s)


def steps(log: str, started: float, ended: float) -> dict[str, float]:
    """Spans from Prefect's log lines: start-up (until 'Beginning flow run'), each task (from the
    previous step's end to its 'Finished' line), the end (flow finished until exit)."""
    out: dict[str, float] = {}
    last = None
    day = time.strftime("%Y-%m-%d", time.localtime(started))
    midnight = time.mktime(time.strptime(day, "%Y-%m-%d"))
    for line in log.splitlines():
        m = STAMP.match(line)
        if not m:
            continue
        t = midnight + _seconds(*m.groups()[:3])
        text = m.group(4)
        if "Beginning flow run" in text:
            out["start-up"] = t - started
            last = t
        elif text.startswith("Task run '") and "Finished in state" in text and last is not None:
            name = text.split("'")[1].rsplit("-", 1)[0]
            out[name] = t - last
            last = t
        elif text.startswith("Flow run '") and "Finished in state" in text and last is not None:
            out["flow end"] = t - last
            out["exit"] = ended - t
    return out


def run_once(env: dict[str, str], args: list[str], log_path: Path) -> dict:
    t0 = time.time()
    with open(log_path, "w") as log:
        proc = subprocess.run([str(MYNN), "train", *args], env=env, stdout=subprocess.PIPE, stderr=log, text=True)
    t1 = time.time()
    if proc.returncode != 0:
        sys.exit(f"mynn train failed ({proc.returncode}):\n{log_path.read_text()[-3000:]}")
    summary = json.loads(proc.stdout[proc.stdout.index("{"):])
    return {"wall": t1 - t0, "training": summary["training_seconds"], "flow": summary["pipeline_seconds"],
            "performance": summary["performance"], "steps": steps(log_path.read_text(), t0, t1)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mode", choices=("background", "temporary"), default="background",
                    help="MYNN_PREFECT_SERVER for the runs (default: background)")
    ap.add_argument("--warm", type=int, default=2, help="warm runs after the empty-home one (default: 2)")
    ap.add_argument("--args", nargs=argparse.REMAINDER, default=[], help="extra options for mynn train")
    opts = ap.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="mynn-bench-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "MYNN_", "MLFLOW_", "XDG_"))}
    env.update(HOME=str(work / "home"), MYNN_PREFECT_SERVER=opts.mode, MYNN_CACHE_DIR=str(work / "cache"),
               MYNN_RUNS_DIR=str(work / "runs"), MLFLOW_TRACKING_URI=f"sqlite:///{work / 'mlflow.db'}",
               DO_NOT_TRACK="true", MLFLOW_DISABLE_TELEMETRY="true", PREFECT_SERVER_ANALYTICS_ENABLED="false")
    (work / "home").mkdir()
    print(f"mynn train {' '.join(opts.args)} (defaults: full MNIST, H=200, 5 epochs); Prefect server: {opts.mode}; "
          f"{os.cpu_count()} cores; work in {work}")
    results = []
    try:
        for i in range(1 + opts.warm):
            label = "empty home" if i == 0 else f"warm {i}"
            r = run_once(env, opts.args, work / f"run{i}.log")
            results.append((label, r))
            target = 30.0 if i == 0 else 2 * r["training"] + 5
            print(f"{label:>10}: wall {r['wall']:5.1f} s, training {r['training']:4.1f} s, flow {r['flow']:5.1f} s, "
                  f"target {'<' if i == 0 else '<='} {target:4.1f} s: {'met' if r['wall'] <= target else 'NOT met'}; "
                  f"performance {r['performance']}")
            print("            " + ", ".join(f"{k} {v:.1f}" for k, v in r["steps"].items()))
    finally:
        subprocess.run([str(MYNN), "server", "stop"], env=env, capture_output=True, timeout=120)
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
