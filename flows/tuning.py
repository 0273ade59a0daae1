"""A search's trials: each one a child run of the study's parent, trained through the one
train-and-log path, its per-epoch validation score reported to the pruner. Plain functions (no
Prefect): :mod:`flows.tune_flow` runs :func:`run_trials` as one task per parallel worker.

A trial whose point (config, data, code) finished before is not trained again: its child copies
that run's numbers (as a sweep's reused or derived point does) and the study gets its
validation score. A pruned trial's child ends FINISHED, tagged ``mynn.pruned=true`` with the
epoch it stopped at; a training that diverges fails its trial and child, and the search goes on.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from optuna.trial import TrialState

from flows.training import train_and_log
from mynn import search
from mynn.grid import plan_points
from mynn.train import TrainingDivergedError
from tracking import store, studies, sweeps
from tracking.runs import closing_run, log_data, set_tags
from tracking.training import logged_history


@dataclass(frozen=True)
class TrialResult:
    """One trial: its number, state (COMPLETE, PRUNED or FAIL) and child run."""

    number: int
    state: str
    point: sweeps.PointResult | None
    epochs_run: int | None = None
    error: str | None = None


def run_trials(sweep: sweeps.Sweep, ref: studies.StudyRef, worker: int, run_dir: str | Path,
               log=None) -> list[TrialResult]:
    """Ask the study for trials and run them, one at a time, while budget and time are left."""
    study = studies.load(ref, worker)
    out = []
    while studies.may_start(study, ref):
        trial = studies.take(study, ref)
        if trial is None:  # another worker took the last trial of the budget
            break
        out.append(run_trial(sweep, ref, study, trial, Path(run_dir), log))
    return out


def run_trial(sweep: sweeps.Sweep, ref: studies.StudyRef, study, trial, run_dir: Path, log=None) -> TrialResult:
    """One trial: suggest its config, then reuse a finished point or train it (pruned when the
    pruner says so); tells the study the trial's result."""
    config = search.to_config(ref.dims, studies.suggest(trial, ref.dims), ref.base)
    parent = store.run_ui_url(sweep.tracking_uri, sweep.experiment_id, sweep.parent_run_id)
    tags = {"mynn.study": ref.name, "mynn.trial": str(trial.number),
            "mlflow.note.content": f"Trial {trial.number} of the study [{ref.name}]({parent}) on data "
                                   f"{sweep.data.label}: {config.run_name()}."}
    by_point, by_group = sweeps.finished_points(sweep.tracking_uri, sweep.experiment_id)
    plan = plan_points([config], sweep.data.train.digest, sweep.data.test.digest, sweep.code, by_point, by_group)
    for message in plan.refused:
        _say(log, trial, message)
    if plan.copies:
        copy = plan.copies[0]
        history = logged_history(store.client(sweep.tracking_uri), copy.run_id)
        for h in history[:config.epochs]:
            if h.get("validation_performance") is not None:
                trial.report(h["validation_performance"], h["epoch"])
        point = sweeps.log_reused(sweep, config, f"{copy.kind}:{copy.run_id}",
                                  store.client(sweep.tracking_uri).get_run(copy.run_id), history, tags)
        study.tell(trial, point.validation_performance)
        _say(log, trial, f"{config.run_name()} {copy.kind} from run {copy.run_id[:8]}: validation "
                         f"{point.validation_performance:.4f}")
        return TrialResult(trial.number, "COMPLETE", point)
    training = plan.trainings[0]
    datasets = sweep.data.load()
    run_id = sweeps.start_trained_child(sweep, training, tags)
    pruned: list[int] = []

    def stop(stats) -> bool:
        trial.report(stats.validation_performance, stats.epoch)
        if stats.epoch < config.epochs and trial.should_prune():
            pruned.append(stats.epoch)
            return True
        return False
    try:
        with closing_run(sweep.tracking_uri, run_id):
            log_data(sweep.tracking_uri, run_id, sweep.data)
            trained = train_and_log(sweep.data, config, sweep.tracking_uri, run_id, run_dir / run_id, log, datasets,
                                    stop=stop)
            sweeps.log_performance(sweep.tracking_uri, run_id, trained, sweep.data)
            if pruned:
                set_tags(sweep.tracking_uri, run_id, {sweeps.TAG_PRUNED: "true", "mynn.pruned_epoch": str(pruned[0])})
    except TrainingDivergedError as exc:  # a result of the search (too large a step), not a fault of it
        study.tell(trial, state=TrialState.FAIL)
        _say(log, trial, f"{config.run_name()} failed: {exc}")
        return TrialResult(trial.number, "FAIL", None, exc.epoch, str(exc))
    except BaseException:
        study.tell(trial, state=TrialState.FAIL)
        raise
    point = sweeps.trained_points(sweep, training, run_id, trained)[0]
    if pruned:
        study.tell(trial, state=TrialState.PRUNED)
        _say(log, trial, f"{config.run_name()} pruned after epoch {pruned[0]}")
        return TrialResult(trial.number, "PRUNED", point, pruned[0])
    study.tell(trial, trained.validation_performance)
    _say(log, trial, f"{config.run_name()} trained: validation {trained.validation_performance:.4f}")
    return TrialResult(trial.number, "COMPLETE", point, trained.stopped_epoch)


def _say(log, trial, message: str) -> None:
    if log is not None:
        log(f"trial {trial.number}: {message}")
