"""The pipeline's Prefect tasks: download -> preprocess -> train -> evaluate -> register.

Each task is a thin, typed wrapper over :mod:`mynn` or :mod:`tracking`; they pass paths and
ids, never large arrays, and hold no global state, so they can be imported into any flow::

    from flows.tasks import download, preprocess, train, evaluate, register

Each is also testable without an orchestrator through ``task.fn(...)``.
"""
from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from mlflow import MlflowClient
from mlflow.entities import Metric
from prefect import get_run_logger, task
from prefect.exceptions import MissingContextError
from prefect.cache_policies import NO_CACHE

from mynn import paths
from mynn.arrays import load_npy
from mynn.cache import forget
from mynn.config import NetworkConfig
from mynn.dataset import DataFormatError
from mynn.fetch import fetch
from mynn.network import Network
from mynn.prepare import prepare
from mynn.sources import Source, redact_url, resolve_source
from mynn.train import fit
from tracking import evaluation as _evaluation
from tracking import registry as _registry
from tracking.runs import (EpochLogger, ResumeError, check_checkpoints, log_dataset, log_missing_checkpoint_metrics, log_params,
                           logged_history, now_ms)
from tracking.store import run_ui_url


def _logger():
    try:
        return get_run_logger()
    except MissingContextError:  # called through .fn() outside a flow: plain logging
        import logging

        return logging.getLogger("mynn")


@dataclass(frozen=True)
class Downloaded:
    """The two CSV files in the cache."""

    source: str
    train_path: Path
    test_path: Path
    train_sha256: str
    test_sha256: str
    verified: bool  # both digests matched known ones
    bytes_transferred: int  # bytes read from the source (0 when both came from the cache)
    train_origin: str = ""  # the user's file or URL (no credentials): what errors and records name
    test_origin: str = ""


@dataclass(frozen=True)
class PreparedData:
    """Parsed arrays on disk (mynn.arrays.save_npy folders), named by content digest."""

    source: str
    train_dir: Path
    test_dir: Path
    train_digest: str
    test_digest: str
    train_records: int
    test_records: int
    train_known_as: str | None = None
    test_known_as: str | None = None


@dataclass(frozen=True)
class Trained:
    """A trained network on disk and its per-epoch history."""

    weights_path: Path
    history: list[dict] = field(default_factory=list)
    training_seconds: float = 0.0
    records_per_s: float = 0.0
    resumed_from_epoch: int = 0


@task(name="download", cache_policy=NO_CACHE)
def download(source: str = "shipped", cache_dir: str | None = None) -> Downloaded:
    """Fetch mnist_train/mnist_test (plain or .gz) from ``source`` into the digest-keyed cache.

    ``source``: "shipped" (the repository's copy), "shipped-small" (the book's 100/10
    subsets), "book" (the book's web addresses), a folder, a file:// or an http(s):// base
    URL. Network errors are retried with backoff inside mynn.download; a digest mismatch is not
    retried and nothing is cached. A second call is a cache hit that transfers nothing.
    Credentials in the URL (``https://user:password@host/``) are sent, never recorded: the
    returned ``source`` has them replaced by ``***``.
    """
    log = _logger()
    last = {}

    def progress(name: str, done: int, total: int | None) -> None:
        step = 10 * done // total if total else done // (10 << 20)
        if last.get(name) != step:
            last[name] = step
            log.info(f"download {name}: {done / 1e6:.1f} MB" + (f" of {total / 1e6:.1f} MB" if total else ""))

    src = source if isinstance(source, Source) else resolve_source(source)
    # a local file is read in well under a second: progress lines only for downloads
    result = fetch(src, cache_dir or paths.cache_dir(), progress=progress if src.remote else None)
    for f in (result.train, result.test):
        state = ("from the cache, nothing read" if f.bytes_transferred == 0
                 else f"{f.bytes_transferred:,} bytes read")
        log.info(f"{f.split}: {f.origin} -> {f.path} ({state}, sha256 {f.sha256[:12]}, "
                 f"{'verified: the digest pinned by the source' if f.verified else 'no pinned digest'})")
    return Downloaded(redact_url(source) if isinstance(source, str) else src.spec,
                      result.train.path, result.test.path, result.train.sha256,
                      result.test.sha256, result.train.verified and result.test.verified,
                      result.train.bytes_transferred + result.test.bytes_transferred,
                      result.train.origin, result.test.origin)


