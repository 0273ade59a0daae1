"""How fast a run submitted from the Prefect UI starts: ``mynn serve`` against the background
Prefect server, then a run of the ``mynn-train/train`` deployment created through Prefect's API
(what the UI's Run button does), timed until its flow run is RUNNING (its process has started
and loaded the flow) and until its first task has started.

    python -m benchmarks.ui_start [--runs 3]

Everything lives in a temporary folder (HOME, store, cache) removed at the end; the servers it
started are stopped.
"""
from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MYNN = Path(sys.executable).parent / "mynn"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=3)
    opts = ap.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="mynn-ui-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "MYNN_", "MLFLOW_"))}
    env.update(HOME=str(work / "home"), MYNN_CACHE_DIR=str(work / "cache"), MYNN_RUNS_DIR=str(work / "runs"),
               MLFLOW_TRACKING_URI=f"sqlite:///{work / 'mlflow.db'}", DO_NOT_TRACK="true",
               MLFLOW_DISABLE_TELEMETRY="true", PREFECT_SERVER_ANALYTICS_ENABLED="false")
    (work / "home").mkdir()
    serve = None
    try:
        out = subprocess.run([str(MYNN), "server", "start"], env=env, capture_output=True, text=True, check=True)
        api = out.stdout.split("API ")[1].split()[0]
        print(out.stdout.strip())
        serve = subprocess.Popen([str(MYNN), "serve", "--no-schedule", "--source", "shipped-small"], env=env,
                                 stdout=open(work / "serve.log", "w"), stderr=subprocess.STDOUT, start_new_session=True)
        os.environ.update(PREFECT_API_URL=api)
        from prefect.client.orchestration import get_client

        with get_client(sync_client=True) as client:
            deadline = time.monotonic() + 180
            while True:
                try:
                    deployment = client.read_deployment_by_name("mynn-train/train")
                    break
                except Exception:  # not registered yet
                    if time.monotonic() > deadline or serve.poll() is not None:
                        sys.exit("mynn serve did not register its deployments:\n" + (work / "serve.log").read_text())
                    time.sleep(0.5)
            for i in range(opts.runs):
                t0 = time.monotonic()
                run = client.create_flow_run_from_deployment(
                    deployment.id, parameters={"config": {"hidden_nodes": 10, "epochs": 1},
                                               "source": "shipped-small", "experiment": "ui-start"})
                running = first_task = None
                while first_task is None and time.monotonic() - t0 < 300:
                    fr = client.read_flow_run(run.id)
                    if running is None and fr.state and fr.state.type.value != "SCHEDULED" and fr.state.type.value != "PENDING":
                        running = time.monotonic() - t0
                    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

                    tasks = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[run.id])))
                    if tasks:
                        first_task = time.monotonic() - t0
                    time.sleep(0.1)
                while not client.read_flow_run(run.id).state.is_final() and time.monotonic() - t0 < 600:
                    time.sleep(0.5)
                state = client.read_flow_run(run.id).state.type.value
                print(f"run {i + 1}: flow run RUNNING after {running:.1f} s, first task after {first_task:.1f} s "
                      f"(target < 5 s: {'met' if running is not None and running < 5 else 'NOT met'}); ended {state}")
                # where the time goes, from the server's own state times: picked up by the runner
                # (PENDING), its process started and loaded the flow (RUNNING)
                states = sorted(client.read_flow_run_states(run.id), key=lambda st: st.timestamp)
                created = states[0].timestamp
                print("       states: " + ", ".join(f"{st.type.value} +{(st.timestamp - created).total_seconds():.1f} s"
                                                   for st in states))
    finally:
        if serve is not None and serve.poll() is None:
            os.killpg(serve.pid, signal.SIGTERM)
            try:
                serve.wait(timeout=90)
            except subprocess.TimeoutExpired:
                os.killpg(serve.pid, signal.SIGKILL)
        subprocess.run([str(MYNN), "server", "stop"], env=env, capture_output=True, timeout=120)
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
