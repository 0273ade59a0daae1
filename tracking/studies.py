"""The Optuna studies of ``mynn tune``: where they are stored, how one is made or resumed, the
sampler and pruner, a trial's config, and the budget.

A study lives in an Optuna database beside the tracking store: ``MYNN_STUDY_STORAGE`` if set,
else ``<tracking db>-optuna.db`` next to a SQLite tracking store, else ``optuna.db`` in mynn's
home. Not in the tracking database itself: MLflow and Optuna both keep their schema version in
alembic's one ``alembic_version`` table, and each refuses a database the other has stamped. In
the compose stack it is a database of its own on the same PostgreSQL server.

The study records what it searches (the space, the base config, the data's digests and the
code's), so ``--resume`` continues only the same search, and the parent MLflow run's id.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

import optuna
from optuna.trial import TrialState

from mynn import paths, search
from mynn.search import StudyError
from mynn.config import NetworkConfig

SAMPLERS = ("tpe", "random", "grid")
PRUNERS = ("median", "hyperband", "none")
#: Trials that used the budget (FAIL: a diverged training; the search learns from it too). A trial
#: failed by ``--resume`` because its process was gone is not counted: it is run again.
COUNTED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING, TrialState.FAIL)
INTERRUPTED = "mynn.interrupted"
#: A trial asked for by a worker after another worker took the budget's last one: failed at once,
#: never trained, not counted and not shown (workers ask at once; Optuna numbers trials in order).
SURPLUS = "mynn.surplus"


def storage_url(tracking_uri: str) -> str:
    """Where studies are kept for ``tracking_uri`` (see the module's docstring)."""
    if os.environ.get("MYNN_STUDY_STORAGE"):
        return os.environ["MYNN_STUDY_STORAGE"]
    if tracking_uri.startswith("sqlite:///"):
        db = Path(tracking_uri[len("sqlite:///"):])
        return f"sqlite:///{db.with_name(db.stem + '-optuna.db')}"
    return f"sqlite:///{paths.home() / 'optuna.db'}"


def storage(url: str) -> optuna.storages.RDBStorage:
    """The study database at ``url`` (created on first use). SQLite waits up to 60 s for a lock:
    parallel trials write to it at once."""
    kwargs = {"connect_args": {"timeout": 60}} if url.startswith("sqlite") else {}
    return optuna.storages.RDBStorage(url, engine_kwargs=kwargs)


@dataclass(frozen=True)
class StudyRef:
    """What a trial worker needs to take part in a study (picklable: sent to Dask workers)."""

    name: str
    storage: str  # the study database's URL
    dims: tuple[search.Dim, ...]
    base: NetworkConfig  # seed, validation set and patience of every trial
    sampler: str
    pruner: str
    trials: int  # trials in the study when it is done (across resumes)
    deadline: float | None = None  # time.time() after which no trial starts
    grid_points: int = 3

    @property
    def max_epochs(self) -> int:
        d = next((d for d in self.dims if d.name == "epochs"), None)
        return self.base.epochs if d is None else int(d.high if not d.choices else max(d.choices))


def make_sampler(ref: StudyRef, worker: int = 0, done: int = 0) -> optuna.samplers.BaseSampler:
    """TPE (the default), random or grid, seeded by the study's seed, the worker's number and the
    trials the study already has (``done``): a resumed study does not draw its first trials again."""
    seed = (ref.base.seed * 1000 + worker) * 100_003 + done
    if ref.sampler == "tpe":
        return optuna.samplers.TPESampler(seed=seed)
    if ref.sampler == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if ref.sampler == "grid":
        return _Grid(search.grid(ref.dims, ref.grid_points), seed=ref.base.seed)
    raise StudyError(f"sampler {ref.sampler!r}: one of {SAMPLERS}")


class _Grid(optuna.samplers.GridSampler):
    """Optuna's grid sampler without its ``study.stop()`` once the grid is done, which Optuna
    allows only inside ``study.optimize``: trials here are asked and told, and the budget
    (:func:`limit`) already ends at the grid's size."""

    def after_trial(self, study, trial, state, values) -> None:
        pass


def make_pruner(ref: StudyRef) -> optuna.pruners.BasePruner:
    """On the per-epoch validation score: median (once 4 trials completed, from a trial's second
    epoch: after one epoch, small learning rates lag behind yet can end best, and on full MNIST
    pruning at epoch 1 cut such trials), Hyperband (epochs as the resource) or none."""
    if ref.pruner == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=4, n_warmup_steps=2)
    if ref.pruner == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=max(ref.max_epochs, 1), reduction_factor=3)
    if ref.pruner == "none":
        return optuna.pruners.NopPruner()
    raise StudyError(f"pruner {ref.pruner!r}: one of {PRUNERS}")


