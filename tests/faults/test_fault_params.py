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
    (["--learning-rate", "nan"], "--learning-rate", ""),
    (["--epochs", "0"], "--epochs", "greater than or equal to 1"),
    (["--epochs", "1001"], "--epochs", "less than or equal to 1000"),
    (["--batch-size", "0"], "--batch-size", "greater than or equal to 1"),
    (["--hidden-nodes", "ten"], "--hidden-nodes", "invalid int value: 'ten'"),
    (["--dtype", "float16"], "--dtype", "invalid choice: 'float16'"),
    (["--alpha", "1.5"], "--alpha", "must be in (0, 1)"),
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
