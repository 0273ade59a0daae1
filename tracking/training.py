"""The MLflow side of training a run: epoch checkpoints, per-epoch metrics, resume, results.

:class:`RunRecorder` is what the one train-and-log path (:func:`flows.training.train_and_log`)
hands to :func:`mynn.train.fit`: it finds where an interrupted run stopped (checking the
checkpoints against what the run logged), writes a checkpoint and logs the metrics of every
epoch as it ends, and at the end logs the weights, ``config.json`` and the totals. A single
run and every sweep child go through it, so they record the same things.
"""
from __future__ import annotations

import dataclasses
import json
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from mlflow import MlflowClient
from mlflow.entities import Metric, RunTag

from mynn.config import NetworkConfig
from mynn.files import AtomicWrite
from mynn.network import Network
from mynn.train import EpochStats, best_epoch
from tracking import images, models, store
from tracking.runs import ResumeError, check_checkpoints, now_ms


#: Time and speed metrics carry this prefix, so MLflow's metrics page draws them in a section of
#: their own, apart from the scores (train_mse, epoch_performance, performance, accuracy_digit/*).
TIMING = "timing/"
#: Per epoch (step = epoch): the held-out validation records' score; and, at step 0, that of the
#: weights the run keeps (the best epoch's with early stopping, else the last one's).
EPOCH_VALIDATION, MODEL_VALIDATION = "validation_performance", "model_validation_performance"
EPOCH_SECONDS, TRAINING_SECONDS, RECORDS_PER_S = f"{TIMING}epoch_seconds", f"{TIMING}training_seconds", f"{TIMING}records_per_s"


@dataclass(frozen=True)
class Trained:
    """A trained network on disk and its per-epoch history (every epoch, also across a resume)."""

    weights_path: Path
    history: list[dict] = field(default_factory=list)  # [{epoch, train_mse, performance}]
    training_seconds: float = 0.0
    records_per_s: float = 0.0
    resumed_from_epoch: int = 0
    model_uri: str | None = None  # models:/<model_id>: the run's MLflow 3 LoggedModel of these weights
    best_epoch: int | None = None  # with a validation set: the epoch of the best validation score
    stopped_epoch: int | None = None  # the last epoch trained (below config.epochs: stopped early or pruned)
    kept_best: bool = False  # early stopping: the weights are the best epoch's, not the last one's

    @property
    def final(self) -> dict | None:
        """The history entry of the weights kept: the best epoch's with early stopping, else the last."""
        if not self.history:
            return None
        return next(h for h in self.history if h["epoch"] == self.best_epoch) if self.kept_best else self.history[-1]

    @property
    def performance(self) -> float | None:
        """The test score of the weights kept (None without a test set)."""
        return self.final["performance"] if self.history else None

    @property
    def validation_performance(self) -> float | None:
        """The validation score of the weights kept (None without a validation set)."""
        return self.final.get("validation_performance") if self.history else None


