"""``mynn tune`` end to end (issue #15): Prefect (the session's temporary server), a real SQLite
MLflow store and a real Optuna study database beside it (fixture ``tracking_env``), the book's
shipped 100/10 subsets, trials in worker threads or on a real local Dask cluster. Nothing is
mocked; every expectation is read back from the stores.
"""
from __future__ import annotations

import json
import os

import optuna
import pytest
from mlflow import MlflowClient
from optuna.trial import TrialState

from flows.cli import main as cli_main
from flows.params import TuneSpace
from flows.runners import task_runner
from flows.tune_flow import tune_flow
from mynn.config import NetworkConfig
from mynn.search import StudyError
from mynn.train import fit
from mynn.validation import split_digest
from tests.trainkit import same_bits
from mynn.network import Network
from tracking.studies import storage_url

pytestmark = pytest.mark.usefixtures("prefect_harness")

#: A space where a quarter of the draws are hopeless (tiny learning rates): the pruner has work.
SPACE = dict(hidden_nodes=[10, 40], learning_rate=[0.001, 1.0], epochs=[1, 6])
SMALL = dict(source="shipped-small", validation_records=30)


def tune(experiment: str, workers: int = 2, runner=None, space=None, **options):
    flow = tune_flow.with_options(task_runner=runner or task_runner(workers))
    return flow(space=TuneSpace(**(space or SPACE)), experiment=experiment, workers=workers, **{**SMALL, **options})


def runs_of(env, experiment: str) -> tuple[MlflowClient, list, list]:
    """(client, parents, children) of the experiment."""
    client = MlflowClient(env.uri)
    exp = client.get_experiment_by_name(experiment)
    runs = client.search_runs([exp.experiment_id], max_results=1000)
    return (client, [r for r in runs if r.data.tags.get("mynn.kind") == "tune"],
            [r for r in runs if r.data.tags.get("mynn.kind") == "point"])


def study_of(env, name: str) -> optuna.Study:
    return optuna.load_study(study_name=name, storage=storage_url(env.uri))


def counted(study: optuna.Study) -> list:
    """The study's trials but those two workers asked for at once past the budget (never trained)."""
    return [t for t in study.get_trials() if not t.user_attrs.get("mynn.surplus")]


def test_a_study_runs_parallel_trials_as_children_and_chooses_by_validation_only(tracking_env):
    out = tune("t-tune", trials=6, sampler="random")
    client, parents, kids = runs_of(tracking_env, "t-tune")
    assert len(parents) == 1 and parents[0].info.run_id == out["parent_run_id"]
    parent = parents[0]
    assert parent.info.status == "FINISHED" and parent.data.params["sampler"] == "random"
    # one child per trial, each through the one train-and-log path, all FINISHED under the parent
    assert sorted(int(r.data.tags["mynn.trial"]) for r in kids) == list(range(6))
    assert all(r.info.status == "FINISHED" and r.data.tags["mlflow.parentRunId"] == parent.info.run_id for r in kids)
    for r in kids:
        assert r.data.params["validation_records"] == "30"
        assert r.data.params["validation_digest"] == split_digest(r.data.params["train_digest"], 100, 30, 0)
        assert (tracking_env.runs / r.info.run_id / "weights.npz").is_file()
    # the study (a real Optuna database beside the tracking store) has the six trials
    study = study_of(tracking_env, out["study"])
    trials = counted(study)
    assert len(trials) == 6 and storage_url(tracking_env.uri).endswith("mlflow-optuna.db")
    # parallel: two workers' trials overlapped in time
    spans = sorted((r.info.start_time, r.info.end_time) for r in kids)
    assert any(b[0] < a[1] for a, b in zip(spans, spans[1:])), spans
    # chosen by validation: the best trial has the highest validation score of the complete ones;
    # its test score is reported beside it, whatever it is
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    best = max(complete, key=lambda t: (t.value, -t.number))
    by_trial = {int(r.data.tags["mynn.trial"]): r for r in kids}
    assert out["best_trial"] == best.number and out["best_validation_performance"] == best.value
    assert by_trial[best.number].data.metrics["model_validation_performance"] == best.value
    assert out["best_test_performance"] == by_trial[best.number].data.metrics["performance"]
    m = client.get_run(parent.info.run_id).data
    assert m.metrics["best_validation_performance"] == best.value
    assert json.loads(m.tags["mynn.best_params"]) == best.params
    arts = {a.path for a in client.list_artifacts(parent.info.run_id)} | {
        a.path for a in client.list_artifacts(parent.info.run_id, "plots")}
    assert {"best_params.json", "trials.json", "plots/optimization_history.png", "plots/param_importances.png",
            "plots/slice.png"} <= arts
    # the trial's config is what the child trained: retrain the best one by hand, bit for bit
    cfg = NetworkConfig(**{**best.params, "seed": 0, "validation_records": 30})
    from mynn.csvfile import read_csv
    from mynn import paths

    train = read_csv(paths.data_dir() / "mnist_train_100.csv")
    net, _ = fit(cfg, train.pixels, train.labels)
    assert same_bits(net, Network.load(tracking_env.runs / by_trial[best.number].info.run_id / "weights.npz"))


