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
from mlflow.entities import Dataset, DatasetInput, InputTag, Metric, RunStatus

from mynn.config import NetworkConfig
from mynn.files import AtomicWrite
from mynn.network import Network
from mynn.paths import PROJECT_ROOT
from mynn.train import EpochStats

TAG_PREFECT_FLOW_RUN_ID = "prefect.flow_run_id"
TAG_PREFECT_FLOW_RUN_URL = "prefect.flow_run_url"
# The process that owns a RUNNING run: its pid, host and start time (so a reused pid is not
# taken for the owner). See owner_tags and owner_state.
TAG_PID, TAG_HOST, TAG_PID_START = "mynn.pid", "mynn.host", "mynn.pid_start"


def _process_stat(pid: int) -> tuple[str, str] | None:
    """(state, start time) of process ``pid`` from /proc (start in clock ticks after boot),
    or None if there is no such process (or no /proc)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rpartition(")")[2].split()  # fields 3.. of proc(5)
    return (fields[0], fields[19]) if len(fields) > 19 else None


def owner_tags() -> dict[str, str]:
    """Tags naming this process as the owner of a run (pid, host, process start time)."""
    tags = {TAG_PID: str(os.getpid()), TAG_HOST: socket.gethostname()}
    stat = _process_stat(os.getpid())
    if stat is not None:
        tags[TAG_PID_START] = stat[1]
    return tags


def owner_state(tags: dict[str, str]) -> str:
    """Whether the process that owns a run still runs: "alive", "gone", "self" (this process)
    or "unknown" (another host, no owner recorded, or no /proc to look in)."""
    pid, host, start = tags.get(TAG_PID), tags.get(TAG_HOST), tags.get(TAG_PID_START)
    if not pid or not pid.isdigit() or host != socket.gethostname() or not Path("/proc/self/stat").exists():
        return "unknown"
    stat = _process_stat(int(pid))
    if stat is None or stat[0] in ("Z", "X"):
        return "gone"  # no such process, or it ended and is not yet reaped
    if start is not None and stat[1] != start:
        return "gone"  # that pid is another process now
    return "self" if int(pid) == os.getpid() else "alive"


def code_version() -> dict[str, str]:
    """The git commit of the project and whether the work tree had uncommitted changes."""
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=PROJECT_ROOT, capture_output=True, text=True,
                              timeout=10, check=True).stdout.strip()
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
    code = code_version()
    all_tags["mlflow.source.git.commit"] = code["git_commit"]
    all_tags["mynn.git_dirty"] = code["git_dirty"]
    if parent_run_id:
        all_tags["mlflow.parentRunId"] = parent_run_id
    all_tags.update(owner_tags())
    all_tags.update(tags or {})
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


def interrupted_run_of_flow_run(client: MlflowClient, experiment_id: str, flow_run_id: str) -> str | None:
    """The unfinished run made earlier by this same Prefect flow run (a restart), if any."""
    runs = client.search_runs([experiment_id], filter_string=f"tags.`{TAG_PREFECT_FLOW_RUN_ID}` = '{flow_run_id}' "
                              "and attributes.status != 'FINISHED'", max_results=1)
    return runs[0].info.run_id if runs else None


def log_params(client: MlflowClient, run_id: str, params: dict[str, object]) -> None:
    from mlflow.entities import Param

    client.log_batch(run_id, params=[Param(k, str(v)) for k, v in params.items()])


def log_dataset(client: MlflowClient, run_id: str, *, name: str, digest: str, source: str,
                records: int, context: str) -> None:
    """Record a dataset input (MLflow's Datasets tab): its name, digest, source and size.

    MLflow's digest column is short, so it holds the first 32 hex digits; the full SHA-256
    is in the profile and in the parameter ``<context>_digest``.
    """
    ds = Dataset(name=name, digest=digest[:32], source_type="mynn", source=json.dumps({"uri": source}),
                 schema=json.dumps({"labels": "uint8 (n,)", "pixels": "uint8 (n, 784)"}),
                 profile=json.dumps({"num_rows": records, "sha256": digest}))
    client.log_inputs(run_id, datasets=[DatasetInput(ds, tags=[InputTag("mlflow.data.context", context)])])


class EpochLogger:
    """Training callback: writes a checkpoint ``epoch-NNN.npz`` (and its stats, ``.json``)
    into ``checkpoint_dir``, then logs the epoch's metrics with ``step=epoch``.

    Checkpoint first: an epoch whose metrics are logged always has its checkpoint, so a
    resumed run never logs an epoch twice (see :func:`log_epoch_metrics` for the other gap).
    """

    def __init__(self, client: MlflowClient, run_id: str, checkpoint_dir: Path, log=None):
        self.client, self.run_id, self.checkpoint_dir = client, run_id, Path(checkpoint_dir)
        self.log = log

    def __call__(self, stats: EpochStats, network: Network) -> None:
        path = network.save(self.checkpoint_dir / f"epoch-{stats.epoch:03d}.npz")
        _write_json_atomic(path.with_suffix(".json"), stats.to_dict())
        log_epoch_metrics(self.client, self.run_id, stats.to_dict())
        if self.log is not None:
            perf = "" if stats.performance is None else f", performance {stats.performance:.4f}"
            self.log(f"epoch {stats.epoch}: train_mse {stats.train_mse:.5f}{perf}, "
                     f"{stats.records_per_s:,.0f} records/s")


def log_epoch_metrics(client: MlflowClient, run_id: str, stats: dict) -> None:
    """One epoch's metrics (an EpochStats as a dict) with ``step=epoch``."""
    ts, e = now_ms(), stats["epoch"]
    metrics = [Metric("train_mse", stats["train_mse"], ts, e), Metric("epoch_seconds", stats["seconds"], ts, e),
               Metric("epoch_records_per_s", stats["records_per_s"], ts, e)]
    if stats.get("performance") is not None:
        metrics.append(Metric("epoch_performance", stats["performance"], ts, e))
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
        tmp.write_text(json.dumps(obj))


def logged_history(client: MlflowClient, run_id: str) -> list[dict]:
    """The per-epoch history as logged on a run: [{epoch, train_mse, performance}], by epoch."""
    mse = {m.step: m.value for m in client.get_metric_history(run_id, "train_mse")}
    perf = {m.step: m.value for m in client.get_metric_history(run_id, "epoch_performance")}
    return [{"epoch": e, "train_mse": mse[e], "performance": perf.get(e)} for e in sorted(mse)]


def now_ms() -> int:
    """MLflow's timestamp: milliseconds since the epoch."""
    return int(time.time() * 1000)


def latest_checkpoint(checkpoint_dir: Path) -> tuple[int, Path] | None:
    """The highest ``epoch-NNN.npz`` in a folder, as (epoch, path), or None."""
    found = sorted(Path(checkpoint_dir).glob("epoch-[0-9][0-9][0-9].npz"))
    if not found:
        return None
    return int(found[-1].stem.split("-")[1]), found[-1]


def end_run(client: MlflowClient, run_id: str, status: str) -> None:
    """Set the terminal status (FINISHED, FAILED or KILLED) unless the run already has one."""
    run = client.get_run(run_id)
    if run.info.status in ("RUNNING", "SCHEDULED"):
        client.set_terminated(run_id, status=status)


@contextmanager
def closing_run(client: MlflowClient, run_id: str) -> Iterator[str]:
    """Ends the run FINISHED on success, FAILED on an exception, KILLED on Ctrl-C or SIGTERM.

    SIGTERM is turned into an exception for the duration (main thread only), so the
    ``finally`` clauses of the work run and the run never stays RUNNING.
    """
    previous = None
    if threading.current_thread() is threading.main_thread():
        def on_term(signum, frame):
            raise KeyboardInterrupt(f"signal {signum}")
        previous = signal.signal(signal.SIGTERM, on_term)
    try:
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

