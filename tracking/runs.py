"""MLflow runs of mynn: names, parameters, dataset inputs, code version, per-epoch metrics.

Everything takes an explicit ``run_id`` and an ``MlflowClient``: nothing relies on a
thread's or process's "active run", so parallel children log safely.
"""
from __future__ import annotations

import json
import os
import platform
import signal
import socket
import subprocess
import threading
import time
from contextlib import contextmanager
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Iterator

from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from mlflow.entities import Dataset, DatasetInput, InputTag, Metric, RunStatus

from mynn.config import NetworkConfig
from mynn import paths
from mynn.prepare import PreparedData
from tracking import store
from tracking.owner import TAG_HOST, TAG_PID, owner_state, owner_tags

#: How often a single run or a sweep's parent samples MLflow's system metrics (CPU, memory, disk, network).
SYSTEM_METRICS_SECONDS = 5.0
DATASET_DIGEST_CHARS = 32  # of a dataset input's digest (MLflow's digest column is short)

TAG_PREFECT_FLOW_RUN_ID = "prefect.flow_run_id"
TAG_PREFECT_FLOW_RUN_URL = "prefect.flow_run_url"


def prefect_tags(flow_run_id: str | None, flow_run_url: str | None = None) -> dict[str, str]:
    """The tags that link an MLflow run to the Prefect flow run that made it."""
    tags = {TAG_PREFECT_FLOW_RUN_ID: flow_run_id} if flow_run_id else {}
    if flow_run_id and flow_run_url:
        tags[TAG_PREFECT_FLOW_RUN_URL] = flow_run_url
    return tags


def source_tags(kind: str) -> dict[str, str]:
    """MLflow's Source and Created by: what made the run (``mynn <kind>``, a job) and the user."""
    import getpass

    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # (a uid without a name, in some containers)
        user = str(os.getuid())
    return {"mlflow.source.name": f"mynn {kind}", "mlflow.source.type": "JOB", "mlflow.user": user}


def git_state() -> dict[str, str]:
    """The git commit of the project's checkout and whether its work tree had uncommitted
    changes ("unknown" for an installed package, or without git)."""
    root = paths.checkout()

    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True,
                              timeout=10, check=True).stdout.strip()
    if root is None:
        return {"git_commit": "unknown", "git_dirty": "unknown"}
    try:
        commit = git("rev-parse", "HEAD")
        dirty = bool(git("status", "--porcelain", "--untracked-files=no"))
    except (OSError, subprocess.SubprocessError):
        return {"git_commit": "unknown", "git_dirty": "unknown"}
    return {"git_commit": commit, "git_dirty": str(dirty).lower()}