def test_pruned_trials_end_finished_tagged_with_the_epoch_they_stopped_at(tracking_env):
    out = tune("t-prune", workers=1, trials=10, sampler="random", pruner="median")
    client, _, kids = runs_of(tracking_env, "t-prune")
    study = study_of(tracking_env, out["study"])
    pruned = [t for t in study.get_trials() if t.state == TrialState.PRUNED]
    assert pruned, "no trial was pruned: the test would prove nothing"
    by_trial = {int(r.data.tags["mynn.trial"]): r for r in kids}
    for t in pruned:
        run = by_trial[t.number]
        assert run.info.status == "FINISHED" and run.data.tags["mynn.pruned"] == "true"
        stopped = int(run.data.tags["mynn.pruned_epoch"])
        assert stopped < int(run.data.params["epochs"])
        assert max(t.intermediate_values) == stopped
        assert [m.step for m in client.get_metric_history(run.info.run_id, "train_mse")] == list(range(1, stopped + 1))
    assert all(r.data.tags.get("mynn.pruned") is None for n, r in by_trial.items() if n not in {t.number for t in pruned})
    assert out["trials_pruned"] == len(pruned)
    # a pruned run is not the point it names: a later study of that point trains it again
    from tracking.sweeps import finished_points

    by_point, _ = finished_points(tracking_env.uri, kids[0].info.experiment_id)
    assert not {by_trial[t.number].info.run_id for t in pruned} & {f.run_id for f in by_point.values()}


