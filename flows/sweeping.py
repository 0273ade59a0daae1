"""The steps a sweep and the book's reproduction share: data once, a parent run, the points.

A sweep's points are planned in :mod:`mynn.grid` (reuse a finished point, derive an epoch count
from a longer training, train the rest); the trainings run in parallel on the flow's task
runner (:mod:`flows.runners`), each through the one train-and-log path.
"""
from __future__ import annotations

from prefect import get_run_logger
from prefect.futures import as_completed
from threadpoolctl import threadpool_limits

from flows import artifacts, progress, tasks
from flows.artifacts import current_flow_run
from flows.runners import workers_reach_this_api
from mynn.grid import code_digest, plan_points
from mynn.config import NetworkConfig
from mynn.prepare import PreparedData, shared_loads
from tracking import sweeps
from tracking.store import run_ui_url


def prepare_data(source: str, train_records: int | None = None, test_records: int | None = None) -> PreparedData:
    """Download and preprocess once (optionally the first N/M records)."""
    return tasks.preprocess(tasks.download(source), train_records=train_records, test_records=test_records)


def start_sweep(uri: str, experiment_id: str, name: str, kind: str, data: PreparedData,
                params: dict) -> tuple[sweeps.Sweep, str]:
    """The parent run (RUNNING) and what its children share; (sweep, the parent's UI link)."""
    fr_id, fr_url = current_flow_run()
    code = code_digest()
    parent = sweeps.start_parent(uri, experiment_id, name, kind, {**params, "code_version": code}, fr_id, fr_url)
    artifacts.rename_flow_run(name)  # one name for the job in both UIs
    return sweeps.Sweep(uri, experiment_id, parent, data, code, fr_id, fr_url), run_ui_url(uri, experiment_id, parent)


def reopen_sweep(uri: str, experiment_id: str, parent_run_id: str, data: PreparedData) -> tuple[sweeps.Sweep, str]:
    """A resumed search's parent run, RUNNING again, and what its new children share."""
    fr_id, fr_url = current_flow_run()
    sweeps.reopen_parent(uri, parent_run_id)
    return (sweeps.Sweep(uri, experiment_id, parent_run_id, data, code_digest(), fr_id, fr_url),
            run_ui_url(uri, experiment_id, parent_run_id))


def run_points(point_sets: list[tuple[sweeps.Sweep, list[NetworkConfig]]]) -> list[sweeps.PointResult]:
    """Per (sweep, configs): reuse what finished before, derive epoch counts; then train the rest
    of all sets in parallel, longest first. Every point's result (a child run each); fails after
    all trainings ended if any of them failed."""
    log = get_run_logger()
    results, jobs = [], []
    for sweep, configs in point_sets:
        by_point, by_group = sweeps.finished_points(sweep.tracking_uri, sweep.experiment_id)
        plan = plan_points(configs, sweep.data.train.digest, sweep.data.test.digest, sweep.code, by_point, by_group)
        for message in plan.refused:
            log.warning(message)
        results += sweeps.log_copies(sweep, plan.copies)
        jobs += [(sweep, training) for training in plan.trainings]
        if plan.trainings:
            sweeps.log_parent_inputs(sweep)
        log.info(f"{sweep.data.label}: {len(plan.copies)} point(s) reused or derived from earlier runs; "
                 f"{len(plan.trainings)} training(s) to run")
    jobs.sort(key=lambda job: -job[1].config.hidden_nodes * job[1].config.epochs)  # the pool finishes together
    # Trainings in threads share one checked copy of the data and one BLAS thread each.
    with workers_reach_this_api(), shared_loads(), threadpool_limits(limits=1), \
            progress.bar("sweep", len(jobs), "trainings") as terminal:
        futures = [tasks.train_points.submit(sweep, training) for sweep, training in jobs]
        bar = artifacts.progress(len(futures))
        finished: dict[int, list] = {}
        errors = []
        index = {id(fut): i for i, fut in enumerate(futures)}
        for done, fut in enumerate(as_completed(futures), start=1):  # reported as they finish
            terminal.advance()
            try:
                finished[index[id(fut)]] = fut.result()
                best = finished[index[id(fut)]][-1]
                log.info(f"{done}/{len(futures)} trainings finished: {best.config.run_name()} ({best.data}) "
                         f"performance {best.performance:.4f}, {len(finished[index[id(fut)]])} point(s)")
            except Exception as exc:  # let the others finish; the sweep fails below, naming the first
                errors.append(exc)
                log.error(f"{done}/{len(futures)} trainings finished: one failed: {exc!r}")
            artifacts.advance(bar, done, len(futures))
    if errors:
        raise RuntimeError(f"{len(errors)} of {len(futures)} training(s) failed; first: {errors[0]!r}") from errors[0]
    return results + [r for i in sorted(finished) for r in finished[i]]  # in submission order, as before