@task(name="preprocess", cache_policy=NO_CACHE)
def preprocess(downloaded: Downloaded, cache_dir: str | None = None) -> PreparedData:
    """Parse both files with mynn's strict reader into .npy arrays keyed by content digest
    (a cache hit skips parsing); malformed files, and a training file whose records all
    have one label, raise mynn.dataset.DataFormatError."""
    root = cache_dir or paths.cache_dir()
    prepared = []
    for path, sha, origin, split in ((downloaded.train_path, downloaded.train_sha256, downloaded.train_origin, "train"),
                                     (downloaded.test_path, downloaded.test_sha256, downloaded.test_origin, "test")):
        try:
            prepared.append(prepare(path, sha, root, split=split, origin=origin or None))
        except DataFormatError:
            forget(path, root)  # refused bytes do not stay in the cache
            raise
    tr, te = prepared
    _logger().info(f"train: {tr.records} records ({tr.known_as or 'unknown set'}, digest {tr.digest[:12]}); "
                   f"test: {te.records} records ({te.known_as or 'unknown set'}, digest {te.digest[:12]})")
    return PreparedData(downloaded.source, tr.directory, te.directory, tr.digest, te.digest, tr.records,
                        te.records, tr.known_as, te.known_as)


@task(name="log-data", cache_policy=NO_CACHE)
def log_data(data: PreparedData, downloaded: Downloaded, tracking_uri: str, run_id: str) -> None:
    """Record the data source and both datasets (digest, size) on the MLflow run."""
    client = MlflowClient(tracking_uri)
    logged = client.get_run(run_id).data.params  # a resumed run: its data must be the same bytes
    for key, now in (("train_digest", data.train_digest), ("test_digest", data.test_digest)):
        if logged.get(key) not in (None, now):
            raise ResumeError(f"run {run_id} was trained on data with {key} {logged[key]}, but the source "
                             f"{data.source} now gives {now}: a run resumes only on the data it started with")
    log_params(client, run_id, {"source": data.source, "train_digest": data.train_digest,
                                "test_digest": data.test_digest, "train_records": data.train_records,
                                "test_records": data.test_records, "data_verified": str(downloaded.verified).lower(),
                                "train_file_sha256": downloaded.train_sha256,
                                "test_file_sha256": downloaded.test_sha256,
                                # (MLflow keeps one dataset entity per name and digest in an experiment,
                                # so the dataset's source is where it was first seen; these are this run's)
                                "train_file": downloaded.train_origin, "test_file": downloaded.test_origin})
    for ctx, name, digest, n, path, origin in (
            ("training", data.train_known_as or "train", data.train_digest, data.train_records, downloaded.train_path,
             downloaded.train_origin),
            ("evaluation", data.test_known_as or "test", data.test_digest, data.test_records, downloaded.test_path,
             downloaded.test_origin)):
        log_dataset(client, run_id, name=name, digest=digest, source=origin or f"{data.source}:{Path(path).name}",
                    records=n, context=ctx)