def test_a_study_resumes_and_another_reuses_its_finished_points(tracking_env):
    first = tune("t-resume", workers=1, trials=3, sampler="random", pruner="none", study="s1")
    with pytest.raises(StudyError, match="already exists.*--resume"):
        tune("t-resume", workers=1, trials=5, sampler="random", pruner="none", study="s1")
    again = tune("t-resume", workers=1, trials=5, sampler="random", pruner="none", study="s1", resume=True)
    assert again["resumed"] and again["parent_run_id"] == first["parent_run_id"]
    assert (again["trials_this_run"], again["trials"]) == (2, 5)
    client, parents, kids = runs_of(tracking_env, "t-resume")
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    assert sorted(int(r.data.tags["mynn.trial"]) for r in kids) == [0, 1, 2, 3, 4]
    configs = {int(r.data.tags["mynn.trial"]): r.data.tags["mynn.point_id"] for r in kids}
    assert len(set(configs.values())) == 5  # the resumed sampler did not draw the first trials again
    # a resume must be the same search
    with pytest.raises(StudyError, match="was made with space"):
        tune("t-resume", workers=1, trials=6, sampler="random", pruner="none", study="s1", resume=True,
             space={**SPACE, "hidden_nodes": [10, 41]})
    with pytest.raises(StudyError, match="no study 'nope' to resume"):
        tune("t-resume", workers=1, trials=6, study="nope", resume=True)
    # another study drawing the same points reuses them: nothing trained again
    trained_before = {p.name for p in tracking_env.runs.iterdir()}
    other = tune("t-resume", workers=1, trials=3, sampler="random", pruner="none", study="s2")
    _, _, kids2 = runs_of(tracking_env, "t-resume")
    mine = [r for r in kids2 if r.data.tags["mlflow.parentRunId"] == other["parent_run_id"]]
    assert len(mine) == 3 and all(r.data.tags["mynn.origin"].startswith("reused:") for r in mine)
    assert {p.name for p in tracking_env.runs.iterdir()} == trained_before
    s1 = {r.data.tags["mynn.point_id"]: r for r in kids if int(r.data.tags["mynn.trial"]) < 3}
    for r in mine:  # the same validation score as the run it came from, and the study got it
        source = s1[r.data.tags["mynn.point_id"]]
        assert r.data.tags["mynn.origin"] == f"reused:{source.info.run_id}"
        assert r.data.metrics["model_validation_performance"] == source.data.metrics["model_validation_performance"]
    assert [t.value for t in study_of(tracking_env, "s2").get_trials()] == [
        s1[r.data.tags["mynn.point_id"]].data.metrics["model_validation_performance"]
        for r in sorted(mine, key=lambda r: int(r.data.tags["mynn.trial"]))]


def test_resuming_a_study_whose_process_died_runs_its_unfinished_trial_again(tracking_env):
    first = tune("t-died", workers=1, trials=2, sampler="random", pruner="none", study="d1")
    client, _, kids = runs_of(tracking_env, "t-died")
    # what a killed process leaves: a RUNNING trial, and its RUNNING child run
    study = study_of(tracking_env, "d1")
    orphan = study.ask({"hidden_nodes": optuna.distributions.IntDistribution(10, 40, log=True),
                        "learning_rate": optuna.distributions.FloatDistribution(0.001, 1.0, log=True),
                        "epochs": optuna.distributions.IntDistribution(1, 6)})
    dead = client.create_run(kids[0].info.experiment_id, tags={
        "mlflow.parentRunId": first["parent_run_id"], "mynn.kind": "point", "mynn.trial": str(orphan.number)})
    again = tune("t-died", workers=1, trials=3, sampler="random", pruner="none", study="d1", resume=True)
    assert client.get_run(dead.info.run_id).info.status == "KILLED"
    trials = study_of(tracking_env, "d1").get_trials()
    assert trials[orphan.number].state == TrialState.FAIL
    rerun = trials[-1]
    assert rerun.state == TrialState.COMPLETE and rerun.params == orphan.params
    assert again["trials_this_run"] == 1 and again["trials"] == 4  # 2 + the failed one + its rerun
    assert again["trials_complete"] == 3


def test_a_grid_search_stops_at_the_grid_and_the_cli_prints_the_summary(tracking_env, capsys):
    assert cli_main(["tune", "--source", "shipped-small", "--validation-records", "30", "--hidden-nodes", "10", "20",
                     "--learning-rate", "0.3", "--epochs", "2", "--sampler", "grid", "--grid-points", "2",
                     "--trials", "9", "--experiment", "t-grid", "--workers", "2"]) == 0
    out = capsys.readouterr().out
    summary = json.loads(out[out.index('{\n  "parent_run_id"'):])
    _, parents, kids = runs_of(tracking_env, "t-grid")
    assert sorted(int(r.data.params["hidden_nodes"]) for r in kids) == [10, 20]  # 2 grid points, not 9 trials
    assert len(parents) == 1 and parents[0].data.metrics["trials_complete"] == 2
    assert summary["trials"] == 2 and summary["parent_run_id"] == parents[0].info.run_id
    assert summary["best_params"]["hidden_nodes"] in (10, 20)