def grid_size(ref: StudyRef) -> int | None:
    """Points of a grid search (None for the other samplers)."""
    if ref.sampler != "grid":
        return None
    n = 1
    for values in search.grid(ref.dims, ref.grid_points).values():
        n *= len(values)
    return n


def load(ref: StudyRef, worker: int = 0) -> optuna.Study:
    """The study, with this worker's sampler and the pruner."""
    store = storage(ref.storage)
    done = store.get_n_trials(store.get_study_id_from_name(ref.name))
    return optuna.load_study(study_name=ref.name, storage=store, sampler=make_sampler(ref, worker, done),
                             pruner=make_pruner(ref))


def open_study(ref: StudyRef, meta: dict, resume: bool) -> tuple[optuna.Study, bool]:
    """(study, resumed): a new study recording ``meta`` (what it searches), or with ``resume`` the
    existing one, if it searches the same (:class:`StudyError` otherwise). A new study's name
    must be free; resuming fails the trials its stopped process left running and queues their
    parameters again."""
    store = storage(ref.storage)
    names = {s.study_name for s in optuna.get_all_study_summaries(store, include_best_trial=False)}
    if ref.name in names and not resume:
        raise StudyError(f"study {ref.name!r} already exists in {_shown(ref.storage)}: pass --resume to continue "
                         "it, or another --study name")
    if ref.name not in names:
        if resume:
            raise StudyError(f"no study {ref.name!r} to resume in {_shown(ref.storage)}")
        study = optuna.create_study(study_name=ref.name, storage=store, sampler=make_sampler(ref),
                                    pruner=make_pruner(ref), direction="maximize")
        for key, value in meta.items():
            study.set_user_attr(key, value)
        return study, False
    study = load(ref)
    if "parent_run_id" not in study.user_attrs:
        raise StudyError(f"study {ref.name!r} has no parent run (its first start failed before making one): "
                         "start it under another --study name")
    for key, value in meta.items():
        if key != "parent_run_id" and study.user_attrs.get(key) != value:
            raise StudyError(f"study {ref.name!r} was made with {key} {study.user_attrs.get(key)!r}, not {value!r}: "
                             "--resume continues the same search only")
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        store.set_trial_user_attr(trial._trial_id, INTERRUPTED, True)  # (no public id of a frozen trial)
        store.set_trial_state_values(trial._trial_id, TrialState.FAIL)
        study.enqueue_trial(trial.params, skip_if_exists=False)
    return study, True


def interrupted(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    """Trials a resume failed because their process was gone."""
    return [t for t in study.get_trials(deepcopy=False, states=(TrialState.FAIL,)) if t.user_attrs.get(INTERRUPTED)]


def counted(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    """Trials that count against the budget (:data:`COUNTED`; interrupted and surplus ones not)."""
    return [t for t in study.get_trials(deepcopy=False, states=COUNTED)
            if not (t.user_attrs.get(INTERRUPTED) or t.user_attrs.get(SURPLUS))]


def used(study: optuna.Study) -> int:
    return len(counted(study))


def limit(ref: StudyRef) -> int:
    """The study's size when done: the budget, or the grid's size if smaller."""
    return min(ref.trials, grid_size(ref) or ref.trials)


def may_start(study: optuna.Study, ref: StudyRef) -> bool:
    """Whether another trial may start: budget left and the deadline not passed."""
    return used(study) < limit(ref) and (ref.deadline is None or time.time() < ref.deadline)


def take(study: optuna.Study, ref: StudyRef) -> optuna.Trial | None:
    """A new trial (:meth:`optuna.Study.ask`), or None when the trials numbered before it already
    fill the budget: that one is failed at once, marked surplus (:data:`SURPLUS`)."""
    trial = study.ask()
    if sum(1 for t in counted(study) if t.number < trial.number) < limit(ref):
        return trial
    trial.set_user_attr(SURPLUS, True)
    study.tell(trial, state=TrialState.FAIL)
    return None


def suggest(trial: optuna.Trial, dims: tuple[search.Dim, ...]) -> dict:
    """The trial's values of the varying dimensions (fixed ones are the config's)."""
    out = {}
    for d in search.searched(dims):
        if d.choices:
            out[d.name] = trial.suggest_categorical(d.name, list(d.choices))
        elif d.integer:
            out[d.name] = trial.suggest_int(d.name, int(d.low), int(d.high), log=d.log)
        else:
            out[d.name] = trial.suggest_float(d.name, d.low, d.high, log=d.log)
    return out


def _shown(url: str) -> str:
    from mynn.sources import redact_url

    return redact_url(url)
