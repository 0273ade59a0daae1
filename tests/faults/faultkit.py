"""Helpers of the fault suite (imported by its tests and by conftest.py): every fault is
produced for real (bad bytes on disk, a misbehaving HTTP server on 127.0.0.1, a file size
limit, real MLflow and Prefect servers), never by mocking the code under test."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from mynn import paths
from mynn.paths import PROJECT_ROOT

SHIPPED = paths.data_dir()
TRAIN_100 = SHIPPED / "mnist_train_100.csv"
TEST_10 = SHIPPED / "mnist_test_10.csv"


def files_under(root: Path) -> list[Path]:
    """Every file (not directory) below ``root``, sorted; [] if it does not exist."""
    return sorted(p for p in Path(root).rglob("*") if p.is_file()) if Path(root).exists() else []


def stray_temporaries(root: Path) -> list[Path]:
    """Temporary files or folders the code writes before renaming (``.fetch-*.part``,
    ``.<name>.tmp-*``, ``.<name>.*.tmp``) left anywhere below ``root``."""
    if not Path(root).exists():
        return []
    return sorted(p for p in Path(root).rglob(".*") if ".tmp" in p.name or p.name.endswith(".part")
                  or p.name.startswith(".fetch-"))


def data_folder(root: Path, train: bytes | None = None, test: bytes | None = None,
                train_name: str = "mnist_train.csv", test_name: str = "mnist_test.csv") -> Path:
    """A source folder holding a training and a test file (the book's 100/10 subsets unless
    given), under the names the pipeline looks for."""
    root.mkdir(parents=True, exist_ok=True)
    (root / train_name).write_bytes(TRAIN_100.read_bytes() if train is None else train)
    (root / test_name).write_bytes(TEST_10.read_bytes() if test is None else test)
    return root


# ----------------------------------------------------------------------------- file size limit


def run_with_file_size_limit(setup: str, action: str, limit: int, timeout: float = 120) -> dict:
    """Run ``setup`` then, with RLIMIT_FSIZE = ``limit`` bytes and SIGXFSZ ignored (so a write
    beyond the limit fails with OSError EFBIG, as on a full disk), ``action``, in a fresh
    Python process. Returns what happened: ``{"ok": True}`` or the exception's ``type``,
    ``message``, ``errno`` and its cause's ``cause_type``/``cause_errno``."""
    script = "\n".join([
        "import json, resource, signal",
        setup,
        "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)",
        f"resource.setrlimit(resource.RLIMIT_FSIZE, ({limit}, {limit}))",
        "try:",
        textwrap.indent(action, "    "),
        "    out = {'ok': True}",
        "except BaseException as exc:",
        "    cause = exc.__cause__",
        "    out = {'ok': False, 'type': type(exc).__name__, 'message': str(exc),",
        "           'errno': getattr(exc, 'errno', None), 'cause_type': type(cause).__name__,",
        "           'cause_errno': getattr(cause, 'errno', None)}",
        "print('RESULT ' + json.dumps(out))",
    ])
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=timeout,
                          cwd=PROJECT_ROOT)
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    assert lines, f"no result (exit {done.returncode}):\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
    return json.loads(lines[-1][len("RESULT "):])


# ----------------------------------------------------------------------------- real servers


def start_mlflow_at(backend_uri: str, artifacts: Path, log: Path, port: int):
    """``mlflow server`` on 127.0.0.1:``port`` (tests/servers.py's start_mlflow picks a free
    port; a restart after a crash needs the same one)."""
    from tests.servers import BIN, Server, _spawn, wait_http

    proc = _spawn("mlflow", [str(BIN / "mlflow"), "server", "--backend-store-uri", backend_uri,
                             "--artifacts-destination", str(artifacts), "--serve-artifacts",
                             "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
                  {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}, log)
    server = Server("mlflow", f"http://127.0.0.1:{port}", proc, log)
    try:
        wait_http(server.url + "/health", 120, proc, log)
    except BaseException:
        server.stop()
        raise
    return server


def kill_server(server) -> None:
    """SIGKILL the server's process group (it was started in its own session): gone at once."""
    if server.proc.poll() is None:
        try:
            os.killpg(server.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        server.proc.wait(timeout=30)


def wait_for(predicate, timeout: float, what: str, interval: float = 0.2):
    """Poll ``predicate`` until it returns something truthy; that value, or TimeoutError."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise TimeoutError(f"{what}: not within {timeout} s")


# ----------------------------------------------------------------------------- what a run recorded


def recorded_text(client, run_id: str, scratch: Path) -> dict[str, str]:
    """Everything an MLflow run recorded, as text, by where: its params, tags, metrics' names,
    dataset inputs, every artifact file (downloaded into ``scratch``), its LoggedModels (params,
    tags, every file) and the model versions made from it (tags, source, link, description)."""
    run = client.get_run(run_id)
    out = {f"param {k}": v for k, v in run.data.params.items()}
    out.update({f"tag {k}": v for k, v in run.data.tags.items()})
    out["metric names"] = " ".join(run.data.metrics)
    for i, inp in enumerate(run.inputs.dataset_inputs if run.inputs else []):
        ds = inp.dataset
        out[f"dataset {i}"] = " ".join([ds.name, ds.digest, ds.source_type, ds.source, ds.schema or "",
                                        ds.profile or "", *(f"{t.key}={t.value}" for t in inp.tags)])
    local = Path(client.download_artifacts(run_id, "", str(scratch)))
    for path in sorted(p for p in local.rglob("*") if p.is_file()):
        out[f"artifact {path.relative_to(local)}"] = path.read_bytes().decode("utf-8", errors="replace")
    from mlflow.artifacts import download_artifacts

    for model in client.search_logged_models([run.info.experiment_id], filter_string=f"source_run_id = '{run_id}'"):
        out[f"logged model {model.model_id}"] = " ".join(
            [model.name, *(f"{k}={v}" for k, v in model.params.items()), *(f"{k}={v}" for k, v in model.tags.items())])
        files = Path(download_artifacts(artifact_uri=model.artifact_location, dst_path=str(scratch / model.model_id),
                                        tracking_uri=client.tracking_uri))
        for path in sorted(p for p in files.rglob("*") if p.is_file()):
            out[f"model artifact {path.relative_to(files)}"] = path.read_bytes().decode("utf-8", errors="replace")
    for mv in client.search_model_versions(f"run_id = '{run_id}'"):
        out[f"model version {mv.name}/{mv.version}"] = " ".join(
            [mv.source or "", mv.run_link or "", mv.description or "", *(f"{k}={v}" for k, v in mv.tags.items())])
    return out
