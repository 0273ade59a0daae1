"""Sweeps in MLflow: one parent run, one child run per point, reuse of finished points.

Every child is linked to its parent by passing the parent's run id explicitly
(``mlflow.parentRunId``), never through an "active run", so children can be created from
worker processes or a Dask cluster. A child's origin is a tag:

- ``trained``: this run trained the network (to the largest epoch count of its group);
- ``derived:<run id>``: an epoch count taken from the history of that longer training;
- ``reused:<run id>``: the same point (same config, data and code) finished earlier.
"""
from __future__ import annotations

import csv
import dataclasses
import io
from dataclasses import dataclass, field
from pathlib import Path

from mlflow import MlflowClient
from mlflow.entities import Metric

from mynn.config import NetworkConfig
from mynn.arrays import load_npy
from mynn.grid import Training, group_id, point_id
from mynn.train import fit
from tracking.runs import (TAG_PREFECT_FLOW_RUN_ID, EpochLogger, closing_run, log_params, logged_history, now_ms,
                           start_run)

TAG_KIND = "mynn.kind"
TAG_POINT = "mynn.point_id"
TAG_GROUP = "mynn.group_id"
TAG_ORIGIN = "mynn.origin"
TAG_EPOCHS_TRAINED = "mynn.epochs_trained"


@dataclass(frozen=True)
class DataRef:
    """Prepared data a worker can load by path (see flows.tasks.PreparedData)."""

    label: str  # short name shown in run names and reports, e.g. "full" or "small"
    train_dir: str
    test_dir: str
    train_digest: str
    test_digest: str


@dataclass(frozen=True)
class PointResult:
    """One point of a sweep and where its numbers came from."""

    config: NetworkConfig
    data: str  # DataRef.label
    point_id: str
    run_id: str  # the child run under this sweep's parent
    origin: str  # trained | derived:<run id> | reused:<run id>
    performance: float
    train_mse: float
    epoch_performance: list[float] = field(default_factory=list)  # after epochs 1..e
    training_seconds: float = 0.0  # 0 unless this run trained

    @property
    def trained(self) -> bool:
        return self.origin == "trained"

    def row(self) -> dict:
        return {"data": self.data, **self.config.to_dict(), "performance": self.performance,
                "train_mse": self.train_mse, "origin": self.origin, "run_id": self.run_id,
                "training_seconds": round(self.training_seconds, 3)}


@dataclass(frozen=True)
class TrainingJob:
    """Everything a worker needs to run one training and log its points (picklable)."""

    tracking_uri: str
    experiment_id: str
    parent_run_id: str
    training: Training
    data: DataRef
    code: str
    run_dir: str
    flow_run_id: str | None = None  # the sweep's Prefect flow run, so `mynn reconcile` can close children


def _child_tags(pid: str, gid: str, origin: str, data: DataRef, code: str,
                flow_run_id: str | None = None) -> dict[str, str]:
    tags = {TAG_KIND: "point", TAG_POINT: pid, TAG_GROUP: gid, TAG_ORIGIN: origin,
            "mynn.data": data.label, "mynn.code_version": code}
    if flow_run_id:
        tags[TAG_PREFECT_FLOW_RUN_ID] = flow_run_id
    return tags


def _child_params(data: DataRef, code: str, pid: str) -> dict[str, str]:
    return {"data": data.label, "train_digest": data.train_digest, "test_digest": data.test_digest,
            "code_version": code, "point_id": pid}


def _name(config: NetworkConfig, data: DataRef) -> str:
    return config.run_name() + ("" if data.label == "full" else f"-{data.label}")


def run_training(job: TrainingJob) -> list[PointResult]:
    """Train one group and log its points as children of the sweep's parent (worker side).

    The largest epoch count is trained in a child run that logs every epoch as it happens;
    each smaller count gets a child run whose metrics are taken from that history.
    """
    client = MlflowClient(job.tracking_uri)
    cfg, data, code = job.training.config, job.data, job.code
    gid = group_id(cfg, data.train_digest, data.test_digest, code)
    pid = point_id(cfg, data.train_digest, data.test_digest, code)
    train, test = load_npy(data.train_dir), load_npy(data.test_dir)
    tags = _child_tags(pid, gid, "trained", data, code, job.flow_run_id)
    tags[TAG_EPOCHS_TRAINED] = str(cfg.epochs)
    run_id = start_run(client, job.experiment_id, cfg, run_name=_name(cfg, data),
                       parent_run_id=job.parent_run_id, tags=tags)
    out = Path(job.run_dir) / run_id
    with closing_run(client, run_id):
        log_params(client, run_id, _child_params(data, code, pid))
        net, history = fit(cfg, train.pixels, train.labels, test=(test.pixels, test.labels),
                           callback=EpochLogger(client, run_id, out / "checkpoints"))
        seconds = sum(h.seconds for h in history)
        ts = now_ms()
        client.log_batch(run_id, metrics=[Metric("performance", history[-1].performance, ts, 0),
                                          Metric("training_seconds", seconds, ts, 0),
                                          Metric("records_per_s", len(train) * len(history) / seconds, ts, 0)])
        client.log_artifact(run_id, str(net.save(out / "weights.npz")))
    perf = [h.performance for h in history]
    mse = [h.train_mse for h in history]
    results = [PointResult(cfg, data.label, pid, run_id, "trained", perf[-1], mse[-1], perf, seconds)]
    for e in job.training.epochs:
        if e == cfg.epochs:
            continue
        results.append(log_copy(client, job.experiment_id, job.parent_run_id, dataclasses.replace(cfg, epochs=e),
                                data, code, f"derived:{run_id}", perf[:e], mse[:e], job.flow_run_id))
    return results


