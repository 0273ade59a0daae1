"""Flow parameters typed with pydantic, so the Prefect UI builds a form with bounds.

``TrainConfig`` is generated from :class:`mynn.config.NetworkConfig` (the one typed config):
the same fields, defaults, descriptions and bounds, so the two cannot drift apart.
"""
from __future__ import annotations

import dataclasses
import typing

from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, create_model

from mynn.config import NetworkConfig
from tracking.names import ALIAS_PATTERN, MODEL_NAME_PATTERN, check_alias, check_experiment_name, check_model_name

#: Flow parameter types for MLflow names: the pattern is in the UI form's JSON schema, and the
#: whole of MLflow's rule is checked when a flow run starts (tracking.names).
ModelName = Annotated[str, Field(min_length=1, max_length=200, pattern=MODEL_NAME_PATTERN),
                      AfterValidator(check_model_name)]
Alias = Annotated[str, Field(min_length=1, max_length=100, pattern=ALIAS_PATTERN), AfterValidator(check_alias)]
ExperimentName = Annotated[str, Field(min_length=1, max_length=200), AfterValidator(check_experiment_name)]


def _pydantic_fields() -> dict[str, tuple[object, object]]:
    hints = typing.get_type_hints(NetworkConfig)
    fields: dict[str, tuple[object, object]] = {}
    for f in dataclasses.fields(NetworkConfig):
        bounds = {k: v for k, v in f.metadata.items() if k in ("ge", "gt", "le", "lt")}
        title = f.name.replace("_", " ").capitalize()
        fields[f.name] = (hints[f.name], Field(default=f.default, title=title,
                                               description=f.metadata["doc"], **bounds))
    return fields


TrainConfig: type[BaseModel] = create_model(
    "TrainConfig",
    __config__=ConfigDict(extra="forbid", title="Network and training"),
    __doc__="The network and its training (mynn.config.NetworkConfig).",
    **_pydantic_fields(),
)


def to_network_config(config: BaseModel | dict | NetworkConfig | None) -> NetworkConfig:
    """A validated NetworkConfig from the flow parameter (model, dict or None for defaults)."""
    if config is None:
        return NetworkConfig()
    if isinstance(config, NetworkConfig):
        return config
    if isinstance(config, dict):
        config = TrainConfig(**config)
    return NetworkConfig(**config.model_dump())

