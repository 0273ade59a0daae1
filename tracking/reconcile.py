"""Close MLflow runs left RUNNING by flow runs that ended badly (crash, SIGKILL, lost server).

A run records the Prefect flow run that made it (tag ``prefect.flow_run_id``). For every
MLflow run still RUNNING, the flow run's state decides: CANCELLED or CANCELLING -> KILLED;
FAILED, CRASHED or missing -> FAILED; COMPLETED while the MLflow run is still RUNNING ->
FAILED (the flow lost its tracking server before it could close the run). Runs of flow runs
that are still going are left alone. Each closed run gets a ``mynn.reconciled`` tag saying why.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from mlflow import MlflowClient

from tracking.runs import TAG_PREFECT_FLOW_RUN_ID

BAD_TO_STATUS = {"CANCELLED": "KILLED", "CANCELLING": "KILLED", "FAILED": "FAILED", "CRASHED": "FAILED",
                 "COMPLETED": "FAILED"}


@dataclass(frozen=True)
class Closed:
    run_id: str
    run_name: str
    flow_run_id: str
    flow_run_state: str
    status: str


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


def reconcile(client: MlflowClient, flow_run_state: Callable[[str], str | None], dry_run: bool = False) -> list[Closed]:
    """Close the RUNNING runs whose flow run ended badly.

    ``flow_run_state(flow_run_id)`` returns the Prefect state type name (e.g. "CRASHED") or
    None when the flow run does not exist.
    """
    closed = []
    for run in running_runs(client):
        fr = run.data.tags.get(TAG_PREFECT_FLOW_RUN_ID)
        if not fr:
            continue
        state = flow_run_state(fr)
        if state is not None and state not in BAD_TO_STATUS:
            continue  # the flow run is still scheduled, pending, running or paused
        status = BAD_TO_STATUS.get(state, "FAILED")  # a missing flow run: FAILED
        if not dry_run:
            client.set_tag(run.info.run_id, "mynn.reconciled",
                           f"flow run {fr} is {state or 'missing'}; closed as {status}")
            client.set_terminated(run.info.run_id, status=status)
        closed.append(Closed(run.info.run_id, run.info.run_name, fr, state or "MISSING", status))
    return closed


def prefect_state_lookup():
    """A ``flow_run_state`` function backed by the Prefect API in the environment."""
    from uuid import UUID

    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    def lookup(flow_run_id: str) -> str | None:
        try:
            uuid = UUID(flow_run_id)
        except ValueError:
            return None
        with get_client(sync_client=True) as prefect:
            try:
                fr = prefect.read_flow_run(uuid)
            except ObjectNotFound:
                return None
        return fr.state.type.value if fr.state else None

    return lookup
