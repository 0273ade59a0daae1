"""``mynn tune``: an Optuna search over the network's hyper-parameters, chosen by a validation
set, pruned on its per-epoch score. One MLflow parent run per study, one child run per trial
(the one train-and-log path); the study is stored beside the tracking store (tracking.studies),
so an interrupted search continues with ``resume``. Trials run in parallel on the flow's task
runner: threads of this process (two by default), or a Dask cluster's workers.
"""
from __future__ import annotations

import hashlib
import json
import time
from typing import Annotated, Literal, Optional

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.futures import wait
from prefect.task_runners import ThreadPoolTaskRunner
from pydantic import Field
from threadpoolctl import threadpool_limits

from flows import artifacts, tuning
from flows.params import ExperimentName, TuneSpace
from flows.runners import DEFAULT_WORKERS, workers_reach_this_api
from flows.sweeping import prepare_data, reopen_sweep, start_sweep
from mynn import paths, search
from mynn.config import NetworkConfig
from mynn.grid import code_digest
from mynn.prepare import shared_loads
from mynn.sources import redact_url
from tracking import evaluation, studies, sweeps
from tracking.runs import SYSTEM_METRICS_SECONDS, closing_run
from tracking.store import ensure_experiment, run_ui_url, tracking_uri
from tracking.study_report import log_study

Count = Annotated[int, Field(ge=1, le=10_000)]


@task(name="trials", cache_policy=NO_CACHE)
def run_trials(sweep: sweeps.Sweep, ref: studies.StudyRef, worker: int) -> list[tuning.TrialResult]:
    """One worker of the study: trials one after another while budget and time are left."""
    return tuning.run_trials(sweep, ref, worker, paths.runs_dir(), log=get_run_logger().info)


def default_name(ref_parts: dict) -> str:
    """``tune-<data>-<8 hex>``: the same search on the same data and code gets the same name."""
    return f"tune-{ref_parts['data']}-" + hashlib.sha256(json.dumps(ref_parts, sort_keys=True).encode()).hexdigest()[:8]