class RunRecorder:
    """Records the training of MLflow run ``run_id``; files go to ``run_dir`` (checkpoints/,
    weights.npz, config.json)."""

    def __init__(self, tracking_uri: str, run_id: str, run_dir: Path, log=None):
        self.client, self.run_id, self.run_dir = store.client(tracking_uri), run_id, Path(run_dir)
        self.checkpoint_dir = self.run_dir / "checkpoints"
        self.on_epoch = EpochLogger(self.client, run_id, self.checkpoint_dir, log=log)
        self.log = log
        self.start = 0

    def resume(self, config: NetworkConfig) -> Network | None:
        """The network of the run's last checkpoint (None for a run that logged no epoch yet).

        Refuses (:class:`ResumeError`) checkpoints of another config, and a run whose logged
        epochs are not covered by checkpoints (:func:`check_checkpoints`)."""
        found = check_checkpoints(self.client, self.run_id, self.checkpoint_dir)
        if found is None:
            return None
        self.start, path = found
        network = Network.load(path)
        if dataclasses.replace(network.config, epochs=config.epochs) != config:
            raise ResumeError(f"checkpoint {path} holds a network of {network.config.run_name()}, not of "
                              f"{config.run_name()}: not a checkpoint of this run")
        if self.log is not None:
            self.log(f"resuming from checkpoint {path} (epoch {self.start} of {config.epochs})")
        self.client.set_tag(self.run_id, "mynn.resumed_from_epoch", str(self.start))
        log_missing_checkpoint_metrics(self.client, self.run_id, path)
        return network

    def best_so_far(self, config: NetworkConfig) -> tuple[int, float, Network] | None:
        """Resuming with early stopping: (epoch, validation score, network) of the best epoch
        logged so far, the network from that epoch's checkpoint (None otherwise)."""
        if not (config.patience and self.start):
            return None
        history = [h for h in logged_history(self.client, self.run_id) if h["epoch"] <= self.start]
        best = best_epoch(history)
        if best is None:
            return None
        network = Network.load(self.checkpoint_dir / f"epoch-{best:03d}.npz")
        return best, next(h["validation_performance"] for h in history if h["epoch"] == best), network

    def finish(self, network: Network, history: list[EpochStats], config: NetworkConfig, records: int,
               task_seconds: float, example_pixels: np.ndarray | None = None) -> Trained:
        """Log the weights, ``config.json``, the totals (over every epoch, also across a resume)
        and, given ``example_pixels`` ((k, 784) raw rows for the model's input example), the
        network as the run's LoggedModel (:func:`tracking.models.log_model`)."""
        client, run_id = self.client, self.run_id
        self.on_epoch.wait()
        seconds = sum(h.seconds for h in history)
        if self.start:  # (an epoch's seconds under its old name too: a run started before timing/)
            logged = [m for key in ("epoch_seconds", EPOCH_SECONDS) for m in client.get_metric_history(run_id, key)]
            seconds = sum({m.step: m.value for m in logged if 1 <= m.step <= config.epochs}.values())
        epochs_done = history[-1].epoch if history else self.start  # (seconds cover epochs 1.. on a resume too)
        weights = network.save(self.run_dir / "weights.npz")
        client.log_artifact(run_id, str(weights))
        config_file = self.run_dir / "config.json"
        config_file.write_text(json.dumps(config.to_dict(), indent=2))
        client.log_artifact(run_id, str(config_file))
        rate = records * epochs_done / seconds if seconds else 0.0
        ts = now_ms()
        client.log_batch(run_id, metrics=[Metric(TRAINING_SECONDS, seconds, ts, 0),
                                          Metric(RECORDS_PER_S, rate, ts, 0),
                                          Metric(f"{TIMING}train_task_seconds", task_seconds, ts, 0)])
        all_history = logged_history(client, run_id) if self.start else [h.to_dict() for h in history]
        best = best_epoch(all_history)
        stopped = all_history[-1]["epoch"] if all_history else self.start
        kept_best = bool(config.patience) and best is not None
        if best is not None:  # the validation score of the weights kept, and which epoch they are
            kept = next(h for h in all_history if h["epoch"] == (best if kept_best else stopped))
            client.log_batch(run_id, metrics=[Metric(MODEL_VALIDATION, kept["validation_performance"], ts, 0)],
                             tags=[RunTag("mynn.best_epoch", str(best)), RunTag("mynn.stopped_epoch", str(stopped))])
        model_uri = None
        if example_pixels is not None:
            model_uri = models.log_model(client, run_id, weights, example_pixels,
                                         step=best if kept_best else stopped)
        return Trained(weights, all_history, seconds, rate, self.start, model_uri, best, stopped, kept_best)


