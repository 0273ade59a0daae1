"""Names a user chooses for MLflow objects: a registered model, an alias, an experiment.

Each is checked before anything runs (CLI, Python API, the Prefect UI's form), so a bad name
never fails a run after its training. The rules are MLflow's own (names without ``/`` or
``:`` that are not paths, aliases of ``[\\w-]`` that are not ``latest`` or ``v<digits>``),
narrowed to what every MLflow store, search filter and URL handles the same way:

- a model name: ASCII letters, digits, ``.``, ``_``, ``-``; starts with a letter or digit;
  at most 200 characters (``mynn``, ``digits.v2``, ``fashion-mnist``);
- an alias: ASCII letters, digits, ``_``, ``-``; starts with a letter; at most 100
  characters; not ``latest`` (MLflow resolves it to the newest version) nor ``v1``, ``V23``
  (MLflow's version aliases);
- an experiment name: 1 to 200 printable characters, no control characters. It is only a
  label: it never chooses where files go (see :func:`tracking.store.artifact_location`).
"""
from __future__ import annotations

import re

DEFAULT_EXPERIMENT = "mynn"  # the MLflow experiment of `mynn train` (and of tracking.store)

MODEL_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$"
ALIAS_PATTERN = r"^[A-Za-z][A-Za-z0-9_-]{0,99}$"
_VERSION_ALIAS = re.compile(r"[vV][0-9]+")


def check_model_name(name: object) -> str:
    """``name`` if it is a valid registered model name, else ValueError saying why."""
    if not isinstance(name, str) or not re.fullmatch(MODEL_NAME_PATTERN, name) or name.endswith("."):
        raise ValueError(f"model name {name!r} is not allowed: use 1-200 ASCII letters, digits, '.', '_' "
                         "or '-', starting with a letter or digit (e.g. 'mynn', 'fashion-mnist')")
    _mlflow_check("_validate_model_name", name)
    return name


def check_alias(alias: object) -> str:
    """``alias`` if it is a valid alias to move on promotion, else ValueError saying why."""
    if not isinstance(alias, str) or not re.fullmatch(ALIAS_PATTERN, alias):
        raise ValueError(f"alias {alias!r} is not allowed: use 1-100 ASCII letters, digits, '_' or '-', "
                         "starting with a letter (e.g. 'champion')")
    if alias.lower() == "latest":
        raise ValueError("alias 'latest' is reserved by MLflow (it always means the newest version, so "
                         "every new version would be compared with itself)")
    if _VERSION_ALIAS.fullmatch(alias):
        raise ValueError(f"alias {alias!r} is reserved by MLflow: v<number> names a version")
    _mlflow_check("_validate_model_alias_name", alias)
    _mlflow_check("_validate_model_alias_name_reserved", alias)
    return alias


def check_experiment_name(name: object) -> str:
    """``name`` if it is a valid experiment name, else ValueError saying why."""
    if (not isinstance(name, str) or not 1 <= len(name) <= 200 or not name.strip()
            or any(ord(c) < 32 or ord(c) == 127 for c in name)):
        raise ValueError(f"experiment name {name!r} is not allowed: use 1-200 printable characters")
    return name


def _mlflow_check(function: str, value: str) -> None:
    """MLflow's own check, where this MLflow has it (a private function: absent is fine)."""
    from mlflow.exceptions import MlflowException
    from mlflow.utils import validation

    check = getattr(validation, function, None)
    if check is None:
        return
    try:
        check(value)
    except MlflowException as exc:
        raise ValueError(exc.message) from None
