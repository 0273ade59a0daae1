"""The one train-and-log path: a single run's train task and every sweep child train through it.

:func:`train_and_log` runs :func:`mynn.train.fit` with a :class:`tracking.training.RunRecorder`:
a checkpoint and the metrics of every epoch as it ends, resume from the last checkpoint of an
interrupted run, then the weights, ``config.json`` and the totals. :func:`train_points` is the
sweep worker's job: one child run trained that way, plus a derived child per smaller epoch
count of its group. Plain functions (no Prefect): the tasks in :mod:`flows.tasks` wrap them.
"""
from __future__ import annotations

import time
from pathlib import Path

from mynn import paths
from mynn.config import NetworkConfig
from mynn.dataset import Dataset
from mynn.grid import Training
from mynn.prepare import PreparedData
from mynn.train import fit
from tracking import sweeps
from tracking.runs import closing_run, log_data, log_validation
from tracking.training import RunRecorder, Trained


def train_and_log(data: PreparedData, config: NetworkConfig, tracking_uri: str, run_id: str,
                  run_dir: str | Path | None = None, log=None, datasets: tuple[Dataset, Dataset] | None = None,
                  on_epoch=None, stop=None) -> Trained:
    """Train ``config`` on ``data`` inside MLflow run ``run_id`` (files in ``run_dir``, by
    default ``<runs dir>/<run id>``); resumes from the run's checkpoints if it has any.
    ``datasets``: ``data.load()`` if the caller has loaded it already; ``on_epoch(epoch)``: called
    after each epoch is recorded (and once with the epoch a resumed run starts from);
    ``stop(stats)``: after each recorded epoch, true to end training there (a pruner)."""
    recorder = RunRecorder(tracking_uri, run_id, Path(run_dir) if run_dir else paths.runs_dir() / run_id, log=log)
    network = recorder.resume(config)
    train, test = datasets or data.load()
    if config.validation_records:  # which records are held out, before any epoch
        log_validation(tracking_uri, run_id, data, config)
    t0 = time.perf_counter()

    def record(stats, net):
        recorder.on_epoch(stats, net)
        if on_epoch is not None:
            on_epoch(stats.epoch)
        return stop is not None and bool(stop(stats))
    if on_epoch is not None and recorder.start:
        on_epoch(recorder.start)
    try:
        net, history = fit(config, train.pixels, train.labels, test=(test.pixels, test.labels),
                           callback=record, network=network, start_epoch=recorder.start,
                           best=recorder.best_so_far(config))
    except BaseException:
        recorder.on_epoch.cancel()
        raise
    return recorder.finish(net, history, config, records=len(train) - config.validation_records,
                           task_seconds=time.perf_counter() - t0, example_pixels=test.pixels[:2])


def train_points(sweep: sweeps.Sweep, training: Training, run_dir: str | Path, log=None) -> list[sweeps.PointResult]:
    """Train one group of a sweep (to its largest epoch count) as a full child run of the sweep's
    parent, then log a derived child for each smaller epoch count."""
    uri = sweep.tracking_uri
    datasets = sweep.data.load()  # missing or damaged data fails before a child run exists
    run_id = sweeps.start_trained_child(sweep, training)
    with closing_run(uri, run_id):
        log_data(uri, run_id, sweep.data)
        trained = train_and_log(sweep.data, training.config, uri, run_id, Path(run_dir) / run_id, log, datasets)
        sweeps.log_performance(uri, run_id, trained, sweep.data)
    return sweeps.trained_points(sweep, training, run_id, trained)
