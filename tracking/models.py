"""MLflow 3 models: every trained run's network as a LoggedModel, and reading one back.

:func:`log_model` makes the run's model an MLflow 3 *LoggedModel* (the experiment's Models
tab): created with the run's parameters, linked to the run as its output at the last epoch,
its artifacts (the :mod:`tracking.flavour` folder, ``MLmodel`` carrying the ``model_id``)
uploaded, then marked READY. Its URI, ``models:/<model_id>``, is what a version is
registered from. Metrics logged with ``model_id`` (the evaluation's ``performance`` and
per-digit accuracies) appear on the model too, together with the test dataset they were
measured on.

:func:`load_network` reads a network back from a model URI by its weights file only (no
pickle, no code from the folder), checking the weights' SHA-256 when one was recorded. Versions
registered before LoggedModels (a run's ``model/`` artifact) are read the same way.
"""
from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np
from mlflow import MlflowClient
from mlflow.entities import LoggedModelOutput, LoggedModelStatus

from mynn.cache import sha256_file
from mynn.network import Network
from tracking import flavour

MODEL_NAME = "model"  # the LoggedModel's name (and the legacy run artifact folder)
MODEL_TYPE = "mynn"
TAG_WEIGHTS_SHA256 = "weights_sha256"
TAG_MODEL_ID = "mynn.model_id"  # version tag: the LoggedModel it was registered from
MODEL_VERSIONS_TAG = "mlflow.modelVersions"  # LoggedModel tag: the versions registered from it


def log_model(client: MlflowClient, run_id: str, weights: str | Path, example_pixels: np.ndarray,
              step: int = 0) -> str:
    """Log the network at ``weights`` as run ``run_id``'s LoggedModel (output at ``step``, the
    last epoch); its URI ``models:/<model_id>``. A model that fails half-way is deleted."""
    run = client.get_run(run_id)
    weights = Path(weights)
    Network.load(weights)  # refuse anything that is not clean arrays before creating anything
    model = client.create_logged_model(run.info.experiment_id, name=MODEL_NAME, source_run_id=run_id,
                                       params=dict(run.data.params), model_type=MODEL_TYPE,
                                       tags={TAG_WEIGHTS_SHA256: sha256_file(weights)})
    try:
        client.log_outputs(run_id, [LoggedModelOutput(model.model_id, step)])
        with tempfile.TemporaryDirectory() as tmp:
            from mlflow.models import Model

            mlmodel = Model(artifact_path=model.artifact_location, model_uuid=model.model_id, run_id=run_id,
                            model_id=model.model_id)
            path = flavour.save_model(weights, Path(tmp) / MODEL_NAME, example_pixels, mlflow_model=mlmodel)
            client.log_model_artifacts(model.model_id, str(path))
        client.finalize_logged_model(model.model_id, LoggedModelStatus.READY)
    except BaseException:
        client.delete_logged_model(model.model_id)  # no half-made model is left in the Models tab
        raise
    return f"models:/{model.model_id}"


def model_id(model_uri: str) -> str | None:
    """The LoggedModel id of ``models:/<model_id>`` (None for any other URI)."""
    rest = model_uri[len("models:/"):] if model_uri.startswith("models:/") else ""
    return rest if rest.startswith("m-") and "/" not in rest and "@" not in rest else None


def linked(model_uri: str | None, dataset: tuple[str, str] | None) -> dict:
    """The :class:`mlflow.entities.Metric` arguments that link a metric to the LoggedModel of
    ``model_uri`` and to a dataset input (name, digest as logged: :func:`tracking.runs.dataset_ref`)."""
    link = {} if dataset is None else {"dataset_name": dataset[0], "dataset_digest": dataset[1]}
    mid = None if model_uri is None else model_id(model_uri)
    return link if mid is None else {**link, "model_id": mid}


def link_version(client: MlflowClient, model_uri: str, model_name: str, version: str) -> None:
    """Record on the LoggedModel of ``model_uri`` that it is registered as ``model_name`` version
    ``version`` (the ``mlflow.modelVersions`` tag, which the Models tab shows; MLflow's own
    ``register_model`` writes it the same way)."""
    mid = model_id(model_uri)
    if mid is None:
        return
    entry = {"name": model_name, "version": str(version)}
    known = json.loads(client.get_logged_model(mid).tags.get(MODEL_VERSIONS_TAG) or "[]")
    if entry not in known:
        client.set_logged_model_tags(mid, {MODEL_VERSIONS_TAG: json.dumps(known + [entry])})


def artifact_uri(client: MlflowClient, model_uri: str) -> str:
    """Where the model's files are: a LoggedModel's artifact location, else ``model_uri`` itself."""
    mid = model_id(model_uri)
    return client.get_logged_model(mid).artifact_location if mid is not None else model_uri


def load_network(client: MlflowClient, model_uri: str, weights_sha256: str | None = None,
                 what: str | None = None) -> Network:
    """The network of ``model_uri`` (``models:/<model_id>``, or the artifact URI of a model folder,
    as versions registered before LoggedModels have). With ``weights_sha256`` the weights file
    must have that digest (:class:`ValueError` naming ``what`` otherwise)."""
    from mlflow.artifacts import download_artifacts
    from mlflow.models import Model

    with tempfile.TemporaryDirectory() as tmp:
        local = Path(download_artifacts(artifact_uri=artifact_uri(client, model_uri), dst_path=tmp,
                                        tracking_uri=client.tracking_uri))
        # the data folder as recorded in MLmodel: pyfunc.save_model copies data_path *into*
        # the model's data/ folder (data/data), so it is not simply local / "data"
        data = Model.load(str(local)).flavors["python_function"]["data"]
        weights = local / data / flavour.WEIGHTS_FILE
        if weights_sha256 is not None:
            got = sha256_file(weights)
            if got != weights_sha256:
                raise ValueError(f"{what or model_uri}: its weights ({model_uri}, {data}/{flavour.WEIGHTS_FILE}) "
                                 f"have sha256 {got}, not the {weights_sha256} recorded when it was registered: "
                                 "refusing to use them")
        return Network.load(weights)
