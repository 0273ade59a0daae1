"""Operating mynn: serving deployments to a Prefect server, and reconciling MLflow runs.

``mynn serve`` serves four deployments to the Prefect server at ``PREFECT_API_URL``:

- ``mynn-train/train``: the main job, with a cron schedule for retraining (weekly by default;
  ``--retrain-cron`` changes it, ``--no-schedule`` turns it off). A scheduled run retrains
  on the configured source and moves the alias only if the new model is significantly
  better than the champion (McNemar's test on the same test set).
- ``mynn-sweep/sweep`` and ``mynn-reproduce/reproduce``: the experiments.
- ``mynn-reconcile/reconcile``: every 10 minutes, closes MLflow runs whose flow run ended badly.

Each deployment's "Run" form in the UI is built from the flows' pydantic-typed parameters,
with titles, descriptions, defaults and bounds; Prefect refuses out-of-range values before
anything runs.
"""
from __future__ import annotations

from typing import Annotated

from mlflow import MlflowClient
from prefect import flow, get_run_logger
from pydantic import Field

from tracking.reconcile import prefect_mark_crashed, prefect_state_lookup, reconcile
from tracking.store import check_reachable, tracking_uri

DEFAULT_RETRAIN_CRON = "0 3 * * 1"  # Mondays 03:00
RECONCILE_EVERY_SECONDS = 600


@flow(name="mynn-reconcile")
def reconcile_flow(dry_run: Annotated[bool, Field(description="Only list what would be closed")] = False) -> list[dict]:
    """Close MLflow runs left RUNNING by flow runs that crashed, failed or were cancelled."""
    uri = tracking_uri()
    check_reachable(uri)
    closed = reconcile(MlflowClient(uri), prefect_state_lookup(), dry_run=dry_run, mark_crashed=prefect_mark_crashed())
    log = get_run_logger()
    for c in closed:
        log.info(f"{'would close' if dry_run else 'closed'} run {c.run_id} ({c.run_name}) as {c.status}: {c.reason}")
    log.info(f"{len(closed)} run(s) {'to close' if dry_run else 'closed'}")
    return [c.__dict__ for c in closed]


def deployments(retrain_cron: str | None = DEFAULT_RETRAIN_CRON, source: str = "shipped", workers: int = 2):
    """The RunnerDeployments that ``mynn serve`` serves."""
    from flows.reproduce import reproduce_flow
    from flows.sweep_flow import sweep_flow, task_runner
    from flows.train_flow import train_flow

    return [
        train_flow.to_deployment(
            name="train", cron=retrain_cron, parameters={"source": source}, tags=["mynn"],
            description="Train the book's network (download -> preprocess -> train -> evaluate -> register). "
                        "Scheduled runs retrain and promote only a significantly better model."),
        sweep_flow.with_options(task_runner=task_runner(workers)).to_deployment(
            name="sweep", parameters={"source": source}, tags=["mynn"],
            description="Train every combination of a grid: one parent run, a child per point."),
        reproduce_flow.with_options(task_runner=task_runner(workers)).to_deployment(
            name="reproduce", parameters={"source": source}, tags=["mynn"],
            description="The book's whole table over several seeds, with a report beside the book's numbers."),
        reconcile_flow.to_deployment(name="reconcile", interval=RECONCILE_EVERY_SECONDS, tags=["mynn"],
                                     description="Close MLflow runs whose flow run ended badly."),
    ]


def serve(retrain_cron: str | None = DEFAULT_RETRAIN_CRON, source: str = "shipped", workers: int = 2,
          limit: int | None = None) -> None:
    """Serve the deployments until interrupted (Ctrl-C or SIGTERM)."""
    from prefect import serve as prefect_serve

    prefect_serve(*deployments(retrain_cron, source, workers), limit=limit)