class EpochLogger:
    """Training callback: writes the epoch's stats (``epoch-NNN.json``), then its checkpoint
    (``epoch-NNN.npz``) into ``checkpoint_dir``, then logs the epoch's metrics with ``step=epoch``.

    In that order, wherever the process is stopped: an epoch whose metrics are logged always has
    its checkpoint, so a resumed run never logs an epoch twice; and a checkpoint always has its
    stats file, from which a resumed run logs the metrics the stopped one did not get to
    (:func:`log_missing_checkpoint_metrics`). A checkpoint that cannot be written takes its
    stats file with it.

    The epoch's pictures of the weights (:mod:`tracking.images`) are logged by a thread of their
    own while the next epoch trains; :meth:`wait` waits for them (and raises their error).
    """

    def __init__(self, client: MlflowClient, run_id: str, checkpoint_dir: Path, log=None):
        self.client, self.run_id, self.checkpoint_dir = client, run_id, Path(checkpoint_dir)
        self.log = log
        self._images: list[Future] = []
        self._pool: ThreadPoolExecutor | None = None

    def __call__(self, stats: EpochStats, network: Network) -> None:
        path = self.checkpoint_dir / f"epoch-{stats.epoch:03d}.npz"
        _write_json_atomic(path.with_suffix(".json"), stats.to_dict())
        try:
            network.save(path)
        except BaseException:  # (a full disk, a stop): no stats file is left without its checkpoint
            path.with_suffix(".json").unlink(missing_ok=True)
            raise
        log_epoch_metrics(self.client, self.run_id, stats.to_dict())
        if self._pool is None:
            self._pool = ThreadPoolExecutor(1, thread_name_prefix="mynn-images")
        self._images.append(self._pool.submit(images.log_weight_images, self.client, self.run_id, network.copy(),
                                              stats.epoch))
        if self.log is not None:
            perf = "" if stats.performance is None else f", performance {stats.performance:.4f}"
            if stats.validation_performance is not None:
                perf += f", validation {stats.validation_performance:.4f}"
            self.log(f"epoch {stats.epoch}: train_mse {stats.train_mse:.5f}{perf}, "
                     f"{stats.records_per_s:,.0f} records/s")


    def wait(self) -> None:
        """Wait until every epoch's pictures are logged; the first error, if any, is raised."""
        pending, self._images = self._images, []
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
        for future in pending:
            future.result()

    def cancel(self) -> None:
        """Training failed or was stopped: drop the pictures not yet logged (the failure is what
        the caller raises; the one being logged is let finish)."""
        self._images = []
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None


def log_epoch_metrics(client: MlflowClient, run_id: str, stats: dict) -> None:
    """One epoch's metrics (an EpochStats as a dict) with ``step=epoch``."""
    ts, e = now_ms(), stats["epoch"]
    metrics = [Metric("train_mse", stats["train_mse"], ts, e), Metric(EPOCH_SECONDS, stats["seconds"], ts, e),
               Metric(f"{TIMING}epoch_records_per_s", stats["records_per_s"], ts, e)]
    if stats.get("performance") is not None:
        metrics.append(Metric("epoch_performance", stats["performance"], ts, e))
    if stats.get("validation_performance") is not None:
        metrics.append(Metric(EPOCH_VALIDATION, stats["validation_performance"], ts, e))
    client.log_batch(run_id, metrics=metrics)


def log_missing_checkpoint_metrics(client: MlflowClient, run_id: str, checkpoint: Path) -> bool:
    """On resume: if the process stopped between writing a checkpoint and logging its
    metrics, log them now from the checkpoint's stats file. True if it did."""
    epoch = int(checkpoint.stem.split("-")[1])
    if any(m.step == epoch for m in client.get_metric_history(run_id, "train_mse")):
        return False
    stats_file = checkpoint.with_suffix(".json")
    if not stats_file.exists():
        return False
    log_epoch_metrics(client, run_id, json.loads(stats_file.read_text()))
    return True


def _write_json_atomic(path: Path, obj: dict) -> None:
    with AtomicWrite(path) as tmp:
        Path(tmp).write_text(json.dumps(obj))


def logged_history(client: MlflowClient, run_id: str) -> list[dict]:
    """The per-epoch history as logged on a run: [{epoch, train_mse, performance,
    validation_performance}], by epoch."""
    mse = {m.step: m.value for m in client.get_metric_history(run_id, "train_mse")}
    perf = {m.step: m.value for m in client.get_metric_history(run_id, "epoch_performance")}
    val = {m.step: m.value for m in client.get_metric_history(run_id, EPOCH_VALIDATION)}
    return [{"epoch": e, "train_mse": mse[e], "performance": perf.get(e), "validation_performance": val.get(e)}
            for e in sorted(mse)]