@flow(name="mynn-tune", task_runner=ThreadPoolTaskRunner(max_workers=DEFAULT_WORKERS))
def tune_flow(
    space: TuneSpace = TuneSpace(),
    trials: Annotated[Count, Field(description="Trials in the study when it is done (a resume counts the earlier ones)")] = 20,
    timeout_minutes: Annotated[Optional[float], Field(gt=0, description="Start no trial after this many minutes")] = None,
    sampler: Annotated[Literal[studies.SAMPLERS], Field(description="tpe (Bayesian), random or grid")] = "tpe",
    pruner: Annotated[Literal[studies.PRUNERS], Field(description="Stop poor trials early, on the per-epoch validation score")] = "median",
    grid_points: Annotated[int, Field(ge=2, le=20, description="grid sampler: values per range")] = 3,
    validation_records: Annotated[int, Field(ge=1, le=59_999, description="Training records held out to choose by")] = 10_000,
    patience: Annotated[int, Field(ge=0, le=1000, description="Early stopping within a trial; 0: off")] = 0,
    seed: Annotated[int, Field(ge=0, description="Seed of the weights, the validation split and the sampler")] = 0,
    study: Annotated[Optional[str], Field(max_length=200, description="Study name (default: from the search)")] = None,
    resume: Annotated[bool, Field(description="Continue the study of this name")] = False,
    workers: Annotated[int, Field(ge=1, le=64, description="Trials run at once")] = DEFAULT_WORKERS,
    source: Annotated[str, Field(description="shipped, shipped-small, book, a folder, file:// or http(s):// URL")] = "shipped",
    train_records: Annotated[Optional[int], Field(ge=1, description="Use only the first N training records")] = None,
    test_records: Annotated[Optional[int], Field(ge=1, description="Use only the first M test records")] = None,
    experiment: Annotated[ExperimentName, Field(description="MLflow experiment")] = "mynn-tune",
) -> dict:
    """Search the space with Optuna, choosing by validation score; the test score of the chosen
    trial is reported, never used to choose."""
    t0 = time.time()
    evaluation.prefetch(kernels=True)
    log = get_run_logger()
    dims = search.space((space if isinstance(space, dict) else space.model_dump()))
    base = NetworkConfig(seed=seed, validation_records=validation_records, patience=patience)
    uri = tracking_uri()
    _, experiment_id = ensure_experiment(uri, experiment)
    data = prepare_data(source, train_records, test_records)
    if validation_records >= data.train.records:
        raise search.StudyError(f"validation_records {validation_records} leaves no training record: the training "
                                 f"set has {data.train.records}")
    code = code_digest()
    meta = {"space": search.describe(dims), "base": base.to_dict(), "sampler": sampler, "pruner": pruner,
            "grid_points": grid_points, "train_digest": data.train.digest, "test_digest": data.test.digest,
            "code": code}
    name = study or default_name({**meta, "data": data.label})
    ref = studies.StudyRef(name, studies.storage_url(uri), dims, base, sampler, pruner, trials,
                           t0 + timeout_minutes * 60 if timeout_minutes else None, grid_points)
    opened, resumed = studies.open_study(ref, meta, resume)
    params = {"study": name, "study_storage": redact_url(ref.storage), "space": json.dumps(meta["space"])[:6000],
              "sampler": sampler, "pruner": pruner, "validation_records": validation_records, "patience": patience,
              "seed": seed, "source": redact_url(source), "data": data.label, "train_digest": data.train.digest,
              "test_digest": data.test.digest}
    if resumed:
        parent = opened.user_attrs["parent_run_id"]
        sweep, url = reopen_sweep(uri, experiment_id, parent, data)
        sweeps.close_running_children(uri, experiment_id, parent, f"interrupted: study {name} was resumed")
        log.info(f"resuming study {name}: {studies.used(opened)} trial(s) done, "
                 f"{len(studies.interrupted(opened))} interrupted one(s) queued again; parent run {parent}: {url}")
    else:
        sweep, url = start_sweep(uri, experiment_id, name, "tune", data, params)
        opened.set_user_attr("parent_run_id", sweep.parent_run_id)
        log.info(f"study {name} in {redact_url(ref.storage)}: parent run {sweep.parent_run_id}: {url}")
    with closing_run(uri, sweep.parent_run_id, system_metrics_seconds=SYSTEM_METRICS_SECONDS):
        sweeps.log_parent_inputs(sweep)
        sweeps.log_budget(uri, sweep.parent_run_id, trials, timeout_minutes, workers)
        with workers_reach_this_api(), shared_loads(), threadpool_limits(limits=1):
            futures = [run_trials.submit(sweep, ref, w) for w in range(workers)]
            wait(futures)
            results = [r for f in futures for r in f.result()]  # the first worker's error, if any, ends the study
        summary = log_study(uri, experiment_id, sweep.parent_run_id, studies.load(ref), dims)
    rows = summary.pop("rows")
    artifacts.link(url, f"MLflow parent run of study {name}", key="mlflow-tune")
    artifacts.table("tune-trials", rows, description="Every trial of the study: state, validation score (what "
                    "chooses), parameters, test score (reported only) and its MLflow run")
    log.info(f"study {name}: {summary['trials']} trial(s), best {summary.get('best_params')} validation "
             f"{summary.get('best_validation_performance')}, its test score {summary.get('best_test_performance')}")
    return {"parent_run_id": sweep.parent_run_id, "parent_url": run_ui_url(uri, experiment_id, sweep.parent_run_id),
            "resumed": resumed, "trials_this_run": len(results), "wall_seconds": time.time() - t0, **summary}


def deployment(source: str, workers: int):
    """``mynn serve``'s tune deployment (its form: the flow's typed parameters)."""
    from flows.runners import task_runner

    return tune_flow.with_options(task_runner=task_runner(workers)).to_deployment(
        name="tune", parameters={"source": source, "workers": workers}, tags=["mynn"],
        description="Search hyper-parameters with Optuna on a validation set, pruning poor trials; a parent run per "
                    "study, a child per trial. Give the study's name and resume to continue one.")
