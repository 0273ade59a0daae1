"""The pipeline's Prefect tasks: download -> preprocess -> train -> evaluate -> register.

Each task is a thin, typed wrapper over one function of :mod:`mynn`, :mod:`tracking` or
:mod:`flows.training`; they pass paths and ids, never large arrays, and hold no global state,
so they can be imported into any flow::

    from flows.tasks import download, preprocess, log_data, train, evaluate, register

Each is also testable without an orchestrator through ``task.fn(...)``.
"""
from __future__ import annotations

import contextlib
import dataclasses

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.exceptions import MissingContextError

from mynn.fetch import FetchResult, fetch
from mynn.sources import Source, resolve_source
from mynn import paths
from mynn.config import NetworkConfig
from mynn.grid import Training
from mynn.prepare import PreparedData, prepare_fetched
from tracking import evaluation, registry, runs, store, sweeps
from tracking.training import Trained
from flows import progress, training
from flows.params import Alias, Alpha, ModelName, Promotion


def _transient_failure(task, task_run, state) -> bool:
    """Prefect's retry condition: retry only what a later attempt may cure (the network, the
    tracking server: :func:`tracking.store.is_transient`), never bad input."""
    return store.is_transient(state.result(raise_on_failure=False))


#: Steps that talk to the network or the tracking server retry (after MLflow's and the
#: downloader's own retries ran out), safely: the download cache is keyed by content, dataset
#: inputs and parameters are logged the same again, and a registration already decided for the
#: run is returned instead of making a second version (tracking.registry.register).
RETRY = {"retries": 2, "retry_delay_seconds": [2, 10], "retry_condition_fn": _transient_failure}


def _logger():
    try:
        return get_run_logger()
    except MissingContextError:  # called through .fn() outside a flow: plain logging
        import logging

        return logging.getLogger("mynn")


@task(name="download", cache_policy=NO_CACHE, **RETRY)
def download(source: str | Source = "shipped", cache_dir: str | None = None) -> FetchResult:
    """Fetch mnist_train/mnist_test (plain or .gz) of ``source`` into the digest-keyed cache
    (:func:`mynn.fetch.fetch`): "shipped", "shipped-small", "book", a folder, a file:// or an
    http(s):// base URL. Credentials in a URL are sent, never recorded or returned."""
    log = _logger()
    last: dict[str, int] = {}
    bars: dict[str, progress.Bar] = {}

    def report(name: str, done: int, total: int | None) -> None:
        if name not in bars:  # a terminal bar per file (drawn only on a terminal), and a log line per 10 %
            bars[name] = stack.enter_context(progress.bar(f"download {name}", total, "B"))
        bars[name].update(done, total)
        step = 10 * done // total if total else done // (10 << 20)
        if last.get(name) != step:
            last[name] = step
            log.info(f"download {name}: {done / 1e6:.1f} MB" + (f" of {total / 1e6:.1f} MB" if total else ""))

    src = source if isinstance(source, Source) else resolve_source(source)
    with contextlib.ExitStack() as stack:
        result = fetch(src, cache_dir or paths.cache_dir(), progress=report if src.remote else None)
    for f in (result.train, result.test):
        state = "from the cache, nothing read" if f.bytes_transferred == 0 else f"{f.bytes_transferred:,} bytes read"
        log.info(f"{f.split}: {f.origin} -> {f.path} ({state}, sha256 {f.sha256[:12]}, "
                 f"{'verified: the digest pinned by the source' if f.verified else 'no pinned digest'})")
    return dataclasses.replace(result, source=dataclasses.replace(src, auth=None))  # no credentials leave


@task(name="preprocess", cache_policy=NO_CACHE)
def preprocess(fetched: FetchResult, cache_dir: str | None = None, train_records: int | None = None,
               test_records: int | None = None) -> PreparedData:
    """Parse both files strictly into digest-keyed .npy arrays (a cache hit skips parsing); with
    ``train_records``/``test_records``, only the first N/M records. Malformed files raise
    mynn.dataset.DataFormatError naming file, line and value."""
    root = cache_dir or paths.cache_dir()
    data = prepare_fetched(fetched, root).head(train_records, test_records, root)
    _logger().info(f"train: {data.train.records} records ({data.train.known_as or 'unknown set'}, digest "
                   f"{data.train.digest[:12]}); test: {data.test.records} records "
                   f"({data.test.known_as or 'unknown set'}, digest {data.test.digest[:12]})")
    return data


@task(name="log-data", cache_policy=NO_CACHE, **RETRY)
def log_data(data: PreparedData, tracking_uri: str, run_id: str) -> None:
    """Record the data's source, digests, files and both datasets on the run (tracking.runs.log_data)."""
    runs.log_data(tracking_uri, run_id, data)


@task(name="train", cache_policy=NO_CACHE)
def train(data: PreparedData, config: NetworkConfig, tracking_uri: str, run_id: str,
          run_dir: str | None = None) -> Trained:
    """Train ``config`` on ``data`` in the run, a checkpoint and metrics per epoch; resumes an
    interrupted run from its last checkpoint (flows.training.train_and_log). What evaluation
    and registration import loads meanwhile, on the other core (tracking.evaluation.prefetch)."""
    evaluation.prefetch()
    with progress.bar(f"train {config.run_name()}", config.epochs, "epochs") as bar:
        return training.train_and_log(data, config, tracking_uri, run_id, run_dir, log=_logger().info,
                                      on_epoch=bar.update)


@task(name="train-points", cache_policy=NO_CACHE)
def train_points(sweep: sweeps.Sweep, group: Training) -> list[sweeps.PointResult]:
    """Train one group of sweep points as a child run, smaller epoch counts derived from it."""
    return training.train_points(sweep, group, paths.runs_dir(), log=_logger().info)


@task(name="evaluate", cache_policy=NO_CACHE)
def evaluate(trained: Trained, data: PreparedData, tracking_uri: str, run_id: str) -> evaluation.Evaluation:
    """The book's performance score on the test set, per-digit accuracy and the plots, logged."""
    result = evaluation.evaluate_run(tracking_uri, run_id, trained.weights_path, trained.history, data,
                                     trained.model_uri)
    _logger().info(f"performance {result.performance:.4f} on {result.records} test records")
    return result


@task(name="register", cache_policy=NO_CACHE, **RETRY)
def register(trained: Trained, data: PreparedData, performance: float, tracking_uri: str, run_id: str,
             model_name: ModelName = "mynn", alias: Alias = "champion", promotion: Promotion = "mcnemar",
             alpha: Alpha = 0.05) -> registry.Registration:
    """Register the run's LoggedModel (logged by the train task) as a version of ``model_name`` and
    move ``alias`` to it only if the rule (mynn.promotion) says it beats the champion on the same
    test records."""
    reg = registry.register_run(tracking_uri, run_id, trained.weights_path, data, performance, model_name=model_name,
                                alias=alias, promotion=promotion, alpha=alpha, model_uri=trained.model_uri)
    p = "" if reg.p_value is None else f", McNemar mid-p {reg.p_value:.4g}, alpha {reg.alpha:g}"
    _logger().info(f"registered {model_name} v{reg.version}: {'promoted' if reg.promoted else 'not promoted'}"
                   f" (rule {reg.rule}{p}: {reg.reason})")
    return reg