@task(name="train", cache_policy=NO_CACHE)
def train(data: PreparedData, config: NetworkConfig, tracking_uri: str, run_id: str,
          run_dir: str | None = None) -> Trained:
    """Train the network of ``config`` on the prepared data.

    Every epoch's metrics go to the MLflow run with ``step=epoch`` as they happen, and a
    checkpoint is written per epoch into ``<run_dir>/checkpoints``. If that folder already
    holds checkpoints of this run (a retried flow), training resumes from the last one.
    """
    log = _logger()
    client = MlflowClient(tracking_uri)
    out = Path(run_dir) if run_dir else paths.runs_dir() / run_id
    ckpt_dir = out / "checkpoints"
    train_ds, test_ds = load_npy(data.train_dir), load_npy(data.test_dir)
    network, start = None, 0
    found = check_checkpoints(client, run_id, ckpt_dir)
    if found is not None:
        start, path = found
        network = Network.load(path)
        if dataclasses.replace(network.config, epochs=config.epochs) != config:
            raise ResumeError(f"checkpoint {path} holds a network of {network.config.run_name()}, not of "
                             f"{config.run_name()}: not a checkpoint of this run")
        log.info(f"resuming from checkpoint {path} (epoch {start} of {config.epochs})")
        client.set_tag(run_id, "mynn.resumed_from_epoch", str(start))
        log_missing_checkpoint_metrics(client, run_id, path)
    t0 = time.perf_counter()
    net, history = fit(config, train_ds.pixels, train_ds.labels, test=(test_ds.pixels, test_ds.labels),
                       callback=EpochLogger(client, run_id, ckpt_dir, log=log.info), network=network,
                       start_epoch=start)
    seconds = sum(h.seconds for h in history)
    if start:  # a resumed run: the totals cover every epoch, before and after the resume
        seconds = sum({m.step: m.value for m in client.get_metric_history(run_id, "epoch_seconds")
                       if 1 <= m.step <= config.epochs}.values())
    epochs_done = config.epochs if start else len(history)
    weights = net.save(out / "weights.npz")
    client.log_artifact(run_id, str(weights))
    (out / "config.json").write_text(json.dumps(config.to_dict(), indent=2))
    client.log_artifact(run_id, str(out / "config.json"))
    rate = len(train_ds) * epochs_done / seconds if seconds else 0.0
    ts = now_ms()
    client.log_batch(run_id, metrics=[Metric("training_seconds", seconds, ts, 0),
                                      Metric("records_per_s", rate, ts, 0),
                                      Metric("train_task_seconds", time.perf_counter() - t0, ts, 0)])
    all_history = logged_history(client, run_id) if start else [h.to_dict() for h in history]
    return Trained(weights, all_history, seconds, rate, start)


@task(name="evaluate", cache_policy=NO_CACHE)
def evaluate(trained: Trained, data: PreparedData, tracking_uri: str, run_id: str) -> _evaluation.Evaluation:
    """The book's performance score on the test set, per-digit accuracy and the plots
    (confusion matrix, learning curve, misclassified digits, output-layer table), logged."""
    net = Network.load(trained.weights_path)
    result = _evaluation.evaluate(net, load_npy(data.test_dir), trained.history,
                                  Path(trained.weights_path).parent, MlflowClient(tracking_uri), run_id)
    _logger().info(f"performance {result.performance:.4f} on {result.records} test records")
    return result


@task(name="register", cache_policy=NO_CACHE)
def register(trained: Trained, data: PreparedData, performance: float, tracking_uri: str, run_id: str,
             model_name: str = "mynn", alias: str = "champion",
             promotion: Literal["mcnemar", "at-least"] = "mcnemar", alpha: float = 0.05) -> _registry.Registration:
    """Log the MLflow model (pyfunc, weights as .npz), register a version under
    ``model_name`` and decide whether ``alias`` moves to it; the decision is recorded on the
    run and the version.

    The new network (from ``trained.weights_path``) and the champion are scored record by
    record on the test set of ``data``. ``promotion="mcnemar"`` (default): the alias moves
    when the new model is right on more records and McNemar's one-sided mid-p < ``alpha``;
    ``"at-least"``: when its performance is at least the champion's.
    """
    client = MlflowClient(tracking_uri, registry_uri=tracking_uri)
    test = load_npy(data.test_dir)
    weights = Path(trained.weights_path)
    uri = _registry.log_model(client, run_id, weights, test.pixels[:2])
    run = client.get_run(run_id)
    reg = _registry.register(client, run_id, model_name, uri, performance=performance,
                             test_pixels=test.pixels, test_labels=test.labels, test_digest=data.test_digest,
                             alias=alias, run_url=run_ui_url(tracking_uri, run.info.experiment_id, run_id),
                             network=weights, promotion=promotion, alpha=alpha, train_digest=data.train_digest)
    p = "" if reg.p_value is None else f", McNemar mid-p {reg.p_value:.4g}, alpha {reg.alpha:g}"
    _logger().info(f"registered {model_name} v{reg.version}: {'promoted' if reg.promoted else 'not promoted'}"
                   f" (rule {reg.rule}{p}: {reg.reason})")
    return reg
