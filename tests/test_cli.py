"""flows.cli and flows.commands: the parser mirrors the config, and bad input is refused up front
(exit 2 naming the option, or one line and exit 1) before any flow or server starts."""
from __future__ import annotations

import dataclasses

import pytest

from flows.cli import build_parser, main
from mynn.config import NetworkConfig


def subparser(name: str):
    return build_parser()._subparsers._group_actions[0].choices[name]


def test_every_config_field_is_an_option_of_train_and_a_list_option_of_sweep():
    for command, nargs in (("train", None), ("sweep", "+")):
        actions = {a.dest: a for a in subparser(command)._actions}
        for f in dataclasses.fields(NetworkConfig):
            assert f"--{f.name.replace('_', '-')}" in actions[f.name].option_strings
            assert actions[f.name].nargs == nargs
    args = build_parser().parse_args(["sweep", "--hidden-nodes", "10", "20", "--learning-rate", "0.1"])
    assert (args.hidden_nodes, args.learning_rate, args.epochs) == ([10, 20], [0.1], [NetworkConfig().epochs])


@pytest.mark.parametrize("argv, option, message", [
    (["train", "--alpha", "1.5"], "--alpha", "alpha must be a number in (0, 1)"),
    (["train", "--learning-rate", "-0.1"], "--learning-rate", "greater than 0"),
    (["train", "--model-name", "a/b"], "--model-name", "a/b"),
    (["sweep", "--workers", "0"], "--workers", "must be at least 1 (got 0)"),
    (["reproduce", "--seeds", "0"], "--seeds", "must be at least 1 (got 0)"),
    (["sweep", "--hidden-nodes", "10", "0"], "--hidden-nodes", "greater than"),
])
def test_bad_options_exit_2_naming_the_option(argv, option, message, capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'never.db'}")
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert f"{option}" in err and message in err
    assert not (tmp_path / "never.db").exists()  # nothing was started


def test_compare_of_an_unknown_experiment_is_one_line_and_exit_1(tracking_env, capsys):
    assert main(["compare", "--experiment", "nope", "--param", "hidden_nodes"]) == 1
    assert capsys.readouterr().err.strip().splitlines() == [
        f"mynn compare: error: no experiment 'nope' in {tracking_env.uri}"]


def test_serve_refuses_a_bad_cron_before_starting_any_server(monkeypatch, capsys, tmp_path):
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    monkeypatch.setenv("PREFECT_HOME", str(tmp_path / "prefect"))
    with pytest.raises(SystemExit):
        main(["serve", "--retrain-cron", "every monday"])
    assert "--retrain-cron: 'every monday' is not a cron expression" in capsys.readouterr().err
    assert not (tmp_path / "prefect").exists()  # no background server was started for it


def test_dask_address_without_prefect_dask_says_how_to_add_it(monkeypatch, capsys):
    import sys

    monkeypatch.setitem(sys.modules, "prefect_dask", None)  # as if the dask extra were not installed
    assert main(["sweep", "--dask-address", "tcp://127.0.0.1:1"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["mynn sweep: error: --dask-address tcp://127.0.0.1:1 needs prefect-dask, which is not "
                   "installed: pip install 'mynn[dask]' (or prefect-dask)"]
