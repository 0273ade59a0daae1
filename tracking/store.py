"""Where MLflow data lives, and making sure it is there before any work starts.

Default: a SQLite store ``mlflow.db`` in the project folder with artifacts beside it in
``mlartifacts/``; ``MLFLOW_TRACKING_URI`` overrides it (an ``http(s)://`` server, or another
``sqlite:///`` file, whose artifacts then go beside that file).
"""
from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path
from urllib.parse import unquote, urlparse

from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from mynn.sources import redact_url
from mynn import paths
from tracking.names import DEFAULT_EXPERIMENT


#: MLflow client settings mynn relies on, applied by :func:`client` (a value already in the
#: environment wins). A tracking server that goes away mid-run is retried with backoff for a
#: bounded time (about 1 + 2 + 4 s of backoff, 20 s per request at most), then the run fails,
#: instead of MLflow's default of minutes; MLflow's "View run at <tracking URI>" lines are off,
#: as they would print credentials in the URI.
CLIENT_DEFAULTS = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "3", "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
                   "MLFLOW_HTTP_REQUEST_TIMEOUT": "20", "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true"}


class TrackingUnavailableError(RuntimeError):
    """The tracking store cannot be reached; the message names its address."""


def is_transient(exc: BaseException) -> bool:
    """Whether another attempt later may succeed where ``exc`` failed: a download that failed on
    the network or the server's side (:class:`mynn.sources.FetchError` with ``transient``), the
    tracking server unreachable or failing (connection errors, timeouts, HTTP 5xx after MLflow's
    own retries). Not bad input, a wrong digest, a 404 or a refused request."""
    import requests

    from mynn.sources import FetchError

    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, FetchError):
            return exc.transient
        if isinstance(exc, (TrackingUnavailableError, requests.ConnectionError, requests.Timeout, ConnectionError,
                            TimeoutError)):
            return True
        if isinstance(exc, MlflowException) and ("Max retries exceeded" in str(exc) or exc.get_http_status_code() >= 500
                                                 and "API request" in str(exc)):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def tracking_uri() -> str:
    """``MLFLOW_TRACKING_URI`` if set, else ``sqlite:///<project>/mlflow.db`` (mynn.paths.home)."""
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{paths.home() / 'mlflow.db'}"


def client(uri: str) -> MlflowClient:
    """The MLflow client every mynn function uses (tracking and registry at ``uri``).

    MLflow reads its HTTP retry bounds from the environment at each request and has no client
    argument for them, so :data:`CLIENT_DEFAULTS` are set here, where every caller of mynn's
    tasks and tracking functions passes, not by the command line only."""
    for key, value in CLIENT_DEFAULTS.items():
        os.environ.setdefault(key, value)
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def is_remote(uri: str) -> bool:
    return urlparse(uri).scheme in ("http", "https")


def artifact_location(uri: str, experiment: str) -> str | None:
    """Artifact folder for a new experiment: beside a SQLite file; the server's choice otherwise.

    The folder is named by a digest of the experiment's name (``mlartifacts/exp-<16 hex>``),
    never by the name itself: a name is a label and must not choose where files go
    (``../../x`` or ``/tmp/x`` stay inside ``mlartifacts``)."""
    parsed = urlparse(uri)
    if parsed.scheme == "sqlite":
        db = Path(uri[len("sqlite:///"):])
        folder = "exp-" + hashlib.sha256(experiment.encode("utf-8")).hexdigest()[:16]
        return (db.parent / "mlartifacts" / folder).resolve().as_uri()
    return None


_USERINFO = re.compile(r"//[^/@\s]+@")


