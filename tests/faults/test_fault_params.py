"""Case 4: out-of-range parameters, refused before anything runs (no experiment, no run, no
download, no checkpoint folder), naming the option or field: from the command line
(``flows.cli.main``) and from the API (``train_flow(config=...)``)."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
from mlflow import MlflowClient
from prefect.exceptions import ParameterTypeError

from flows import cli
from flows.train_flow import train_flow


@pytest.fixture
def restore_environ():
    """``mynn`` sets defaults in os.environ (telemetry off, MLflow client retries): undo them."""
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)


def _nothing_happened(env) -> None:
    client = MlflowClient(env.uri)
    experiments = client.search_experiments()
    assert [e.name for e in experiments] == ["Default"]
    assert client.search_runs([e.experiment_id for e in experiments]) == []
    assert not Path(env.cache).exists() and not Path(env.runs).exists()  # nothing downloaded or trained


@pytest.mark.parametrize("args,option,says", [
    (["--hidden-nodes", "0"], "--hidden-nodes", "greater than or equal to 1"),
    (["--learning-rate", "-1"], "--learning-rate", "greater than 0"),
    (["--learning-rate", "nan"], "--learning-rate", "less than or equal to 100 (got nan)"),
    (["--epochs", "0"], "--epochs", "greater than or equal to 1"),
    (["--epochs", "1001"], "--epochs", "less than or equal to 1000"),
    (["--batch-size", "0"], "--batch-size", "greater than or equal to 1"),
    (["--hidden-nodes", "ten"], "--hidden-nodes", "invalid int value: 'ten'"),
    (["--dtype", "float16"], "--dtype", "invalid choice: 'float16'"),
    (["--alpha", "1.5"], "--alpha", "must be a number in (0, 1)"),
], ids=lambda v: " ".join(v) if isinstance(v, list) else None)
def test_the_command_refuses_out_of_range_options(tracking_env, capsys, restore_environ, args, option, says):
    with pytest.raises(SystemExit) as info:
        cli.main(["train", "--source", "shipped-small", *args])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert f"error: argument {option}" in err or f"error: {option}" in err, err
    assert says in err, err
    _nothing_happened(tracking_env)


@pytest.mark.usefixtures("prefect_harness")
@pytest.mark.parametrize("kwargs,field", [
    ({"config": {"hidden_nodes": 0}}, "hidden_nodes"),
    ({"config": {"learning_rate": -1}}, "learning_rate"),
    ({"config": {"epochs": 0}}, "epochs"),
    ({"config": {"seed": -1}}, "seed"),
    ({"config": {"dtype": "float16"}}, "dtype"),
    ({"config": {"hiden_nodes": 10}}, "hiden_nodes"),  # a typo is not silently ignored
    ({"config": {"hidden_nodes": "many"}}, "hidden_nodes"),
    ({"alpha": 1.5}, "alpha"),
    ({"promotion": "always"}, "promotion"),
    ({"model_name": ""}, "model_name"),
], ids=lambda v: str(v) if isinstance(v, dict) else None)
def test_the_flow_refuses_out_of_range_parameters(tracking_env, kwargs, field):
    with pytest.raises(ParameterTypeError) as info:
        train_flow(source="shipped-small", **kwargs)
    assert field in str(info.value), str(info.value)
    _nothing_happened(tracking_env)


# ----------------------------------------------------------------------------- MLflow names
# Reliability round two, cases 3, 4 and 6: names MLflow would refuse, misread or turn into paths.

BAD_MODEL_NAMES = ["a/b", "../x", "a'b\"c", "a b", "a:b", ".hidden", "", "x" * 201]
BAD_ALIASES = ["latest", "LATEST", "v1", "V23", "a b", "a/b", "a'b", "-x", "", "x" * 101]


@pytest.mark.parametrize("option,value", [("--model-name", v) for v in BAD_MODEL_NAMES]
                         + [("--alias", v) for v in BAD_ALIASES], ids=repr)
def test_the_command_refuses_bad_model_names_and_aliases_before_anything_runs(
        tracking_env, capsys, restore_environ, option, value):
    with pytest.raises(SystemExit) as info:
        cli.main(["train", "--source", "shipped-small", f"{option}={value}"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert f"error: {option}: " in err and ("not allowed" in err or "reserved" in err), err
    _nothing_happened(tracking_env)


@pytest.mark.usefixtures("prefect_harness")
@pytest.mark.parametrize("kwargs", [{"model_name": v} for v in BAD_MODEL_NAMES[:5]]
                         + [{"alias": v} for v in ("latest", "v1", "a b")], ids=repr)
def test_the_flow_refuses_bad_model_names_and_aliases_before_anything_runs(tracking_env, kwargs):
    with pytest.raises(ParameterTypeError) as info:
        train_flow(source="shipped-small", **kwargs)
    assert next(iter(kwargs)) in str(info.value), str(info.value)
    _nothing_happened(tracking_env)


def test_the_ui_form_carries_the_name_rules():
    """The Prefect UI builds its form from the flow's parameter schema: the patterns are in it."""
    import re

    from prefect.utilities.callables import parameter_schema

    props = parameter_schema(train_flow.fn).model_dump()["properties"]
    for field, good, bad in (("model_name", "fashion-mnist", "a/b"), ("alias", "champion", "a b")):
        pattern = props[field]["pattern"]
        assert re.fullmatch(pattern, good) and not re.fullmatch(pattern, bad)


def test_register_refuses_a_reserved_alias_before_creating_a_version(tracking_env):
    import numpy as np

    from tracking import registry

    client = MlflowClient(tracking_env.uri, registry_uri=tracking_env.uri)
    for alias in ("latest", "v2"):
        with pytest.raises(ValueError, match="reserved"):
            registry.register(client, "no-run", "m", "runs:/x/model", performance=0.5,
                              test_pixels=np.zeros((2, 784), np.uint8), test_labels=np.zeros(2, np.uint8),
                              test_digest="0" * 64, alias=alias)
    assert client.search_registered_models() == []


@pytest.mark.usefixtures("prefect_harness")
@pytest.mark.parametrize("experiment", ["../../escape", "/tmp/mynn-absolute-experiment"])
def test_an_experiment_name_never_chooses_where_artifacts_go(tracking_env, experiment):
    from flows.params import TrainConfig

    summary = train_flow(config=TrainConfig(hidden_nodes=5, epochs=1), source="shipped-small",
                         experiment=experiment, model_name="names")
    client = MlflowClient(tracking_env.uri)
    run = client.get_run(summary["run_id"])
    assert client.get_experiment(run.info.experiment_id).name == experiment  # the name is kept as a label
    root = (tracking_env.db.parent / "mlartifacts").resolve()
    artifacts = Path(run.info.artifact_uri.removeprefix("file://")).resolve()
    assert artifacts.is_relative_to(root) and (artifacts / "weights.npz").is_file()
    assert not Path("/tmp/mynn-absolute-experiment").exists()
    assert not (tracking_env.db.parent.parent.parent / "escape").exists()
