"""Close MLflow runs left RUNNING by flow runs that ended badly (crash, SIGKILL, lost server).

A run records the Prefect flow run that made it (tag ``prefect.flow_run_id``) and the process
that owns it (``mynn.pid``, ``mynn.host``, ``mynn.pid_start``). For every MLflow run still
RUNNING, the flow run's state decides first: CANCELLED or CANCELLING -> KILLED; FAILED,
CRASHED or missing -> FAILED; COMPLETED while the MLflow run is still RUNNING -> FAILED (the
flow lost its tracking server before it could close the run). A run whose flow run still
looks active (or that has none) is closed FAILED when its owner process is gone from this
host (killed with SIGKILL: nobody else would ever mark it), and its flow run is marked
CRASHED. Runs owned by live processes, or by processes on other hosts, are left alone. Each
closed run gets a ``mynn.reconciled`` tag saying why.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from mlflow import MlflowClient

from tracking import store
from tracking.store import check_reachable
from tracking.runs import TAG_HOST, TAG_PID, TAG_PREFECT_FLOW_RUN_ID, owner_state

BAD_TO_STATUS = {"CANCELLED": "KILLED", "CANCELLING": "KILLED", "FAILED": "FAILED", "CRASHED": "FAILED",
                 "COMPLETED": "FAILED"}


@dataclass(frozen=True)
class Closed:
    run_id: str
    run_name: str
    flow_run_id: str
    flow_run_state: str
    status: str
    reason: str = ""


def running_runs(client: MlflowClient) -> list:
    """Every RUNNING MLflow run of every experiment."""
    out, token = [], None
    exp_ids = [e.experiment_id for e in client.search_experiments()]
    if not exp_ids:
        return out
    while True:
        page = client.search_runs(exp_ids, filter_string="attributes.status = 'RUNNING'", max_results=5000,
                                  page_token=token)
        out.extend(page)
        token = page.token
        if not token:
            return out


def reconcile(uri: str, flow_run_state: Callable[[str], str | None], dry_run: bool = False,
              mark_crashed: Callable[[str, str], None] | None = None) -> list[Closed]:
    """Close the RUNNING runs of the store at ``uri`` whose flow run ended badly, or whose owner
    process is gone.

    ``flow_run_state(flow_run_id)`` returns the Prefect state type name (e.g. "CRASHED") or
    None when the flow run does not exist. ``mark_crashed(flow_run_id, message)``, if given,
    sets a flow run that still looks active to CRASHED when its process is gone.
    """
    check_reachable(uri)
    client = store.client(uri)
    closed = []
    for run in running_runs(client):
        tags = run.data.tags
        fr = tags.get(TAG_PREFECT_FLOW_RUN_ID)
        state = flow_run_state(fr) if fr else None
        if fr and (state is None or state in BAD_TO_STATUS):
            status = BAD_TO_STATUS.get(state, "FAILED")  # a missing flow run: FAILED
            reason = f"flow run {fr} is {state or 'missing'}; closed as {status}"
            crash = False
        elif owner_state(tags) == "gone":
            status = "FAILED"
            reason = (f"its process {tags.get(TAG_PID)} on {tags.get(TAG_HOST)} is gone (killed?)"
                      + (f" while flow run {fr} was {state}" if fr else "") + f"; closed as {status}")
            crash = bool(fr)
        else:
            continue  # the flow run is still going, or its process lives (or cannot be checked)
        if not dry_run:
            if crash and mark_crashed is not None:
                mark_crashed(fr, f"mynn reconcile: process {tags.get(TAG_PID)} on {tags.get(TAG_HOST)} is gone")
            client.set_tag(run.info.run_id, "mynn.reconciled", reason)
            client.set_terminated(run.info.run_id, status=status)
        closed.append(Closed(run.info.run_id, run.info.run_name, fr or "", state or "MISSING", status, reason))
    return closed
