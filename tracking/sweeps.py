"""Sweeps in MLflow: one parent run, one child run per point, and the finished points to reuse.

Every child is linked to its parent by passing the parent's run id explicitly
(``mlflow.parentRunId``), never through an "active run", so children can be created from
worker processes or a Dask cluster. A child's origin is a tag:

- ``trained``: this run trained the network (to the largest epoch count of its group), through
  the same train-and-log path as a single run (checkpoints, ``config.json``, weights, metrics);
- ``derived:<run id>``: an epoch count taken from the history of that longer training;
- ``reused:<run id>``: the same point (same config, data and code) finished earlier.

What to train, reuse or derive is decided in :mod:`mynn.grid` (``plan_points``).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from mlflow.entities import Metric

from mynn.config import NetworkConfig
from mynn.grid import Copy, Finished, Training, group_id, point_id
from mynn.prepare import PreparedData
from tracking import models, store
from tracking.runs import closing_run, dataset_ref, git_state, log_data_inputs, source_tags, log_params, now_ms, prefect_tags, start_run
from tracking.training import EPOCH_VALIDATION, MODEL_VALIDATION, Trained, logged_history

TAG_KIND = "mynn.kind"
TAG_POINT = "mynn.point_id"
TAG_GROUP = "mynn.group_id"
TAG_ORIGIN = "mynn.origin"
TAG_EPOCHS_TRAINED = "mynn.epochs_trained"
TAG_PRUNED = "mynn.pruned"


@dataclass(frozen=True)
class PointResult:
    """One point of a sweep and where its numbers came from."""

    config: NetworkConfig
    data: str  # PreparedData.label
    point_id: str
    run_id: str  # the child run under this sweep's parent
    origin: str  # trained | derived:<run id> | reused:<run id>
    performance: float
    train_mse: float
    epoch_performance: list[float] = field(default_factory=list)  # after epochs 1..e
    training_seconds: float = 0.0  # 0 unless this run trained
    validation_performance: float | None = None  # the held-out records' score of the weights kept

    @property
    def trained(self) -> bool:
        return self.origin == "trained"

    def row(self) -> dict:
        return {"data": self.data, **self.config.to_dict(), "performance": self.performance,
                "train_mse": self.train_mse, "origin": self.origin, "run_id": self.run_id,
                "training_seconds": round(self.training_seconds, 3),
                **({} if self.validation_performance is None else {"validation_performance": self.validation_performance})}


@dataclass(frozen=True)
class Sweep:
    """The parent run of a sweep and what its children share (picklable: sent to workers)."""

    tracking_uri: str
    experiment_id: str
    parent_run_id: str
    data: PreparedData
    code: str  # mynn.grid.code_digest() of the code that trains
    flow_run_id: str | None = None  # the sweep's Prefect flow run, so `mynn reconcile` can close children
    flow_run_url: str | None = None  # its page in the Prefect UI (a link on every child)

    def with_data(self, data: PreparedData) -> Sweep:
        """The same parent, children on other data (the reproduction's 100/10 run)."""
        return dataclasses.replace(self, data=data)

    def ids(self, config: NetworkConfig) -> tuple[str, str]:
        """(point id, group id) of a config on this sweep's data and code."""
        d = (self.data.train.digest, self.data.test.digest, self.code)
        return point_id(config, *d), group_id(config, *d)


def start_parent(uri: str, experiment_id: str, name: str, kind: str, params: dict,
                 flow_run_id: str | None = None, flow_run_url: str | None = None) -> str:
    """The RUNNING parent run of a sweep or reproduction; its run id."""
    tags = {"mlflow.runName": name, TAG_KIND: kind, "mlflow.source.git.commit": git_state()["git_commit"],
            **source_tags(kind), **prefect_tags(flow_run_id, flow_run_url)}
    client = store.client(uri)
    run_id = client.create_run(experiment_id, run_name=name, tags=tags).info.run_id
    log_params(client, run_id, params)
    return run_id


def reopen_parent(uri: str, run_id: str) -> None:
    """A resumed search's parent run is RUNNING again (``closing_run`` ends it once more)."""
    store.client(uri).update_run(run_id, status="RUNNING")


def close_running_children(uri: str, experiment_id: str, parent_run_id: str, reason: str) -> list[str]:
    """Children of the parent still RUNNING (their process is gone): ended KILLED, ``reason``
    recorded. Their run ids."""
    client = store.client(uri)
    runs = client.search_runs([experiment_id], filter_string=f"tags.`mlflow.parentRunId` = '{parent_run_id}' "
                              "and attributes.status = 'RUNNING'", max_results=5000)
    for run in runs:
        client.set_tag(run.info.run_id, "mynn.failure", reason)
        client.set_terminated(run.info.run_id, status="KILLED")
    return [r.info.run_id for r in runs]


def log_budget(uri: str, run_id: str, trials: int, timeout_minutes: float | None, workers: int) -> None:
    """A search's budget as metrics (a resume may change it; parameters could not change)."""
    ts = now_ms()
    metrics = [Metric("trials_budget", trials, ts, 0), Metric("workers", workers, ts, 0)]
    if timeout_minutes:
        metrics.append(Metric("timeout_minutes", timeout_minutes, ts, 0))
    store.client(uri).log_batch(run_id, metrics=metrics)


def log_parent_inputs(sweep: Sweep) -> None:
    """The sweep's datasets as inputs of its parent run (its Datasets tab), before any child
    starts: the children then link to MLflow's existing dataset row instead of racing to
    insert it (:func:`tracking.runs.log_dataset` retries the one that loses such a race)."""
    log_data_inputs(store.client(sweep.tracking_uri), sweep.parent_run_id, sweep.data)


def _start_child(sweep: Sweep, config: NetworkConfig, origin: str, extra_tags: dict | None = None) -> str:
    pid, gid = sweep.ids(config)
    label = sweep.data.label
    tags = {TAG_KIND: "point", TAG_POINT: pid, TAG_GROUP: gid, TAG_ORIGIN: origin, "mynn.data": label,
            "mynn.code_version": sweep.code, **prefect_tags(sweep.flow_run_id, sweep.flow_run_url),
            "mlflow.note.content": _child_description(sweep, origin), **(extra_tags or {})}
    name = config.run_name() + ("" if label == "full" else f"-{label}")
    client = store.client(sweep.tracking_uri)
    run_id = start_run(client, sweep.experiment_id, config, run_name=name, parent_run_id=sweep.parent_run_id,
                       tags=tags)
    # the point id (a hash) is a tag, not a parameter: MLflow's run comparison shows every parameter
    log_params(client, run_id, {"data": label, "code_version": sweep.code})
    return run_id


def _child_description(sweep: Sweep, origin: str) -> str:
    """A child's description in the MLflow UI: what it is, with links to its parent and its
    Prefect flow run (and to the run its numbers come from, for a derived or reused point)."""
    parent = store.run_ui_url(sweep.tracking_uri, sweep.experiment_id, sweep.parent_run_id)
    kind, _, source = origin.partition(":")
    how = {"trained": "trained in this run",
           "derived": f"derived from the epochs of [run {source[:8]}]"
                      f"({store.run_ui_url(sweep.tracking_uri, sweep.experiment_id, source)})",
           "reused": f"reused from the finished [run {source[:8]}]"
                     f"({store.run_ui_url(sweep.tracking_uri, sweep.experiment_id, source)})"}.get(kind, origin)
    prefect = f" Prefect: [its flow run]({sweep.flow_run_url})." if sweep.flow_run_url else ""
    return f"A point of the sweep [{sweep.parent_run_id[:8]}]({parent}) on data {sweep.data.label}: {how}.{prefect}"


def start_trained_child(sweep: Sweep, training: Training, extra_tags: dict | None = None) -> str:
    """The RUNNING child run that trains ``training``; its run id."""
    return _start_child(sweep, training.config, "trained", {TAG_EPOCHS_TRAINED: str(training.config.epochs),
                                                            **(extra_tags or {})})


def log_performance(uri: str, run_id: str, trained: Trained, data: PreparedData) -> None:
    """A trained child's score: its last epoch's test performance (a single run's evaluate task
    logs the same number), linked to the child's LoggedModel and the test set."""
    link = models.linked(trained.model_uri, dataset_ref(data.test, "test"))
    store.client(uri).log_batch(run_id, metrics=[Metric("performance", trained.performance, now_ms(), 0, **link)])


def trained_points(sweep: Sweep, training: Training, run_id: str, trained: Trained) -> list[PointResult]:
    """The trained point and, for each smaller epoch count of its group, a derived child run."""
    perf = [h["performance"] for h in trained.history]
    mse = [h["train_mse"] for h in trained.history]
    val = [h.get("validation_performance") for h in trained.history]
    cfg = training.config
    results = [PointResult(cfg, sweep.data.label, sweep.ids(cfg)[0], run_id, "trained", trained.performance,
                           trained.final["train_mse"], perf, trained.training_seconds,
                           trained.validation_performance)]
    for e in training.epochs:  # (a point with early stopping is a group of its own: nothing derived)
        if e != cfg.epochs:
            results.append(log_copy(sweep, dataclasses.replace(cfg, epochs=e), f"derived:{run_id}", perf[:e], mse[:e],
                                    val[:e]))
    return results


def log_copies(sweep: Sweep, copies: list[Copy]) -> list[PointResult]:
    """A child run per reused or derived point, its numbers taken from the finished run."""
    client = store.client(sweep.tracking_uri)
    out = []
    for c in copies:
        out.append(log_reused(sweep, c.config, f"{c.kind}:{c.run_id}", client.get_run(c.run_id),
                              logged_history(client, c.run_id)))
    return out


def log_reused(sweep: Sweep, config: NetworkConfig, origin: str, run, history: list[dict],
               extra_tags: dict | None = None) -> PointResult:
    """A child for a point taken from finished ``run`` (its logged ``history``): a reused point
    gets that run's scores as they are (with early stopping, of the epoch it kept); a derived
    one the first ``config.epochs`` epochs of the longer training."""
    history = [h for h in history if h["performance"] is not None][:config.epochs]
    perf, mse = [h["performance"] for h in history], [h["train_mse"] for h in history]
    val = [h.get("validation_performance") for h in history]
    kept = None
    if origin.startswith("reused:") and "performance" in run.data.metrics:
        kept = (run.data.metrics["performance"], run.data.metrics.get(MODEL_VALIDATION), run.data.tags)
    return log_copy(sweep, config, origin, perf, mse, val, kept, extra_tags)


def log_copy(sweep: Sweep, config: NetworkConfig, origin: str, epoch_performance: list[float],
             epoch_mse: list[float], epoch_validation: list[float | None] | None = None,
             kept: tuple[float, float | None, dict] | None = None, extra_tags: dict | None = None) -> PointResult:
    """A child run for a point whose numbers come from another run (derived or reused):
    the same parameters, and the per-epoch metrics up to its epoch count. ``kept``: (test score,
    validation score, tags) of the weights the other run kept, when they are not its last
    epoch's (early stopping)."""
    epoch_validation = epoch_validation or [None] * len(epoch_performance)
    perf, val = epoch_performance[-1], epoch_validation[-1]
    tags = dict(extra_tags or {})
    if kept is not None:
        perf, val = kept[0], kept[1]
        tags.update({k: kept[2][k] for k in ("mynn.best_epoch", "mynn.stopped_epoch") if k in kept[2]})
    run_id = _start_child(sweep, config, origin, tags)
    with closing_run(sweep.tracking_uri, run_id):
        ts = now_ms()
        metrics = [Metric("performance", perf, ts, 0)]
        if val is not None:
            metrics.append(Metric(MODEL_VALIDATION, val, ts, 0))
        for e, (p, m, v) in enumerate(zip(epoch_performance, epoch_mse, epoch_validation), start=1):
            metrics += [Metric("epoch_performance", p, ts, e), Metric("train_mse", m, ts, e)]
            metrics += [Metric(EPOCH_VALIDATION, v, ts, e)] if v is not None else []
        store.client(sweep.tracking_uri).log_batch(run_id, metrics=metrics)
    return PointResult(config, sweep.data.label, sweep.ids(config)[0], run_id, origin, perf,
                       epoch_mse[-1], list(epoch_performance), validation_performance=val)


def finished_points(uri: str, experiment_id: str) -> tuple[dict[str, Finished], dict[str, list[Finished]]]:
    """Finished point runs of an experiment: by point id, and trained runs by group id."""
    client = store.client(uri)
    by_point: dict[str, Finished] = {}
    by_group: dict[str, list[Finished]] = {}
    token = None
    while True:
        page = client.search_runs([experiment_id], filter_string=f"tags.`{TAG_KIND}` = 'point' "
                                  "and attributes.status = 'FINISHED'", max_results=5000, page_token=token)
        for run in page:
            t = run.data.tags
            if t.get(TAG_PRUNED) == "true":  # stopped by a search's pruner: not the point it names
                continue
            found = Finished(run.info.run_id, t.get(TAG_ORIGIN, ""),
                             int(t[TAG_EPOCHS_TRAINED]) if TAG_EPOCHS_TRAINED in t else None,
                             dict(run.data.params))
            pid = t.get(TAG_POINT)
            if pid and (pid not in by_point or found.origin == "trained"):
                by_point[pid] = found
            if found.origin == "trained" and t.get(TAG_GROUP):
                by_group.setdefault(t[TAG_GROUP], []).append(found)
        token = page.token
        if not token:
            return by_point, by_group