def test_trials_on_a_local_dask_cluster(tracking_env, monkeypatch):
    from distributed import LocalCluster
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as c:
        monkeypatch.setenv("PREFECT_API_URL", str(c.api_url).rstrip("/"))
    assert os.environ["MLFLOW_TRACKING_URI"] == tracking_env.uri
    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None)
    try:
        out = tune("t-tune-dask", runner=task_runner(dask_address=cluster.scheduler_address), trials=3,
                   sampler="random", pruner="none")
    finally:
        cluster.close()
    _, parents, kids = runs_of(tracking_env, "t-tune-dask")
    assert parents[0].info.status == "FINISHED" and len(kids) == 3 and out["trials"] == 3
    assert all(r.info.status == "FINISHED" for r in kids)
    assert len(counted(study_of(tracking_env, out["study"]))) == 3


@pytest.mark.parametrize("argv, message", [
    (["--learning-rate", "1", "0.1"], "learning_rate range 1.0..0.1 needs low < high"),
    (["--hidden-nodes", "0", "10"], "greater than or equal to 1"),
    (["--seed", "-1"], "--seed: must be at least 0"),
    (["--validation-records", "0"], "--validation-records: must be at least 1"),
    (["--timeout", "soon"], "'soon' is not a duration"),
])
def test_bad_tune_options_exit_2_before_anything_starts(argv, message, capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'never.db'}")
    with pytest.raises(SystemExit) as exit_:
        cli_main(["tune", *argv])
    assert exit_.value.code == 2 and message in capsys.readouterr().err
    assert not (tmp_path / "never.db").exists() and not (tmp_path / "never-optuna.db").exists()


def test_a_study_in_postgresql_as_in_the_compose_stack(tracking_env, monkeypatch):
    from tests.servers import postgres_available, start_postgres

    missing = postgres_available()
    if missing:
        pytest.skip(f"PostgreSQL tests need it: {missing}")
    pg = start_postgres()
    try:
        url = f"postgresql+psycopg2://{pg.createdb('optuna')}"
        monkeypatch.setenv("MYNN_STUDY_STORAGE", url)
        first = tune("t-tune-pg", workers=2, trials=3, sampler="random", pruner="none", study="pg")
        again = tune("t-tune-pg", workers=2, trials=4, sampler="random", pruner="none", study="pg", resume=True)
        study = optuna.load_study(study_name="pg", storage=url)
        assert len(counted(study)) == 4 and first["parent_run_id"] == again["parent_run_id"]
        assert all(t.state == TrialState.FAIL for t in study.get_trials() if t.user_attrs.get("mynn.surplus"))
        assert study.user_attrs["parent_run_id"] == first["parent_run_id"]
        assert not (tracking_env.db.parent / "mlflow-optuna.db").exists()  # nothing went beside the SQLite store
    finally:
        pg.stop()


def test_trials_in_a_local_process_pool(tracking_env):
    from tracking.owner import TAG_PID

    out = tune("t-tune-procs", runner=task_runner(2, processes=True), trials=3, sampler="random", pruner="none")
    _, parents, kids = runs_of(tracking_env, "t-tune-procs")
    assert parents[0].info.status == "FINISHED" and len(kids) == 3 and out["trials"] == 3
    assert all(r.info.status == "FINISHED" for r in kids)
    pids = {r.data.tags[TAG_PID] for r in kids}
    assert str(os.getpid()) not in pids  # trained in the pool's processes, not in the flow's
    assert len(counted(study_of(tracking_env, out["study"]))) == 3


def test_a_study_whose_first_start_made_no_parent_run_is_refused_on_resume(tracking_env):
    from mynn import search
    from tracking import studies

    dims = search.space(SPACE)
    ref = studies.StudyRef("orphan", storage_url(tracking_env.uri), dims, NetworkConfig(validation_records=30),
                           "random", "none", 3)
    meta = {"space": search.describe(dims)}
    studies.open_study(ref, meta, resume=False)  # made, then the parent run never was
    with pytest.raises(StudyError, match="'orphan' has no parent run .* another --study name"):
        studies.open_study(ref, meta, resume=True)
