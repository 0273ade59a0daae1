"""Operating mynn: serving deployments to a Prefect server, and reconciling MLflow runs.

``mynn serve`` serves to the Prefect server at ``PREFECT_API_URL``: ``mynn-train/train``, the main
job, with a cron schedule for retraining (weekly by default; ``--retrain-cron`` changes it,
``--no-schedule`` turns it off: a scheduled run moves the alias only to a model significantly
better than the champion, McNemar's test on the same test set); the experiments
``mynn-sweep/sweep``, ``mynn-reproduce/reproduce`` and (with the ``tune`` extra) ``mynn-tune/tune``;
``mynn-reconcile/reconcile``, every 10 minutes closing MLflow runs whose flow run ended badly;
``mynn-watch/watch``, every 5 minutes (``--watch-every``), which emits ``mynn.data.changed`` when the
source's data is not the champion's: the train deployment's trigger retrains on it (flows.events).

Each deployment's "Run" form in the UI is built from the flows' pydantic-typed parameters, with
titles, descriptions, defaults and bounds; Prefect refuses out-of-range values before anything runs.
"""
from __future__ import annotations

from typing import Annotated
from uuid import UUID

from prefect import flow, get_run_logger
from prefect.client.orchestration import get_client
from prefect.exceptions import ObjectNotFound
from prefect.states import Crashed
from pydantic import Field

from mynn.sources import redact_url
from tracking.reconcile import Closed, reconcile
from tracking.store import tracking_uri

from flows.deployments import DEFAULT_RETRAIN_CRON, WATCH_EVERY_SECONDS, deployments


@flow(name="mynn-reconcile")
def reconcile_flow(dry_run: Annotated[bool, Field(description="Only list what would be closed")] = False) -> list[dict]:
    """Close MLflow runs left RUNNING by flow runs that crashed, failed or were cancelled."""
    closed = reconcile_runs(dry_run)
    log = get_run_logger()
    for c in closed:
        log.info(f"{'would close' if dry_run else 'closed'} run {c.run_id} ({c.run_name}) as {c.status}: {c.reason}")
    log.info(f"{len(closed)} run(s) {'to close' if dry_run else 'closed'}")
    return [c.__dict__ for c in closed]


def flow_run_state(flow_run_id: str) -> str | None:
    """The state type of a flow run in the current Prefect API ("CRASHED", ...); None if it does not exist."""
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


def mark_crashed(flow_run_id: str, message: str) -> None:
    """Set a flow run whose process is gone to CRASHED."""
    with get_client(sync_client=True) as prefect:
        prefect.set_flow_run_state(UUID(flow_run_id), Crashed(message=message), force=True)


def reconcile_runs(dry_run: bool = False) -> list[Closed]:
    """tracking.reconcile on the tracking store, with flow-run states from the current Prefect API."""
    return reconcile(tracking_uri(), flow_run_state, dry_run=dry_run, mark_crashed=mark_crashed)


def check_cron(cron: str | None) -> None:
    """ValueError unless ``cron`` (if given) is a cron expression Prefect accepts."""
    from prefect.client.schemas.schedules import CronSchedule
    from pydantic import ValidationError

    if cron is not None:
        try:
            CronSchedule(cron=cron)
        except ValidationError as exc:
            raise ValueError(f"{cron!r} is not a cron expression ({exc.errors()[0]['msg']})") from None


#: How often ``mynn serve`` asks the server for runs to start (Prefect's default is 10 s: a run
#: submitted from the UI waited up to that long before anything happened).
POLL_SECONDS = 1


def serve(retrain_cron: str | None = DEFAULT_RETRAIN_CRON, source: str = "shipped", workers: int = 2,
          limit: int | None = None, watch_seconds: float | None = WATCH_EVERY_SECONDS) -> None:
    """Serve the deployments until interrupted (Ctrl-C or SIGTERM); then pause their schedules."""
    from prefect import serve as prefect_serve

    served = deployments(retrain_cron, source, workers, watch_seconds)
    try:
        prefect_serve(*served, limit=limit, query_seconds=POLL_SECONDS, pause_on_shutdown=False)
    finally:
        pause_schedules([f"{d.flow_name}/{d.name}" for d in served])


def pause_schedules(names: list[str], timeout: float = 3.0) -> None:
    """Pause the deployments' schedules (nothing is scheduled while nobody serves them), if the
    Prefect server answers within ``timeout``; else say so and leave them. (Prefect's own pause
    on shutdown retries every call for about a minute against a server that is gone.)"""
    import sys

    import httpx
    from prefect.settings import PREFECT_API_URL

    api = PREFECT_API_URL.value()
    try:
        answered = httpx.get(f"{api}/health", timeout=timeout).status_code == 200
    except httpx.HTTPError:
        answered = False
    if not answered:
        print(f"mynn serve: the Prefect server {redact_url(api)} does not answer: the deployments' schedules are left as they "
              "are", file=sys.stderr)
        return
    with get_client(sync_client=True) as client:  # (the server answered: its usual retries, e.g. on a busy 503)
        for name in names:
            client.pause_deployment(client.read_deployment_by_name(name).id)