def check_reachable(uri: str, timeout: float = 5.0) -> None:
    """Fail fast, naming the address, when a tracking server does not answer ``/health``.

    The request is made the way MLflow's own client makes its requests (MLflow's credentials:
    ``MLFLOW_TRACKING_TOKEN``, ``MLFLOW_TRACKING_USERNAME``/``PASSWORD``, credentials in the URL,
    ``MLFLOW_TRACKING_SERVER_CERT_PATH``, ``MLFLOW_TRACKING_CLIENT_CERT_PATH``,
    ``MLFLOW_TRACKING_INSECURE_TLS``), so a server the client can use passes, without retries."""
    if not is_remote(uri):
        return
    import requests
    from mlflow.utils.credentials import get_default_host_creds
    from mlflow.utils.rest_utils import http_request

    shown = redact_url(uri)
    try:
        resp = http_request(get_default_host_creds(uri.rstrip("/")), "/health", "GET", max_retries=0,
                            timeout=timeout, raise_on_status=False)
    except (requests.exceptions.RequestException, MlflowException, OSError) as exc:
        detail = _USERINFO.sub("//", str(exc))  # MLflow's message may carry the URL with its credentials
        raise TrackingUnavailableError(f"MLflow tracking server {shown} is not reachable: {detail}") from None
    if resp.status_code != 200:
        raise TrackingUnavailableError(f"MLflow tracking server {shown} answered {resp.status_code} on /health")


def create_store_once(uri: str) -> None:
    """Create (or migrate) a SQLite store's schema while holding a lock file beside it.

    Processes that open a new SQLite store at the same moment race on its schema (MLflow's
    migrations: "table ... already exists"); under ``<db>.lock`` (an ``flock``) one of them
    creates it and the others then find it complete. Other stores are left alone.
    """
    parsed = urlparse(uri)
    if parsed.scheme != "sqlite" or not uri.startswith("sqlite:///"):
        return
    import fcntl

    db = Path(unquote(uri[len("sqlite:///"):]))
    db.parent.mkdir(parents=True, exist_ok=True)
    with open(db.with_name(db.name + ".lock"), "a") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        try:
            mlflow = client(uri)
            mlflow.search_experiments(max_results=1)  # the tracking store's tables and migrations
            mlflow.search_registered_models(max_results=1)  # the model registry's
        finally:
            fcntl.flock(lock.fileno(), fcntl.LOCK_UN)


#: The MLflow 3 UI opens an experiment on its GenAI view (traces) unless the experiment says it
#: holds model training runs; a user's own choice of kind is left as it is.
EXPERIMENT_KIND_TAG, EXPERIMENT_KIND = "mlflow.experimentKind", "custom_model_development"
#: Links carry the model-training view for the same reason.
UI_VIEW = "?workflowType=machine_learning"


def ensure_experiment(uri: str, experiment: str = DEFAULT_EXPERIMENT) -> tuple[MlflowClient, str]:
    """Check the store, create its schema and the experiment if needed; (client, experiment id).

    Call this once before starting parallel work: many processes creating a new SQLite
    store at the same moment race on its schema.
    """
    check_reachable(uri)
    create_store_once(uri)
    mlflow = client(uri)
    exp = mlflow.get_experiment_by_name(experiment)
    if exp is not None:
        if exp.lifecycle_stage == "deleted":
            mlflow.restore_experiment(exp.experiment_id)
        if EXPERIMENT_KIND_TAG not in exp.tags:  # an older experiment: the UI would open its GenAI view
            mlflow.set_experiment_tag(exp.experiment_id, EXPERIMENT_KIND_TAG, EXPERIMENT_KIND)
        return mlflow, exp.experiment_id
    try:
        return mlflow, mlflow.create_experiment(experiment, artifact_location=artifact_location(uri, experiment),
                                                tags={EXPERIMENT_KIND_TAG: EXPERIMENT_KIND})
    except MlflowException:  # created meanwhile by another process
        exp = mlflow.get_experiment_by_name(experiment)
        if exp is None:
            raise
        return mlflow, exp.experiment_id


def run_ui_url(uri: str, experiment_id: str, run_id: str) -> str:
    """Link to a run in the MLflow UI: ``MYNN_MLFLOW_UI_URL`` if set (e.g. the address a browser
    uses when the tracking server is known by another name inside a compose stack), else the
    server itself, else ``mlflow ui``'s default address for a local store. Credentials in the
    address (``http://user:password@host``) are left out: the link is recorded."""
    base = (os.environ.get("MYNN_MLFLOW_UI_URL") or (uri if is_remote(uri) else "http://127.0.0.1:5000")).rstrip("/")
    base = redact_url(base, mask="")
    return f"{base}/#/experiments/{experiment_id}/runs/{run_id}{UI_VIEW}"