def library_versions() -> dict[str, str]:
    """Versions of Python and of the libraries that decide the numbers."""
    out = {"python": platform.python_version()}
    for name in ("numpy", "scipy", "numba", "mlflow", "prefect"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "absent"
    return out


def start_run(client: MlflowClient, experiment_id: str, config: NetworkConfig, *,
              run_name: str | None = None, parent_run_id: str | None = None,
              tags: dict[str, str] | None = None) -> str:
    """Create a RUNNING run named from the config; logs every config field as a parameter,
    the library versions (``version.*``) and the code version tags. Returns the run id."""
    all_tags = {"mlflow.runName": run_name or config.run_name(), "mynn.kind": "train"}
    code = git_state()
    all_tags["mlflow.source.git.commit"] = code["git_commit"]
    all_tags["mynn.git_dirty"] = code["git_dirty"]
    if parent_run_id:
        all_tags["mlflow.parentRunId"] = parent_run_id
    all_tags.update(owner_tags())
    all_tags.update(tags or {})
    all_tags = {**source_tags(all_tags["mynn.kind"]), **all_tags}
    run = client.create_run(experiment_id, run_name=all_tags["mlflow.runName"], tags=all_tags)
    run_id = run.info.run_id
    params = {k: str(v) for k, v in config.to_dict().items()}
    params.update({f"version.{k}": v for k, v in library_versions().items()})
    params["git_commit"] = code["git_commit"]
    params["git_dirty"] = code["git_dirty"]
    log_params(client, run_id, params)
    return run_id


class ResumeError(ValueError):
    """A run cannot be resumed (finished, another config, still trained, checkpoints gone)."""


def reopen_run(client: MlflowClient, run_id: str, config: NetworkConfig, tags: dict[str, str]) -> str:
    """Set an interrupted run (KILLED, FAILED or left RUNNING) of the same config running again.

    Refuses a finished run, one whose parameters differ from ``config`` (naming the field),
    and one still RUNNING whose owner process is alive on this host (or that belongs to a
    process on another host, which cannot be checked from here). The run's earlier failure
    moves to the tag ``mynn.previous_failure``, and this process becomes its owner. The
    train task then resumes from the run's last epoch checkpoint.
    """
    run = client.get_run(run_id)
    if run.info.status == "FINISHED":
        raise ResumeError(f"run {run_id} finished already; nothing to resume")
    for name, value in config.to_dict().items():
        if run.data.params.get(name) != str(value):
            raise ResumeError(f"run {run_id} has {name}={run.data.params.get(name)!r}, not {value!r}: "
                             "resume it with its own config")
    if run.info.status == "RUNNING":
        t = run.data.tags
        state = owner_state(t)
        if state == "alive":
            raise ResumeError(f"run {run_id} is still being trained by process {t.get(TAG_PID)} on this host: "
                             "wait for it to end, or stop it, before resuming it")
        if state == "unknown" and t.get(TAG_HOST) and t.get(TAG_HOST) != socket.gethostname():
            raise ResumeError(f"run {run_id} is RUNNING in process {t.get(TAG_PID)} on host {t.get(TAG_HOST)}, "
                             "which cannot be checked from here: if that process is gone, close the run "
                             "(mynn reconcile on that host, or mark it FAILED), then resume it")
    old = run.data.tags.get(TAG_PREFECT_FLOW_RUN_ID)
    if old and old != tags.get(TAG_PREFECT_FLOW_RUN_ID):
        tags = {**tags, "mynn.previous_flow_run_id": old}
    failure = run.data.tags.get("mynn.failure")
    if failure:
        tags = {**tags, "mynn.previous_failure": failure}
        client.delete_tag(run_id, "mynn.failure")
    for key, value in {**owner_tags(), **tags}.items():
        client.set_tag(run_id, key, value)
    client.update_run(run_id, status="RUNNING")
    return run_id


def check_checkpoints(client: MlflowClient, run_id: str, checkpoint_dir: Path) -> tuple[int, Path] | None:
    """The run's last checkpoint (epoch, path), or None for a run that logged no epoch yet.

    Refuses (:class:`ResumeError`) a run whose logged epochs are not all covered by
    checkpoints in ``checkpoint_dir`` (another ``MYNN_RUNS_DIR``, or deleted): training would
    silently start again from scratch in the same run."""
    found = latest_checkpoint(checkpoint_dir)
    logged = [m.step for m in client.get_metric_history(run_id, "train_mse")]
    if logged and (found is None or found[0] < max(logged)):
        have = "no checkpoint" if found is None else f"checkpoints only up to epoch {found[0]}"
        raise ResumeError(f"run {run_id} has epochs up to {max(logged)} logged but {have} in {checkpoint_dir}: "
                          "it cannot continue where it stopped. Resume it with the MYNN_RUNS_DIR it was "
                          "trained with, or start a new run")
    return found


def latest_checkpoint(checkpoint_dir: Path) -> tuple[int, Path] | None:
    """The highest ``epoch-NNN.npz`` in a folder, as (epoch, path), or None."""
    found = sorted(Path(checkpoint_dir).glob("epoch-[0-9][0-9][0-9].npz"))
    if not found:
        return None
    return int(found[-1].stem.split("-")[1]), found[-1]


def interrupted_run_of_flow_run(client: MlflowClient, experiment_id: str, flow_run_id: str) -> str | None:
    """The unfinished run made earlier by this same Prefect flow run (a restart), if any."""
    runs = client.search_runs([experiment_id], filter_string=f"tags.`{TAG_PREFECT_FLOW_RUN_ID}` = '{flow_run_id}' "
                              "and attributes.status != 'FINISHED'", max_results=1)
    return runs[0].info.run_id if runs else None


def open_run(uri: str, experiment: str, config: NetworkConfig, *, runs_dir: Path, resume: str | None = None,
             flow_run_id: str | None = None, flow_run_url: str | None = None) -> tuple[str, str, bool]:
    """Start a run of ``config``, or reopen an interrupted one; (run id, its UI link, resumed).

    ``resume`` names the run to continue; a restarted Prefect flow run (``flow_run_id``)
    continues the unfinished run it made before. Its checkpoints (in ``runs_dir/<run id>``)
    are checked before it is reopened."""
    client, experiment_id = store.ensure_experiment(uri, experiment)  # fails fast, naming the address
    tags = prefect_tags(flow_run_id, flow_run_url)  # (start_run and reopen_run add the owner)
    if flow_run_id:
        resume = resume or interrupted_run_of_flow_run(client, experiment_id, flow_run_id)
    if resume:
        check_checkpoints(client, resume, runs_dir / resume / "checkpoints")  # before it is reopened
        run_id = reopen_run(client, resume, config, tags)
    else:
        run_id = start_run(client, experiment_id, config, tags=tags)
    return run_id, store.run_ui_url(uri, experiment_id, run_id), bool(resume)


def log_data(uri: str, run_id: str, data: PreparedData) -> None:
    """Record the data on a run: source, content digests, sizes, the files' SHA-256 and names
    (parameters) and both datasets (inputs with context training / evaluation). A resumed run
    must get the same data it started with (:class:`ResumeError` otherwise)."""
    client = store.client(uri)
    logged = client.get_run(run_id).data.params
    for key, now in (("train_digest", data.train.digest), ("test_digest", data.test.digest)):
        if logged.get(key) not in (None, now):
            raise ResumeError(f"run {run_id} was trained on data with {key} {logged[key]}, but the source "
                              f"{data.source} now gives {now}: a run resumes only on the data it started with")
    params: dict[str, object] = {"source": data.source, "train_digest": data.train.digest,
                                 "test_digest": data.test.digest, "train_records": data.train.records,
                                 "test_records": data.test.records, "data_verified": str(data.verified).lower()}
    for split, prepared in (("train", data.train), ("test", data.test)):
        if prepared.file_sha256:  # (MLflow keeps one dataset entity per name and digest in an
            params[f"{split}_file_sha256"] = prepared.file_sha256  # experiment, so a dataset's
            params[f"{split}_file"] = prepared.origin or ""  # source is where it was first seen)
    log_params(client, run_id, params)
    log_data_inputs(client, run_id, data)


def log_data_inputs(client: MlflowClient, run_id: str, data: PreparedData) -> None:
    """Both datasets of ``data`` as the run's inputs (context training / evaluation)."""
    for ctx, default, prepared in (("training", "train", data.train), ("evaluation", "test", data.test)):
        name, _ = dataset_ref(prepared, default)
        log_dataset(client, run_id, name=name, digest=prepared.digest, source=prepared.origin or str(prepared.directory),
                    records=prepared.records, context=ctx)


def log_validation(uri: str, run_id: str, data: PreparedData, config: NetworkConfig) -> str:
    """The validation records ``config`` holds out of ``data``'s training set
    (:mod:`mynn.validation`): the parameter ``validation_digest`` (the training set's digest and
    the held-out indices, hashed) and a dataset input with context ``validation``. Its digest."""
    from mynn.validation import split_digest

    digest = split_digest(data.train.digest, data.train.records, config.validation_records, config.seed)
    client = store.client(uri)
    log_params(client, run_id, {"validation_digest": digest})
    name, _ = dataset_ref(data.train, "train")
    log_dataset(client, run_id, name=f"{name}-validation", digest=digest,
                source=data.train.origin or str(data.train.directory), records=config.validation_records,
                context="validation")
    return digest


def dataset_ref(prepared, default: str) -> tuple[str, str]:
    """(name, digest) of a prepared split as its dataset input is logged (``default``: "train" or
    "test" for a set without a known name): what links a metric to that dataset."""
    return prepared.known_as or default, prepared.digest[:DATASET_DIGEST_CHARS]


def log_metrics(uri: str, run_id: str, metrics: dict[str, float]) -> None:
    """Metrics at step 0 (totals of a run: seconds, counts)."""
    ts = now_ms()
    store.client(uri).log_batch(run_id, metrics=[Metric(k, float(v), ts, 0) for k, v in metrics.items()])


def set_tags(uri: str, run_id: str, tags: dict[str, str]) -> None:
    """Set tags on a run, in one request."""
    from mlflow.entities import RunTag

    store.client(uri).log_batch(run_id, tags=[RunTag(k, str(v)) for k, v in tags.items()])


def log_params(client: MlflowClient, run_id: str, params: dict[str, object]) -> None:
    from mlflow.entities import Param

    client.log_batch(run_id, params=[Param(k, str(v)) for k, v in params.items()])


def log_dataset(client: MlflowClient, run_id: str, *, name: str, digest: str, source: str,
                records: int, context: str) -> None:
    """Record a dataset input (MLflow's Datasets tab): its name, digest, source and size.

    The source is one ``mlflow.data.get_source`` resolves: an ``http`` source for a URL, a
    ``local`` one for a path; the schema is MLflow's tensor spec (uint8 (n, 784) pixels, uint8
    (n,) labels), which the UI's datasets drawer shows. MLflow's digest column is short, so it
    holds the first 32 hex digits; the full SHA-256 is in the profile and in the parameter
    ``<context>_digest``.
    """
    if source.startswith(("http://", "https://")):
        source_type, source_json = "http", json.dumps({"url": source})
    else:
        path = source[len("file://"):] if source.startswith("file://") else source
        source_type, source_json = "local", json.dumps({"uri": path})
    schema = {"mlflow_tensorspec": {
        "features": json.dumps([{"type": "tensor", "tensor-spec": {"dtype": "uint8", "shape": [-1, 784]}}]),
        "targets": json.dumps([{"type": "tensor", "tensor-spec": {"dtype": "uint8", "shape": [-1]}}])}}
    ds = Dataset(name=name, digest=digest[:DATASET_DIGEST_CHARS], source_type=source_type, source=source_json,
                 schema=json.dumps(schema), profile=json.dumps({"num_rows": records, "sha256": digest}))
    inputs = [DatasetInput(ds, tags=[InputTag("mlflow.data.context", context)])]
    try:
        client.log_inputs(run_id, datasets=inputs)
    except MlflowException as exc:
        # MLflow keeps one row per experiment, name and digest, found or else inserted: runs adding
        # the same new dataset at once (a sweep's children, two commands) race, and all but one
        # fail the unique constraint. The row exists then, so the one retry links to it.
        if not any(m in str(exc) for m in ("UNIQUE constraint failed", "duplicate key value", "Duplicate entry")):
            raise
        client.log_inputs(run_id, datasets=inputs)


def now_ms() -> int:
    """MLflow's timestamp: milliseconds since the epoch."""
    return int(time.time() * 1000)


def describe_run(uri: str, run_id: str, markdown: str) -> None:
    """The run's description in the MLflow UI (``mlflow.note.content``: markdown, links clickable)."""
    store.client(uri).set_tag(run_id, "mlflow.note.content", markdown)


def end_run(client: MlflowClient, run_id: str, status: str) -> None:
    """Set the terminal status (FINISHED, FAILED or KILLED) unless the run already has one."""
    run = client.get_run(run_id)
    if run.info.status in ("RUNNING", "SCHEDULED"):
        client.set_terminated(run_id, status=status)


@contextmanager
def system_metrics(uri: str, run_id: str, seconds: float | None) -> Iterator[None]:
    """MLflow's system metrics (``system/cpu_utilization_percentage``, memory, disk, network),
    sampled every ``seconds`` on run ``run_id`` by MLflow's monitor thread while the block runs
    (nothing with ``seconds=None``). The machine's, not the process's: a sweep parent's samples
    include its workers."""
    if not seconds:
        yield
        return
    import logging

    from mlflow.system_metrics.system_metrics_monitor import SystemMetricsMonitor

    logging.getLogger("mlflow.system_metrics").setLevel(logging.WARNING)  # (no start/stop lines per run)
    monitor = SystemMetricsMonitor(run_id, sampling_interval=seconds, resume_logging=True, tracking_uri=uri)
    monitor.start()
    try:
        yield
    finally:
        monitor.finish()  # (its last samples are logged before the run ends)


@contextmanager
def closing_run(uri: str, run_id: str, system_metrics_seconds: float | None = None) -> Iterator[str]:
    """Ends the run FINISHED on success, FAILED on an exception, KILLED on Ctrl-C or SIGTERM;
    with ``system_metrics_seconds``, MLflow's system metrics are sampled meanwhile (:func:`system_metrics`).

    SIGTERM is turned into an exception for the duration (main thread only), so the
    ``finally`` clauses of the work run and the run never stays RUNNING.
    """
    client = store.client(uri)
    previous = None
    if threading.current_thread() is threading.main_thread():
        def on_term(signum, frame):
            raise KeyboardInterrupt(f"signal {signum}")
        previous = signal.signal(signal.SIGTERM, on_term)
    try:
        with system_metrics(uri, run_id, system_metrics_seconds):
            yield run_id
    except (KeyboardInterrupt, SystemExit) as exc:
        client.set_tag(run_id, "mynn.failure", f"{type(exc).__name__}: {exc}"[:5000])
        end_run(client, run_id, RunStatus.to_string(RunStatus.KILLED))
        raise
    except BaseException as exc:
        client.set_tag(run_id, "mynn.failure", f"{type(exc).__name__}: {exc}"[:5000])
        end_run(client, run_id, RunStatus.to_string(RunStatus.FAILED))
        raise
    else:
        end_run(client, run_id, RunStatus.to_string(RunStatus.FINISHED))
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)