def log_copy(client: MlflowClient, experiment_id: str, parent_run_id: str, config: NetworkConfig, data: DataRef,
             code: str, origin: str, epoch_performance: list[float], epoch_mse: list[float],
             flow_run_id: str | None = None) -> PointResult:
    """A child run for a point whose numbers come from another run (derived or reused):
    the same parameters, and the per-epoch metrics up to its epoch count."""
    pid = point_id(config, data.train_digest, data.test_digest, code)
    gid = group_id(config, data.train_digest, data.test_digest, code)
    run_id = start_run(client, experiment_id, config, run_name=_name(config, data), parent_run_id=parent_run_id,
                       tags=_child_tags(pid, gid, origin, data, code, flow_run_id))
    with closing_run(client, run_id):
        log_params(client, run_id, _child_params(data, code, pid))
        ts = now_ms()
        metrics = [Metric("performance", epoch_performance[-1], ts, 0)]
        for e, (p, m) in enumerate(zip(epoch_performance, epoch_mse), start=1):
            metrics += [Metric("epoch_performance", p, ts, e), Metric("train_mse", m, ts, e)]
        client.log_batch(run_id, metrics=metrics)
    return PointResult(config, data.label, pid, run_id, origin, epoch_performance[-1], epoch_mse[-1],
                       list(epoch_performance))


@dataclass(frozen=True)
class Finished:
    """A finished point run found in the store."""

    run_id: str
    origin: str
    epochs_trained: int | None
    params: dict = field(default_factory=dict, compare=False, repr=False)

    def is_point(self, config: NetworkConfig, data: DataRef, code: str, epochs: int | None = None) -> bool:
        """Whether this run's recorded parameters are this point: the config (with ``epochs``
        if given), the train and test content digests and the code version. A point id is a
        key; this checks what the key stands for before a finished run is reused."""
        want = {k: str(v) for k, v in config.to_dict().items()}
        if epochs is not None:
            want["epochs"] = str(epochs)
        want.update(train_digest=data.train_digest, test_digest=data.test_digest, code_version=code)
        return all(self.params.get(k) == v for k, v in want.items())


def finished_points(client: MlflowClient, experiment_id: str) -> tuple[dict[str, Finished], dict[str, list[Finished]]]:
    """Finished point runs of an experiment: by point id, and trained runs by group id."""
    by_point: dict[str, Finished] = {}
    by_group: dict[str, list[Finished]] = {}
    token = None
    while True:
        page = client.search_runs([experiment_id], filter_string=f"tags.`{TAG_KIND}` = 'point' "
                                  "and attributes.status = 'FINISHED'", max_results=5000, page_token=token)
        for run in page:
            t = run.data.tags
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


def history_of(client: MlflowClient, run_id: str) -> tuple[list[float], list[float]]:
    """(epoch_performance, train_mse) by epoch 1.. as logged on a run (epochs with both)."""
    history = [h for h in logged_history(client, run_id) if h["performance"] is not None]
    return [h["performance"] for h in history], [h["train_mse"] for h in history]


def table(results: list[PointResult]) -> tuple[str, str]:
    """The sweep's summary as (CSV, markdown), one row per point."""
    rows = [r.row() for r in results]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    varied = [k for k in rows[0] if k not in ("run_id", "train_mse", "training_seconds")
              and (k in ("performance", "origin") or len({str(r[k]) for r in rows}) > 1)]
    md = ["| " + " | ".join(varied) + " |", "|" + "---|" * len(varied)]
    for r in sorted(rows, key=lambda r: [str(r[k]) for k in varied if k not in ("performance", "origin")]):
        md.append("| " + " | ".join(f"{r[k]:.4f}" if k == "performance" else str(r[k]) for k in varied) + " |")
    return buf.getvalue(), "\n".join(md) + "\n"

