"""The model registry: log a run's model, register a version, move the alias only on merit.

The alias (``champion`` by default) moves to a new version only if the new model's
performance on the same test set is at least the current champion's, re-measured on that
test set (not taken from the champion's old run). Every decision is recorded: on the run
(tags ``mynn.model_version``, ``mynn.promotion``) and on the version (tags).
"""
from __future__ import annotations

import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from mynn.data import scale_inputs
from mynn.network import Network
from tracking import flavour

MODEL_ARTIFACT = "model"


@dataclass(frozen=True)
class Registration:
    """What register did: the version, whether the alias moved, and why."""

    model_name: str
    version: str
    alias: str
    promoted: bool
    reason: str
    performance: float
    champion_version: str | None
    champion_performance: float | None

    def to_dict(self) -> dict:
        return asdict(self)


def log_model(client: MlflowClient, run_id: str, weights: Path, example_pixels: np.ndarray) -> str:
    """Package the weights as an MLflow model under the run's ``model/`` artifact; its URI."""
    with tempfile.TemporaryDirectory() as tmp:
        path = flavour.save_model(weights, Path(tmp) / MODEL_ARTIFACT, example_pixels)
        client.log_artifacts(run_id, str(path), MODEL_ARTIFACT)
    return f"{client.get_run(run_id).info.artifact_uri.rstrip('/')}/{MODEL_ARTIFACT}"


def load_version_network(client: MlflowClient, model_name: str, version: str) -> Network:
    """The network of a registered version, read from its arrays (no pickle)."""
    mv = client.get_model_version(model_name, version)
    with tempfile.TemporaryDirectory() as tmp:
        local = Path(client.download_artifacts(mv.run_id, MODEL_ARTIFACT, tmp))
        # the data folder as recorded in MLmodel: pyfunc.save_model copies data_path *into*
        # the model's data/ folder (data/data), so it is not simply local / "data"
        from mlflow.models import Model

        data = Model.load(str(local)).flavors["python_function"]["data"]
        return Network.load(local / data / flavour.WEIGHTS_FILE)


def champion(client: MlflowClient, model_name: str, alias: str):
    """The version the alias points to, or None."""
    try:
        return client.get_model_version_by_alias(model_name, alias)
    except MlflowException:
        return None


def register(client: MlflowClient, run_id: str, model_name: str, model_uri: str, *,
             performance: float, test_pixels: np.ndarray, test_labels: np.ndarray, test_digest: str,
             alias: str = "champion", run_url: str | None = None) -> Registration:
    """Register the run's model as a new version and decide on the alias.

    test_pixels (m, 784) uint8 and test_labels (m,) are the test set the new model was
    scored on; the champion is scored on the same records before comparing.
    """
    try:
        client.create_registered_model(model_name, description="The network of 'Make Your Own Neural Network' (mynn)")
    except MlflowException as exc:
        if "already exists" not in str(exc).lower() and "RESOURCE_ALREADY_EXISTS" not in str(exc):
            raise
    tags = {"performance": f"{performance:.6f}", "test_digest": test_digest, "mynn.run_id": run_id}
    if run_url:
        tags["mynn.run_url"] = run_url
    mv = client.create_model_version(model_name, source=model_uri, run_id=run_id, tags=tags)
    client.set_tag(run_id, "mynn.model_version", f"{model_name}/{mv.version}")

    current = champion(client, model_name, alias)
    champ_perf = None
    if current is None:
        promoted, reason = True, f"no '{alias}' yet"
    else:
        net = load_version_network(client, model_name, current.version)
        x = scale_inputs(test_pixels, net.config.dtype)
        champ_perf = net.performance(x, test_labels)
        promoted = performance >= champ_perf
        verdict = ">=" if promoted else "<"
        reason = (f"performance {performance:.4f} {verdict} {alias} v{current.version}'s "
                  f"{champ_perf:.4f} on the same test set ({test_digest[:12]})")
    if promoted:
        client.set_registered_model_alias(model_name, alias, mv.version)
    decision = "promoted" if promoted else "not promoted"
    client.set_model_version_tag(model_name, mv.version, "mynn.promotion", f"{decision}: {reason}")
    client.set_tag(run_id, "mynn.promotion", f"{decision}: {reason}")
    return Registration(model_name, str(mv.version), alias, promoted, reason, performance,
                        None if current is None else str(current.version), champ_perf)
