"""Prefect events of mynn: a model promoted, and a source whose data changed.

- ``mynn.model.promoted``: emitted by the train flow when the alias moved to its new version
  (resource ``mynn.model.<name>``; payload: model name, version, alias, run id, performance,
  the champion it replaced and the McNemar p-value).
- ``mynn.data.changed``: emitted by the watch flow when a source's content differs from the
  data the champion was trained on (resource ``mynn.source.<digest of the source's address>``;
  payload: the source, its content digests, the champion's). Each content is announced once per
  source (a Prefect variable keeps the last one announced), so a model that was not promoted is
  not retrained every few minutes on the same data.

The train deployment has a trigger on ``mynn.data.changed`` for its own source
(:func:`data_trigger`): new data starts a training; unchanged data starts nothing.
"""
from __future__ import annotations

import hashlib

from prefect.events import emit_event
from prefect.events.schemas.deployment_triggers import DeploymentEventTrigger

from mynn.sources import redact_url

PROMOTED = "mynn.model.promoted"
DATA_CHANGED = "mynn.data.changed"


def source_resource(source: str) -> dict[str, str]:
    """The event resource of a data source: an id from its address (credentials left out)."""
    shown = redact_url(source)
    return {"prefect.resource.id": f"mynn.source.{hashlib.sha256(shown.encode()).hexdigest()[:16]}",
            "prefect.resource.name": shown}


def announced_variable(source: str) -> str:
    """The Prefect variable holding the content last announced for ``source``."""
    return "mynn-watch-" + source_resource(source)["prefect.resource.id"].rsplit(".", 1)[1]


def emit_promoted(reg, run_id: str, data) -> None:
    emit_event(PROMOTED, resource={"prefect.resource.id": f"mynn.model.{reg.model_name}",
                                   "prefect.resource.name": reg.model_name},
               related=[{"prefect.resource.id": f"mynn.mlflow-run.{run_id}", "prefect.resource.role": "run"}],
               payload={"model_name": reg.model_name, "version": reg.version, "alias": reg.alias, "run_id": run_id,
                        "performance": reg.performance, "replaced_version": reg.champion_version,
                        "replaced_performance": reg.champion_performance, "p_value": reg.p_value,
                        "train_digest": data.train.digest, "test_digest": data.test.digest})


def emit_data_changed(source: str, data, champion: dict | None) -> None:
    emit_event(DATA_CHANGED, resource=source_resource(source),
               payload={"source": redact_url(source), "train_digest": data.train.digest,
                        "test_digest": data.test.digest, "train_records": data.train.records,
                        "test_records": data.test.records, "champion": champion})


def data_trigger(source: str) -> DeploymentEventTrigger:
    """The train deployment's trigger: a ``mynn.data.changed`` event of its own source."""
    return DeploymentEventTrigger(name=f"retrain when {redact_url(source)} changes", expect={DATA_CHANGED},
                                  match={"prefect.resource.id": source_resource(source)["prefect.resource.id"]})
