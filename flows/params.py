"""Flow parameters typed with pydantic, so the Prefect UI builds a form with bounds.

``TrainConfig`` (one value per field) and ``SweepGrid`` (a list of values per field) are both
generated from :class:`mynn.config.NetworkConfig`, the one typed config: the same fields,
defaults, descriptions and bounds, so they cannot drift apart. The promotion rule and ``alpha``
take their names and bounds from :mod:`mynn.promotion`.
"""
from __future__ import annotations

import dataclasses
import typing
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, create_model

from mynn import promotion, search
from mynn.config import NetworkConfig
from tracking.names import ALIAS_PATTERN, MODEL_NAME_PATTERN, check_alias, check_experiment_name, check_model_name

#: Flow parameter types for MLflow names: the pattern is in the UI form's JSON schema, and the
#: whole of MLflow's rule is checked when a flow run starts (tracking.names).
ModelName = Annotated[str, Field(min_length=1, max_length=200, pattern=MODEL_NAME_PATTERN),
                      AfterValidator(check_model_name)]
Alias = Annotated[str, Field(min_length=1, max_length=100, pattern=ALIAS_PATTERN), AfterValidator(check_alias)]
ExperimentName = Annotated[str, Field(min_length=1, max_length=200), AfterValidator(check_experiment_name)]
Promotion = Literal[promotion.RULES]  # type: ignore[valid-type]
Alpha = Annotated[float, Field(gt=promotion.ALPHA_GT, lt=promotion.ALPHA_LT,
                               description=f"Significance level of the mcnemar rule (more than "
                                           f"{promotion.ALPHA_GT:g}, less than {promotion.ALPHA_LT:g})")]


def bounds_text(bounds: dict[str, float]) -> str:
    """The bounds as words for a form field's description, e.g. "more than 0, at most 100"."""
    words = {"gt": "more than", "ge": "at least", "lt": "less than", "le": "at most"}
    def number(v: float) -> str:
        return f"{v:,}" if isinstance(v, int) else f"{v:g}"

    return ", ".join(f"{words[k]} {number(bounds[k])}" for k in ("gt", "ge", "lt", "le") if k in bounds)


def _fields(many: bool) -> dict[str, tuple[object, object]]:
    """One pydantic field per NetworkConfig field; with ``many``, a list of values (a grid)."""
    hints = typing.get_type_hints(NetworkConfig)
    fields: dict[str, tuple[object, object]] = {}
    for f in dataclasses.fields(NetworkConfig):
        bounds = {k: v for k, v in f.metadata.items() if k in ("ge", "gt", "le", "lt")}
        title = f.name.replace("_", " ").capitalize()
        doc = f.metadata["doc"] + (f" ({bounds_text(bounds)})" if bounds else "")
        if many:
            item = Annotated[hints[f.name], Field(**bounds)] if bounds else hints[f.name]
            fields[f.name] = (list[item], Field(default=[f.default], min_length=1, max_length=100, title=title,
                                                description=f"Values to try. {doc}"))
        else:
            fields[f.name] = (hints[f.name], Field(default=f.default, title=title, description=doc,
                                                   **bounds))
    return fields


TrainConfig: type[BaseModel] = create_model(
    "TrainConfig", __config__=ConfigDict(extra="forbid", title="Network and training"),
    __doc__="The network and its training (mynn.config.NetworkConfig).", **_fields(many=False))

SweepGrid: type[BaseModel] = create_model(
    "SweepGrid", __config__=ConfigDict(extra="forbid", title="Grid"),
    __doc__="Lists of values per config field; the sweep runs every combination.", **_fields(many=True))


def _space_fields() -> dict[str, tuple[object, object]]:
    """The searchable fields (mynn.search) as lists: one value fixed, two a range, more choices."""
    grid = _fields(many=True)
    fields = {}
    for name in search.SEARCHABLE:
        kind, info = grid[name]
        default = search.DEFAULT_SPACE.get(name, [info.default[0]])
        how = ("One value: fixed; two: the range low..high" + (" (log scale)" if name in search.LOG_SCALE else "")
               + "; more: choices") if name not in ("dtype", "batch_reduction", "backprop") else "The choices"
        fields[name] = (kind, Field(default=default, min_length=1, max_length=100, title=info.title,
                                    description=f"{how}. {info.description.removeprefix('Values to try. ')}"))
    return fields


TuneSpace: type[BaseModel] = create_model(
    "TuneSpace", __config__=ConfigDict(extra="forbid", title="Search space"),
    __doc__="What mynn tune searches, per field (mynn.search).", **_space_fields())


def to_network_config(config: BaseModel | dict | NetworkConfig | None) -> NetworkConfig:
    """A validated NetworkConfig from the flow parameter (model, dict or None for defaults)."""
    if config is None:
        return NetworkConfig()
    if isinstance(config, NetworkConfig):
        return config
    if isinstance(config, dict):
        config = TrainConfig(**config)
    return NetworkConfig(**config.model_dump())


def grid_values(grid: BaseModel | dict) -> dict[str, list]:
    """The grid as {field: [values]}, validated."""
    return (grid if isinstance(grid, BaseModel) else SweepGrid(**grid)).model_dump()
